/**
 * The per-exchange context every middleware of the relay shares: one object per client request,
 * stored on `res.locals`, created by whichever relay middleware runs first. It holds the parsed
 * request body, the stream stages and hooks the middlewares registered, and what the response
 * pipeline learned (the accumulated Response), so a stream is parsed once for all of them.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ResponseAccumulator } from '../protocol/accumulator';
import type {
  OpenAIErrorBody,
  OpenAIErrorEnvelope,
  ResponseCreateBody,
  ResponseObject,
  StreamEvent,
} from '../protocol/types';

/** Pushes an event downstream from a stage (towards the client). */
export type EmitEvent = (event: StreamEvent) => void;

/** How the upstream body ended. */
export type StreamEnd =
  { kind: 'eof' } | { kind: 'error'; error: Error } | { kind: 'stalled'; idleMs: number };

/** What a stage can see of the stream so far (the events already sent downstream of the stages). */
export interface StageContext {
  readonly exchange: Exchange;
  /** The accumulator of every event that left the stages so far. */
  readonly accumulator: ResponseAccumulator;
  /** True once a terminal event (completed/failed/incomplete) left the stages. */
  readonly terminalSent: boolean;
  /**
   * Abandons the upstream body (e.g. a stage's idle timer fired): the upstream connection is
   * destroyed and the stages' `onEnd` runs with `end`.
   */
  abortUpstream(end: StreamEnd): void;
}

/**
 * One step of SSE processing. Stages run in the order their middlewares were mounted; each sees
 * the events the previous one emitted. A stage that wants an event to pass unchanged emits the
 * same object: the pipeline then forwards the upstream's original bytes for it. A stage that
 * changes an event must emit a new object (never mutate the one it was given).
 */
export interface StreamStage {
  readonly name: string;
  /** Called for each event, in order. Returning a promise pauses the stream until it settles. */
  onEvent?(event: StreamEvent, emit: EmitEvent, context: StageContext): void | Promise<void>;
  /** Called once when the upstream body is over (normally or not); may emit final events. */
  onEnd?(end: StreamEnd, emit: EmitEvent, context: StageContext): void | Promise<void>;
}

/** Creates a fresh stage for each upstream attempt of an exchange. */
export type StreamStageFactory = (exchange: Exchange) => StreamStage;

/** An upstream (or gateway) error response as the pipeline buffered it. */
export interface ErrorResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
  /** True when the upstream body was longer than the buffer and was cut. */
  truncated: boolean;
}

/** What an error responder answers instead: a status, headers and an envelope. */
export interface ErrorReplacement {
  status: number;
  headers: Record<string, string>;
  envelope: OpenAIErrorEnvelope;
}

export type ErrorResponder = (
  response: ErrorResponse,
  exchange: Exchange,
) => ErrorReplacement | undefined;

/**
 * Called with the final Response right before the client receives its terminal event (or the
 * JSON body of a non-stream response): the place to store a turn before the client can send the
 * next one.
 */
export type BeforeFinalHook = (
  response: ResponseObject,
  exchange: Exchange,
) => Promise<void> | void;

/** What the retry guard asks the transport to do: try again after `delayMs`. */
export interface RetryPlan {
  delayMs: number;
  reason: string;
}

/**
 * The retry guard's decisions for one exchange. The proxy adapter asks it before anything reached
 * the client; once anything did, it is never asked again.
 */
export interface AttemptPolicy {
  /** Hold the stream's prelude back until the first output event, so early failures stay retryable. */
  readonly holdPrelude: boolean;
  /** The longest the prelude is held (then it is released and the attempt can no longer be retried). */
  readonly preludeTimeoutMs: number;
  /** The upstream answered an error status (its body buffered, bounded). */
  onStatus(
    status: number,
    headers: Record<string, string | string[] | undefined>,
    body: Buffer,
  ): Promise<RetryPlan | undefined>;
  /** The upstream could not be reached, or the connection broke before a response. */
  onConnectionError(error: Error): RetryPlan | undefined;
  /** The stream failed before any output (`error` event, `response.failed`, or a cut: undefined). */
  onStreamFailure(error: OpenAIErrorBody | undefined): RetryPlan | undefined;
  /** Headers for the client's response (`x-relay-attempts`, `x-should-retry`). */
  finalHeaders(status: number): Record<string, string>;
}

/** Rebuilds state before an attempt (e.g. the chaining expansion runs again). */
export type BeforeAttemptHook = (attempt: number, exchange: Exchange) => Promise<void> | void;

/**
 * Asked when the upstream answered `previous_response_not_found`: return true when the next
 * attempt's body was rebuilt so that it no longer needs the anchor (a self-contained history).
 */
export type AnchorLostHook = (exchange: Exchange) => Promise<boolean> | boolean;

const EXCHANGE_KEY = Symbol.for('responses-relay.exchange');

export class Exchange {
  /** The request id the relay uses in logs and `x-request-id` (the client's, or a new one). */
  readonly requestId: string;
  /** The request body as JSON, once read (see `readRequestBody`). */
  body: ResponseCreateBody | undefined;
  /** The body's bytes as the client sent them, when the relay read them itself. */
  rawBody: Buffer | undefined;
  private bodyReplaced = false;
  /** The body as the client sent it (middlewares replace `body`, never this object). */
  clientBody: ResponseCreateBody | undefined;
  /**
   * True when the client asked for a stream (`"stream": true` in the client's own body, never
   * `Accept`), whatever a middleware later sent upstream.
   */
  get streamRequested(): boolean {
    return (this.clientBody ?? this.body)?.stream === true;
  }
  /** Stage factories in mount order, one per name. */
  readonly stages: Array<{ name: string; create: StreamStageFactory }> = [];
  /** Error responders in mount order; the first that answers wins. */
  readonly errorResponders: ErrorResponder[] = [];
  /** Hooks awaited before the final Response reaches the client. */
  readonly beforeFinal: BeforeFinalHook[] = [];
  /** The final Response of the exchange as the client saw it, once known. */
  finalResponse: ResponseObject | undefined;
  /** The number of upstream attempts made so far. */
  attempts = 0;
  /** The retry guard's policy, when one is mounted. */
  attemptPolicy: AttemptPolicy | undefined;
  /** Hooks awaited before every attempt after the first. */
  readonly beforeAttempt: BeforeAttemptHook[] = [];
  /** Hooks asked when the upstream lost the anchor (`previous_response_not_found`). */
  readonly anchorLost: AnchorLostHook[] = [];
  /** True once the client went away: no further attempt starts. */
  aborted = false;
  /**
   * Serve an SSE upstream response as one JSON Response (a non-stream client in front of a
   * stream-only upstream). Set by a middleware that forced `stream: true` upstream.
   */
  aggregateStream = false;
  /**
   * True when the route ends in a relay-aware proxy (`relayProxy()` / `relayProxyOptions()`),
   * which runs the shared pipeline itself: the middlewares then skip wrapping the response (tap
   * mode), and one that answers by itself taps it with `tapResponse(exchange, {}, true)`.
   * `createRelay` sets it; leave it false in front of a stock proxy.
   */
  proxyHandlesResponse = false;
  /** Free-form annotations for logs (tenant hash, session, upstream …); never secrets. */
  readonly annotations: Record<string, string | number | boolean> = {};

  constructor(
    readonly req: IncomingMessage,
    readonly res: ServerResponse,
  ) {
    const given = req.headers['x-request-id'];
    this.requestId =
      typeof given === 'string' && /^[\w.:-]{1,128}$/.test(given) ? given : `req_${randomUUID()}`;
  }

  /** Registers a stage factory once per name (mounting a middleware twice adds it once). */
  addStage(name: string, create: StreamStageFactory): void {
    if (this.stages.some((stage) => stage.name === name)) return;
    this.stages.push({ name, create });
  }

  /** The body the upstream receives: the client's bytes unless a middleware replaced the body. */
  upstreamBody(): Buffer | undefined {
    if (this.body === undefined) return this.rawBody;
    if (!this.bodyReplaced && this.rawBody) return this.rawBody;
    return Buffer.from(JSON.stringify(this.body));
  }

  /** Replaces the body sent upstream (the client's own object is never mutated). */
  replaceBody(body: ResponseCreateBody): void {
    this.clientBody ??= this.body;
    this.body = body;
    this.bodyReplaced = true;
    // A stock proxy with http-proxy-middleware's `fixRequestBody` sends `req.body`.
    (this.req as IncomingMessage & { body?: unknown }).body = body;
  }

  /** True when some middleware needs to see or rewrite the response. */
  get wantsResponse(): boolean {
    return this.stages.length > 0 || this.errorResponders.length > 0 || this.beforeFinal.length > 0;
  }
}

interface LocalsCarrier {
  locals?: Record<string | symbol, unknown>;
}

/** Returns the exchange of this request/response pair, creating it on first use. */
export function getExchange(req: IncomingMessage, res: ServerResponse): Exchange {
  const carrier = res as ServerResponse & LocalsCarrier;
  carrier.locals ??= {};
  const existing = carrier.locals[EXCHANGE_KEY];
  if (existing instanceof Exchange) return existing;
  const exchange = new Exchange(req, res);
  carrier.locals[EXCHANGE_KEY] = exchange;
  return exchange;
}

/** Returns the exchange if a relay middleware already created one. */
export function findExchange(res: ServerResponse): Exchange | undefined {
  const existing = (res as ServerResponse & LocalsCarrier).locals?.[EXCHANGE_KEY];
  return existing instanceof Exchange ? existing : undefined;
}
