/**
 * MemorySessionStore: the embedded default. One process, bounded (TTL, entries, bytes, LRU), no
 * timers, and the same stored form, caps and errors as RedisSessionStore.
 */
import { LRUCache } from 'lru-cache';
import {
  assertLookupId,
  assertTenant,
  assertWriteId,
  chainOf,
  decodeFrozenRecord,
  encodeRecord,
  readRecord,
  shownId,
} from './codec';
import {
  positiveInteger,
  resolveLimits,
  type SessionStoreLimitOptions,
  type StoreLimits,
} from './limits';
import {
  SessionStoreError,
  type ExpandedChain,
  type SessionHeadChain,
  type SessionStore,
  type StoredResponse,
} from './session-store';

export interface MemorySessionStoreOptions extends SessionStoreLimitOptions {
  /**
   * Entries held for all tenants together; past it the least recently used entry is evicted (a
   * chain that lost an ancestor then expands to null, like an expired one).
   * @default 100000
   */
  maxEntries?: number;
  /**
   * Bytes held for all tenants together (serialized sizes plus a fixed per-entry overhead); past it
   * the least recently used entries are evicted. Must leave room for one `maxResponseBytes` record.
   * Records are kept parsed, which takes about 2 to 3 times their serialized size in memory.
   * @default 134217728 (128 MiB)
   */
  maxBytes?: number;
  /**
   * The clock for TTLs, in ms (tests inject a fake one). Must not return 0.
   * @default performance.now
   */
  now?: () => number;
}

export const DEFAULT_MEMORY_MAX_ENTRIES = 100_000;
export const DEFAULT_MEMORY_MAX_BYTES = 128 * 1024 * 1024;
/** Size charged per entry on top of its serialized bytes (keys, bookkeeping). */
const ENTRY_OVERHEAD_BYTES = 128;

interface RecordEntry {
  kind: 'r';
  tenant: string;
  parentKey: string | null;
  /**
   * The record as stored: its JSON until the first read, then parsed from it and deeply frozen,
   * shared by every read (most records of a stateful relay are never read: they only prove
   * ownership, so they are never parsed).
   */
  stored: string | StoredResponse;
  bytes: number;
  depth: number;
  chainBytes: number;
}

interface HeadEntry {
  kind: 's';
  tenant: string;
  responseId: string;
}

type Entry = RecordEntry | HeadEntry;

const OWNER = 'MemorySessionStore';

/** The entry's record, parsed and frozen on first use. */
function recordOf(entry: RecordEntry): StoredResponse {
  if (typeof entry.stored === 'string')
    entry.stored = decodeFrozenRecord(entry.tenant, entry.stored);
  return entry.stored;
}

/** The entry's content as `encodeRecord` gives it (to tell a re-sent record from a conflict). */
function storedContent(entry: RecordEntry): string {
  return encodeRecord(recordOf(entry), Number.MAX_SAFE_INTEGER).content;
}

/** Tenants cannot contain NUL, so `tenant NUL kind NUL id` keys never collide across tenants. */
function recordKey(tenant: string, id: string): string {
  return `${tenant}\0r\0${id}`;
}

function headKey(tenant: string, sessionKey: string): string {
  return `${tenant}\0s\0${sessionKey}`;
}

/**
 * A SessionStore in process memory, for a single gateway instance (several instances need
 * RedisSessionStore). Stores each record's JSON, parsed back and deeply frozen on its first read,
 * so nothing a caller holds can change stored state; reads return fresh arrays over the frozen
 * items (an expansion parses and copies nothing). Expired entries are dropped lazily (no timers).
 */
export class MemorySessionStore implements SessionStore {
  readonly limits: StoreLimits;
  private readonly cache: LRUCache<string, Entry>;
  /** Live keys per tenant, for the per-tenant cap. Kept exact through the cache's dispose hook. */
  private readonly tenantKeys = new Map<string, Set<string>>();
  /**
   * Per tenant at its cap: the clock before which none of its entries can expire (found by the
   * last scan for expired ones), so a write refused at the cap does not scan every key again.
   */
  private readonly noExpiryBefore = new Map<string, number>();
  private readonly now: () => number;
  private closed = false;

  constructor(options: MemorySessionStoreOptions = {}) {
    const maxEntries = positiveInteger(
      OWNER,
      'maxEntries',
      options.maxEntries,
      DEFAULT_MEMORY_MAX_ENTRIES,
    );
    const maxBytes = positiveInteger(OWNER, 'maxBytes', options.maxBytes, DEFAULT_MEMORY_MAX_BYTES);
    const room = maxBytes - ENTRY_OVERHEAD_BYTES;
    if (room < 1)
      throw new TypeError(`${OWNER} options.maxBytes must be over ${ENTRY_OVERHEAD_BYTES}`);
    if (options.maxResponseBytes !== undefined && options.maxResponseBytes > room) {
      throw new TypeError(
        `${OWNER} options.maxResponseBytes (${options.maxResponseBytes}) must leave room within options.maxBytes (${maxBytes})`,
      );
    }
    const limits = resolveLimits(OWNER, options);
    this.limits =
      limits.maxResponseBytes > room
        ? Object.freeze({ ...limits, maxResponseBytes: room })
        : limits;
    if (options.now !== undefined && typeof options.now !== 'function') {
      throw new TypeError(`${OWNER} options.now must be a function returning ms`);
    }
    this.now = options.now ?? (() => performance.now());
    this.cache = new LRUCache<string, Entry>({
      max: maxEntries,
      maxSize: maxBytes,
      sizeCalculation: (entry) =>
        ENTRY_OVERHEAD_BYTES + (entry.kind === 'r' ? entry.bytes : entry.responseId.length),
      ttl: this.limits.ttlMs,
      // no purge timers, and no timer caching the clock: nothing keeps the process alive
      ttlAutopurge: false,
      ttlResolution: 0,
      allowStale: false,
      updateAgeOnGet: false,
      ...(options.now ? { perf: { now: options.now } } : {}),
      dispose: (entry, key, reason) => {
        // 'set' replaces the value of a key that stays present
        if (reason !== 'set') this.forget(entry.tenant, key);
      },
    });
  }

  async putResponse(record: StoredResponse): Promise<void> {
    this.put(record, undefined);
  }

  async putSessionResponse(record: StoredResponse, sessionKey: string): Promise<void> {
    assertLookupId('sessionKey', sessionKey);
    this.put(record, sessionKey);
  }

  private put(record: StoredResponse, sessionKey: string | undefined): void {
    this.assertOpen();
    const encoded = encodeRecord(record, this.limits.maxResponseBytes);
    const { tenant, id, parentId } = encoded;
    const key = recordKey(tenant, id);
    const head = sessionKey === undefined ? undefined : headKey(tenant, sessionKey);
    const newHead = head !== undefined && !this.cache.has(head) ? 1 : 0;
    const existing = this.cache.get(key);
    if (existing?.kind === 'r') {
      // Rare (a re-sent write): the stored record is encoded again and compared, so a normal
      // write computes no digest at all.
      if (storedContent(existing) !== encoded.content) {
        throw new SessionStoreError(
          'conflict',
          `response ${shownId(id)} is already stored with different content`,
          {
            responseId: id,
          },
        );
      }
      if (newHead > 0) this.reserveEntries(tenant, newHead);
      this.touch(key);
      if (head !== undefined) this.setHead(tenant, head, id);
      return;
    }
    let depth = 1;
    let chainBytes = encoded.bytes;
    let parentKey: string | null = null;
    if (parentId !== null) {
      parentKey = recordKey(tenant, parentId);
      const parent = this.cache.get(parentKey);
      if (parent?.kind !== 'r') {
        throw new SessionStoreError(
          'parent_not_found',
          `parent response ${shownId(parentId)} of ${shownId(id)} is not stored for this tenant`,
          { responseId: id },
        );
      }
      depth = parent.depth + 1;
      chainBytes = parent.chainBytes + encoded.bytes;
    }
    if (depth > this.limits.maxChainDepth) throw this.tooDeep(id, depth);
    if (chainBytes > this.limits.maxChainBytes) throw this.tooLarge(id, chainBytes);
    this.reserveEntries(tenant, 1 + newHead);
    this.cache.set(key, {
      kind: 'r',
      tenant,
      parentKey,
      stored: encoded.json,
      bytes: encoded.bytes,
      depth,
      chainBytes,
    });
    this.remember(tenant, key);
    if (parentKey !== null) this.touch(parentKey);
    if (head !== undefined) this.setHead(tenant, head, id);
  }

  async getResponse(tenant: string, id: string): Promise<StoredResponse | null> {
    this.assertOpen();
    assertTenant(tenant);
    assertLookupId('id', id);
    const entry = this.cache.get(recordKey(tenant, id));
    return entry?.kind === 'r' ? readRecord(recordOf(entry)) : null;
  }

  async expandChain(tenant: string, id: string): Promise<ExpandedChain | null> {
    this.assertOpen();
    assertTenant(tenant);
    assertLookupId('id', id);
    const leafKey = recordKey(tenant, id);
    const leaf = this.cache.peek(leafKey);
    if (leaf?.kind !== 'r') return null;
    if (leaf.depth > this.limits.maxChainDepth) throw this.tooDeep(id, leaf.depth);
    if (leaf.chainBytes > this.limits.maxChainBytes) throw this.tooLarge(id, leaf.chainBytes);
    const keys: string[] = [];
    const records: StoredResponse[] = [];
    let total = 0;
    let key: string | null = leafKey;
    let entry: Entry | undefined = leaf;
    while (key !== null) {
      if (entry?.kind !== 'r') return null; // an ancestor expired or was deleted
      if (keys.length >= this.limits.maxChainDepth) throw this.tooDeep(id, keys.length + 1);
      total += entry.bytes;
      if (total > this.limits.maxChainBytes) throw this.tooLarge(id, total);
      keys.push(key);
      records.push(recordOf(entry));
      key = entry.parentKey;
      entry = key === null ? undefined : this.cache.peek(key);
    }
    for (const k of keys) this.touch(k);
    return chainOf(records.reverse(), total);
  }

  async expandSessionHead(tenant: string, sessionKey: string): Promise<SessionHeadChain | null> {
    const head = await this.getSessionHead(tenant, sessionKey);
    if (head === null) return null;
    return { head, chain: await this.expandChain(tenant, head) };
  }

  async deleteResponse(tenant: string, id: string): Promise<boolean> {
    this.assertOpen();
    assertTenant(tenant);
    assertLookupId('id', id);
    const key = recordKey(tenant, id);
    if (!this.cache.has(key)) return false;
    return this.cache.delete(key);
  }

  async setSessionHead(tenant: string, sessionKey: string, responseId: string): Promise<void> {
    this.assertOpen();
    assertTenant(tenant);
    assertLookupId('sessionKey', sessionKey);
    assertWriteId('responseId', responseId);
    const key = headKey(tenant, sessionKey);
    if (!this.cache.has(key)) this.reserveEntries(tenant, 1);
    this.setHead(tenant, key, responseId);
  }

  async getSessionHead(tenant: string, sessionKey: string): Promise<string | null> {
    this.assertOpen();
    assertTenant(tenant);
    assertLookupId('sessionKey', sessionKey);
    const entry = this.cache.get(headKey(tenant, sessionKey));
    return entry?.kind === 's' ? entry.responseId : null;
  }

  async close(): Promise<void> {
    this.closed = true;
    this.cache.clear();
    this.tenantKeys.clear();
    this.noExpiryBefore.clear();
  }

  /** Live entries held by the store (all tenants), expired ones included until they are touched. */
  get size(): number {
    return this.cache.size;
  }

  private assertOpen(): void {
    if (this.closed)
      throw new SessionStoreError('store_unavailable', 'the session store is closed');
  }

  /** Restarts an entry's TTL (and marks it recently used). */
  private touch(key: string): void {
    this.cache.get(key, { updateAgeOnGet: true });
  }

  private setHead(tenant: string, key: string, responseId: string): void {
    this.cache.set(key, { kind: 's', tenant, responseId });
    this.remember(tenant, key);
  }

  /** Throws `tenant_quota_exceeded` unless the tenant may add `count` entries. */
  private reserveEntries(tenant: string, count: number): void {
    const keys = this.tenantKeys.get(tenant);
    if (keys === undefined || keys.size + count <= this.limits.maxEntriesPerTenant) return;
    // Expired entries linger until touched: drop the tenant's stale ones before refusing. TTLs
    // only ever grow, so after a scan nothing can expire before its smallest remaining TTL.
    const now = this.now();
    if (now >= (this.noExpiryBefore.get(tenant) ?? -Infinity)) {
      let soonest = Infinity;
      for (const key of [...keys]) {
        const left = this.cache.getRemainingTTL(key);
        if (left <= 0) this.cache.delete(key);
        else soonest = Math.min(soonest, left);
      }
      this.noExpiryBefore.set(tenant, now + soonest);
    }
    if (keys.size + count > this.limits.maxEntriesPerTenant) {
      throw new SessionStoreError(
        'tenant_quota_exceeded',
        `the tenant already holds ${keys.size} entries, the store's limit is ${this.limits.maxEntriesPerTenant}`,
        { limit: this.limits.maxEntriesPerTenant, actual: keys.size },
      );
    }
  }

  private remember(tenant: string, key: string): void {
    // A set can evict other entries but never the one just written (it is the most recent).
    if (!this.cache.has(key)) return;
    let keys = this.tenantKeys.get(tenant);
    if (keys === undefined) {
      keys = new Set();
      this.tenantKeys.set(tenant, keys);
    }
    keys.add(key);
  }

  private forget(tenant: string, key: string): void {
    const keys = this.tenantKeys.get(tenant);
    if (keys === undefined) return;
    keys.delete(key);
    if (keys.size === 0) {
      this.tenantKeys.delete(tenant);
      this.noExpiryBefore.delete(tenant);
    }
  }

  private tooDeep(id: string, depth: number): SessionStoreError {
    return new SessionStoreError(
      'chain_too_deep',
      `the chain of ${shownId(id)} has ${depth} responses, over the store's limit of ${this.limits.maxChainDepth}`,
      { responseId: id, limit: this.limits.maxChainDepth, actual: depth },
    );
  }

  private tooLarge(id: string, bytes: number): SessionStoreError {
    return new SessionStoreError(
      'chain_too_large',
      `the chain of ${shownId(id)} is ${bytes} bytes, over the store's limit of ${this.limits.maxChainBytes}`,
      { responseId: id, limit: this.limits.maxChainBytes, actual: bytes },
    );
  }
}
