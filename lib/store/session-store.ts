/**
 * The SessionStore contract (DESIGN.md §4): what response chaining, upstream affinity, ownership
 * checks and the WebSocket bridge need from session state, the record shapes and the typed errors.
 * Every store (MemorySessionStore, RedisSessionStore, yours) implements this and passes
 * test/store/contract.ts.
 */
import type { ResponseItem } from '../protocol/types';

/**
 * One stored response: what it added to the conversation and where it came from. Storage stays
 * linear in a conversation because a record holds only its own delta plus a link to its parent.
 */
export interface StoredResponse {
  /** The owner: a keyed hash of the client's credential (see {@link tenantId}), never the credential. */
  tenant: string;
  /** The response id (`resp_…`). Any non-empty string of at most 1024 characters. */
  id: string;
  /** The response this one continued (`previous_response_id`), or null for a conversation root. */
  parentId: string | null;
  /** The items this turn ADDED as input (the delta after expansion; for a root, the full input). */
  input: ResponseItem[];
  /** The response's output items as the client saw them. */
  output: ResponseItem[];
  /** Which upstream/account produced it, so continuations can be pinned to it (affinity). */
  upstream?: string;
  /** The request's `instructions`, when the relay needs them to rebuild a turn. */
  instructions?: string | null;
  /** The model that produced the response. */
  model?: string;
  /** When the response was stored, in ms since the epoch. */
  createdAt: number;
}

/**
 * A chain expanded from a leaf back to its root. Treat it as read-only: the arrays are fresh for
 * every call, but the records and items in them may be frozen objects shared between calls (a
 * store may keep parsed records instead of parsing the whole history on every expansion).
 */
export interface ExpandedChain {
  /** The records, root first, leaf last. */
  records: StoredResponse[];
  /** Every record's items in conversation order: r0.input ++ r0.output ++ r1.input ++ … ++ leaf.output. */
  items: ResponseItem[];
  /** Number of records in the chain (1 for a root alone). */
  depth: number;
  /** Stored size of the chain: the sum of each record's serialized size in UTF-8 bytes. */
  bytes: number;
}

/** What {@link SessionStore.expandSessionHead} answers for a session that has a head. */
export interface SessionHeadChain {
  /** The session's latest response id. */
  head: string;
  /** Its chain, or null when it cannot be expanded (unknown, expired, broken). */
  chain: ExpandedChain | null;
}

/**
 * Session state behind the relay. Every method may be called concurrently, from one process or
 * many sharing one backend; implementations guarantee:
 *
 * - **Tenant isolation.** Every lookup is scoped by tenant. A response id stored by another tenant
 *   behaves exactly like an unknown id (`null`, `false`, an empty head): no existence leak.
 * - **Atomic, idempotent writes.** `putResponse` either stores the whole record or nothing; storing
 *   the same record twice succeeds (clients re-send in-flight writes after a reconnect); storing a
 *   different record under an existing id fails with `conflict`. Records are immutable, so forks
 *   (several children of one parent) and concurrent writers never interleave a chain.
 * - **Caps, never truncation.** A record, chain or tenant over its limit fails with a typed
 *   {@link SessionStoreError}; a history is never silently shortened.
 * - **Bounded time.** Backend trouble surfaces as `store_unavailable` / `store_timeout` within the
 *   store's deadline, and the store recovers by itself when the backend returns.
 *
 * Records expire after the store's TTL; `expandChain` refreshes the TTL of the whole chain, so an
 * active conversation stays alive (a store may refresh the older records of a chain it walked in
 * full a moment ago later, at its next full walk: RedisSessionStore does within a tenth of the TTL). A chain whose ancestor has expired or was deleted cannot be
 * rebuilt faithfully and expands to `null`, like an unknown id (the client's answer to
 * `previous_response_not_found` is to resend its full history, which is the right recovery).
 */
export interface SessionStore {
  /**
   * Stores a response. Atomic and idempotent (same id and same content twice = success; the
   * comparison ignores `createdAt`). When `parentId` is set the parent must exist for the same
   * tenant, else `parent_not_found`; refreshes the parent's TTL. Enforces every cap.
   */
  putResponse(record: StoredResponse): Promise<void>;
  /** The record, or null for an unknown, expired or other tenant's id (indistinguishable). */
  getResponse(tenant: string, id: string): Promise<StoredResponse | null>;
  /**
   * The chain ending at `id`, root first; refreshes the TTL of every record in it. Null for an
   * unknown id, another tenant's id, or a chain with a missing ancestor. Fails with
   * `chain_too_deep` / `chain_too_large` past the store's caps. One round trip on Redis (a second
   * one only when records the instance held parsed were evicted from its cache meanwhile).
   */
  expandChain(tenant: string, id: string): Promise<ExpandedChain | null>;
  /** Deletes one record; true when it existed for this tenant. Its descendants then expand to null. */
  deleteResponse(tenant: string, id: string): Promise<boolean>;
  /**
   * Records the latest response of a session (a WebSocket connection, a session header), so a
   * turn that omits `previous_response_id` can be chained. Counts as one entry of the tenant.
   */
  setSessionHead(tenant: string, sessionKey: string, responseId: string): Promise<void>;
  /** The latest response id recorded for the session, or null. */
  getSessionHead(tenant: string, sessionKey: string): Promise<string | null>;
  /**
   * Optional: {@link getSessionHead} then {@link expandChain} of that head, in one round trip.
   * Null when the session has no head; `chain` is null when the head's chain cannot be expanded
   * (unknown, expired or broken), exactly as `expandChain` would answer. Throws what either
   * method throws. Callers fall back to the two calls when a store does not implement it.
   */
  expandSessionHead?(tenant: string, sessionKey: string): Promise<SessionHeadChain | null>;
  /**
   * Optional: {@link putResponse} then {@link setSessionHead}(record.tenant, sessionKey,
   * record.id), atomically in one round trip: both happen or neither does. Same errors as
   * `putResponse`; `tenant_quota_exceeded` counts the head too when it is a new entry. Storing
   * the same record again succeeds and (re)points the head at it.
   */
  putSessionResponse?(record: StoredResponse, sessionKey: string): Promise<void>;
  /** Releases what the store created. Never quits a client the user passed in unless told to. */
  close(): Promise<void>;
}

/**
 * Stable error codes. Match on these, never on messages.
 *
 * | code | meaning | retryable |
 * | --- | --- | --- |
 * | `store_unavailable` | the backend is down, refused the command, or the store was closed | yes |
 * | `store_timeout` | the backend did not answer within `operationTimeoutMs` | yes |
 * | `parent_not_found` | `putResponse` with a `parentId` unknown to this tenant (or expired) | no |
 * | `conflict` | `putResponse` with an existing id and different content | no |
 * | `response_too_large` | one record over `maxResponseBytes` | no |
 * | `chain_too_deep` | a chain over `maxChainDepth` records (on put or expand) | no |
 * | `chain_too_large` | a chain over `maxChainBytes` (on put or expand) | no |
 * | `tenant_quota_exceeded` | the tenant already holds `maxEntriesPerTenant` live entries | no |
 * | `invalid_argument` | a malformed tenant, id or record (a programming error) | no |
 */
export type SessionStoreErrorCode =
  | 'store_unavailable'
  | 'store_timeout'
  | 'parent_not_found'
  | 'conflict'
  | 'response_too_large'
  | 'chain_too_deep'
  | 'chain_too_large'
  | 'tenant_quota_exceeded'
  | 'invalid_argument';

export const SESSION_STORE_ERROR_CODES: readonly SessionStoreErrorCode[] = Object.freeze([
  'store_unavailable',
  'store_timeout',
  'parent_not_found',
  'conflict',
  'response_too_large',
  'chain_too_deep',
  'chain_too_large',
  'tenant_quota_exceeded',
  'invalid_argument',
]);

const RETRYABLE: ReadonlySet<SessionStoreErrorCode> = new Set([
  'store_unavailable',
  'store_timeout',
]);

export interface SessionStoreErrorDetails {
  /** The response id concerned, when there is one. */
  responseId?: string;
  /** The configured limit that was hit (caps only). */
  limit?: number;
  /** The value that went over it (caps only; for `tenant_quota_exceeded`, the live entry count). */
  actual?: number;
  /** The underlying client error (`store_unavailable`, `store_timeout`). */
  cause?: unknown;
}

/** Every failure a SessionStore reports on purpose. */
export class SessionStoreError extends Error {
  override readonly name = 'SessionStoreError';
  readonly code: SessionStoreErrorCode;
  /** True for backend trouble that may pass (`store_unavailable`, `store_timeout`). */
  readonly retryable: boolean;
  readonly responseId?: string;
  readonly limit?: number;
  readonly actual?: number;

  constructor(
    code: SessionStoreErrorCode,
    message: string,
    details: SessionStoreErrorDetails = {},
  ) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.code = code;
    this.retryable = RETRYABLE.has(code);
    if (details.responseId !== undefined) this.responseId = details.responseId;
    if (details.limit !== undefined) this.limit = details.limit;
    if (details.actual !== undefined) this.actual = details.actual;
  }
}

/** True when `error` is a SessionStoreError (with the given code, when one is given). */
export function isSessionStoreError(
  error: unknown,
  code?: SessionStoreErrorCode,
): error is SessionStoreError {
  return error instanceof SessionStoreError && (code === undefined || error.code === code);
}
