/**
 * Options shared by every store (TTL and caps), their defaults, and their validation. A resolved
 * `StoreLimits` is frozen and fully defaulted; only it is used at run time.
 */

/** TTL and caps common to MemorySessionStore and RedisSessionStore. */
export interface SessionStoreLimitOptions {
  /**
   * How long an entry lives after it was written or last refreshed (`expandChain` refreshes a whole
   * chain; `putResponse` refreshes the parent). Fractions are allowed (ms precision).
   * @default 86400 (one day)
   */
  ttlSeconds?: number;
  /**
   * Live entries (stored responses plus session heads) one tenant may hold; past it a write fails
   * with `tenant_quota_exceeded`.
   * @default 10000
   */
  maxEntriesPerTenant?: number;
  /**
   * Largest serialized record (UTF-8 bytes of its JSON: id, parent, items, metadata); past it
   * `putResponse` fails with `response_too_large`.
   * @default 4194304 (4 MiB)
   */
  maxResponseBytes?: number;
  /**
   * Most records in one chain, root included; a longer chain fails with `chain_too_deep` (on put and
   * on expand).
   * @default 2000
   */
  maxChainDepth?: number;
  /**
   * Largest chain, as the sum of its records' serialized sizes; past it `chain_too_large` (on put and
   * on expand).
   * @default 33554432 (32 MiB, the relay's default request body limit)
   */
  maxChainBytes?: number;
}

export interface StoreLimits {
  readonly ttlMs: number;
  readonly maxEntriesPerTenant: number;
  readonly maxResponseBytes: number;
  readonly maxChainDepth: number;
  readonly maxChainBytes: number;
}

export const DEFAULT_TTL_SECONDS = 86_400;
export const DEFAULT_MAX_ENTRIES_PER_TENANT = 10_000;
export const DEFAULT_MAX_RESPONSE_BYTES = 4 * 1024 * 1024;
export const DEFAULT_MAX_CHAIN_DEPTH = 2_000;
export const DEFAULT_MAX_CHAIN_BYTES = 32 * 1024 * 1024;
export const DEFAULT_OPERATION_TIMEOUT_MS = 1_000;

/** Longest response id (and session head value) a store accepts on write. */
export const MAX_ID_LENGTH = 1024;

/** Throws a TypeError naming the option unless `value` is a positive integer (or undefined). */
export function positiveInteger(
  owner: string,
  name: string,
  value: unknown,
  fallback: number,
): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1) {
    throw new TypeError(
      `${owner} options.${name} must be a positive integer, got ${String(value)}`,
    );
  }
  return value;
}

/** Throws a TypeError naming the option unless `value` is a finite number > 0 (or undefined). */
export function positiveNumber(
  owner: string,
  name: string,
  value: unknown,
  fallback: number,
): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    throw new TypeError(`${owner} options.${name} must be a number > 0, got ${String(value)}`);
  }
  return value;
}

export function resolveLimits(owner: string, options: SessionStoreLimitOptions): StoreLimits {
  const ttlSeconds = positiveNumber(owner, 'ttlSeconds', options.ttlSeconds, DEFAULT_TTL_SECONDS);
  return Object.freeze({
    ttlMs: Math.max(1, Math.round(ttlSeconds * 1000)),
    maxEntriesPerTenant: positiveInteger(
      owner,
      'maxEntriesPerTenant',
      options.maxEntriesPerTenant,
      DEFAULT_MAX_ENTRIES_PER_TENANT,
    ),
    maxResponseBytes: positiveInteger(
      owner,
      'maxResponseBytes',
      options.maxResponseBytes,
      DEFAULT_MAX_RESPONSE_BYTES,
    ),
    maxChainDepth: positiveInteger(
      owner,
      'maxChainDepth',
      options.maxChainDepth,
      DEFAULT_MAX_CHAIN_DEPTH,
    ),
    maxChainBytes: positiveInteger(
      owner,
      'maxChainBytes',
      options.maxChainBytes,
      DEFAULT_MAX_CHAIN_BYTES,
    ),
  });
}
