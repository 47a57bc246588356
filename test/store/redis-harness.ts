/**
 * Contract-suite factories for RedisSessionStore on a Redis or Cluster client: a fresh key prefix
 * per store, keys listed by SCAN on every master, and every key deleted afterwards.
 */
import type { Cluster, Redis } from 'ioredis';
import {
  RedisSessionStore,
  type RedisSessionStoreOptions,
} from '../../lib/store/redis-session-store';
import { testKeyPrefix } from '../support/redis';
import type { ContractStoreFactory } from './contract';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** The nodes to SCAN: the client itself, or every master of a cluster. */
export function scanNodes(client: Redis | Cluster): Redis[] {
  return 'isCluster' in client && client.isCluster
    ? (client as Cluster).nodes('master')
    : [client as Redis];
}

/** Every key under `prefix` (`prefix:*`), from every master. */
export async function keysUnder(client: Redis | Cluster, prefix: string): Promise<string[]> {
  const keys: string[] = [];
  for (const node of scanNodes(client)) {
    let cursor = '0';
    do {
      const [next, batch] = await node.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
      cursor = next;
      keys.push(...batch);
    } while (cursor !== '0');
  }
  return keys.sort();
}

export async function deleteKeysUnder(client: Redis | Cluster, prefix: string): Promise<void> {
  for (const key of await keysUnder(client, prefix)) await client.del(key);
}

export function redisContractFactory(
  client: () => Redis | Cluster,
  extra: Partial<RedisSessionStoreOptions> = {},
): ContractStoreFactory {
  return async (options) => {
    const redis = client();
    const keyPrefix = testKeyPrefix('store');
    const store = new RedisSessionStore({ ...options, ...extra, redis, keyPrefix });
    return {
      store,
      cleanup: async () => {
        await store.close();
        await deleteKeysUnder(redis, keyPrefix);
      },
      elapse: sleep,
      listKeys: () => keysUnder(redis, keyPrefix),
      tenantKeyPrefix: (tenant) => `${keyPrefix}:{${tenant}}:`,
    };
  };
}
