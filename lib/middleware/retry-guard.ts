/**
 * retryGuard: safe, bounded, honest retries (DESIGN §8). It decides; the proxy adapter
 * (`relayProxyOptions()` / `relayProxy`) carries the attempts out, because only a proxy that has
 * not written to the client yet can issue a request again. A retry happens only before anything
 * reached the client: on connection errors, 408/409/429/5xx (what the upstream's
 * `x-should-retry` allows), and on a stream that fails before its first output event (the prelude
 * is held back meanwhile). Delays honour `retry-after-ms` / `Retry-After` up to a cap, otherwise
 * exponential backoff with full jitter; a process-wide budget stops retry storms.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { isPreviousResponseNotFound } from '../protocol/errors';
import { RetryBudget, type RetryBudgetOptions } from '../protocol/retry-budget';
import {
  classifyConnectionError,
  classifyStatus,
  classifyStreamFailure,
  retryDelayMs,
  type RetryDecision,
} from '../protocol/retry-hints';
import type { OpenAIErrorBody } from '../protocol/types';
import { getExchange, type AttemptPolicy, type Exchange, type RetryPlan } from './exchange';
import { toRelayError } from '../protocol/relay-errors';
import { readRequestBody } from './request-body';
import { sendRelayError } from './send-error';
import type { RelayMiddleware } from './stream-transform';

/** What a retry looked like, for logs and metrics. */
export interface RetryEvent {
  reason: string;
  /** The attempt that failed (1 = the first). */
  attempt: number;
  delayMs: number;
  requestId: string;
}

export interface RetryLogger {
  info(object: object, message: string): void;
  /** For a failing `onRetry`; `info` when absent. */
  warn?(object: object, message: string): void;
}

export interface RetryGuardOptions {
  /** Attempts in all, the first included. @default 4 */
  maxAttempts?: number;
  /** Ceiling of the first backoff delay, in ms (full jitter below it). @default 500 */
  baseDelayMs?: number;
  /** Ceiling of every backoff delay, in ms. @default 8000 */
  maxDelayMs?: number;
  /**
   * The longest upstream hint (`retry-after-ms`, `Retry-After`) the relay waits out. A longer one
   * is not retried: the error goes to the client with its headers. @default 60000
   */
  maxRetryAfterMs?: number;
  /**
   * The process-wide budget (retries ≤ `ratio` of requests over a window, at least
   * `minRetries`), an instance to share between routes, or `false` for none. @default {}
   */
  budget?: RetryBudget | RetryBudgetOptions | false;
  /**
   * Hold `response.created` / `in_progress` back until the first output event, so a stream that
   * fails before any output can still be retried invisibly. The trade-off: a client sees its
   * first event later (at most `preludeTimeoutMs`). @default true
   */
  holdPrelude?: boolean;
  /** The longest the prelude is held; then it is released and that attempt is final. @default 10000 */
  preludeTimeoutMs?: number;
  /** Largest request body accepted (it is held in memory for the retries). @default 32 MiB */
  maxBodyBytes?: number;
  /** Randomness for the jitter (tests inject it). @default Math.random */
  random?: () => number;
  /** The clock, for HTTP-date hints. @default Date.now */
  now?: () => number;
  /** Logs one line per retry with its reason. */
  logger?: RetryLogger;
  /**
   * Called for each retry (metrics). An observer: if it throws, the retry still happens (the
   * error is logged through `logger`).
   */
  onRetry?: (event: RetryEvent) => void;
}

function positive(name: string, value: number, integer = false): number {
  if (!Number.isFinite(value) || value < 0 || (integer && !Number.isInteger(value))) {
    throw new TypeError(
      `retryGuard option ${name} must be a non-negative ${integer ? 'integer' : 'number'}`,
    );
  }
  return value;
}

interface ResolvedOptions {
  maxAttempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
  maxRetryAfterMs: number;
  budget: RetryBudget | undefined;
  holdPrelude: boolean;
  preludeTimeoutMs: number;
  maxBodyBytes: number | undefined;
  random: () => number;
  now: () => number;
  logger: RetryLogger | undefined;
  onRetry: ((event: RetryEvent) => void) | undefined;
}

function resolveOptions(options: RetryGuardOptions): ResolvedOptions {
  const maxAttempts = positive('maxAttempts', options.maxAttempts ?? 4, true);
  if (maxAttempts < 1) throw new TypeError('retryGuard option maxAttempts must be at least 1');
  const budget =
    options.budget === false
      ? undefined
      : options.budget instanceof RetryBudget
        ? options.budget
        : new RetryBudget(options.budget ?? {});
  return {
    maxAttempts,
    baseDelayMs: positive('baseDelayMs', options.baseDelayMs ?? 500),
    maxDelayMs: positive('maxDelayMs', options.maxDelayMs ?? 8000),
    maxRetryAfterMs: positive('maxRetryAfterMs', options.maxRetryAfterMs ?? 60_000),
    budget,
    holdPrelude: options.holdPrelude ?? true,
    preludeTimeoutMs: positive('preludeTimeoutMs', options.preludeTimeoutMs ?? 10_000),
    maxBodyBytes: options.maxBodyBytes,
    random: options.random ?? Math.random,
    now: options.now ?? Date.now,
    logger: options.logger,
    onRetry: options.onRetry,
  };
}

function parseBody(body: Buffer): unknown {
  if (body.length === 0) return undefined;
  try {
    return JSON.parse(body.toString('utf8')) as unknown;
  } catch {
    return body.toString('utf8');
  }
}

/** The per-exchange decisions; one instance per client request. */
export class ExchangeRetryPolicy implements AttemptPolicy {
  readonly holdPrelude: boolean;
  readonly preludeTimeoutMs: number;
  private retried = 0;
  private budgetSpent = false;

  constructor(
    private readonly exchange: Exchange,
    private readonly options: ResolvedOptions,
  ) {
    this.holdPrelude = options.holdPrelude;
    this.preludeTimeoutMs = options.preludeTimeoutMs;
  }

  async onStatus(
    status: number,
    headers: Record<string, string | string[] | undefined>,
    body: Buffer,
  ): Promise<RetryPlan | undefined> {
    const parsed = parseBody(body);
    if (status === 400 && isPreviousResponseNotFound(parsed)) {
      // Retried fresh only when the relay's own history makes the input self-contained.
      if (this.exchange.attempts >= this.options.maxAttempts) return undefined;
      for (const hook of this.exchange.anchorLost) {
        if (await hook(this.exchange)) return this.plan('previous_response_not_found', 0);
      }
      return undefined;
    }
    return this.decide(classifyStatus(status, headers, parsed), headers);
  }

  onConnectionError(error: Error): RetryPlan | undefined {
    return this.decide(classifyConnectionError(error), undefined);
  }

  onStreamFailure(error: OpenAIErrorBody | undefined): RetryPlan | undefined {
    return this.decide(classifyStreamFailure(error), undefined);
  }

  finalHeaders(status: number): Record<string, string> {
    const headers: Record<string, string> = { 'x-relay-attempts': String(this.exchange.attempts) };
    // The relay already spent its retries (or may not retry): a client retrying on top of it would
    // multiply the load. openai-node obeys this header.
    if (status >= 400 && (this.retried > 0 || this.budgetSpent))
      headers['x-should-retry'] = 'false';
    return headers;
  }

  private decide(
    decision: RetryDecision,
    headers: Record<string, string | string[] | undefined> | undefined,
  ): RetryPlan | undefined {
    if (!decision.retry || this.exchange.aborted) return undefined;
    if (this.exchange.attempts >= this.options.maxAttempts) return undefined;
    const delay = retryDelayMs(this.exchange.attempts, {
      baseMs: this.options.baseDelayMs,
      maxMs: this.options.maxDelayMs,
      random: this.options.random,
      headers,
      now: this.options.now(),
      maxHintMs: this.options.maxRetryAfterMs,
    });
    if (!delay.retry) return undefined;
    return this.plan(decision.reason, delay.delayMs);
  }

  private plan(reason: string, delayMs: number): RetryPlan | undefined {
    if (this.options.budget && !this.options.budget.tryAcquire()) {
      this.budgetSpent = true;
      this.options.logger?.info(
        { requestId: this.exchange.requestId, reason, attempt: this.exchange.attempts },
        `retry refused reason=${reason} attempt=${this.exchange.attempts} budget=exhausted`,
      );
      return undefined;
    }
    this.retried += 1;
    const event: RetryEvent = {
      reason,
      attempt: this.exchange.attempts,
      delayMs,
      requestId: this.exchange.requestId,
    };
    this.options.logger?.info(
      { ...event },
      `retry reason=${reason} attempt=${event.attempt} delay_ms=${Math.round(delayMs)}`,
    );
    try {
      this.options.onRetry?.(event);
    } catch (error) {
      const logger = this.options.logger;
      const details = {
        requestId: event.requestId,
        error: error instanceof Error ? error.message : String(error),
      };
      const message = 'retry guard: the onRetry callback threw; the retry goes on';
      if (logger?.warn) logger.warn(details, message);
      else logger?.info(details, message);
    }
    return { reason, delayMs };
  }
}

/**
 * Safe retries for the Responses route. Needs the proxy to be given `relayProxyOptions()` (or to
 * be `relayProxy`); in front of a stock proxy it only counts requests.
 *
 * @example
 * ```ts
 * app.post('/v1/responses', express.json(), retryGuard({ maxAttempts: 4 }),
 *   createProxyMiddleware({ target, changeOrigin: true, ...relayProxyOptions() }));
 * ```
 */
export function retryGuard(options: RetryGuardOptions = {}): RelayMiddleware {
  const resolved = resolveOptions(options);
  return (req: IncomingMessage, res: ServerResponse, next) => {
    const exchange = getExchange(req, res);
    if (exchange.attemptPolicy) {
      next();
      return;
    }
    exchange.attemptPolicy = new ExchangeRetryPolicy(exchange, resolved);
    resolved.budget?.recordRequest();
    // Every attempt re-sends the body, so it must be held in memory.
    readRequestBody(exchange, { maxBodyBytes: resolved.maxBodyBytes }).then(
      () => next(),
      (error: unknown) => sendRelayError(exchange, toRelayError(error)),
    );
  };
}
