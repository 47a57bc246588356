import {
  analyzePairing,
  isSelfContained,
  pairingError,
  pairingErrorMessage,
  repairPairing,
  type CallKind,
  type CallRef,
} from '../../lib/protocol/pairing';
import type { ResponseItem } from '../../lib/protocol/types';
import { ResponseAccumulator } from '../../lib/protocol/accumulator';
import { exchangesOf, inputOf, loadFixture } from '../support/fixtures';

const fc = (id: string): ResponseItem => ({
  type: 'function_call',
  call_id: id,
  name: 'f',
  arguments: '{}',
});
const fco = (id: string): ResponseItem => ({
  type: 'function_call_output',
  call_id: id,
  output: 'ok',
});
const ctc = (id: string): ResponseItem => ({
  type: 'custom_tool_call',
  call_id: id,
  name: 'apply_patch',
  input: '',
});
const ctco = (id: string): ResponseItem => ({
  type: 'custom_tool_call_output',
  call_id: id,
  output: 'ok',
});
const user = (text: string): ResponseItem => ({ type: 'message', role: 'user', content: text });
const assistant = (text: string): ResponseItem => ({
  type: 'message',
  role: 'assistant',
  content: [{ type: 'output_text', text, annotations: [] }],
});
const reasoning: ResponseItem = { type: 'reasoning', id: 'rs_1', summary: [] };

const ref = (kind: CallKind, callId: string): CallRef => ({
  kind,
  callId,
  index: 0,
  item: {} as ResponseItem,
});

describe('analyzePairing', () => {
  it('accepts calls each followed by their output', () => {
    const report = analyzePairing([
      user('go'),
      reasoning,
      fc('a'),
      fc('b'),
      fco('a'),
      fco('b'),
      assistant('done'),
    ]);
    expect(report).toEqual({
      ok: true,
      unansweredCalls: [],
      orphanOutputs: [],
      duplicateCalls: [],
      duplicateOutputs: [],
    });
  });

  it('accepts an input without any tool item', () => {
    expect(analyzePairing([]).ok).toBe(true);
    expect(analyzePairing([user('x'), assistant('y')]).ok).toBe(true);
  });

  it('reports an output with no call as an orphan, with its index, kind and item', () => {
    const out = fco('x');
    const report = analyzePairing([user('u'), out]);
    expect(report.ok).toBe(false);
    expect(report.orphanOutputs).toEqual([{ kind: 'function', callId: 'x', index: 1, item: out }]);
  });

  it('reports an output placed before its call as an orphan (and the call as unanswered)', () => {
    const report = analyzePairing([fco('a'), fc('a')]);
    expect(report.orphanOutputs.map((r) => r.index)).toEqual([0]);
    expect(report.unansweredCalls.map((r) => r.index)).toEqual([1]);
  });

  it('reports a call with no later output as unanswered', () => {
    const report = analyzePairing([user('u'), fc('a'), fc('b'), fco('b')]);
    expect(report.unansweredCalls).toEqual([
      { kind: 'function', callId: 'a', index: 1, item: fc('a') },
    ]);
    expect(report.orphanOutputs).toEqual([]);
  });

  it('reports a second call with the same id as a duplicate call', () => {
    const report = analyzePairing([fc('a'), fco('a'), fc('a')]);
    expect(report.duplicateCalls.map((r) => r.index)).toEqual([2]);
    expect(report.unansweredCalls).toEqual([]);
    expect(report.ok).toBe(false);
  });

  it('treats call ids as one space across call kinds', () => {
    const report = analyzePairing([fc('a'), ctc('a'), fco('a')]);
    expect(report.duplicateCalls).toMatchObject([{ kind: 'custom', callId: 'a', index: 1 }]);
  });

  it('reports a second output for an answered call as a duplicate output', () => {
    const report = analyzePairing([fc('a'), fco('a'), fco('a')]);
    expect(report.duplicateOutputs.map((r) => r.index)).toEqual([2]);
    expect(report.orphanOutputs).toEqual([]);
  });

  it('treats an output of the wrong family as an orphan', () => {
    const report = analyzePairing([ctc('a'), fco('a')]);
    expect(report.orphanOutputs).toMatchObject([{ kind: 'function', callId: 'a', index: 1 }]);
    expect(report.unansweredCalls).toMatchObject([{ kind: 'custom', callId: 'a', index: 0 }]);
  });

  it('accepts a function_call_output answering a local_shell_call (what Codex sends)', () => {
    const report = analyzePairing([
      { type: 'local_shell_call', id: 'lsh_1', call_id: 'call_1', action: {} },
      fco('call_1'),
    ]);
    expect(report.ok).toBe(true);
  });

  it('pairs a local_shell_call_output by its id (openai 6.49) or its call_id', () => {
    const call: ResponseItem = {
      type: 'local_shell_call',
      id: 'lsh_1',
      call_id: 'call_1',
      action: {},
    };
    expect(
      analyzePairing([call, { type: 'local_shell_call_output', id: 'call_1', output: '{}' }]).ok,
    ).toBe(true);
    expect(
      analyzePairing([
        call,
        { type: 'local_shell_call_output', id: 'lso_9', call_id: 'call_1', output: '{}' },
      ]).ok,
    ).toBe(true);
    expect(
      analyzePairing([call, { type: 'local_shell_call_output', id: 'lsh_1', output: '{}' }]).ok,
    ).toBe(false);
  });

  it('pairs every call kind with its own output type', () => {
    const pairs: Array<[ResponseItem, ResponseItem]> = [
      [fc('k1'), fco('k1')],
      [ctc('k2'), ctco('k2')],
      [
        { type: 'shell_call', call_id: 'k3' },
        { type: 'shell_call_output', call_id: 'k3', output: [] },
      ],
      [
        { type: 'apply_patch_call', call_id: 'k4' },
        { type: 'apply_patch_call_output', call_id: 'k4', status: 'completed' },
      ],
      [
        { type: 'computer_call', call_id: 'k5' },
        { type: 'computer_call_output', call_id: 'k5', output: {} },
      ],
      [
        { type: 'tool_search_call', call_id: 'k6', execution: 'client' },
        { type: 'tool_search_output', call_id: 'k6', tools: [] },
      ],
      [
        { type: 'mcp_approval_request', id: 'mcpr_1' },
        { type: 'mcp_approval_response', approval_request_id: 'mcpr_1', approve: true },
      ],
    ];
    expect(analyzePairing(pairs.flat()).ok).toBe(true);
    expect(analyzePairing(pairs.map((p) => p[0])).unansweredCalls).toHaveLength(pairs.length);
    expect(analyzePairing(pairs.map((p) => p[1])).orphanOutputs).toHaveLength(pairs.length);
  });

  it('keeps MCP approval ids apart from call ids', () => {
    const report = analyzePairing([
      fc('same'),
      { type: 'mcp_approval_request', id: 'same' },
      fco('same'),
    ]);
    expect(report.duplicateCalls).toEqual([]);
    expect(report.unansweredCalls).toMatchObject([{ kind: 'mcp_approval', callId: 'same' }]);
  });

  it('ignores mcp_call items and server-side tool search', () => {
    const report = analyzePairing([
      { type: 'mcp_call', id: 'mcp_1', name: 'n', arguments: '{}', output: 'x', server_label: 's' },
      { type: 'tool_search_call', call_id: 'ts', execution: 'server' },
      { type: 'tool_search_output', call_id: 'ts', execution: 'server', tools: [] },
    ]);
    expect(report.ok).toBe(true);
  });

  it('analyses history ++ input, indexing across both', () => {
    const history = [user('u'), fc('a')];
    const report = analyzePairing([fco('a'), fco('b')], { history });
    expect(report.unansweredCalls).toEqual([]);
    expect(report.orphanOutputs).toMatchObject([{ callId: 'b', index: 3 }]);
  });

  it('reports a call of history left unanswered by the new input', () => {
    const report = analyzePairing([user('next')], { history: [user('u'), fc('a')] });
    expect(report.unansweredCalls).toMatchObject([{ callId: 'a', index: 1 }]);
  });

  describe('with allowTrailingCalls', () => {
    it('tolerates the calls of a history that ended with a model turn', () => {
      const stored = [user('u'), reasoning, fc('a'), ctc('b'), assistant('working')];
      expect(analyzePairing(stored).ok).toBe(false);
      expect(analyzePairing(stored, { allowTrailingCalls: true }).ok).toBe(true);
    });

    it('still reports calls followed by a later client item (an output or a user message)', () => {
      const report = analyzePairing([fc('a'), fc('b'), fco('b'), fc('c')], {
        allowTrailingCalls: true,
      });
      expect(report.unansweredCalls.map((r) => r.callId)).toEqual(['a']);
      const second = analyzePairing([fc('a'), user('next')], { allowTrailingCalls: true });
      expect(second.unansweredCalls.map((r) => r.callId)).toEqual(['a']);
    });

    it('still reports orphans and duplicates', () => {
      expect(
        analyzePairing([fco('x'), fc('a')], { allowTrailingCalls: true }).orphanOutputs,
      ).toHaveLength(1);
      expect(
        analyzePairing([fc('a'), fc('a')], { allowTrailingCalls: true }).duplicateCalls,
      ).toHaveLength(1);
    });
  });

  it('never mutates its input', () => {
    const input = [fc('a'), fco('b')];
    const copy = structuredClone(input);
    analyzePairing(input, { history: [user('u')] });
    expect(input).toEqual(copy);
  });
});

describe('pairingErrorMessage', () => {
  it.each([
    ['function', 'No tool call found for function call output with call_id call_1.'],
    ['custom', 'No tool call found for custom tool call output with call_id call_1.'],
    ['local_shell', 'No tool call found for local shell call output with call_id call_1.'],
    ['shell', 'No tool call found for shell call output with call_id call_1.'],
    ['apply_patch', 'No tool call found for apply patch call output with call_id call_1.'],
    ['computer', 'No tool call found for computer call output with call_id call_1.'],
    ['tool_search', 'No tool call found for tool search output with call_id call_1.'],
    ['mcp_approval', 'No tool call found for mcp approval response with call_id call_1.'],
  ] as Array<[CallKind, string]>)(
    'words an orphan %s output exactly as the API',
    (kind, message) => {
      expect(pairingErrorMessage(ref(kind, 'call_1'), 'orphan_output')).toBe(message);
    },
  );

  it.each([
    ['function', 'No tool output found for function call call_1.'],
    ['custom', 'No tool output found for custom tool call call_1.'],
    ['local_shell', 'No tool output found for local shell call call_1.'],
    ['shell', 'No tool output found for shell call call_1.'],
    ['apply_patch', 'No tool output found for apply patch call call_1.'],
    ['computer', 'No tool output found for computer call call_1.'],
    ['tool_search', 'No tool output found for tool search call call_1.'],
    ['mcp_approval', 'No tool output found for mcp approval request call_1.'],
  ] as Array<[CallKind, string]>)(
    'words an unanswered %s call exactly as the API',
    (kind, message) => {
      expect(pairingErrorMessage(ref(kind, 'call_1'), 'unanswered_call')).toBe(message);
    },
  );

  it('matches the message of the captured 400 in http-400-no-tool-call', () => {
    const answer = loadFixture('http-400-no-tool-call').find((r) => r.kind === 'http_response');
    expect(answer?.kind).toBe('http_response');
    const body = (answer as { body: { error: { message: string } } }).body;
    expect(pairingErrorMessage(ref('function', 'call_mock_001'), 'orphan_output')).toBe(
      body.error.message,
    );
  });
});

describe('pairingError', () => {
  it('is null for a clean report', () => {
    expect(pairingError(analyzePairing([fc('a'), fco('a')]))).toBeNull();
  });

  it('gives the full 400 envelope for an orphan output', () => {
    expect(pairingError(analyzePairing([fco('call_x')]))).toEqual({
      status: 400,
      error: {
        message: 'No tool call found for function call output with call_id call_x.',
        type: 'invalid_request_error',
        param: 'input',
        code: null,
      },
    });
  });

  it('gives the "No tool output found" wording for an unanswered call', () => {
    expect(pairingError(analyzePairing([user('u'), ctc('call_y')]))?.error.message).toBe(
      'No tool output found for custom tool call call_y.',
    );
  });

  it('reports the violation at the lowest index first', () => {
    expect(pairingError(analyzePairing([fc('a'), user('u'), fco('b')]))?.error.message).toBe(
      'No tool output found for function call a.',
    );
    expect(pairingError(analyzePairing([fco('b'), fc('a')]))?.error.message).toBe(
      'No tool call found for function call output with call_id b.',
    );
  });

  it('uses the orphan wording for a duplicate output and a duplicate call', () => {
    expect(pairingError(analyzePairing([fc('a'), fco('a'), fco('a')]))?.error.message).toBe(
      'No tool call found for function call output with call_id a.',
    );
    expect(
      pairingError(analyzePairing([ctc('a'), ctco('a'), ctc('a'), ctco('a')]))?.error.message,
    ).toBe('No tool call found for custom tool call output with call_id a.');
  });
});

describe('isSelfContained', () => {
  it('accepts an input whose outputs all follow their calls', () => {
    expect(isSelfContained([user('u'), fc('a'), fco('a')])).toBe(true);
  });

  it('never accepts a tool-output-only delta', () => {
    expect(isSelfContained([fco('a')])).toBe(false);
    expect(isSelfContained([fco('a'), ctco('b')])).toBe(false);
  });

  it('rejects an output whose call is later in the input', () => {
    expect(isSelfContained([fco('a'), fc('a')])).toBe(false);
  });

  it('accepts a string, an empty list and an input with unanswered calls (no outputs to check)', () => {
    expect(isSelfContained('hello')).toBe(true);
    expect(isSelfContained([])).toBe(true);
    expect(isSelfContained([user('u'), fc('a')])).toBe(true);
  });

  describe('on Codex traffic (ws-tool-loop, http-tool-loop)', () => {
    const ws = exchangesOf(loadFixture('ws-tool-loop'));
    const http = exchangesOf(loadFixture('http-tool-loop'));

    it('finds the WebSocket tool-output-only delta NOT self-contained', () => {
      const delta = ws.find((e) =>
        inputOf(e.request).every((i) => i.type === 'function_call_output'),
      );
      expect(delta).toBeDefined();
      expect(delta!.request.previous_response_id).toBeTruthy();
      expect(isSelfContained(inputOf(delta!.request))).toBe(false);
    });

    it('finds the delta correctly paired once its history is expanded', () => {
      const history: ResponseItem[] = [];
      for (const exchange of ws) {
        const input = inputOf(exchange.request);
        expect(analyzePairing(input, { history }).ok).toBe(true);
        const acc = new ResponseAccumulator();
        exchange.events.forEach((e) => acc.push(e));
        history.push(...input, ...acc.completedItems());
        expect(analyzePairing(history, { allowTrailingCalls: true }).ok).toBe(true);
      }
    });

    it('finds every HTTP full-history request self-contained and correctly paired', () => {
      expect(http.length).toBeGreaterThanOrEqual(2);
      for (const exchange of http) {
        const input = inputOf(exchange.request);
        expect(isSelfContained(input)).toBe(true);
        expect(analyzePairing(input).ok).toBe(true);
      }
      expect(inputOf(http[1]!.request).some((i) => i.type === 'function_call_output')).toBe(true);
    });
  });
});

describe('repairPairing', () => {
  it('adds an "aborted" output right after each unanswered call', () => {
    const input = [user('u'), fc('a'), fc('b'), fco('b'), assistant('x')];
    const result = repairPairing(input);
    expect(result.items).toEqual([
      user('u'),
      fc('a'),
      { type: 'function_call_output', call_id: 'a', output: 'aborted' },
      fc('b'),
      fco('b'),
      assistant('x'),
    ]);
    expect(result.added).toEqual([
      { type: 'function_call_output', call_id: 'a', output: 'aborted' },
    ]);
    expect(result.dropped).toEqual([]);
    expect(analyzePairing(result.items).ok).toBe(true);
  });

  it('adds an output of the matching type for each call kind', () => {
    const result = repairPairing([
      ctc('c'),
      { type: 'apply_patch_call', call_id: 'p' },
      { type: 'local_shell_call', id: 'lsh', call_id: 'l' },
    ]);
    expect(result.added).toEqual([
      { type: 'custom_tool_call_output', call_id: 'c', output: 'aborted' },
      { type: 'apply_patch_call_output', call_id: 'p', status: 'failed', output: 'aborted' },
      { type: 'local_shell_call_output', id: 'l', output: 'aborted' },
    ]);
    expect(analyzePairing(result.items).ok).toBe(true);
  });

  it('drops orphan outputs, duplicate outputs and duplicate calls', () => {
    const orphan = fco('zzz');
    const dupOut = fco('a');
    const dupCall = fc('a');
    const result = repairPairing([orphan, fc('a'), fco('a'), dupOut, dupCall]);
    expect(result.items).toEqual([fc('a'), fco('a')]);
    expect(result.dropped).toEqual([orphan, dupOut, dupCall]);
    expect(result.dropped[0]).toBe(orphan);
    expect(analyzePairing(result.items).ok).toBe(true);
  });

  it('answers an unanswered call of the history at the start of the input', () => {
    const history = [user('u'), fc('a'), ctc('b')];
    const result = repairPairing([user('next')], { history });
    expect(result.items).toEqual([
      { type: 'function_call_output', call_id: 'a', output: 'aborted' },
      { type: 'custom_tool_call_output', call_id: 'b', output: 'aborted' },
      user('next'),
    ]);
    expect(analyzePairing(result.items, { history }).ok).toBe(true);
  });

  it('returns the items it keeps as the same objects, and never mutates its input', () => {
    const input = [user('u'), fc('a'), fco('x')];
    const copy = structuredClone(input);
    const result = repairPairing(input);
    expect(input).toEqual(copy);
    expect(result.items[0]).toBe(input[0]);
    expect(result.items[1]).toBe(input[1]);
  });

  it('leaves a clean input as it is', () => {
    const input = [user('u'), fc('a'), fco('a')];
    expect(repairPairing(input)).toEqual({ items: input, added: [], dropped: [] });
  });

  it('repairs the Codex drop-after-function-call retry shape only where needed', () => {
    const ex = exchangesOf(loadFixture('http-drop-after-fc'));
    const full = inputOf(ex[1]!.request);
    expect(repairPairing(full)).toEqual({ items: full, added: [], dropped: [] });
    const withoutOutput = full.filter((i) => i.type !== 'function_call_output');
    const repaired = repairPairing(withoutOutput);
    expect(repaired.added).toEqual([
      { type: 'function_call_output', call_id: 'call_mock_001', output: 'aborted' },
    ]);
  });
});
