/**
 * The pure half of response chaining: replaying a stored history to a store=false upstream,
 * resolving references, asking for encrypted reasoning, the pairing policy on the full sequence,
 * and the guards of session injection.
 */
import fc from 'fast-check';
import {
  ENCRYPTED_REASONING_INCLUDE,
  answersPendingCalls,
  applyPairingPolicy,
  extendsHistory,
  isItemReference,
  replayableHistory,
  resolveItemReferences,
  sameJson,
  wantsEncryptedReasoning,
  withEncryptedReasoningInclude,
} from '../../lib/middleware/chaining-expand';
import type { ResponseItem } from '../../lib/protocol/types';

const user = (text: string): ResponseItem => ({ type: 'message', role: 'user', content: text });
const call = (id: string, name = 'exec_command'): ResponseItem => ({
  type: 'function_call',
  id: `fc_${id}`,
  call_id: id,
  name,
  arguments: '{}',
});
const output = (id: string, text = 'ok'): ResponseItem => ({
  type: 'function_call_output',
  call_id: id,
  output: text,
});
const customCall = (id: string): ResponseItem => ({
  type: 'custom_tool_call',
  call_id: id,
  name: 'apply_patch',
  input: '*** Begin Patch',
});
const reasoning = (id: string, encrypted?: string): ResponseItem => ({
  type: 'reasoning',
  id,
  summary: [],
  ...(encrypted === undefined ? {} : { encrypted_content: encrypted }),
});
const assistant = (text: string): ResponseItem => ({
  type: 'message',
  role: 'assistant',
  id: `msg_${text}`,
  content: [{ type: 'output_text', text }],
});

describe('replayableHistory', () => {
  it('drops reasoning items a store=false upstream could only look up by id', () => {
    const history = [user('hi'), reasoning('rs_1'), reasoning('rs_2', 'gAAAA'), call('c1')];
    const replay = replayableHistory(history);
    expect(replay.items).toEqual([user('hi'), reasoning('rs_2', 'gAAAA'), call('c1')]);
    expect(replay.dropped).toBe(1);
  });

  it('drops references and keeps the same array when nothing is dropped', () => {
    const clean = [user('a'), assistant('b')];
    expect(replayableHistory(clean).items).toBe(clean);
    expect(replayableHistory([{ type: 'item_reference', id: 'msg_1' }]).items).toEqual([]);
  });

  it('treats an empty encrypted_content as absent', () => {
    expect(replayableHistory([reasoning('rs_1', '')]).dropped).toBe(1);
  });
});

describe('isItemReference', () => {
  it('recognises both forms and nothing else', () => {
    expect(isItemReference({ type: 'item_reference', id: 'msg_1' })).toBe(true);
    expect(isItemReference({ id: 'msg_1' })).toBe(true);
    expect(isItemReference({ id: 'msg_1', role: 'user', content: 'x' })).toBe(false);
    expect(isItemReference(call('c1'))).toBe(false);
    expect(isItemReference({ type: 'item_reference' })).toBe(false);
  });
});

describe('resolveItemReferences', () => {
  const history = [user('hi'), assistant('hello'), reasoning('rs_1'), call('c1')];

  it('replaces a reference by the stored item with that id', () => {
    const result = resolveItemReferences(
      [{ type: 'item_reference', id: 'msg_hello' }, output('c1')],
      history,
    );
    expect(result.items).toEqual([assistant('hello'), output('c1')]);
    expect(result.resolved).toBe(1);
    expect(result.dropped).toEqual([]);
  });

  it('leaves out references to unknown or unreplayable items', () => {
    const result = resolveItemReferences(
      [{ id: 'msg_nope' } as ResponseItem, { type: 'item_reference', id: 'rs_1' }, user('next')],
      history,
    );
    expect(result.items).toEqual([user('next')]);
    expect(result.dropped).toEqual(['msg_nope', 'rs_1']);
  });

  it('returns the delta itself when it holds no reference', () => {
    const delta = [output('c1')];
    expect(resolveItemReferences(delta, history).items).toBe(delta);
  });
});

describe('encrypted reasoning', () => {
  it('is wanted when the request configures reasoning or the conversation has reasoning', () => {
    expect(wantsEncryptedReasoning({ reasoning: { effort: 'low' } }, [])).toBe(true);
    expect(wantsEncryptedReasoning({}, [user('x'), reasoning('rs_1', 'g')])).toBe(true);
    expect(wantsEncryptedReasoning({}, [user('x')])).toBe(false);
    expect(wantsEncryptedReasoning({ reasoning: null }, [user('x')])).toBe(false);
  });

  it('is added to include once, keeping what the client asked for', () => {
    expect(withEncryptedReasoningInclude(undefined)).toEqual([ENCRYPTED_REASONING_INCLUDE]);
    expect(withEncryptedReasoningInclude(null)).toEqual([ENCRYPTED_REASONING_INCLUDE]);
    expect(withEncryptedReasoningInclude(['message.output_text.logprobs'])).toEqual([
      'message.output_text.logprobs',
      ENCRYPTED_REASONING_INCLUDE,
    ]);
    expect(withEncryptedReasoningInclude([ENCRYPTED_REASONING_INCLUDE])).toBeUndefined();
    expect(withEncryptedReasoningInclude('nonsense')).toBeUndefined();
  });
});

describe('applyPairingPolicy on history ++ delta', () => {
  const history = [user('run it'), call('c1')];

  it('passes a delta that answers the pending call', () => {
    const delta = [output('c1')];
    const decision = applyPairingPolicy(delta, history, 'reject');
    expect(decision).toEqual({ ok: true, items: delta, added: [], dropped: [] });
  });

  it("rejects an orphan output with OpenAI's wording", () => {
    const decision = applyPairingPolicy([output('c1'), output('c9')], history, 'reject');
    expect(decision.ok).toBe(false);
    if (decision.ok) return;
    expect(decision.error).toEqual({
      status: 400,
      error: {
        message: 'No tool call found for function call output with call_id c9.',
        type: 'invalid_request_error',
        param: 'input',
        code: null,
      },
    });
  });

  it("rejects a delta that leaves the history's call unanswered", () => {
    const decision = applyPairingPolicy([user('never mind')], history, 'reject');
    expect(decision.ok).toBe(false);
    if (decision.ok) return;
    expect(decision.error.error.message).toBe('No tool output found for function call c1.');
  });

  it('checks the expanded history, not just the delta', () => {
    // Alone the delta is clean; with a history whose custom call is unanswered it is not.
    const decision = applyPairingPolicy([user('next')], [customCall('k1')], 'reject');
    expect(decision.ok).toBe(false);
    if (decision.ok) return;
    expect(decision.error.error.message).toBe('No tool output found for custom tool call k1.');
  });

  it('repairs: an aborted output for the unanswered call, the orphan dropped', () => {
    const decision = applyPairingPolicy([output('c9'), user('next')], history, 'repair');
    expect(decision.ok).toBe(true);
    if (!decision.ok) return;
    expect(decision.items).toEqual([
      { type: 'function_call_output', call_id: 'c1', output: 'aborted' },
      user('next'),
    ]);
    expect(decision.dropped).toEqual([output('c9')]);
    expect(decision.added).toHaveLength(1);
  });

  it('passes anything with off', () => {
    const delta = [output('c9')];
    expect(applyPairingPolicy(delta, history, 'off')).toEqual({
      ok: true,
      items: delta,
      added: [],
      dropped: [],
    });
  });
});

describe('answersPendingCalls (the guard of session injection)', () => {
  const history = [user('run'), call('c1'), call('c2')];

  it('is true for outputs answering pending calls', () => {
    expect(answersPendingCalls([output('c1'), output('c2')], history)).toBe(true);
    expect(answersPendingCalls([output('c2')], history)).toBe(true);
  });

  it('is false for a self-contained input', () => {
    expect(answersPendingCalls([user('hello')], history)).toBe(false);
    expect(answersPendingCalls([call('c3'), output('c3')], history)).toBe(false);
  });

  it('is false when an output answers nothing pending', () => {
    expect(answersPendingCalls([output('c1'), output('zz')], history)).toBe(false);
    const answered = [...history, output('c1'), output('c2'), assistant('done')];
    expect(answersPendingCalls([output('c1')], answered)).toBe(false);
  });
});

describe('extendsHistory and sameJson', () => {
  it('compares items structurally, whatever the member order', () => {
    const stored = { type: 'function_call', call_id: 'c1', name: 'x', arguments: '{}' };
    const echoed = { arguments: '{}', name: 'x', call_id: 'c1', type: 'function_call' };
    expect(sameJson(stored, echoed)).toBe(true);
    expect(sameJson(stored, { ...echoed, status: 'completed' })).toBe(false);
    expect(sameJson({ a: undefined, b: 1 }, { b: 1 })).toBe(true);
    expect(sameJson([1, 2], [2, 1])).toBe(false);
    expect(sameJson({ a: [] }, { a: {} })).toBe(false);
  });

  it('is true only for a strict prefix match of a non-empty history', () => {
    const history = [user('a'), assistant('b')];
    expect(extendsHistory(history, [...history, user('c')])).toBe(true);
    expect(extendsHistory(history, history)).toBe(true);
    expect(extendsHistory(history, [user('a'), user('c')])).toBe(false);
    expect(extendsHistory(history, [user('a')])).toBe(false);
    expect(extendsHistory([], [user('a')])).toBe(false);
  });

  const json = fc.jsonValue({ maxDepth: 3 });
  const item = fc.dictionary(fc.string({ maxLength: 6 }), json, { maxKeys: 5 });

  it('holds for any history followed by any items (property)', () => {
    fc.assert(
      fc.property(fc.array(item, { minLength: 1, maxLength: 6 }), fc.array(item), (h, rest) => {
        const copy = JSON.parse(JSON.stringify([...h, ...rest])) as ResponseItem[];
        return extendsHistory(h as ResponseItem[], copy);
      }),
    );
  });

  it('sameJson agrees with a key-sorted serialization (property)', () => {
    const canonical = (value: unknown): string =>
      JSON.stringify(value, (_key, v: unknown) =>
        v !== null && typeof v === 'object' && !Array.isArray(v)
          ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : 1)))
          : v,
      );
    fc.assert(
      fc.property(json, json, (a, b) => sameJson(a, b) === (canonical(a) === canonical(b))),
    );
  });
});

describe('repair on an expanded history (property)', () => {
  it('always yields a sequence the pairing analysis accepts, when the history is clean', () => {
    const ids = fc.constantFrom('c1', 'c2', 'c3', 'c4');
    const delta = fc.array(
      fc.oneof(
        ids.map((id) => output(id)),
        ids.map((id) => call(id)),
        fc.constant(user('u')),
      ),
      { maxLength: 8 },
    );
    fc.assert(
      fc.property(delta, (items) => {
        const history = [user('start'), call('c1')];
        const decision = applyPairingPolicy(items, history, 'repair');
        if (!decision.ok) return false;
        const again = applyPairingPolicy(decision.items, history, 'reject');
        return again.ok;
      }),
    );
  });
});
