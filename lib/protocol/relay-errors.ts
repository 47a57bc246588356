/**
 * The one registry of errors the relay itself produces (fastify style: one table, one class).
 * Each entry is the OpenAI envelope the client receives — `status`, `type`, `code`, `param` and a
 * message template with `{name}` placeholders — so the middlewares, the docs and the tests all
 * read the same table. Upstream errors are not here: errors.ts normalizes those.
 *
 * Status choices follow how the clients react (codex-wire.md §0.10, responses-contract.md §3):
 * Codex treats a 400 as fatal and shows its body verbatim, but retries 401/403/404/409/413/422
 * and every 5xx; the openai SDK retries 408/409/429/5xx. So a permanent problem the caller must
 * fix is a 400 (retrying it cannot help), and only conditions that may clear by themselves get a
 * retryable status.
 */
import { sanitizeText, truncateText } from './sanitize';
import type { OpenAIErrorBody, OpenAIErrorEnvelope } from './types';

/** One registry entry. */
export interface RelayErrorSpec {
  readonly status: number;
  readonly type: string;
  /** The envelope's `code` (null where OpenAI's own error has none). */
  readonly code: string | null;
  readonly param: string | null;
  /** Template; `{name}` placeholders are filled from the details given to {@link relayError}. */
  readonly message: string;
  /** Optional sentences a caller may add by name (`details.reason`). */
  readonly reasons?: Readonly<Record<string, string>>;
  /** Headers always sent with this error. */
  readonly headers?: Readonly<Record<string, string>>;
}

/**
 * Every error the relay produces. Codes the relay invents start with `relay_`; codes OpenAI
 * already uses for the same condition are reused as is so clients keep matching them.
 */
export const RELAY_ERRORS = {
  // --- the request ------------------------------------------------------------------------
  invalid_json: {
    status: 400,
    type: 'invalid_request_error',
    code: 'invalid_json',
    param: null,
    message: 'We could not parse the JSON body of your request.',
    reasons: {
      not_an_object: 'The body must be a JSON object.',
      syntax: 'The body is not valid JSON.',
      empty: 'The body is empty.',
      too_deep: 'The body is nested too deeply.',
    },
  },
  /**
   * 400, not 413: the Codex CLI retries a 413 several times, re-sending the same oversized
   * payload each time, while it fails a 400 at once and shows its message; the openai SDK retries
   * neither. Peers answer the same way (400 `payload_too_large`, param `input`: nearly every byte
   * of a Responses body is `input`).
   */
  payload_too_large: {
    status: 400,
    type: 'invalid_request_error',
    code: 'payload_too_large',
    param: 'input',
    message:
      'The request body is larger than the limit of {limit} bytes. Shorten or compact the input and try again.',
  },
  /** 400 rather than 415 for the same reason as payload_too_large: Codex would retry a 415. */
  unsupported_media_type: {
    status: 400,
    type: 'invalid_request_error',
    code: 'unsupported_media_type',
    param: null,
    message: "Unsupported content type '{contentType}': send the request body as application/json.",
  },
  /** A WebSocket message the bridge does not handle (anything but `response.create`). */
  unsupported_message_type: {
    status: 400,
    type: 'invalid_request_error',
    code: 'relay_unsupported_message_type',
    param: 'type',
    message: "Unsupported WebSocket message type '{type}': only 'response.create' is accepted.",
  },
  /** No credential to derive a tenant from (the relay never keys sessions on nothing). */
  missing_credentials: {
    status: 401,
    type: 'invalid_request_error',
    code: 'relay_missing_credentials',
    param: null,
    message:
      'The relay could not identify the caller. Send your API key in the Authorization header (Bearer auth).',
  },

  // --- conversation state (previous_response_id) --------------------------------------------
  /**
   * OpenAI's exact envelope. Codex resends the full history only on this code, so it must stay
   * byte for byte. Also the answer for another tenant's id: ownership is never revealed.
   */
  previous_response_not_found: {
    status: 400,
    type: 'invalid_request_error',
    code: 'previous_response_not_found',
    param: 'previous_response_id',
    message: "Previous response with id '{id}' not found.",
  },
  /** GET/DELETE/cancel of an unknown (or another tenant's) response: OpenAI's exact envelope. */
  response_not_found: {
    status: 404,
    type: 'invalid_request_error',
    code: null,
    param: null,
    message: "Response with id '{id}' not found.",
  },
  previous_response_with_conversation: {
    status: 400,
    type: 'invalid_request_error',
    code: 'invalid_value',
    param: 'conversation',
    message:
      "Mutually exclusive parameters: 'previous_response_id' and 'conversation'. Provide only one of them.",
  },
  /**
   * Caps on stored history (DESIGN.md §4): a clear 400, never a silently truncated history.
   * 400 (fatal for Codex, not retried by the SDK) because the same chain stays too large.
   * `param` is null on purpose: `invalid_request_error` + `previous_response_id` reads as
   * previous_response_not_found to classifiers (ours and peers').
   */
  history_too_large: {
    status: 400,
    type: 'invalid_request_error',
    code: 'relay_history_too_large',
    param: null,
    message:
      "The conversation history of '{id}' is larger than the relay's limit of {limit} bytes. Start a new conversation or compact it.",
  },
  chain_too_deep: {
    status: 400,
    type: 'invalid_request_error',
    code: 'relay_chain_too_deep',
    param: null,
    message:
      "The conversation of '{id}' has more than {limit} responses, the relay's limit. Start a new conversation or compact it.",
  },

  // --- tool-call pairing (DESIGN.md §5, validate: 'reject'): OpenAI's own wording --------------
  /** `callKind`: `function`, `custom tool`, `local shell`, `apply patch`, … */
  no_tool_call_found: {
    status: 400,
    type: 'invalid_request_error',
    code: null,
    param: 'input',
    message: 'No tool call found for {callKind} call output with call_id {callId}.',
  },
  no_tool_output_found: {
    status: 400,
    type: 'invalid_request_error',
    code: null,
    param: 'input',
    message: 'No tool output found for {callKind} call {callId}.',
  },

  // --- the relay's infrastructure -------------------------------------------------------------
  /** `onStoreError: 'fail-closed'` with the session store down or too slow. */
  store_unavailable: {
    status: 503,
    type: 'server_error',
    code: 'relay_store_unavailable',
    param: null,
    message:
      "The relay's session store is unavailable, so the conversation state cannot be read or saved. Please retry your request.",
  },
  upstream_unreachable: {
    status: 502,
    type: 'server_error',
    code: 'relay_upstream_unreachable',
    param: null,
    message: 'The relay could not connect to the upstream. Please retry your request.',
  },
  upstream_timeout: {
    status: 504,
    type: 'server_error',
    code: 'relay_upstream_timeout',
    param: null,
    message: 'The upstream did not answer in time. Please retry your request.',
  },
  /** The upstream answered 2xx with something that is not a Responses body or stream. */
  upstream_invalid_response: {
    status: 502,
    type: 'server_error',
    code: 'relay_upstream_invalid_response',
    param: null,
    message: 'The upstream sent a response the relay could not read. Please retry your request.',
  },
  /**
   * The upstream stream ended (EOF, reset, idle timeout) before a terminal event. Sent inside
   * `response.failed` (`response.error.code`), where Codex retries only `server_error`: hence
   * that code rather than a `relay_` one.
   */
  stream_incomplete: {
    status: 502,
    type: 'server_error',
    code: 'server_error',
    param: null,
    message:
      'The upstream stream ended before the response was complete. Please retry your request.',
  },
  /**
   * A bug or an unexpected failure inside the relay. The message never carries the cause or a
   * stack (they go to the log). `server_error` so that, in a stream too, clients retry it.
   */
  internal_error: {
    status: 500,
    type: 'server_error',
    code: 'server_error',
    param: null,
    message: 'The relay had an error while processing your request. Please retry your request.',
  },
} as const satisfies Record<string, RelayErrorSpec>;

export type RelayErrorKind = keyof typeof RELAY_ERRORS;

/** The `{name}` placeholders of a template, as a union of names. */
type Placeholders<T extends string> = string extends T
  ? string
  : T extends `${string}{${infer Name}}${infer Rest}`
    ? Name | Placeholders<Rest>
    : never;

type ReasonOf<K extends RelayErrorKind> = (typeof RELAY_ERRORS)[K] extends {
  reasons: infer R;
}
  ? keyof R & string
  : never;

/** What every {@link relayError} call may add. */
export interface RelayErrorOptions {
  /** Overrides the registry's `param`. */
  param?: string | null;
  /** Extra headers for the HTTP response (e.g. `retry-after`). */
  headers?: Record<string, string>;
  /** The underlying error, kept for logs; never shown to the client. */
  cause?: unknown;
}

/** The details of one kind: its placeholders (required), its `reason`s, and the common options. */
export type RelayErrorDetails<K extends RelayErrorKind> = {
  [P in Placeholders<(typeof RELAY_ERRORS)[K]['message']>]: string | number;
} & ([ReasonOf<K>] extends [never] ? { reason?: never } : { reason?: ReasonOf<K> }) &
  RelayErrorOptions;

type DetailsArgs<K extends RelayErrorKind> = [
  Placeholders<(typeof RELAY_ERRORS)[K]['message']>,
] extends [never]
  ? [details?: RelayErrorDetails<K>]
  : [details: RelayErrorDetails<K>];

/** Cap on one placeholder value in a message. */
const MAX_VALUE_LENGTH = 256;

/**
 * An error the relay answers itself. `status`, `type`, `param` and the message are the
 * envelope's; `code` is the envelope's code, or — for the two OpenAI errors whose envelope code
 * is null (`response_not_found`, tool pairing) — the registry kind, so `code` is always a stable
 * string to branch on. {@link RelayError.toEnvelope} gives exactly what goes on the wire.
 */
export class RelayError extends Error {
  override readonly name = 'RelayError';
  /** The registry key. */
  readonly kind: RelayErrorKind;
  /** The envelope code, or the kind when the envelope's code is null. */
  readonly code: string;
  readonly status: number;
  readonly type: string;
  readonly param: string | null;
  readonly headers?: Record<string, string>;
  /** The envelope's own `code` (may be null). */
  readonly envelopeCode: string | null;

  constructor(
    kind: RelayErrorKind,
    message: string,
    options: { param?: string | null; headers?: Record<string, string>; cause?: unknown } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    const spec: RelayErrorSpec = RELAY_ERRORS[kind];
    this.kind = kind;
    this.status = spec.status;
    this.type = spec.type;
    this.envelopeCode = spec.code;
    this.code = spec.code ?? kind;
    this.param = options.param !== undefined ? options.param : spec.param;
    const headers = { ...spec.headers, ...options.headers };
    if (Object.keys(headers).length > 0) this.headers = headers;
  }

  /** Same as `status`, for error handlers that read `statusCode` (Express's finalhandler). */
  get statusCode(): number {
    return this.status;
  }

  /** The inner error object: `{message, type, param, code}`. */
  toErrorBody(): OpenAIErrorBody {
    return { message: this.message, type: this.type, param: this.param, code: this.envelopeCode };
  }

  /** `{"error":{"message","type","param","code"}}` — no stack, no cause. */
  toEnvelope(): OpenAIErrorEnvelope {
    return { error: this.toErrorBody() };
  }

  /** `JSON.stringify(err)` gives the envelope. */
  toJSON(): OpenAIErrorEnvelope {
    return this.toEnvelope();
  }
}

/**
 * A {@link RelayError} of `kind`, its template filled from `details` (values are scrubbed of
 * secrets and cut to 256 characters).
 *
 * @example
 * relayError('previous_response_not_found', { id: 'resp_abc' }).toEnvelope();
 * // {"error":{"message":"Previous response with id 'resp_abc' not found.",
 * //   "type":"invalid_request_error","param":"previous_response_id","code":"previous_response_not_found"}}
 * relayError('invalid_json', { reason: 'not_an_object' });
 */
export function relayError<K extends RelayErrorKind>(
  kind: K,
  ...[details]: DetailsArgs<K>
): RelayError {
  const spec: RelayErrorSpec = RELAY_ERRORS[kind];
  const values = (details ?? {}) as Record<string, unknown>;
  let message = spec.message.replace(/\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (_m, name: string) => {
    const value = values[name];
    if (typeof value !== 'string' && typeof value !== 'number') return '(unknown)';
    return truncateText(sanitizeText(String(value)), MAX_VALUE_LENGTH);
  });
  const reason = typeof values.reason === 'string' ? spec.reasons?.[values.reason] : undefined;
  if (reason !== undefined) message = `${message} ${reason}`;
  return new RelayError(kind, message, {
    param: details?.param,
    headers: details?.headers,
    cause: details?.cause,
  });
}

/** Whether `value` is a {@link RelayError} (also across copies of the package). */
export function isRelayError(value: unknown): value is RelayError {
  return (
    value instanceof RelayError ||
    (value instanceof Error &&
      value.name === 'RelayError' &&
      typeof (value as Partial<RelayError>).kind === 'string' &&
      typeof (value as Partial<RelayError>).toEnvelope === 'function')
  );
}

/**
 * Any thrown value as a {@link RelayError}, for the last error handler:
 * - a RelayError stays itself;
 * - body-parser errors (what `express.json()` throws) by their `type`:
 *   `entity.parse.failed` → invalid_json, `entity.too.large` → payload_too_large,
 *   `encoding.unsupported`/`charset.unsupported` → unsupported_media_type;
 * - anything else → internal_error, with the original as `cause` (for the log only).
 */
export function toRelayError(error: unknown): RelayError {
  if (isRelayError(error)) return error;
  if (typeof error === 'object' && error !== null) {
    const e = error as { type?: unknown; limit?: unknown; charset?: unknown; encoding?: unknown };
    switch (e.type) {
      case 'entity.parse.failed':
        return relayError('invalid_json', { reason: 'syntax', cause: error });
      case 'entity.too.large':
        return relayError('payload_too_large', {
          limit: typeof e.limit === 'number' ? e.limit : '(unknown)',
          cause: error,
        });
      case 'encoding.unsupported':
      case 'charset.unsupported':
        return relayError('unsupported_media_type', {
          contentType: String(e.charset ?? e.encoding ?? 'unknown'),
          cause: error,
        });
      default:
        break;
    }
  }
  return relayError('internal_error', { cause: error });
}
