/**
 * RedisSessionStore's parsed-record cache: an expansion answered partly from what the instance
 * holds must equal the expansion of a store without a cache, whatever happened to the chain
 * since (deleted or re-created ancestors, another instance writing, forks, eviction).
 */
import fc from 'fast-check';
import Redis from 'ioredis';
import { encodeRecord } from '../../lib/store/codec';
import { RedisSessionStore } from '../../lib/store/redis-session-store';
import type { SessionStore, StoredResponse } from '../../lib/store/session-store';
import { testKeyPrefix, testRedisUrl } from '../support/redis';
import { TENANT_A, TENANT_B, turn, userMessage } from './contract';
import { deleteKeysUnder } from './redis-harness';

let client: Redis;
let other: Redis;
let prefix: string;

beforeAll(() => {
  client = new Redis(testRedisUrl(), { maxRetriesPerRequest: 1 });
  other = new Redis(testRedisUrl(), { maxRetriesPerRequest: 1 });
});

afterAll(async () => {
  await client.quit();
  await other.quit();
});

beforeEach(() => {
  prefix = testKeyPrefix('cache');
});

afterEach(async () => {
  await deleteKeysUnder(client, prefix);
});

/** Counts the commands a client sends and the bytes of the replies it receives. */
function traffic(redis: Redis): { commands: () => number; replyBytes: () => number } {
  let commands = 0;
  let bytes = 0;
  const original = redis.sendCommand.bind(redis);
  redis.sendCommand = ((command: { promise: Promise<unknown> }, ...rest: unknown[]) => {
    commands += 1;
    command.promise.then(
      (reply) => (bytes += JSON.stringify(reply ?? null).length),
      () => undefined,
    );
    return (original as (...args: unknown[]) => unknown)(command, ...rest);
  }) as typeof redis.sendCommand;
  return { commands: () => commands, replyBytes: () => bytes };
}

function stores(): {
  a: RedisSessionStore;
  b: RedisSessionStore;
  tiny: RedisSessionStore;
  plain: RedisSessionStore;
} {
  return {
    // two instances with their own caches on separate clients
    a: new RedisSessionStore({ redis: client, keyPrefix: prefix }),
    b: new RedisSessionStore({ redis: other, keyPrefix: prefix }),
    // a cache that holds a few records at most: constant eviction
    tiny: new RedisSessionStore({ redis: client, keyPrefix: prefix, cacheBytes: 1500 }),
    // no cache: the reference
    plain: new RedisSessionStore({ redis: client, keyPrefix: prefix, cacheBytes: 0 }),
  };
}

/** An expansion's outcome: the chain (or null), or the code of the error it failed with. */
async function outcome(store: SessionStore, tenant: string, id: string): Promise<unknown> {
  try {
    return { chain: await store.expandChain(tenant, id) };
  } catch (error) {
    return { error: (error as { code?: unknown }).code };
  }
}

async function expectSameExpansion(
  cached: SessionStore[],
  plain: SessionStore,
  tenant: string,
  id: string,
): Promise<void> {
  const reference = await outcome(plain, tenant, id);
  for (const store of cached) {
    expect(await outcome(store, tenant, id)).toEqual(reference);
    // a second time, now answered from the cache
    expect(await outcome(store, tenant, id)).toEqual(reference);
  }
}

const record = (id: string, parent: string | null, marker = id, createdAt?: number) =>
  turn(TENANT_A, id, parent, marker, {
    input: [userMessage(`${marker} `.repeat(20))],
    ...(createdAt === undefined ? {} : { createdAt }),
  });

describe('RedisSessionStore chain cache', () => {
  it('sends and parses only the records the instance has not seen', async () => {
    const counted = new Redis(testRedisUrl());
    try {
      const store = new RedisSessionStore({ redis: counted, keyPrefix: prefix });
      const plain = new RedisSessionStore({ redis: client, keyPrefix: prefix, cacheBytes: 0 });
      for (let i = 0; i < 100; i += 1) {
        await store.putResponse(record(`resp_${i}`, i === 0 ? null : `resp_${i - 1}`));
      }
      const seen = traffic(counted);
      const first = await store.expandChain(TENANT_A, 'resp_99');
      expect(seen.commands()).toBe(1);
      expect(first).toEqual(await plain.expandChain(TENANT_A, 'resp_99'));
      // the records this instance wrote were kept: the reply carries no history
      expect(seen.replyBytes()).toBeLessThan(500);
      const again = await store.expandChain(TENANT_A, 'resp_99');
      expect(again?.items[0]).toBe(first?.items[0]); // shared, not parsed again
      expect(again?.items).not.toBe(first?.items); // fresh arrays
      expect(Object.isFrozen(again?.items[0])).toBe(true);
    } finally {
      counted.disconnect();
    }
  });

  it('receives only the new records after another instance wrote', async () => {
    const counted = new Redis(testRedisUrl());
    try {
      const a = new RedisSessionStore({ redis: counted, keyPrefix: prefix });
      const { b, plain } = stores();
      for (let i = 0; i < 50; i += 1) {
        await a.putResponse(record(`resp_${i}`, i === 0 ? null : `resp_${i - 1}`));
      }
      await b.putResponse(record('resp_50', 'resp_49'));
      await b.putResponse(record('resp_51', 'resp_50'));
      const seen = traffic(counted);
      expect(await a.expandChain(TENANT_A, 'resp_51')).toEqual(
        await plain.expandChain(TENANT_A, 'resp_51'),
      );
      expect(seen.commands()).toBe(1);
      // two records of ~400 bytes, not fifty
      expect(seen.replyBytes()).toBeLessThan(1500);
      expect(await b.expandChain(TENANT_A, 'resp_51')).toEqual(
        await plain.expandChain(TENANT_A, 'resp_51'),
      );
    } finally {
      counted.disconnect();
    }
  });

  it('equals an uncached expansion after an ancestor is deleted or re-created', async () => {
    const { a, b, tiny, plain } = stores();
    const all = [a, b, tiny];
    for (let i = 0; i < 6; i += 1) {
      await a.putResponse(record(`resp_${i}`, i === 0 ? null : `resp_${i - 1}`));
    }
    await expectSameExpansion(all, plain, TENANT_A, 'resp_5');
    // deleted: every cache must answer null
    await b.deleteResponse(TENANT_A, 'resp_2');
    await expectSameExpansion(all, plain, TENANT_A, 'resp_5');
    expect(await a.expandChain(TENANT_A, 'resp_5')).toBeNull();
    // re-created with other content: the descendants now chain through the new record
    await b.putResponse(record('resp_2', 'resp_1', 'replaced'));
    await expectSameExpansion(all, plain, TENANT_A, 'resp_5');
    expect((await a.expandChain(TENANT_A, 'resp_5'))?.records[2]?.input).toEqual(
      record('resp_2', 'resp_1', 'replaced').input,
    );
    // re-created with the same content but another createdAt, and under another parent
    await b.deleteResponse(TENANT_A, 'resp_2');
    await b.putResponse(record('resp_2', 'resp_1', 'replaced', 1_234));
    await expectSameExpansion(all, plain, TENANT_A, 'resp_5');
    expect((await a.expandChain(TENANT_A, 'resp_5'))?.records[2]?.createdAt).toBe(1_234);
    await b.deleteResponse(TENANT_A, 'resp_2');
    await b.putResponse(record('resp_2', 'resp_0', 'replaced', 1_234));
    await expectSameExpansion(all, plain, TENANT_A, 'resp_5');
    const shorter = await a.expandChain(TENANT_A, 'resp_5');
    expect(shorter?.depth).toBe(5);
    // measured on the records it holds now, not on what the leaf's header recorded
    expect(shorter?.bytes).toBe(
      (shorter?.records ?? []).reduce(
        (sum, r) => sum + encodeRecord(r, Number.MAX_SAFE_INTEGER).bytes,
        0,
      ),
    );
    // the root re-created: everything below changes
    await a.deleteResponse(TENANT_A, 'resp_0');
    await a.putResponse(record('resp_0', null, 'new root'));
    await expectSameExpansion(all, plain, TENANT_A, 'resp_5');
  });

  it('keeps tenants apart: the same history in two tenants is two histories', async () => {
    const { a, plain } = stores();
    await a.putResponse(turn(TENANT_A, 'resp_1', null));
    await a.putResponse(turn(TENANT_B, 'resp_1', null));
    const b1 = await a.expandChain(TENANT_B, 'resp_1');
    expect(b1?.records[0]?.tenant).toBe(TENANT_B);
    expect(b1).toEqual(await plain.expandChain(TENANT_B, 'resp_1'));
    expect((await a.expandChain(TENANT_A, 'resp_1'))?.records[0]?.tenant).toBe(TENANT_A);
  });

  it('session expansions equal getSessionHead + an uncached expandChain', async () => {
    const { a, b, plain } = stores();
    await a.putSessionResponse(record('resp_1', null), 'sess');
    await b.putSessionResponse(record('resp_2', 'resp_1'), 'sess');
    await a.putSessionResponse(record('resp_3', 'resp_2'), 'sess');
    for (const store of [a, b]) {
      expect(await store.expandSessionHead(TENANT_A, 'sess')).toEqual({
        head: 'resp_3',
        chain: await plain.expandChain(TENANT_A, 'resp_3'),
      });
    }
  });

  it('equals an uncached expansion through any writes, forks, deletes and evictions (property)', async () => {
    const { a, b, tiny, plain } = stores();
    const writers = [a, b, tiny];
    let run = 0;
    const op = fc.oneof(
      {
        weight: 4,
        arbitrary: fc.record({
          kind: fc.constant('put' as const),
          id: fc.nat(4),
          parent: fc.option(fc.nat(4), { nil: null, freq: 4 }),
          variant: fc.nat(1),
          at: fc.nat(1),
          writer: fc.nat(2),
        }),
      },
      {
        weight: 2,
        arbitrary: fc.record({
          kind: fc.constant('replace' as const),
          id: fc.nat(4),
          parent: fc.option(fc.nat(4), { nil: null, freq: 4 }),
          variant: fc.nat(1),
          at: fc.nat(1),
          writer: fc.nat(2),
        }),
      },
      {
        weight: 1,
        arbitrary: fc.record({
          kind: fc.constant('delete' as const),
          id: fc.nat(4),
          writer: fc.nat(2),
        }),
      },
      { weight: 3, arbitrary: fc.record({ kind: fc.constant('expand' as const), id: fc.nat(4) }) },
    );
    await fc.assert(
      fc.asyncProperty(fc.array(op, { minLength: 1, maxLength: 40 }), async (ops) => {
        run += 1;
        const id = (n: number): string => `resp_q${run}_${n}`;
        for (const step of ops) {
          if (step.kind === 'put' || step.kind === 'replace') {
            const writer = writers[step.writer] as SessionStore;
            if (step.kind === 'replace') await writer.deleteResponse(TENANT_A, id(step.id));
            const r: StoredResponse = record(
              id(step.id),
              // mostly an earlier id, so chains grow; sometimes a later one (cycles)
              step.parent === null || step.parent === step.id ? null : id(step.parent),
              `v${step.variant}`,
              1_000 + step.at,
            );
            await writer.putResponse(r).catch(() => undefined);
          } else if (step.kind === 'delete') {
            await (writers[step.writer] as SessionStore).deleteResponse(TENANT_A, id(step.id));
          } else {
            await expectSameExpansion(writers, plain, TENANT_A, id(step.id));
          }
        }
        for (let n = 0; n <= 4; n += 1) await expectSameExpansion(writers, plain, TENANT_A, id(n));
      }),
      { numRuns: 250 },
    );
  }, 60_000);
});
