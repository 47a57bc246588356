import { randomBytes } from 'node:crypto';
import { NO_REDIS_MESSAGE, pingRedis, spawnRedis } from './redis-server';

/**
 * Resolves the Redis server for the whole run and gives the run its own key prefix, so two runs on
 * one server never collide. Workers read `REDIS_URL` and `RELAY_TEST_PREFIX`.
 */
export default async function globalSetup(): Promise<void> {
  process.env.RELAY_TEST_PREFIX = `rrtest:${process.pid}:${randomBytes(4).toString('hex')}`;
  if (process.env.REDIS_URL) return;
  if (await pingRedis('127.0.0.1', 6379)) {
    process.env.REDIS_URL = 'redis://127.0.0.1:6379';
    return;
  }
  try {
    const redis = await spawnRedis();
    process.env.REDIS_URL = redis.url;
    (globalThis as { __relayRedis?: { stop(): Promise<void> } }).__relayRedis = redis;
  } catch {
    process.env.RELAY_TEST_REDIS_ERROR = NO_REDIS_MESSAGE;
  }
}
