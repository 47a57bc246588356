#!/usr/bin/env node
/**
 * The `responses-relay` command: parses flags and environment (lib/cli/options.ts), builds the
 * session store (memory, Redis or Redis Cluster), starts `createRelay()` and shuts it down
 * gracefully on SIGTERM/SIGINT: readiness turns to `draining`, no new connection is accepted,
 * in-flight requests and streams may finish up to `--shutdown-timeout`, then Redis is closed and
 * the process exits 0. A second signal exits at once (1).
 *
 * Exit codes: 0 after a graceful shutdown, 1 when the relay could not start (or was forced
 * down), 2 for a usage error.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Cluster, Redis } from 'ioredis';
import type { Logger } from 'pino';
import { createLogger } from '../ops/logger';
import { recommendedClusterOptions, recommendedRedisOptions } from '../ops/redis';
import { createRelay, type Relay } from '../relay';
import { MemorySessionStore } from '../store/memory-session-store';
import { RedisSessionStore } from '../store/redis-session-store';
import type { SessionStore } from '../store/session-store';
import { parseCli, usage, UsageError, type CliOptions } from './options';

function version(): string {
  try {
    const file = path.join(__dirname, '..', '..', 'package.json');
    return (JSON.parse(readFileSync(file, 'utf8')) as { version?: string }).version ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

/** `redis://user:pass@host:6379/0` → `host:6379` (never log credentials). */
function redisHost(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.hostname}:${parsed.port || '6379'}`;
  } catch {
    return '(unparsable URL)';
  }
}

function clusterNode(node: string): { host: string; port: number } {
  const at = node.lastIndexOf(':');
  if (at <= 0) return { host: node, port: 6379 };
  return { host: node.slice(0, at).replace(/^\[(.*)\]$/, '$1'), port: Number(node.slice(at + 1)) };
}

interface BuiltStore {
  store: SessionStore;
  kind: 'memory' | 'redis' | 'redis-cluster';
  where?: string;
  /** Resolves true once the client is connected, false after `ms` (it keeps reconnecting). */
  connected?: (ms: number) => Promise<boolean>;
}

/** Waits for an ioredis client's first `ready`, up to `ms`. */
function readyWithin(client: Redis | Cluster, ms: number): Promise<boolean> {
  if (client.status === 'ready') return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      client.off('ready', onReady);
      resolve(false);
    }, ms);
    timer.unref();
    function onReady(): void {
      clearTimeout(timer);
      resolve(true);
    }
    client.once('ready', onReady);
  });
}

function buildStore(options: CliOptions, logger: Logger): BuiltStore {
  if (options.redis === undefined && options.redisCluster === undefined) {
    return { store: new MemorySessionStore(), kind: 'memory' };
  }
  let lastWarning = 0;
  const onError = (error: Error & { code?: string }): void => {
    // ioredis reports every failed reconnection: one line per 10 s is enough.
    const now = Date.now();
    if (now - lastWarning < 10_000) return;
    lastWarning = now;
    logger.warn(
      { code: error.code, error: error.message },
      'redis connection error (reconnecting)',
    );
  };
  const keyPrefix = options.redisKeyPrefix;
  if (options.redisCluster !== undefined) {
    const cluster = new Cluster(options.redisCluster.map(clusterNode), recommendedClusterOptions());
    cluster.on('error', onError);
    return {
      store: new RedisSessionStore({ redis: cluster, keyPrefix, closeClient: true }),
      kind: 'redis-cluster',
      where: options.redisCluster.join(','),
      connected: (ms) => readyWithin(cluster, ms),
    };
  }
  const url = options.redis as string;
  const redis = new Redis(url, recommendedRedisOptions());
  redis.on('error', onError);
  return {
    store: new RedisSessionStore({ redis, keyPrefix, closeClient: true }),
    kind: 'redis',
    where: redisHost(url),
    connected: (ms) => readyWithin(redis, ms),
  };
}

function flush(logger: Logger): Promise<void> {
  return new Promise((resolve) => {
    try {
      logger.flush(() => resolve());
    } catch {
      resolve();
    }
  });
}

/**
 * Runs the command; resolves with the exit code once the relay stopped (or could not start).
 * `exit` is called with that code (the binary passes `process.exit`).
 */
export async function main(
  argv: readonly string[] = process.argv.slice(2),
  env: NodeJS.ProcessEnv = process.env,
): Promise<number> {
  let options: CliOptions;
  try {
    const parsed = parseCli(argv, env);
    if (parsed.kind === 'help') {
      process.stdout.write(usage());
      return 0;
    }
    if (parsed.kind === 'version') {
      process.stdout.write(`${version()}\n`);
      return 0;
    }
    options = parsed.options;
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    process.stderr.write(
      `responses-relay: ${error.message}\nrun responses-relay --help for the options\n`,
    );
    return 2;
  }

  const logger = createLogger({ level: options.logLevel });
  let relay: Relay;
  let built: BuiltStore;
  try {
    built = buildStore(options, logger);
    relay = createRelay({
      upstream: options.upstream,
      profile: options.profile,
      upstreamMode: options.upstreamMode,
      store: built.store,
      tenantSecret: options.tenantSecret,
      onStoreError: options.onStoreError,
      retry: options.maxAttempts > 1 ? { maxAttempts: options.maxAttempts } : false,
      logger,
      metrics: options.metrics ? {} : false,
      shutdownTimeoutMs: options.shutdownTimeoutMs,
    });
  } catch (error) {
    logger.fatal({ err: error }, 'the relay could not be configured');
    await flush(logger);
    return 1;
  }

  // Serve as soon as Redis answers (or after 5 s without it: the store reconnects by itself, and
  // /readyz reports it meanwhile).
  if (built.connected && !(await built.connected(5000))) {
    logger.warn({ redis: built.where }, 'redis is not reachable yet; starting anyway (not ready)');
  }
  const upstream = new URL(options.upstream);
  try {
    const url = await relay.listen(options.port, options.host);
    logger.info(
      {
        url,
        version: version(),
        upstream: `${upstream.origin}${upstream.pathname === '/' ? '' : upstream.pathname}`,
        profile: relay.profile.name,
        upstreamMode: relay.upstreamMode,
        store: built.kind,
        ...(built.where === undefined ? {} : { redis: built.where }),
        maxAttempts: options.maxAttempts,
        metrics: options.metrics,
      },
      'relay listening',
    );
  } catch (error) {
    logger.fatal(
      { err: error, port: options.port, host: options.host },
      'the relay could not listen',
    );
    await relay.close({ timeoutMs: 0 }).catch(() => undefined);
    await built.store.close().catch(() => undefined);
    await flush(logger);
    return 1;
  }

  return new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (signal: NodeJS.Signals): void => {
      if (stopping) {
        logger.warn({ signal }, 'second signal: exiting now');
        void flush(logger).then(() => resolve(1));
        return;
      }
      stopping = true;
      logger.info(
        { signal, timeoutMs: options.shutdownTimeoutMs },
        'shutting down: no new connections, letting in-flight requests finish',
      );
      relay
        .close()
        .then(() => built.store.close())
        .then(
          async () => {
            logger.info('stopped');
            await flush(logger);
            resolve(0);
          },
          async (error: unknown) => {
            logger.error({ err: error }, 'shutdown failed');
            await flush(logger);
            resolve(1);
          },
        );
    };
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
    process.on('unhandledRejection', (reason) => {
      // A bug, logged loudly; the other clients' streams keep going.
      logger.error({ err: reason }, 'unhandled rejection');
    });
  });
}

if (require.main === module) {
  main().then(
    (code) => process.exit(code),
    (error: unknown) => {
      process.stderr.write(
        `responses-relay: ${error instanceof Error ? error.stack : String(error)}\n`,
      );
      process.exit(1);
    },
  );
}
