/**
 * Error-envelope normalization (DESIGN.md §6): every non-2xx a client of the gateway sees is
 * `application/json` `{"error":{"message","type","param","code"}}`, whatever the upstream or the
 * framework produced, and a stream that breaks after it started ends with an OpenAI `error` event
 * and a terminal `response.failed`.
 *
 * - `errorEnvelope(options)`: a middleware mounted in front of any proxy (a stock
 *   http-proxy-middleware instance or `relayProxyOptions()`). It registers an error responder on
 *   the exchange (upstream non-2xx bodies, buffered ≤ 64 KiB by the pipeline) and a stream stage
 *   (in-stream errors, broken streams). Successful responses are not buffered: a JSON body passes
 *   straight through, an SSE stream is forwarded event by event with its original bytes.
 * - `relayErrorHandler(options)`: the Express error handler for what the gateway itself throws
 *   (body parser errors, relay errors, bugs).
 *
 * The decisions (status map, header rules, shapes) live in error-envelope-rules.ts.
 */
import { sendJson } from './send-error';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { DEFAULT_MAX_MESSAGE_LENGTH, toStreamErrorEvent } from '../protocol/errors';
import { relayError } from '../protocol/relay-errors';
import { sanitizeText, truncateText } from '../protocol/sanitize';
import { serializeStreamEvent } from '../protocol/sse';
import { isJsonObject, type OpenAIErrorBody, type StreamEvent } from '../protocol/types';
import { originalMethods } from './client-sink';
import {
  getExchange,
  type ErrorResponder,
  type Exchange,
  type StageContext,
  type StreamStage,
} from './exchange';
import {
  defaultErrorStatus,
  describeError,
  errorHeaders,
  gatewayErrorFor,
  gatewayHeaders,
  rewriteStreamErrorEvent,
  upstreamErrorReplacement,
} from './error-envelope-rules';
import { streamFailureEvents } from './stream-failure';
import { installStage, type RelayMiddleware } from './stream-transform';

/** A pino-compatible logger (`pino()`, `req.log` of pino-http, or anything with these methods). */
export interface ErrorEnvelopeLogger {
  error(object: object, message?: string): void;
  warn?(object: object, message?: string): void;
}

export interface ErrorEnvelopeOptions {
  /**
   * Named in the messages the relay writes for upstream errors that carry no OpenAI envelope:
   * `Upstream (openai) error 502: Bad Gateway`. Default: none (`Upstream error 502: …`).
   */
  provider?: string;
  /** Cap on an error message's length, in UTF-16 code units. @default 1024 */
  maxMessageLength?: number;
  /**
   * The status a client receives for an upstream error status.
   * @default defaultErrorStatus — 4xx and registered 5xx kept, any other status → 502
   */
  mapStatus?: (upstreamStatus: number) => number;
  /**
   * Where the original upstream error (scrubbed of secrets, bounded) and the gateway's own
   * failures are logged. Default: `req.log` when pino-http put one there, else nothing. `false`
   * turns logging off.
   */
  logger?: ErrorEnvelopeLogger | false;
  /** How much of an upstream error body is kept in the log, in characters. @default 4096 */
  maxLoggedBodyLength?: number;
}

const STAGE_NAME = 'error-envelope';

/** Per exchange: what the error handler needs to end a started stream through the stages. */
interface StreamState {
  context?: StageContext;
  ended: boolean;
  /** A failure to report instead of `stream_incomplete` (set by the error handler). */
  pendingFailure?: OpenAIErrorBody;
}

const STREAMS = new WeakMap<Exchange, StreamState>();

function resolveLogger(
  option: ErrorEnvelopeLogger | false | undefined,
  req: IncomingMessage,
): ErrorEnvelopeLogger | undefined {
  if (option === false) return undefined;
  if (option) return option;
  const log = (req as IncomingMessage & { log?: unknown }).log;
  return typeof (log as ErrorEnvelopeLogger | undefined)?.error === 'function'
    ? (log as ErrorEnvelopeLogger)
    : undefined;
}

function logWarn(logger: ErrorEnvelopeLogger | undefined, object: object, message: string): void {
  if (!logger) return;
  try {
    if (typeof logger.warn === 'function') logger.warn(object, message);
    else logger.error(object, message);
  } catch {
    // A failing logger never breaks a response.
  }
}

function logError(logger: ErrorEnvelopeLogger | undefined, object: object, message: string): void {
  if (!logger) return;
  try {
    logger.error(object, message);
  } catch {
    // A failing logger never breaks a response.
  }
}

/** Whether the request asks for a stream (`"stream": true`, never `Accept`), when its body is known. */
function isStreamRequest(req: IncomingMessage, exchange: Exchange): boolean {
  if (exchange.body !== undefined) return exchange.streamRequested;
  const body = (req as IncomingMessage & { body?: unknown }).body;
  return isJsonObject(body) && body.stream === true;
}

function headerSnapshot(
  res: ServerResponse,
): Record<string, string | string[] | number | undefined> {
  return res.getHeaders() as Record<string, string | string[] | number | undefined>;
}

function createStage(
  exchange: Exchange,
  maxMessageLength: number,
  logger: ErrorEnvelopeLogger | undefined,
): StreamStage {
  const state: StreamState = { ended: false };
  STREAMS.set(exchange, state);
  /** The error event the client was sent, if any (at most one reaches it). */
  let errorSent: OpenAIErrorBody | undefined;
  return {
    name: STAGE_NAME,
    onEvent(event, emit, context) {
      state.context = context;
      if (event.type !== 'error') {
        emit(event);
        return;
      }
      if (errorSent !== undefined) {
        // A second error event (another stage closing the stream again) adds nothing: the SDK
        // stops at the first one and Codex ignores both.
        return;
      }
      const rewritten = rewriteStreamErrorEvent(event, maxMessageLength);
      errorSent = rewritten.body;
      if (rewritten.event !== event) {
        logWarn(
          logger,
          {
            requestId: exchange.requestId,
            upstreamEvent: truncateText(sanitizeText(JSON.stringify(event)), 4096),
            envelope: { error: rewritten.body },
          },
          'in-stream error event rewritten to the hybrid shape',
        );
      }
      if (!context.accumulator.started) {
        // Every stream starts with response.created (the SDK insists on it): the one the
        // failure events would add, so the terminal that follows carries the same id.
        const created = streamFailureEvents(context, rewritten.body)[0];
        if (created?.type === 'response.created') emit(created);
      }
      emit(rewritten.event);
    },
    onEnd(end, emit, context) {
      state.context = context;
      state.ended = true;
      if (context.terminalSent) return;
      let failure: OpenAIErrorBody | undefined = errorSent ?? state.pendingFailure;
      if (failure === undefined && end.kind !== 'eof') {
        failure = relayError('stream_incomplete').toErrorBody();
        logWarn(
          logger,
          {
            requestId: exchange.requestId,
            end: end.kind,
            ...(end.kind === 'error' ? { cause: describeError(end.error) } : {}),
            ...(end.kind === 'stalled' ? { idleMs: end.idleMs } : {}),
          },
          'upstream stream broke before its terminal event; closing it with response.failed',
        );
      }
      if (failure === undefined) return;
      for (const event of streamFailureEvents(context, failure)) {
        // After an error event only the terminal is missing.
        if (errorSent !== undefined && event.type === 'error') continue;
        emit(event);
      }
    },
  };
}

/**
 * Normalizes every error a client of the gateway can see into OpenAI's envelope. Mount it on the
 * Responses routes, in front of your own proxy.
 *
 * @example
 * ```ts
 * app.post(['/v1/responses', '/responses'],
 *   express.json({ limit: '32mb' }),
 *   errorEnvelope({ provider: 'openai' }),
 *   createProxyMiddleware({ target: 'https://api.openai.com', changeOrigin: true }));
 * app.use(relayErrorHandler());
 * ```
 */
export function errorEnvelope(options: ErrorEnvelopeOptions = {}): RelayMiddleware {
  const maxMessageLength = Math.max(
    1,
    Math.floor(options.maxMessageLength ?? DEFAULT_MAX_MESSAGE_LENGTH),
  );
  const maxLogged = Math.max(0, Math.floor(options.maxLoggedBodyLength ?? 4096));
  return (req, res, next) => {
    const exchange = getExchange(req, res);
    const logger = resolveLogger(options.logger, req);
    // The gateway's own headers so far (CORS, tracing …): error responses keep them.
    const gateway = gatewayHeaders(headerSnapshot(res));
    const responder: ErrorResponder = (response, current) => {
      try {
        const result = upstreamErrorReplacement(response, {
          provider: options.provider,
          maxMessageLength,
          mapStatus: options.mapStatus,
          requestId: current.requestId,
          gateway,
        });
        logWarn(
          logger,
          {
            requestId: current.requestId,
            provider: options.provider,
            upstreamStatus: response.status,
            status: result.replacement.status,
            kind: result.kind,
            contentType: response.headers['content-type'],
            upstreamBody: truncateText(sanitizeText(result.text), maxLogged),
            upstreamBodyTruncated: response.truncated,
            envelope: result.replacement.envelope,
          },
          'upstream error normalized',
        );
        return result.replacement;
      } catch (error) {
        logError(
          logger,
          { requestId: current.requestId, error: describeError(error) },
          'error envelope failed',
        );
        const fallback = relayError('internal_error');
        return {
          status: defaultErrorStatus(response.status),
          headers: { 'x-request-id': current.requestId },
          envelope: fallback.toEnvelope(),
        };
      }
    };
    if (!exchange.errorResponders.some((r) => (r as { relayEnvelope?: boolean }).relayEnvelope)) {
      (responder as ErrorResponder & { relayEnvelope?: boolean }).relayEnvelope = true;
      exchange.errorResponders.push(responder);
    }
    if (isStreamRequest(req, exchange)) {
      // The pipeline parses streams: ask the upstream for plain bytes (a stock proxy forwards
      // the client's accept-encoding; relayProxyOptions() does the same in proxy mode). Only for
      // stream requests, so a gateway's compression() still sees what a JSON client accepts.
      req.headers['accept-encoding'] = 'identity';
    }
    installStage(req, res, STAGE_NAME, (current) => createStage(current, maxMessageLength, logger));
    next();
  };
}

// ---------------------------------------------------------------------------------------------
// The error handler

export interface RelayErrorHandlerOptions {
  /**
   * Where the original error (message and stack scrubbed of secrets) is logged. Default:
   * `req.log` when pino-http put one there, else nothing. `false` turns logging off.
   */
  logger?: ErrorEnvelopeLogger | false;
  /** Cap on a message taken from a client error (`err.message` of a 4xx). @default 1024 */
  maxMessageLength?: number;
}

/** An Express error handler (four parameters). */
export type RelayErrorHandler = (
  error: unknown,
  req: IncomingMessage,
  res: ServerResponse,
  next: (error?: unknown) => void,
) => void;

function isEventStreamResponse(res: ServerResponse): boolean {
  const type = res.getHeader('content-type');
  return String(Array.isArray(type) ? type[0] : (type ?? ''))
    .toLowerCase()
    .startsWith('text/event-stream');
}

/**
 * The Express error handler for what the gateway itself throws: every error becomes an OpenAI
 * envelope (see `gatewayErrorFor` for the mapping: invalid JSON → 400 `invalid_json`, too large
 * → 400 `payload_too_large`, wrong content type → 400 `unsupported_media_type`, connection
 * failure → 502, timeout → 504, anything unexpected → 500 without the cause or a stack). The
 * original error is logged (scrubbed). `x-request-id` is the exchange's (the client's or a new
 * one). When the response has already started, a stream is ended with an `error` event and a
 * terminal `response.failed`, any other body by destroying the connection (as Express does), so
 * the client sees a failure rather than a truncated success.
 */
export function relayErrorHandler(options: RelayErrorHandlerOptions = {}): RelayErrorHandler {
  const maxMessageLength = Math.max(
    1,
    Math.floor(options.maxMessageLength ?? DEFAULT_MAX_MESSAGE_LENGTH),
  );
  // Four named parameters: Express recognises an error handler by its arity.
  return function relayErrorHandlerMiddleware(error, req, res, _next) {
    const exchange = getExchange(req, res);
    const failure = gatewayErrorFor(error, {
      maxMessageLength,
      contentType: req.headers['content-type'],
    });
    const logger = resolveLogger(options.logger, req);
    const record = {
      requestId: exchange.requestId,
      status: failure.status,
      code: failure.body.code,
      kind: failure.kind,
      error: describeError(error),
    };
    if (failure.status >= 500) logError(logger, record, 'gateway error');
    else logWarn(logger, record, 'request rejected');

    if (res.headersSent || res.writableEnded) {
      endStartedResponse(exchange, res, failure.body);
      return;
    }
    const headers = {
      ...errorHeaders({}, exchange.requestId, gatewayHeaders(headerSnapshot(res))),
      ...failure.headers,
    };
    for (const name of res.getHeaderNames()) res.removeHeader(name);
    // sendJson writes through the original methods: a tapped response skips the pipeline.
    sendJson(res, failure.status, { error: failure.body }, headers);
    // A stream held back before its first byte (a retry guard's prelude) is let go.
    const state = STREAMS.get(exchange);
    if (state?.context && !state.ended) {
      state.context.abortUpstream({ kind: 'error', error: new Error(failure.body.message) });
    }
  };
}

/** Ends a response whose head (and maybe part of its body) the client already has. */
function endStartedResponse(exchange: Exchange, res: ServerResponse, body: OpenAIErrorBody): void {
  if (res.writableEnded || res.destroyed) return;
  const state = STREAMS.get(exchange);
  if (state?.context && !state.ended) {
    // The stream runs through the pipeline: let the stages close it (failure events with proper
    // sequence numbers unless its terminal event already went out; the upstream stopped).
    state.pendingFailure = body;
    state.context.abortUpstream({ kind: 'error', error: new Error(body.message) });
    return;
  }
  if (isEventStreamResponse(res) && !state?.context?.terminalSent) {
    const raw = originalMethods(res);
    const sequence = (state?.context?.accumulator.lastSequenceNumber ?? -1) + 1;
    const events: StreamEvent[] = [toStreamErrorEvent(body, sequence)];
    (raw.write as (chunk: string) => boolean).call(
      res,
      events.map((event) => serializeStreamEvent(event)).join(''),
    );
    (raw.end as () => void).call(res);
    return;
  }
  res.destroy();
}
