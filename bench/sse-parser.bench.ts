/**
 * SSE parsing throughput: our SseParser (bytes in) against eventsource-parser 3.1.1 fed with
 * strings from a streaming TextDecoder (what wrapping it would cost), on a realistic Responses
 * stream cut into 16 KiB pieces (socket reads under load), one event per chunk (a token stream
 * written as it is generated) and 7-byte pieces (worst case).
 */
import { createParser } from 'eventsource-parser';
import { SseParser, serializeStreamEvent } from '../lib/protocol/sse';

export const title =
  'SSE parse throughput, SseParser vs eventsource-parser 3.1.1 (10,000-event Responses stream)';

const EVENT_COUNT = 10_000;
const WARMUP = 3;
const REPEATS = 15;

/** Deterministic pseudo-random numbers, so every run measures the same stream. */
function random(seed: number): () => number {
  let state = seed;
  return () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
}

const ASCII_WORDS = (
  'the relay parses every upstream event once and forwards it as it arrives; streams carry ' +
  'deltas of text, quotes "like this", new\nlines, tabs\tand other JSON escapes'
).split(' ');
/** About a third of the deltas then hold a non-ASCII character (raw UTF-8 on the wire). */
const MIXED_WORDS = [...ASCII_WORDS, 'ünïcödé,', 'emoji 🎉,', '\u2028', 'naïve', '—'];

interface BenchStream {
  bytes: Buffer;
  events: number;
  /** The same stream, one Buffer per event (how a token stream is written). */
  perEvent: Buffer[];
}

/** A Responses stream like the API's: created, one message item, many text deltas, completed. */
function buildStream(words: readonly string[] = MIXED_WORDS): BenchStream {
  const next = random(42);
  const responseId = 'resp_68af0c6b2a3c8190a1b2c3d4e5f60718';
  const itemId = 'msg_68af0c6c1e5c8190b2c3d4e5f6071829';
  const base = {
    id: responseId,
    object: 'response',
    created_at: 1756302443,
    status: 'in_progress',
    background: false,
    error: null,
    incomplete_details: null,
    instructions: 'You are a helpful assistant.',
    max_output_tokens: null,
    model: 'gpt-5-2025-08-07',
    output: [] as unknown[],
    parallel_tool_calls: true,
    previous_response_id: null,
    reasoning: { effort: 'medium', summary: null },
    store: true,
    temperature: 1,
    text: { format: { type: 'text' }, verbosity: 'medium' },
    tool_choice: 'auto',
    tools: [],
    top_p: 1,
    truncation: 'disabled',
    usage: null,
    user: null,
    metadata: {},
  };
  const parts: string[] = [];
  let sequence = 0;
  const emit = (event: { type: string; [key: string]: unknown }) => {
    parts.push(serializeStreamEvent({ ...event, sequence_number: sequence++ } as { type: string }));
  };
  emit({ type: 'response.created', response: base });
  emit({ type: 'response.in_progress', response: base });
  const item = {
    id: itemId,
    type: 'message',
    status: 'in_progress',
    content: [],
    role: 'assistant',
  };
  emit({ type: 'response.output_item.added', output_index: 0, item });
  const emptyPart = { type: 'output_text', annotations: [], logprobs: [], text: '' };
  emit({
    type: 'response.content_part.added',
    item_id: itemId,
    output_index: 0,
    content_index: 0,
    part: emptyPart,
  });
  let text = '';
  const deltas = EVENT_COUNT - 8;
  for (let index = 0; index < deltas; index += 1) {
    let delta = '';
    while (delta.length < 20) delta += `${words[Math.floor(next() * words.length)]} `;
    text += delta;
    emit({
      type: 'response.output_text.delta',
      item_id: itemId,
      output_index: 0,
      content_index: 0,
      delta,
      logprobs: [],
      obfuscation: Math.floor(next() * 2 ** 40).toString(36),
    });
  }
  emit({
    type: 'response.output_text.done',
    item_id: itemId,
    output_index: 0,
    content_index: 0,
    text,
    logprobs: [],
  });
  const part = { ...emptyPart, text };
  emit({
    type: 'response.content_part.done',
    item_id: itemId,
    output_index: 0,
    content_index: 0,
    part,
  });
  const doneItem = { ...item, status: 'completed', content: [part] };
  emit({ type: 'response.output_item.done', output_index: 0, item: doneItem });
  emit({
    type: 'response.completed',
    response: {
      ...base,
      status: 'completed',
      output: [doneItem],
      usage: { input_tokens: 1200, output_tokens: deltas * 5, total_tokens: 1200 + deltas * 5 },
    },
  });
  return {
    bytes: Buffer.from(parts.join(''), 'utf8'),
    events: sequence,
    perEvent: parts.map((part) => Buffer.from(part, 'utf8')),
  };
}

function chunk(bytes: Buffer, size: number): Buffer[] {
  const chunks: Buffer[] = [];
  for (let at = 0; at < bytes.length; at += size) chunks.push(bytes.subarray(at, at + size));
  return chunks;
}

type Runner = (chunks: readonly Buffer[]) => number;

const ours: Runner = (chunks) => {
  let events = 0;
  let bytes = 0;
  const parser = new SseParser({
    onMessage(message) {
      events += 1;
      bytes += message.data.length; // touch the result, as a consumer would
    },
  });
  for (const piece of chunks) parser.push(piece);
  parser.end();
  return bytes >= 0 ? events : -1;
};

const theirs: Runner = (chunks) => {
  let events = 0;
  let bytes = 0;
  const decoder = new TextDecoder();
  const parser = createParser({
    onEvent(event) {
      events += 1;
      bytes += event.data.length;
    },
  });
  for (const piece of chunks) parser.feed(decoder.decode(piece, { stream: true }));
  const tail = decoder.decode();
  if (tail) parser.feed(tail);
  return bytes >= 0 ? events : -1;
};

function time(runner: Runner, chunks: readonly Buffer[], expected: number): number {
  const start = process.hrtime.bigint();
  const events = runner(chunks);
  const elapsed = Number(process.hrtime.bigint() - start) / 1e6;
  if (events !== expected) throw new Error(`expected ${expected} events, parsed ${events}`);
  return elapsed;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? NaN;
}

interface Scenario {
  label: string;
  chunks: Buffer[];
  events: number;
  megabytes: number;
}

async function measure(scenario: Scenario): Promise<string[][]> {
  const { chunks, events, megabytes } = scenario;
  const runners: Array<[string, Runner]> = [
    ['SseParser', ours],
    ['eventsource-parser', theirs],
  ];
  for (let round = 0; round < WARMUP; round += 1) {
    for (const [, runner] of runners) time(runner, chunks, events);
  }
  const samples = new Map<string, number[]>(runners.map(([name]) => [name, []]));
  for (let round = 0; round < REPEATS; round += 1) {
    // Alternate the order so drift (GC, CPU frequency, other load) hits both alike.
    for (const [name, runner] of round % 2 === 0 ? runners : [...runners].reverse()) {
      samples.get(name)?.push(time(runner, chunks, events));
    }
    await new Promise((resolve) => setImmediate(resolve));
  }
  const reference = median(samples.get('eventsource-parser') ?? []);
  return runners.map(([name]) => {
    const times = samples.get(name) ?? [];
    const ms = median(times);
    return [
      `${scenario.label} (${chunks.length})`,
      name,
      ms.toFixed(2),
      Math.min(...times).toFixed(2),
      Math.round(events / (ms / 1000)).toLocaleString('en-US'),
      (megabytes / (ms / 1000)).toFixed(1),
      `${(reference / ms).toFixed(2)}x`,
    ];
  });
}

export async function run(): Promise<void> {
  const mixed = buildStream();
  const ascii = buildStream(ASCII_WORDS);
  const megabytes = mixed.bytes.length / (1024 * 1024);
  process.stdout.write(
    `stream: ${mixed.events} events, ${megabytes.toFixed(2)} MiB (a third of the deltas hold non-ASCII text; ` +
      `"ASCII" is the same stream without it); ${WARMUP} warm-up + ${REPEATS} timed runs each\n\n`,
  );
  const scenario = (label: string, stream: BenchStream, chunks: Buffer[]): Scenario => ({
    label,
    chunks,
    events: stream.events,
    megabytes: stream.bytes.length / (1024 * 1024),
  });
  const scenarios = [
    scenario('16 KiB', mixed, chunk(mixed.bytes, 16 * 1024)),
    scenario('1 event', mixed, mixed.perEvent),
    scenario('1 event, ASCII', ascii, ascii.perEvent),
    scenario('7 B', mixed, chunk(mixed.bytes, 7)),
  ];
  const rows: string[][] = [
    ['chunks', 'parser', 'median ms', 'best ms', 'events/s', 'MiB/s', 'vs eventsource-parser'],
  ];
  for (const each of scenarios) rows.push(...(await measure(each)));
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => row[column]!.length)));
  const format = (row: string[]) =>
    `| ${row.map((cell, column) => cell.padEnd(widths[column]!)).join(' | ')} |\n`;
  process.stdout.write(format(rows[0]!));
  process.stdout.write(`| ${widths.map((width) => '-'.repeat(width)).join(' | ')} |\n`);
  for (const row of rows.slice(1)) process.stdout.write(format(row));
  process.stdout.write(
    '\nevents/s and MiB/s from the median; vs eventsource-parser = its median / this median (>1 is faster)\n',
  );
}
