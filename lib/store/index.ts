/**
 * The session store API (DESIGN.md §4): the contract, both stores, tenant ids and typed errors.
 */
export {
  SessionStoreError,
  SESSION_STORE_ERROR_CODES,
  isSessionStoreError,
  type ExpandedChain,
  type SessionHeadChain,
  type SessionStore,
  type SessionStoreErrorCode,
  type SessionStoreErrorDetails,
  type StoredResponse,
} from './session-store';
export { tenantId, isValidTenant, TENANT_PATTERN } from './tenant';
export {
  DEFAULT_MAX_CHAIN_BYTES,
  DEFAULT_MAX_CHAIN_DEPTH,
  DEFAULT_MAX_ENTRIES_PER_TENANT,
  DEFAULT_MAX_RESPONSE_BYTES,
  DEFAULT_OPERATION_TIMEOUT_MS,
  DEFAULT_TTL_SECONDS,
  MAX_ID_LENGTH,
  type SessionStoreLimitOptions,
  type StoreLimits,
} from './limits';
export {
  MemorySessionStore,
  DEFAULT_MEMORY_MAX_BYTES,
  DEFAULT_MEMORY_MAX_ENTRIES,
  type MemorySessionStoreOptions,
} from './memory-session-store';
export {
  RedisSessionStore,
  DEFAULT_KEY_PREFIX,
  DEFAULT_REDIS_CACHE_BYTES,
  type RedisSessionStoreClient,
  type RedisSessionStoreOptions,
} from './redis-session-store';
