import Redis from 'ioredis';
import { RedisSessionStore } from '../../lib/store/redis-session-store';
import { encodeRecord } from '../../lib/store/codec';
import type { StoredResponse } from '../../lib/store/session-store';
import { testKeyPrefix, testRedisUrl } from '../support/redis';
import {
  redisServerUnavailableReason,
  spawnRedis,
  type SpawnedRedis,
} from '../support/redis-server';
import {
  TENANT_A,
  TENANT_B,
  describeSessionStoreContract,
  expectStoreError,
  turn,
  userMessage,
} from './contract';
import { deleteKeysUnder, keysUnder, redisContractFactory } from './redis-harness';

let client: Redis;

beforeAll(() => {
  client = new Redis(testRedisUrl(), { maxRetriesPerRequest: 1 });
});

afterAll(async () => {
  await client.quit();
});

describeSessionStoreContract(
  'RedisSessionStore (single Redis)',
  redisContractFactory(() => client),
);

/** Counts the commands a client sends (each is one round trip for the store's operations). */
function countCommands(redis: Redis): { count: () => number; names: string[] } {
  const names: string[] = [];
  const original = redis.sendCommand.bind(redis);
  redis.sendCommand = ((command: { name: string }, ...rest: unknown[]) => {
    names.push(command.name);
    return (original as (...args: unknown[]) => unknown)(command, ...rest);
  }) as typeof redis.sendCommand;
  return { count: () => names.length, names };
}

function toolTurn(i: number, parentId: string | null): StoredResponse {
  return turn(TENANT_A, `resp_${i}`, parentId, `t${i}`, {
    input: [{ type: 'function_call_output', call_id: `call_${i - 1}`, output: 'o'.repeat(200) }],
    output: [
      {
        type: 'function_call',
        id: `fc_${i}`,
        call_id: `call_${i}`,
        name: 'shell',
        arguments: '{}',
      },
    ],
  });
}

describe('RedisSessionStore', () => {
  let prefix: string;
  beforeEach(() => {
    prefix = testKeyPrefix('redis');
  });
  afterEach(async () => {
    await deleteKeysUnder(client, prefix);
  });

  it('expands a 200-deep chain in ONE round trip, and writes a turn in one', async () => {
    const counted = new Redis(testRedisUrl());
    try {
      const store = new RedisSessionStore({ redis: counted, keyPrefix: prefix });
      for (let i = 0; i < 200; i += 1) {
        await store.putResponse(toolTurn(i, i === 0 ? null : `resp_${i - 1}`));
      }
      const counter = countCommands(counted);
      const chain = await store.expandChain(TENANT_A, 'resp_199');
      expect(chain?.depth).toBe(200);
      expect(chain?.records[0]?.id).toBe('resp_0');
      expect(chain?.items).toHaveLength(400);
      expect(counter.count()).toBe(1);
      await store.putResponse(toolTurn(200, 'resp_199'));
      expect(counter.count()).toBe(2);
      expect(counter.names.every((n) => n === 'evalsha' || n === 'eval')).toBe(true);
    } finally {
      counted.disconnect();
    }
  });

  it('serves a session turn in two round trips: head + chain, then record + head', async () => {
    const counted = new Redis(testRedisUrl());
    try {
      const store = new RedisSessionStore({ redis: counted, keyPrefix: prefix });
      for (let i = 0; i < 50; i += 1) {
        await store.putSessionResponse(toolTurn(i, i === 0 ? null : `resp_${i - 1}`), 'sess');
      }
      const counter = countCommands(counted);
      const found = await store.expandSessionHead(TENANT_A, 'sess');
      expect(found?.head).toBe('resp_49');
      expect(found?.chain?.depth).toBe(50);
      expect(counter.count()).toBe(1);
      await store.putSessionResponse(toolTurn(50, 'resp_49'), 'sess');
      expect(counter.count()).toBe(2);
      expect(await store.getSessionHead(TENANT_A, 'sess')).toBe('resp_50');
    } finally {
      counted.disconnect();
    }
  });

  const serverReason = redisServerUnavailableReason();
  if (serverReason !== null) {
    process.stdout.write(`\nSkipping the MONITOR round-trip test: ${serverReason}\n`);
  }
  (serverReason === null ? describe : describe.skip)('seen from the server (MONITOR)', () => {
    let server: SpawnedRedis;
    let redis: Redis;
    beforeAll(async () => {
      // a private server, so MONITOR sees only this test's traffic
      server = await spawnRedis();
      redis = new Redis(server.url);
    });
    afterAll(async () => {
      redis.disconnect();
      await server.stop();
    });

    it('receives one command per operation; the chain walk runs inside the script', async () => {
      const store = new RedisSessionStore({ redis, keyPrefix: prefix });
      for (let i = 0; i < 200; i += 1) {
        await store.putResponse(toolTurn(i, i === 0 ? null : `resp_${i - 1}`));
      }
      const monitor = await redis.monitor();
      const seen: { source: string; args: string[] }[] = [];
      monitor.on('monitor', (_time: string, args: string[], source: string) => {
        seen.push({ source, args });
      });
      expect((await store.expandChain(TENANT_A, 'resp_199'))?.depth).toBe(200);
      await store.putResponse(toolTurn(200, 'resp_199'));
      await redis.echo('end-of-test');
      while (!seen.some((c) => c.args[0]?.toLowerCase() === 'echo')) {
        await new Promise((r) => setTimeout(r, 10));
      }
      monitor.disconnect();
      const fromClients = seen.filter(
        (c) => c.source !== 'lua' && c.args[0]?.toLowerCase() !== 'echo',
      );
      expect(fromClients.map((c) => c.args[0]?.toLowerCase())).toEqual([
        expect.stringMatching(/^(evalsha|eval)$/),
        expect.stringMatching(/^(evalsha|eval)$/),
      ]);
      // 200 header reads walking the chain, then the expand's delete-generation read, the put's
      // own GET and its parent's
      const inLua = (name: string) =>
        seen.filter((c) => c.source === 'lua' && c.args[0]?.toLowerCase() === name);
      expect(inLua('getrange')).toHaveLength(200);
      expect(inLua('get')).toHaveLength(3);
      expect(inLua('pexpire').length).toBeGreaterThanOrEqual(200);
    });

    it('walks the whole chain again once a tenth of the TTL passed since the last full walk', async () => {
      // TTL 2 s: a full walk vouches for its chain for 200 ms
      const store = new RedisSessionStore({ redis, keyPrefix: `${prefix}:stale`, ttlSeconds: 2 });
      for (let i = 0; i < 20; i += 1) {
        await store.putResponse(toolTurn(i, i === 0 ? null : `resp_${i - 1}`));
      }
      expect((await store.expandChain(TENANT_A, 'resp_19'))?.depth).toBe(20);
      await new Promise((r) => setTimeout(r, 300));
      const monitor = await redis.monitor();
      const seen: { source: string; args: string[] }[] = [];
      monitor.on('monitor', (_time: string, args: string[], source: string) => {
        seen.push({ source, args });
      });
      expect((await store.expandChain(TENANT_A, 'resp_19'))?.depth).toBe(20);
      expect((await store.expandChain(TENANT_A, 'resp_19'))?.depth).toBe(20);
      await redis.echo('end-of-test');
      while (!seen.some((c) => c.args[0]?.toLowerCase() === 'echo')) {
        await new Promise((r) => setTimeout(r, 10));
      }
      monitor.disconnect();
      const headers = seen.filter((c) => c.source === 'lua' && c.args[0] === 'GETRANGE');
      // the first walks all 20 (and refreshes all 20), the second stops at once
      expect(headers).toHaveLength(21);
    });

    it('walks only the new records of a chain it walked in full a moment ago', async () => {
      const store = new RedisSessionStore({ redis, keyPrefix: `${prefix}:fresh` });
      for (let i = 0; i < 100; i += 1) {
        await store.putResponse(toolTurn(i, i === 0 ? null : `resp_${i - 1}`));
      }
      // the first expansion walks all 100 records; the next turn's walks stop where it ended
      expect((await store.expandChain(TENANT_A, 'resp_99'))?.depth).toBe(100);
      await store.putResponse(toolTurn(100, 'resp_99'));
      const monitor = await redis.monitor();
      const seen: { source: string; args: string[] }[] = [];
      monitor.on('monitor', (_time: string, args: string[], source: string) => {
        seen.push({ source, args });
      });
      const chain = await store.expandChain(TENANT_A, 'resp_100');
      await redis.echo('end-of-test');
      while (!seen.some((c) => c.args[0]?.toLowerCase() === 'echo')) {
        await new Promise((r) => setTimeout(r, 10));
      }
      monitor.disconnect();
      expect(chain?.depth).toBe(101);
      expect(chain?.records.map((r) => r.id)).toEqual(
        Array.from({ length: 101 }, (_, i) => `resp_${i}`),
      );
      const inLua = (name: string) =>
        seen.filter((c) => c.source === 'lua' && c.args[0]?.toLowerCase() === name);
      // the new leaf's header only: its own record, stored after the full walk, vouches for it
      expect(inLua('getrange')).toHaveLength(1);
      expect(inLua('pexpire').filter((c) => c.args[1]?.includes(':r:'))).toHaveLength(1);
    });
  });

  it('stores each turn once: bytes grow linearly with the conversation', async () => {
    const store = new RedisSessionStore({ redis: client, keyPrefix: prefix });
    let expected = 0;
    for (let i = 0; i < 50; i += 1) {
      const record = toolTurn(i, i === 0 ? null : `resp_${i - 1}`);
      await store.expandChain(TENANT_A, record.parentId ?? 'none');
      await store.putResponse(record);
      expected += encodeRecord(record, Number.MAX_SAFE_INTEGER).bytes;
    }
    const keys = (await keysUnder(client, prefix)).filter((k) => k.includes(':r:'));
    expect(keys).toHaveLength(50);
    let stored = 0;
    for (const key of keys) stored += await client.strlen(key);
    // the records' own bytes plus a header of ~130 bytes each (two chain hashes), nothing quadratic
    expect(stored).toBeGreaterThanOrEqual(expected);
    expect(stored - expected).toBeLessThan(50 * 160);
  });

  it('walks records whose header is long (200-character ids kept verbatim)', async () => {
    const store = new RedisSessionStore({ redis: client, keyPrefix: prefix });
    const plain = new RedisSessionStore({ redis: client, keyPrefix: prefix, cacheBytes: 0 });
    const ids = ['a', 'b', 'c'].map((c) => c.repeat(200));
    for (const [i, id] of ids.entries()) {
      await store.putResponse(turn(TENANT_A, id, i === 0 ? null : (ids[i - 1] as string)));
    }
    const key = `${prefix}:{${TENANT_A}}:r:${ids[2] as string}`;
    expect((await client.get(key))?.indexOf('{')).toBeGreaterThan(256);
    for (const s of [store, plain]) {
      expect((await s.expandChain(TENANT_A, ids[2] as string))?.records.map((r) => r.id)).toEqual(
        ids,
      );
    }
  });

  it('shares state between two instances on separate clients', async () => {
    const other = new Redis(testRedisUrl());
    try {
      const a = new RedisSessionStore({ redis: client, keyPrefix: prefix });
      const b = new RedisSessionStore({ redis: other, keyPrefix: prefix });
      await a.putResponse(turn(TENANT_A, 'resp_1', null));
      await b.putResponse(turn(TENANT_A, 'resp_2', 'resp_1'));
      await a.setSessionHead(TENANT_A, 'ws', 'resp_2');
      expect(await b.getSessionHead(TENANT_A, 'ws')).toBe('resp_2');
      expect((await a.expandChain(TENANT_A, 'resp_2'))?.depth).toBe(2);
      await expectStoreError(b.putResponse(turn(TENANT_A, 'resp_1', null, 'other')), 'conflict');
    } finally {
      other.disconnect();
    }
  });

  it("refuses to expand a chain over a stricter store's caps, refreshing nothing", async () => {
    const loose = new RedisSessionStore({ redis: client, keyPrefix: prefix, ttlSeconds: 60 });
    for (let i = 0; i < 8; i += 1) {
      await loose.putResponse(
        turn(TENANT_A, `resp_${i}`, i === 0 ? null : `resp_${i - 1}`, `m${i}`, {
          input: [userMessage('q'.repeat(500))],
        }),
      );
    }
    const key = `${prefix}:{${TENANT_A}}:r:resp_0`;
    const ttlBefore = await client.pttl(key);
    const shallow = new RedisSessionStore({
      redis: client,
      keyPrefix: prefix,
      maxChainDepth: 5,
      ttlSeconds: 600,
    });
    const deep = await expectStoreError(shallow.expandChain(TENANT_A, 'resp_7'), 'chain_too_deep');
    expect(deep).toMatchObject({ limit: 5, actual: 8 });
    const small = new RedisSessionStore({
      redis: client,
      keyPrefix: prefix,
      maxChainBytes: 3000,
      ttlSeconds: 600,
    });
    await expectStoreError(small.expandChain(TENANT_A, 'resp_7'), 'chain_too_large');
    expect(await client.pttl(key)).toBeLessThanOrEqual(ttlBefore);
    expect((await shallow.expandChain(TENANT_A, 'resp_3'))?.depth).toBe(4);
    expect(await client.pttl(key)).toBeGreaterThan(60_000);
  });

  it('works under an ioredis keyPrefix and after SCRIPT FLUSH', async () => {
    const prefixed = new Redis(testRedisUrl(), { keyPrefix: 'outer:' });
    try {
      const store = new RedisSessionStore({ redis: prefixed, keyPrefix: prefix });
      await store.putResponse(turn(TENANT_A, 'resp_1', null));
      await store.putResponse(turn(TENANT_A, 'resp_2', 'resp_1'));
      expect((await store.expandChain(TENANT_A, 'resp_2'))?.depth).toBe(2);
      expect(await client.exists(`outer:${prefix}:{${TENANT_A}}:r:resp_2`)).toBe(1);
      await client.script('FLUSH');
      expect((await store.expandChain(TENANT_A, 'resp_2'))?.depth).toBe(2);
      await store.putResponse(turn(TENANT_A, 'resp_3', 'resp_2'));
      await deleteKeysUnder(client, `outer:${prefix}`);
    } finally {
      prefixed.disconnect();
    }
  });

  it('does not count other tenants, nor expired entries, against a tenant', async () => {
    const store = new RedisSessionStore({
      redis: client,
      keyPrefix: prefix,
      maxEntriesPerTenant: 2,
    });
    await store.putResponse(turn(TENANT_A, 'resp_1', null));
    await store.putResponse(turn(TENANT_B, 'resp_1', null));
    await store.putResponse(turn(TENANT_B, 'resp_2', null));
    await store.putResponse(turn(TENANT_A, 'resp_2', null));
    expect(await client.zcard(`${prefix}:{${TENANT_A}}:i`)).toBe(2);
    expect(await client.pttl(`${prefix}:{${TENANT_A}}:i`)).toBeGreaterThan(0);
  });

  it("never quits the user's client unless closeClient is set", async () => {
    const own = new Redis(testRedisUrl());
    const a = new RedisSessionStore({ redis: own, keyPrefix: prefix });
    await a.close();
    expect(await own.ping()).toBe('PONG');
    const b = new RedisSessionStore({ redis: own, keyPrefix: prefix, closeClient: true });
    await b.close();
    if (own.status !== 'end') await new Promise((resolve) => own.once('end', resolve));
    // a client that was quit fails at once, typed
    const c = new RedisSessionStore({ redis: own, keyPrefix: prefix });
    await expectStoreError(c.getResponse(TENANT_A, 'resp_1'), 'store_unavailable');
  });

  it('validates its options with TypeErrors naming the option', () => {
    expect(() => new RedisSessionStore({ redis: client, keyPrefix: 'a{b}' })).toThrow(
      /options\.keyPrefix/,
    );
    expect(() => new RedisSessionStore({ redis: client, operationTimeoutMs: 0 })).toThrow(
      /options\.operationTimeoutMs/,
    );
    expect(() => new RedisSessionStore({ redis: {} as Redis })).toThrow(/options\.redis/);
  });
});
