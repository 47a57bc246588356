/**
 * Retry hints and retryability: what an upstream answer says about trying again. Pure functions;
 * the clock (`now`) and the randomness (`random`) are injected so tests assert exact delays.
 *
 * The rules follow DESIGN.md §8 and the clients in front of the relay (openai-node's
 * `shouldRetry`, Codex's retry matrix in codex-wire.md §4). Whether a retry is *safe* (no byte
 * reached the client, budget left, request replayable) is the retry guard's business, not this
 * module's.
 */
import { extractErrorBody } from './errors';
import type { OpenAIErrorBody } from './types';

export type HeaderBag = Record<string, string | string[] | number | undefined>;

/** One header's value, any case of the name; the first of repeated values. */
export function headerValue(headers: HeaderBag | undefined, name: string): string | undefined {
  if (!headers) return undefined;
  const lower = name.toLowerCase();
  let value = headers[lower];
  if (value === undefined) {
    for (const key of Object.keys(headers)) {
      if (key.toLowerCase() === lower) {
        value = headers[key];
        break;
      }
    }
  }
  if (Array.isArray(value)) value = value[0];
  return value === undefined ? undefined : String(value);
}

// ---------------------------------------------------------------------------------------------
// Retry-After

const DECIMAL = /^\s*(\d+(?:\.\d+)?)\s*$/;
/** IMF-fixdate `Sun, 06 Nov 1994 08:49:37 GMT` and obsolete RFC 850 `Sunday, 06-Nov-94 08:49:37 GMT`. */
const HTTP_DATE = /^[A-Za-z]{3,9}, \d{1,2}[ -][A-Za-z]{3}[ -]\d{2,4} \d{2}:\d{2}:\d{2} GMT$/;
/** asctime `Sun Nov  6 08:49:37 1994` (always GMT, but written without a zone). */
const ASCTIME = /^[A-Za-z]{3} [A-Za-z]{3} [ \d]\d \d{2}:\d{2}:\d{2} \d{4}$/;

/**
 * A `Retry-After` value in milliseconds: integer or decimal seconds, or an HTTP date minus `now`
 * (a past date gives 0). Negative numbers, other date formats and garbage give `undefined`.
 */
export function parseRetryAfterValue(value: string, now: number): number | undefined {
  const seconds = DECIMAL.exec(value);
  if (seconds) return finiteMs(Number(seconds[1]) * 1000);
  const text = value.trim();
  let date = Number.NaN;
  if (HTTP_DATE.test(text)) date = Date.parse(text);
  else if (ASCTIME.test(text)) date = Date.parse(`${text} GMT`);
  if (Number.isNaN(date)) return undefined;
  return Math.max(0, Math.round(date - now));
}

function finiteMs(ms: number): number | undefined {
  return Number.isFinite(ms) ? Math.round(ms) : undefined;
}

/**
 * The server's requested delay in milliseconds, as openai-node reads it: `retry-after-ms`
 * (decimal milliseconds) first, then `retry-after` (seconds, decimal seconds, or an HTTP date
 * relative to `now`; a past date gives 0). An unusable `retry-after-ms` falls through to
 * `retry-after`; nothing usable gives `undefined`. Values are rounded to whole milliseconds and
 * not capped: bounding a hint is the caller's policy (see {@link retryDelayMs}).
 */
export function parseRetryAfterMs(
  headers: HeaderBag,
  now: number = Date.now(),
): number | undefined {
  const ms = headerValue(headers, 'retry-after-ms');
  if (ms !== undefined) {
    const match = DECIMAL.exec(ms);
    if (match) {
      const parsed = finiteMs(Number(match[1]));
      if (parsed !== undefined) return parsed;
    }
  }
  const ra = headerValue(headers, 'retry-after');
  return ra === undefined ? undefined : parseRetryAfterValue(ra, now);
}

/** `x-should-retry: true|false` (any case, surrounding spaces allowed); otherwise `undefined`. */
export function parseShouldRetry(headers: HeaderBag | undefined): boolean | undefined {
  const value = headerValue(headers, 'x-should-retry')?.trim().toLowerCase();
  return value === 'true' ? true : value === 'false' ? false : undefined;
}

// ---------------------------------------------------------------------------------------------
// Decisions

export type RetryReason =
  | 'rate_limited'
  | 'server_error'
  | 'connection'
  | 'timeout'
  | 'stream_cut'
  | 'upstream_requested'
  | 'conflict';

export type RetryDecision = { retry: true; reason: RetryReason } | { retry: false; reason: string };

/**
 * 5xx statuses that are NOT retried: each says the request can never work as sent (a method the
 * server lacks, a protocol version, a content-negotiation loop, a missing extension, a captive
 * portal), so another attempt only burns budget. Every other 5xx — including the non-standard
 * 520–529 of CDNs and 529 "overloaded" — is retried.
 */
export const NON_RETRYABLE_5XX: readonly number[] = Object.freeze([501, 505, 506, 510, 511]);

/** Error codes/types of a 429 that no amount of waiting fixes. */
const QUOTA_CODES = new Set([
  'insufficient_quota',
  'usage_limit_reached',
  'usage_not_included',
  'billing_hard_limit_reached',
  'billing_not_active',
]);

/**
 * Whether an upstream HTTP error status is worth another attempt.
 *
 * 1. `x-should-retry: true|false` decides first (openai-node obeys it too).
 * 2. 408 → `timeout`, 409 → `conflict`, 429 → `rate_limited` — unless the error `body` (an
 *    envelope, a bare body, or raw JSON text) says the quota is gone (`insufficient_quota`,
 *    `usage_limit_reached`, `usage_not_included`): not retried, reason `quota_exhausted`.
 * 3. 5xx → `server_error`, except {@link NON_RETRYABLE_5XX}.
 * 4. Everything else (other 4xx, and non-errors) → not retried.
 */
export function classifyStatus(status: number, headers?: HeaderBag, body?: unknown): RetryDecision {
  const should = parseShouldRetry(headers);
  if (should === true) return { retry: true, reason: 'upstream_requested' };
  if (should === false) return { retry: false, reason: 'upstream_declined' };
  if (status === 408) return { retry: true, reason: 'timeout' };
  if (status === 409) return { retry: true, reason: 'conflict' };
  if (status === 429) {
    const error = body === undefined ? undefined : extractErrorBody(body);
    if (error && (QUOTA_CODES.has(error.code ?? '') || QUOTA_CODES.has(error.type))) {
      return { retry: false, reason: 'quota_exhausted' };
    }
    return { retry: true, reason: 'rate_limited' };
  }
  if (status >= 500 && status <= 599) {
    if (NON_RETRYABLE_5XX.includes(status)) return { retry: false, reason: `status_${status}` };
    return { retry: true, reason: 'server_error' };
  }
  if (status >= 400 && status <= 499) return { retry: false, reason: 'client_error' };
  return { retry: false, reason: 'not_an_error' };
}

/** Errno/undici codes meaning "the connection failed or broke": retried as `connection`. */
const CONNECTION_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'EPIPE',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ENETDOWN',
  'ENETUNREACH',
  'ENETRESET',
  'EHOSTDOWN',
  'EHOSTUNREACH',
  'UND_ERR_SOCKET',
  'UND_ERR_CLOSED',
  'ERR_STREAM_PREMATURE_CLOSE',
]);

/** Codes meaning "it took too long": retried as `timeout`. */
const TIMEOUT_CODES = new Set([
  'ETIMEDOUT',
  'ESOCKETTIMEDOUT',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'ERR_HTTP_REQUEST_TIMEOUT',
]);

/**
 * Whether a failure to talk to the upstream (no HTTP status) is worth another attempt. Looks at
 * the error and its `cause` chain (undici's `fetch failed` carries the real code in `cause`).
 *
 * - Timeouts (`ETIMEDOUT`, `UND_ERR_*_TIMEOUT`, a `TimeoutError` from `AbortSignal.timeout`) → `timeout`.
 * - Refused/reset/broken connections and DNS failures (`ECONNREFUSED`, `ECONNRESET`, `EPIPE`,
 *   `ENOTFOUND`, `EAI_AGAIN`, `EHOSTUNREACH`, `UND_ERR_SOCKET`, "socket hang up", …) → `connection`.
 *   `ENOTFOUND` is included: it fails before anything is sent, and a flapping resolver produces it
 *   as readily as a typo; the retry budget bounds the cost of the typo.
 * - An abort (`AbortError`, `ABORT_ERR`, `UND_ERR_ABORTED`: the client left) → not retried, `aborted`.
 * - Anything else (TLS certificate errors, HTTP parse errors, bugs) → not retried, `unknown_error`.
 */
export function classifyConnectionError(error: unknown): RetryDecision {
  let current: unknown = error;
  for (let depth = 0; depth < 5 && typeof current === 'object' && current !== null; depth += 1) {
    const e = current as { code?: unknown; name?: unknown; message?: unknown; cause?: unknown };
    const code = typeof e.code === 'string' ? e.code : '';
    const name = typeof e.name === 'string' ? e.name : '';
    if (name === 'AbortError' || code === 'ABORT_ERR' || code === 'UND_ERR_ABORTED') {
      return { retry: false, reason: 'aborted' };
    }
    if (TIMEOUT_CODES.has(code) || name === 'TimeoutError')
      return { retry: true, reason: 'timeout' };
    if (CONNECTION_CODES.has(code)) return { retry: true, reason: 'connection' };
    if (typeof e.message === 'string' && /socket hang up|other side closed/i.test(e.message)) {
      return { retry: true, reason: 'connection' };
    }
    current = e.cause;
  }
  return { retry: false, reason: 'unknown_error' };
}

/** In-stream error codes (and types) that describe a transient condition. */
const RETRYABLE_STREAM_CODES: ReadonlyMap<string, RetryReason> = new Map<string, RetryReason>([
  ['server_error', 'server_error'],
  ['server_is_overloaded', 'server_error'],
  ['slow_down', 'server_error'],
  ['overloaded_error', 'server_error'],
  ['rate_limit_exceeded', 'rate_limited'],
]);

/**
 * Whether a stream that failed before any output (an `error` event or `response.failed`, read
 * with `errorFromStreamEvent`) is worth another attempt.
 *
 * - No error at all (the stream just ended or was cut) → `stream_cut`, retried.
 * - `code` (or, when `code` is null, `type`) `server_error`, `server_is_overloaded`, `slow_down`,
 *   `overloaded_error` → `server_error`; `rate_limit_exceeded` → `rate_limited`.
 * - Everything else — `context_length_exceeded`, `insufficient_quota`, `usage_limit_reached`,
 *   `invalid_prompt`, image errors, unknown codes — is not retried; the reason is the code. These
 *   are what Codex treats as fatal too.
 */
export function classifyStreamFailure(error: OpenAIErrorBody | undefined): RetryDecision {
  if (error === undefined) return { retry: true, reason: 'stream_cut' };
  const key = error.code ?? error.type;
  const reason = RETRYABLE_STREAM_CODES.get(key);
  if (reason !== undefined) return { retry: true, reason };
  return { retry: false, reason: key || 'unknown_error' };
}

// ---------------------------------------------------------------------------------------------
// Delays

export interface BackoffOptions {
  /** Ceiling of the first retry's delay. */
  baseMs: number;
  /** Ceiling of every delay. */
  maxMs: number;
  /** A uniform random number in [0, 1). */
  random: () => number;
}

/**
 * Full-jitter exponential backoff (gRPC A6, Envoy, AWS): retry number `attempt` (1 for the first
 * retry) waits a uniform random time in `[0, min(maxMs, baseMs · 2^(attempt−1)))`, as a whole
 * number of milliseconds. `attempt` below 1 (or NaN) counts as 1; a `random()` outside [0, 1) is
 * clamped.
 */
export function backoffDelayMs(attempt: number, opts: BackoffOptions): number {
  const n = Number.isNaN(attempt) ? 1 : Math.max(1, Math.floor(attempt));
  const base = Math.max(0, opts.baseMs);
  const max = Math.max(0, opts.maxMs);
  const ceiling = Math.min(max, base * 2 ** Math.min(n - 1, 1023));
  const r = opts.random();
  const jitter = Number.isFinite(r) ? Math.min(Math.max(r, 0), 1 - Number.EPSILON) : 0;
  return Math.floor(jitter * ceiling);
}

export interface RetryDelayOptions extends BackoffOptions {
  /** The upstream answer's headers (for `retry-after-ms` / `retry-after`). */
  headers?: HeaderBag;
  /** The clock, for HTTP-date hints. Default `Date.now()`. */
  now?: number;
  /** The longest server hint the relay will wait out. Default 60 000 (openai-node's ceiling). */
  maxHintMs?: number;
}

export type RetryDelay =
  | { retry: true; delayMs: number; source: 'hint' | 'backoff' }
  | { retry: false; reason: 'hint_too_long'; hintMs: number };

/**
 * How long to wait before retry number `attempt`: the server's hint when it gave one (honoured
 * as is, up to `maxHintMs`), otherwise {@link backoffDelayMs}. A hint above `maxHintMs` means
 * "do not retry here": the caller passes the upstream answer (with its `retry-after`) to the
 * client instead of holding the request (reliability.md G3).
 */
export function retryDelayMs(attempt: number, opts: RetryDelayOptions): RetryDelay {
  const hint = opts.headers ? parseRetryAfterMs(opts.headers, opts.now ?? Date.now()) : undefined;
  if (hint !== undefined) {
    if (hint > (opts.maxHintMs ?? 60_000))
      return { retry: false, reason: 'hint_too_long', hintMs: hint };
    return { retry: true, delayMs: hint, source: 'hint' };
  }
  return { retry: true, delayMs: backoffDelayMs(attempt, opts), source: 'backoff' };
}
