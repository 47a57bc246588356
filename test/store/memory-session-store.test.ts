import { MemorySessionStore } from '../../lib/store/memory-session-store';
import { DEFAULT_MAX_RESPONSE_BYTES } from '../../lib/store/limits';
import {
  TENANT_A,
  TENANT_B,
  describeSessionStoreContract,
  expectStoreError,
  turn,
  userMessage,
} from './contract';

/** A fake clock; it starts far from 0 because lru-cache treats a start time of 0 as "no TTL". */
function fakeClock(): { now: () => number; advance: (ms: number) => void } {
  let t = 1_000_000;
  return { now: () => t, advance: (ms) => (t += ms) };
}

describeSessionStoreContract('MemorySessionStore', async (options) => {
  const clock = fakeClock();
  const store = new MemorySessionStore({ ...options, now: clock.now });
  return {
    store,
    cleanup: () => store.close(),
    elapse: async (ms) => clock.advance(ms),
  };
});

describe('MemorySessionStore', () => {
  it('evicts the least recently used entries past maxEntries (all tenants together)', async () => {
    const store = new MemorySessionStore({ maxEntries: 3 });
    await store.putResponse(turn(TENANT_A, 'resp_1', null));
    await store.putResponse(turn(TENANT_A, 'resp_2', null));
    await store.putResponse(turn(TENANT_B, 'resp_3', null));
    await store.expandChain(TENANT_A, 'resp_1'); // resp_1 becomes the most recent
    await store.putResponse(turn(TENANT_B, 'resp_4', null));
    expect(store.size).toBe(3);
    expect(await store.getResponse(TENANT_A, 'resp_2')).toBeNull();
    expect(await store.getResponse(TENANT_A, 'resp_1')).not.toBeNull();
    // the evicted entry no longer counts against its tenant
    const capped = new MemorySessionStore({ maxEntries: 2, maxEntriesPerTenant: 2 });
    await capped.putResponse(turn(TENANT_A, 'resp_1', null));
    await capped.putResponse(turn(TENANT_A, 'resp_2', null));
    await capped.putResponse(turn(TENANT_B, 'resp_1', null));
    await capped.putResponse(turn(TENANT_A, 'resp_3', null));
  });

  it('evicts past maxBytes and never stores a record it cannot hold', async () => {
    const store = new MemorySessionStore({ maxBytes: 5000 });
    expect(store.limits.maxResponseBytes).toBeLessThan(5000);
    const big = (id: string): ReturnType<typeof turn> =>
      turn(TENANT_A, id, null, id, { input: [userMessage('y'.repeat(2000))] });
    await store.putResponse(big('resp_1'));
    await store.putResponse(big('resp_2'));
    await store.putResponse(big('resp_3'));
    expect(await store.getResponse(TENANT_A, 'resp_1')).toBeNull();
    expect(await store.getResponse(TENANT_A, 'resp_3')).not.toBeNull();
    await expectStoreError(
      store.putResponse(
        turn(TENANT_A, 'huge', null, 'h', { input: [userMessage('z'.repeat(6000))] }),
      ),
      'response_too_large',
    );
  });

  it('validates its options with TypeErrors naming the option', () => {
    expect(() => new MemorySessionStore({ maxEntries: 0 })).toThrow(/options\.maxEntries/);
    expect(() => new MemorySessionStore({ ttlSeconds: -1 })).toThrow(/options\.ttlSeconds/);
    expect(() => new MemorySessionStore({ maxChainDepth: 1.5 })).toThrow(/options\.maxChainDepth/);
    expect(() => new MemorySessionStore({ maxBytes: 1000, maxResponseBytes: 2000 })).toThrow(
      /options\.maxResponseBytes/,
    );
    expect(new MemorySessionStore().limits).toMatchObject({
      ttlMs: 86_400_000,
      maxResponseBytes: DEFAULT_MAX_RESPONSE_BYTES,
    });
  });

  it('creates no timers that keep the process alive', async () => {
    const timers = (): number =>
      process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    const before = timers();
    const store = new MemorySessionStore({ ttlSeconds: 60 });
    for (let i = 0; i < 20; i += 1) {
      await store.putResponse(turn(TENANT_A, `resp_${i}`, i === 0 ? null : `resp_${i - 1}`));
    }
    await store.expandChain(TENANT_A, 'resp_19');
    await store.setSessionHead(TENANT_A, 's', 'resp_19');
    expect(timers()).toBe(before);
  });
});
