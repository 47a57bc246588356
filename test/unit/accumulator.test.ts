import { MAX_PENDING_CHUNKS, ResponseAccumulator } from '../../lib/protocol/accumulator';
import { toInputItems } from '../../lib/protocol/items';
import type { ResponseItem, ResponseObject, StreamEvent } from '../../lib/protocol/types';
import {
  doneItemsOf,
  exchangesOf,
  fixtureNames,
  inputOf,
  loadFixture,
  type FixtureExchange,
} from '../support/fixtures';

// ---------------------------------------------------------------------------------------------
// Helpers

let seq = 0;
function ev(type: string, fields: Record<string, unknown> = {}): StreamEvent {
  return { type, ...fields, sequence_number: seq++ };
}

function response(
  status: string,
  output?: ResponseItem[],
  extra: Record<string, unknown> = {},
): ResponseObject {
  const r: Record<string, unknown> = { id: 'resp_1', object: 'response', status, ...extra };
  if (output !== undefined) r.output = output;
  return r as ResponseObject;
}

const created = () => ev('response.created', { response: response('in_progress', []) });
const added = (index: number, item: ResponseItem) =>
  ev('response.output_item.added', { output_index: index, item });
const done = (index: number, item: ResponseItem) =>
  ev('response.output_item.done', { output_index: index, item });
const scoped = (type: string, index: number, id: string, fields: Record<string, unknown> = {}) =>
  ev(type, { item_id: id, output_index: index, ...fields });

function feed(events: readonly StreamEvent[]): ResponseAccumulator {
  const acc = new ResponseAccumulator();
  for (const e of events) acc.push(e);
  return acc;
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}

const message = (id: string, text: string, status = 'completed'): ResponseItem => ({
  id,
  type: 'message',
  status,
  role: 'assistant',
  content: [{ type: 'output_text', text, annotations: [] }],
});

/** A whole message streamed with deltas (and, by default, every .done event). */
function messageEvents(
  index: number,
  id: string,
  chunks: string[],
  withDone = true,
): StreamEvent[] {
  const text = chunks.join('');
  const out: StreamEvent[] = [
    added(index, { id, type: 'message', status: 'in_progress', role: 'assistant', content: [] }),
    scoped('response.content_part.added', index, id, {
      content_index: 0,
      part: { type: 'output_text', text: '', annotations: [] },
    }),
    ...chunks.map((delta) =>
      scoped('response.output_text.delta', index, id, { content_index: 0, delta, logprobs: [] }),
    ),
  ];
  if (withDone) {
    out.push(
      scoped('response.output_text.done', index, id, { content_index: 0, text, logprobs: [] }),
      scoped('response.content_part.done', index, id, {
        content_index: 0,
        part: { type: 'output_text', text, annotations: [] },
      }),
      done(index, message(id, text)),
    );
  }
  return out;
}

const functionCall = (
  id: string,
  callId: string,
  args: string,
  status = 'completed',
): ResponseItem => ({
  id,
  type: 'function_call',
  status,
  arguments: args,
  call_id: callId,
  name: 'exec_command',
});

function functionCallEvents(
  index: number,
  id: string,
  callId: string,
  chunks: string[],
  withDone = true,
): StreamEvent[] {
  const args = chunks.join('');
  const out: StreamEvent[] = [
    added(index, functionCall(id, callId, '', 'in_progress')),
    ...chunks.map((delta) =>
      scoped('response.function_call_arguments.delta', index, id, { delta }),
    ),
  ];
  if (withDone) {
    out.push(
      scoped('response.function_call_arguments.done', index, id, { arguments: args }),
      done(index, functionCall(id, callId, args)),
    );
  }
  return out;
}

// ---------------------------------------------------------------------------------------------

describe('ResponseAccumulator on the captured Codex streams', () => {
  const streams: Array<[string, FixtureExchange]> = [];
  for (const name of fixtureNames()) {
    exchangesOf(loadFixture(name)).forEach((exchange, i) => {
      if (exchange.events.length > 0) streams.push([`${name} #${i}`, exchange]);
    });
  }

  it('finds streams to replay in the fixtures', () => {
    expect(streams.length).toBeGreaterThan(50);
  });

  it.each(streams)('reproduces the output_item.done items of %s', (_name, exchange) => {
    const acc = feed(exchange.events);
    expect(acc.completedItems()).toEqual(doneItemsOf(exchange.events));
    // Every item Codex was sent got its output_item.done, even in the cut streams.
    expect(acc.items()).toEqual(doneItemsOf(exchange.events));
    const completed = exchange.events.find((e) => e.type === 'response.completed') as
      { response: ResponseObject } | undefined;
    if (completed !== undefined) {
      const final = acc.finalResponse()!;
      expect(final.id).toBe(completed.response.id);
      expect(final.status).toBe('completed');
      expect(final.usage).toEqual(completed.response.usage);
      const expected =
        completed.response.output.length > 0
          ? completed.response.output
          : doneItemsOf(exchange.events);
      expect(final.output).toEqual(expected);
    }
  });

  it('keeps the output of a response.completed that arrived alone (shape-completed-only)', () => {
    const [exchange] = exchangesOf(loadFixture('http-shape-completed-only'));
    const acc = feed(exchange!.events);
    expect(acc.items()).toEqual([]);
    expect(acc.started).toBe(false);
    expect(acc.outputStarted).toBe(false);
    expect(acc.finalResponse()!.output).toHaveLength(1);
    expect(acc.responseId).toBe('resp_mock_001');
  });

  it('takes the items of a stream with only output_item.done and completed (shape-minimal)', () => {
    const [exchange] = exchangesOf(loadFixture('http-shape-minimal'));
    const acc = feed(exchange!.events);
    expect(acc.started).toBe(false);
    expect(acc.outputStarted).toBe(true);
    expect(acc.completedItems()).toEqual(doneItemsOf(exchange!.events));
  });

  it('keeps the function call of a stream cut after its output_item.done (drop-after-fc)', () => {
    const [first] = exchangesOf(loadFixture('http-drop-after-fc'));
    expect(first!.dropped).toBe(true);
    const acc = feed(first!.events);
    expect(acc.terminal).toBeUndefined();
    expect(acc.finalResponse()).toBeUndefined();
    expect(acc.completedItems()).toMatchObject([
      { type: 'function_call', call_id: 'call_mock_001' },
    ]);
    expect(acc.snapshot()).toMatchObject({
      id: 'resp_mock_001',
      status: 'in_progress',
      output: acc.items(),
    });
  });

  it('records a response.failed as the terminal, without output', () => {
    const [exchange] = exchangesOf(loadFixture('http-midstream-response-failed'));
    const acc = feed(exchange!.events);
    expect(acc.terminal?.type).toBe('response.failed');
    expect(acc.outputStarted).toBe(false);
    expect(acc.finalResponse()).toMatchObject({
      status: 'failed',
      output: [],
      error: { code: 'server_error' },
    });
  });

  describe('expansion rule (codex-wire.md §0.4): prewarm.input ++ turn.input ++ outputs ++ delta = the full re-sent input', () => {
    const outputsOf = (exchange: FixtureExchange) =>
      toInputItems(feed(exchange.events).completedItems());

    it('holds in ws-drop-after-fc (the retry after the drop resends everything)', () => {
      const ex = exchangesOf(loadFixture('ws-drop-after-fc'));
      const [prewarm, turn, retry] = ex;
      expect(prewarm!.request.generate).toBe(false);
      expect(retry!.conn).toBe(2);
      expect(retry!.request.previous_response_id).toBeUndefined();
      const expanded = [
        ...inputOf(prewarm!.request),
        ...inputOf(turn!.request),
        ...outputsOf(turn!),
      ];
      const full = inputOf(retry!.request);
      expect(full.slice(0, expanded.length)).toEqual(expanded);
      expect(full.slice(expanded.length).map((i) => i.type)).toEqual(['function_call_output']);
    });

    it('holds in ws-resume-second-process (the new process chains its history on a new prewarm)', () => {
      const ex = exchangesOf(loadFixture('ws-resume-second-process'));
      const first = ex.filter((e) => e.conn === 1);
      const second = ex.filter((e) => e.conn === 2);
      // First connection: prewarm, turn, tool-output delta. Second: prewarm, full turn, delta.
      const history: ResponseItem[] = [];
      for (const exchange of first.slice(1))
        history.push(...inputOf(exchange.request), ...outputsOf(exchange));
      const resumed = inputOf(second[1]!.request);
      expect(second[1]!.request.previous_response_id).toBe(second[0]!.responseId);
      expect(resumed.slice(0, history.length)).toEqual(history);
      expect(resumed.slice(history.length)).toMatchObject([{ type: 'message', role: 'user' }]);
      expect(inputOf(second[0]!.request)).toHaveLength(inputOf(first[0]!.request).length);
    });

    it('holds over HTTP in http-drop-after-fc (the retry appends the call and its output)', () => {
      const [first, retry] = exchangesOf(loadFixture('http-drop-after-fc'));
      const expanded = [...inputOf(first!.request), ...outputsOf(first!)];
      const full = inputOf(retry!.request);
      expect(full.slice(0, expanded.length)).toEqual(expanded);
      expect(full.slice(expanded.length)).toMatchObject([
        { type: 'function_call_output', call_id: 'call_mock_001' },
      ]);
    });
  });
});

describe('ResponseAccumulator lifecycle', () => {
  it('takes the response id and started from response.created', () => {
    const acc = feed([created()]);
    expect(acc.responseId).toBe('resp_1');
    expect(acc.started).toBe(true);
    expect(acc.terminal).toBeUndefined();
    expect(acc.outputStarted).toBe(false);
  });

  it('takes the response id from the first lifecycle event when created is missing', () => {
    const acc = feed([
      ev('response.in_progress', { response: response('in_progress', [], { id: 'resp_X' }) }),
    ]);
    expect(acc.responseId).toBe('resp_X');
    expect(acc.started).toBe(false);
  });

  it('keeps the first response id even if a later lifecycle event changes it', () => {
    const acc = feed([
      created(),
      ev('response.in_progress', { response: response('in_progress', [], { id: 'resp_2' }) }),
    ]);
    expect(acc.responseId).toBe('resp_1');
  });

  it('tracks the last sequence number', () => {
    const acc = new ResponseAccumulator();
    expect(acc.lastSequenceNumber).toBeUndefined();
    acc.push({
      type: 'response.created',
      response: response('in_progress', []),
      sequence_number: 7,
    });
    acc.push({ type: 'keepalive' });
    expect(acc.lastSequenceNumber).toBe(7);
    acc.push({ type: 'keepalive', sequence_number: 9 });
    expect(acc.lastSequenceNumber).toBe(9);
  });

  it('is not outputStarted on lifecycle, error, keepalive or vendor events', () => {
    const acc = feed([
      created(),
      ev('response.in_progress', { response: response('in_progress', []) }),
      ev('keepalive'),
      ev('codex.rate_limits', { primary: {} }),
      ev('error', { error: { type: 'server_error', message: 'x' } }),
    ]);
    expect(acc.outputStarted).toBe(false);
  });

  it('is outputStarted after an output_item.added, or any event addressed to an item', () => {
    expect(
      feed([created(), added(0, { type: 'message', role: 'assistant', content: [] })])
        .outputStarted,
    ).toBe(true);
    expect(
      feed([created(), scoped('response.output_text.delta', 0, 'msg', { delta: 'x' })])
        .outputStarted,
    ).toBe(true);
    expect(
      feed([created(), ev('response.web_search_call.searching', { item_id: 'ws_1' })])
        .outputStarted,
    ).toBe(true);
  });

  it('records the first terminal event and ignores later lifecycle events', () => {
    const completed = ev('response.completed', { response: response('completed', []) });
    const acc = feed([
      created(),
      completed,
      ev('response.failed', { response: response('failed', []) }),
    ]);
    expect(acc.terminal).toBe(completed);
    expect(acc.finalResponse()?.status).toBe('completed');
  });

  it('records a terminal event without a response object, rebuilding its response', () => {
    const fcEvents = functionCallEvents(0, 'fc_1', 'call_1', ['{}']);
    const acc = feed([created(), ...fcEvents, ev('response.completed')]);
    expect(acc.terminal?.type).toBe('response.completed');
    expect(acc.finalResponse()).toMatchObject({
      id: 'resp_1',
      object: 'response',
      status: 'completed',
      output: [functionCall('fc_1', 'call_1', '{}')],
    });
  });
});

describe('ResponseAccumulator items', () => {
  it('lists completed items in output_index order, whatever the arrival order, with gaps', () => {
    const acc = feed([
      created(),
      ...messageEvents(5, 'msg_b', ['b']),
      ...messageEvents(2, 'msg_a', ['a']),
      ...functionCallEvents(9, 'fc_c', 'call_c', ['{}']),
    ]);
    expect(acc.completedItems().map((i) => i.id)).toEqual(['msg_a', 'msg_b', 'fc_c']);
    expect(acc.items().map((i) => i.id)).toEqual(['msg_a', 'msg_b', 'fc_c']);
  });

  it('interleaves parallel items correctly', () => {
    const a = functionCallEvents(0, 'fc_a', 'call_a', ['{"x":', '1}']);
    const b = functionCallEvents(1, 'fc_b', 'call_b', ['{"y":', '2}']);
    const mixed: StreamEvent[] = [];
    for (let i = 0; i < Math.max(a.length, b.length); i++) {
      if (a[i]) mixed.push(a[i]!);
      if (b[i]) mixed.push(b[i]!);
    }
    const acc = feed([created(), ...mixed]);
    expect(acc.completedItems()).toEqual([
      functionCall('fc_a', 'call_a', '{"x":1}'),
      functionCall('fc_b', 'call_b', '{"y":2}'),
    ]);
  });

  it('ignores a second output_item.added at an index already in use', () => {
    const acc = feed([
      created(),
      added(0, { id: 'msg_first', type: 'message', role: 'assistant', content: [] }),
      added(0, { id: 'msg_second', type: 'message', role: 'assistant', content: [] }),
    ]);
    expect(acc.items().map((i) => i.id)).toEqual(['msg_first']);
  });

  it('lets an output_item.done replace the item at its index', () => {
    const acc = feed([
      created(),
      added(0, functionCall('fc_1', 'call_1', '', 'in_progress')),
      done(0, functionCall('fc_1', 'call_1', '{}')),
    ]);
    expect(acc.items()).toEqual([functionCall('fc_1', 'call_1', '{}')]);
  });

  it('rebuilds an in-progress message from its deltas', () => {
    const acc = feed([created(), ...messageEvents(0, 'msg_1', ['Hel', 'lo', ' world'], false)]);
    expect(acc.completedItems()).toEqual([]);
    expect(acc.items()).toEqual([message('msg_1', 'Hello world', 'in_progress')]);
  });

  it('rebuilds text from deltas even without content_part.added', () => {
    const acc = feed([
      created(),
      added(0, {
        id: 'msg_1',
        type: 'message',
        status: 'in_progress',
        role: 'assistant',
        content: [],
      }),
      scoped('response.output_text.delta', 0, 'msg_1', { content_index: 0, delta: 'a' }),
      scoped('response.output_text.delta', 0, 'msg_1', { content_index: 0, delta: 'b' }),
    ]);
    expect(acc.items()).toEqual([message('msg_1', 'ab', 'in_progress')]);
  });

  it('lets output_text.done override the deltas', () => {
    const acc = feed([
      created(),
      ...messageEvents(0, 'msg_1', ['wrong'], false),
      scoped('response.output_text.done', 0, 'msg_1', { content_index: 0, text: 'right' }),
      scoped('response.output_text.delta', 0, 'msg_1', { content_index: 0, delta: ' late' }),
    ]);
    expect(acc.items()).toEqual([message('msg_1', 'right', 'in_progress')]);
  });

  it('lets content_part.done override the deltas and the text done', () => {
    const acc = feed([
      created(),
      ...messageEvents(0, 'msg_1', ['a'], false),
      scoped('response.output_text.done', 0, 'msg_1', { content_index: 0, text: 'b' }),
      scoped('response.content_part.done', 0, 'msg_1', {
        content_index: 0,
        part: { type: 'output_text', text: 'c', annotations: [{ type: 'url_citation' }] },
      }),
    ]);
    expect(acc.items()[0]).toMatchObject({
      content: [{ type: 'output_text', text: 'c', annotations: [{ type: 'url_citation' }] }],
    });
  });

  it('adds annotations from output_text.annotation.added', () => {
    const acc = feed([
      created(),
      ...messageEvents(0, 'msg_1', ['x'], false),
      scoped('response.output_text.annotation.added', 0, 'msg_1', {
        content_index: 0,
        annotation_index: 0,
        annotation: { type: 'url_citation', url: 'https://example.com' },
      }),
    ]);
    expect(acc.items()[0]).toMatchObject({
      content: [
        {
          type: 'output_text',
          text: 'x',
          annotations: [{ type: 'url_citation', url: 'https://example.com' }],
        },
      ],
    });
  });

  it('rebuilds a refusal part', () => {
    const acc = feed([
      created(),
      added(0, {
        id: 'msg_1',
        type: 'message',
        status: 'in_progress',
        role: 'assistant',
        content: [],
      }),
      scoped('response.content_part.added', 0, 'msg_1', {
        content_index: 0,
        part: { type: 'refusal', refusal: '' },
      }),
      scoped('response.refusal.delta', 0, 'msg_1', { content_index: 0, delta: "I can't " }),
      scoped('response.refusal.delta', 0, 'msg_1', { content_index: 0, delta: 'help.' }),
    ]);
    expect(acc.items()[0]).toMatchObject({
      content: [{ type: 'refusal', refusal: "I can't help." }],
    });
    acc.push(scoped('response.refusal.done', 0, 'msg_1', { content_index: 0, refusal: 'No.' }));
    expect(acc.items()[0]).toMatchObject({ content: [{ type: 'refusal', refusal: 'No.' }] });
  });

  it('rebuilds function call arguments from deltas, and takes them from .done', () => {
    const acc = feed([
      created(),
      ...functionCallEvents(0, 'fc_1', 'call_1', ['{"cmd":', '"ls"}'], false),
    ]);
    expect(acc.items()).toEqual([functionCall('fc_1', 'call_1', '{"cmd":"ls"}', 'in_progress')]);
    acc.push(
      scoped('response.function_call_arguments.done', 0, 'fc_1', { arguments: '{"cmd":"pwd"}' }),
    );
    expect(acc.items()).toEqual([functionCall('fc_1', 'call_1', '{"cmd":"pwd"}', 'in_progress')]);
  });

  it('rebuilds custom tool call input', () => {
    const acc = feed([
      created(),
      added(0, {
        id: 'ctc_1',
        type: 'custom_tool_call',
        status: 'in_progress',
        call_id: 'call_1',
        name: 'apply_patch',
        input: '',
      }),
      scoped('response.custom_tool_call_input.delta', 0, 'ctc_1', { delta: '*** Begin' }),
      scoped('response.custom_tool_call_input.delta', 0, 'ctc_1', { delta: ' Patch' }),
    ]);
    expect(acc.items()[0]).toMatchObject({ input: '*** Begin Patch' });
    acc.push(scoped('response.custom_tool_call_input.done', 0, 'ctc_1', { input: 'final' }));
    expect(acc.items()[0]).toMatchObject({ input: 'final' });
  });

  it('rebuilds MCP call arguments and code interpreter code', () => {
    const acc = feed([
      created(),
      added(0, { id: 'mcp_1', type: 'mcp_call', arguments: '', name: 'n', server_label: 's' }),
      scoped('response.mcp_call_arguments.delta', 0, 'mcp_1', { delta: '{"a"' }),
      scoped('response.mcp_call_arguments.delta', 0, 'mcp_1', { delta: ':1}' }),
      added(1, { id: 'ci_1', type: 'code_interpreter_call', status: 'in_progress', code: null }),
      scoped('response.code_interpreter_call_code.delta', 1, 'ci_1', { delta: 'print(' }),
      scoped('response.code_interpreter_call_code.delta', 1, 'ci_1', { delta: '1)' }),
    ]);
    expect(acc.items()).toMatchObject([{ arguments: '{"a":1}' }, { code: 'print(1)' }]);
  });

  it('rebuilds reasoning summaries and reasoning text', () => {
    const acc = feed([
      created(),
      added(0, { id: 'rs_1', type: 'reasoning', summary: [] }),
      scoped('response.reasoning_summary_part.added', 0, 'rs_1', {
        summary_index: 0,
        part: { type: 'summary_text', text: '' },
      }),
      scoped('response.reasoning_summary_text.delta', 0, 'rs_1', {
        summary_index: 0,
        delta: 'Think',
      }),
      scoped('response.reasoning_summary_text.delta', 0, 'rs_1', {
        summary_index: 0,
        delta: 'ing',
      }),
      scoped('response.reasoning_summary_part.added', 0, 'rs_1', {
        summary_index: 1,
        part: { type: 'summary_text', text: '' },
      }),
      scoped('response.reasoning_summary_text.done', 0, 'rs_1', {
        summary_index: 1,
        text: 'Second',
      }),
      scoped('response.content_part.added', 0, 'rs_1', {
        content_index: 0,
        part: { type: 'reasoning_text', text: '' },
      }),
      scoped('response.reasoning_text.delta', 0, 'rs_1', { content_index: 0, delta: 'raw ' }),
      scoped('response.reasoning_text.delta', 0, 'rs_1', { content_index: 0, delta: 'text' }),
    ]);
    expect(acc.items()).toEqual([
      {
        id: 'rs_1',
        type: 'reasoning',
        summary: [
          { type: 'summary_text', text: 'Thinking' },
          { type: 'summary_text', text: 'Second' },
        ],
        content: [{ type: 'reasoning_text', text: 'raw text' }],
      },
    ]);
    acc.push(
      scoped('response.reasoning_summary_part.done', 0, 'rs_1', {
        summary_index: 0,
        part: { type: 'summary_text', text: 'Final' },
      }),
    );
    expect(acc.items()[0]).toMatchObject({ summary: [{ text: 'Final' }, { text: 'Second' }] });
  });

  it('renders parts and annotations at an index of 2^31 in index order, the event loop free', async () => {
    const huge = 2 ** 31;
    const acc = feed([
      created(),
      added(0, {
        id: 'msg_1',
        type: 'message',
        status: 'in_progress',
        role: 'assistant',
        content: [],
      }),
      scoped('response.output_text.delta', 0, 'msg_1', { content_index: huge, delta: 'last' }),
      scoped('response.output_text.delta', 0, 'msg_1', { content_index: 0, delta: 'first' }),
      scoped('response.output_text.annotation.added', 0, 'msg_1', {
        content_index: 0,
        annotation_index: huge,
        annotation: { type: 'url_citation', url: 'https://b.example' },
      }),
      scoped('response.output_text.annotation.added', 0, 'msg_1', {
        content_index: 0,
        annotation_index: 0,
        annotation: { type: 'url_citation', url: 'https://a.example' },
      }),
    ]);
    // What a stream cut before its terminal event answers with.
    const output = acc.snapshot().output;
    // A render that walked the index range would hold the event loop for minutes: the next timer
    // would be jest's timeout, failing the test.
    await new Promise((resolve) => setTimeout(resolve, 0));
    const content = (output[0]?.content ?? []) as Array<{ text: string; annotations: unknown[] }>;
    // Lengths first: a sparse list of 2^31 entries is too big for a diff.
    expect(content.map((part) => [part.text, part.annotations.length])).toEqual([
      ['first', 2],
      ['last', 0],
    ]);
    expect(output).toEqual([
      {
        id: 'msg_1',
        type: 'message',
        status: 'in_progress',
        role: 'assistant',
        content: [
          {
            type: 'output_text',
            text: 'first',
            annotations: [
              { type: 'url_citation', url: 'https://a.example' },
              { type: 'url_citation', url: 'https://b.example' },
            ],
          },
          { type: 'output_text', text: 'last', annotations: [] },
        ],
      },
    ]);
  });

  it('keeps parts, summary parts and annotations at indexes past the array range', () => {
    const huge = Number.MAX_SAFE_INTEGER;
    const acc = feed([
      created(),
      added(0, { id: 'rs_1', type: 'reasoning', summary: [] }),
      scoped('response.reasoning_summary_text.delta', 0, 'rs_1', {
        summary_index: huge,
        delta: 'late',
      }),
      scoped('response.reasoning_summary_text.delta', 0, 'rs_1', {
        summary_index: 2 ** 32,
        delta: 'early',
      }),
      added(1, {
        id: 'msg_1',
        type: 'message',
        status: 'in_progress',
        role: 'assistant',
        content: [],
      }),
      scoped('response.output_text.delta', 1, 'msg_1', { content_index: huge, delta: 'x' }),
      scoped('response.output_text.annotation.added', 1, 'msg_1', {
        content_index: huge,
        annotation_index: huge,
        annotation: { type: 'url_citation', url: 'https://a.example' },
      }),
    ]);
    expect(acc.items()).toEqual([
      {
        id: 'rs_1',
        type: 'reasoning',
        summary: [
          { type: 'summary_text', text: 'early' },
          { type: 'summary_text', text: 'late' },
        ],
      },
      {
        id: 'msg_1',
        type: 'message',
        status: 'in_progress',
        role: 'assistant',
        content: [
          {
            type: 'output_text',
            text: 'x',
            annotations: [{ type: 'url_citation', url: 'https://a.example' }],
          },
        ],
      },
    ]);
  });

  it('ignores a delta aimed at an item of another type, or at an index never added', () => {
    const acc = feed([
      created(),
      ...functionCallEvents(0, 'fc_1', 'call_1', ['{}'], false),
      scoped('response.output_text.delta', 0, 'fc_1', { content_index: 0, delta: 'text' }),
      scoped('response.output_text.delta', 3, 'msg_x', { content_index: 0, delta: 'text' }),
      scoped('response.reasoning_text.delta', 0, 'fc_1', { content_index: 0, delta: 'text' }),
    ]);
    expect(acc.items()).toEqual([functionCall('fc_1', 'call_1', '{}', 'in_progress')]);
  });

  it('places an item-scoped event without output_index by its item_id', () => {
    const acc = feed([
      created(),
      added(0, functionCall('fc_1', 'call_1', '', 'in_progress')),
      ev('response.function_call_arguments.delta', { item_id: 'fc_1', delta: '{"a":1}' }),
    ]);
    expect(acc.items()[0]).toMatchObject({ arguments: '{"a":1}' });
  });

  it('ignores deltas for an item that is already done', () => {
    const acc = feed([created(), ...functionCallEvents(0, 'fc_1', 'call_1', ['{}'])]);
    acc.push(scoped('response.function_call_arguments.delta', 0, 'fc_1', { delta: 'junk' }));
    expect(acc.items()).toEqual([functionCall('fc_1', 'call_1', '{}')]);
  });

  it('never mutates the events it is given (frozen events work)', () => {
    const events = deepFreeze([
      created(),
      ...messageEvents(0, 'msg_1', ['a', 'b'], false),
      ...functionCallEvents(1, 'fc_1', 'call_1', ['{', '}']),
      ev('response.completed', { response: response('completed', []) }),
    ]);
    const copy = structuredClone(events);
    const acc = feed(events);
    acc.items();
    acc.snapshot();
    acc.finalResponse();
    expect(events).toEqual(copy);
  });

  it('never throws on odd input', () => {
    const acc = new ResponseAccumulator();
    const odd: unknown[] = [
      null,
      undefined,
      42,
      'response.created',
      [],
      {},
      { type: 7 },
      { type: 'response.created' },
      { type: 'response.created', response: 'nope' },
      { type: 'response.output_item.added' },
      { type: 'response.output_item.added', output_index: -1, item: {} },
      { type: 'response.output_item.added', output_index: 1.5, item: {} },
      { type: 'response.output_item.added', output_index: 0, item: null },
      {
        type: 'response.output_item.added',
        output_index: 0,
        item: { type: 'message', content: 'not a list' },
      },
      { type: 'response.content_part.added', output_index: 0, content_index: 0, part: null },
      {
        type: 'response.content_part.added',
        output_index: 0,
        content_index: 'x',
        part: { type: 'output_text' },
      },
      { type: 'response.output_text.delta', output_index: 0, content_index: 0, delta: 5 },
      { type: 'response.output_text.delta', output_index: 0, content_index: 0, delta: 'ok' },
      {
        type: 'response.output_text.annotation.added',
        output_index: 0,
        content_index: 0,
        annotation_index: 'z',
      },
      { type: 'response.output_item.done', output_index: 0, item: 'str' },
      { type: 'response.completed', response: null },
      { type: 'response.completed', response: { output: 'not a list' } },
    ];
    for (const e of odd) expect(() => acc.push(e as StreamEvent)).not.toThrow();
    expect(() => acc.items()).not.toThrow();
    expect(() => acc.snapshot()).not.toThrow();
    expect(acc.items()).toMatchObject([
      { type: 'message', content: [{ type: 'output_text', text: 'ok' }] },
    ]);
  });
});

describe('ResponseAccumulator snapshot and finalResponse', () => {
  it('has no final response before the terminal event', () => {
    const acc = feed([created(), ...messageEvents(0, 'msg_1', ['x'])]);
    expect(acc.finalResponse()).toBeUndefined();
  });

  it('snapshots the last lifecycle response with the items so far', () => {
    const acc = feed([
      created(),
      ev('response.in_progress', { response: response('in_progress', [], { model: 'gpt-5.5' }) }),
      ...messageEvents(0, 'msg_1', ['par', 'tial'], false),
    ]);
    expect(acc.snapshot()).toEqual({
      id: 'resp_1',
      object: 'response',
      status: 'in_progress',
      model: 'gpt-5.5',
      output: [message('msg_1', 'partial', 'in_progress')],
    });
  });

  it('snapshots a minimal in-progress Response when no lifecycle event was seen', () => {
    const acc = feed(messageEvents(0, 'msg_1', ['x']));
    expect(acc.snapshot()).toEqual({
      id: '',
      object: 'response',
      status: 'in_progress',
      output: [message('msg_1', 'x')],
    });
  });

  it('snapshots the final response once the terminal arrived', () => {
    const acc = feed([
      created(),
      ...messageEvents(0, 'msg_1', ['x']),
      ev('response.completed', { response: response('completed', []) }),
    ]);
    expect(acc.snapshot()).toEqual(acc.finalResponse());
  });

  it('keeps a non-empty completed output as the upstream sent it', () => {
    const output = [message('msg_1', 'from completed')];
    const acc = feed([
      created(),
      ...messageEvents(0, 'msg_1', ['streamed']),
      ev('response.completed', { response: response('completed', output) }),
    ]);
    expect(acc.finalResponse()!.output).toEqual(output);
  });

  it('rebuilds an empty completed output from the streamed items, keeping usage, status and id', () => {
    const usage = { input_tokens: 1, output_tokens: 2, total_tokens: 3 };
    const acc = feed([
      created(),
      ...messageEvents(0, 'msg_1', ['a']),
      ...functionCallEvents(1, 'fc_1', 'call_1', ['{}']),
      ev('response.completed', { response: response('completed', [], { usage }) }),
    ]);
    expect(acc.finalResponse()).toEqual({
      id: 'resp_1',
      object: 'response',
      status: 'completed',
      usage,
      output: [message('msg_1', 'a'), functionCall('fc_1', 'call_1', '{}')],
    });
  });

  it('rebuilds a missing completed output', () => {
    const acc = feed([
      created(),
      ...messageEvents(0, 'msg_1', ['a']),
      ev('response.completed', { response: response('completed') }),
    ]);
    expect(acc.finalResponse()!.output).toEqual([message('msg_1', 'a')]);
  });

  it('gives a missing output an empty list when nothing was streamed', () => {
    const acc = feed([created(), ev('response.completed', { response: response('completed') })]);
    expect(acc.finalResponse()!.output).toEqual([]);
  });

  it('keeps an empty output when nothing was streamed', () => {
    const terminal = response('completed', []);
    const acc = feed([created(), ev('response.completed', { response: terminal })]);
    expect(acc.finalResponse()).toEqual(terminal);
  });

  it('rebuilds a failed or incomplete output from completed items only', () => {
    for (const status of ['failed', 'incomplete']) {
      const acc = feed([
        created(),
        ...messageEvents(0, 'msg_1', ['done']),
        ...messageEvents(1, 'msg_2', ['half'], false),
        ev(`response.${status}`, { response: response(status, []) }),
      ]);
      expect(acc.finalResponse()).toMatchObject({ status, output: [message('msg_1', 'done')] });
    }
  });

  it('leaves the terminal event object untouched', () => {
    const terminal = ev('response.completed', { response: response('completed', []) });
    const acc = feed([created(), ...messageEvents(0, 'msg_1', ['a']), terminal]);
    acc.finalResponse();
    expect((terminal as { response: ResponseObject }).response.output).toEqual([]);
  });
});

describe('ResponseAccumulator memory', () => {
  it('joins deltas lazily into one string per part when read', () => {
    const chunks = Array.from({ length: MAX_PENDING_CHUNKS / 2 }, (_, i) => String(i % 10));
    const acc = feed([
      created(),
      ...messageEvents(0, 'msg_1', chunks, false),
      ...functionCallEvents(1, 'fc_1', 'c', chunks, false),
    ]);
    expect(acc.bufferedChunks).toBe(MAX_PENDING_CHUNKS);
    expect(acc.items()[0]).toMatchObject({ content: [{ text: chunks.join('') }] });
    expect(acc.bufferedChunks).toBe(2);
    acc.push(scoped('response.output_text.delta', 0, 'msg_1', { content_index: 0, delta: '!' }));
    expect(acc.bufferedChunks).toBe(3);
    expect(acc.items()[0]).toMatchObject({ content: [{ text: chunks.join('') + '!' }] });
  });

  it('never keeps more than MAX_PENDING_CHUNKS deltas of one text, however many arrive', () => {
    const count = MAX_PENDING_CHUNKS * 3 + 5;
    const chunks = Array.from({ length: count }, () => 'ab');
    const acc = feed([created(), ...functionCallEvents(0, 'fc_1', 'c', chunks, false)]);
    expect(acc.bufferedChunks).toBeLessThan(MAX_PENDING_CHUNKS);
    expect(acc.items()[0]).toMatchObject({ arguments: 'ab'.repeat(count) });
    expect(acc.bufferedChunks).toBe(1);
  });

  it('drops the delta buffers of a part on its .done, and of an item on output_item.done', () => {
    const acc = feed([created(), ...messageEvents(0, 'msg_1', ['a', 'b', 'c'], false)]);
    expect(acc.bufferedChunks).toBe(3);
    acc.push(scoped('response.output_text.done', 0, 'msg_1', { content_index: 0, text: 'abc' }));
    expect(acc.bufferedChunks).toBe(0);
    const acc2 = feed([created(), ...functionCallEvents(0, 'fc_1', 'c', ['{', '}'], false)]);
    expect(acc2.bufferedChunks).toBe(2);
    acc2.push(done(0, functionCall('fc_1', 'c', '{}')));
    expect(acc2.bufferedChunks).toBe(0);
  });
});
