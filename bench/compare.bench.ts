/**
 * The relay against a plain proxy, end to end on loopback (issue 11). One fake Responses upstream
 * (stateful, in a child process) per case; the same in-process driver (keep-alive `http.Agent`,
 * a bounded number of requests, a fixed concurrency) reaches it four ways:
 *
 * - direct: the fake upstream itself;
 * - pass-through: Express + http-proxy-middleware, `agent: new http.Agent({ keepAlive: true })`;
 * - reading floor (streams only): the same pass-through, which also feeds each stream to our SSE
 *   parser and `JSON.parse`s every event, and does nothing else: the least any gateway pays that
 *   reads the events (to rebuild a completion, renumber, fix ids, store the turn), as the relay must;
 * - relay (memory): `createRelay({ profile: 'openai', upstreamMode: 'stateful', store: memory,
 *   logger: false, metrics: false, websocket: false })`;
 * - relay (Redis): the same on a RedisSessionStore (REDIS_URL, else 127.0.0.1:6379; skipped when
 *   unreachable).
 *
 * Each gateway runs in a child process of its own, started fresh for each case, so its peak RSS
 * (`resourceUsage().maxRSS`) is that case's alone. Within a case the targets take turns, in
 * rounds, so outside load falls on all of them alike. Cases: a non-stream small JSON answer, a
 * 100-event stream, a 10,000-event stream, and 50-turn tool conversations chained with
 * `previous_response_id` (`stream: false`; latency per turn). Latency of a stream is its total
 * time (request sent → last byte); time to first event is to the first body byte.
 *
 * `COMPARE_SCALE=0.25 npm run bench -- compare` shrinks every request count.
 */
import { fork, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import path from 'node:path';
import Redis from 'ioredis';
import type { Behaviour } from '../test/support/fake-upstream';
import type { ChildKind, ReadyMessage, StatsMessage } from './compare-child';

export const title =
  'direct vs http-proxy-middleware vs relay (memory, Redis): req/s, p50/p99, TTFE, peak RSS';

const SCALE = Number(process.env.COMPARE_SCALE ?? '1') || 1;
const CONCURRENCY = 8;
const TURNS = 50;
/** The measured requests of a case are split into this many rounds, the targets taking turns. */
const ROUNDS = 6;

type TargetName = 'direct' | 'pass-through' | 'reading floor' | 'relay (memory)' | 'relay (Redis)';

interface Case {
  name: string;
  /** What the fake answers every request of the case with. */
  behaviour: Behaviour;
  stream: boolean;
  /** Requests (tool case: conversations of TURNS turns) measured, and warm-up ones before. */
  count: number;
  /** Requests (conversations) in flight. */
  concurrency: number;
  warmup: number;
  /** Events a stream carries (checked on every stream). */
  events?: number;
}

/** `text` streams as created, in_progress, item added, part added, N deltas, 3 done, completed. */
const STREAM_OVERHEAD = 8;

function textBehaviour(events: number): Behaviour {
  const chunks = events - STREAM_OVERHEAD;
  // Fixed-width words, so the fake cuts the text into exactly `chunks` deltas.
  const words: string[] = [];
  for (let i = 0; i < chunks; i += 1) words.push(`${String(i % 10_000).padStart(4, '0')} `);
  return { kind: 'text', text: words.join(''), chunks };
}

const scaled = (n: number): number => Math.max(CONCURRENCY, Math.round(n * SCALE));

const ALL_CASES: Case[] = [
  {
    name: 'JSON (non-stream)',
    behaviour: { kind: 'auto' },
    stream: false,
    count: scaled(3000),
    warmup: scaled(300),
    concurrency: CONCURRENCY,
  },
  {
    name: '100-event stream',
    behaviour: textBehaviour(100),
    stream: true,
    count: scaled(1000),
    warmup: scaled(100),
    concurrency: CONCURRENCY,
    events: 100,
  },
  {
    name: '10,000-event stream',
    behaviour: textBehaviour(10_000),
    stream: true,
    count: scaled(48),
    warmup: CONCURRENCY,
    concurrency: CONCURRENCY,
    events: 10_000,
  },
  {
    name: `${TURNS}-turn tool conversation`,
    behaviour: { kind: 'auto' },
    stream: false,
    // One conversation at a time: the per-turn latency (and what Redis adds to it) unloaded.
    count: Math.max(2, Math.round(6 * SCALE)),
    warmup: 2,
    concurrency: 1,
  },
];

/** `COMPARE_CASES=stream` runs only the cases whose name contains one of the comma-separated words. */
const CASES = ALL_CASES.filter(
  (kase) =>
    process.env.COMPARE_CASES === undefined ||
    process.env.COMPARE_CASES.split(',').some((word) => kase.name.includes(word)),
);

// --- child processes -------------------------------------------------------------------------

interface Child {
  url: string;
  readyRss: number;
  process: ChildProcess;
  request<T>(message: object, type: string): Promise<T>;
  close(): Promise<void>;
}

function startChild(kind: ChildKind, args: string[] = []): Promise<Child> {
  const child = fork(path.join(__dirname, 'compare-child.js'), [kind, ...args], {
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
    execArgv: ['--expose-gc'],
  });
  const request = <T>(message: object, type: string): Promise<T> =>
    new Promise((resolve) => {
      const onMessage = (reply: { type?: string }): void => {
        if (reply.type !== type) return;
        child.off('message', onMessage);
        resolve(reply as T);
      };
      child.on('message', onMessage);
      child.send(message);
    });
  return new Promise((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`${kind} child exited (${code})`)));
    child.once('message', (message: ReadyMessage) => {
      resolve({
        url: message.url,
        readyRss: message.rss,
        process: child,
        request,
        close: () =>
          new Promise<void>((done) => {
            if (child.exitCode !== null) return done();
            const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
            child.once('exit', () => {
              clearTimeout(timer);
              done();
            });
            child.send({ type: 'close' });
          }),
      });
    });
  });
}

// --- the driver ------------------------------------------------------------------------------

interface Sample {
  /** Request sent → last byte, ms. */
  ms: number;
  /** Request sent → first body byte, ms (streams). */
  firstMs?: number;
}

interface Reply extends Sample {
  status: number;
  /** The JSON body (non-stream). */
  json?: Record<string, unknown>;
  /** The start of the body when it was not a 200 stream. */
  text: string;
  /** Events received (streams). */
  events: number;
  completed: boolean;
}

const COMPLETED = Buffer.from('event: response.completed');
const FRAME_END = Buffer.from('\n\n');

function post(url: string, agent: http.Agent, body: object, stream: boolean): Promise<Reply> {
  const payload = JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const start = process.hrtime.bigint();
    const since = (): number => Number(process.hrtime.bigint() - start) / 1e6;
    const request = http.request(`${url}/v1/responses`, {
      method: 'POST',
      agent,
      headers: {
        'content-type': 'application/json',
        'content-length': Buffer.byteLength(payload),
        authorization: 'Bearer sk-bench',
      },
    });
    request.once('error', reject);
    request.once('response', (response) => {
      let firstMs: number | undefined;
      let events = 0;
      let completed = false;
      let tail = Buffer.alloc(0);
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => {
        firstMs ??= since();
        if (!stream || response.statusCode !== 200) {
          chunks.push(chunk);
          return;
        }
        // Count frame ends and look for the terminal event, across chunk boundaries.
        const window = tail.length > 0 ? Buffer.concat([tail, chunk]) : chunk;
        let at = window.indexOf(FRAME_END, tail.length > 0 ? Math.max(0, tail.length - 1) : 0);
        while (at !== -1) {
          events += 1;
          at = window.indexOf(FRAME_END, at + 2);
        }
        if (!completed && window.indexOf(COMPLETED) !== -1) completed = true;
        tail = Buffer.from(window.subarray(Math.max(0, window.length - COMPLETED.length)));
      });
      response.once('error', reject);
      response.once('end', () => {
        const ms = since();
        let json: Record<string, unknown> | undefined;
        const text = Buffer.concat(chunks).subarray(0, 300).toString('utf8');
        if (!stream) {
          try {
            json = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>;
          } catch {
            json = undefined;
          }
        }
        resolve({ status: response.statusCode ?? 0, ms, firstMs, json, text, events, completed });
      });
    });
    request.end(payload);
  });
}

/** Runs `count` jobs, `concurrency` at a time; resolves with every sample and the wall time. */
async function drive(
  count: number,
  concurrency: number,
  job: (index: number) => Promise<Sample[]>,
): Promise<{ samples: Sample[]; wallMs: number }> {
  const samples: Sample[] = [];
  let next = 0;
  const start = process.hrtime.bigint();
  const worker = async (): Promise<void> => {
    while (next < count) {
      const index = next;
      next += 1;
      samples.push(...(await job(index)));
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, () => worker()));
  return { samples, wallMs: Number(process.hrtime.bigint() - start) / 1e6 };
}

function check(condition: boolean, what: string): void {
  if (!condition) throw new Error(`compare bench: ${what}`);
}

const TOOLS = [
  {
    type: 'function',
    name: 'exec_command',
    description: 'Runs a shell command.',
    parameters: {
      type: 'object',
      properties: { cmd: { type: 'string' } },
      required: ['cmd'],
      additionalProperties: false,
    },
    strict: true,
  },
];

/** One tool conversation of `turns` turns: user → call, output → text, …; one sample a turn. */
async function conversation(url: string, agent: http.Agent, turns: number): Promise<Sample[]> {
  const samples: Sample[] = [];
  let previous: string | undefined;
  let callId: string | undefined;
  for (let turn = 0; turn < turns; turn += 1) {
    const input =
      callId === undefined
        ? [{ role: 'user', content: `Turn ${turn}: list the files.` }]
        : [{ type: 'function_call_output', call_id: callId, output: 'README.md lib/ test/' }];
    const reply = await post(
      url,
      agent,
      {
        model: 'gpt-5',
        input,
        tools: TOOLS,
        stream: false,
        ...(previous ? { previous_response_id: previous } : {}),
      },
      false,
    );
    check(reply.status === 200, `tool turn ${turn} via ${url}: HTTP ${reply.status} ${reply.text}`);
    const json = reply.json ?? {};
    previous = json.id as string;
    const output = (json.output ?? []) as { type?: string; call_id?: string }[];
    callId = output.find((item) => item.type === 'function_call')?.call_id;
    check(turn % 2 === 1 || callId !== undefined, `tool turn ${turn}: no function call`);
    samples.push({ ms: reply.ms });
  }
  return samples;
}

function job(target: string, agent: http.Agent, kase: Case): (index: number) => Promise<Sample[]> {
  if (kase.name.includes('tool')) return () => conversation(target, agent, TURNS);
  return async () => {
    const reply = await post(
      target,
      agent,
      { model: 'gpt-5', input: 'Say hello.', stream: kase.stream },
      kase.stream,
    );
    check(reply.status === 200, `${kase.name} via ${target}: HTTP ${reply.status} ${reply.text}`);
    if (kase.stream) {
      check(
        reply.completed && reply.events === kase.events,
        `${kase.name}: ${reply.events} events, completed ${reply.completed}`,
      );
    } else {
      check(reply.json?.status === 'completed', `${kase.name}: not a completed response`);
    }
    return [{ ms: reply.ms, firstMs: reply.firstMs }];
  };
}

// --- memory held by open streams ---------------------------------------------------------------

/**
 * Opens `count` streams through `url` that the fake stalls after `events − 1` events (every
 * delta sent, no terminal event yet: the most a stream can hold), waits until the driver has
 * them all, and resolves with the gateway's heap then (after a full GC) minus its heap once they
 * are closed.
 */
async function heldByOpenStreams(
  url: string,
  gateway: Child,
  upstream: Child,
  kase: Case,
  count: number,
): Promise<number> {
  const events = (kase.events ?? 0) - 1;
  await upstream.request(
    { type: 'default', behaviour: { kind: 'stall', afterEvents: events, then: kase.behaviour } },
    'default',
  );
  const agent = new http.Agent({ keepAlive: false });
  const requests: http.ClientRequest[] = [];
  let held = 0;
  try {
    const payload = JSON.stringify({ model: 'gpt-5', input: 'Say hello.', stream: true });
    await Promise.all(
      Array.from(
        { length: count },
        () =>
          new Promise<void>((resolve, reject) => {
            const request = http.request(`${url}/v1/responses`, {
              method: 'POST',
              agent,
              headers: { 'content-type': 'application/json', authorization: 'Bearer sk-bench' },
            });
            requests.push(request);
            request.once('error', reject);
            request.once('response', (response) => {
              let seen = 0;
              let last = 0;
              response.on('data', (chunk: Buffer) => {
                let at = chunk.indexOf(FRAME_END);
                while (at !== -1) {
                  seen += 1;
                  at = chunk.indexOf(FRAME_END, at + 2);
                }
                // A frame end split across chunks.
                if (last === 10 && chunk[0] === 10) seen += 1;
                last = chunk[chunk.length - 1] ?? 0;
                if (seen >= events) resolve();
              });
              response.once('end', () => reject(new Error('held stream ended')));
            });
            request.end(payload);
          }),
      ),
    );
    held = (await gateway.request<{ heapUsed: number }>({ type: 'heap' }, 'heap')).heapUsed;
  } finally {
    for (const request of requests) request.destroy();
    agent.destroy();
    await upstream.request({ type: 'default', behaviour: kase.behaviour }, 'default');
  }
  // The baseline: the same process once the streams are gone (closing takes a moment).
  await new Promise((resolve) => setTimeout(resolve, 300));
  const released = (await gateway.request<{ heapUsed: number }>({ type: 'heap' }, 'heap')).heapUsed;
  return held - released;
}

// --- figures ---------------------------------------------------------------------------------

interface Result {
  kase: Case;
  target: TargetName;
  rps: number;
  p50: number;
  p99: number;
  firstP50?: number;
  /** Gateway CPU time (user + system) per request (tool case: per turn), µs. */
  cpuPerRequest?: number;
  peakRss?: number;
  /** Peak RSS sampled during the measured run minus RSS after the warm-up, per request in flight. */
  rssPerOpen?: number;
  /** Gateway heap (after GC) held per open stream, stalled just before its terminal event. */
  heapPerOpen?: number;
}

function quantile(values: number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  const at = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[at] ?? NaN;
}

interface Lane {
  target: TargetName;
  url: string;
  /** The gateway's process (none for direct). */
  gateway?: Child;
  agent: http.Agent;
  samples: Sample[];
  wallMs: number;
  /** CPU time the gateway process spent during the measured rounds, µs. */
  cpuMicros: number;
}

/**
 * Warms every lane up, then measures them in ROUNDS rounds, each lane taking its turn with a
 * share of the requests (the order rotating), so a burst of outside load hits all of them alike.
 */
async function measureCase(kase: Case, lanes: Lane[]): Promise<Result[]> {
  const jobs = lanes.map((lane) => job(lane.url, lane.agent, kase));
  for (const run of jobs) await drive(kase.warmup, kase.concurrency, run);
  for (const lane of lanes) await lane.gateway?.request({ type: 'mark' }, 'mark');
  const rounds = Math.min(ROUNDS, kase.count);
  for (let round = 0; round < rounds; round += 1) {
    const share =
      Math.floor((kase.count * (round + 1)) / rounds) - Math.floor((kase.count * round) / rounds);
    for (let k = 0; k < lanes.length; k += 1) {
      const at = (round + k) % lanes.length;
      const lane = lanes[at] as Lane;
      const cpu = (): Promise<number> =>
        lane.gateway
          ? lane.gateway.request<{ micros: number }>({ type: 'cpu' }, 'cpu').then((r) => r.micros)
          : Promise.resolve(0);
      const before = await cpu();
      const { samples, wallMs } = await drive(
        share,
        kase.concurrency,
        jobs[at] as (index: number) => Promise<Sample[]>,
      );
      lane.cpuMicros += (await cpu()) - before;
      lane.samples.push(...samples);
      lane.wallMs += wallMs;
    }
  }
  return lanes.map((lane) => {
    const ms = lane.samples.map((sample) => sample.ms);
    const first = lane.samples.flatMap((sample) =>
      sample.firstMs === undefined ? [] : [sample.firstMs],
    );
    return {
      kase,
      target: lane.target,
      rps: (lane.samples.length * 1000) / lane.wallMs,
      p50: quantile(ms, 0.5),
      p99: quantile(ms, 0.99),
      firstP50: kase.stream ? quantile(first, 0.5) : undefined,
      cpuPerRequest: lane.gateway ? lane.cpuMicros / lane.samples.length : undefined,
    };
  });
}

async function redisReachable(url: string): Promise<boolean> {
  const redis = new Redis(url, {
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    connectTimeout: 1000,
  });
  redis.on('error', () => undefined);
  try {
    await redis.connect();
    return (await redis.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    redis.disconnect();
  }
}

const f = (value: number | undefined, digits = 2): string =>
  value === undefined || !Number.isFinite(value) ? '—' : value.toFixed(digits);
const ratio = (value: number | undefined, base: number | undefined): string =>
  value === undefined || base === undefined || base === 0 ? '—' : `${(value / base).toFixed(2)}×`;
const mib = (bytes: number | undefined): string =>
  bytes === undefined ? '—' : (bytes / 1048576).toFixed(1);

export async function run(): Promise<void> {
  const started = Date.now();
  const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
  const withRedis = await redisReachable(redisUrl);
  const targets: TargetName[] = ['direct', 'pass-through', 'reading floor', 'relay (memory)'];
  if (withRedis) targets.push('relay (Redis)');
  const kinds: Record<Exclude<TargetName, 'direct'>, ChildKind> = {
    'pass-through': 'passthrough',
    'reading floor': 'reading-floor',
    'relay (memory)': 'relay-memory',
    'relay (Redis)': 'relay-redis',
  };
  process.stdout.write(
    `loopback; fake upstream (stateful) and each gateway in a child process of its own; ` +
      `driver: keep-alive agent, concurrency ${CONCURRENCY} (tool conversations: 1 at a time); ` +
      `relay: profile openai, ` +
      `upstreamMode stateful, logger off, metrics off, websocket off\n` +
      (withRedis
        ? `Redis: ${redisUrl.replace(/\/\/[^@]*@/, '//')}\n`
        : `relay (Redis): skipped (${redisUrl} unreachable)\n`),
  );

  const results: Result[] = [];
  for (const kase of CASES) {
    const upstream = await startChild('upstream');
    const lanes: Lane[] = [];
    try {
      await upstream.request({ type: 'default', behaviour: kase.behaviour }, 'default');
      for (const target of targets) {
        // The reading floor differs from the pass-through only on streams.
        if (target === 'reading floor' && !kase.stream) continue;
        const gateway =
          target === 'direct'
            ? undefined
            : await startChild(
                kinds[target],
                target === 'relay (Redis)' ? [upstream.url, redisUrl] : [upstream.url],
              );
        lanes.push({
          target,
          url: gateway?.url ?? upstream.url,
          gateway,
          agent: new http.Agent({ keepAlive: true, maxSockets: CONCURRENCY }),
          samples: [],
          wallMs: 0,
          cpuMicros: 0,
        });
      }
      const measured = await measureCase(kase, lanes);
      for (const [index, lane] of lanes.entries()) {
        const result = measured[index] as Result;
        if (lane.gateway) {
          const stats = await lane.gateway.request<StatsMessage>({ type: 'stats' }, 'stats');
          if (lane.target === 'reading floor') {
            const streams = kase.warmup + kase.count;
            check(
              stats.eventsRead >= streams * (kase.events ?? 0),
              `the reading floor parsed ${stats.eventsRead} events of ${streams} streams`,
            );
          }
          result.peakRss = stats.maxRss;
          result.rssPerOpen = (stats.peakSinceMark - stats.markRss) / kase.concurrency;
          if (kase.stream) {
            const held = await heldByOpenStreams(
              lane.url,
              lane.gateway,
              upstream,
              kase,
              CONCURRENCY,
            );
            result.heapPerOpen = held / CONCURRENCY;
          }
        }
        results.push(result);
      }
    } finally {
      for (const lane of lanes) {
        lane.agent.destroy();
        await lane.gateway?.close();
      }
      await upstream.close();
    }
  }

  // The table.
  const find = (kase: Case, target: TargetName): Result | undefined =>
    results.find((result) => result.kase === kase && result.target === target);
  process.stdout.write(
    '\nRatios (×) are to the pass-through. Streams: p50/p99 are total stream time; TTFE = time to ' +
      'the first event. Tool conversation: per turn, req/s = turns/s. Peak RSS: the gateway ' +
      "process's maxRSS over the case (start, warm-up, run). Gateway CPU: the gateway process's " +
      'user + system time per request during the measured rounds (less sensitive to a busy host ' +
      'than the latencies, which on 2 shared cores are mostly waiting for CPU).\n\n' +
      '| case | target | req/s | × | p50 ms | × | p99 ms | × | TTFE p50 ms | × | gateway CPU µs/req | × | peak RSS MiB | × |\n' +
      '|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n',
  );
  for (const kase of CASES) {
    const base = find(kase, 'pass-through');
    for (const target of targets) {
      const r = find(kase, target);
      if (!r) continue;
      process.stdout.write(
        `| ${kase.name} | ${target} | ${f(r.rps, 0)} | ${ratio(r.rps, base?.rps)} | ` +
          `${f(r.p50)} | ${ratio(r.p50, base?.p50)} | ${f(r.p99)} | ${ratio(r.p99, base?.p99)} | ` +
          `${f(r.firstP50)} | ${ratio(r.firstP50, base?.firstP50)} | ` +
          `${f(r.cpuPerRequest, 0)} | ${ratio(r.cpuPerRequest, base?.cpuPerRequest)} | ` +
          `${mib(r.peakRss)} | ${ratio(r.peakRss, base?.peakRss)} |\n`,
      );
    }
  }

  // The targets.
  const verdicts: string[] = [];
  const pass = (ok: boolean): string => (ok ? 'PASS' : 'FAIL');
  let passed = 0;
  let total = 0;
  const target = (ok: boolean, line: string): void => {
    total += 1;
    if (ok) passed += 1;
    verdicts.push(`- ${pass(ok)} ${line}`);
  };
  for (const kase of CASES) {
    const base = find(kase, 'pass-through');
    const relay = find(kase, 'relay (memory)');
    if (!base || !relay) continue;
    const latency = relay.p50 / base.p50;
    const throughput = relay.rps / base.rps;
    target(
      latency <= 1.15,
      `${kase.name}: relay (memory) p50 ${latency.toFixed(2)}× pass-through (target ≤ 1.15×)`,
    );
    target(
      throughput >= 0.85,
      `${kase.name}: relay (memory) throughput ${throughput.toFixed(2)}× pass-through (target ≥ 0.85×)`,
    );
    const floor = find(kase, 'reading floor');
    if (floor) {
      verdicts.push(
        `- info ${kase.name}: the reading floor alone is p50 ${ratio(floor.p50, base.p50)} and ` +
          `throughput ${ratio(floor.rps, base.rps)} of the pass-through; the relay (memory) is ` +
          `p50 ${ratio(relay.p50, floor.p50)} and throughput ${ratio(relay.rps, floor.rps)} of the floor`,
      );
    }
  }
  const tool = ALL_CASES[3] as Case;
  const redisTool = find(tool, 'relay (Redis)');
  const memoryTool = find(tool, 'relay (memory)');
  if (redisTool && memoryTool) {
    const added = redisTool.p50 - memoryTool.p50;
    target(
      added <= 1,
      `Redis adds ${added.toFixed(2)} ms p50 per turn over memory (target ≤ 1 ms)`,
    );
  } else {
    verdicts.push('- SKIP Redis per-turn target (no Redis, or the tool case not run)');
  }
  const short = ALL_CASES[1] as Case;
  const long = ALL_CASES[2] as Case;
  const kib = (bytes: number): string => `${(bytes / 1024).toFixed(0)} KiB`;
  for (const name of ['relay (memory)', 'relay (Redis)', 'pass-through'] as const) {
    const a = find(short, name);
    const b = find(long, name);
    if (a?.heapPerOpen === undefined || b?.heapPerOpen === undefined) continue;
    const textBytes = ((long.events ?? 0) - STREAM_OVERHEAD) * 5;
    const line =
      `${name}: heap held per open stream ${kib(a.heapPerOpen)} at 99 events → ` +
      `${kib(b.heapPerOpen)} at 9,999 events (the text, which a rebuilt completion must hold: ` +
      `${kib(textBytes)}); peak RSS rise per stream in flight during the runs ` +
      `${mib(a.rssPerOpen)} → ${mib(b.rssPerOpen)} MiB`;
    // Growth beyond twice the text (it may be held as deltas and as one string) is per-event cost.
    if (name === 'pass-through') verdicts.push(`- info ${line}`);
    else {
      target(
        b.heapPerOpen - a.heapPerOpen <= 2 * textBytes + 64 * 1024,
        `${line} (target: no growth with length beyond the text)`,
      );
    }
  }
  process.stdout.write(`\nTargets:\n${verdicts.join('\n')}\n`);
  const relayJson = find(ALL_CASES[0] as Case, 'relay (memory)');
  const baseJson = find(ALL_CASES[0] as Case, 'pass-through');
  process.stdout.write(
    `\nSummary: ${passed}/${total} targets met; JSON p50 relay ${f(relayJson?.p50)} ms vs ` +
      `pass-through ${f(baseJson?.p50)} ms (${ratio(relayJson?.p50, baseJson?.p50)}), ` +
      `Redis ${withRedis ? 'measured' : 'skipped'}; ${((Date.now() - started) / 1000).toFixed(0)} s\n`,
  );
}
