/**
 * The sseCompletion stage, driven through the real ResponsePipeline with an in-memory client:
 * pass-through, rebuilt completions, relay-closed streams, a `response.created` first, ids with
 * their type prefixes, increasing sequence numbers, the idle timer and the end after a terminal.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Exchange, type StreamEnd } from '../../lib/middleware/exchange';
import { ResponsePipeline, type ClientSink } from '../../lib/middleware/response-pipeline';
import {
  createSseCompletionStage,
  type SseCompletionOptions,
} from '../../lib/middleware/sse-completion';
import { MemoryItemIdAliases } from '../../lib/middleware/sse-completion-ids';
import { DEFAULT_MAX_LINE_LENGTH, SseParser } from '../../lib/protocol/sse';
import type { JsonObject, ResponseItem, StreamEvent } from '../../lib/protocol/types';

// --- harness ------------------------------------------------------------------------------------

const frame = (event: JsonObject): string =>
  `event: ${String(event.type)}\ndata: ${JSON.stringify(event)}\n\n`;

interface Run {
  text: string;
  events: StreamEvent[];
  types: string[];
  exchange: Exchange;
  upstreamAborts: number;
  status: number;
}

interface RunOptions {
  /** How the upstream body ends; `'never'`: it does not (the stage must end it). */
  end?: StreamEnd | 'never';
  aggregate?: boolean;
}

async function run(
  input: Array<JsonObject | string>,
  options: SseCompletionOptions = {},
  how: RunOptions = {},
): Promise<Run> {
  const exchange = new Exchange(
    { headers: {} } as IncomingMessage,
    { locals: {} } as unknown as ServerResponse,
  );
  exchange.aggregateStream = how.aggregate ?? false;
  exchange.addStage('sse-completion', (ex) =>
    createSseCompletionStage(ex, { terminalGraceMs: 0, ...options }),
  );
  const written: string[] = [];
  let status = 0;
  let ended = false;
  let onEnded: () => void = () => undefined;
  const endedPromise = new Promise<void>((resolve) => (onEnded = resolve));
  const sink: ClientSink = {
    writeHead: (code) => {
      status = code;
    },
    write: (chunk) => {
      written.push(String(chunk));
      return true;
    },
    end: () => {
      ended = true;
      onEnded();
    },
    onDrain: () => undefined,
    get closed() {
      return ended;
    },
  };
  const pipeline = new ResponsePipeline(exchange, sink);
  let upstreamAborts = 0;
  pipeline.setUpstreamAbort(() => {
    upstreamAborts += 1;
  });
  pipeline.begin(200, { 'content-type': 'text/event-stream' });
  for (const piece of input) {
    pipeline.push(Buffer.from(typeof piece === 'string' ? piece : frame(piece)));
  }
  if (how.end !== 'never') await pipeline.finish(how.end ?? { kind: 'eof' });
  await endedPromise;
  const text = written.join('');
  const events: StreamEvent[] = [];
  if (!exchange.aggregateStream) {
    const parser = new SseParser({
      onMessage: (message) => events.push(JSON.parse(message.data) as StreamEvent),
    });
    parser.push(text);
    parser.end();
  }
  return { text, events, types: events.map((e) => e.type), exchange, upstreamAborts, status };
}

// --- a stream like the API's --------------------------------------------------------------------

const base = { id: 'resp_1', object: 'response', model: 'gpt-5' };
const usage = { input_tokens: 10, output_tokens: 5, total_tokens: 15 };
const created = {
  type: 'response.created',
  response: { ...base, status: 'in_progress', output: [] },
};
const inProgress = { ...created, type: 'response.in_progress' };

const message = (id: string | undefined, text: string): ResponseItem => ({
  type: 'message',
  ...(id === undefined ? {} : { id }),
  role: 'assistant',
  status: 'completed',
  content: [{ type: 'output_text', text, annotations: [] }],
});
const call = (id: string | undefined, callId: string, args: string): ResponseItem => ({
  type: 'function_call',
  ...(id === undefined ? {} : { id }),
  call_id: callId,
  name: 'exec_command',
  arguments: args,
  status: 'completed',
});

function messageEvents(index: number, item: ResponseItem, deltas: string[], eventId?: string) {
  const id = eventId ?? (item.id as string);
  const text = deltas.join('');
  return [
    {
      type: 'response.output_item.added',
      output_index: index,
      item: { ...item, status: 'in_progress', content: [] },
    },
    {
      type: 'response.content_part.added',
      item_id: id,
      output_index: index,
      content_index: 0,
      part: { type: 'output_text', text: '', annotations: [] },
    },
    ...deltas.map((delta) => ({
      type: 'response.output_text.delta',
      item_id: id,
      output_index: index,
      content_index: 0,
      delta,
    })),
    {
      type: 'response.output_text.done',
      item_id: id,
      output_index: index,
      content_index: 0,
      text,
    },
    { type: 'response.output_item.done', output_index: index, item },
  ];
}

function callEvents(index: number, item: ResponseItem, eventId?: string, addedId?: string | null) {
  const id = eventId ?? (item.id as string);
  const args = item.arguments as string;
  const addedItem: JsonObject = { ...item, status: 'in_progress', arguments: '' };
  if (addedId === null) delete addedItem.id;
  else if (addedId !== undefined) addedItem.id = addedId;
  return [
    { type: 'response.output_item.added', output_index: index, item: addedItem },
    {
      type: 'response.function_call_arguments.delta',
      item_id: id,
      output_index: index,
      delta: args.slice(0, 3),
    },
    {
      type: 'response.function_call_arguments.delta',
      item_id: id,
      output_index: index,
      delta: args.slice(3),
    },
    {
      type: 'response.function_call_arguments.done',
      item_id: id,
      output_index: index,
      arguments: args,
    },
    { type: 'response.output_item.done', output_index: index, item },
  ];
}

const completed = (output: unknown): JsonObject => ({
  type: 'response.completed',
  response: { ...base, status: 'completed', usage, ...(output === undefined ? {} : { output }) },
});

/** Numbers events from 0, as the API does. */
const numbered = (events: JsonObject[]): JsonObject[] =>
  events.map((event, index) => ({ ...event, sequence_number: index }));

const msg = message('msg_1', 'Hello world');
const fc = call('fc_2', 'call_2', '{"cmd":"ls"}');

function expectWellFormed(events: StreamEvent[]): void {
  expect(events[0]?.type).toBe('response.created');
  const terminals = events.filter((e) =>
    ['response.completed', 'response.failed', 'response.incomplete'].includes(e.type),
  );
  expect(terminals).toHaveLength(1);
  expect(events[events.length - 1]).toBe(terminals[0]);
  const sequence = events.map((e) => e.sequence_number as number);
  for (let i = 1; i < sequence.length; i += 1) {
    expect(sequence[i]).toBeGreaterThan(sequence[i - 1] as number);
  }
}

const terminalOf = (r: Run): JsonObject =>
  (r.events[r.events.length - 1] as JsonObject).response as JsonObject;

// --- tests --------------------------------------------------------------------------------------

describe('sseCompletion stage: pass-through', () => {
  it("forwards a well-formed stream byte for byte (the upstream's own bytes)", async () => {
    const input = numbered([
      created,
      inProgress,
      ...messageEvents(0, msg, ['Hello', ' world']),
      ...callEvents(1, fc),
      completed([msg, fc]),
    ]);
    const upstreamText = input.map(frame).join('');
    const result = await run([upstreamText]);
    expect(result.text).toBe(upstreamText);
    expect(result.exchange.finalResponse?.output).toEqual([msg, fc]);
  });
});

describe('sseCompletion stage: completions', () => {
  it('rebuilds an empty output from the done items, in output_index order, keeping the rest', async () => {
    const result = await run(
      numbered([
        created,
        ...messageEvents(0, msg, ['Hello', ' world']),
        ...callEvents(1, fc),
        completed([]),
      ]),
    );
    expectWellFormed(result.events);
    const final = terminalOf(result);
    expect(final).toMatchObject({ id: 'resp_1', status: 'completed', usage });
    expect(final.output).toEqual([msg, fc]);
    expect(result.exchange.finalResponse).toEqual(final);
    expect(result.exchange.annotations['sse_completion.output_rebuilt']).toBe(true);
  });

  it('rebuilds a missing output, and fills a missing one with [] when nothing was streamed', async () => {
    const rebuilt = await run(numbered([created, ...callEvents(0, fc), completed(undefined)]));
    expect(terminalOf(rebuilt).output).toEqual([fc]);
    const empty = await run(numbered([created, completed(undefined)]));
    expect(terminalOf(empty).output).toEqual([]);
  });

  it('rebuilds an item whose done is missing from its added event plus the deltas', async () => {
    const events = messageEvents(0, msg, ['Hel', 'lo']).slice(0, -1); // no output_item.done
    const result = await run(numbered([created, ...events, ...callEvents(1, fc), completed([])]));
    const output = terminalOf(result).output as JsonObject[];
    expect(output).toHaveLength(2);
    expect(output[0]).toMatchObject({
      type: 'message',
      id: 'msg_1',
      content: [{ type: 'output_text', text: 'Hello' }],
    });
    expect(output[1]).toEqual(fc);
  });

  it('rebuilds an empty output of response.incomplete and response.failed too', async () => {
    const incomplete = await run(
      numbered([
        created,
        ...messageEvents(0, msg, ['Hi']).slice(0, -1),
        {
          type: 'response.incomplete',
          response: { ...base, status: 'incomplete', output: [] },
        },
      ]),
    );
    expect((terminalOf(incomplete).output as JsonObject[])[0]).toMatchObject({ id: 'msg_1' });
    const failed = await run(
      numbered([
        created,
        ...callEvents(0, fc),
        ...messageEvents(1, msg, ['Hi']).slice(0, -1),
        { type: 'response.failed', response: { ...base, status: 'failed', output: [] } },
      ]),
    );
    expect(terminalOf(failed).output).toEqual([fc]);
  });

  it('gives a terminal event without a response object one', async () => {
    const result = await run(
      numbered([created, ...callEvents(0, fc), { type: 'response.completed' }]),
    );
    expect(terminalOf(result)).toMatchObject({ id: 'resp_1', status: 'completed', output: [fc] });
  });

  it('forwards nothing after the first terminal event', async () => {
    const result = await run(
      numbered([
        created,
        ...callEvents(0, fc),
        completed([fc]),
        { type: 'response.failed', response: { ...base, status: 'failed', output: [] } },
        { type: 'response.output_text.delta', item_id: 'x', output_index: 0, delta: 'late' },
        completed([fc]),
      ]),
    );
    expectWellFormed(result.events);
    expect(result.types[result.types.length - 1]).toBe('response.completed');
  });
});

describe('sseCompletion stage: streams the relay must close', () => {
  const cutAfterCall = numbered([
    created,
    inProgress,
    ...callEvents(0, fc),
    ...messageEvents(1, msg, ['Hel']).slice(0, 3),
  ]);

  it.each([
    ['an upstream EOF', { kind: 'eof' } as StreamEnd],
    ['a reset', { kind: 'error', error: new Error('socket hang up') } as StreamEnd],
  ])(
    'closes a stream cut by %s with an error event and response.failed holding the completed items',
    async (_name, end) => {
      const result = await run(cutAfterCall, {}, { end });
      expectWellFormed(result.events);
      expect(result.types.slice(-2)).toEqual(['error', 'response.failed']);
      const error = result.events[result.events.length - 2] as JsonObject;
      expect(error).toMatchObject({ code: 'server_error', error: { type: 'server_error' } });
      const failed = terminalOf(result);
      expect(failed).toMatchObject({ id: 'resp_1', status: 'failed' });
      expect(failed.error).toMatchObject({ code: 'server_error' });
      expect(failed.output).toEqual([fc]);
      expect(result.exchange.finalResponse).toEqual(failed);
      expect(result.exchange.annotations['sse_completion.closed']).toBe(end.kind);
    },
  );

  it('with errorEvent: false, closes it with response.failed alone', async () => {
    const result = await run(cutAfterCall, { errorEvent: false });
    expectWellFormed(result.events);
    expect(result.types).not.toContain('error');
    expect(terminalOf(result).output).toEqual([fc]);
  });

  it("after the upstream's own error event, adds only the terminal, with that error", async () => {
    const result = await run(
      numbered([
        created,
        inProgress,
        {
          type: 'error',
          code: 'server_is_overloaded',
          message: 'Slow down',
          param: null,
        },
      ]),
    );
    expectWellFormed(result.events);
    expect(result.types).toEqual([
      'response.created',
      'response.in_progress',
      'error',
      'response.failed',
    ]);
    expect(terminalOf(result).error).toEqual({
      code: 'server_is_overloaded',
      message: 'Slow down',
    });
  });

  it('closes an empty stream with created, error and failed', async () => {
    const result = await run([]);
    expectWellFormed(result.events);
    expect(result.types).toEqual(['response.created', 'error', 'response.failed']);
  });

  it('abandons an upstream that stalls past idleTimeoutMs and closes the stream', async () => {
    const result = await run(cutAfterCall, { idleTimeoutMs: 40 }, { end: 'never' });
    expectWellFormed(result.events);
    expect(terminalOf(result).output).toEqual([fc]);
    expect(result.upstreamAborts).toBe(1);
    expect(result.exchange.annotations['sse_completion.closed']).toBe('stalled');
  });

  it('closes the stream at once, and stops the upstream, at a line past the parser bound', async () => {
    // The upstream keeps the connection open: only the relay can end the client's stream.
    const oversized = `event: response.output_text.delta\ndata: ${'x'.repeat(DEFAULT_MAX_LINE_LENGTH + 1)}`;
    const result = await run(
      [...numbered([created, ...callEvents(0, fc)]), oversized],
      { idleTimeoutMs: 0 },
      { end: 'never' },
    );
    expectWellFormed(result.events);
    expect(result.types.at(-1)).toBe('response.failed');
    expect(terminalOf(result).output).toEqual([fc]);
    expect(result.upstreamAborts).toBe(1);
  });

  it('ends the response when the upstream holds the connection open after the terminal', async () => {
    const started = Date.now();
    const result = await run(
      numbered([created, ...callEvents(0, fc), completed([fc])]),
      { terminalGraceMs: 30 },
      { end: 'never' },
    );
    expectWellFormed(result.events);
    expect(result.types).not.toContain('error');
    expect(result.upstreamAborts).toBe(1);
    expect(Date.now() - started).toBeLessThan(5_000);
  });
});

describe('sseCompletion stage: response.created first', () => {
  it('puts a response.created with the same id before a stream that starts with response.failed', async () => {
    const result = await run([
      {
        type: 'response.failed',
        sequence_number: 0,
        response: {
          ...base,
          status: 'failed',
          error: { code: 'usage_limit_reached', message: 'limit' },
          output: [],
        },
      },
    ]);
    expectWellFormed(result.events);
    expect(result.types).toEqual(['response.created', 'response.failed']);
    expect(result.events[0]).toMatchObject({
      response: { id: 'resp_1', status: 'in_progress', error: null },
    });
    expect(terminalOf(result).error).toMatchObject({ code: 'usage_limit_reached' });
  });

  it('puts one before a stream that starts with response.in_progress, and drops a second created', async () => {
    const result = await run(
      numbered([inProgress, created, ...callEvents(0, fc), completed([fc])]),
    );
    expectWellFormed(result.events);
    expect(result.types.filter((t) => t === 'response.created')).toHaveLength(1);
    expect(result.types.slice(0, 2)).toEqual(['response.created', 'response.in_progress']);
  });

  it("lets vendor events before response.created through and keeps the upstream's created", async () => {
    const result = await run(
      numbered([
        { type: 'codex.rate_limits', primary: { used_percent: 1 } },
        created,
        ...callEvents(0, fc),
        completed([fc]),
      ]),
    );
    expect(result.types.slice(0, 2)).toEqual(['codex.rate_limits', 'response.created']);
    expect(result.types.filter((t) => t === 'response.created')).toHaveLength(1);
  });

  it("completes Codex's minimal shape (output_item.done + completed) for the SDK", async () => {
    const result = await run([
      { type: 'response.output_item.done', output_index: 0, item: fc, sequence_number: 5 },
      { ...completed([fc]), sequence_number: 6 },
    ]);
    expectWellFormed(result.events);
    expect(result.types).toEqual([
      'response.created',
      'response.output_item.added',
      'response.output_item.done',
      'response.completed',
    ]);
    expect(result.events[1]).toMatchObject({ output_index: 0, item: fc });
    expect(terminalOf(result).output).toEqual([fc]);
  });

  it('streams the items of a completion that only lists them (Codex needs output_item.done)', async () => {
    const result = await run([{ ...completed([msg, fc]), sequence_number: 0 }]);
    expectWellFormed(result.events);
    expect(result.types).toEqual([
      'response.created',
      'response.output_item.added',
      'response.output_item.done',
      'response.output_item.added',
      'response.output_item.done',
      'response.completed',
    ]);
    expect(result.events.filter((e) => e.type === 'response.output_item.done')).toEqual([
      expect.objectContaining({ output_index: 0, item: msg }),
      expect.objectContaining({ output_index: 1, item: fc }),
    ]);
  });
});

describe('sseCompletion stage: item ids', () => {
  const itemIds = (events: StreamEvent[]) =>
    events.flatMap((e) =>
      e.type.startsWith('response.output_item.')
        ? [(e.item as JsonObject).id]
        : typeof e.item_id === 'string'
          ? [e.item_id]
          : [],
    );

  it('gives a function call whose id is its call_id an fc_ id in every event, call_id untouched', async () => {
    const aliases = new MemoryItemIdAliases();
    const odd = call('call_2', 'call_2', '{"cmd":"ls"}');
    const result = await run(numbered([created, ...callEvents(0, odd), completed([odd])]), {
      itemIdAliases: aliases,
    });
    const ids = new Set(itemIds(result.events));
    expect(ids.size).toBe(1);
    const [shown] = [...ids] as string[];
    expect(shown).toMatch(/^fc_[0-9a-f]{48}$/);
    const output = terminalOf(result).output as JsonObject[];
    expect(output).toEqual([{ ...odd, id: shown }]);
    expect(output[0]?.call_id).toBe('call_2');
    expect(aliases.get(shown as string)).toBe('call_2');
    expect(result.exchange.annotations['sse_completion.ids_rewritten']).toBe(1);
  });

  it('gives an item without an id one (deltas addressed by call_id), remembered as "no id"', async () => {
    const aliases = new MemoryItemIdAliases();
    const noId = call(undefined, 'call_2', '{"cmd":"ls"}');
    const result = await run(numbered([created, ...callEvents(0, noId, 'call_2'), completed([])]), {
      itemIdAliases: aliases,
    });
    const ids = new Set(itemIds(result.events));
    expect(ids.size).toBe(1);
    const [shown] = [...ids] as string[];
    expect(shown).toMatch(/^fc_/);
    expect(terminalOf(result).output).toEqual([{ ...noId, id: shown }]);
    expect(aliases.get(shown as string)).toBeNull();
  });

  it('keeps the id of output_item.added when later events of the item use another one', async () => {
    const doneWithCallId = call('call_2', 'call_2', '{"cmd":"ls"}');
    const result = await run(
      numbered([
        created,
        ...callEvents(0, doneWithCallId, 'fc_2', 'fc_2'),
        completed([doneWithCallId]),
      ]),
    );
    expect(new Set(itemIds(result.events))).toEqual(new Set(['fc_2']));
    expect(terminalOf(result).output).toEqual([{ ...doneWithCallId, id: 'fc_2' }]);
  });

  it('gives a message with a foreign id a msg_ id, the same in every event', async () => {
    const odd = message('item_1', 'Hi there');
    const result = await run(
      numbered([created, ...messageEvents(0, odd, ['Hi', ' there']), completed([odd])]),
    );
    const ids = new Set(itemIds(result.events));
    expect(ids.size).toBe(1);
    expect([...ids][0]).toMatch(/^msg_/);
  });

  it('derives the same ids for the same upstream stream', async () => {
    const odd = call('call_2', 'call_2', '{}');
    const input = numbered([created, ...callEvents(0, odd), completed([odd])]);
    const first = await run(input, { itemIdAliases: false });
    const second = await run(input, { itemIdAliases: false });
    expect(first.text).toBe(second.text);
  });

  it('normalizes only the item types it is given', async () => {
    const oddMessage = message('item_1', 'Hi');
    const oddCall = call('call_2', 'call_2', '{}');
    const input = numbered([
      created,
      ...messageEvents(0, oddMessage, ['Hi']),
      ...callEvents(1, oddCall),
      completed([oddMessage, oddCall]),
    ]);
    const result = await run(input, { normalizeItemIds: ['function_call'] });
    const output = terminalOf(result).output as JsonObject[];
    expect(output[0]?.id).toBe('item_1');
    expect(output[1]?.id).toMatch(/^fc_/);
  });

  it('leaves ids alone with normalizeItemIds: false', async () => {
    const odd = call('call_2', 'call_2', '{}');
    const input = numbered([created, ...callEvents(0, odd), completed([odd])]);
    const result = await run(input, { normalizeItemIds: false });
    expect(result.text).toBe(input.map(frame).join(''));
  });
});

describe('sseCompletion stage: sequence numbers and aggregation', () => {
  it('keeps sequence numbers strictly increasing around inserted events and odd upstreams', async () => {
    const result = await run([
      { type: 'response.output_item.added', output_index: 0, item: fc, sequence_number: 0 },
      { type: 'response.output_item.done', output_index: 0, item: fc, sequence_number: 0 },
      { ...completed([]), sequence_number: 1 },
    ]);
    expectWellFormed(result.events);
    expect(result.events.map((e) => e.sequence_number)).toEqual([0, 1, 2, 3]);
  });

  it('answers an aggregated stream with the rebuilt Response as JSON', async () => {
    const result = await run(
      numbered([created, ...callEvents(0, fc), completed([])]),
      {},
      { aggregate: true },
    );
    expect(JSON.parse(result.text)).toMatchObject({
      id: 'resp_1',
      status: 'completed',
      output: [fc],
    });
  });

  it('answers an aggregated stream that was cut with the failed Response', async () => {
    const result = await run(numbered([created, ...callEvents(0, fc)]), {}, { aggregate: true });
    expect(JSON.parse(result.text)).toMatchObject({ status: 'failed', output: [fc] });
  });
});
