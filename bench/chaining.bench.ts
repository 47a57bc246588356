/**
 * Response chaining cost on a 200-turn tool conversation against the stateless fake upstream:
 * the latency the relay adds per turn (a turn through the relay, anchored on the previous
 * response, minus the same full-history request sent straight to the fake), at turn 10 and at
 * turn 200, on MemorySessionStore and on RedisSessionStore; and the Redis round trips per turn,
 * counted by MONITOR on the server (commands run inside scripts are not round trips).
 *
 * Redis: REDIS_URL if set, else a `redis-server` started on a free port for the run.
 */
import express from 'express';
import { createProxyMiddleware } from 'http-proxy-middleware';
import Redis from 'ioredis';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import { relayProxyOptions } from '../lib/middleware/relay-proxy';
import { chainingRouter } from '../lib/middleware/chaining-router';
import { sessionFromHeaders } from '../lib/middleware/chaining-session';
import { responseChaining } from '../lib/middleware/response-chaining';
import type { ResponseItem } from '../lib/protocol/types';
import { MemorySessionStore } from '../lib/store/memory-session-store';
import { RedisSessionStore } from '../lib/store/redis-session-store';
import type { SessionStore, StoredResponse } from '../lib/store/session-store';
import { TEST_TENANT_SECRET } from '../test/integration/fixtures/chaining-app';
import {
  AUTH_A,
  firstCallId,
  toolOutput,
  turn,
  userMessage,
  type Turn,
} from '../test/integration/fixtures/chaining-client';
import { startFakeUpstream, type FakeUpstream } from '../test/support/fake-upstream';
import { EXEC_COMMAND_TOOL } from '../test/support/fake-upstream/testing';
import { listen } from '../test/support/listen';
import { spawnRedis, type SpawnedRedis } from '../test/support/redis-server';

export const title =
  'response chaining: added latency per turn at turn 10 vs 200 (200-turn tool conversation) and Redis round trips per turn';

const TURNS = 200;
const SAMPLES = 41;
const REPORT_AT = [10, 200];
const ROUND_TRIP_TURNS = 10;
const MODEL = 'gpt-bench';
const TOOLS = [EXEC_COMMAND_TOOL];
/** A tool output of about 1 KiB, like a short command output. */
const OUTPUT_TEXT = 'total 42\n' + 'drwxr-xr-x  2 user user 4096 Jan  1 00:00 dir\n'.repeat(22);

type Response = NonNullable<Turn['response']>;

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1
    ? (sorted[middle] as number)
    : ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2;
}

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] as number;
}

async function timed(run: () => Promise<Turn>): Promise<{ ms: number; result: Turn }> {
  const start = performance.now();
  const result = await run();
  const ms = performance.now() - start;
  if (result.status !== 200 || result.response?.status !== 'completed') {
    throw new Error(`turn failed: ${result.status} ${result.text.slice(0, 300)}`);
  }
  return { ms, result };
}

/** The next input of the conversation: a prompt after text, the call's output after a call. */
function nextInput(previous: Response | undefined, n: number): ResponseItem[] {
  if (previous?.output.some((item) => item.type === 'function_call')) {
    return [toolOutput(firstCallId(previous), `${OUTPUT_TEXT}(${n})`)];
  }
  return [userMessage(`Step ${n}: list the directory again and summarise it.`)];
}

interface Measured {
  addedAt: Map<number, number[]>;
  directAt: Map<number, number[]>;
  /** responseChaining's own time before the request leaves (expansion), per sample. */
  expandAt: Map<number, number[]>;
  /** The store write awaited before the terminal event, per sample. */
  storeAt: Map<number, number[]>;
  /** One added-latency sample per turn, for the trend. */
  trend: number[];
  historyBytes: number;
  last: Response;
}

async function conversation(relayUrl: string, fake: FakeUpstream): Promise<Measured> {
  const addedAt = new Map<number, number[]>();
  const directAt = new Map<number, number[]>();
  const expandAt = new Map<number, number[]>();
  const storeAt = new Map<number, number[]>();
  const trend: number[] = [];
  let history: ResponseItem[] = [];
  let previous: Response | undefined;
  for (let n = 1; n <= TURNS; n += 1) {
    const input = nextInput(previous, n);
    const anchor = previous?.id;
    const viaRelay = () =>
      turn(relayUrl, {
        model: MODEL,
        tools: TOOLS,
        input,
        store: false,
        ...(anchor === undefined ? {} : { previous_response_id: anchor }),
      });
    const direct = () =>
      turn(
        fake.url,
        { model: MODEL, tools: TOOLS, input: [...history, ...input], store: false },
        { headers: {} },
      );
    const samples = REPORT_AT.includes(n) ? SAMPLES : 1;
    const added: number[] = [];
    const directs: number[] = [];
    const expands: number[] = [];
    const stores: number[] = [];
    let kept: Response | undefined;
    for (let s = 0; s < samples; s += 1) {
      // Repeated samples fork from the same anchor; the conversation continues from the last.
      // Alternate the order so neither side always runs on a warmer socket.
      const plain = s % 2 === 0 ? await timed(direct) : undefined;
      const relay = await timed(viaRelay);
      expands.push(lastTurn.expandMs);
      stores.push(lastTurn.storeMs);
      const other = plain ?? (await timed(direct));
      added.push(relay.ms - other.ms);
      directs.push(other.ms);
      kept = relay.result.response;
    }
    trend.push(added[added.length - 1] as number);
    if (samples > 1) {
      addedAt.set(n, added);
      directAt.set(n, directs);
      expandAt.set(n, expands);
      storeAt.set(n, stores);
    }
    history = [...history, ...input, ...(kept as Response).output];
    previous = kept;
  }
  return {
    addedAt,
    directAt,
    expandAt,
    storeAt,
    trend,
    historyBytes: Buffer.byteLength(JSON.stringify(history)),
    last: previous as Response,
  };
}

function row(label: string, measured: Measured): string {
  const ms = (values: number[] | undefined): string => median(values ?? []).toFixed(2);
  const cell = (n: number): string =>
    `added ${ms(measured.addedAt.get(n))} ms (p90 ${percentile(measured.addedAt.get(n) ?? [], 90).toFixed(2)}; ` +
    `direct ${ms(measured.directAt.get(n))}), expansion ${ms(measured.expandAt.get(n))}, ` +
    `store write ${ms(measured.storeAt.get(n))}`;
  const windows = [0, 50, 100, 150].map((from) =>
    median(measured.trend.slice(from, from + 50)).toFixed(2),
  );
  return (
    `${label}\n  turn  10: ${cell(10)}\n  turn 200: ${cell(200)}\n` +
    `  added, median of each 50 turns (1 sample per turn): ${windows.join(' / ')} ms; ` +
    `history at turn 200: ${(measured.historyBytes / 1024).toFixed(0)} KiB`
  );
}

/** What the relay itself spent on the last turn. */
const lastTurn = { expandMs: 0, storeMs: 0 };

/** A store that times its writes (the before-final hook awaits them). */
function timedWrites(store: SessionStore): SessionStore {
  const timed = Object.assign(Object.create(store) as SessionStore, {
    async putResponse(record: StoredResponse) {
      const start = performance.now();
      await store.putResponse(record);
      lastTurn.storeMs = performance.now() - start;
    },
  });
  const withHead = store.putSessionResponse;
  if (withHead !== undefined) {
    timed.putSessionResponse = async (record: StoredResponse, sessionKey: string) => {
      const start = performance.now();
      await withHead.call(store, record, sessionKey);
      lastTurn.storeMs = performance.now() - start;
    };
  }
  return timed;
}

/**
 * The documented mount order (body parser → responseChaining → proxy in proxy mode), with a
 * timer around responseChaining: what expansion costs before the request leaves.
 */
async function withGateway<T>(
  store: SessionStore,
  fake: FakeUpstream,
  work: (url: string) => Promise<T>,
  sessions = false,
): Promise<T> {
  const chaining = responseChaining({
    store: timedWrites(store),
    upstreamMode: 'stateless',
    tenantSecret: TEST_TENANT_SECRET,
    session: sessions ? sessionFromHeaders() : undefined,
    logger: {
      warn: () => undefined,
      error: (_details, message) => process.stderr.write(`${message}\n`),
    },
  });
  const timedChaining = (
    req: IncomingMessage,
    res: ServerResponse,
    next: (e?: unknown) => void,
  ) => {
    const start = performance.now();
    chaining(req, res, (error?: unknown) => {
      lastTurn.expandMs = performance.now() - start;
      next(error);
    });
  };
  const app = express();
  app.post(
    '/v1/responses',
    express.json({ limit: '32mb' }),
    timedChaining,
    createProxyMiddleware<IncomingMessage, ServerResponse>({
      router: chainingRouter({ upstreams: { codex: fake.url } }),
      changeOrigin: true,
      ...relayProxyOptions(),
    }),
  );
  const gateway = await listen(app);
  try {
    return await work(gateway.url);
  } finally {
    await gateway.close();
  }
}

/** Counts the commands clients sent that touch `prefix` (script-internal commands excluded). */
async function countRoundTrips(
  url: string,
  prefix: string,
  work: () => Promise<void>,
): Promise<Map<string, number>> {
  const watcher = new Redis(url);
  const monitor = await watcher.monitor();
  const counts = new Map<string, number>();
  monitor.on('monitor', (_time: string, args: string[], source: string) => {
    if (source === 'lua' || !args.some((arg) => arg.includes(prefix))) return;
    const name = (args[0] ?? '').toLowerCase();
    counts.set(name, (counts.get(name) ?? 0) + 1);
  });
  await work();
  await new Promise((resolve) => setTimeout(resolve, 200));
  monitor.disconnect();
  watcher.disconnect();
  return counts;
}

function total(counts: Map<string, number>): number {
  let sum = 0;
  for (const value of counts.values()) sum += value;
  return sum;
}

export async function run(): Promise<void> {
  const fake = await startFakeUpstream({ mode: 'stateless', name: 'codex' });
  let spawned: SpawnedRedis | undefined;
  let redisUrl = process.env.REDIS_URL;
  if (!redisUrl) {
    spawned = await spawnRedis();
    redisUrl = spawned.url;
  }
  const redis = new Redis(redisUrl, { maxRetriesPerRequest: 1 });
  const prefix = `bench-chaining-${process.pid}`;
  try {
    // Warm-up (JIT, sockets, script loading) on a throwaway conversation.
    await withGateway(new MemorySessionStore(), fake, async (url) => {
      let previous: Response | undefined;
      for (let n = 0; n < 20; n += 1) {
        const result = await turn(url, {
          model: MODEL,
          tools: TOOLS,
          input: nextInput(previous, n),
          ...(previous ? { previous_response_id: previous.id } : {}),
        });
        previous = result.response;
      }
    });

    const memory = await withGateway(new MemorySessionStore(), fake, (url) =>
      conversation(url, fake),
    );
    const redisStore = new RedisSessionStore({ redis, keyPrefix: prefix });
    const onRedis = await withGateway(redisStore, fake, (url) => conversation(url, fake));
    process.stdout.write(
      'added latency per turn = relay turn (anchored, expanded from the store) − the same full-history request sent directly\n',
    );
    process.stdout.write(`${row('memory', memory)}\n${row('redis', onRedis)}\n`);

    // Round trips: anchored turns continuing the Redis conversation.
    let previous: Response = onRedis.last;
    const anchored = await withGateway(redisStore, fake, (url) =>
      countRoundTrips(redisUrl as string, prefix, async () => {
        for (let n = 0; n < ROUND_TRIP_TURNS; n += 1) {
          const result = await turn(url, {
            model: MODEL,
            tools: TOOLS,
            input: nextInput(previous, n),
            previous_response_id: previous.id,
          });
          previous = result.response as Response;
        }
      }),
    );
    // Session turns: no anchor, a session header (tool outputs are injected; prompts are roots).
    const sessionPrefix = `${prefix}-s`;
    const sessionStore = new RedisSessionStore({ redis, keyPrefix: sessionPrefix });
    const sessioned = await withGateway(
      sessionStore,
      fake,
      (url) =>
        countRoundTrips(redisUrl as string, sessionPrefix, async () => {
          let last: Response | undefined;
          for (let n = 0; n < ROUND_TRIP_TURNS; n += 1) {
            const result = await turn(
              url,
              { model: MODEL, tools: TOOLS, input: nextInput(last, n) },
              { headers: { ...AUTH_A, 'session-id': 'bench-session' } },
            );
            last = result.response as Response;
          }
        }),
      true,
    );
    const describe = (counts: Map<string, number>): string =>
      [...counts.entries()].map(([name, count]) => `${name} ×${count}`).join(', ');
    process.stdout.write(
      `redis round trips per anchored turn: ${(total(anchored) / ROUND_TRIP_TURNS).toFixed(2)} ` +
        `(${ROUND_TRIP_TURNS} turns: ${describe(anchored)})\n`,
    );
    process.stdout.write(
      `redis round trips per session turn (no anchor, session header): ${(total(sessioned) / ROUND_TRIP_TURNS).toFixed(2)} ` +
        `(${ROUND_TRIP_TURNS} turns: ${describe(sessioned)})\n`,
    );
  } finally {
    for (const key of await redis.keys(`${prefix}*`)) await redis.del(key);
    redis.disconnect();
    await fake.close();
    await spawned?.stop();
  }
}
