/**
 * Redis trouble on a server this test owns: down (SIGKILL), stalled (CLIENT PAUSE) and a dropped
 * connection. The client keeps ioredis defaults (which wait over a minute with Redis down), so
 * every bound proven here is the store's own. Jest's timeout is the hang detector.
 */
import Redis from 'ioredis';
import { RedisSessionStore } from '../../lib/store/redis-session-store';
import { SessionStoreError } from '../../lib/store/session-store';
import {
  redisServerUnavailableReason,
  spawnRedis,
  type SpawnedRedis,
} from '../support/redis-server';
import { TENANT_A, expectStoreError, turn } from './contract';

const TIMEOUT_MS = 300;
const unavailable = redisServerUnavailableReason();
if (unavailable !== null) {
  process.stdout.write(`\nSkipping the Redis failure tests: ${unavailable}\n`);
}

let server: SpawnedRedis;
let redis: Redis;
let store: RedisSessionStore;

beforeEach(async () => {
  if (unavailable !== null) return;
  server = await spawnRedis();
  redis = new Redis(server.url);
  store = new RedisSessionStore({ redis, keyPrefix: 'fail', operationTimeoutMs: TIMEOUT_MS });
});

afterEach(async () => {
  if (unavailable !== null) return;
  redis.disconnect();
  await server.stop();
});

async function untilWorking(check: () => Promise<unknown>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await check();
      return;
    } catch (error) {
      expect(error).toBeInstanceOf(SessionStoreError);
      if (Date.now() > deadline) throw error;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

(unavailable === null ? describe : describe.skip)('RedisSessionStore when Redis fails', () => {
  it('answers store_unavailable within its deadline while Redis is down, then recovers without a restart', async () => {
    await store.putResponse(turn(TENANT_A, 'resp_1', null));
    const closed = new Promise((resolve) => redis.once('close', resolve));
    await server.stop();
    await closed;

    const results = await Promise.allSettled([
      store.getResponse(TENANT_A, 'resp_1'),
      store.expandChain(TENANT_A, 'resp_1'),
      store.putResponse(turn(TENANT_A, 'resp_2', 'resp_1')),
      store.setSessionHead(TENANT_A, 'ws', 'resp_1'),
      store.getSessionHead(TENANT_A, 'ws'),
      store.deleteResponse(TENANT_A, 'resp_1'),
    ]);
    for (const result of results) {
      expect(result.status).toBe('rejected');
      const error = (result as PromiseRejectedResult).reason as SessionStoreError;
      expect(error).toBeInstanceOf(SessionStoreError);
      expect(error.code).toBe('store_unavailable');
      expect(error.retryable).toBe(true);
    }

    server = await spawnRedis({ port: server.port });
    // the same store and client, reconnected by the client's own retry schedule
    await untilWorking(() => store.putResponse(turn(TENANT_A, 'resp_new', null)), 8000);
    await store.putResponse(turn(TENANT_A, 'resp_new_2', 'resp_new'));
    expect((await store.expandChain(TENANT_A, 'resp_new_2'))?.depth).toBe(2);
    // a fresh server without persistence: what was stored before the outage is gone, not corrupt
    expect(await store.getResponse(TENANT_A, 'resp_1')).toBeNull();
  }, 14_000);

  it('fails at once with failFast while the client is disconnected', async () => {
    const fast = new RedisSessionStore({
      redis,
      keyPrefix: 'fail',
      operationTimeoutMs: 60_000,
      failFast: true,
    });
    const closed = new Promise((resolve) => redis.once('close', resolve));
    await server.stop();
    await closed;
    // with a 60 s deadline, only the fast path can answer before jest's 3 s timeout
    await expectStoreError(fast.getResponse(TENANT_A, 'resp_1'), 'store_unavailable');
    await expectStoreError(fast.putResponse(turn(TENANT_A, 'resp_1', null)), 'store_unavailable');
  }, 3000);

  it('answers store_timeout when Redis stalls (CLIENT PAUSE), and the late write lands once', async () => {
    const admin = new Redis(server.url);
    try {
      await store.putResponse(turn(TENANT_A, 'resp_1', null));
      const pausedUntil = Date.now() + 1000;
      await admin.call('CLIENT', 'PAUSE', 1000, 'ALL');
      const error = await expectStoreError(store.getResponse(TENANT_A, 'resp_1'), 'store_timeout');
      expect(error.retryable).toBe(true);
      await expectStoreError(
        store.putResponse(turn(TENANT_A, 'resp_2', 'resp_1')),
        'store_timeout',
      );
      // CLIENT UNPAUSE would itself wait behind the pause: let it run out
      await new Promise((r) => setTimeout(r, Math.max(0, pausedUntil - Date.now()) + 50));
      // the timed-out write still ran once Redis resumed; sending it again is a no-op success
      await store.putResponse(turn(TENANT_A, 'resp_2', 'resp_1'));
      const chain = await store.expandChain(TENANT_A, 'resp_2');
      expect(chain?.records.map((r) => r.id)).toEqual(['resp_1', 'resp_2']);
      expect(chain?.items).toHaveLength(4);
    } finally {
      admin.disconnect();
    }
  }, 4000);

  it('survives a dropped connection: the client re-sends the in-flight write, stored once', async () => {
    const admin = new Redis(server.url);
    const patient = new RedisSessionStore({ redis, keyPrefix: 'fail', operationTimeoutMs: 3000 });
    try {
      await patient.putResponse(turn(TENANT_A, 'resp_1', null));
      let reconnects = 0;
      redis.on('reconnecting', () => (reconnects += 1));
      // hold writes so the put is in flight when its connection is killed
      await admin.call('CLIENT', 'PAUSE', 400, 'WRITE');
      const put = patient.putResponse(turn(TENANT_A, 'resp_2', 'resp_1'));
      await new Promise((r) => setTimeout(r, 100));
      await admin.call('CLIENT', 'KILL', 'TYPE', 'normal', 'SKIPME', 'yes');
      await put;
      expect(reconnects).toBeGreaterThanOrEqual(1);
      expect((await patient.expandChain(TENANT_A, 'resp_2'))?.items).toHaveLength(4);
      expect(await redis.zcard(`fail:{${TENANT_A}}:i`)).toBe(2);
    } finally {
      admin.disconnect();
    }
  }, 6000);
});
