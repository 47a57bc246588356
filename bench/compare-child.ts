/**
 * Child process of `compare.bench.ts`: one server per process, so each one's peak RSS is its own.
 *
 * `node compare-child.js upstream`              the fake Responses upstream (stateful)
 * `node compare-child.js passthrough <url>`     Express + http-proxy-middleware, keep-alive agent
 * `node compare-child.js reading-floor <url>`   the same, also parsing every event of a stream
 * `node compare-child.js relay-memory <url>`    createRelay on a MemorySessionStore
 * `node compare-child.js relay-redis <url> <redis-url>`  createRelay on a RedisSessionStore
 *
 * Over IPC: sends `{ type: 'ready', url, rss }` once listening; answers `{ type: 'stats' }` with
 * `{ type: 'stats', maxRss, rss }` (bytes), `{ type: 'default', behaviour }` (the fake only) with
 * `{ type: 'default' }`, `{ type: 'mark' }` (restart the RSS sampler's peak) with `{ type: 'mark' }`,
 * `{ type: 'heap' }` (after a full GC) with `{ type: 'heap', heapUsed }`, `{ type: 'cpu' }` with
 * `{ type: 'cpu', micros }` (the process's CPU time so far), and `{ type: 'close' }` by closing and exiting.
 */
import express from 'express';
import { createProxyMiddleware } from 'http-proxy-middleware';
import Redis from 'ioredis';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { isEventStream } from '../lib/middleware/response-pipeline';
import { SseParser } from '../lib/protocol/sse';
import { createRelay } from '../lib/relay';
import { MemorySessionStore } from '../lib/store/memory-session-store';
import { RedisSessionStore } from '../lib/store/redis-session-store';
import { startFakeUpstream, type Behaviour } from '../test/support/fake-upstream';

export type ChildKind =
  'upstream' | 'passthrough' | 'reading-floor' | 'relay-memory' | 'relay-redis';

export interface ReadyMessage {
  type: 'ready';
  url: string;
  rss: number;
}

export interface StatsMessage {
  type: 'stats';
  maxRss: number;
  rss: number;
  /** RSS at the last `mark`, and the highest RSS sampled (every 20 ms) since. */
  markRss: number;
  peakSinceMark: number;
  /** The reading floor: events it parsed so far. */
  eventsRead: number;
}

function listen(server: http.Server): Promise<string> {
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      resolve(`http://127.0.0.1:${port}`);
    });
  });
}

interface Started {
  url: string;
  close: () => Promise<void>;
  /** The fake only: the behaviour of every following request (and forget the request log). */
  setDefault?: (behaviour: Behaviour) => void;
}

/**
 * The reading floor: what the pass-through costs once it also reads every event of a stream, as
 * any gateway that checks or rebuilds a stream must, and nothing else: our SSE parser and one
 * `JSON.parse` per event, beside http-proxy-middleware's own piping of the unchanged bytes.
 */
function readEvents(proxyRes: http.IncomingMessage): void {
  if (!isEventStream(proxyRes.headers['content-type'])) return;
  let events = 0;
  const parser = new SseParser({
    onMessage: (message) => {
      const event = JSON.parse(message.data) as { type?: unknown };
      if (typeof event.type === 'string') events += 1;
    },
  });
  proxyRes.on('data', (chunk: Buffer) => parser.push(chunk));
  proxyRes.once('end', () => {
    parser.end();
    readEventCount += events;
  });
}

/** Events the reading floor parsed (kept, so the parsing cannot be optimised away). */
let readEventCount = 0;

async function start(kind: ChildKind, upstream: string, redisUrl: string): Promise<Started> {
  if (kind === 'upstream') {
    const fake = await startFakeUpstream({ mode: 'stateful' });
    // The targets take turns, so a keep-alive socket may idle for seconds: past Node's default
    // 5 s, the fake would close it under a reusing agent (ECONNRESET, a 504 from a proxy).
    (fake as unknown as { server: http.Server }).server.keepAliveTimeout = 60_000;
    return {
      url: fake.url,
      close: () => fake.close(),
      setDefault: (behaviour) => {
        fake.setDefault(behaviour);
        fake.requests.length = 0;
      },
    };
  }
  if (kind === 'passthrough' || kind === 'reading-floor') {
    const agent = new http.Agent({ keepAlive: true });
    const app = express();
    app.use(
      createProxyMiddleware({
        target: upstream,
        changeOrigin: true,
        agent,
        on: kind === 'reading-floor' ? { proxyRes: readEvents } : {},
      }),
    );
    const server = http.createServer({ keepAliveTimeout: 60_000 }, app);
    const url = await listen(server);
    return {
      url,
      close: () =>
        new Promise<void>((done) => {
          agent.destroy();
          server.closeAllConnections();
          server.close(() => done());
        }),
    };
  }
  const redis =
    kind === 'relay-redis' ? new Redis(redisUrl, { maxRetriesPerRequest: 1 }) : undefined;
  const store = redis
    ? new RedisSessionStore({ redis, keyPrefix: `bench-compare-${process.pid}` })
    : new MemorySessionStore();
  const relay = createRelay({
    upstream,
    profile: 'openai',
    upstreamMode: 'stateful',
    store,
    tenantSecret: 'bench-compare-tenant-secret',
    logger: false,
    metrics: false,
    websocket: false,
  });
  relay.server.keepAliveTimeout = 60_000;
  const url = await relay.listen(0, '127.0.0.1');
  return {
    url,
    close: async () => {
      await relay.close({ timeoutMs: 1000 });
      await store.close?.();
      redis?.disconnect();
    },
  };
}

async function main(): Promise<void> {
  const [kind, upstream = '', redisUrl = ''] = process.argv.slice(2) as [ChildKind, string, string];
  const server = await start(kind, upstream, redisUrl);
  const send = (message: ReadyMessage | StatsMessage): void => {
    process.send?.(message);
  };
  let markRss = process.memoryUsage.rss();
  let peakSinceMark = markRss;
  // Sampled every 5 ms, RSS took 2 to 3.5% of a core in each process (profiled), charged most to
  // the slowest gateway (the longest runs). The fake upstream needs no samples.
  const sampler = setInterval(
    () => {
      peakSinceMark = Math.max(peakSinceMark, process.memoryUsage.rss());
    },
    kind === 'upstream' ? 1000 : 20,
  );
  sampler.unref();
  process.on('message', (message: { type?: string; behaviour?: Behaviour }) => {
    if (message.type === 'heap') {
      // The parent forks with --expose-gc.
      const gc = (globalThis as { gc?: () => void }).gc;
      for (let pass = 0; pass < 3; pass += 1) gc?.();
      process.send?.({ type: 'heap', heapUsed: process.memoryUsage().heapUsed });
    } else if (message.type === 'cpu') {
      const { user, system } = process.cpuUsage();
      process.send?.({ type: 'cpu', micros: user + system });
    } else if (message.type === 'mark') {
      markRss = process.memoryUsage.rss();
      peakSinceMark = markRss;
      process.send?.({ type: 'mark' });
    } else if (message.type === 'default' && message.behaviour) {
      server.setDefault?.(message.behaviour);
      process.send?.({ type: 'default' });
    } else if (message.type === 'stats') {
      // maxRSS is in KiB.
      send({
        type: 'stats',
        maxRss: process.resourceUsage().maxRSS * 1024,
        rss: process.memoryUsage().rss,
        markRss,
        peakSinceMark: Math.max(peakSinceMark, process.memoryUsage.rss()),
        eventsRead: readEventCount,
      });
    } else if (message.type === 'close') {
      void server.close().finally(() => process.exit(0));
    }
  });
  process.on('disconnect', () => process.exit(0));
  send({ type: 'ready', url: server.url, rss: process.memoryUsage().rss });
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? error.stack : String(error)}\n`);
  process.exit(1);
});
