/**
 * The decisions behind `errorEnvelope()` and `relayErrorHandler()`, with no I/O: which status a
 * client receives for an upstream status, how a buffered upstream error becomes an OpenAI
 * envelope (and which headers go with it), how an in-stream `error` event of any shape becomes
 * the hybrid event, and how anything the gateway throws becomes an envelope. The middlewares in
 * error-envelope.ts only wire these into the exchange.
 */
import { classifyConnectionError } from '../protocol/retry-hints';
import { STATUS_CODES } from 'node:http';
import zlib from 'node:zlib';
import {
  DEFAULT_MAX_MESSAGE_LENGTH,
  errorFromStreamEvent,
  errorTypeForStatus,
  isOpenAIErrorEnvelope,
  isPreviousResponseNotFound,
  normalizeErrorBody,
  pickPreservedHeaders,
  toStreamErrorEvent,
  type HybridErrorStreamEvent,
} from '../protocol/errors';
import { isRelayError, relayError, toRelayError, type RelayError } from '../protocol/relay-errors';
import { isSensitiveHeader, sanitizeText, truncateText } from '../protocol/sanitize';
import {
  isJsonObject,
  type OpenAIErrorBody,
  type OpenAIErrorEnvelope,
  type StreamEvent,
} from '../protocol/types';
import type { ErrorReplacement, ErrorResponse } from './exchange';

type HeaderBag = Record<string, string | string[] | number | undefined>;

// ---------------------------------------------------------------------------------------------
// Status

/**
 * The status a client receives for an upstream error status:
 *
 * | upstream | client | why |
 * | --- | --- | --- |
 * | 413, 415 | 400 | the request itself must change: Codex retries a 413/415 several times with the same body, a 400 fails at once and shows the message (the relay's own `payload_too_large` / `unsupported_media_type` are 400 for the same reason) |
 * | any other 4xx | the same | the client's request is what failed; clients branch on it (Codex: 400 fatal, 429 retried with `Retry-After`, other 4xx retried; the SDK picks its error class from it) |
 * | a registered 5xx (500–511) | the same | 503 vs 500 vs 504 is meaningful and every client retries 5xx alike |
 * | an unregistered 5xx (Cloudflare's 520–527, 598, 599, …) | 502 | from the gateway's point of view the upstream failed to answer properly; the message still names the upstream's own status |
 * | anything else (≥ 600) | 502 | same |
 */
export function defaultErrorStatus(upstreamStatus: number): number {
  if (!Number.isInteger(upstreamStatus)) return 502;
  if (upstreamStatus === 413 || upstreamStatus === 415) return 400;
  if (upstreamStatus >= 400 && upstreamStatus < 500) return upstreamStatus;
  if (upstreamStatus >= 500 && upstreamStatus < 600 && STATUS_CODES[upstreamStatus] !== undefined) {
    return upstreamStatus;
  }
  return 502;
}

function safeStatus(status: unknown): number {
  return typeof status === 'number' && Number.isInteger(status) && status >= 400 && status <= 599
    ? status
    : 502;
}

// ---------------------------------------------------------------------------------------------
// Headers

/** Headers of the gateway's own response that never describe an error envelope. */
const NOT_CARRIED = new Set([
  'content-type',
  'content-length',
  'content-encoding',
  'content-range',
  'content-md5',
  'content-disposition',
  'transfer-encoding',
  'etag',
  'last-modified',
  'accept-ranges',
  'connection',
  'keep-alive',
  'trailer',
  'x-request-id',
]);

/**
 * The headers the gateway itself had set on the response before the proxy ran (CORS,
 * `x-powered-by`, its own tracing headers …), minus those that describe a body. Error responses
 * keep them, as the gateway's successful responses do.
 */
export function gatewayHeaders(headers: HeaderBag): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    const lower = name.toLowerCase();
    if (value === undefined || NOT_CARRIED.has(lower)) continue;
    out[lower] = Array.isArray(value) ? value.join(', ') : String(value);
  }
  return out;
}

/** A header value that may be shown to the client: no line breaks, nothing secret-looking. */
function presentable(value: string): boolean {
  return !/[\r\n]/.test(value) && sanitizeText(value) === value;
}

function firstHeader(headers: HeaderBag, name: string): string | undefined {
  const value = headers[name];
  if (Array.isArray(value)) return value[0];
  return value === undefined ? undefined : String(value);
}

/**
 * The headers of an error the client receives: the gateway's own (see {@link gatewayHeaders};
 * never a credential header such as `set-cookie`),
 * CORS headers, the relay's own `x-relay-*` (e.g. the retry guard's attempt count), the preserved
 * upstream headers (`retry-after`, `retry-after-ms`,
 * `x-should-retry`, `x-ratelimit-*`, `x-request-id`, `openai-*` diagnostics; see
 * `pickPreservedHeaders`), and `x-request-id`: the upstream's, else the exchange's (the client's
 * own or a generated `req_…`). Values that look like credentials are dropped.
 */
export function errorHeaders(
  upstream: HeaderBag,
  requestId: string,
  gateway: Record<string, string> = {},
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(gateway)) {
    if (!isSensitiveHeader(name)) out[name] = value;
  }
  for (const [name, value] of Object.entries(upstream)) {
    const lower = name.toLowerCase();
    if (value === undefined) continue;
    if (!lower.startsWith('access-control-') && !lower.startsWith('x-relay-')) continue;
    const text = Array.isArray(value) ? value.join(', ') : String(value);
    if (presentable(text)) out[lower] = text;
  }
  for (const [name, value] of Object.entries(pickPreservedHeaders(upstream))) {
    if (presentable(value)) out[name] = value;
  }
  const upstreamId = out['x-request-id'];
  if (upstreamId === undefined || upstreamId.trim() === '' || upstreamId.length > 256) {
    out['x-request-id'] = requestId;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Upstream error bodies

/** The most a compressed error body may expand to before it is cut. */
const MAX_DECODED_BYTES = 256 * 1024;

/**
 * The body's bytes without their `content-encoding` (gzip, deflate, br): a stock proxy forwards
 * the client's `accept-encoding`, and error bodies are often compressed. A body cut short (the
 * pipeline keeps 64 KiB) gives what could be decoded. `undefined` when the encoding is unknown.
 */
export function decodeErrorBody(
  body: Buffer,
  contentEncoding: string | undefined,
): Buffer | undefined {
  const encoding = (contentEncoding ?? '').trim().toLowerCase();
  if (encoding === '' || encoding === 'identity' || body.length === 0) return body;
  const options = {
    maxOutputLength: MAX_DECODED_BYTES,
    finishFlush: zlib.constants.Z_SYNC_FLUSH,
  };
  try {
    switch (encoding) {
      case 'gzip':
      case 'x-gzip':
        return zlib.gunzipSync(body, options);
      case 'deflate':
        return body[0] === 0x78
          ? zlib.inflateSync(body, options)
          : zlib.inflateRawSync(body, options);
      case 'br':
        return zlib.brotliDecompressSync(body, {
          maxOutputLength: MAX_DECODED_BYTES,
          finishFlush: zlib.constants.BROTLI_OPERATION_FLUSH,
        });
      default:
        return undefined;
    }
  } catch {
    return undefined;
  }
}

/** What http-proxy-middleware's default error handler writes (`errorResponsePlugin`). */
const HPM_ERROR_TEXT = /^Error occurred while trying to proxy: /;

/**
 * Whether a body is the plain text http-proxy-middleware's default error handler writes when it
 * could not get a response from the upstream: `Error occurred while trying to proxy: host/url`,
 * status 504 (ECONNREFUSED, ECONNRESET, ENOTFOUND, ETIMEDOUT — and a `proxyTimeout`, which
 * surfaces as ECONNRESET), 502 (an unparsable upstream response, `HPE_INVALID_*`) or 500 (any
 * other errno). The errno itself is not visible to a middleware.
 */
export function isProxyErrorText(
  status: number,
  contentType: string | undefined,
  text: string,
): boolean {
  if (status !== 500 && status !== 502 && status !== 504) return false;
  const type = (contentType ?? '').toLowerCase();
  if (type !== '' && !type.startsWith('text/plain')) return false;
  return HPM_ERROR_TEXT.test(text);
}

/**
 * What a client receives for http-proxy-middleware's plain-text failure. Its 504 covers a refused,
 * reset or timed-out connection and a DNS failure alike, so the relay says so and answers 502
 * `relay_upstream_unreachable`, the code `relayProxyOptions()` uses for a connection failure (a
 * proxy built with `relayProxyOptions()` sees the errno and answers 504 for a real timeout). Its
 * 502 (an upstream answer that could not be parsed) is `relay_upstream_invalid_response`.
 */
export function proxyFailureBody(status: number, provider?: string): OpenAIErrorBody {
  if (status === 502) return relayError('upstream_invalid_response').toErrorBody();
  const name = provider ? truncateText(sanitizeText(provider), 64) : '';
  const upstream = name === '' ? 'the upstream' : `the upstream (${name})`;
  return {
    message: `The relay could not get a response from ${upstream}: the connection was refused, reset or timed out, or the host was not found. Please retry your request.`,
    type: 'server_error',
    param: null,
    code: 'relay_upstream_unreachable',
  };
}

/** The first `data:` line of an SSE body that carries an error (an error answered as a stream). */
function errorFromEventStream(text: string): OpenAIErrorBody | undefined {
  const lines = text.slice(0, 64 * 1024).split(/\r\n|\r|\n/);
  for (const line of lines) {
    if (!line.startsWith('data:')) continue;
    const data = line.slice(line.charAt(5) === ' ' ? 6 : 5);
    const found = errorFromStreamEvent(data);
    if (found !== undefined) return found;
  }
  return undefined;
}

function parseJson(text: string): unknown {
  const trimmed = text.trim();
  const first = trimmed.charAt(0);
  if (first !== '{' && first !== '[') return undefined;
  try {
    return JSON.parse(trimmed) as unknown;
  } catch {
    return undefined;
  }
}

/** A copy of an error body whose strings are scrubbed of secrets and bounded. */
export function sanitizeErrorBody(
  body: OpenAIErrorBody,
  maxMessageLength: number,
): OpenAIErrorBody {
  const bound = (value: string, max: number): string =>
    truncateText(sanitizeText(value.length > max * 4 ? value.slice(0, max * 4) : value), max);
  return {
    message: bound(body.message, maxMessageLength),
    type: bound(body.type, 256),
    param: body.param === null ? null : bound(body.param, 256),
    code: body.code === null ? null : bound(body.code, 256),
  };
}

/**
 * `previous_response_not_found` in its canonical form: the upstream's message (the Codex client
 * matches the code, not the text), `invalid_request_error`, `param: previous_response_id`.
 */
function canonicalPreviousNotFound(body: OpenAIErrorBody): OpenAIErrorBody {
  return {
    message: body.message,
    type: 'invalid_request_error',
    param: 'previous_response_id',
    code: 'previous_response_not_found',
  };
}

export interface UpstreamErrorOptions {
  /** Named in the messages the relay writes. */
  provider?: string;
  /** Cap on the message length. @default 1024 */
  maxMessageLength?: number;
  /** @default {@link defaultErrorStatus} */
  mapStatus?: (upstreamStatus: number) => number;
  /** The exchange's request id (used when the upstream sent none). */
  requestId: string;
  /** The gateway's own headers to keep (see {@link gatewayHeaders}). */
  gateway?: Record<string, string>;
}

/** How an upstream error was read, for the log. */
export type UpstreamErrorKind =
  'envelope' | 'previous_response_not_found' | 'proxy_error_text' | 'event_stream' | 'other';

export interface UpstreamErrorResult {
  replacement: ErrorReplacement;
  kind: UpstreamErrorKind;
  /** The upstream body as text (decoded; not sanitized, not bounded). */
  text: string;
}

/**
 * The envelope, status and headers a client receives instead of an upstream error response.
 * See {@link defaultErrorStatus} for statuses and {@link errorHeaders} for headers; the envelope:
 * - an OpenAI envelope keeps its message verbatim (scrubbed, bounded) and gets every missing
 *   field; `{"detail": …}`, validation arrays, `{"error": "…"}`, `{"message": …}`, text, HTML,
 *   empty bodies get a message naming the provider and the upstream status (`normalizeErrorBody`);
 * - `previous_response_not_found` in any of its forms (OpenAI's, the Codex backend's
 *   ``Invalid `previous_response_id`.`` without `param`, the WebSocket frame, the flat event)
 *   comes out as OpenAI's exact envelope: status 400, `invalid_request_error`,
 *   `param: previous_response_id`, `code: previous_response_not_found` (recognised by its code
 *   at any status, by its wording only on a 4xx);
 * - http-proxy-middleware's plain-text failure becomes `relay_upstream_unreachable` (502; or
 *   `relay_upstream_invalid_response` for its 502), the same envelope `relayProxyOptions()`
 *   answers for a connection failure;
 * - an error answered as an event stream is read from its first `error` event.
 */
export function upstreamErrorReplacement(
  response: ErrorResponse,
  options: UpstreamErrorOptions,
): UpstreamErrorResult {
  const max = Math.max(1, Math.floor(options.maxMessageLength ?? DEFAULT_MAX_MESSAGE_LENGTH));
  const mapStatus = options.mapStatus ?? defaultErrorStatus;
  const headers = response.headers;
  const contentType = firstHeader(headers, 'content-type');
  const decoded = decodeErrorBody(response.body, firstHeader(headers, 'content-encoding'));
  const text = decoded === undefined ? '' : decoded.toString('utf8');
  const outHeaders = errorHeaders(headers, options.requestId, options.gateway);
  const result = (
    status: number,
    envelope: OpenAIErrorEnvelope,
    kind: UpstreamErrorKind,
  ): UpstreamErrorResult => ({
    replacement: { status: safeStatus(status), headers: outHeaders, envelope },
    kind,
    text,
  });

  if (decoded === undefined) {
    const envelope = normalizeErrorBody({
      status: response.status,
      body: `(a body with content-encoding ${firstHeader(headers, 'content-encoding') ?? ''})`,
      contentType: 'text/plain',
      provider: options.provider,
      maxMessageLength: max,
    });
    return result(mapStatus(response.status), envelope, 'other');
  }

  if (isProxyErrorText(response.status, contentType, text)) {
    return result(
      502,
      { error: proxyFailureBody(response.status, options.provider) },
      'proxy_error_text',
    );
  }

  let parsed: unknown;
  let kind: UpstreamErrorKind = 'other';
  if ((contentType ?? '').toLowerCase().startsWith('text/event-stream')) {
    const fromStream = errorFromEventStream(text);
    if (fromStream !== undefined) {
      parsed = { error: fromStream };
      kind = 'event_stream';
    }
  }
  parsed ??= parseJson(text);

  const envelope = normalizeErrorBody({
    status: response.status,
    body: parsed ?? decoded,
    contentType,
    provider: options.provider,
    maxMessageLength: max,
  });
  if (kind === 'other' && isOpenAIErrorEnvelope(parsed)) kind = 'envelope';

  const original = errorFromStreamEvent(parsed) ?? envelope.error;
  if (
    // The code itself is unambiguous at any status; a wording match only on a client error.
    original.code === 'previous_response_not_found' ||
    (response.status >= 400 &&
      response.status < 500 &&
      (isPreviousResponseNotFound(parsed ?? text) || isPreviousResponseNotFound(envelope)))
  ) {
    const body = sanitizeErrorBody(
      { ...original, message: isJsonObject(parsed) ? original.message : envelope.error.message },
      max,
    );
    return result(400, { error: canonicalPreviousNotFound(body) }, 'previous_response_not_found');
  }
  if (envelope.error.code === null && (response.status === 413 || response.status === 415)) {
    // Said by the status only (an nginx page): the code the relay uses for the same condition.
    envelope.error.code = response.status === 413 ? 'payload_too_large' : 'unsupported_media_type';
  }
  return result(mapStatus(response.status), envelope, kind);
}

// ---------------------------------------------------------------------------------------------
// In-stream errors

export interface StreamErrorRewrite {
  /** The event to send: the original object when it already had the hybrid shape. */
  event: StreamEvent;
  /** The error it carries. */
  body: OpenAIErrorBody;
}

const HYBRID_KEYS = new Set(['type', 'code', 'message', 'param', 'sequence_number', 'error']);

function sameHybrid(event: StreamEvent, target: HybridErrorStreamEvent): boolean {
  if (Object.keys(event).some((key) => !HYBRID_KEYS.has(key))) return false;
  const inner = event.error;
  return (
    event.code === target.code &&
    event.message === target.message &&
    event.param === target.param &&
    isJsonObject(inner) &&
    Object.keys(inner).length === 4 &&
    inner.type === target.error.type &&
    inner.code === target.error.code &&
    inner.message === target.error.message &&
    inner.param === target.error.param
  );
}

/**
 * An in-stream `error` event of any shape (flat, nested, hybrid, the WebSocket frame with
 * `status`) as the hybrid event: the flat fields of the published schema plus the nested
 * `error:{type,code,message,param}` the live API sends, so openai 6.x and 7.x both raise an
 * `APIError`. The original message and code are kept (only scrubbed and bounded);
 * `previous_response_not_found` in any wording gets its canonical code and param. An event that
 * already has that exact shape is returned as is (so its original bytes are forwarded).
 */
export function rewriteStreamErrorEvent(
  event: StreamEvent,
  maxMessageLength: number = DEFAULT_MAX_MESSAGE_LENGTH,
): StreamErrorRewrite {
  const extracted = errorFromStreamEvent(event) ?? {
    message: 'An error occurred.',
    type: 'server_error',
    param: null,
    code: null,
  };
  if (extracted.message.trim() === '') {
    extracted.message =
      extracted.code !== null && extracted.code.trim() !== ''
        ? extracted.code
        : 'The upstream sent an error event without a message.';
  }
  let body = sanitizeErrorBody(extracted, Math.max(1, Math.floor(maxMessageLength)));
  if (isPreviousResponseNotFound(event)) body = canonicalPreviousNotFound(body);
  const sequence = event.sequence_number;
  const target = toStreamErrorEvent(
    body,
    typeof sequence === 'number' && Number.isInteger(sequence) ? sequence : -1,
  );
  return sameHybrid(event, target) ? { event, body } : { event: target, body };
}

// ---------------------------------------------------------------------------------------------
// What the gateway throws

/** An error the gateway answers itself: status, body, extra headers, and what caused it. */
export interface GatewayError {
  status: number;
  body: OpenAIErrorBody;
  headers: Record<string, string>;
  /** The registry kind, or `http_error` for an http-errors style error with its own status. */
  kind: string;
}

/** What a connection failure was, by the same rules the retry guard uses. */
function connectionKind(error: unknown): 'unreachable' | 'timeout' | undefined {
  const decision = classifyConnectionError(error);
  if (!decision.retry) return undefined;
  return decision.reason === 'timeout' ? 'timeout' : 'unreachable';
}

function fromRelayError(error: RelayError): GatewayError {
  return {
    status: error.status,
    body: error.toErrorBody(),
    headers: { ...error.headers },
    kind: error.kind,
  };
}

function numericStatus(error: object): number | undefined {
  const e = error as { status?: unknown; statusCode?: unknown };
  const status = typeof e.status === 'number' ? e.status : e.statusCode;
  return typeof status === 'number' && Number.isInteger(status) && status >= 400 && status <= 599
    ? status
    : undefined;
}

/**
 * Anything the gateway throws (or passes to `next(err)`) as the error a client receives:
 * - a `RelayError` as itself; body-parser's errors by their `type` (`toRelayError`): invalid
 *   JSON → 400 `invalid_json`, too large → 400 `payload_too_large`, unsupported charset or
 *   encoding → 400 `unsupported_media_type`;
 * - any other error carrying status 413 or 415 → `payload_too_large` / `unsupported_media_type`
 *   (400: Codex retries a 413 and a 415, resending the same request);
 * - an http-errors style client error (`status`/`statusCode` 4xx): that status, its message
 *   (scrubbed; the status text when `expose` is false), `invalid_request_error`
 *   (`rate_limit_exceeded` for 429);
 * - a connection failure (`ECONNREFUSED`, `ENOTFOUND`, `ECONNRESET`, undici's socket errors, also
 *   as the `cause` of a `fetch failed`) → 502 `relay_upstream_unreachable`; a timeout
 *   (`ETIMEDOUT`, undici's timeouts, a `TimeoutError`) → 504 `relay_upstream_timeout`;
 * - an http-errors style server error other than 500 (502, 503, 504 …): that status, a generic
 *   message, `server_error`;
 * - anything else → 500 `internal_error`, whose message never carries the cause or a stack.
 */
export function gatewayErrorFor(
  error: unknown,
  options: { maxMessageLength?: number; contentType?: string } = {},
): GatewayError {
  const maxMessageLength = options.maxMessageLength ?? DEFAULT_MAX_MESSAGE_LENGTH;
  if (isRelayError(error)) return fromRelayError(error);
  const known = toRelayError(error);
  if (known.kind === 'unsupported_media_type' && options.contentType) {
    // The request's whole content type says more than the charset or encoding alone.
    return fromRelayError(
      relayError('unsupported_media_type', { contentType: options.contentType, cause: error }),
    );
  }
  if (known.kind !== 'internal_error') return fromRelayError(known);
  if (typeof error === 'object' && error !== null) {
    const status = numericStatus(error);
    if (status === 413) {
      const limit = (error as { limit?: unknown }).limit;
      return fromRelayError(
        relayError('payload_too_large', { limit: typeof limit === 'number' ? limit : '(unknown)' }),
      );
    }
    if (status === 415) {
      return fromRelayError(
        relayError('unsupported_media_type', { contentType: options.contentType ?? '(unknown)' }),
      );
    }
    const expose = (error as { expose?: unknown }).expose;
    if (status !== undefined && status < 500) {
      const raw = (error as { message?: unknown }).message;
      const message =
        expose !== false && typeof raw === 'string' && raw.trim() !== ''
          ? raw
          : (STATUS_CODES[status] ?? 'The request was rejected.');
      const code = (error as { code?: unknown }).code;
      return {
        status,
        body: sanitizeErrorBody(
          {
            message,
            type: errorTypeForStatus(status),
            param: null,
            code: typeof code === 'string' && /^[a-z][a-z0-9_]*$/.test(code) ? code : null,
          },
          maxMessageLength,
        ),
        headers: {},
        kind: 'http_error',
      };
    }
    const connection = connectionKind(error);
    if (connection === 'timeout') return fromRelayError(relayError('upstream_timeout'));
    if (connection === 'unreachable') return fromRelayError(relayError('upstream_unreachable'));
    if (status !== undefined && status > 500) {
      return {
        status,
        body: {
          message: `The gateway could not process your request (${status} ${STATUS_CODES[status] ?? 'error'}). Please retry your request.`,
          type: 'server_error',
          param: null,
          code: 'server_error',
        },
        headers: {},
        kind: 'http_error',
      };
    }
  }
  return fromRelayError(relayError('internal_error'));
}

// ---------------------------------------------------------------------------------------------
// Logging

/** An error as plain data for a log line: name, code, scrubbed message and stack. */
export function describeError(error: unknown): Record<string, unknown> {
  if (!(error instanceof Error)) {
    return { type: typeof error, message: truncateText(sanitizeText(String(error)), 2048) };
  }
  const out: Record<string, unknown> = {
    type: error.name,
    message: truncateText(sanitizeText(error.message), 2048),
  };
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'string' || typeof code === 'number') out.code = code;
  if (typeof error.stack === 'string') out.stack = truncateText(sanitizeText(error.stack), 8192);
  const cause = (error as { cause?: unknown }).cause;
  if (cause !== undefined && cause !== error) {
    out.cause =
      cause instanceof Error
        ? { type: cause.name, message: truncateText(sanitizeText(cause.message), 2048) }
        : truncateText(sanitizeText(String(cause)), 2048);
  }
  return out;
}
