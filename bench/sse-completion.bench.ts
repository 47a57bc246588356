/**
 * What sseCompletion costs per event. A loopback upstream sends a 10,000-event Responses stream
 * (a reasoning summary, ~10k text deltas, two function calls, a full `response.completed`); an
 * HTTP client reads it through an Express gateway:
 *
 * - plain: a stock http-proxy-middleware proxy (bytes piped, nothing parsed);
 * - noop stage: the same proxy behind a pass-through `streamTransform` (what the shared pipeline
 *   costs: SSE parse, one JSON.parse per event, the accumulator, original bytes written back);
 * - sseCompletion (tap): the same proxy behind `sseCompletion()`;
 * - sseCompletion (proxy): `sseCompletion()` with `relayProxyOptions()` spread into the proxy.
 *
 * The variants take turns within each round; medians of the rounds. The gateway and the client
 * share the process with the upstream, so the figures are wall time of the whole exchange.
 *
 * Memory: the stream is fed to the pipeline in process and held just before its terminal event,
 * for 1,000 / 10,000 / 100,000 text deltas; the heap retained then (after a full GC), minus the
 * text itself (which a rebuilt completion must hold), shows whether it grows with the number of
 * deltas.
 */
import { createParser } from 'eventsource-parser';
import express from 'express';
import { createProxyMiddleware } from 'http-proxy-middleware';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { Exchange } from '../lib/middleware/exchange';
import { relayProxyOptions } from '../lib/middleware/relay-proxy';
import { ResponsePipeline, type ClientSink } from '../lib/middleware/response-pipeline';
import { createSseCompletionStage, sseCompletion } from '../lib/middleware/sse-completion';
import { streamTransform } from '../lib/middleware/stream-transform';

export const title =
  'sseCompletion per-event cost vs plain http-proxy-middleware (10,000-event stream, loopback)';

const EVENT_COUNT = 10_000;
const WARMUP_ROUNDS = 5;
const ROUNDS = 25;
/** Bytes per upstream write (socket reads under load). */
const WRITE_SIZE = 16 * 1024;

/** Deterministic pseudo-random numbers, so every run measures the same stream. */
function random(seed: number): () => number {
  let state = seed;
  return () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
}

const WORDS = (
  'the relay forwards every event as it arrives and keeps only what a rebuilt completion ' +
  'needs: ünïcödé, emoji 🎉, "quotes", new\nlines and \u2028 separators'
).split(' ');

interface Built {
  frames: string[];
  /** Index of the message's `output_text.done` frame (right after its last delta). */
  textDoneAt: number;
  /** Characters of text the items carry (what any rebuilt output must hold). */
  textChars: number;
}

/** A Responses stream of about `count` events, `deltas` of them text deltas. */
function buildStream(deltas: number): Built {
  const next = random(7);
  const word = () => WORDS[Math.floor(next() * WORDS.length)] as string;
  const base = {
    id: 'resp_68af0c6b2a3c8190a1b2c3d4e5f60718',
    object: 'response',
    created_at: 1756302443,
    status: 'in_progress',
    model: 'gpt-5-2025-08-07',
    output: [] as unknown[],
    parallel_tool_calls: true,
    tool_choice: 'auto',
    tools: [],
    usage: null,
  };
  const frames: string[] = [];
  let sequence = 0;
  const emit = (event: Record<string, unknown>) => {
    const data = JSON.stringify({ ...event, sequence_number: sequence++ });
    frames.push(`event: ${String(event.type)}\ndata: ${data}\n\n`);
  };
  const output: unknown[] = [];
  let textChars = 0;
  emit({ type: 'response.created', response: base });
  emit({ type: 'response.in_progress', response: base });
  // Reasoning summary: 40 deltas.
  const rsId = 'rs_68af0c6c0a1b8190a1b2c3d4e5f60718';
  emit({
    type: 'response.output_item.added',
    output_index: 0,
    item: { id: rsId, type: 'reasoning', summary: [] },
  });
  emit({
    type: 'response.reasoning_summary_part.added',
    item_id: rsId,
    output_index: 0,
    summary_index: 0,
    part: { type: 'summary_text', text: '' },
  });
  let summary = '';
  for (let i = 0; i < 40; i += 1) {
    const delta = `${word()} `;
    summary += delta;
    emit({
      type: 'response.reasoning_summary_text.delta',
      item_id: rsId,
      output_index: 0,
      summary_index: 0,
      delta,
    });
  }
  emit({
    type: 'response.reasoning_summary_text.done',
    item_id: rsId,
    output_index: 0,
    summary_index: 0,
    text: summary,
  });
  const summaryPart = { type: 'summary_text', text: summary };
  emit({
    type: 'response.reasoning_summary_part.done',
    item_id: rsId,
    output_index: 0,
    summary_index: 0,
    part: summaryPart,
  });
  const reasoning = { id: rsId, type: 'reasoning', summary: [summaryPart] };
  emit({ type: 'response.output_item.done', output_index: 0, item: reasoning });
  output.push(reasoning);
  textChars += summary.length;
  // The message: `deltas` text deltas.
  const msgId = 'msg_68af0c6c1e5c8190b2c3d4e5f6071829';
  const message = { id: msgId, type: 'message', status: 'in_progress', role: 'assistant' };
  emit({ type: 'response.output_item.added', output_index: 1, item: { ...message, content: [] } });
  const emptyPart = { type: 'output_text', annotations: [], logprobs: [], text: '' };
  emit({
    type: 'response.content_part.added',
    item_id: msgId,
    output_index: 1,
    content_index: 0,
    part: emptyPart,
  });
  const pieces: string[] = [];
  for (let i = 0; i < deltas; i += 1) {
    const delta = `${word()} `;
    pieces.push(delta);
    emit({
      type: 'response.output_text.delta',
      item_id: msgId,
      output_index: 1,
      content_index: 0,
      delta,
      logprobs: [],
      obfuscation: Math.floor(next() * 2 ** 40).toString(36),
    });
  }
  const text = pieces.join('');
  textChars += text.length;
  const textDoneAt = frames.length;
  emit({
    type: 'response.output_text.done',
    item_id: msgId,
    output_index: 1,
    content_index: 0,
    text,
    logprobs: [],
  });
  const part = { ...emptyPart, text };
  emit({
    type: 'response.content_part.done',
    item_id: msgId,
    output_index: 1,
    content_index: 0,
    part,
  });
  const doneMessage = { ...message, status: 'completed', content: [part] };
  emit({ type: 'response.output_item.done', output_index: 1, item: doneMessage });
  output.push(doneMessage);
  // Two function calls.
  for (const [index, cmd] of [
    [2, 'ls -la'],
    [3, 'git status'],
  ] as const) {
    const fcId = `fc_68af0c6d${index}e5c8190b2c3d4e5f6071829`;
    const args = JSON.stringify({ cmd });
    const call = {
      id: fcId,
      type: 'function_call',
      status: 'in_progress',
      call_id: `call_${index}Kx81nQz0aYw3`,
      name: 'exec_command',
      arguments: '',
    };
    emit({ type: 'response.output_item.added', output_index: index, item: call });
    for (let at = 0; at < args.length; at += 4) {
      emit({
        type: 'response.function_call_arguments.delta',
        item_id: fcId,
        output_index: index,
        delta: args.slice(at, at + 4),
      });
    }
    emit({
      type: 'response.function_call_arguments.done',
      item_id: fcId,
      output_index: index,
      arguments: args,
    });
    const doneCall = { ...call, status: 'completed', arguments: args };
    emit({ type: 'response.output_item.done', output_index: index, item: doneCall });
    output.push(doneCall);
  }
  emit({
    type: 'response.completed',
    response: {
      ...base,
      status: 'completed',
      output,
      usage: { input_tokens: 1200, output_tokens: deltas, total_tokens: 1200 + deltas },
    },
  });
  return { frames, textDoneAt, textChars };
}

/** The number of text deltas that makes the stream `EVENT_COUNT` events long. */
function deltasFor(events: number): number {
  const others = buildStream(0).frames.length;
  return events - others;
}

// --- wall time through real sockets ------------------------------------------------------------

interface Server {
  url: string;
  close(): Promise<void>;
}

function serve(handler: http.RequestListener): Promise<Server> {
  const server = http.createServer({ keepAliveTimeout: 60_000 }, handler);
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      resolve({
        url: `http://127.0.0.1:${port}`,
        close: () =>
          new Promise<void>((done) => {
            server.closeAllConnections();
            server.close(() => done());
          }),
      });
    });
  });
}

/** An upstream that answers every request with `pieces`, one write each. */
function upstreamFor(pieces: readonly Buffer[]): http.RequestListener {
  return (req, res) => {
    req.resume();
    req.once('end', () => {
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
      let at = 0;
      const pump = (): void => {
        while (at < pieces.length) {
          const piece = pieces[at] as Buffer;
          at += 1;
          if (!res.write(piece)) {
            res.once('drain', pump);
            return;
          }
        }
        res.end();
      };
      pump();
    });
  };
}

const REQUEST_BODY = JSON.stringify({ model: 'gpt-5', input: 'hi', stream: true });

/** One exchange through `url`; resolves with its wall time (ms) and the bytes received. */
function exchange(url: string, agent: http.Agent): Promise<{ ms: number; bytes: number }> {
  return new Promise((resolve, reject) => {
    const start = process.hrtime.bigint();
    const request = http.request(`${url}/v1/responses`, {
      method: 'POST',
      agent,
      headers: {
        'content-type': 'application/json',
        'content-length': Buffer.byteLength(REQUEST_BODY),
      },
    });
    request.once('error', reject);
    request.once('response', (response) => {
      let bytes = 0;
      response.on('data', (chunk: Buffer) => {
        bytes += chunk.length;
      });
      response.once('error', reject);
      response.once('end', () =>
        resolve({ ms: Number(process.hrtime.bigint() - start) / 1e6, bytes }),
      );
    });
    request.end(REQUEST_BODY);
  });
}

interface Variant {
  label: string;
  app: express.Express;
  server?: Server;
  agent: http.Agent;
  times: number[];
  bytes: number;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1
    ? (sorted[middle] as number)
    : ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2;
}

function gateway(target: string, kind: 'plain' | 'noop' | 'tap' | 'proxy'): express.Express {
  const app = express();
  const handlers: express.RequestHandler[] = [];
  if (kind === 'noop') {
    handlers.push(
      streamTransform({ name: 'noop', onEvent: (event, emit) => emit(event) }) as never,
    );
  }
  if (kind === 'tap' || kind === 'proxy') handlers.push(sseCompletion() as never);
  handlers.push(
    createProxyMiddleware({
      target,
      changeOrigin: true,
      ...(kind === 'proxy' ? relayProxyOptions() : {}),
    }) as never,
  );
  app.post('/v1/responses', ...handlers);
  return app;
}

async function wallTime(pieces: readonly Buffer[]): Promise<Variant[]> {
  const upstream = await serve(upstreamFor(pieces));
  const variants: Variant[] = (
    [
      ['plain http-proxy-middleware', 'plain'],
      ['+ noop stage (pipeline only)', 'noop'],
      ['+ sseCompletion (tap mode)', 'tap'],
      ['+ sseCompletion (proxy mode)', 'proxy'],
    ] as const
  ).map(([label, kind]) => ({
    label,
    app: gateway(upstream.url, kind),
    agent: new http.Agent({ keepAlive: true, maxSockets: 1 }),
    times: [],
    bytes: 0,
  }));
  for (const variant of variants) {
    variant.server = await serve(variant.app as unknown as http.RequestListener);
  }
  try {
    for (let round = 0; round < WARMUP_ROUNDS + ROUNDS; round += 1) {
      // Take turns, starting with a different variant each round.
      for (let k = 0; k < variants.length; k += 1) {
        const variant = variants[(round + k) % variants.length] as Variant;
        const { ms, bytes } = await exchange((variant.server as Server).url, variant.agent);
        variant.bytes = bytes;
        if (round >= WARMUP_ROUNDS) variant.times.push(ms);
      }
    }
  } finally {
    for (const variant of variants) {
      variant.agent.destroy();
      await variant.server?.close();
    }
    await upstream.close();
  }
  return variants;
}

// --- memory, in process ------------------------------------------------------------------------

function collector(): () => void {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  return () => {
    for (let pass = 0; pass < 3; pass += 1) gc();
  };
}

interface Held {
  retainedBytes: number;
  textBytes: number;
  bufferedChunks: number;
}

/**
 * Feeds a stream up to its last text delta (the worst moment: every delta of the message is
 * in, none of its `.done` events yet) and measures what the pipeline and the stage hold then:
 * the heap with them alive minus the heap once they are dropped (both after a full GC).
 */
async function heldMidStream(built: Built, gc: () => void): Promise<Held> {
  const upTo = Buffer.from(built.frames.slice(0, built.textDoneAt).join(''));
  const holder: { pipeline?: ResponsePipeline } = {};
  let ended = false;
  const sink: ClientSink = {
    writeHead: () => undefined,
    write: () => true,
    end: () => {
      ended = true;
    },
    onDrain: () => undefined,
    get closed() {
      return ended;
    },
  };
  (() => {
    const exchange = new Exchange(
      { headers: {} } as http.IncomingMessage,
      { locals: {} } as unknown as http.ServerResponse,
    );
    exchange.addStage('sse-completion', (ex) =>
      createSseCompletionStage(ex, { idleTimeoutMs: 0, terminalGraceMs: 0 }),
    );
    const pipeline = new ResponsePipeline(exchange, sink);
    pipeline.begin(200, { 'content-type': 'text/event-stream' });
    for (let at = 0; at < upTo.length; at += WRITE_SIZE) {
      pipeline.push(upTo.subarray(at, at + WRITE_SIZE));
    }
    holder.pipeline = pipeline;
  })();
  gc();
  const alive = process.memoryUsage().heapUsed;
  const bufferedChunks = holder.pipeline?.seen.bufferedChunks ?? -1;
  delete holder.pipeline;
  gc();
  const released = process.memoryUsage().heapUsed;
  // The text is held one byte per character when it is Latin-1, two otherwise (ours has emoji).
  return { retainedBytes: alive - released, textBytes: built.textChars * 2, bufferedChunks };
}

// --- the floor: reading each event once, in process ---------------------------------------------

/**
 * What reading every event once costs with no I/O and no relay code: eventsource-parser (fed
 * decoded text) and one `JSON.parse` per event. Anything that must see the events (to rebuild a
 * completion, renumber, rewrite ids) pays at least this per event; plain http-proxy-middleware
 * reads none of them.
 */
function readingFloor(pieces: readonly Buffer[], events: number): number {
  const once = (): number => {
    let parsed = 0;
    const decoder = new TextDecoder();
    const parser = createParser({
      onEvent(event) {
        const value = JSON.parse(event.data) as { type?: unknown };
        if (typeof value.type === 'string') parsed += 1;
      },
    });
    const start = process.hrtime.bigint();
    for (const piece of pieces) parser.feed(decoder.decode(piece, { stream: true }));
    const ms = Number(process.hrtime.bigint() - start) / 1e6;
    if (parsed !== events) throw new Error(`expected ${events} events, read ${parsed}`);
    return ms;
  };
  for (let round = 0; round < WARMUP_ROUNDS; round += 1) once();
  const times: number[] = [];
  for (let round = 0; round < ROUNDS; round += 1) times.push(once());
  return median(times);
}

/** The least any reader does: one `JSON.parse` per event, on data already split out. */
function parseFloor(datas: readonly string[]): number {
  const once = (): number => {
    let parsed = 0;
    const start = process.hrtime.bigint();
    for (const data of datas) {
      const value = JSON.parse(data) as { type?: unknown };
      if (typeof value.type === 'string') parsed += 1;
    }
    const ms = Number(process.hrtime.bigint() - start) / 1e6;
    if (parsed !== datas.length) throw new Error('an event did not parse');
    return ms;
  };
  for (let round = 0; round < WARMUP_ROUNDS; round += 1) once();
  const times: number[] = [];
  for (let round = 0; round < ROUNDS; round += 1) times.push(once());
  return median(times);
}

// --- report ------------------------------------------------------------------------------------

const fmt = (value: number, digits = 2): string => value.toFixed(digits);
const kib = (bytes: number): string => `${fmt(bytes / 1024, 0)} KiB`;

function report(label: string, variants: Variant[], events: number): number {
  const plain = median((variants[0] as Variant).times);
  process.stdout.write(
    `${label}\n\n| variant | median ms | µs / event | ratio vs plain |\n|---|---|---|---|\n`,
  );
  for (const variant of variants) {
    const m = median(variant.times);
    process.stdout.write(
      `| ${variant.label} | ${fmt(m)} | ${fmt((m * 1000) / events, 3)} | ${fmt(m / plain)}× |\n`,
    );
  }
  const noop = median((variants[1] as Variant).times);
  const tap = median((variants[2] as Variant).times);
  process.stdout.write(
    `\nsseCompletion's own stage over the shared pipeline (tap − noop stage): ` +
      `${fmt(((tap - noop) * 1000) / events, 3)} µs/event (${fmt(tap / noop)}×)\n\n`,
  );
  return plain;
}

export async function run(): Promise<void> {
  const deltas = deltasFor(EVENT_COUNT);
  const built = buildStream(deltas);
  const body = Buffer.from(built.frames.join(''));
  const events = built.frames.length;
  process.stdout.write(
    `stream: ${events} events, ${fmt(body.length / 1024 / 1024)} MiB; ` +
      `${ROUNDS} rounds (+${WARMUP_ROUNDS} warm-up), variants taking turns\n\n`,
  );

  const gc = collector();
  gc();
  const heapBefore = process.memoryUsage().heapUsed;
  const rssBefore = process.memoryUsage().rss;
  const slices: Buffer[] = [];
  for (let at = 0; at < body.length; at += WRITE_SIZE) {
    slices.push(body.subarray(at, at + WRITE_SIZE));
  }
  const bulk = await wallTime(slices);
  const plainBulk = report(
    `### upstream writes ${WRITE_SIZE / 1024} KiB pieces (as fast as loopback goes)`,
    bulk,
    events,
  );
  const perEvent = await wallTime(built.frames.map((frame) => Buffer.from(frame)));
  const plainPerEvent = report(
    '### upstream writes one event per write (as a model streams)',
    perEvent,
    events,
  );
  const reading = readingFloor(slices, events);
  const floor = parseFloor(
    built.frames.map((frame) => frame.slice(frame.indexOf('data: ') + 6, -2)),
  );
  const perEventUs = (ms: number): string => fmt((ms * 1000) / events, 3);
  process.stdout.write(
    '### the floor: reading each event once (no I/O, no relay code)\n\n' +
      '| reading | µs / event | × plain, 16 KiB writes | × plain, one event per write |\n' +
      '|---|---|---|---|\n' +
      `| one JSON.parse per event (data already split out) | ${perEventUs(floor)} | ` +
      `${fmt(floor / plainBulk)}× | ${fmt(floor / plainPerEvent)}× |\n` +
      `| eventsource-parser + one JSON.parse per event | ${perEventUs(reading)} | ` +
      `${fmt(reading / plainBulk)}× | ${fmt(reading / plainPerEvent)}× |\n\n` +
      'Plain http-proxy-middleware reads no event; a gateway that reads them (to rebuild a ' +
      'completion, renumber, fix ids) costs at least 1 + the first row of plain, before it ' +
      'writes a byte.\n\n',
  );
  const tapOf = (variants: Variant[]): number => median((variants[2] as Variant).times);
  const rssAfter = process.memoryUsage().rss;
  gc();
  const heapAfter = process.memoryUsage().heapUsed;
  const exchanges = 2 * (ROUNDS + WARMUP_ROUNDS) * 4;
  process.stdout.write(
    `Over the ${exchanges} exchanges above: heap after GC ${fmt(heapBefore / 1048576, 1)} → ` +
      `${fmt(heapAfter / 1048576, 1)} MiB, RSS ${fmt(rssBefore / 1048576, 0)} → ` +
      `${fmt(rssAfter / 1048576, 0)} MiB\n\n`,
  );

  process.stdout.write(
    '### memory held mid-stream (pipeline + stage), by number of text deltas\n\n' +
      '| text deltas | events | heap held after the last delta | text (UTF-16) | other | delta strings buffered |\n' +
      '|---|---|---|---|---|---|\n',
  );
  for (const count of [1_000, 10_000, 100_000]) {
    const stream = buildStream(count);
    // Twice: the first run pays for lazily compiled code.
    await heldMidStream(stream, gc);
    const held = await heldMidStream(stream, gc);
    process.stdout.write(
      `| ${count.toLocaleString('en')} | ${stream.frames.length.toLocaleString('en')} | ` +
        `${kib(held.retainedBytes)} | ${kib(held.textBytes)} | ` +
        `${kib(held.retainedBytes - held.textBytes)} | ${held.bufferedChunks} |\n`,
    );
  }
  process.stdout.write(
    `\nSummary: sseCompletion (tap) ${fmt(tapOf(bulk) / plainBulk)}× plain with 16 KiB writes, ` +
      `${fmt(tapOf(perEvent) / plainPerEvent)}× with one event per write (target ≤ 1.10×); ` +
      `one JSON.parse per event alone (no I/O) is ${fmt(floor / plainBulk)}× / ` +
      `${fmt(floor / plainPerEvent)}× of plain's whole exchange\n`,
  );
}
