/**
 * The SessionStore contract suite (DESIGN.md §4), run against every store: the memory store, a
 * single Redis and a Redis Cluster each call `describeSessionStoreContract` with a factory and add
 * their own implementation-specific tests next to it.
 */
import fc from 'fast-check';
import { encodeRecord } from '../../lib/store/codec';
import type { SessionStoreLimitOptions } from '../../lib/store/limits';
import {
  SessionStoreError,
  type SessionStore,
  type SessionStoreErrorCode,
  type StoredResponse,
} from '../../lib/store/session-store';
import { tenantId } from '../../lib/store/tenant';
import type { ResponseItem } from '../../lib/protocol/types';

export interface ContractHarness {
  store: SessionStore;
  /** Releases the store and whatever the factory created for it (keys, clients). */
  cleanup(): Promise<void>;
  /** Lets `ms` of store time pass: a fake clock for the memory store, a real wait for Redis. */
  elapse(ms: number): Promise<void>;
  /** Every key the store's backend holds for this store (Redis); absent for in-process stores. */
  listKeys?(): Promise<string[]>;
  /** The prefix every key of `tenant` must start with (Redis). */
  tenantKeyPrefix?(tenant: string): string;
}

export type ContractStoreFactory = (options?: SessionStoreLimitOptions) => Promise<ContractHarness>;

export const TENANT_A = tenantId('sk-tenant-a', 'contract-secret');
export const TENANT_B = tenantId('sk-tenant-b', 'contract-secret');

const CREATED_AT = 1_760_000_000_000;

export function userMessage(text: string): ResponseItem {
  return { type: 'message', role: 'user', content: [{ type: 'input_text', text }] };
}

export function assistantMessage(text: string): ResponseItem {
  return {
    type: 'message',
    id: `msg_${text.replace(/\W/g, '')}`,
    role: 'assistant',
    status: 'completed',
    content: [{ type: 'output_text', text, annotations: [] }],
  };
}

/** A turn that added `<marker> in` as input and produced `<marker> out`. */
export function turn(
  tenant: string,
  id: string,
  parentId: string | null,
  marker = id,
  extra: Partial<StoredResponse> = {},
): StoredResponse {
  return {
    tenant,
    id,
    parentId,
    input: [userMessage(`${marker} in`)],
    output: [assistantMessage(`${marker} out`)],
    createdAt: CREATED_AT,
    ...extra,
  };
}

export async function expectStoreError(
  promise: Promise<unknown>,
  code: SessionStoreErrorCode,
): Promise<SessionStoreError> {
  const error: unknown = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(SessionStoreError);
  expect((error as SessionStoreError).code).toBe(code);
  return error as SessionStoreError;
}

const bytesOf = (record: StoredResponse): number =>
  encodeRecord(record, Number.MAX_SAFE_INTEGER).bytes;

export function describeSessionStoreContract(
  name: string,
  makeStore: ContractStoreFactory,
  config: { skip?: string } = {},
): void {
  const describeOrSkip = config.skip === undefined ? describe : describe.skip;
  describeOrSkip(`SessionStore contract: ${name}`, () => {
    const open: ContractHarness[] = [];
    const harness = async (options?: SessionStoreLimitOptions): Promise<ContractHarness> => {
      const h = await makeStore(options);
      open.push(h);
      return h;
    };
    const store = async (options?: SessionStoreLimitOptions): Promise<SessionStore> =>
      (await harness(options)).store;

    afterEach(async () => {
      await Promise.all(open.splice(0).map((h) => h.cleanup()));
    });

    describe('putResponse / getResponse', () => {
      it('round-trips a record with every field', async () => {
        const s = await store();
        const record = turn(TENANT_A, 'resp_full', null, 'full', {
          upstream: 'openai-account-2',
          instructions: 'Be brief.',
          model: 'gpt-5.1-codex',
          input: [
            userMessage('ünïcödé 🎉 "quotes" \u2028 line'),
            { type: 'function_call_output', call_id: 'call_1', output: '{"ok":true}' },
          ],
        });
        await s.putResponse(record);
        expect(await s.getResponse(TENANT_A, 'resp_full')).toEqual(record);
      });

      it('keeps instructions: null and omits absent optional fields', async () => {
        const s = await store();
        await s.putResponse(turn(TENANT_A, 'resp_null', null, 'x', { instructions: null }));
        const got = await s.getResponse(TENANT_A, 'resp_null');
        expect(got?.instructions).toBeNull();
        expect(got).not.toHaveProperty('upstream');
        expect(got).not.toHaveProperty('model');
      });

      it('isolates stored state from the objects callers hold', async () => {
        const s = await store();
        const record = turn(TENANT_A, 'resp_copy', null);
        await s.putResponse(record);
        (record.input[0] as { content: unknown }).content = 'mutated after put';
        const first = await s.getResponse(TENANT_A, 'resp_copy');
        expect(first?.input).toEqual([userMessage('resp_copy in')]);
        first?.output.push(userMessage('mutated after get'));
        const chain = await s.expandChain(TENANT_A, 'resp_copy');
        chain?.items.pop();
        expect(await s.getResponse(TENANT_A, 'resp_copy')).toEqual(
          turn(TENANT_A, 'resp_copy', null),
        );
        expect((await s.expandChain(TENANT_A, 'resp_copy'))?.items).toHaveLength(2);
        // expanded items may be frozen and shared: writing to one never reaches stored state
        const again = await s.expandChain(TENANT_A, 'resp_copy');
        try {
          (again?.items[0] as { type: unknown }).type = 'mutated';
          (again?.records[0] as { id: unknown }).id = 'mutated';
        } catch {
          // frozen: refused, which is as good
        }
        expect((await s.expandChain(TENANT_A, 'resp_copy'))?.records).toEqual([
          turn(TENANT_A, 'resp_copy', null),
        ]);
      });

      it('answers null for an unknown id', async () => {
        const s = await store();
        expect(await s.getResponse(TENANT_A, 'resp_unknown')).toBeNull();
        expect(await s.expandChain(TENANT_A, 'resp_unknown')).toBeNull();
        expect(await s.deleteResponse(TENANT_A, 'resp_unknown')).toBe(false);
      });

      it('rejects a malformed tenant or record with invalid_argument', async () => {
        const s = await store();
        await expectStoreError(s.getResponse('not a {tenant}', 'resp_1'), 'invalid_argument');
        await expectStoreError(s.putResponse(turn('', 'resp_1', null)), 'invalid_argument');
        await expectStoreError(
          s.putResponse({ ...turn(TENANT_A, 'resp_1', null), input: 'text' as never }),
          'invalid_argument',
        );
        await expectStoreError(s.putResponse(turn(TENANT_A, '', null)), 'invalid_argument');
        await expectStoreError(
          s.putResponse(turn(TENANT_A, 'resp_1', 'resp_1')),
          'invalid_argument',
        );
        await expectStoreError(
          s.putResponse({ ...turn(TENANT_A, 'resp_1', null), createdAt: Number.NaN }),
          'invalid_argument',
        );
        expect(await s.getResponse(TENANT_A, 'resp_1')).toBeNull();
      });
    });

    describe('when another tenant asks', () => {
      it('behaves exactly as for an unknown id', async () => {
        const s = await store();
        await s.putResponse(turn(TENANT_A, 'resp_a1', null));
        await s.putResponse(turn(TENANT_A, 'resp_a2', 'resp_a1'));
        expect(await s.getResponse(TENANT_B, 'resp_a2')).toBeNull();
        expect(await s.expandChain(TENANT_B, 'resp_a2')).toBeNull();
        expect(await s.deleteResponse(TENANT_B, 'resp_a2')).toBe(false);
        expect(await s.getResponse(TENANT_A, 'resp_a2')).not.toBeNull();
      });

      it("cannot continue another tenant's response (parent_not_found)", async () => {
        const s = await store();
        await s.putResponse(turn(TENANT_A, 'resp_a1', null));
        await expectStoreError(
          s.putResponse(turn(TENANT_B, 'resp_b2', 'resp_a1')),
          'parent_not_found',
        );
      });

      it('stores the same id for two tenants independently (no conflict, no leak)', async () => {
        const s = await store();
        await s.putResponse(turn(TENANT_A, 'resp_same', null, 'from A'));
        await s.putResponse(turn(TENANT_B, 'resp_same', null, 'from B'));
        expect((await s.getResponse(TENANT_A, 'resp_same'))?.input).toEqual([
          userMessage('from A in'),
        ]);
        expect((await s.getResponse(TENANT_B, 'resp_same'))?.input).toEqual([
          userMessage('from B in'),
        ]);
        expect(await s.deleteResponse(TENANT_B, 'resp_same')).toBe(true);
        expect(await s.getResponse(TENANT_A, 'resp_same')).not.toBeNull();
      });

      it('keeps session heads apart', async () => {
        const s = await store();
        await s.setSessionHead(TENANT_A, 'session-1', 'resp_a');
        expect(await s.getSessionHead(TENANT_B, 'session-1')).toBeNull();
        await s.setSessionHead(TENANT_B, 'session-1', 'resp_b');
        expect(await s.getSessionHead(TENANT_A, 'session-1')).toBe('resp_a');
        expect(await s.getSessionHead(TENANT_B, 'session-1')).toBe('resp_b');
      });
    });

    describe('expandChain', () => {
      it('expands a 3-level chain root first with every item in order', async () => {
        const s = await store();
        const r1 = turn(TENANT_A, 'resp_1', null, 'one');
        const r2 = turn(TENANT_A, 'resp_2', 'resp_1', 'two', {
          output: [
            {
              type: 'function_call',
              id: 'fc_1',
              call_id: 'call_1',
              name: 'shell',
              arguments: '{"cmd":"ls"}',
            },
          ],
        });
        const r3 = turn(TENANT_A, 'resp_3', 'resp_2', 'three', {
          input: [{ type: 'function_call_output', call_id: 'call_1', output: 'a.txt' }],
        });
        for (const r of [r1, r2, r3]) await s.putResponse(r);
        const chain = await s.expandChain(TENANT_A, 'resp_3');
        expect(chain?.records).toEqual([r1, r2, r3]);
        expect(chain?.items).toEqual([
          ...r1.input,
          ...r1.output,
          ...r2.input,
          ...r2.output,
          ...r3.input,
          ...r3.output,
        ]);
        expect(chain?.depth).toBe(3);
        expect(chain?.bytes).toBe(bytesOf(r1) + bytesOf(r2) + bytesOf(r3));
        expect((await s.expandChain(TENANT_A, 'resp_1'))?.records).toEqual([r1]);
      });

      it('expands forks of one parent to the parent history plus their own items only', async () => {
        const s = await store();
        const root = turn(TENANT_A, 'resp_root', null, 'root');
        const mid = turn(TENANT_A, 'resp_mid', 'resp_root', 'mid');
        const left = turn(TENANT_A, 'resp_left', 'resp_mid', 'left');
        const right = turn(TENANT_A, 'resp_right', 'resp_mid', 'right');
        const early = turn(TENANT_A, 'resp_early', 'resp_root', 'early');
        await s.putResponse(root);
        await s.putResponse(mid);
        await Promise.all([s.putResponse(left), s.putResponse(right), s.putResponse(early)]);
        const ids = async (id: string): Promise<string[] | undefined> =>
          (await s.expandChain(TENANT_A, id))?.records.map((r) => r.id);
        expect(await ids('resp_left')).toEqual(['resp_root', 'resp_mid', 'resp_left']);
        expect(await ids('resp_right')).toEqual(['resp_root', 'resp_mid', 'resp_right']);
        expect(await ids('resp_early')).toEqual(['resp_root', 'resp_early']);
        expect((await s.expandChain(TENANT_A, 'resp_right'))?.items).toEqual([
          ...root.input,
          ...root.output,
          ...mid.input,
          ...mid.output,
          ...right.input,
          ...right.output,
        ]);
      });

      it('expands a chain whose ancestor is gone to null (never a truncated history)', async () => {
        const s = await store();
        await s.putResponse(turn(TENANT_A, 'resp_1', null));
        await s.putResponse(turn(TENANT_A, 'resp_2', 'resp_1'));
        await s.putResponse(turn(TENANT_A, 'resp_3', 'resp_2'));
        expect(await s.deleteResponse(TENANT_A, 'resp_2')).toBe(true);
        expect(await s.expandChain(TENANT_A, 'resp_3')).toBeNull();
        expect(await s.getResponse(TENANT_A, 'resp_3')).not.toBeNull();
        expect((await s.expandChain(TENANT_A, 'resp_1'))?.depth).toBe(1);
      });

      it('bounds a cycle (a deleted id re-created under its own descendant) by maxChainDepth', async () => {
        const s = await store({ maxChainDepth: 20 });
        await s.putResponse(turn(TENANT_A, 'resp_1', null));
        await s.putResponse(turn(TENANT_A, 'resp_2', 'resp_1'));
        await s.putResponse(turn(TENANT_A, 'resp_3', 'resp_2'));
        await s.deleteResponse(TENANT_A, 'resp_1');
        await s.putResponse(turn(TENANT_A, 'resp_1', 'resp_3'));
        const error = await expectStoreError(s.expandChain(TENANT_A, 'resp_2'), 'chain_too_deep');
        expect(error.limit).toBe(20);
      });
      it('expands every node of any forest of forks to exactly its root path (property)', async () => {
        const s = await store();
        let run = 0;
        await fc.assert(
          fc.asyncProperty(
            // node i > 0 continues node (choice % i): deep chains, wide forks and everything between
            fc.array(fc.nat(), { minLength: 1, maxLength: 25 }),
            fc.array(fc.nat(), { maxLength: 5 }),
            async (choices, resends) => {
              run += 1;
              const id = (i: number): string => `resp_p${run}_${i}`;
              const parentOf = choices.map((c, i) => (i === 0 ? null : c % i));
              const records = parentOf.map((p, i) =>
                turn(TENANT_A, id(i), p === null ? null : id(p)),
              );
              // write level by level, siblings concurrently, with some records re-sent at once
              const level = parentOf.map(() => 0);
              parentOf.forEach((p, i) => (level[i] = p === null ? 0 : (level[p] ?? 0) + 1));
              for (let l = 0; l <= Math.max(...level); l += 1) {
                const batch = records.filter((_, i) => level[i] === l);
                const again = resends
                  .map((r) => batch[r % batch.length])
                  .filter((r) => r !== undefined);
                await Promise.all([...batch, ...again].map((r) => s.putResponse(r)));
              }
              for (let i = 0; i < records.length; i += 1) {
                const path: number[] = [];
                for (let n: number | null = i; n !== null; n = parentOf[n] ?? null) path.unshift(n);
                const chain = await s.expandChain(TENANT_A, id(i));
                expect(chain?.records.map((r) => r.id)).toEqual(path.map(id));
                expect(chain?.items).toEqual(
                  path.flatMap((n) => [
                    ...(records[n]?.input ?? []),
                    ...(records[n]?.output ?? []),
                  ]),
                );
              }
            },
          ),
          { numRuns: 15 },
        );
      });
    });

    describe('idempotent writes', () => {
      it('accepts the same record twice, even with another createdAt', async () => {
        const s = await store();
        const record = turn(TENANT_A, 'resp_idem', null);
        await s.putResponse(record);
        await s.putResponse(record);
        await s.putResponse({ ...record, createdAt: record.createdAt + 5000 });
        expect(await s.getResponse(TENANT_A, 'resp_idem')).toEqual(record);
        expect((await s.expandChain(TENANT_A, 'resp_idem'))?.depth).toBe(1);
      });

      it('answers conflict for the same id with different content, and keeps the first', async () => {
        const s = await store();
        const record = turn(TENANT_A, 'resp_c', null, 'first');
        await s.putResponse(record);
        const error = await expectStoreError(
          s.putResponse(turn(TENANT_A, 'resp_c', null, 'second')),
          'conflict',
        );
        expect(error.responseId).toBe('resp_c');
        expect(error.retryable).toBe(false);
        await s.putResponse(turn(TENANT_A, 'resp_p', null));
        await expectStoreError(
          s.putResponse(turn(TENANT_A, 'resp_c', 'resp_p', 'first')),
          'conflict',
        );
        expect(await s.getResponse(TENANT_A, 'resp_c')).toEqual(record);
      });

      it('lets exactly one of several concurrent different writes of one id win', async () => {
        const s = await store();
        const same = turn(TENANT_A, 'resp_same', null);
        await Promise.all([1, 2, 3, 4].map(() => s.putResponse(same)));
        const results = await Promise.allSettled(
          [1, 2, 3, 4, 5].map((n) => s.putResponse(turn(TENANT_A, 'resp_race', null, `w${n}`))),
        );
        const won = results.filter((r) => r.status === 'fulfilled');
        expect(won).toHaveLength(1);
        for (const r of results) {
          if (r.status === 'rejected')
            expect((r.reason as SessionStoreError).code).toBe('conflict');
        }
      });

      it('refuses a child whose parent is unknown, storing nothing', async () => {
        const s = await store();
        const error = await expectStoreError(
          s.putResponse(turn(TENANT_A, 'resp_orphan', 'resp_missing')),
          'parent_not_found',
        );
        expect(error.responseId).toBe('resp_orphan');
        expect(await s.getResponse(TENANT_A, 'resp_orphan')).toBeNull();
      });
    });

    describe('caps', () => {
      const big = (
        tenant: string,
        id: string,
        parentId: string | null,
        size: number,
      ): StoredResponse =>
        turn(tenant, id, parentId, id, { input: [userMessage('x'.repeat(size))] });

      it('refuses a record over maxResponseBytes with response_too_large', async () => {
        const s = await store({ maxResponseBytes: 2000 });
        await s.putResponse(big(TENANT_A, 'resp_ok', null, 1000));
        const error = await expectStoreError(
          s.putResponse(big(TENANT_A, 'resp_big', null, 3000)),
          'response_too_large',
        );
        expect(error.limit).toBe(2000);
        expect(error.actual).toBeGreaterThan(2000);
        expect(await s.getResponse(TENANT_A, 'resp_big')).toBeNull();
      });

      it('refuses a chain over maxChainDepth with chain_too_deep', async () => {
        const s = await store({ maxChainDepth: 3 });
        await s.putResponse(turn(TENANT_A, 'resp_1', null));
        await s.putResponse(turn(TENANT_A, 'resp_2', 'resp_1'));
        await s.putResponse(turn(TENANT_A, 'resp_3', 'resp_2'));
        const error = await expectStoreError(
          s.putResponse(turn(TENANT_A, 'resp_4', 'resp_3')),
          'chain_too_deep',
        );
        expect(error).toMatchObject({ limit: 3, actual: 4 });
        expect(await s.getResponse(TENANT_A, 'resp_4')).toBeNull();
        expect((await s.expandChain(TENANT_A, 'resp_3'))?.depth).toBe(3);
        await s.putResponse(turn(TENANT_A, 'resp_2b', 'resp_1'));
      });

      it('refuses a chain over maxChainBytes with chain_too_large; other branches stay usable', async () => {
        const r1 = big(TENANT_A, 'resp_1', null, 1000);
        const r2 = big(TENANT_A, 'resp_2', 'resp_1', 1000);
        const small = turn(TENANT_A, 'resp_small', 'resp_2');
        // exactly room for r1 + r2 + small: the limit is inclusive
        const limit = bytesOf(r1) + bytesOf(r2) + bytesOf(small);
        const s = await store({ maxChainBytes: limit });
        await s.putResponse(r1);
        await s.putResponse(r2);
        const error = await expectStoreError(
          s.putResponse(big(TENANT_A, 'resp_3', 'resp_2', 1000)),
          'chain_too_large',
        );
        expect(error.limit).toBe(limit);
        expect(error.actual).toBeGreaterThan(limit);
        expect(await s.getResponse(TENANT_A, 'resp_3')).toBeNull();
        await s.putResponse(small);
        expect((await s.expandChain(TENANT_A, 'resp_small'))?.bytes).toBe(limit);
        await expectStoreError(
          s.putResponse(turn(TENANT_A, 'resp_x', 'resp_small')),
          'chain_too_large',
        );
      });

      it('refuses entries past maxEntriesPerTenant with tenant_quota_exceeded, per tenant', async () => {
        const s = await store({ maxEntriesPerTenant: 3 });
        await s.putResponse(turn(TENANT_A, 'resp_1', null));
        await s.putResponse(turn(TENANT_A, 'resp_2', 'resp_1'));
        await s.setSessionHead(TENANT_A, 'session', 'resp_2');
        const error = await expectStoreError(
          s.putResponse(turn(TENANT_A, 'resp_3', 'resp_2')),
          'tenant_quota_exceeded',
        );
        expect(error).toMatchObject({ limit: 3, actual: 3 });
        await expectStoreError(
          s.setSessionHead(TENANT_A, 'other', 'resp_1'),
          'tenant_quota_exceeded',
        );
        // re-sending an existing record or moving an existing head adds nothing
        await s.putResponse(turn(TENANT_A, 'resp_2', 'resp_1'));
        await s.setSessionHead(TENANT_A, 'session', 'resp_1');
        await s.putResponse(turn(TENANT_B, 'resp_1', null));
        expect(await s.deleteResponse(TENANT_A, 'resp_2')).toBe(true);
        await s.putResponse(turn(TENANT_A, 'resp_3', 'resp_1'));
      });
    });

    describe('TTL', () => {
      it('expires records and session heads after ttlSeconds, freeing their quota', async () => {
        const h = await harness({ ttlSeconds: 1, maxEntriesPerTenant: 2 });
        await h.store.putResponse(turn(TENANT_A, 'resp_1', null));
        await h.store.setSessionHead(TENANT_A, 'session', 'resp_1');
        await expectStoreError(
          h.store.putResponse(turn(TENANT_A, 'resp_x', null)),
          'tenant_quota_exceeded',
        );
        await h.elapse(1200);
        expect(await h.store.getResponse(TENANT_A, 'resp_1')).toBeNull();
        expect(await h.store.expandChain(TENANT_A, 'resp_1')).toBeNull();
        expect(await h.store.getSessionHead(TENANT_A, 'session')).toBeNull();
        expect(await h.store.deleteResponse(TENANT_A, 'resp_1')).toBe(false);
        await expectStoreError(
          h.store.putResponse(turn(TENANT_A, 'resp_2', 'resp_1')),
          'parent_not_found',
        );
        await h.store.putResponse(turn(TENANT_A, 'resp_3', null));
        await h.store.putResponse(turn(TENANT_A, 'resp_4', null));
      });

      it('refreshes the whole chain on expandChain and the parent on putResponse', async () => {
        // steps of 0.6 TTL: every check has 0.4 TTL (600 ms) of slack against a slow machine
        const ttlMs = 1500;
        const step = 0.6 * ttlMs;
        const h = await harness({ ttlSeconds: ttlMs / 1000 });
        await h.store.putResponse(turn(TENANT_A, 'resp_1', null));
        await h.store.putResponse(turn(TENANT_A, 'resp_2', 'resp_1'));
        await h.elapse(step);
        expect((await h.store.expandChain(TENANT_A, 'resp_2'))?.depth).toBe(2);
        await h.elapse(step);
        // 1.2 TTL after writing: alive only because expandChain refreshed both records
        expect((await h.store.expandChain(TENANT_A, 'resp_2'))?.depth).toBe(2);
        await h.elapse(step);
        await h.store.putResponse(turn(TENANT_A, 'resp_3', 'resp_2'));
        await h.elapse(step);
        // resp_2 was refreshed by its child's put; resp_1 (last refreshed 1.2 TTL ago) is gone
        expect(await h.store.getResponse(TENANT_A, 'resp_2')).not.toBeNull();
        expect(await h.store.getResponse(TENANT_A, 'resp_1')).toBeNull();
        expect(await h.store.expandChain(TENANT_A, 'resp_3')).toBeNull();
      });
    });

    describe('TTL and the tenant quota', () => {
      it('counts a record kept alive by expansions, and not one that expired', async () => {
        const ttlMs = 1500;
        const h = await harness({ ttlSeconds: ttlMs / 1000, maxEntriesPerTenant: 2 });
        await h.store.putResponse(turn(TENANT_A, 'resp_1', null));
        await h.elapse(0.6 * ttlMs);
        expect((await h.store.expandChain(TENANT_A, 'resp_1'))?.depth).toBe(1);
        await h.elapse(0.6 * ttlMs);
        // 1.2 TTL after its write, resp_1 lives (refreshed) and still counts
        await h.store.putResponse(turn(TENANT_A, 'resp_2', null));
        await expectStoreError(
          h.store.putResponse(turn(TENANT_A, 'resp_3', null)),
          'tenant_quota_exceeded',
        );
        await expectStoreError(
          h.store.setSessionHead(TENANT_A, 's', 'resp_2'),
          'tenant_quota_exceeded',
        );
        await h.elapse(1.2 * ttlMs);
        // both expired: the quota is free again
        await h.store.putResponse(turn(TENANT_A, 'resp_3', null));
        await h.store.setSessionHead(TENANT_A, 's', 'resp_3');
      });

      it('frees a refused tenant as soon as its oldest entry expires, however often it was refused', async () => {
        const ttlMs = 1500;
        const h = await harness({ ttlSeconds: ttlMs / 1000, maxEntriesPerTenant: 2 });
        await h.store.putResponse(turn(TENANT_A, 'resp_old', null));
        await h.elapse(0.5 * ttlMs);
        await h.store.putResponse(turn(TENANT_A, 'resp_new', null));
        for (let attempt = 0; attempt < 3; attempt += 1) {
          await expectStoreError(
            h.store.putResponse(turn(TENANT_A, `resp_refused_${attempt}`, null)),
            'tenant_quota_exceeded',
          );
        }
        await h.elapse(0.3 * ttlMs);
        await expectStoreError(
          h.store.putResponse(turn(TENANT_A, 'resp_early', null)),
          'tenant_quota_exceeded',
        );
        // 1.1 TTL after its write the oldest is gone; the newer (0.6 TTL old) still counts
        await h.elapse(0.3 * ttlMs);
        await h.store.putResponse(turn(TENANT_A, 'resp_after', null));
        expect(await h.store.getResponse(TENANT_A, 'resp_new')).not.toBeNull();
        await expectStoreError(
          h.store.putResponse(turn(TENANT_A, 'resp_over', null)),
          'tenant_quota_exceeded',
        );
      });
    });

    describe('deleteResponse', () => {
      it('deletes once, and leaves other records alone', async () => {
        const s = await store();
        await s.putResponse(turn(TENANT_A, 'resp_1', null));
        await s.putResponse(turn(TENANT_A, 'resp_2', 'resp_1'));
        expect(await s.deleteResponse(TENANT_A, 'resp_2')).toBe(true);
        expect(await s.deleteResponse(TENANT_A, 'resp_2')).toBe(false);
        expect(await s.getResponse(TENANT_A, 'resp_2')).toBeNull();
        expect(await s.getResponse(TENANT_A, 'resp_1')).not.toBeNull();
        // the id may be stored again afterwards, with any content
        await s.putResponse(turn(TENANT_A, 'resp_2', null, 'new'));
        expect((await s.expandChain(TENANT_A, 'resp_2'))?.depth).toBe(1);
      });
    });

    describe('session heads', () => {
      it('sets, moves and reads the latest response id per session key', async () => {
        const s = await store();
        expect(await s.getSessionHead(TENANT_A, 'ws:conn-1')).toBeNull();
        await s.setSessionHead(TENANT_A, 'ws:conn-1', 'resp_1');
        await s.setSessionHead(TENANT_A, 'ws:conn-2', 'resp_9');
        await s.setSessionHead(TENANT_A, 'ws:conn-1', 'resp_2');
        await s.setSessionHead(TENANT_A, 'ws:conn-1', 'resp_2');
        expect(await s.getSessionHead(TENANT_A, 'ws:conn-1')).toBe('resp_2');
        expect(await s.getSessionHead(TENANT_A, 'ws:conn-2')).toBe('resp_9');
        await expectStoreError(s.setSessionHead(TENANT_A, 'k', ''), 'invalid_argument');
      });
    });

    describe('expandSessionHead (optional)', () => {
      it('answers the head and its chain as getSessionHead + expandChain would', async () => {
        const s = await store();
        if (s.expandSessionHead === undefined) return;
        expect(await s.expandSessionHead(TENANT_A, 'sess')).toBeNull();
        await s.putResponse(turn(TENANT_A, 'resp_1', null));
        await s.putResponse(turn(TENANT_A, 'resp_2', 'resp_1'));
        await s.putResponse(turn(TENANT_A, 'resp_3', 'resp_2'));
        await s.setSessionHead(TENANT_A, 'sess', 'resp_3');
        const found = await s.expandSessionHead(TENANT_A, 'sess');
        expect(found).toEqual({ head: 'resp_3', chain: await s.expandChain(TENANT_A, 'resp_3') });
        expect(found?.chain?.depth).toBe(3);
        // another tenant's session is no session; an unknown or broken head has no chain
        expect(await s.expandSessionHead(TENANT_B, 'sess')).toBeNull();
        await s.setSessionHead(TENANT_A, 'other', 'resp_unknown');
        expect(await s.expandSessionHead(TENANT_A, 'other')).toEqual({
          head: 'resp_unknown',
          chain: null,
        });
        await s.deleteResponse(TENANT_A, 'resp_2');
        expect(await s.expandSessionHead(TENANT_A, 'sess')).toEqual({
          head: 'resp_3',
          chain: null,
        });
      });

      it('works with odd session keys and ids, and bounds a cycle', async () => {
        const s = await store({ maxChainDepth: 20 });
        if (s.expandSessionHead === undefined) return;
        const ids = ['{evil}', 'a:b}*', '🎉 ünï', 'x{:*} '.repeat(100)];
        for (const [i, id] of ids.entries()) {
          await s.putResponse(turn(TENANT_A, id, i === 0 ? null : (ids[i - 1] as string)));
        }
        const key = '}{:* session '.repeat(30);
        await s.setSessionHead(TENANT_A, key, ids[2] as string);
        const found = await s.expandSessionHead(TENANT_A, key);
        expect(found?.head).toBe(ids[2]);
        expect(found?.chain?.records.map((r) => r.id)).toEqual(ids.slice(0, 3));
        // the root deleted and re-created under its own descendant: a cycle, cut by the cap
        await s.deleteResponse(TENANT_A, ids[0] as string);
        await s.putResponse(turn(TENANT_A, ids[0] as string, ids[3] as string));
        const error = await expectStoreError(s.expandSessionHead(TENANT_A, key), 'chain_too_deep');
        expect(error.limit).toBe(20);
      });
    });

    describe('putSessionResponse (optional)', () => {
      it('stores the record and moves the session head in one step', async () => {
        const s = await store();
        if (s.putSessionResponse === undefined) return;
        const r1 = turn(TENANT_A, 'resp_1', null);
        const r2 = turn(TENANT_A, 'resp_2', 'resp_1');
        await s.putSessionResponse(r1, 'sess');
        expect(await s.getSessionHead(TENANT_A, 'sess')).toBe('resp_1');
        await s.putSessionResponse(r2, 'sess');
        expect(await s.getSessionHead(TENANT_A, 'sess')).toBe('resp_2');
        expect((await s.expandChain(TENANT_A, 'resp_2'))?.records).toEqual([r1, r2]);
        // the same record again is a success and points the head at it again
        await s.putSessionResponse({ ...r1, createdAt: r1.createdAt + 5 }, 'sess');
        expect(await s.getSessionHead(TENANT_A, 'sess')).toBe('resp_1');
        expect(await s.getResponse(TENANT_A, 'resp_1')).toEqual(r1);
        expect(await s.getSessionHead(TENANT_B, 'sess')).toBeNull();
      });

      it('moves nothing when the record is refused', async () => {
        const s = await store();
        if (s.putSessionResponse === undefined) return;
        await s.putSessionResponse(turn(TENANT_A, 'resp_1', null), 'sess');
        await expectStoreError(
          s.putSessionResponse(turn(TENANT_A, 'resp_2', 'resp_unknown'), 'sess'),
          'parent_not_found',
        );
        await expectStoreError(
          s.putSessionResponse(turn(TENANT_A, 'resp_1', null, 'different'), 'sess2'),
          'conflict',
        );
        await expectStoreError(
          s.putSessionResponse(turn(TENANT_B, 'resp_3', 'resp_1'), 'sess'),
          'parent_not_found',
        );
        expect(await s.getSessionHead(TENANT_A, 'sess')).toBe('resp_1');
        expect(await s.getSessionHead(TENANT_A, 'sess2')).toBeNull();
        expect(await s.getSessionHead(TENANT_B, 'sess')).toBeNull();
        expect(await s.getResponse(TENANT_A, 'resp_2')).toBeNull();
      });

      it('counts a new head against the tenant quota: both entries or neither', async () => {
        const s = await store({ maxEntriesPerTenant: 2 });
        if (s.putSessionResponse === undefined) return;
        await s.putResponse(turn(TENANT_A, 'resp_1', null));
        const error = await expectStoreError(
          s.putSessionResponse(turn(TENANT_A, 'resp_2', 'resp_1'), 'sess'),
          'tenant_quota_exceeded',
        );
        expect(error.limit).toBe(2);
        expect(await s.getResponse(TENANT_A, 'resp_2')).toBeNull();
        expect(await s.getSessionHead(TENANT_A, 'sess')).toBeNull();
        // an existing record needs room for the head alone
        await s.putSessionResponse(turn(TENANT_A, 'resp_1', null), 'sess');
        expect(await s.getSessionHead(TENANT_A, 'sess')).toBe('resp_1');
        // a head that exists already is moved without a new entry
        await expectStoreError(
          s.putResponse(turn(TENANT_A, 'resp_2', 'resp_1')),
          'tenant_quota_exceeded',
        );
        await s.deleteResponse(TENANT_A, 'resp_1');
        await s.putSessionResponse(turn(TENANT_A, 'resp_9', null), 'sess');
        expect(await s.getSessionHead(TENANT_A, 'sess')).toBe('resp_9');
      });
    });

    describe('when ids contain odd characters', () => {
      const odd = [
        '{evil}',
        'a:b}*',
        'with space',
        '}{',
        '*',
        'line\nbreak',
        '~tilde',
        '🎉 ünï',
        '..',
      ];
      const long = 'x{:*} '.repeat(1700); // 10.2 KB

      it('stores and expands them exactly, inside the tenant namespace only', async () => {
        const h = await harness();
        const s = h.store;
        let parent: string | null = null;
        for (const id of odd) {
          await s.putResponse(turn(TENANT_A, id, parent, `m${odd.indexOf(id)}`));
          parent = id;
        }
        const chain = await s.expandChain(TENANT_A, odd[odd.length - 1] as string);
        expect(chain?.records.map((r) => r.id)).toEqual(odd);
        for (const id of odd) expect((await s.getResponse(TENANT_A, id))?.id).toBe(id);
        await s.setSessionHead(TENANT_A, '}{:* session', '{evil}');
        await s.setSessionHead(TENANT_A, long, 'a:b}*');
        expect(await s.getSessionHead(TENANT_A, '}{:* session')).toBe('{evil}');
        expect(await s.getSessionHead(TENANT_A, long)).toBe('a:b}*');
        expect(await s.getSessionHead(TENANT_A, `${long}x`)).toBeNull();

        expect(await s.getResponse(TENANT_A, long)).toBeNull();
        expect(await s.expandChain(TENANT_A, long)).toBeNull();
        expect(await s.deleteResponse(TENANT_A, long)).toBe(false);
        await expectStoreError(s.putResponse(turn(TENANT_A, long, null)), 'invalid_argument');
        await expectStoreError(s.setSessionHead(TENANT_A, 's', long), 'invalid_argument');
        // an id that looks like another tenant's namespace is just an id
        expect(await s.getResponse(TENANT_A, `}:{${TENANT_B}}:r:x`)).toBeNull();

        if (h.listKeys && h.tenantKeyPrefix) {
          const keys = await h.listKeys();
          const prefix = h.tenantKeyPrefix(TENANT_A);
          // one key per record, two session heads, the tenant index
          expect(keys).toHaveLength(odd.length + 3);
          for (const key of keys) {
            expect(key.startsWith(prefix)).toBe(true);
            expect(key.length).toBeLessThan(prefix.length + 64);
          }
        }
      });
    });

    describe('close', () => {
      it('makes later operations fail with store_unavailable', async () => {
        const s = await store();
        await s.close();
        await expectStoreError(s.getResponse(TENANT_A, 'resp_1'), 'store_unavailable');
        await expectStoreError(s.putResponse(turn(TENANT_A, 'resp_1', null)), 'store_unavailable');
        await s.close();
      });
    });
  });
}
