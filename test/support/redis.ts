/** Per-test access to the run's Redis server (see global-setup.ts). */
import { randomBytes } from 'node:crypto';

export function testRedisUrl(): string {
  const error = process.env.RELAY_TEST_REDIS_ERROR;
  if (error) throw new Error(error);
  const url = process.env.REDIS_URL;
  if (!url) throw new Error('REDIS_URL was not resolved by the jest global setup');
  return url;
}

/** A key prefix unique to this run and this call, so tests never see each other's keys. */
export function testKeyPrefix(label = 't'): string {
  return `${process.env.RELAY_TEST_PREFIX ?? 'rrtest'}:${label}:${randomBytes(3).toString('hex')}`;
}
