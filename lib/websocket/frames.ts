/**
 * The frame codec of the Responses WebSocket protocol ("responses websockets", codex-wire.md §3),
 * pure and without I/O:
 *
 * - client → server: `{"type":"response.create", …the body of POST /v1/responses}` (one per
 *   model call; `generate: false` for a prewarm) and `{"type":"response.processed",
 *   "response_id"}` (an acknowledgement newer Codex clients send; nothing answers it);
 * - server → client: each stream event as one text message, the same JSON as the SSE `data:`
 *   line, and errors in the wrapped form `{"type":"error","status":N,"error":{…},"headers":{…}}`
 *   (an unwrapped error is ignored by the Codex client, which then waits out its idle timeout).
 */
import { exceedsJsonDepth, MAX_JSON_DEPTH } from '../protocol/json-depth';
import {
  isOpenAIErrorEnvelope,
  normalizeErrorBody,
  toWebSocketErrorFrame,
} from '../protocol/errors';
import { relayError, type RelayError } from '../protocol/relay-errors';
import {
  isJsonObject,
  type OpenAIErrorBody,
  type ResponseCreateBody,
  type ResponseObject,
  type StreamEvent,
} from '../protocol/types';

/** The one message type that starts a turn. */
export const CREATE_MESSAGE_TYPE = 'response.create';

/** Client messages accepted and left unanswered (acknowledgements). */
export const IGNORED_MESSAGE_TYPES: readonly string[] = Object.freeze(['response.processed']);

/** What a client message asks for. */
export type ClientMessage =
  /** A turn: the body to post (without `type`), and whether it is a `generate: false` prewarm. */
  | { kind: 'create'; body: ResponseCreateBody; prewarm: boolean }
  /** An acknowledgement: nothing to do. */
  | { kind: 'ignored'; type: string }
  /** Not a message the bridge handles: answered with a wrapped 400, the connection stays open. */
  | { kind: 'invalid'; error: RelayError };

type RawMessage = Buffer | ArrayBuffer | Buffer[];

function toBuffer(data: RawMessage): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.from(data);
}

/**
 * Reads one client message. Binary messages, invalid JSON, anything but a JSON object and
 * unknown `type`s are `invalid` (the Codex client only ever sends JSON text).
 */
export function parseClientMessage(data: RawMessage, isBinary: boolean): ClientMessage {
  if (isBinary) {
    return { kind: 'invalid', error: relayError('unsupported_message_type', { type: 'binary' }) };
  }
  const text = toBuffer(data).toString('utf8');
  if (text.trim() === '') {
    return { kind: 'invalid', error: relayError('invalid_json', { reason: 'empty' }) };
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return { kind: 'invalid', error: relayError('invalid_json', { reason: 'syntax' }) };
  }
  if (!isJsonObject(parsed)) {
    return { kind: 'invalid', error: relayError('invalid_json', { reason: 'not_an_object' }) };
  }
  if (exceedsJsonDepth(parsed, MAX_JSON_DEPTH)) {
    return { kind: 'invalid', error: relayError('invalid_json', { reason: 'too_deep' }) };
  }
  const type = parsed.type;
  if (type === CREATE_MESSAGE_TYPE) {
    const body = turnBody(parsed as ResponseCreateBody);
    return { kind: 'create', body, prewarm: body.generate === false };
  }
  if (typeof type === 'string' && IGNORED_MESSAGE_TYPES.includes(type)) {
    return { kind: 'ignored', type };
  }
  const shown = typeof type === 'string' ? type : type === undefined ? '(none)' : typeof type;
  return { kind: 'invalid', error: relayError('unsupported_message_type', { type: shown }) };
}

/**
 * The HTTP body of a `response.create` message: the message without `type`, with
 * `stream: true` (a WebSocket turn is always a stream of events). `generate: true` is the
 * default and exists only on WebSocket, so it is dropped; `generate: false` stays, so that a
 * prewarm can never reach an upstream as a generating request (the route's `prewarmResponder()`
 * answers it; an upstream without WebSocket support refuses the field).
 */
export function turnBody(message: ResponseCreateBody & { type?: unknown }): ResponseCreateBody {
  const body: ResponseCreateBody = { ...message };
  delete (body as { type?: unknown }).type;
  if (body.stream !== true) body.stream = true;
  if (body.generate === true) delete body.generate;
  return body;
}

/** The wrapped error message the Codex client understands, as text. */
export function errorFrameText(
  status: number,
  error: OpenAIErrorBody,
  headers?: Record<string, string | string[] | undefined>,
): string {
  return JSON.stringify(toWebSocketErrorFrame(status, error, headers));
}

/** A relay error as a wrapped error message. */
export function relayErrorFrameText(error: RelayError): string {
  return errorFrameText(error.status, error.toErrorBody(), error.headers);
}

/**
 * The error body of a non-2xx HTTP answer of the route: its OpenAI envelope (kept verbatim: the
 * Codex client matches codes such as `previous_response_not_found`), or one the relay writes from
 * whatever else the body holds.
 */
export function errorFromHttpAnswer(
  status: number,
  body: Buffer,
  contentType: string | undefined,
): OpenAIErrorBody {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString('utf8'));
  } catch {
    parsed = undefined;
  }
  if (isOpenAIErrorEnvelope(parsed)) {
    const { message, type, param, code } = parsed.error;
    return { message, type, param, code };
  }
  return normalizeErrorBody({ status, body, contentType }).error;
}

const TERMINAL_FOR_STATUS: Readonly<Record<string, StreamEvent['type']>> = Object.freeze({
  completed: 'response.completed',
  failed: 'response.failed',
  incomplete: 'response.incomplete',
});

/**
 * The events of a whole JSON Response (a route that answered a turn without streaming):
 * `response.created`, one `response.output_item.done` per output item (what the Codex client
 * builds its history from) and the terminal event. `undefined` when the Response is not over.
 */
export function eventsFromResponse(response: ResponseObject): StreamEvent[] | undefined {
  const status = String(response.status);
  // An own property only: a status such as `constructor` or `__proto__` is not over either.
  if (!Object.hasOwn(TERMINAL_FOR_STATUS, status)) return undefined;
  const terminal = TERMINAL_FOR_STATUS[status]!;
  const output = Array.isArray(response.output) ? response.output : [];
  const events: StreamEvent[] = [
    {
      type: 'response.created',
      sequence_number: 0,
      response: { ...response, status: 'in_progress', output: [] },
    },
  ];
  output.forEach((item, index) => {
    events.push({
      type: 'response.output_item.done',
      sequence_number: events.length,
      output_index: index,
      item,
    });
  });
  events.push({ type: terminal, sequence_number: events.length, response });
  return events;
}
