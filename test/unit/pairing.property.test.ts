import { fc, test } from '@fast-check/jest';
import { abortedOutputFor } from '../../lib/protocol/items';
import {
  analyzePairing,
  isSelfContained,
  pairingError,
  repairPairing,
  type CallRef,
  type PairingReport,
} from '../../lib/protocol/pairing';
import type { ResponseItem } from '../../lib/protocol/types';

const numRuns = 200;

// ---------------------------------------------------------------------------------------------
// Random item sequences: calls and outputs of every kind over a small id pool (so ids collide,
// outputs precede calls, duplicates happen), mixed with messages, reasoning and hosted items.

const ids = fc.constantFrom('a', 'b', 'c', 'd');

const callArb: fc.Arbitrary<ResponseItem> = fc.oneof(
  ids.map((id) => ({ type: 'function_call', call_id: id, name: 'f', arguments: '{}' })),
  ids.map((id) => ({ type: 'custom_tool_call', call_id: id, name: 'apply_patch', input: '' })),
  fc
    .tuple(ids, fc.boolean())
    .map(([id, withCallId]) =>
      withCallId
        ? { type: 'local_shell_call', id: `lsh_${id}`, call_id: id, action: {} }
        : { type: 'local_shell_call', id, action: {} },
    ),
  ids.map((id) => ({ type: 'shell_call', call_id: id, action: { commands: [] } })),
  ids.map((id) => ({ type: 'apply_patch_call', call_id: id, operation: {} })),
  ids.map((id) => ({ type: 'computer_call', call_id: id, action: {} })),
  fc
    .tuple(ids, fc.constantFrom('client', 'server', undefined))
    .map(([id, execution]) =>
      execution === undefined
        ? { type: 'tool_search_call', call_id: id }
        : { type: 'tool_search_call', call_id: id, execution },
    ),
  ids.map((id) => ({ type: 'mcp_approval_request', id, name: 'n', server_label: 's' })),
);

const outputArb: fc.Arbitrary<ResponseItem> = fc.oneof(
  ids.map((id) => ({ type: 'function_call_output', call_id: id, output: 'ok' })),
  ids.map((id) => ({ type: 'custom_tool_call_output', call_id: id, output: 'ok' })),
  fc
    .tuple(ids, fc.boolean())
    .map(([id, withCallId]) =>
      withCallId
        ? { type: 'local_shell_call_output', id: `lso_${id}`, call_id: id, output: '{}' }
        : { type: 'local_shell_call_output', id, output: '{}' },
    ),
  ids.map((id) => ({ type: 'shell_call_output', call_id: id, output: [] })),
  ids.map((id) => ({ type: 'apply_patch_call_output', call_id: id, status: 'completed' })),
  ids.map((id) => ({ type: 'computer_call_output', call_id: id, output: {} })),
  fc
    .tuple(ids, fc.constantFrom('client', 'server', undefined))
    .map(([id, execution]) =>
      execution === undefined
        ? { type: 'tool_search_output', call_id: id, tools: [] }
        : { type: 'tool_search_output', call_id: id, execution, tools: [] },
    ),
  ids.map((id) => ({ type: 'mcp_approval_response', approval_request_id: id, approve: true })),
);

const otherArb: fc.Arbitrary<ResponseItem> = fc.oneof(
  fc.constantFrom('user', 'assistant', 'developer').map((role) => ({
    type: 'message',
    role,
    content: 'x',
  })),
  fc.constant({ role: 'user', content: 'easy form' }),
  fc.constant({ type: 'reasoning', id: 'rs_1', summary: [] }),
  fc.constant({ type: 'mcp_call', id: 'mcp_1', name: 'n', arguments: '{}', server_label: 's' }),
  fc.constant({ type: 'web_search_call', id: 'ws_1', status: 'completed' }),
  fc.constant({ type: 'item_reference', id: 'msg_1' }),
  fc.constant({ type: 'function_call_output', output: 'no call_id' }),
);

const itemArb = fc.oneof(
  { arbitrary: callArb, weight: 3 },
  { arbitrary: outputArb, weight: 3 },
  { arbitrary: otherArb, weight: 2 },
);
const sequenceArb = fc.array(itemArb, { maxLength: 24 });

// ---------------------------------------------------------------------------------------------
// The reference model: the rules written out declaratively (quadratic, no shared code).

type Kind = CallRef['kind'];
const REF_CALLS: Record<string, Kind> = {
  function_call: 'function',
  custom_tool_call: 'custom',
  local_shell_call: 'local_shell',
  shell_call: 'shell',
  apply_patch_call: 'apply_patch',
  computer_call: 'computer',
  tool_search_call: 'tool_search',
  mcp_approval_request: 'mcp_approval',
};
const REF_OUTPUTS: Record<string, Kind> = {
  function_call_output: 'function',
  custom_tool_call_output: 'custom',
  local_shell_call_output: 'local_shell',
  shell_call_output: 'shell',
  apply_patch_call_output: 'apply_patch',
  computer_call_output: 'computer',
  tool_search_output: 'tool_search',
  mcp_approval_response: 'mcp_approval',
};

interface Entry {
  i: number;
  role: 'call' | 'output';
  kind: Kind;
  key: string;
  space: string;
}

function refEntry(item: ResponseItem, i: number): Entry | undefined {
  const o = item as Record<string, unknown>;
  const type = typeof o.type === 'string' ? o.type : '';
  const role = type in REF_CALLS ? 'call' : type in REF_OUTPUTS ? 'output' : undefined;
  if (role === undefined) return undefined;
  const kind = role === 'call' ? REF_CALLS[type]! : REF_OUTPUTS[type]!;
  if (kind === 'tool_search' && o.execution === 'server') return undefined;
  const str = (v: unknown) => (typeof v === 'string' && v !== '' ? v : undefined);
  let key: string | undefined;
  if (kind === 'mcp_approval') key = role === 'call' ? str(o.id) : str(o.approval_request_id);
  else if (kind === 'local_shell') key = str(o.call_id) ?? str(o.id);
  else key = str(o.call_id);
  if (key === undefined) return undefined;
  return { i, role, kind, key, space: kind === 'mcp_approval' ? 'A' : 'C' };
}

const answers = (call: Kind, output: Kind) =>
  call === output || (call === 'local_shell' && output === 'function');

function isClientItem(item: ResponseItem, entry: Entry | undefined): boolean {
  const o = item as Record<string, unknown>;
  if (entry?.role === 'output') return true;
  if (entry?.role === 'call') return false;
  const type = typeof o.type === 'string' ? o.type : o.role !== undefined ? 'message' : '';
  if (type === 'message') return o.role !== 'assistant';
  return type === 'item_reference' || type.endsWith('_output') || type === 'mcp_approval_response';
}

interface RefReport {
  unanswered: number[];
  orphans: number[];
  dupCalls: number[];
  dupOutputs: number[];
}

function referenceModel(seq: readonly ResponseItem[], allowTrailingCalls = false): RefReport {
  const entries = seq.map(refEntry);
  const calls = entries.filter((e): e is Entry => e?.role === 'call');
  const outputs = entries.filter((e): e is Entry => e?.role === 'output');
  const same = (x: Entry, y: Entry) => x.space === y.space && x.key === y.key;
  const canonicalFor = (x: Entry) => calls.find((c) => same(c, x));
  const validFor = (o: Entry, c: Entry | undefined) =>
    c !== undefined && c.i < o.i && answers(c.kind, o.kind);

  const dupCalls = calls.filter((c) => canonicalFor(c) !== c).map((c) => c.i);
  const orphans = outputs.filter((o) => !validFor(o, canonicalFor(o))).map((o) => o.i);
  const dupOutputs = outputs
    .filter((o) => validFor(o, canonicalFor(o)))
    .filter((o) => outputs.some((p) => p.i < o.i && same(p, o) && validFor(p, canonicalFor(p))))
    .map((o) => o.i);
  let lastClient = -1;
  seq.forEach((item, i) => {
    if (isClientItem(item, entries[i])) lastClient = i;
  });
  const unanswered = calls
    .filter((c) => canonicalFor(c) === c)
    .filter((c) => !outputs.some((o) => same(o, c) && validFor(o, c)))
    .filter((c) => !(allowTrailingCalls && c.i > lastClient))
    .map((c) => c.i);
  return { unanswered, orphans, dupCalls, dupOutputs };
}

const indexes = (refs: readonly CallRef[]) => refs.map((r) => r.index);
const asRef = (report: PairingReport): RefReport => ({
  unanswered: indexes(report.unansweredCalls),
  orphans: indexes(report.orphanOutputs),
  dupCalls: indexes(report.duplicateCalls),
  dupOutputs: indexes(report.duplicateOutputs),
});
const isClean = (r: RefReport) =>
  r.unanswered.length + r.orphans.length + r.dupCalls.length + r.dupOutputs.length === 0;

// ---------------------------------------------------------------------------------------------

describe('analyzePairing (properties)', () => {
  test.prop([sequenceArb, fc.boolean()], { numRuns })(
    'agrees with the reference model on any sequence',
    (seq, allowTrailingCalls) => {
      const report = analyzePairing(seq, { allowTrailingCalls });
      const expected = referenceModel(seq, allowTrailingCalls);
      expect(asRef(report)).toEqual(expected);
      expect(report.ok).toBe(isClean(expected));
    },
  );

  test.prop([sequenceArb, fc.nat()], { numRuns })(
    'analyses history ++ input exactly as the concatenated sequence',
    (seq, cut) => {
      const at = seq.length === 0 ? 0 : cut % (seq.length + 1);
      const split = analyzePairing(seq.slice(at), { history: seq.slice(0, at) });
      expect(split).toEqual(analyzePairing(seq));
    },
  );

  test.prop([sequenceArb], { numRuns })(
    'reports each item with its own index and object',
    (seq) => {
      const report = analyzePairing(seq);
      for (const ref of [
        ...report.unansweredCalls,
        ...report.orphanOutputs,
        ...report.duplicateCalls,
        ...report.duplicateOutputs,
      ]) {
        expect(seq[ref.index]).toBe(ref.item);
      }
    },
  );

  test.prop([sequenceArb], { numRuns })(
    'has an error for the earliest violation exactly when it is not ok',
    (seq) => {
      const report = analyzePairing(seq);
      const error = pairingError(report);
      expect(error === null).toBe(report.ok);
      if (error !== null) {
        const all = [
          ...report.unansweredCalls,
          ...report.orphanOutputs,
          ...report.duplicateCalls,
          ...report.duplicateOutputs,
        ];
        const first = all.reduce((a, b) => (b.index < a.index ? b : a));
        expect(error.error.message).toMatch(/^No tool (call|output) found for .+\.$/);
        expect(error.error.message).toContain(` ${first.callId}.`);
        expect(error.error.message.startsWith('No tool output found')).toBe(
          report.unansweredCalls.includes(first),
        );
      }
    },
  );
});

describe('isSelfContained (properties)', () => {
  test.prop([sequenceArb], { numRuns })('holds exactly when there is no orphan output', (seq) => {
    expect(isSelfContained(seq)).toBe(analyzePairing(seq).orphanOutputs.length === 0);
    expect(isSelfContained(seq)).toBe(referenceModel(seq).orphans.length === 0);
  });

  test.prop([fc.array(outputArb, { minLength: 1, maxLength: 8 })], { numRuns })(
    'never holds for a tool-output-only delta',
    (delta) => {
      const pairable = delta.filter((o) => (o as { execution?: string }).execution !== 'server');
      fc.pre(pairable.length > 0);
      expect(isSelfContained(delta)).toBe(false);
    },
  );
});

describe('repairPairing (properties)', () => {
  test.prop([sequenceArb], { numRuns })(
    'always gives a sequence that analyses as ok, without touching its input',
    (seq) => {
      const before = JSON.stringify(seq);
      const result = repairPairing(seq);
      expect(analyzePairing(result.items).ok).toBe(true);
      expect(JSON.stringify(seq)).toBe(before);
    },
  );

  test.prop([sequenceArb], { numRuns })(
    'keeps every item that is not an orphan or a duplicate, in order, and drops exactly the others',
    (seq) => {
      const report = analyzePairing(seq);
      const bad = new Set(
        [...report.orphanOutputs, ...report.duplicateOutputs, ...report.duplicateCalls].map(
          (r) => r.index,
        ),
      );
      const result = repairPairing(seq);
      const added = new Set(result.added);
      expect(result.items.filter((item) => !added.has(item))).toEqual(
        seq.filter((_, i) => !bad.has(i)),
      );
      result.items
        .filter((item) => !added.has(item))
        .forEach((item, n) => expect(item).toBe(seq.filter((_, i) => !bad.has(i))[n]));
      expect(result.dropped).toEqual(seq.filter((_, i) => bad.has(i)));
    },
  );

  test.prop([sequenceArb], { numRuns })(
    'adds, right after each unanswered call, an output of the matching type',
    (seq) => {
      const report = analyzePairing(seq);
      const result = repairPairing(seq);
      expect(result.added).toEqual(report.unansweredCalls.map((r) => abortedOutputFor(r.item)));
      for (const ref of report.unansweredCalls) {
        const at = result.items.indexOf(ref.item);
        expect(result.items[at + 1]).toEqual(abortedOutputFor(ref.item));
      }
    },
  );

  test.prop([sequenceArb, fc.array(callArb, { maxLength: 4 }), sequenceArb], { numRuns })(
    'gives an input that analyses as ok after a clean history, even one ending with calls',
    (historySeed, trailing, input) => {
      const history = [...repairPairing(historySeed).items, ...trailing];
      fc.pre(analyzePairing(history, { allowTrailingCalls: true }).ok);
      const result = repairPairing(input, { history });
      expect(analyzePairing(result.items, { history }).ok).toBe(true);
    },
  );
});
