/**
 * The demo (`npm run demo`): a scripted tool-calling conversation through the relay, printed as a
 * transcript. Nothing else needs to run: no Redis (memory store), no network (a fake Codex-like
 * upstream on loopback), no API key.
 *
 * The upstream is what makes gateways break agents: like the ChatGPT Codex backend it is
 * stateless (store=false, no previous_response_id), sends `response.completed` with an empty
 * `output`, and — scripted here — fails once with a 503 and once by resetting a stream. The
 * official `openai` SDK (with its own retries off) talks to the relay over HTTP, then a Codex-like
 * client over WebSocket; the transcript shows what the client saw and what the upstream got.
 *
 * Exits 0 when every turn went as expected, 1 otherwise.
 */
import { randomUUID } from 'node:crypto';
import OpenAI from 'openai';
import WebSocket from 'ws';
import { createRelay, type Relay } from '../lib';
import type { ExchangeSummary } from '../lib/ops/summary';
import type { JsonObject } from '../lib/protocol/types';
import {
  startFakeUpstream,
  type FakeUpstream,
  type RecordedRequest,
} from '../test/support/fake-upstream';

const API_KEY = 'sk-demo-not-a-real-key-0000000000';
const MODEL = 'gpt-5-codex';
const INSTRUCTIONS = 'You are a coding agent. Use the tools to inspect the project.';
const WIDTH = 96;

const tools: OpenAI.Responses.FunctionTool[] = [
  {
    type: 'function',
    name: 'list_files',
    description: 'Lists the files of a directory.',
    strict: false,
    parameters: {
      type: 'object',
      properties: { dir: { type: 'string' } },
      required: ['dir'],
      additionalProperties: false,
    },
  },
  {
    type: 'function',
    name: 'exec_command',
    description: 'Runs a shell command.',
    strict: false,
    parameters: {
      type: 'object',
      properties: { cmd: { type: 'string' } },
      required: ['cmd'],
      additionalProperties: false,
    },
  },
];

/** The "tools" of the demo agent. */
function runTool(name: string, args: string): string {
  const parsed = JSON.parse(args) as { dir?: string; cmd?: string };
  if (name === 'list_files') return `README.md package.json lib/ test/ (in ${parsed.dir ?? '.'})`;
  if (name === 'exec_command') return `$ ${parsed.cmd ?? ''}\n42 tests passed`;
  return `unknown tool ${name}`;
}

export interface DemoResult {
  /** Every line printed. */
  lines: string[];
  httpTurns: number;
  websocketTurns: number;
  toolCalls: number;
  /** The relay's retries, by reason, in order. */
  retries: string[];
  /** Completions whose output the relay rebuilt. */
  rebuilt: number;
  /** Requests the upstream received. */
  upstreamRequests: number;
}

export interface DemoOptions {
  /** Where lines go. @default stdout */
  print?: (line: string) => void;
}

class DemoFailure extends Error {}

function expect(condition: unknown, message: string): asserts condition {
  if (!condition) throw new DemoFailure(message);
}

function short(id: string | undefined): string {
  if (id === undefined) return '(none)';
  const cut = id.indexOf('_') + 9;
  return id.length > cut + 1 ? `${id.slice(0, cut)}…` : id;
}

function clip(text: string, max = 60): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > max ? `${flat.slice(0, max - 1)}…` : flat;
}

function rule(title: string): string {
  const head = `── ${title} `;
  return head + '─'.repeat(Math.max(3, WIDTH - head.length));
}

/** How one upstream request went, as the upstream saw it. */
function describeUpstream(request: RecordedRequest): string {
  const body = (request.body ?? {}) as JsonObject;
  const count = Array.isArray(body.input) ? body.input.length : 0;
  const input = `${count} input item${count === 1 ? '' : 's'},`.padEnd(16);
  const anchor = typeof body.previous_response_id === 'string' ? 'with' : 'no';
  const outcome = request.outcome ?? `http:${request.status ?? '?'}`;
  const what = outcome.startsWith('http:')
    ? `HTTP ${request.status ?? '?'}`
    : outcome.replace('stream:', 'stream ').replace('cut:reset', 'reset mid-stream');
  return `${what.padEnd(24)} ${input}${anchor} previous_response_id`;
}

/** A Codex-like WebSocket client: one `response.create` at a time, read until the terminal event. */
class CodexSocket {
  private readonly frames: JsonObject[] = [];
  private wake: (() => void) | undefined;
  private closed = false;

  private constructor(private readonly ws: WebSocket) {
    ws.on('message', (data) => {
      this.frames.push(JSON.parse(String(data)) as JsonObject);
      this.wake?.();
    });
    ws.once('close', () => {
      this.closed = true;
      this.wake?.();
    });
  }

  static open(url: string, headers: Record<string, string>): Promise<CodexSocket> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url, { headers });
      ws.once('open', () => resolve(new CodexSocket(ws)));
      ws.once('error', reject);
    });
  }

  /** Sends one `response.create`; resolves with every message of the turn. */
  async turn(body: JsonObject): Promise<JsonObject[]> {
    const start = this.frames.length;
    this.ws.send(JSON.stringify({ type: 'response.create', ...body }));
    const deadline = Date.now() + 15_000;
    for (;;) {
      const frames = this.frames.slice(start);
      const last = frames[frames.length - 1];
      if (last && /^(response\.(completed|failed|incomplete)|error)$/.test(String(last.type))) {
        return frames;
      }
      if (this.closed) throw new DemoFailure('the WebSocket closed during a turn');
      if (Date.now() > deadline) throw new DemoFailure('a WebSocket turn timed out');
      await new Promise<void>((resolve) => {
        this.wake = resolve;
        setTimeout(resolve, 200);
      });
    }
  }

  close(): void {
    this.ws.close();
  }
}

/** Runs the demo; rejects when a turn did not go as scripted. */
export async function runDemo(options: DemoOptions = {}): Promise<DemoResult> {
  const lines: string[] = [];
  const print = (line = ''): void => {
    lines.push(line);
    (options.print ?? ((text: string) => process.stdout.write(`${text}\n`)))(line);
  };
  const started = Date.now();
  let fake: FakeUpstream | undefined;
  let relay: Relay | undefined;
  try {
    fake = await startFakeUpstream({ mode: 'stateless', sparseCompletion: true, name: 'demo' });
    const upstream = fake;
    const summaries: ExchangeSummary[] = [];
    const retryDelays = new Map<string, number[]>();
    relay = createRelay({
      upstream: upstream.url,
      profile: 'codex',
      logger: false,
      retry: {
        baseDelayMs: 200,
        onRetry: (event) => {
          const delays = retryDelays.get(event.requestId) ?? [];
          delays.push(event.delayMs);
          retryDelays.set(event.requestId, delays);
        },
      },
    });
    relay.on('exchange', (summary) => {
      if (summary.route === 'responses') summaries.push(summary);
    });
    const relayUrl = await relay.listen(0, '127.0.0.1');

    print('responses-relay demo');
    print(`  upstream  ${upstream.url}  a fake Codex-like backend: stateless (store=false),`);
    print('                                  sparse response.completed (output: [])');
    print(`  relay     ${relayUrl}  profile codex, memory store, retries on`);
    print(`  clients   the official openai SDK (its own retries off) and a Codex-like WebSocket`);

    let seen = 0;
    const upstreamSince = (): RecordedRequest[] => {
      const fresh = upstream.requests.slice(seen);
      seen = upstream.requests.length;
      return fresh;
    };
    const showTurn = (summary: ExchangeSummary | undefined): void => {
      for (const request of upstreamSince()) {
        print(`          upstream  ${describeUpstream(request)}`);
      }
      expect(summary, 'the relay reported no exchange for the turn');
      const delays = retryDelays.get(summary.requestId) ?? [];
      summary.retries.forEach((reason, index) => {
        const delay = delays[index];
        const after = delay === undefined ? '' : ` after ${Math.round(delay)} ms`;
        print(`          relay     retried (${reason})${after}; the client saw nothing of it`);
      });
      if (summary.chainDepth !== undefined) {
        print(
          `          relay     expanded previous_response_id into the stored history ` +
            `(${summary.chainDepth} earlier response${summary.chainDepth === 1 ? '' : 's'})`,
        );
      }
      if (summary.completionRebuilt) {
        print('          relay     rebuilt response.completed.output from the streamed items');
      }
    };
    const lastSummary = (): ExchangeSummary | undefined => summaries[summaries.length - 1];
    // The exchange event fires when the response has ended: give it that moment.
    const settle = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 20));

    // ── HTTP ────────────────────────────────────────────────────────────────────────────────
    print();
    print(rule('1. HTTP: the official openai SDK, a tool loop with previous_response_id'));
    const client = new OpenAI({ apiKey: API_KEY, baseURL: `${relayUrl}/v1`, maxRetries: 0 });
    upstream.script(
      { kind: 'http_error', status: 503 },
      { kind: 'tool_calls', calls: [{ name: 'list_files', arguments: '{"dir":"."}' }] },
    );
    const question = 'What files are in this project?';
    print(`turn 1    user: "${question}"   (streamed)`);
    const stream = client.responses.stream({
      model: MODEL,
      instructions: INSTRUCTIONS,
      input: question,
      tools,
    });
    let events = 0;
    for await (const event of stream) {
      void event;
      events += 1;
    }
    const first = await stream.finalResponse();
    await settle();
    showTurn(lastSummary());
    const calls = first.output.filter((item) => item.type === 'function_call');
    expect(first.status === 'completed', `turn 1 ended ${first.status}`);
    expect(calls.length === 1, 'turn 1 did not return exactly one function call');
    const call = calls[0] as OpenAI.Responses.ResponseFunctionToolCall;
    print(`          client    ${events} events; ${short(first.id)} completed with`);
    print(
      `                    function_call ${call.name}(${call.arguments})  call_id ${short(call.call_id)}`,
    );
    const result = runTool(call.name, call.arguments);
    print(`tool      ${call.name} → "${clip(result)}"`);

    print(
      `turn 2    function_call_output, previous_response_id ${short(first.id)}   (not streamed)`,
    );
    const second = await client.responses.create({
      model: MODEL,
      instructions: INSTRUCTIONS,
      previous_response_id: first.id,
      input: [{ type: 'function_call_output', call_id: call.call_id, output: result }],
      tools,
    });
    await settle();
    showTurn(lastSummary());
    expect(second.status === 'completed', `turn 2 ended ${second.status}`);
    expect(second.output_text.includes('README.md'), 'turn 2 did not answer with the tool output');
    expect(second.previous_response_id === first.id, 'turn 2 does not name its anchor');
    print(
      '          relay     the backend only streams: aggregated the stream into one JSON Response',
    );
    print(`          client    ${short(second.id)} completed:`);
    print(`                    "${clip(second.output_text, 70)}"`);

    // ── WebSocket ───────────────────────────────────────────────────────────────────────────
    print();
    print(rule('2. WebSocket: a Codex-like client (responses websockets)'));
    const socket = await CodexSocket.open(`${relayUrl.replace(/^http/, 'ws')}/v1/responses`, {
      authorization: `Bearer ${API_KEY}`,
      'session-id': randomUUID(),
    });
    const common = { model: MODEL, instructions: INSTRUCTIONS, tools, store: false, stream: true };
    const terminal = (frames: JsonObject[]): JsonObject => {
      const last = frames[frames.length - 1] as JsonObject;
      expect(
        last.type === 'response.completed',
        `a WebSocket turn ended with ${String(last.type)}`,
      );
      return last.response as JsonObject;
    };

    const before = upstream.requests.length;
    const prewarm = terminal(await socket.turn({ ...common, input: [], generate: false }));
    await settle();
    expect(upstream.requests.length === before, 'the prewarm reached the upstream');
    print(
      `prewarm   generate:false → ${short(String(prewarm.id))}, answered and stored by the relay`,
    );
    print('          (nothing sent upstream: the prewarm carries the base instructions only)');
    upstreamSince();

    upstream.script(
      { kind: 'cut', afterEvents: 2, mode: 'reset' },
      { kind: 'tool_calls', calls: [{ name: 'exec_command', arguments: '{"cmd":"npm test"}' }] },
    );
    print('turn 1    user: "Run the tests."');
    const wsFirstFrames = await socket.turn({
      ...common,
      previous_response_id: prewarm.id,
      input: [
        {
          type: 'message',
          role: 'user',
          content: [{ type: 'input_text', text: 'Run the tests.' }],
        },
      ],
    });
    const wsFirst = terminal(wsFirstFrames);
    await settle();
    showTurn(lastSummary());
    const wsCall = (wsFirst.output as JsonObject[]).find((item) => item.type === 'function_call');
    expect(wsCall, 'WebSocket turn 1 did not return a function call');
    print(
      `          client    ${wsFirstFrames.length} messages; ${short(String(wsFirst.id))} completed with`,
    );
    print(`                    function_call ${String(wsCall.name)}(${String(wsCall.arguments)})`);
    const wsResult = runTool(String(wsCall.name), String(wsCall.arguments));
    print(`tool      ${String(wsCall.name)} → "${clip(wsResult)}"`);

    print(`turn 2    function_call_output, previous_response_id ${short(String(wsFirst.id))}`);
    const wsSecondFrames = await socket.turn({
      ...common,
      previous_response_id: wsFirst.id,
      input: [{ type: 'function_call_output', call_id: wsCall.call_id, output: wsResult }],
    });
    const wsSecond = terminal(wsSecondFrames);
    await settle();
    showTurn(lastSummary());
    const text = (
      (wsSecond.output as JsonObject[]).find((item) => item.type === 'message')?.content as
        JsonObject[] | undefined
    )?.[0]?.text;
    expect(typeof text === 'string' && text.includes('42 tests passed'), 'WebSocket turn 2 text');
    print(
      `          client    ${wsSecondFrames.length} messages; ${short(String(wsSecond.id))} completed:`,
    );
    print(`                    "${clip(text, 70)}"`);
    socket.close();

    // ── Summary ─────────────────────────────────────────────────────────────────────────────
    const retries = summaries.flatMap((summary) => summary.retries);
    const rebuilt = summaries.filter((summary) => summary.completionRebuilt).length;
    const anchored = upstream.requests.filter(
      (request) =>
        typeof (request.body as JsonObject | undefined)?.previous_response_id === 'string',
    ).length;
    expect(retries.length >= 2, 'the scripted failures were not retried');
    expect(anchored === 0, 'a previous_response_id reached the stateless upstream');
    print();
    print(rule('summary'));
    print(`  turns             HTTP 2, WebSocket 2 (+1 prewarm); tool calls 2; all completed`);
    print(
      `  retries           ${retries.length} by the relay (${retries.join(', ')}), none seen by a client`,
    );
    print(
      `  rebuilt outputs   ${rebuilt} completions had output: [] upstream and a full output downstream`,
    );
    print(
      `  upstream          ${upstream.requests.length} requests, ${anchored} carrying previous_response_id (it stores nothing)`,
    );
    print(
      `  done in ${((Date.now() - started) / 1000).toFixed(1)} s. Next: npx responses-relay --help, docs/operations.md`,
    );
    return {
      lines,
      httpTurns: 2,
      websocketTurns: 2,
      toolCalls: 2,
      retries,
      rebuilt,
      upstreamRequests: upstream.requests.length,
    };
  } finally {
    await relay?.close({ timeoutMs: 1000 });
    await fake?.close();
  }
}

if (require.main === module) {
  runDemo().then(
    () => process.exit(0),
    (error: unknown) => {
      const message =
        error instanceof DemoFailure ? error.message : String((error as Error)?.stack ?? error);
      process.stderr.write(`\ndemo failed: ${message}\n`);
      process.exit(1);
    },
  );
}
