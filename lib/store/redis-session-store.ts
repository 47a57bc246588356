/**
 * RedisSessionStore: session state shared by every gateway instance through Redis or Redis Cluster,
 * on an ioredis client the user built. One round trip per operation, atomic idempotent scripts,
 * tenant-tagged keys, and a deadline on everything.
 */
import type { Cluster, Redis } from 'ioredis';
import { ChainCache, type ChainNode, type WalkStamp } from './chain-cache';
import {
  assembleChain,
  assertLookupId,
  assertTenant,
  assertWriteId,
  chainOf,
  contentHash,
  decodeFrozenRecord,
  decodeRecord,
  encodeRecord,
  shownId,
} from './codec';
import { backendError, withDeadline } from './deadline';
import { KeyLayout, keySegment, validateKeyPrefix } from './keys';
import {
  DEFAULT_OPERATION_TIMEOUT_MS,
  positiveInteger,
  resolveLimits,
  type SessionStoreLimitOptions,
  type StoreLimits,
} from './limits';
import { SCRIPTS, type ScriptName } from './redis-scripts';
import {
  SessionStoreError,
  type ExpandedChain,
  type SessionHeadChain,
  type SessionStore,
  type StoredResponse,
} from './session-store';

/** An ioredis client: a standalone/Sentinel `Redis` or a `Cluster`, in either reply mapping. */
export type RedisSessionStoreClient = Redis | Redis<'resp3'> | Cluster | Cluster<'resp3'>;

export interface RedisSessionStoreOptions extends SessionStoreLimitOptions {
  /**
   * The client to use, built and owned by you (`new Redis(url)` or `new Cluster(nodes)`). The store
   * registers its scripts on it (`defineCommand`, names starting with `responsesRelay`) and never
   * quits it unless `closeClient` is true.
   *
   * Recommended for relay use: `maxRetriesPerRequest: 1` (or 2) and `commandTimeout` close to
   * `operationTimeoutMs`, so commands that outlived the store's deadline do not pile up in the
   * offline queue during an outage. The store bounds every operation itself either way.
   * @example
   * new RedisSessionStore({ redis: new Redis(process.env.REDIS_URL!, { maxRetriesPerRequest: 1 }) })
   */
  redis: RedisSessionStoreClient;
  /**
   * First part of every key (`<keyPrefix>:{<tenant>}:…`). No braces or whitespace.
   * @default 'relay'
   */
  keyPrefix?: string;
  /**
   * Deadline for each operation. Past it the operation rejects with `store_timeout` (the
   * connection is up but Redis did not answer) or `store_unavailable` (the client is not
   * connected), whatever the client's own retry settings.
   * @default 1000
   */
  operationTimeoutMs?: number;
  /**
   * Reject at once with `store_unavailable` while the client is not connected (status other than
   * `ready`, `wait`), instead of letting the operation wait for a reconnection up to the deadline.
   * Faster answers during an outage; a short blip (a dropped connection re-established in
   * milliseconds) then fails the operations that arrive during it.
   * @default false
   */
  failFast?: boolean;
  /**
   * Quit the client in `close()`.
   * @default false
   */
  closeClient?: boolean;
  /**
   * Bytes of parsed records kept by this instance (counted as their stored size; the objects
   * take about 2 to 3 times that in memory), so an expansion transfers and parses only the
   * records this instance has not seen yet instead of the whole history. `0` disables it.
   * @default 33554432 (32 MiB)
   */
  cacheBytes?: number;
}

export const DEFAULT_KEY_PREFIX = 'relay';
export const DEFAULT_REDIS_CACHE_BYTES = 32 * 1024 * 1024;

/**
 * A chain walked in full is trusted without a walk below the hash that names it for this fraction
 * of the TTL (1/10): its records were refreshed to a full TTL then, so none can have expired.
 */
const FRESH_WALK_DIVISOR = 10;
/** Where the records start in an 'ok' reply of the expand script (see redis-scripts.ts). */
const REPLY_RECORDS = 7;

type ScriptFn = (...args: (string | number)[]) => Promise<unknown>;

/** The part of an ioredis client the store uses. */
interface ClientPort {
  status: string;
  get(key: string): Promise<string | null>;
  defineCommand(name: string, definition: { lua: string; numberOfKeys?: number }): void;
  quit(): Promise<unknown>;
  disconnect(): void;
}

const OWNER = 'RedisSessionStore';

/**
 * A SessionStore on Redis or Redis Cluster. See lib/store/README.md for the key layout and the
 * scripts; every method is one command (one round trip) on the server.
 */
export class RedisSessionStore implements SessionStore {
  readonly keyPrefix: string;
  readonly limits: StoreLimits;
  readonly operationTimeoutMs: number;
  private readonly client: ClientPort;
  private readonly keys: KeyLayout;
  private readonly failFast: boolean;
  private readonly closeClient: boolean;
  private readonly cache: ChainCache | undefined;
  private closed = false;

  constructor(options: RedisSessionStoreOptions) {
    if (typeof options !== 'object' || options === null || typeof options.redis !== 'object') {
      throw new TypeError(`${OWNER} options.redis must be an ioredis Redis or Cluster instance`);
    }
    this.client = options.redis as unknown as ClientPort;
    if (typeof this.client.defineCommand !== 'function' || typeof this.client.get !== 'function') {
      throw new TypeError(`${OWNER} options.redis must be an ioredis Redis or Cluster instance`);
    }
    this.keyPrefix = validateKeyPrefix(OWNER, options.keyPrefix ?? DEFAULT_KEY_PREFIX);
    this.keys = new KeyLayout(this.keyPrefix);
    this.limits = resolveLimits(OWNER, options);
    this.operationTimeoutMs = positiveInteger(
      OWNER,
      'operationTimeoutMs',
      options.operationTimeoutMs,
      DEFAULT_OPERATION_TIMEOUT_MS,
    );
    this.failFast = options.failFast ?? false;
    this.closeClient = options.closeClient ?? false;
    const cacheBytes =
      options.cacheBytes === 0
        ? 0
        : positiveInteger(OWNER, 'cacheBytes', options.cacheBytes, DEFAULT_REDIS_CACHE_BYTES);
    this.cache = cacheBytes > 0 ? new ChainCache(cacheBytes) : undefined;
    const host = this.client as unknown as Record<string, unknown>;
    for (const script of Object.values(SCRIPTS)) {
      // Several stores (or library copies of the same version) may share one client.
      if (typeof host[script.name] !== 'function') {
        this.client.defineCommand(script.name, {
          lua: script.lua,
          numberOfKeys: script.numberOfKeys,
        });
      }
    }
  }

  async putResponse(record: StoredResponse): Promise<void> {
    return this.put(record, undefined);
  }

  async putSessionResponse(record: StoredResponse, sessionKey: string): Promise<void> {
    assertLookupId('sessionKey', sessionKey);
    return this.put(record, sessionKey);
  }

  private async put(record: StoredResponse, sessionKey: string | undefined): Promise<void> {
    this.assertOpen();
    const encoded = encodeRecord(record, this.limits.maxResponseBytes);
    const { tenant, id, parentId } = encoded;
    const segment = keySegment(id);
    const parentSegment = parentId === null ? '' : keySegment(parentId);
    const headSegment = sessionKey === undefined ? '' : keySegment(sessionKey);
    const key = this.keys.record(tenant, segment);
    const reply = await this.script(
      'put',
      sessionKey === undefined ? 'putResponse' : 'putSessionResponse',
      [
        key,
        this.keys.index(tenant),
        parentId === null ? key : this.keys.record(tenant, parentSegment),
        sessionKey === undefined ? key : this.keys.head(tenant, headSegment),
        segment,
        parentSegment,
        contentHash(encoded.content),
        encoded.json,
        this.limits.ttlMs,
        this.limits.maxEntriesPerTenant,
        this.limits.maxChainDepth,
        this.limits.maxChainBytes,
        encoded.created,
        headSegment,
        id,
      ],
    );
    const [status, value] = scriptReply(reply);
    switch (status) {
      case 'ok': {
        const [, , , hash, parentHash, written] = reply as unknown[];
        if (this.cache !== undefined && typeof hash === 'string' && hash !== '') {
          if (Number(written) === 1) {
            this.cache.add(tenant, {
              hash,
              parentHash: String(parentHash ?? ''),
              record: decodeFrozenRecord(tenant, encoded.json),
              bytes: encoded.bytes,
            });
          }
          this.cache.remember(tenant, id, hash);
          // The new record is as fresh as the walk that vouches for its parent's chain.
          const parentWalk =
            typeof parentHash === 'string' && parentHash !== ''
              ? this.cache.walkOf(tenant, parentHash)
              : undefined;
          if (parentWalk !== undefined) this.cache.stamp(tenant, hash, parentWalk);
        }
        return;
      }
      case 'conflict':
        throw new SessionStoreError(
          'conflict',
          `response ${shownId(id)} is already stored with different content`,
          { responseId: id },
        );
      case 'parent_not_found':
        throw new SessionStoreError(
          'parent_not_found',
          `parent response ${shownId(parentId)} of ${shownId(id)} is not stored for this tenant`,
          { responseId: id },
        );
      default:
        throw this.replyError(status, value, id);
    }
  }

  async getResponse(tenant: string, id: string): Promise<StoredResponse | null> {
    this.assertOpen();
    assertTenant(tenant);
    assertLookupId('id', id);
    const key = this.keys.record(tenant, keySegment(id));
    const value = await this.run('getResponse', () => this.client.get(key));
    if (value === null) return null;
    const json = storedJson(value);
    if (json === null) throw corrupt(id);
    return decodeRecord(tenant, json);
  }

  async expandChain(tenant: string, id: string): Promise<ExpandedChain | null> {
    this.assertOpen();
    assertTenant(tenant);
    assertLookupId('id', id);
    const segment = keySegment(id);
    const found = await this.expand(tenant, 'r', this.keys.record(tenant, segment), segment, id);
    return found === null ? null : found.chain;
  }

  async expandSessionHead(tenant: string, sessionKey: string): Promise<SessionHeadChain | null> {
    this.assertOpen();
    assertTenant(tenant);
    assertLookupId('sessionKey', sessionKey);
    const segment = keySegment(sessionKey);
    return this.expand(tenant, 's', this.keys.head(tenant, segment), segment, undefined);
  }

  /**
   * One run of the expand script (see redis-scripts.ts), offering the chain hashes this instance
   * holds parsed; a second run without them only when a cached record went missing meanwhile.
   */
  private async expand(
    tenant: string,
    mode: 'r' | 's',
    key: string,
    segment: string,
    id: string | undefined,
  ): Promise<SessionHeadChain | null> {
    const operation = mode === 'r' ? 'expandChain' : 'expandSessionHead';
    let sentAt = 0;
    let fresh: { hash: string; walk: WalkStamp } | undefined;
    const send = (candidates: string[]): Promise<unknown> => {
      sentAt = Date.now();
      fresh =
        candidates.length === 0
          ? undefined
          : this.cache?.fresh(tenant, candidates, sentAt, this.limits.ttlMs / FRESH_WALK_DIVISOR);
      return this.script('expand', operation, [
        key,
        this.keys.index(tenant),
        this.keys.generation(tenant),
        mode,
        segment,
        this.limits.ttlMs,
        this.limits.maxChainDepth,
        this.limits.maxChainBytes,
        fresh?.hash ?? '',
        fresh?.walk.generation ?? '',
        ...candidates,
      ]);
    };
    const candidates = this.cache?.candidates(tenant, id) ?? [];
    let reply = await send(candidates);
    for (let attempt = 0; ; attempt += 1) {
      if (!Array.isArray(reply) || reply.length === 0) throw corrupt(id ?? '');
      const status = String(reply[0]);
      if (status === 'no_head') return null;
      // the head id: at 3 in an 'ok' reply, at 2 in the others
      const head = mode === 's' ? String(reply[status === 'ok' ? 3 : 2] ?? '') : '';
      const about = id ?? head;
      if (status === 'not_found' || status === 'broken') return { head, chain: null };
      if (status !== 'ok') throw this.replyError(status, Number(reply[1]), about);
      const chain = this.chainFromReply(tenant, reply, about, sentAt, fresh?.walk);
      if (chain !== null) return { head, chain };
      // A record the reply left out is no longer cached here: ask again for every record.
      if (attempt > 0) throw corrupt(about);
      reply = await send([]);
    }
  }

  /** The chain in an 'ok' reply of the expand script, or null when the cache cannot complete it. */
  private chainFromReply(
    tenant: string,
    reply: unknown[],
    id: string,
    sentAt: number,
    freshWalk: WalkStamp | undefined,
  ): ExpandedChain | null {
    const depth = Number(reply[1]);
    const bytes = Number(reply[2]);
    const matched = String(reply[4] ?? '');
    const generation = String(reply[5] ?? '0');
    // 0: stopped at the fresh hash; 1: walked to the root, every link holding; 2: walked to the
    // root through an ancestor re-created since (the leaf's chain hash names another history)
    const walked = Number(reply[6]);
    const cache = this.cache;
    if (cache === undefined) {
      if (matched !== '' || walked === 0) throw corrupt(id);
      const jsons: string[] = [];
      for (let i = reply.length - 1; i >= REPLY_RECORDS + 2; i -= 3) jsons.push(String(reply[i]));
      return assembleChain(tenant, jsons, bytes);
    }
    // Leaf first: each sent record is cached before the lineage below it is looked up, so the
    // ones nearer the root end up the more recently used (evicted last).
    const sent: ChainNode[] = [];
    for (let i = REPLY_RECORDS; i + 2 < reply.length; i += 3) {
      const json = String(reply[i + 2]);
      const node: ChainNode = {
        hash: String(reply[i]),
        parentHash: String(reply[i + 1]),
        record: decodeFrozenRecord(tenant, json),
        bytes: Buffer.byteLength(json, 'utf8'),
      };
      cache.add(tenant, node);
      sent.push(node);
    }
    let records: StoredResponse[] = [];
    if (matched !== '') {
      const below = cache.lineage(tenant, matched, this.limits.maxChainDepth);
      if (below === null) return null;
      records = below;
    }
    for (let i = sent.length - 1; i >= 0; i -= 1) records.push((sent[i] as ChainNode).record);
    if (records.length !== depth) return null;
    const leaf = records[records.length - 1] as StoredResponse;
    const leafHash = sent.length > 0 ? (sent[0] as ChainNode).hash : matched;
    cache.remember(tenant, leaf.id, leafHash);
    // A walk to the root through intact links vouches for the whole chain as of when it was sent;
    // a walk that stopped at a fresh hash vouches for what that hash's walk did.
    const walk = walked === 1 ? { at: sentAt, generation } : walked === 0 ? freshWalk : undefined;
    if (walk !== undefined) cache.stamp(tenant, leafHash, walk);
    return chainOf(records, bytes);
  }

  async deleteResponse(tenant: string, id: string): Promise<boolean> {
    this.assertOpen();
    assertTenant(tenant);
    assertLookupId('id', id);
    const segment = keySegment(id);
    const reply = await this.script('delete', 'deleteResponse', [
      this.keys.record(tenant, segment),
      this.keys.index(tenant),
      this.keys.generation(tenant),
      segment,
      this.limits.ttlMs,
    ]);
    return Number(reply) === 1;
  }

  async setSessionHead(tenant: string, sessionKey: string, responseId: string): Promise<void> {
    this.assertOpen();
    assertTenant(tenant);
    assertLookupId('sessionKey', sessionKey);
    assertWriteId('responseId', responseId);
    const segment = keySegment(sessionKey);
    const reply = await this.script('setHead', 'setSessionHead', [
      this.keys.head(tenant, segment),
      this.keys.index(tenant),
      segment,
      `2:${keySegment(responseId)}:${responseId}`,
      this.limits.ttlMs,
      this.limits.maxEntriesPerTenant,
    ]);
    const [status, value] = scriptReply(reply);
    if (status !== 'ok') throw this.replyError(status, value, undefined);
  }

  async getSessionHead(tenant: string, sessionKey: string): Promise<string | null> {
    this.assertOpen();
    assertTenant(tenant);
    assertLookupId('sessionKey', sessionKey);
    const key = this.keys.head(tenant, keySegment(sessionKey));
    const value = await this.run('getSessionHead', () => this.client.get(key));
    if (value === null) return null;
    const at = value.startsWith('2:') ? value.indexOf(':', 2) : -1;
    if (at < 0) throw corrupt('');
    return value.slice(at + 1);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.cache?.clear();
    if (!this.closeClient) return;
    try {
      await withDeadline(
        this.client.quit(),
        this.operationTimeoutMs,
        () => new Error('quit timed out'),
      );
    } catch {
      this.client.disconnect();
    }
  }

  private assertOpen(): void {
    if (this.closed)
      throw new SessionStoreError('store_unavailable', 'the session store is closed');
  }

  private script(name: ScriptName, operation: string, args: (string | number)[]): Promise<unknown> {
    const fn = (this.client as unknown as Record<string, ScriptFn>)[SCRIPTS[name].name];
    if (typeof fn !== 'function') {
      throw new SessionStoreError(
        'store_unavailable',
        `script ${SCRIPTS[name].name} is not defined`,
      );
    }
    return this.run(operation, () => fn.apply(this.client, args));
  }

  /** Runs one client call under the store's deadline, mapping every failure to a typed error. */
  private async run<T>(operation: string, send: () => Promise<T>): Promise<T> {
    const status = this.client.status;
    if (status === 'end' || (this.failFast && status !== 'ready' && status !== 'wait')) {
      throw new SessionStoreError(
        'store_unavailable',
        `session store ${operation}: the Redis client is ${status}`,
      );
    }
    try {
      return await withDeadline(send(), this.operationTimeoutMs, () => {
        const now = this.client.status;
        return now === 'ready'
          ? new SessionStoreError(
              'store_timeout',
              `session store ${operation}: Redis did not answer within ${this.operationTimeoutMs} ms`,
            )
          : new SessionStoreError(
              'store_unavailable',
              `session store ${operation}: Redis is unreachable (client ${now}) after ${this.operationTimeoutMs} ms`,
            );
      });
    } catch (error) {
      throw backendError(operation, error);
    }
  }

  private replyError(
    status: string,
    value: number,
    responseId: string | undefined,
  ): SessionStoreError {
    const about = responseId === undefined ? {} : { responseId };
    switch (status) {
      case 'chain_too_deep':
        return new SessionStoreError(
          'chain_too_deep',
          `the chain of ${shownId(responseId ?? null)} has ${value} responses, over the store's limit of ${this.limits.maxChainDepth}`,
          { ...about, limit: this.limits.maxChainDepth, actual: value },
        );
      case 'chain_too_large':
        return new SessionStoreError(
          'chain_too_large',
          `the chain of ${shownId(responseId ?? null)} is ${value} bytes, over the store's limit of ${this.limits.maxChainBytes}`,
          { ...about, limit: this.limits.maxChainBytes, actual: value },
        );
      case 'tenant_quota_exceeded':
        return new SessionStoreError(
          'tenant_quota_exceeded',
          `the tenant already holds ${value} entries, the store's limit is ${this.limits.maxEntriesPerTenant}`,
          { ...about, limit: this.limits.maxEntriesPerTenant, actual: value },
        );
      default:
        return corrupt(responseId ?? '');
    }
  }
}

function scriptReply(reply: unknown): [string, number] {
  if (!Array.isArray(reply) || reply.length === 0) return ['corrupt', 0];
  return [String(reply[0]), Number(reply[1] ?? 0)];
}

/**
 * The JSON part of a stored value
 * (`2:<depth>:<chain>:<parent>:<hash>:<chain hash>:<parent chain hash>:<json>`), or null.
 */
function storedJson(value: string): string | null {
  if (!value.startsWith('2:')) return null;
  let at = 1;
  for (let i = 0; i < 6; i += 1) {
    at = value.indexOf(':', at + 1);
    if (at < 0) return null;
  }
  return value.slice(at + 1);
}

function corrupt(responseId: string): SessionStoreError {
  return new SessionStoreError(
    'store_unavailable',
    `the stored entry for ${shownId(responseId ?? null)} is not in this store's format (another writer under the same keyPrefix?)`,
    { responseId },
  );
}
