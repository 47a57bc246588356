/**
 * Properties of sseCompletion on random streams: random valid event sequences (messages,
 * function calls with well-formed or odd ids, reasoning items; sparse or full completions), cut
 * at a random byte (or not at all), ending by EOF or by a connection error, fed to the real
 * pipeline in random chunks (UTF-8 characters split too). Whatever happens, the client gets a
 * well-formed stream: `response.created` first, exactly one terminal event and it is the last,
 * strictly increasing integer sequence numbers, item ids with their type prefix and the same in
 * every event of an item, `call_id`s untouched; the terminal's output equals the items that were
 * completed; and the openai SDK's own stream helper accepts it with that output.
 */
import { fc, test } from '@fast-check/jest';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { ResponseStream } from 'openai/lib/responses/ResponseStream.js';
import { Exchange, type StreamEnd } from '../../lib/middleware/exchange';
import { ResponsePipeline, type ClientSink } from '../../lib/middleware/response-pipeline';
import { createSseCompletionStage } from '../../lib/middleware/sse-completion';
import { SseParser } from '../../lib/protocol/sse';
import type { JsonObject, ResponseItem, StreamEvent } from '../../lib/protocol/types';

const numRuns = 300;

// --- random upstream streams ----------------------------------------------------------------

const piece = fc.constantFrom('a', 'bc', ' ', 'é', '🎉', '\u2028', '"', '\\n', '{', '日本');
const text = fc.array(
  fc.array(piece, { maxLength: 3 }).map((p) => p.join('')),
  { maxLength: 4 },
);

type IdStyle = 'normal' | 'call_id' | 'missing';
type ItemSpec =
  | { type: 'message'; deltas: string[] }
  | { type: 'function_call'; deltas: string[]; ids: IdStyle }
  | { type: 'reasoning'; deltas: string[] };

const itemArb: fc.Arbitrary<ItemSpec> = fc.oneof(
  fc.record({ type: fc.constant('message' as const), deltas: text }),
  fc.record({
    type: fc.constant('function_call' as const),
    deltas: text,
    ids: fc.constantFrom<IdStyle>('normal', 'normal', 'call_id', 'missing'),
  }),
  fc.record({ type: fc.constant('reasoning' as const), deltas: text }),
);

const scenarioArb = fc.record({
  items: fc.array(itemArb, { maxLength: 4 }),
  sparse: fc.boolean(),
  /** Where the stream is cut, as a fraction of its bytes; ≥ 1: not cut. */
  cut: fc.oneof(fc.constant(2), fc.double({ min: 0, max: 1, noNaN: true })),
  end: fc.constantFrom<'eof' | 'error'>('eof', 'error'),
  chunks: fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 12 }),
  errorEvent: fc.boolean(),
});

const PREFIX = { message: 'msg_', function_call: 'fc_', reasoning: 'rs_' } as const;
const RESPONSE = { id: 'resp_p', object: 'response', model: 'gpt-5' };

interface Upstream {
  events: JsonObject[];
  /** The items of each `output_item.done`, by event position. */
  doneAt: Map<number, ResponseItem>;
  items: ResponseItem[];
}

function upstreamStream(specs: ItemSpec[], sparse: boolean): Upstream {
  const events: JsonObject[] = [
    { type: 'response.created', response: { ...RESPONSE, status: 'in_progress', output: [] } },
    { type: 'response.in_progress', response: { ...RESPONSE, status: 'in_progress', output: [] } },
  ];
  const doneAt = new Map<number, ResponseItem>();
  const items: ResponseItem[] = [];
  specs.forEach((spec, index) => {
    const joined = spec.deltas.join('');
    const scoped = { output_index: index };
    if (spec.type === 'message') {
      const id = `msg_${index}`;
      const part = (t: string) => ({ type: 'output_text', text: t, annotations: [] });
      const item = {
        type: 'message',
        id,
        role: 'assistant',
        status: 'completed',
        content: [part(joined)],
      };
      events.push(
        {
          type: 'response.output_item.added',
          ...scoped,
          item: { ...item, status: 'in_progress', content: [] },
        },
        {
          type: 'response.content_part.added',
          item_id: id,
          ...scoped,
          content_index: 0,
          part: part(''),
        },
        ...spec.deltas.map((delta) => ({
          type: 'response.output_text.delta',
          item_id: id,
          ...scoped,
          content_index: 0,
          delta,
        })),
        {
          type: 'response.output_text.done',
          item_id: id,
          ...scoped,
          content_index: 0,
          text: joined,
        },
        {
          type: 'response.content_part.done',
          item_id: id,
          ...scoped,
          content_index: 0,
          part: part(joined),
        },
      );
      doneAt.set(events.length, item);
      events.push({ type: 'response.output_item.done', ...scoped, item });
      items.push(item);
    } else if (spec.type === 'function_call') {
      const callId = `call_${index}`;
      const id =
        spec.ids === 'normal' ? `fc_${index}` : spec.ids === 'call_id' ? callId : undefined;
      const eventId = id ?? callId;
      const shape = (status: string, args: string): ResponseItem => ({
        type: 'function_call',
        ...(id === undefined ? {} : { id }),
        call_id: callId,
        name: 'exec_command',
        arguments: args,
        status,
      });
      events.push(
        { type: 'response.output_item.added', ...scoped, item: shape('in_progress', '') },
        ...spec.deltas.map((delta) => ({
          type: 'response.function_call_arguments.delta',
          item_id: eventId,
          ...scoped,
          delta,
        })),
        {
          type: 'response.function_call_arguments.done',
          item_id: eventId,
          ...scoped,
          arguments: joined,
        },
      );
      const item = shape('completed', joined);
      doneAt.set(events.length, item);
      events.push({ type: 'response.output_item.done', ...scoped, item });
      items.push(item);
    } else {
      const id = `rs_${index}`;
      const part = (t: string) => ({ type: 'summary_text', text: t });
      const item = { type: 'reasoning', id, summary: [part(joined)] };
      events.push(
        {
          type: 'response.output_item.added',
          ...scoped,
          item: { type: 'reasoning', id, summary: [] },
        },
        {
          type: 'response.reasoning_summary_part.added',
          item_id: id,
          ...scoped,
          summary_index: 0,
          part: part(''),
        },
        ...spec.deltas.map((delta) => ({
          type: 'response.reasoning_summary_text.delta',
          item_id: id,
          ...scoped,
          summary_index: 0,
          delta,
        })),
        {
          type: 'response.reasoning_summary_text.done',
          item_id: id,
          ...scoped,
          summary_index: 0,
          text: joined,
        },
        {
          type: 'response.reasoning_summary_part.done',
          item_id: id,
          ...scoped,
          summary_index: 0,
          part: part(joined),
        },
      );
      doneAt.set(events.length, item);
      events.push({ type: 'response.output_item.done', ...scoped, item });
      items.push(item);
    }
  });
  events.push({
    type: 'response.completed',
    response: {
      ...RESPONSE,
      status: 'completed',
      output: sparse ? [] : items,
      usage: { input_tokens: 1, output_tokens: 2, total_tokens: 3 },
    },
  });
  return {
    events: events.map((event, index) => ({ ...event, sequence_number: index })),
    doneAt,
    items,
  };
}

// --- running it through the pipeline ---------------------------------------------------------

async function relay(
  bytes: Buffer,
  boundaries: number[],
  end: StreamEnd,
  errorEvent: boolean,
): Promise<{ events: StreamEvent[]; exchange: Exchange }> {
  const exchange = new Exchange(
    { headers: {} } as IncomingMessage,
    { locals: {} } as unknown as ServerResponse,
  );
  exchange.addStage('sse-completion', (ex) =>
    createSseCompletionStage(ex, { errorEvent, terminalGraceMs: 0, itemIdAliases: false }),
  );
  const written: string[] = [];
  let ended = false;
  const sink: ClientSink = {
    writeHead: () => undefined,
    write: (chunk) => {
      written.push(String(chunk));
      return true;
    },
    end: () => {
      ended = true;
    },
    onDrain: () => undefined,
    get closed() {
      return ended;
    },
  };
  const pipeline = new ResponsePipeline(exchange, sink);
  pipeline.begin(200, { 'content-type': 'text/event-stream' });
  let from = 0;
  for (const at of [...boundaries, bytes.length]) {
    pipeline.push(bytes.subarray(from, at));
    from = at;
  }
  await pipeline.finish(end);
  const events: StreamEvent[] = [];
  const parser = new SseParser({
    onMessage: (message) => events.push(JSON.parse(message.data) as StreamEvent),
  });
  parser.push(written.join(''));
  parser.end();
  return { events, exchange };
}

/** What the openai SDK's `responses.stream()` makes of the events (errors left out). */
function sdkFinalResponse(events: StreamEvent[]): Promise<{ output: JsonObject[] }> {
  const lines = events
    .filter((event) => event.type !== 'error')
    .map((event) => `${JSON.stringify(event)}\n`)
    .join('');
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      controller.enqueue(new TextEncoder().encode(lines));
      controller.close();
    },
  });
  return ResponseStream.fromReadableStream(body).finalResponse() as unknown as Promise<{
    output: JsonObject[];
  }>;
}

const withoutId = (item: JsonObject): JsonObject => {
  const { id: _id, ...rest } = item;
  return rest;
};

const TERMINALS = ['response.completed', 'response.failed', 'response.incomplete'];

// --- the properties ---------------------------------------------------------------------------

test.prop([scenarioArb], { numRuns })(
  'every relayed stream is well-formed and its terminal output equals the completed items',
  async (scenario) => {
    const upstream = upstreamStream(scenario.items, scenario.sparse);
    const frames = upstream.events.map(
      (event) => `event: ${String(event.type)}\ndata: ${JSON.stringify(event)}\n\n`,
    );
    const all = Buffer.from(frames.join(''));
    const cutAt = scenario.cut >= 1 ? all.length : Math.floor(scenario.cut * all.length);
    const bytes = all.subarray(0, cutAt);
    const boundaries = [...new Set(scenario.chunks.map((c) => Math.floor(c * bytes.length)))].sort(
      (a, b) => a - b,
    );
    const end: StreamEnd =
      scenario.end === 'eof' || cutAt === all.length
        ? { kind: 'eof' }
        : { kind: 'error', error: new Error('reset') };

    // Which upstream events reached the relay whole.
    let offset = 0;
    const delivered = frames.map((frame) => {
      offset += Buffer.byteLength(frame);
      return offset <= cutAt;
    });
    const terminalArrived = delivered[delivered.length - 1] === true;
    const completedItems = [...upstream.doneAt.entries()]
      .filter(([position]) => delivered[position])
      .map(([, item]) => item);

    const { events, exchange } = await relay(bytes, boundaries, end, scenario.errorEvent);

    // Well-formed.
    expect(events[0]?.type).toBe('response.created');
    const terminals = events.filter((e) => TERMINALS.includes(e.type));
    expect(terminals).toHaveLength(1);
    const terminal = terminals[0] as JsonObject;
    expect(events[events.length - 1]).toBe(terminal);
    events.forEach((event, index) => {
      expect(Number.isInteger(event.sequence_number)).toBe(true);
      if (index > 0) {
        expect(event.sequence_number as number).toBeGreaterThan(
          events[index - 1]?.sequence_number as number,
        );
      }
    });
    expect(events.filter((e) => e.type === 'error')).toHaveLength(
      !terminalArrived && scenario.errorEvent ? 1 : 0,
    );

    // Ids: one per item, with its prefix, in every event of the item.
    const idAt = new Map<number, string>();
    for (const event of events) {
      const index = event.output_index as number;
      if (event.type === 'response.output_item.added') {
        const item = event.item as JsonObject;
        expect(typeof item.id).toBe('string');
        expect(item.id as string).toMatch(
          new RegExp(`^${PREFIX[item.type as keyof typeof PREFIX]}`),
        );
        idAt.set(index, item.id as string);
      } else if (event.type === 'response.output_item.done') {
        expect((event.item as JsonObject).id).toBe(idAt.get(index));
      } else if (typeof event.item_id === 'string') {
        expect(event.item_id).toBe(idAt.get(index));
      }
    }

    // The terminal's output is the completed items (ids as shown), call_ids untouched.
    const response = terminal.response as JsonObject;
    expect(terminal.type).toBe(terminalArrived ? 'response.completed' : 'response.failed');
    const output = response.output as JsonObject[];
    const expected = terminalArrived ? upstream.items : completedItems;
    expect(output.map(withoutId)).toEqual(expected.map(withoutId));
    output.forEach((item, position) => expect(item.id).toBe(idAt.get(position)));
    expect(response.id).toEqual(delivered[0] ? RESPONSE.id : expect.stringMatching(/^resp_/));
    expect(exchange.finalResponse).toEqual(response);

    // The SDK accepts the stream and sees the same output.
    const final = await sdkFinalResponse(events);
    expect(final.output.map((item) => [item.type, item.id, item.call_id])).toEqual(
      output.map((item) => [item.type, item.id, item.call_id]),
    );
  },
);
