/**
 * Soak (issue 11): two standalone relays (`createRelay`, openai profile, stateless mode) in
 * separate processes share one Redis and sit in front of ONE stateless fake upstream. Many
 * streaming tool-calling conversations run at once, each request going to the other instance than
 * the one before. Afterwards: every turn of every conversation completed; the fake received every
 * request exactly once, each one the conversation's exact full history with every tool output
 * after its call; the relays' memory came back near where it started; they logged no error.
 */
import Redis from 'ioredis';
import path from 'node:path';
import type { JsonObject, ResponseItem } from '../../lib/protocol/types';
import { startFakeUpstream, type FakeUpstream } from '../support/fake-upstream';
import { EXEC_COMMAND_TOOL } from '../support/fake-upstream/testing';
import { startGatewayScript, type GatewayChild } from '../support/gateway-process';
import { testKeyPrefix, testRedisUrl } from '../support/redis';
import { deleteKeysUnder } from '../store/redis-harness';

const CONVERSATIONS = 200;
/** Tool turns per conversation: prompt → function_call, then function_call_output → text. */
const TOOL_TURNS = 3;
const REQUESTS_PER_CONVERSATION = 2 * TOOL_TURNS;
const TOTAL_REQUESTS = CONVERSATIONS * REQUESTS_PER_CONVERSATION;
/** Items one tool turn adds to the history: prompt, call, output, answer. */
const ITEMS_PER_TOOL_TURN = 4;
/** How far the RSS of an instance may stay above its baseline after the run and an idle pause. */
const RSS_SLACK_BYTES = 128 * 1024 * 1024;
/** The same for the V8 heap in use after a forced GC (what a leak of exchanges would grow). */
const HEAP_SLACK_BYTES = 32 * 1024 * 1024;
const IDLE_MS = 1500;
/** A bound on one request, so a hung exchange fails the test instead of hanging it. */
const REQUEST_DEADLINE_MS = 25_000;

const MODEL = 'gpt-test';
const TOOLS = [EXEC_COMMAND_TOOL];
const TENANT_SECRET = 'soak-test-secret';
const TENANT_KEYS = ['sk-soak-tenant-a-0123456789', 'sk-soak-tenant-b-0123456789'];
const SCRIPT = path.join(__dirname, 'fixtures/relay-instance.ts');
const TERMINAL = new Set(['response.completed', 'response.failed', 'response.incomplete']);

jest.setTimeout(90_000);

type ResponseBody = JsonObject & { id: string; status: string; output: ResponseItem[] };

interface Conversation {
  name: string;
  key: string;
  /** What each request's upstream input must be: the history so far, then the delta. */
  expected: ResponseItem[][];
  /** The completed responses, in order. */
  responses: ResponseBody[];
  /** Why the conversation stopped early, if it did. */
  failure?: string;
}

/** The `data:` payloads of an SSE body, parsed. */
function sseEvents(text: string): JsonObject[] {
  const events: JsonObject[] = [];
  for (const block of text.split(/\r?\n\r?\n/)) {
    const data = block
      .split(/\r?\n/)
      .filter((line) => line.startsWith('data:'))
      .map((line) => line.slice(5).replace(/^ /, ''))
      .join('\n');
    if (data === '' || data === '[DONE]') continue;
    events.push(JSON.parse(data) as JsonObject);
  }
  return events;
}

/** One streamed turn over fetch (undici, keep-alive); the terminal event's Response. */
async function streamTurn(baseUrl: string, key: string, body: JsonObject): Promise<ResponseBody> {
  const answer = await fetch(`${baseUrl}/v1/responses`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
    body: JSON.stringify({ model: MODEL, tools: TOOLS, stream: true, ...body }),
    signal: AbortSignal.timeout(REQUEST_DEADLINE_MS),
  });
  const text = await answer.text();
  if (answer.status !== 200) {
    throw new Error(`HTTP ${answer.status} from ${baseUrl}: ${text.slice(0, 300)}`);
  }
  const terminal = sseEvents(text)
    .reverse()
    .find((event) => TERMINAL.has(String(event.type)));
  const response = terminal?.response as ResponseBody | undefined;
  if (terminal?.type !== 'response.completed' || response === undefined) {
    throw new Error(`no response.completed from ${baseUrl}: ${text.slice(-300)}`);
  }
  return response;
}

function callIdOf(response: ResponseBody): string {
  const call = response.output.find((item) => item.type === 'function_call');
  if (call === undefined || typeof call.call_id !== 'string') {
    throw new Error(`response ${response.id} holds no function call`);
  }
  return call.call_id;
}

/** Runs one conversation; request n goes to `instances[(offset + n) % 2]`. Never throws. */
async function runConversation(
  instances: GatewayChild[],
  conversation: Conversation,
  offset: number,
): Promise<void> {
  let history: ResponseItem[] = [];
  let previous: string | undefined;
  let n = offset;
  const send = async (delta: ResponseItem[]): Promise<ResponseBody> => {
    const instance = instances[n % instances.length] as GatewayChild;
    n += 1;
    conversation.expected.push([...history, ...delta]);
    const response = await streamTurn(instance.url, conversation.key, {
      input: delta,
      ...(previous === undefined ? {} : { previous_response_id: previous }),
    });
    history = [...history, ...delta, ...response.output];
    previous = response.id;
    conversation.responses.push(response);
    return response;
  };
  try {
    for (let turn = 0; turn < TOOL_TURNS; turn += 1) {
      const prompt = `${conversation.name}: step ${turn}`;
      const asked = await send([{ type: 'message', role: 'user', content: prompt }]);
      const output = `${conversation.name} ${turn} ok`;
      const answered = await send([
        { type: 'function_call_output', call_id: callIdOf(asked), output },
      ]);
      if (!answered.output.some((item) => item.type === 'message')) {
        throw new Error(`response ${answered.id} to a tool output holds no message`);
      }
    }
  } catch (error) {
    conversation.failure = error instanceof Error ? error.message : String(error);
  }
}

interface Memory {
  rss: number;
  heapUsed: number;
}

async function memoryOf(instance: GatewayChild): Promise<Memory> {
  const answer = await fetch(`${instance.url}/debug/memory`, {
    signal: AbortSignal.timeout(5000),
  });
  return (await answer.json()) as Memory;
}

/** The sum of the samples of a Prometheus metric whose labels include every `labels` pair. */
function metricSum(text: string, name: string, labels: Record<string, string> = {}): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    const match = /^([a-z_]+)(\{[^}]*\})? (\S+)$/.exec(line);
    if (match?.[1] !== name) continue;
    const set = match[2] ?? '';
    if (Object.entries(labels).every(([key, value]) => set.includes(`${key}="${value}"`))) {
      sum += Number(match[3]);
    }
  }
  return sum;
}

async function metricsOf(instance: GatewayChild): Promise<string> {
  const answer = await fetch(`${instance.url}/metrics`, { signal: AbortSignal.timeout(5000) });
  return answer.text();
}

/** The pino lines of a child's stderr at level error (50) or above, and its other lines. */
function errorLines(stderr: string): string[] {
  return stderr
    .split('\n')
    .filter((line) => line.trim() !== '')
    .filter((line) => {
      try {
        const parsed = JSON.parse(line) as { level?: unknown };
        return typeof parsed.level !== 'number' || parsed.level >= 50;
      } catch {
        return true;
      }
    });
}

/** The conversation a request belongs to: the name in its first prompt. */
function conversationOf(body: JsonObject): string | undefined {
  const first = Array.isArray(body.input) ? (body.input[0] as ResponseItem | undefined) : undefined;
  const content = first?.content;
  return typeof content === 'string' ? content.split(':')[0] : undefined;
}

/** The call ids of function_call_output items with no function_call earlier in `input`. */
function unpairedOutputs(input: ResponseItem[]): string[] {
  const calls = new Set<unknown>();
  const unpaired: string[] = [];
  for (const item of input) {
    if (item.type === 'function_call') calls.add(item.call_id);
    if (item.type === 'function_call_output' && !calls.has(item.call_id)) {
      unpaired.push(String(item.call_id));
    }
  }
  return unpaired;
}

describe('soak: two relay processes, one stateless upstream, one shared Redis', () => {
  const prefix = testKeyPrefix('soak');
  let redis: Redis | undefined;
  let fake: FakeUpstream | undefined;
  const children: GatewayChild[] = [];

  afterAll(async () => {
    await Promise.allSettled(children.splice(0).map((child) => child.stop()));
    await fake?.close();
    if (redis) {
      await deleteKeysUnder(redis, prefix).catch(() => undefined);
      await redis.quit().catch(() => redis?.disconnect());
    }
  });

  it(`${CONVERSATIONS} concurrent streaming conversations of ${TOOL_TURNS} tool turns, alternating instances`, async () => {
    redis = new Redis(testRedisUrl());
    fake = await startFakeUpstream({ mode: 'stateless', name: 'soak' });
    const env = {
      UPSTREAM: fake.url,
      REDIS_URL: testRedisUrl(),
      KEY_PREFIX: prefix,
      TENANT_SECRET,
    };
    const started = await Promise.allSettled([
      startGatewayScript(SCRIPT, env),
      startGatewayScript(SCRIPT, env),
    ]);
    for (const result of started) if (result.status === 'fulfilled') children.push(result.value);
    for (const result of started) if (result.status === 'rejected') throw result.reason;
    const instances = [...children];
    expect(instances[0]?.pid).not.toBe(instances[1]?.pid);

    const before = await Promise.all(instances.map(memoryOf));

    const conversations: Conversation[] = Array.from({ length: CONVERSATIONS }, (_, i) => ({
      name: `soak-${String(i).padStart(3, '0')}`,
      key: TENANT_KEYS[i % TENANT_KEYS.length] as string,
      expected: [],
      responses: [],
    }));
    const startedAt = Date.now();
    await Promise.all(conversations.map((c, i) => runConversation(instances, c, i)));
    const durationMs = Date.now() - startedAt;

    // Every conversation completed every turn.
    const failures = conversations
      .filter((c) => c.failure !== undefined)
      .map((c) => `${c.name}: ${c.failure}`);
    expect(failures.slice(0, 5)).toEqual([]);
    for (const conversation of conversations) {
      expect(conversation.responses).toHaveLength(REQUESTS_PER_CONVERSATION);
    }
    const responseIds = new Set(conversations.flatMap((c) => c.responses.map((r) => r.id)));
    expect(responseIds.size).toBe(TOTAL_REQUESTS);

    // The fake saw each request exactly once: no loss, no duplicate, no retry.
    const requests = fake.requests;
    expect(requests).toHaveLength(TOTAL_REQUESTS);
    const odd = requests.filter(
      (r) =>
        r.method !== 'POST' ||
        r.status !== 200 ||
        r.outcome !== 'stream:completed' ||
        r.attempt !== 1,
    );
    expect(odd.map((r) => `${r.index} ${r.method} ${r.path} ${r.status} ${r.outcome}`)).toEqual([]);

    // Every chain is intact: each upstream request is the conversation's full history + delta.
    const byConversation = new Map<string, JsonObject[]>();
    for (const request of requests) {
      const body = request.body as JsonObject;
      const name = conversationOf(body) ?? `unknown request ${request.index}`;
      const list = byConversation.get(name) ?? [];
      list.push(body);
      byConversation.set(name, list);
    }
    expect([...byConversation.keys()].sort()).toEqual(conversations.map((c) => c.name));
    const broken: string[] = [];
    for (const conversation of conversations) {
      const bodies = byConversation.get(conversation.name) ?? [];
      if (bodies.length !== REQUESTS_PER_CONVERSATION) {
        broken.push(`${conversation.name}: ${bodies.length} upstream requests`);
        continue;
      }
      bodies.forEach((body, k) => {
        const input = body.input as ResponseItem[];
        const turn = Math.floor(k / 2);
        const count = ITEMS_PER_TOOL_TURN * turn + (k % 2 === 0 ? 1 : 3);
        const problems = [
          input.length === count ? '' : `${input.length} items, expected ${count}`,
          'previous_response_id' in body ? 'previous_response_id sent upstream' : '',
          body.store === false ? '' : 'store is not false',
          unpairedOutputs(input).length === 0 ? '' : `unpaired ${unpairedOutputs(input).join()}`,
          JSON.stringify(input) === JSON.stringify(conversation.expected[k])
            ? ''
            : 'input differs from the expected history',
        ].filter((problem) => problem !== '');
        if (problems.length > 0) broken.push(`${conversation.name} #${k}: ${problems.join('; ')}`);
      });
    }
    expect(broken.slice(0, 10)).toEqual([]);

    // Each instance served its half, once each upstream, without a retry or a store error.
    const metrics = await Promise.all(instances.map(metricsOf));
    for (const text of metrics) {
      expect({
        served: metricSum(text, 'relay_requests_total', { route: 'responses', status: '200' }),
        others: metricSum(text, 'relay_requests_total', { route: 'responses' }),
        attempts: metricSum(text, 'relay_upstream_attempts_total', { route: 'responses' }),
        retries: metricSum(text, 'relay_retries_total'),
        storeErrors: metricSum(text, 'relay_store_errors_total'),
        activeStreams: metricSum(text, 'relay_active_streams'),
      }).toEqual({
        served: TOTAL_REQUESTS / 2,
        others: TOTAL_REQUESTS / 2,
        attempts: TOTAL_REQUESTS / 2,
        retries: 0,
        storeErrors: 0,
        activeStreams: 0,
      });
    }

    // Memory: after a short idle and a forced GC, each instance is back near its baseline.
    await new Promise((resolve) => setTimeout(resolve, IDLE_MS));
    const after = await Promise.all(instances.map(memoryOf));
    instances.forEach((_, i) => {
      const [was, is] = [before[i] as Memory, after[i] as Memory];
      expect(is.rss).toBeLessThanOrEqual(was.rss + RSS_SLACK_BYTES);
      expect(is.heapUsed).toBeLessThanOrEqual(was.heapUsed + HEAP_SLACK_BYTES);
    });

    // No error-level line (nor anything that is not a pino line) on either instance's stderr.
    for (const instance of instances) {
      expect(errorLines(instance.stderr())).toEqual([]);
    }

    if (process.env.SOAK_REPORT === '1') {
      const mib = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
      process.stdout.write(
        `soak: ${CONVERSATIONS} conversations × ${REQUESTS_PER_CONVERSATION} requests = ` +
          `${requests.length} upstream requests in ${durationMs} ms; RSS ` +
          instances
            .map((_, i) => `${mib((before[i] as Memory).rss)} → ${mib((after[i] as Memory).rss)}`)
            .join(', ') +
          '; heap ' +
          instances
            .map(
              (_, i) =>
                `${mib((before[i] as Memory).heapUsed)} → ${mib((after[i] as Memory).heapUsed)}`,
            )
            .join(', ') +
          '\n',
      );
    }
  });
});
