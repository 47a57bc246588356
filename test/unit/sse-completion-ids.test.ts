/**
 * The id rules of sseCompletion (DESIGN §7): ids keep their type prefix, derived ids are
 * deterministic, `call_id` is never part of what changes, and input items referring to a
 * rewritten id are given back the upstream's id.
 */
import {
  DEFAULT_NORMALIZED_ITEM_TYPES,
  MemoryItemIdAliases,
  deriveItemId,
  normalizeItemId,
  restoreInputIds,
  rewritableInputIds,
  withItemId,
} from '../../lib/middleware/sse-completion-ids';

const at = (outputIndex: number, responseId = 'resp_1') => ({ responseId, outputIndex });

describe('normalizeItemId', () => {
  it('keeps an id that carries the prefix of its type', () => {
    expect(normalizeItemId({ type: 'function_call', id: 'fc_abc', call_id: 'call_1' }, at(0))).toBe(
      'fc_abc',
    );
    expect(normalizeItemId({ type: 'message', id: 'msg_1' }, at(0))).toBe('msg_1');
    expect(normalizeItemId({ type: 'reasoning', id: 'rs_1' }, at(0))).toBe('rs_1');
    expect(normalizeItemId({ type: 'custom_tool_call', id: 'ctc_1' }, at(0))).toBe('ctc_1');
  });

  it('derives an fc_ id for a function call whose id is its call_id', () => {
    const id = normalizeItemId(
      { type: 'function_call', id: 'call_XYZ', call_id: 'call_XYZ' },
      at(2),
    );
    expect(id).toMatch(/^fc_[0-9a-f]{48}$/);
  });

  it('derives ids for missing ids and for other mis-prefixed types', () => {
    expect(normalizeItemId({ type: 'function_call', call_id: 'call_1' }, at(0))).toMatch(
      /^fc_[0-9a-f]{48}$/,
    );
    expect(normalizeItemId({ type: 'message', id: 'item_7' }, at(0))).toMatch(/^msg_/);
    expect(normalizeItemId({ type: 'custom_tool_call', id: 'call_9' }, at(0))).toMatch(/^ctc_/);
    expect(normalizeItemId({ type: 'reasoning', id: '' }, at(0))).toMatch(/^rs_/);
    // The bare prefix is not an id.
    expect(normalizeItemId({ type: 'function_call', id: 'fc_' }, at(0))).toMatch(
      /^fc_[0-9a-f]{48}$/,
    );
  });

  it('only touches the types it is given (by default those the API checks on input)', () => {
    expect(DEFAULT_NORMALIZED_ITEM_TYPES).toEqual([
      'message',
      'function_call',
      'custom_tool_call',
      'reasoning',
      'web_search_call',
    ]);
    const mcp = { type: 'mcp_call', id: 'call_1' };
    expect(normalizeItemId(mcp, at(0))).toBe('call_1');
    expect(normalizeItemId(mcp, at(0), new Set(['mcp_call']))).toMatch(/^mcp_/);
    expect(
      normalizeItemId({ type: 'function_call', id: 'call_1' }, at(0), new Set(['message'])),
    ).toBe('call_1');
    expect(rewritableInputIds([{ type: 'mcp_call', id: 'mcp_1' }], new Set(['mcp_call']))).toEqual([
      'mcp_1',
    ]);
  });

  it('leaves items whose type has no documented prefix alone', () => {
    expect(normalizeItemId({ type: 'local_shell_call', id: 'lsh_1' }, at(0))).toBe('lsh_1');
    expect(normalizeItemId({ type: 'image_generation_call' }, at(0))).toBeUndefined();
    expect(normalizeItemId({ id: 'x' }, at(0))).toBe('x');
    expect(normalizeItemId('not an item', at(0))).toBeUndefined();
  });

  it('is deterministic and depends on the response, the index, the call and the old id', () => {
    const item = { type: 'function_call', id: 'call_1', call_id: 'call_1' };
    const first = normalizeItemId(item, at(0));
    expect(normalizeItemId({ ...item }, at(0))).toBe(first);
    const others = [
      normalizeItemId(item, at(1)),
      normalizeItemId(item, at(0, 'resp_2')),
      normalizeItemId({ ...item, call_id: 'call_2' }, at(0)),
      normalizeItemId({ ...item, id: 'call_3' }, at(0)),
    ];
    for (const other of others) expect(other).not.toBe(first);
    expect(deriveItemId('fc_', at(0), 'call_1', 'call_1')).toBe(first);
  });
});

describe('withItemId', () => {
  it('returns the same object when the id is already right, a copy otherwise', () => {
    const item = { type: 'function_call', id: 'fc_1', call_id: 'call_1' };
    expect(withItemId(item, 'fc_1')).toBe(item);
    expect(withItemId(item, undefined)).toBe(item);
    const changed = withItemId(item, 'fc_2');
    expect(changed).toEqual({ ...item, id: 'fc_2' });
    expect(item.id).toBe('fc_1');
  });
});

describe('MemoryItemIdAliases', () => {
  it('remembers ids and "no id", and forgets the least recently used first', () => {
    const aliases = new MemoryItemIdAliases({ max: 2 });
    aliases.set('fc_a', 'call_a');
    aliases.set('fc_b', null);
    expect(aliases.get('fc_a')).toBe('call_a');
    expect(aliases.get('fc_b')).toBeNull();
    expect(aliases.get('fc_c')).toBeUndefined();
    aliases.set('fc_c', 'call_c');
    expect(aliases.size).toBe(2);
    expect(aliases.get('fc_a')).toBeUndefined();
    aliases.clear();
    expect(aliases.size).toBe(0);
  });
});

describe('rewritableInputIds', () => {
  it('lists the ids a relay may have rewritten: prefixed ids of known types and references', () => {
    expect(
      rewritableInputIds([
        { type: 'message', role: 'user', content: 'hi' },
        { type: 'function_call', id: 'fc_1', call_id: 'call_1' },
        { type: 'function_call_output', id: 'fco_1', call_id: 'call_1', output: 'ok' },
        { type: 'function_call', id: 'call_2', call_id: 'call_2' },
        { type: 'item_reference', id: 'msg_9' },
        { id: 'rs_3' },
        { type: 'local_shell_call', id: 'x' },
        'junk',
      ]),
    ).toEqual(['fc_1', 'msg_9', 'rs_3']);
    expect(rewritableInputIds('a string input')).toEqual([]);
  });
});

describe('restoreInputIds', () => {
  const input = [
    { type: 'message', role: 'user', content: 'hi' },
    { type: 'function_call', id: 'fc_shown', call_id: 'call_1', name: 'f', arguments: '{}' },
    { type: 'function_call_output', call_id: 'call_1', output: 'ok' },
    { type: 'function_call', id: 'fc_noid', call_id: 'call_2', name: 'f', arguments: '{}' },
    { type: 'item_reference', id: 'fc_shown' },
    { type: 'item_reference', id: 'fc_noid' },
  ];
  const upstream = new Map<string, string | null>([
    ['fc_shown', 'call_1'],
    ['fc_noid', null],
  ]);

  it("gives items back the upstream's id, and drops the id the upstream never gave", () => {
    const restored = restoreInputIds(input, upstream, 'original');
    expect(restored).toEqual([
      input[0],
      { ...input[1], id: 'call_1' },
      input[2],
      { type: 'function_call', call_id: 'call_2', name: 'f', arguments: '{}' },
      { type: 'item_reference', id: 'call_1' },
      input[5],
    ]);
    // Untouched items are the same objects; the input is not mutated.
    expect(restored?.[0]).toBe(input[0]);
    expect(input[1]?.id).toBe('fc_shown');
  });

  it("with 'omit', sends the items without an id", () => {
    const restored = restoreInputIds(input, upstream, 'omit');
    expect(restored?.[1]).toEqual({
      type: 'function_call',
      call_id: 'call_1',
      name: 'f',
      arguments: '{}',
    });
    expect(restored?.[4]).toEqual({ type: 'item_reference', id: 'call_1' });
  });

  it('returns undefined when nothing changes', () => {
    expect(restoreInputIds(input, new Map())).toBeUndefined();
    expect(restoreInputIds(input, new Map([['msg_other', 'x']]))).toBeUndefined();
    expect(restoreInputIds('hello', upstream)).toBeUndefined();
  });
});
