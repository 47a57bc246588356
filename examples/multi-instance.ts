/**
 * Example (b): two relay instances sharing Redis behind a round-robin load balancer — what
 * docker-compose.yml runs, in one process.
 *
 * Conversations live in Redis, so any instance continues any conversation: consecutive turns of
 * one tool loop land on different instances, and when one instance is stopped (gracefully: it
 * finishes its in-flight streams first) the conversation simply goes on on the other one.
 * Both instances must use the same tenant secret and key prefix.
 *
 *   REDIS_URL=redis://127.0.0.1:6379 npx tsx examples/multi-instance.ts
 *
 * (start one with `redis-server` or `docker run -p 6379:6379 redis:7`). The upstream is the
 * repository's fake, Codex-like: it stores nothing, so every continuation is rebuilt from Redis.
 */
import { randomBytes } from 'node:crypto';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { createProxyMiddleware } from 'http-proxy-middleware';
import { Redis } from 'ioredis';
import OpenAI from 'openai';
import { RedisSessionStore } from '../lib';
import { recommendedRedisOptions } from '../lib';
import { createRelay, type Relay } from '../lib';
import { startFakeUpstream } from '../test/support/fake-upstream';

export interface MultiInstanceOptions {
  redisUrl?: string;
  /** Redis key prefix (default: a fresh one per run). */
  keyPrefix?: string;
  print?: (line: string) => void;
}

/** A round-robin load balancer over a pool the caller can shrink (like a LB's health checks). */
function roundRobin(pool: string[]): http.Server {
  let next = 0;
  const app = express();
  app.use(
    createProxyMiddleware<IncomingMessage, ServerResponse>({
      router: () => {
        const target = pool[next % pool.length] as string;
        next += 1;
        return target;
      },
      changeOrigin: true,
      ws: true,
    }),
  );
  return http.createServer(app);
}

function listening(server: http.Server): Promise<string> {
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      resolve(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
    });
  });
}

export async function runMultiInstanceExample(
  options: MultiInstanceOptions = {},
): Promise<{ lines: string[]; servedBy: string[] }> {
  const lines: string[] = [];
  const say = (line: string): void => {
    lines.push(line);
    (options.print ?? ((text: string) => process.stdout.write(`${text}\n`)))(line);
  };
  const redisUrl = options.redisUrl ?? process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
  const keyPrefix = options.keyPrefix ?? `relay-example-${randomBytes(4).toString('hex')}`;
  const tenantSecret = 'shared-by-every-instance';
  const upstream = await startFakeUpstream({ mode: 'stateless', sparseCompletion: true });
  const clients: Redis[] = [];
  const relays: Array<{ name: string; relay: Relay; url: string }> = [];
  const servedBy: string[] = [];
  let balancer: http.Server | undefined;
  try {
    for (const name of ['relay-a', 'relay-b']) {
      // One client per instance, as two processes would have.
      const redis = new Redis(redisUrl, { ...recommendedRedisOptions(), lazyConnect: true });
      clients.push(redis);
      await redis.connect();
      const relay = createRelay({
        upstream: upstream.url,
        profile: 'codex',
        store: new RedisSessionStore({ redis, keyPrefix }),
        tenantSecret,
        logger: false,
        metrics: { defaultMetrics: false },
      });
      relay.on('exchange', (summary) => {
        if (summary.route === 'responses') servedBy.push(name);
      });
      relays.push({ name, relay, url: await relay.listen(0, '127.0.0.1') });
    }
    const pool = relays.map((entry) => entry.url);
    balancer = roundRobin(pool);
    const lb = await listening(balancer);
    say(
      `load balancer ${lb} → relay-a ${pool[0]}, relay-b ${pool[1]} (Redis ${new URL(redisUrl).host})`,
    );

    const client = new OpenAI({
      apiKey: 'sk-example-0000000000000000',
      baseURL: `${lb}/v1`,
      maxRetries: 0,
    });
    const tools: OpenAI.Responses.Tool[] = [
      {
        type: 'function',
        name: 'exec_command',
        strict: false,
        parameters: { type: 'object', properties: { cmd: { type: 'string' } } },
      },
    ];
    const commands = ['ls', 'cat package.json', 'npm test'];
    upstream.script(
      ...commands.map((cmd) => ({
        kind: 'tool_calls' as const,
        calls: [{ name: 'exec_command', arguments: JSON.stringify({ cmd }) }],
      })),
    );
    let response = await client.responses.create({
      model: 'gpt-5.5',
      input: 'Check the project.',
      tools,
    });
    say(`turn 1  served by ${servedBy.at(-1)}: ${response.id.slice(0, 13)}…`);
    for (let turn = 2; turn <= 4; turn += 1) {
      const call = response.output.find((item) => item.type === 'function_call');
      if (call?.type !== 'function_call') throw new Error(`turn ${turn - 1} made no call`);
      if (turn === 4) {
        // Stop relay-a as an orchestrator would (SIGTERM): it drains, the LB drops it.
        await relays[0]?.relay.close({ timeoutMs: 5000 });
        pool.splice(0, 1);
        say('        relay-a stopped (graceful); the load balancer now only knows relay-b');
      }
      response = await client.responses.create({
        model: 'gpt-5.5',
        previous_response_id: response.id,
        input: [
          { type: 'function_call_output', call_id: call.call_id, output: `ran ${call.arguments}` },
        ],
        tools,
      });
      say(
        `turn ${turn}  served by ${servedBy.at(-1)}: continued ${response.previous_response_id?.slice(0, 13)}… → ${response.id.slice(0, 13)}…`,
      );
    }
    say(`final   "${response.output_text}"`);
    return { lines, servedBy };
  } finally {
    balancer?.closeAllConnections();
    await new Promise<void>((resolve) => (balancer ? balancer.close(() => resolve()) : resolve()));
    for (const { relay } of relays) await relay.close({ timeoutMs: 1000 });
    for (const redis of clients) redis.disconnect();
    await upstream.close();
  }
}

if (require.main === module) {
  runMultiInstanceExample().then(
    () => process.exit(0),
    (error: unknown) => {
      process.stderr.write(
        `example failed: ${String(error)}\n` +
          'It needs Redis: set REDIS_URL, or start one (redis-server, or docker run -p 6379:6379 redis:7).\n',
      );
      process.exit(1);
    },
  );
}
