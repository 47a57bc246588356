import {
  CALL_ITEM_TYPES,
  CALL_KINDS,
  CALL_OUTPUT_ITEM_TYPES,
  abortedOutputFor,
  callKindOf,
  classifyItem,
  isCallItem,
  isCallOutputItem,
  itemType,
  normalizeInput,
  outputAnswers,
  outputKindOf,
  pairingNamespace,
  toInputItem,
  toInputItems,
  type CallKind,
} from '../../lib/protocol/items';
import {
  hasItemIdPrefix,
  isResponseId,
  itemIdPrefix,
  newCallId,
  newItemId,
  newResponseId,
  randomAlphanumeric,
} from '../../lib/protocol/ids';
import type { ResponseItem } from '../../lib/protocol/types';
import { doneItemsOf, exchangesOf, inputOf, loadFixture } from '../support/fixtures';

describe('normalizeInput', () => {
  it('turns a string into one user message', () => {
    expect(normalizeInput('hello')).toEqual([{ type: 'message', role: 'user', content: 'hello' }]);
  });

  it('turns undefined (and null) into an empty list', () => {
    expect(normalizeInput(undefined)).toEqual([]);
    expect(normalizeInput(null)).toEqual([]);
  });

  it('returns a copy of a list, keeping the same item objects', () => {
    const item: ResponseItem = { type: 'message', role: 'user', content: 'x' };
    const input = [item];
    const out = normalizeInput(input);
    expect(out).toEqual(input);
    expect(out).not.toBe(input);
    expect(out[0]).toBe(item);
  });

  it('keeps an empty string as one (empty) user message', () => {
    expect(normalizeInput('')).toEqual([{ type: 'message', role: 'user', content: '' }]);
  });
});

describe('itemType', () => {
  it('reads the type, and calls an easy-form {role, content} item a message', () => {
    expect(itemType({ type: 'function_call' })).toBe('function_call');
    expect(itemType({ role: 'user', content: 'hi' })).toBe('message');
    expect(itemType({ content: 'hi' })).toBeUndefined();
    expect(itemType('nope')).toBeUndefined();
  });
});

describe('classifyItem', () => {
  const calls: Array<[ResponseItem, CallKind, string]> = [
    [{ type: 'function_call', call_id: 'c1', name: 'f', arguments: '{}' }, 'function', 'c1'],
    [{ type: 'custom_tool_call', call_id: 'c2', name: 'apply_patch', input: '' }, 'custom', 'c2'],
    [{ type: 'local_shell_call', id: 'lsh_1', call_id: 'c3', action: {} }, 'local_shell', 'c3'],
    [{ type: 'shell_call', call_id: 'c4', action: { commands: [] } }, 'shell', 'c4'],
    [{ type: 'apply_patch_call', call_id: 'c5', operation: {} }, 'apply_patch', 'c5'],
    [{ type: 'computer_call', id: 'cu_1', call_id: 'c6', action: {} }, 'computer', 'c6'],
    [{ type: 'tool_search_call', call_id: 'c7', execution: 'client' }, 'tool_search', 'c7'],
    [
      { type: 'mcp_approval_request', id: 'mcpr_1', name: 'n', server_label: 's' },
      'mcp_approval',
      'mcpr_1',
    ],
  ];
  it.each(calls)('classifies %j as a call of its kind, keyed as documented', (item, kind, key) => {
    expect(classifyItem(item)).toEqual({ role: 'call', kind, key });
    expect(callKindOf(item)).toBe(kind);
    expect(isCallItem(item)).toBe(true);
    expect(isCallOutputItem(item)).toBe(false);
  });

  const outputs: Array<[ResponseItem, CallKind, string]> = [
    [{ type: 'function_call_output', call_id: 'c1', output: 'ok' }, 'function', 'c1'],
    [{ type: 'custom_tool_call_output', call_id: 'c2', output: 'ok' }, 'custom', 'c2'],
    [{ type: 'local_shell_call_output', id: 'c3', output: '{}' }, 'local_shell', 'c3'],
    [{ type: 'shell_call_output', call_id: 'c4', output: [] }, 'shell', 'c4'],
    [{ type: 'apply_patch_call_output', call_id: 'c5', status: 'completed' }, 'apply_patch', 'c5'],
    [{ type: 'computer_call_output', call_id: 'c6', output: {} }, 'computer', 'c6'],
    [{ type: 'tool_search_output', call_id: 'c7', tools: [] }, 'tool_search', 'c7'],
    [
      { type: 'mcp_approval_response', approval_request_id: 'mcpr_1', approve: true },
      'mcp_approval',
      'mcpr_1',
    ],
  ];
  it.each(outputs)(
    'classifies %j as an output of its kind, keyed as documented',
    (item, kind, key) => {
      expect(classifyItem(item)).toEqual({ role: 'output', kind, key });
      expect(outputKindOf(item)).toBe(kind);
      expect(isCallOutputItem(item)).toBe(true);
      expect(isCallItem(item)).toBe(false);
    },
  );

  it('keys a local_shell_call by call_id, falling back to id (as Codex does)', () => {
    expect(
      classifyItem({ type: 'local_shell_call', id: 'lsh_1', call_id: 'call_a' }),
    ).toMatchObject({ key: 'call_a' });
    expect(classifyItem({ type: 'local_shell_call', id: 'lsh_1' })).toMatchObject({ key: 'lsh_1' });
  });

  it('keys a local_shell_call_output by call_id when present, else by id (the 6.49 schema)', () => {
    expect(
      classifyItem({ type: 'local_shell_call_output', id: 'x', call_id: 'call_a', output: '' }),
    ).toMatchObject({
      key: 'call_a',
    });
    expect(
      classifyItem({ type: 'local_shell_call_output', id: 'call_b', output: '' }),
    ).toMatchObject({ key: 'call_b' });
  });

  it('leaves server-executed tool search items out of pairing', () => {
    expect(classifyItem({ type: 'tool_search_call', call_id: 'c', execution: 'server' })).toEqual({
      role: 'other',
    });
    expect(classifyItem({ type: 'tool_search_output', call_id: 'c', execution: 'server' })).toEqual(
      { role: 'other' },
    );
  });

  it('treats a tool search call without execution as client-executed', () => {
    expect(classifyItem({ type: 'tool_search_call', call_id: 'c' })).toEqual({
      role: 'call',
      kind: 'tool_search',
      key: 'c',
    });
  });

  it('classifies mcp_call (which carries its own output) and other items as other', () => {
    for (const item of [
      { type: 'mcp_call', id: 'mcp_1', name: 'n', arguments: '{}', output: 'x', server_label: 's' },
      { type: 'message', role: 'user', content: 'hi' },
      { role: 'assistant', content: 'hi' },
      { type: 'reasoning', summary: [] },
      { type: 'web_search_call', id: 'ws_1' },
      { type: 'item_reference', id: 'fc_1' },
      { type: 'something_new', call_id: 'c1' },
    ]) {
      expect(classifyItem(item)).toEqual({ role: 'other' });
    }
  });

  it('classifies an item without a usable key as other (the API rejects it with a schema error)', () => {
    expect(classifyItem({ type: 'function_call', name: 'f', arguments: '' })).toEqual({
      role: 'other',
    });
    expect(classifyItem({ type: 'function_call_output', call_id: '', output: '' })).toEqual({
      role: 'other',
    });
    expect(classifyItem({ type: 'function_call_output', call_id: 42, output: '' })).toEqual({
      role: 'other',
    });
    expect(classifyItem({ type: 'mcp_approval_response', approve: true })).toEqual({
      role: 'other',
    });
  });

  it('never throws on values that are not items', () => {
    for (const value of [null, undefined, 1, 'x', [], [{ type: 'function_call' }], { type: 3 }]) {
      expect(classifyItem(value)).toEqual({ role: 'other' });
    }
  });

  it('lists the call and output item types of every kind', () => {
    expect(CALL_ITEM_TYPES).toEqual(Object.values(CALL_KINDS).map((k) => k.callType));
    expect(CALL_OUTPUT_ITEM_TYPES).toEqual(Object.values(CALL_KINDS).map((k) => k.outputType));
    expect(CALL_ITEM_TYPES).toHaveLength(8);
  });
});

describe('outputAnswers and pairingNamespace', () => {
  it('lets each kind be answered by its own output type only', () => {
    const kinds = Object.keys(CALL_KINDS) as CallKind[];
    for (const call of kinds) {
      for (const output of kinds) {
        const expected = call === output || (call === 'local_shell' && output === 'function');
        expect(outputAnswers(call, output)).toBe(expected);
      }
    }
  });

  it('puts MCP approval ids in their own id space', () => {
    expect(pairingNamespace('mcp_approval')).toBe('approval');
    expect(pairingNamespace('function')).toBe('call');
    expect(pairingNamespace('local_shell')).toBe('call');
  });
});

describe('abortedOutputFor', () => {
  it('answers a function call with a function_call_output "aborted"', () => {
    expect(
      abortedOutputFor({ type: 'function_call', call_id: 'c', name: 'f', arguments: '' }),
    ).toEqual({
      type: 'function_call_output',
      call_id: 'c',
      output: 'aborted',
    });
  });

  it('answers a custom tool call with a custom_tool_call_output "aborted"', () => {
    expect(
      abortedOutputFor({ type: 'custom_tool_call', call_id: 'c', name: 'f', input: '' }),
    ).toEqual({
      type: 'custom_tool_call_output',
      call_id: 'c',
      output: 'aborted',
    });
  });

  it('answers a local shell call with a local_shell_call_output whose id is the call id', () => {
    expect(abortedOutputFor({ type: 'local_shell_call', id: 'lsh_1', call_id: 'c' })).toEqual({
      type: 'local_shell_call_output',
      id: 'c',
      output: 'aborted',
    });
  });

  it('answers a shell call with one failed output chunk', () => {
    expect(abortedOutputFor({ type: 'shell_call', call_id: 'c' })).toEqual({
      type: 'shell_call_output',
      call_id: 'c',
      output: [{ stdout: '', stderr: 'aborted', outcome: { type: 'exit', exit_code: 1 } }],
    });
  });

  it('answers an apply_patch call with a failed apply_patch_call_output', () => {
    expect(abortedOutputFor({ type: 'apply_patch_call', call_id: 'c' })).toEqual({
      type: 'apply_patch_call_output',
      call_id: 'c',
      status: 'failed',
      output: 'aborted',
    });
  });

  it('answers computer, tool search and MCP approval requests with their own output types', () => {
    expect(abortedOutputFor({ type: 'computer_call', call_id: 'c' })).toEqual({
      type: 'computer_call_output',
      call_id: 'c',
      output: { type: 'computer_screenshot' },
    });
    expect(abortedOutputFor({ type: 'tool_search_call', call_id: 'c' })).toEqual({
      type: 'tool_search_output',
      call_id: 'c',
      execution: 'client',
      tools: [],
    });
    expect(abortedOutputFor({ type: 'mcp_approval_request', id: 'mcpr_1' })).toEqual({
      type: 'mcp_approval_response',
      approval_request_id: 'mcpr_1',
      approve: false,
    });
  });

  it('produces an output that classifies as answering the call, for every kind', () => {
    const samples: ResponseItem[] = [
      { type: 'function_call', call_id: 'a' },
      { type: 'custom_tool_call', call_id: 'a' },
      { type: 'local_shell_call', call_id: 'a' },
      { type: 'shell_call', call_id: 'a' },
      { type: 'apply_patch_call', call_id: 'a' },
      { type: 'computer_call', call_id: 'a' },
      { type: 'tool_search_call', call_id: 'a' },
      { type: 'mcp_approval_request', id: 'a' },
    ];
    for (const call of samples) {
      const c = classifyItem(call);
      const o = classifyItem(abortedOutputFor(call));
      expect(c.role).toBe('call');
      expect(o.role).toBe('output');
      if (c.role === 'call' && o.role === 'output') {
        expect(o.key).toBe(c.key);
        expect(outputAnswers(c.kind, o.kind)).toBe(true);
      }
    }
  });

  it('returns undefined for anything that is not a pairable call', () => {
    expect(abortedOutputFor({ type: 'message', role: 'user', content: 'x' })).toBeUndefined();
    expect(abortedOutputFor({ type: 'function_call_output', call_id: 'c' })).toBeUndefined();
    expect(abortedOutputFor({ type: 'function_call' })).toBeUndefined();
  });
});

describe('toInputItems', () => {
  it('strips created_by from every item and keeps every other field', () => {
    const item = {
      type: 'function_call',
      call_id: 'c',
      name: 'f',
      arguments: '{}',
      created_by: 'x',
      extra: 1,
    };
    expect(toInputItems([item])).toEqual([
      { type: 'function_call', call_id: 'c', name: 'f', arguments: '{}', extra: 1 },
    ]);
    expect(item.created_by).toBe('x');
  });

  it('returns an item that needs no change as the same object', () => {
    const item = {
      type: 'message',
      role: 'assistant',
      content: [],
      id: 'msg_1',
      status: 'completed',
    };
    expect(toInputItem(item)).toBe(item);
  });

  it('keeps additional_tools only for the developer role', () => {
    expect(toInputItems([{ type: 'additional_tools', role: 'user', tools: [] }])).toEqual([]);
    expect(
      toInputItems([{ type: 'additional_tools', role: 'developer', tools: [], created_by: 'x' }]),
    ).toEqual([{ type: 'additional_tools', role: 'developer', tools: [] }]);
  });

  it('drops a failed computer_call_output', () => {
    expect(
      toInputItems([{ type: 'computer_call_output', call_id: 'c', status: 'failed', output: {} }]),
    ).toEqual([]);
    expect(
      toInputItems([
        { type: 'computer_call_output', call_id: 'c', status: 'completed', output: {} },
      ]),
    ).toHaveLength(1);
  });

  it('drops an unfinished custom_tool_call_output and strips status from a completed one', () => {
    expect(
      toInputItems([
        { type: 'custom_tool_call_output', call_id: 'c', status: 'in_progress', output: 'x' },
      ]),
    ).toEqual([]);
    expect(
      toInputItems([
        {
          type: 'custom_tool_call_output',
          call_id: 'c',
          status: 'completed',
          created_by: 'u',
          output: 'x',
        },
      ]),
    ).toEqual([{ type: 'custom_tool_call_output', call_id: 'c', output: 'x' }]);
    expect(toInputItems([{ type: 'custom_tool_call_output', call_id: 'c', output: 'x' }])).toEqual([
      { type: 'custom_tool_call_output', call_id: 'c', output: 'x' },
    ]);
  });

  it('strips created_by from the chunks of a shell_call_output', () => {
    const item = {
      type: 'shell_call_output',
      call_id: 'c',
      output: [
        { stdout: 'a', stderr: '', outcome: { type: 'exit', exit_code: 0 }, created_by: 'x' },
      ],
    };
    expect(toInputItems([item])).toEqual([
      {
        type: 'shell_call_output',
        call_id: 'c',
        output: [{ stdout: 'a', stderr: '', outcome: { type: 'exit', exit_code: 0 } }],
      },
    ]);
    expect((item.output[0] as { created_by?: string }).created_by).toBe('x');
  });

  it('keeps items of unknown types (a relay forwards what it does not know)', () => {
    const item = { type: 'brand_new_item', id: 'x_1', payload: { a: 1 } };
    expect(toInputItems([item])).toEqual([item]);
  });

  it("gives back Codex's output items unchanged: they are replayed byte for byte", () => {
    const exchanges = exchangesOf(loadFixture('http-tool-loop'));
    const outputs = doneItemsOf(exchanges[0]!.events);
    expect(outputs.length).toBeGreaterThan(0);
    expect(toInputItems(outputs)).toEqual(outputs);
    const replayed = inputOf(exchanges[1]!.request);
    const at = replayed.findIndex((i) => i.type === 'function_call');
    expect(replayed.slice(at, at + outputs.length)).toEqual(toInputItems(outputs));
  });
});

// lib/protocol/ids.ts has no test file of its own; its few helpers are checked here.
describe('id helpers (ids.ts)', () => {
  it('mints response ids, call ids and item ids in the API formats', () => {
    expect(newResponseId()).toMatch(/^resp_[0-9a-f]{48}$/);
    expect(newCallId()).toMatch(/^call_[A-Za-z0-9]{24}$/);
    expect(newItemId('function_call')).toMatch(/^fc_[0-9a-f]{48}$/);
    expect(newItemId('message')).toMatch(/^msg_/);
    expect(newItemId('unknown_thing')).toMatch(/^item_/);
    expect(newResponseId()).not.toBe(newResponseId());
  });

  it('knows the documented prefixes, and only those', () => {
    expect(itemIdPrefix('function_call')).toBe('fc_');
    expect(itemIdPrefix('reasoning')).toBe('rs_');
    expect(itemIdPrefix('toString')).toBeUndefined();
    expect(hasItemIdPrefix('function_call', 'fc_1')).toBe(true);
    expect(hasItemIdPrefix('function_call', 'call_1')).toBe(false);
    expect(hasItemIdPrefix('local_shell_call', 'anything')).toBe(true);
  });

  it('recognises response ids', () => {
    expect(isResponseId('resp_abc')).toBe(true);
    expect(isResponseId('resp_')).toBe(false);
    expect(isResponseId('msg_abc')).toBe(false);
    expect(isResponseId(undefined)).toBe(false);
  });

  it('draws unbiased alphanumerics of the requested length', () => {
    expect(randomAlphanumeric(0)).toBe('');
    expect(randomAlphanumeric(100)).toMatch(/^[A-Za-z0-9]{100}$/);
  });
});
