/**
 * The child side of test/support/gateway-process.ts, shared by every gateway script run in its
 * own process: required environment, the Redis store the instances share, the `{"port":N}`
 * announcement, and a stop that runs on SIGTERM/SIGINT or when stdin closes (the parent died).
 */
import Redis from 'ioredis';
import { RedisSessionStore } from '../../lib/store/redis-session-store';

export function requiredEnv(name: string): string {
  const value = process.env[name];
  if (value === undefined || value === '') throw new Error(`${name} is required`);
  return value;
}

/** `MODE` as a relay mode. */
export function requiredMode(): 'stateless' | 'stateful' {
  const mode = requiredEnv('MODE');
  if (mode !== 'stateless' && mode !== 'stateful') throw new Error(`MODE '${mode}' is unknown`);
  return mode;
}

/** The RedisSessionStore on `REDIS_URL` under `KEY_PREFIX` that the instances share. */
export function sharedRedisStore(): { redis: Redis; store: RedisSessionStore } {
  const redis = new Redis(requiredEnv('REDIS_URL'), { maxRetriesPerRequest: 1 });
  const store = new RedisSessionStore({
    redis,
    keyPrefix: requiredEnv('KEY_PREFIX'),
    operationTimeoutMs: 5000,
  });
  return { redis, store };
}

/** Tells the parent the port (the one line it waits for). */
export function announcePort(port: number): void {
  process.stdout.write(`${JSON.stringify({ port })}\n`);
}

/** Runs `stop` once on SIGTERM, SIGINT or stdin's end, then exits (at most `graceMs` later). */
export function exitWithParent(stop: () => Promise<void>, graceMs = 2000): void {
  let stopping = false;
  const onStop = (): void => {
    if (stopping) return;
    stopping = true;
    setTimeout(() => process.exit(0), graceMs).unref();
    void stop()
      .catch(() => undefined)
      .finally(() => process.exit(0));
  };
  process.once('SIGTERM', onStop);
  process.once('SIGINT', onStop);
  process.stdin.on('end', onStop);
  process.stdin.resume();
}

/** Runs the script's `main`, printing a failure and exiting 1 (the parent sees the exit). */
export function runChild(main: () => Promise<void>): void {
  main().catch((error: unknown) => {
    process.stderr.write(`${error instanceof Error ? error.stack : String(error)}\n`);
    process.exit(1);
  });
}
