/**
 * OpenAI error envelopes: turning whatever an upstream answered into
 * `{"error":{"message","type","param","code"}}`, the in-stream and WebSocket forms of an error,
 * and the questions the middlewares ask about an error (is it `previous_response_not_found`?).
 * Pure functions, no I/O.
 *
 * The relay's own errors (store down, body too large, …) live in relay-errors.ts; retry
 * decisions in retry-hints.ts; secret scrubbing in sanitize.ts.
 */
import { STATUS_CODES } from 'node:http';
import { sanitizeText, truncateText } from './sanitize';
import type {
  ErrorStreamEvent,
  OpenAIErrorBody,
  OpenAIErrorEnvelope,
  WebSocketErrorFrame,
} from './types';
import { isJsonObject } from './types';

/** Default cap on an error message's length (UTF-16 code units, ellipsis included). */
export const DEFAULT_MAX_MESSAGE_LENGTH = 1024;

/** Cap on `type`, `param` and `code` strings copied from an upstream. */
const MAX_FIELD_LENGTH = 256;

/** How much of a non-JSON body is looked at (bounds the work on a huge HTML page). */
const MAX_SCANNED_CHARS = 64 * 1024;

// ---------------------------------------------------------------------------------------------
// Types by status

/**
 * The envelope `type` for an HTTP status, used when an upstream body does not say.
 *
 * | status | type | why |
 * | --- | --- | --- |
 * | 429 | `rate_limit_exceeded` | OpenAI sends `requests`/`tokens` (which limit was hit) or `insufficient_quota`; a relay that does not know which says what happened. It is also the code OpenAI uses |
 * | any other 4xx (400, 401, 403, 404, 409, 413, 415, 422, …) | `invalid_request_error` | what OpenAI sends for client errors, 401 included (`invalid_request_error` / `invalid_api_key`); the SDK picks its error class from the status, never from `type` |
 * | 5xx, and anything that is not 4xx | `server_error` | OpenAI's 5xx type; a 2xx/3xx handed in here is an upstream that failed to answer properly |
 */
export function errorTypeForStatus(status: number): string {
  if (status === 429) return 'rate_limit_exceeded';
  if (status >= 400 && status < 500) return 'invalid_request_error';
  return 'server_error';
}

/**
 * The `type` for a `response.failed` error code (`response.error` has only `code` and `message`).
 * Quota codes keep their own name as type, as OpenAI and the Codex backend do.
 */
export function errorTypeForFailureCode(code: string | null): string {
  switch (code) {
    case null:
    case 'server_error':
    case 'server_is_overloaded':
    case 'slow_down':
    case 'vector_store_timeout':
      return 'server_error';
    case 'rate_limit_exceeded':
      return 'rate_limit_exceeded';
    case 'insufficient_quota':
    case 'usage_limit_reached':
    case 'usage_not_included':
      return code;
    default:
      return 'invalid_request_error';
  }
}

// ---------------------------------------------------------------------------------------------
// Building and recognising envelopes

/** Whether `value` is a complete envelope: an `error` object with the four fields, right types. */
export function isOpenAIErrorEnvelope(value: unknown): value is OpenAIErrorEnvelope {
  return isJsonObject(value) && isOpenAIErrorBody(value.error);
}

/** Whether `value` has exactly the types of an {@link OpenAIErrorBody} (extra members allowed). */
export function isOpenAIErrorBody(value: unknown): value is OpenAIErrorBody {
  return (
    isJsonObject(value) &&
    typeof value.message === 'string' &&
    typeof value.type === 'string' &&
    (value.param === null || typeof value.param === 'string') &&
    (value.code === null || typeof value.code === 'string')
  );
}

/**
 * A complete error body from a partial one: `type` from the status when missing, `param` and
 * `code` null when missing. Nothing is sanitized (use {@link normalizeErrorBody} for upstream
 * input); the fields come out in OpenAI's order.
 */
export function completeErrorBody(
  partial: { message: string; type?: string | null; param?: string | null; code?: string | null },
  status: number,
): OpenAIErrorBody {
  return {
    message: partial.message,
    type: partial.type || errorTypeForStatus(status),
    param: partial.param ?? null,
    code: partial.code ?? null,
  };
}

/** `{error: body}` with a fresh copy of the four fields, in OpenAI's order. */
export function toErrorEnvelope(body: OpenAIErrorBody): OpenAIErrorEnvelope {
  return { error: copyBody(body) };
}

function copyBody(body: OpenAIErrorBody): OpenAIErrorBody {
  return { message: body.message, type: body.type, param: body.param, code: body.code };
}

// ---------------------------------------------------------------------------------------------
// normalizeErrorBody

export interface NormalizeErrorInput {
  /** The upstream's HTTP status. */
  status: number;
  /** Raw bytes, text, or an already parsed JSON value. `undefined`/`null` mean an empty body. */
  body?: Uint8Array | ArrayBuffer | string | unknown;
  /** The upstream's `content-type` (selects the HTML reader; JSON is recognised by content). */
  contentType?: string;
  /** Named in the messages the relay writes, e.g. `openai`. Default: none (`Upstream error …`). */
  provider?: string;
  /** Cap on the message length. Default {@link DEFAULT_MAX_MESSAGE_LENGTH}. */
  maxMessageLength?: number;
}

interface Draft {
  /** The message, before sanitizing and truncating. */
  message: string;
  /** True when `message` is the upstream's own (kept verbatim), false when the relay wrote it. */
  verbatim: boolean;
  type?: unknown;
  param?: unknown;
  code?: unknown;
}

/**
 * Turns any upstream error response into a complete OpenAI error envelope.
 *
 * - A body with an `error` object carrying a `message` (an OpenAI envelope, possibly missing
 *   `type`/`param`/`code`) keeps its message **as is** (Codex shows a 400 body verbatim and the
 *   clients match exact strings such as `previous_response_not_found`'s); missing fields are
 *   filled (`type` from the status, `param`/`code` null).
 * - Everything else gets a message the relay writes, naming the provider and the status:
 *   `Upstream (openai) error 502: Bad Gateway`. Readers: `{"detail":"…"}` (FastAPI; `Unsupported
 *   parameter: X` also sets `param` X and `code` `unsupported_parameter`), `{"detail":[{loc,msg,
 *   type}]}` validation arrays (`param` from the first location, e.g. `input[0].content`),
 *   `{"error":"…"}`, `{"message":…}`, `{"errors":[…]}`, other JSON (compact text), HTML/XML (the
 *   `<title>`, else the text without tags), plain text, invalid JSON (as text), empty bodies.
 *
 * Every string is scrubbed of secrets ({@link sanitizeText}); the message is cut to
 * `maxMessageLength`, the other fields to 256 characters.
 */
export function normalizeErrorBody(input: NormalizeErrorInput): OpenAIErrorEnvelope {
  const status = Number.isInteger(input.status) ? input.status : 502;
  const max = Math.max(1, Math.floor(input.maxMessageLength ?? DEFAULT_MAX_MESSAGE_LENGTH));
  const prefix = messagePrefix(input.provider, status);
  const draft = readBody(input.body, input.contentType ?? '');

  let message: string;
  if (draft === undefined) {
    const reason = STATUS_CODES[status];
    message = reason ? `${prefix}: ${reason} (empty body)` : `${prefix} (empty body)`;
  } else if (draft.verbatim) {
    message = draft.message;
  } else {
    const text = cleanText(draft.message);
    message = text === '' ? `${prefix}: ${STATUS_CODES[status] ?? 'error'}` : `${prefix}: ${text}`;
  }

  return {
    error: {
      message: truncateText(sanitizeText(boundLength(message, max)), max),
      type: field(draft?.type) ?? errorTypeForStatus(status),
      param: field(draft?.param) ?? null,
      code: field(draft?.code) ?? null,
    },
  };
}

function messagePrefix(provider: string | undefined, status: number): string {
  const name = provider === undefined ? '' : cleanText(sanitizeText(provider)).slice(0, 64);
  return name === '' || name.toLowerCase() === 'upstream'
    ? `Upstream error ${status}`
    : `Upstream (${name}) error ${status}`;
}

/** A string field copied from upstream: sanitized, bounded; `undefined` when absent or empty. */
function field(value: unknown): string | undefined {
  if (typeof value !== 'string' || value === '') return undefined;
  return truncateText(sanitizeText(boundLength(value, MAX_FIELD_LENGTH)), MAX_FIELD_LENGTH);
}

/**
 * Cuts text that is far longer than the cap before the (linear but not free) secret scan. The
 * margin keeps every secret that could end up inside the final cap whole, so it is still found.
 */
function boundLength(text: string, max: number): string {
  const bound = Math.max(max * 4, 4096);
  return text.length > bound ? text.slice(0, bound) : text;
}

/** Collapses whitespace and drops control characters (for messages the relay writes). */
function cleanText(text: string): string {
  return (
    text
      // eslint-disable-next-line no-control-regex -- stripping control characters is the point
      .replace(/[\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F]/g, '')
      .replace(/\s+/g, ' ')
      .trim()
  );
}

/** Replaces invalid sequences with U+FFFD; keeps a BOM (stripped by the reader). */
const UTF8 = new TextDecoder('utf-8', { fatal: false, ignoreBOM: true });

function decodeBody(body: unknown): string | undefined | { parsed: unknown } {
  if (body === undefined || body === null) return undefined;
  if (typeof body === 'string') return body;
  // Duck-typed rather than `instanceof`: Buffers and typed arrays may come from another realm.
  if (ArrayBuffer.isView(body)) {
    return UTF8.decode(new Uint8Array(body.buffer, body.byteOffset, body.byteLength));
  }
  if (Object.prototype.toString.call(body) === '[object ArrayBuffer]') {
    return UTF8.decode(new Uint8Array(body as ArrayBuffer));
  }
  return { parsed: body };
}

function readBody(body: unknown, contentType: string): Draft | undefined {
  const decoded = decodeBody(body);
  if (decoded === undefined) return undefined;
  if (typeof decoded !== 'string') return readJson(decoded.parsed);

  const text = decoded.charCodeAt(0) === 0xfeff ? decoded.slice(1) : decoded;
  const trimmed = text.trim();
  if (trimmed === '') return undefined;

  const first = trimmed.charAt(0);
  const jsonType = /\bjson\b/i.test(contentType);
  if (first === '{' || first === '[' || jsonType) {
    try {
      return readJson(JSON.parse(trimmed));
    } catch {
      // Invalid JSON: shown as text below.
    }
  }
  const scanned =
    trimmed.length > MAX_SCANNED_CHARS ? trimmed.slice(0, MAX_SCANNED_CHARS) : trimmed;
  if (/html|xml/i.test(contentType) || (first === '<' && scanned.includes('>'))) {
    return { message: readMarkup(scanned), verbatim: false };
  }
  return { message: scanned, verbatim: false, ...deriveFromMessage(scanned) };
}

function readJson(value: unknown): Draft | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value === 'string') {
    return { message: value, verbatim: false, ...deriveFromMessage(value) };
  }
  if (Array.isArray(value)) {
    // Some gateways wrap the envelope in a one-element array.
    const head: unknown = value[0];
    if (value.length >= 1 && isJsonObject(head) && isJsonObject(head.error)) {
      return readJson(head);
    }
    return { message: compactJson(value), verbatim: false };
  }
  if (!isJsonObject(value)) return { message: String(value), verbatim: false };

  const error = value.error;
  if (isJsonObject(error)) {
    if (typeof error.message === 'string' && error.message.trim() !== '') {
      return {
        message: error.message,
        verbatim: true,
        type: error.type,
        param: error.param,
        code: error.code,
      };
    }
    const text = firstString(error, ['detail', 'msg', 'description', 'error']);
    return {
      message: text ?? firstString(error, ['code', 'type']) ?? compactJson(error),
      verbatim: false,
      type: error.type,
      param: error.param,
      code: error.code,
    };
  }
  if (typeof error === 'string' && error.trim() !== '') {
    // OAuth style: {"error":"invalid_token","error_description":"…"}: the word is the code.
    const description = firstString(value, ['error_description', 'message', 'detail']);
    if (description !== undefined && /^[a-z][a-z0-9_.]*$/.test(error)) {
      return { message: description, verbatim: false, code: error };
    }
    return { message: error, verbatim: false, ...deriveFromMessage(error) };
  }

  const detail = value.detail;
  if (typeof detail === 'string' && detail.trim() !== '') {
    return { message: detail, verbatim: false, ...deriveFromMessage(detail) };
  }
  if (Array.isArray(detail) && detail.length > 0) return readValidationArray(detail);
  if (isJsonObject(detail)) {
    const text = firstString(detail, ['message', 'msg', 'detail']);
    if (text !== undefined) {
      return { message: text, verbatim: false, code: detail.code, ...deriveFromMessage(text) };
    }
  }

  const message = firstString(value, ['message', 'msg', 'title', 'error_description']);
  if (message !== undefined) {
    // A flat body ({message, type?, code?, param?}): keep what it says about itself, except the
    // `type` of an event (`"error"`) or of RFC 7807 problem details (a URI).
    const type =
      typeof value.type === 'string' &&
      /^[a-z][a-z0-9_]*$/.test(value.type) &&
      value.type !== 'error'
        ? value.type
        : undefined;
    const derived = deriveFromMessage(message);
    return {
      message,
      verbatim: false,
      type,
      param: typeof value.param === 'string' ? value.param : derived.param,
      code: typeof value.code === 'string' ? value.code : derived.code,
    };
  }
  if (Array.isArray(value.errors) && value.errors.length > 0) {
    const texts = value.errors
      .slice(0, 10)
      .map((e) =>
        typeof e === 'string'
          ? e
          : isJsonObject(e)
            ? firstString(e, ['message', 'msg'])
            : undefined,
      )
      .filter((t): t is string => t !== undefined);
    if (texts.length > 0) return { message: texts.join('; '), verbatim: false };
  }
  return { message: compactJson(value), verbatim: false };
}

/** FastAPI/pydantic `{"detail":[{loc, msg, type}, …]}`. */
function readValidationArray(items: unknown[]): Draft {
  const parts: string[] = [];
  let param: string | undefined;
  let code: string | undefined;
  for (const item of items.slice(0, 10)) {
    if (!isJsonObject(item)) {
      parts.push(typeof item === 'string' ? item : compactJson(item));
      continue;
    }
    const path = Array.isArray(item.loc) ? locationToParam(item.loc) : undefined;
    const msg = firstString(item, ['msg', 'message']) ?? compactJson(item);
    parts.push(path ? `${path}: ${msg}` : msg);
    if (param === undefined && code === undefined) {
      param = path;
      code = validationCode(item.type);
    }
  }
  if (items.length > 10) parts.push(`(and ${items.length - 10} more)`);
  return { message: parts.join('; '), verbatim: false, param, code };
}

/**
 * `['body', 'input', 0, 'content']` → `input[0].content`: OpenAI's own `param` notation
 * (`messages[0].content`, `tools[0].function.name`). The leading `body`/`query`/`path`/`header`
 * is dropped; a location that is only that (the whole body) gives no param.
 */
export function locationToParam(loc: readonly unknown[]): string | undefined {
  const parts = ['body', 'query', 'path', 'header', 'cookie'].includes(String(loc[0]))
    ? loc.slice(1)
    : loc;
  let out = '';
  for (const part of parts) {
    if (typeof part === 'number' && Number.isInteger(part)) out += `[${part}]`;
    else if (typeof part === 'string' && part !== '') out += out === '' ? part : `.${part}`;
  }
  return out === '' ? undefined : out;
}

/** pydantic error types → the closest OpenAI `code`. */
function validationCode(type: unknown): string {
  if (typeof type !== 'string') return 'invalid_value';
  if (type === 'missing' || type === 'value_error.missing') return 'missing_required_parameter';
  if (type === 'extra_forbidden' || type === 'value_error.extra') return 'unknown_parameter';
  if (/_type$|^type_error/.test(type)) return 'invalid_type';
  return 'invalid_value';
}

/** `param`/`code` a bare message makes obvious (FastAPI backends, the Codex backend). */
function deriveFromMessage(message: string): { param?: string; code?: string } {
  const match =
    /^\s*(Unsupported|Unknown|Unrecognized|Missing required) parameter:?\s*['"`]?([A-Za-z0-9_.[\]-]+)['"`]?/i.exec(
      message,
    );
  if (!match) return {};
  const word = (match[1] ?? '').toLowerCase();
  const code =
    word === 'unsupported'
      ? 'unsupported_parameter'
      : word === 'missing required'
        ? 'missing_required_parameter'
        : 'unknown_parameter';
  return { param: match[2], code };
}

/**
 * The `<title>` of a page, else its text without tags, comments, scripts and styles. A plain
 * forward scan (no backtracking regexes): error pages can be large and hostile.
 */
function readMarkup(markup: string): string {
  // ASCII-only lower-casing keeps indexes aligned with `markup`.
  const lower = markup.replace(/[A-Z]+/g, (c) => c.toLowerCase());
  const titleStart = lower.indexOf('<title');
  if (titleStart !== -1) {
    const open = lower.indexOf('>', titleStart);
    const close = open === -1 ? -1 : lower.indexOf('</title', open);
    if (close !== -1) {
      const title = cleanText(decodeEntities(markup.slice(open + 1, close)));
      if (title !== '') return title;
    }
  }
  let out = '';
  let i = 0;
  while (i < markup.length) {
    const lt = markup.indexOf('<', i);
    if (lt === -1) {
      out += markup.slice(i);
      break;
    }
    if (!/[A-Za-z/!?]/.test(markup.charAt(lt + 1))) {
      // Not a tag ("3 < 4"): plain text.
      out += markup.slice(i, lt + 1);
      i = lt + 1;
      continue;
    }
    out += `${markup.slice(i, lt)} `;
    let end: number;
    if (lower.startsWith('<!--', lt)) {
      const close = lower.indexOf('-->', lt + 4);
      end = close === -1 ? -1 : close + 3;
    } else {
      const block = /^<(script|style)\b/.exec(lower.slice(lt, lt + 8))?.[1];
      const close = block ? lower.indexOf(`</${block}`, lt) : lt;
      const gt = close === -1 ? -1 : lower.indexOf('>', close + 1);
      end = gt === -1 ? -1 : gt + 1;
    }
    if (end === -1) break; // an unclosed tag, comment or script runs to the end
    i = end;
  }
  return decodeEntities(out);
}

const ENTITIES: Record<string, string> = {
  amp: '&',
  lt: '<',
  gt: '>',
  quot: '"',
  apos: "'",
  nbsp: ' ',
};

function decodeEntities(text: string): string {
  return text.replace(/&(#x[0-9a-f]{1,6}|#\d{1,7}|[a-z]{2,6});/gi, (m, name: string) => {
    if (name.startsWith('#')) {
      const code =
        name[1] === 'x' || name[1] === 'X'
          ? parseInt(name.slice(2), 16)
          : parseInt(name.slice(1), 10);
      return code > 0 && code <= 0x10ffff && !(code >= 0xd800 && code <= 0xdfff)
        ? String.fromCodePoint(code)
        : m;
    }
    return ENTITIES[name.toLowerCase()] ?? m;
  });
}

function firstString(obj: Record<string, unknown>, keys: readonly string[]): string | undefined {
  for (const key of keys) {
    const value = obj[key];
    if (typeof value === 'string' && value.trim() !== '') return value;
  }
  return undefined;
}

function compactJson(value: unknown): string {
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

// ---------------------------------------------------------------------------------------------
// Reading errors from any of their forms

/**
 * The error body inside any of the forms the relay meets, or `undefined` if `value` is not an
 * error: an envelope `{error:{…}}`; a bare body `{message,type,param,code}`; an SSE `error`
 * event (flat, nested or hybrid); a WebSocket frame `{type:'error',status,error}`; a
 * `response.failed` event; a `RelayError` (anything with `toEnvelope()`); or JSON text or bytes
 * of these.
 * Missing fields are completed (`type` from `status` or the failure code), nothing is sanitized.
 */
export function extractErrorBody(value: unknown): OpenAIErrorBody | undefined {
  if (ArrayBuffer.isView(value)) {
    return extractErrorBody(
      UTF8.decode(new Uint8Array(value.buffer, value.byteOffset, value.byteLength)),
    );
  }
  if (typeof value === 'string') {
    try {
      return extractErrorBody(JSON.parse(value.trim()));
    } catch {
      return undefined;
    }
  }
  if (!isJsonObject(value)) return undefined;
  if (typeof value.toEnvelope === 'function') {
    const envelope: unknown = (value.toEnvelope as () => unknown)();
    return isOpenAIErrorEnvelope(envelope) ? copyBody(envelope.error) : undefined;
  }
  const fromEvent = errorFromStreamEvent(value);
  if (fromEvent !== undefined) return fromEvent;
  if (isJsonObject(value.error)) return readErrorObject(value.error, value, statusOf(value));
  if (value.type === undefined && typeof value.message === 'string') {
    return readErrorObject(value, value, statusOf(value));
  }
  if (
    typeof value.type === 'string' &&
    typeof value.message === 'string' &&
    value.type !== 'error'
  ) {
    return readErrorObject(value, value, statusOf(value));
  }
  return undefined;
}

function statusOf(value: Record<string, unknown>): number | undefined {
  return typeof value.status === 'number' ? value.status : undefined;
}

/**
 * Reads an error out of a stream event (SSE `data:` or WebSocket frame):
 * - `{type:'error', error:{type,code,message,param}, …}` — the nested (API) and hybrid (relay)
 *   forms, and the WebSocket `{type:'error', status, error, headers}` form; the nested object
 *   wins over flat fields;
 * - `{type:'error', code, message, param}` — the flat (published schema) form;
 * - `{error:{…}}` without `type` (an `event: error` whose data has no `type`);
 * - `{type:'response.failed', response:{error:{code,message}}}`.
 *
 * Returns `undefined` for every other event. The body comes back exactly as carried (complete
 * bodies round-trip through {@link toStreamErrorEvent} / {@link toWebSocketErrorFrame}); missing
 * fields are completed.
 */
export function errorFromStreamEvent(event: unknown): OpenAIErrorBody | undefined {
  if (typeof event === 'string') {
    try {
      return errorFromStreamEvent(JSON.parse(event));
    } catch {
      return undefined;
    }
  }
  if (!isJsonObject(event)) return undefined;
  if (event.type === 'response.failed') {
    const response = event.response;
    const error = isJsonObject(response) ? response.error : undefined;
    if (!isJsonObject(error)) {
      return {
        message: 'The response failed without an error description.',
        type: 'server_error',
        param: null,
        code: null,
      };
    }
    const code = typeof error.code === 'string' ? error.code : null;
    return {
      message: typeof error.message === 'string' ? error.message : 'The response failed.',
      type:
        typeof error.type === 'string' && error.type !== ''
          ? error.type
          : errorTypeForFailureCode(code),
      param: typeof error.param === 'string' ? error.param : null,
      code,
    };
  }
  if (event.type === 'error' || (event.type === undefined && isJsonObject(event.error))) {
    const nested = isJsonObject(event.error) ? event.error : undefined;
    return readErrorObject(nested ?? event, event, statusOf(event));
  }
  return undefined;
}

/** One error object (nested or flat), with the outer event's flat fields as fallbacks. */
function readErrorObject(
  inner: Record<string, unknown>,
  outer: Record<string, unknown>,
  status: number | undefined,
): OpenAIErrorBody {
  const pick = (key: 'message' | 'type' | 'param' | 'code'): unknown =>
    inner[key] !== undefined ? inner[key] : inner === outer ? undefined : outer[key];
  const message = pick('message');
  const rawType = inner.type !== undefined ? inner.type : undefined; // an outer `type` is the event's
  const param = pick('param');
  const code = pick('code');
  const codeValue = typeof code === 'string' ? code : null;
  const type =
    typeof rawType === 'string' && !(inner === outer && rawType === 'error')
      ? rawType
      : status !== undefined
        ? errorTypeForStatus(status)
        : errorTypeForFailureCode(codeValue);
  return {
    message: typeof message === 'string' ? message : (codeValue ?? 'An error occurred.'),
    type,
    param: typeof param === 'string' ? param : null,
    code: codeValue,
  };
}

// ---------------------------------------------------------------------------------------------
// previous_response_not_found

const PREVIOUS_NOT_FOUND_MESSAGE = /\bprevious[ _]response(?:[ _]id)?\b.*\bnot found\b/i;
/** The Codex backend's wording since about 2026-08 (no `param`, `code: invalid_request_error`). */
const INVALID_PREVIOUS_ID_MESSAGE = /^\s*invalid [`'"]?previous_response_id[`'"]?\s*\.?\s*$/i;

/**
 * Whether `value` says the `previous_response_id` is unknown upstream. Accepts every form
 * {@link extractErrorBody} reads (envelope, body, SSE event, WebSocket frame, RelayError, JSON
 * text). Matches when:
 * - `code` is `previous_response_not_found`; or
 * - `type` is `invalid_request_error`, `param` is `previous_response_id`, and `code` is null or
 *   generic (`invalid_request_error`) — so a *different* explicit code on that param (say
 *   `invalid_value` for a malformed id) is not mistaken for a miss; or
 * - the message reads `Previous response … not found`, or is exactly ``Invalid `previous_response_id`.``
 *   (the Codex backend's newer wording, sent without `param`).
 */
export function isPreviousResponseNotFound(value: unknown): boolean {
  const body = extractErrorBody(value);
  if (body === undefined) {
    return typeof value === 'string' && matchesPreviousNotFoundMessage(value);
  }
  if (body.code === 'previous_response_not_found') return true;
  if (
    body.type === 'invalid_request_error' &&
    body.param === 'previous_response_id' &&
    (body.code === null || body.code === 'invalid_request_error')
  ) {
    return true;
  }
  return matchesPreviousNotFoundMessage(body.message);
}

function matchesPreviousNotFoundMessage(message: string): boolean {
  // Real wordings are short; looking at the start bounds the work on a huge body.
  const head = message.length > 2048 ? message.slice(0, 2048) : message;
  return PREVIOUS_NOT_FOUND_MESSAGE.test(head) || INVALID_PREVIOUS_ID_MESSAGE.test(head);
}

// ---------------------------------------------------------------------------------------------
// In-stream and WebSocket forms

/** The hybrid `error` event: flat fields (published schema) and the nested object (what SDKs read). */
export interface HybridErrorStreamEvent extends ErrorStreamEvent {
  type: 'error';
  code: string | null;
  message: string;
  param: string | null;
  sequence_number: number;
  error: OpenAIErrorBody;
}

/**
 * The SSE `error` event in the hybrid shape,
 * `{"type":"error","code","message","param","sequence_number","error":{"type","code","message","param"}}`:
 * the only shape that matches the published flat schema and still becomes a proper `APIError`
 * in openai-node 6.x and 7.x (responses-contract.md §1.5).
 */
export function toStreamErrorEvent(
  error: OpenAIErrorBody,
  sequenceNumber: number,
): HybridErrorStreamEvent {
  return {
    type: 'error',
    code: error.code,
    message: error.message,
    param: error.param,
    sequence_number: sequenceNumber,
    error: { type: error.type, code: error.code, message: error.message, param: error.param },
  };
}

/**
 * The WebSocket error frame Codex honours, `{"type":"error","status":N,"error":{…},"headers":{…}}`.
 * An unwrapped frame is ignored by Codex (it waits for its idle timeout), so this is the only form
 * the bridge sends. `headers` keeps only {@link PRESERVED_ERROR_HEADERS} (`retry-after` & co) and
 * is left out when none remain.
 */
export function toWebSocketErrorFrame(
  status: number,
  error: OpenAIErrorBody,
  headers?: Record<string, string | string[] | undefined>,
): WebSocketErrorFrame {
  const frame: WebSocketErrorFrame = {
    type: 'error',
    status,
    error: { type: error.type, code: error.code, message: error.message, param: error.param },
  };
  const kept = headers ? pickPreservedHeaders(headers) : {};
  if (Object.keys(kept).length > 0) frame.headers = kept;
  return frame;
}

// ---------------------------------------------------------------------------------------------
// Headers kept on error responses

/**
 * Upstream headers copied onto an error the client receives (HTTP response or WebSocket frame):
 * - `retry-after`, `retry-after-ms`: the SDK and Codex wait on them (Codex fails a 429 at once
 *   without `retry-after`);
 * - `x-should-retry`: the upstream's explicit verdict, obeyed by the SDK before anything else (the
 *   retry guard may overwrite it once the relay spent its own attempts);
 * - `x-request-id`: `APIError.requestID`, and what support asks for;
 * - `openai-processing-ms`, `openai-version`, `openai-model`: harmless diagnostics.
 * plus every `x-ratelimit-*` header ({@link PRESERVED_ERROR_HEADER_PREFIXES}).
 *
 * Not kept: `openai-organization`/`openai-project` (a shared gateway's identity is not the
 * tenant's business), `set-cookie`, and anything describing the upstream's body encoding.
 */
export const PRESERVED_ERROR_HEADERS: readonly string[] = Object.freeze([
  'retry-after',
  'retry-after-ms',
  'x-should-retry',
  'x-request-id',
  'openai-processing-ms',
  'openai-version',
  'openai-model',
]);

/** Header name prefixes kept on errors (see {@link PRESERVED_ERROR_HEADERS}). */
export const PRESERVED_ERROR_HEADER_PREFIXES: readonly string[] = Object.freeze(['x-ratelimit-']);

const PRESERVED_SET = new Set(PRESERVED_ERROR_HEADERS);

/** Whether a header (any case) is one an error response keeps. */
export function isPreservedErrorHeader(name: string): boolean {
  const lower = name.toLowerCase();
  return (
    PRESERVED_SET.has(lower) || PRESERVED_ERROR_HEADER_PREFIXES.some((p) => lower.startsWith(p))
  );
}

/**
 * The preserved headers of `headers`, names lower-cased, array values joined with `, `, empty
 * and undefined values dropped.
 */
export function pickPreservedHeaders(
  headers: Record<string, string | string[] | number | undefined>,
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined || !isPreservedErrorHeader(name)) continue;
    const text = Array.isArray(value) ? value.join(', ') : String(value);
    if (text !== '') out[name.toLowerCase()] = text;
  }
  return out;
}
