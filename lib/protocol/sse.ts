/**
 * Incremental server-sent events (text/event-stream) parsing and serialization. Pure: no I/O.
 *
 * The parser follows the WHATWG "interpreting an event stream" rules
 * (https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation):
 * chunks may split anywhere (inside a UTF-8 character, between CR and LF); lines end at LF, CRLF
 * or a lone CR and nowhere else (U+2028/U+2029 occur inside JSON strings and are kept, see
 * DESIGN.md §9); a leading BOM is skipped; `data:` lines are joined with "\n"; lines starting with
 * ":" are comments; an event without `data:` lines is not dispatched; an event the stream ends in
 * the middle of is dropped and reported by {@link SseParser.end}.
 *
 * Two deliberate departures from a browser's `EventSource`, both for a relay that re-serializes
 * what it parsed:
 * - `event` is `undefined` when the event has no (or an empty) `event:` field; a browser says
 *   "message".
 * - `id` and `retry` on a message are the fields of that event only. The spec's persistent "last
 *   event ID" is {@link SseParser.lastEventId}, the reconnection time
 *   {@link SseParser.reconnectionTime}.
 *
 * Memory is bounded: the current unterminated line plus the data of the current event may not
 * exceed `maxLineLength` characters ({@link SseLineTooLongError}); besides, at most 4 KiB of tiny
 * byte chunks wait to be decoded together.
 */
import { isAscii } from 'node:buffer';

/** One dispatched event. */
export interface SseMessage {
  /** The `event:` field; undefined when the event had none (or an empty one). */
  event?: string;
  /** The `data:` lines, joined with "\n". */
  data: string;
  /** The event's own `id:` field (the last one, when several), if it had one without NUL. */
  id?: string;
  /**
   * The event's own `retry:` field (the last valid one): all ASCII digits, and a safe integer
   * (a longer run of digits is ignored).
   */
  retry?: number;
}

export interface SseParserOptions {
  /** Called once per dispatched event, in stream order. */
  onMessage(message: SseMessage): void;
  /** Called per comment line with the text after ':' (one leading space removed). */
  onComment?(text: string): void;
  /**
   * Largest number of characters the parser holds for the current line plus the data of the
   * current event. Default {@link DEFAULT_MAX_LINE_LENGTH}. Beyond it, `push()` throws
   * {@link SseLineTooLongError}.
   */
  maxLineLength?: number;
}

/** 32 Mi characters: well above any Responses event (a `response.completed` carries the whole output). */
export const DEFAULT_MAX_LINE_LENGTH = 32 * 1024 * 1024;

/** The sentinel some OpenAI-style streams end with (`data: [DONE]`). The Responses API sends none. */
export const SSE_DONE = '[DONE]';

/** Thrown by {@link SseParser.push} when a line outgrows `maxLineLength`. The parser is then unusable. */
export class SseLineTooLongError extends Error {
  override readonly name = 'SseLineTooLongError';
  readonly code = 'relay_sse_line_too_long' as const;
  /** The `maxLineLength` that was exceeded, in characters. */
  readonly limit: number;

  constructor(limit: number) {
    super(
      `An SSE line (with the data of the event it belongs to) is longer than ${limit} characters ` +
        '(the maxLineLength of the parser); the stream was abandoned.',
    );
    this.limit = limit;
  }
}

const LF = 0x0a;
const CR = 0x0d;
const SPACE = 0x20;
const COLON = 0x3a;
const BOM = 0xfeff;
const CHAR_D = 0x64; // data
const CHAR_E = 0x65; // event
const CHAR_I = 0x69; // id
const CHAR_R = 0x72; // retry

/** Byte chunks up to this size are held until a line end arrives (see SseParser.hold). */
const SMALL_CHUNK = 64;
/** Bytes held at most. */
const HOLD_CAPACITY = 4096;
const STREAM = { stream: true };

/**
 * Where the value of a field starts when the field name ends at `nameEnd` (the name itself was
 * already matched), or -1 when the line's field name is longer than the one matched.
 */
function valueStart(text: string, nameEnd: number, end: number): number {
  if (nameEnd === end) return end; // `field` alone: empty value
  if (text.charCodeAt(nameEnd) !== COLON) return -1;
  const start = nameEnd + 1;
  return start < end && text.charCodeAt(start) === SPACE ? start + 1 : start;
}

/** True when `value` is one or more ASCII digits. */
function isAsciiDigits(value: string): boolean {
  if (value.length === 0) return false;
  for (let index = 0; index < value.length; index += 1) {
    const code = value.charCodeAt(index);
    if (code < 0x30 || code > 0x39) return false;
  }
  return true;
}

/**
 * Incremental event-stream parser. Feed it bytes (or strings) as they arrive with
 * {@link SseParser.push}; events are reported synchronously through `onMessage` as soon as their
 * terminating blank line arrives. Call {@link SseParser.end} when the stream ends.
 *
 * An exception thrown by a callback propagates out of `push()`; the rest of that chunk is then
 * not parsed.
 */
export class SseParser {
  private readonly onMessage: (message: SseMessage) => void;
  private readonly onComment: ((text: string) => void) | undefined;
  private readonly maxLineLength: number;
  private readonly decoder = new TextDecoder('utf-8', { ignoreBOM: true });
  /** The decoder may hold the first bytes of a split character (the last byte it saw was not ASCII). */
  private decoderPending = false;
  /** Small byte chunks not yet decoded (they hold no line end), so tiny chunks cost one decode per line. */
  private held: Buffer | undefined = undefined;
  private heldLength = 0;
  /** The first character of the stream was looked at (for the BOM). */
  private started = false;
  /** The last chunk ended with CR: an LF starting the next chunk belongs to the same line end. */
  private afterCR = false;
  /** Pieces of the current unterminated line, joined when it ends. */
  private pieces: string[] = [];
  private piecesLength = 0;
  // The event being read.
  private data = '';
  private hasData = false;
  private eventType: string | undefined = undefined;
  private eventId: string | undefined = undefined;
  private eventRetry: number | undefined = undefined;
  private lastEventIdBuffer = '';
  private lastEventIdValue = '';
  private reconnectionTimeValue: number | undefined = undefined;
  private failure: SseLineTooLongError | undefined = undefined;
  private ended = false;

  constructor(options: SseParserOptions) {
    const maxLineLength = options.maxLineLength ?? DEFAULT_MAX_LINE_LENGTH;
    if (!(maxLineLength > 0)) {
      throw new RangeError(`maxLineLength must be a positive number, got ${String(maxLineLength)}`);
    }
    this.onMessage = options.onMessage;
    this.onComment = options.onComment;
    this.maxLineLength = maxLineLength;
  }

  /**
   * The spec's "last event ID string": set from the last `id:` field (without NUL) when an event
   * ends (at a blank line, dispatched or not), kept until another `id:` field changes it.
   */
  get lastEventId(): string {
    return this.lastEventIdValue;
  }

  /** The last valid `retry:` value seen, in milliseconds (undefined when none). */
  get reconnectionTime(): number | undefined {
    return this.reconnectionTimeValue;
  }

  /**
   * Parses the next piece of the stream. Bytes are UTF-8 (split characters are completed by the
   * next chunk; invalid bytes become U+FFFD). Throws {@link SseLineTooLongError} when a line
   * outgrows `maxLineLength`, and keeps throwing it afterwards.
   */
  push(chunk: Uint8Array | string): void {
    if (this.failure) throw this.failure;
    if (this.ended) throw new Error('SseParser.push() was called after end()');
    if (typeof chunk === 'string') {
      this.flushDecoder();
      this.feed(chunk);
    } else if (chunk.length > SMALL_CHUNK) {
      if (this.heldLength > 0) this.decodeHeld();
      this.feed(this.decode(chunk));
    } else if (chunk.length > 0) {
      this.hold(chunk);
    }
  }

  /**
   * Ends the stream: decodes what the decoder still holds (an incomplete UTF-8 character becomes
   * U+FFFD) and drops the event in progress, which is not dispatched (the spec's rule for a
   * stream that ends before the blank line). `incomplete` is true when something was dropped:
   * an event with `data:` lines, or an unterminated line. After `end()`, `push()` throws.
   */
  end(): { incomplete: boolean } {
    if (this.failure) throw this.failure;
    if (this.ended) return { incomplete: false };
    this.flushDecoder();
    this.ended = true;
    const incomplete = this.hasData || this.piecesLength > 0;
    this.pieces = [];
    this.piecesLength = 0;
    this.resetEvent();
    return { incomplete };
  }

  /** Decodes every byte received so far; a split character at the end becomes U+FFFD. */
  private flushDecoder(): void {
    if (this.heldLength > 0) this.decodeHeld();
    if (!this.decoderPending) return;
    this.decoderPending = false;
    const tail = this.decoder.decode();
    if (tail.length > 0) this.feed(tail);
  }

  /**
   * Decodes a chunk. ASCII, when the decoder holds nothing, is copied as Latin-1: the same text,
   * at a fraction of TextDecoder's cost per call (token streams arrive in many short chunks).
   */
  private decode(bytes: Uint8Array): string {
    if (!this.decoderPending && isAscii(bytes)) {
      const buffer = Buffer.isBuffer(bytes)
        ? bytes
        : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
      return buffer.toString('latin1');
    }
    // After an ASCII byte the decoder holds nothing: a split character cannot end with one.
    this.decoderPending = (bytes[bytes.length - 1] as number) >= 0x80;
    return this.decoder.decode(bytes, STREAM);
  }

  /**
   * Takes a small byte chunk. Decoding it later, with the chunks after it, changes nothing
   * observable as long as it holds no line end (no line can complete without one), so it is
   * decoded only when a line end arrives or the hold is full.
   */
  private hold(chunk: Uint8Array): void {
    if (this.heldLength + chunk.length > HOLD_CAPACITY) this.decodeHeld();
    const held = (this.held ??= Buffer.alloc(HOLD_CAPACITY));
    held.set(chunk, this.heldLength);
    this.heldLength += chunk.length;
    // At most SMALL_CHUNK bytes: a loop is cheaper here than two native indexOf calls.
    for (let index = 0; index < chunk.length; index += 1) {
      const byte = chunk[index];
      if (byte === LF || byte === CR) {
        this.decodeHeld();
        return;
      }
    }
    // A byte decodes to at most one UTF-16 unit, so while the held bytes fit the limit the line
    // does (give or take a character the decoder kept): the limit is checked in feed() otherwise.
    if (this.heldLength + this.piecesLength + this.data.length > this.maxLineLength) {
      this.decodeHeld();
    }
  }

  private decodeHeld(): void {
    const bytes = (this.held as Buffer).subarray(0, this.heldLength);
    this.heldLength = 0;
    // Decoding copies (the decoder keeps its own copy of a split character): the hold is free.
    this.feed(this.decode(bytes));
  }

  /** Splits decoded text into lines; keeps the unterminated tail for the next chunk. */
  private feed(input: string): void {
    let text = input;
    if (text.length === 0) return;
    if (!this.started) {
      this.started = true;
      if (text.charCodeAt(0) === BOM) {
        text = text.slice(1);
        if (text.length === 0) return;
      }
    }
    let start = 0;
    if (this.afterCR) {
      this.afterCR = false;
      if (text.charCodeAt(0) === LF) start = 1;
    }
    const length = text.length;
    let cr = text.indexOf('\r', start);
    let lf = text.indexOf('\n', start);
    while (cr !== -1 || lf !== -1) {
      let end: number;
      let next: number;
      if (cr === -1 || (lf !== -1 && lf < cr)) {
        end = lf;
        next = lf + 1;
        lf = text.indexOf('\n', next);
      } else {
        end = cr;
        next = cr + 1;
        if (next === length) {
          this.afterCR = true;
        } else if (text.charCodeAt(next) === LF) {
          next += 1;
          lf = text.indexOf('\n', next);
        }
        cr = text.indexOf('\r', next);
      }
      if (this.piecesLength > 0) {
        this.pieces.push(text.slice(start, end));
        const line = this.pieces.join('');
        this.pieces = [];
        this.piecesLength = 0;
        this.line(line, 0, line.length);
      } else {
        this.line(text, start, end);
      }
      start = next;
    }
    if (start < length) {
      const rest = start === 0 ? text : text.slice(start);
      this.piecesLength += rest.length;
      this.pieces.push(rest);
      if (this.piecesLength + this.data.length > this.maxLineLength) this.fail();
    }
  }

  /** Interprets the line `text[start, end)` (without its line end). */
  private line(text: string, start: number, end: number): void {
    if (start === end) {
      this.dispatch();
      return;
    }
    if (end - start + this.data.length > this.maxLineLength) this.fail();
    let from: number;
    switch (text.charCodeAt(start)) {
      case COLON:
        if (this.onComment) {
          const textStart = start + 1 < end && text.charCodeAt(start + 1) === SPACE ? 2 : 1;
          this.onComment(text.slice(start + textStart, end));
        }
        return;
      case CHAR_D:
        if (
          !(
            text.charCodeAt(start + 1) === 0x61 && // a
            text.charCodeAt(start + 2) === 0x74 && // t
            text.charCodeAt(start + 3) === 0x61 // a
          ) ||
          (from = valueStart(text, start + 4, end)) < 0
        )
          return;
        if (this.hasData) {
          this.data = `${this.data}\n${text.slice(from, end)}`;
        } else {
          this.data = text.slice(from, end);
          this.hasData = true;
        }
        return;
      case CHAR_E:
        if (
          !(
            text.charCodeAt(start + 1) === 0x76 && // v
            text.charCodeAt(start + 2) === 0x65 && // e
            text.charCodeAt(start + 3) === 0x6e && // n
            text.charCodeAt(start + 4) === 0x74 // t
          ) ||
          (from = valueStart(text, start + 5, end)) < 0
        )
          return;
        this.eventType = from === end ? undefined : text.slice(from, end);
        return;
      case CHAR_I: {
        if (!text.startsWith('id', start) || (from = valueStart(text, start + 2, end)) < 0) return;
        const id = text.slice(from, end);
        if (id.includes('\0')) return;
        this.eventId = id;
        this.lastEventIdBuffer = id;
        return;
      }
      case CHAR_R: {
        if (!text.startsWith('retry', start) || (from = valueStart(text, start + 5, end)) < 0)
          return;
        const value = text.slice(from, end);
        if (!isAsciiDigits(value)) return;
        const retry = Number(value);
        if (!Number.isSafeInteger(retry)) return; // more digits than a number holds
        this.eventRetry = retry;
        this.reconnectionTimeValue = this.eventRetry;
        return;
      }
      default:
        return; // unknown field
    }
  }

  /** A blank line: dispatches the event when it has data, and starts the next one. */
  private dispatch(): void {
    this.lastEventIdValue = this.lastEventIdBuffer;
    if (!this.hasData) {
      this.resetEvent();
      return;
    }
    const message: SseMessage =
      this.eventType === undefined
        ? { data: this.data }
        : { event: this.eventType, data: this.data };
    if (this.eventId !== undefined) message.id = this.eventId;
    if (this.eventRetry !== undefined) message.retry = this.eventRetry;
    this.resetEvent();
    this.onMessage(message);
  }

  private resetEvent(): void {
    this.data = '';
    this.hasData = false;
    this.eventType = undefined;
    this.eventId = undefined;
    this.eventRetry = undefined;
  }

  private fail(): never {
    this.failure = new SseLineTooLongError(this.maxLineLength);
    this.pieces = [];
    this.piecesLength = 0;
    this.resetEvent();
    throw this.failure;
  }
}

const LINE_BREAK = /\r\n|\r|\n/;

function assertSingleLine(what: string, value: string): void {
  if (value.includes('\n') || value.includes('\r')) {
    throw new TypeError(`An SSE ${what} cannot contain a line break: ${JSON.stringify(value)}`);
  }
}

/** `prefix` + each line of `text` (split at CRLF, CR, LF), each line ended by "\n". */
function fieldLines(prefix: string, text: string): string {
  if (!text.includes('\n') && !text.includes('\r')) return `${prefix}${text}\n`;
  let out = '';
  for (const line of text.split(LINE_BREAK)) out += `${prefix}${line}\n`;
  return out;
}

/**
 * One event in wire form, ending with the blank line. Multi-line data becomes several `data:`
 * lines (CRLF and CR in data come back as "\n": the format cannot carry a CR). An empty `event`
 * is left out (it parses back as undefined). Throws a TypeError when `event` or `id` contains a
 * line break (it would inject fields) or `retry` is not a non-negative integer.
 */
export function serializeSseMessage(message: SseMessage): string {
  let out = '';
  if (message.event !== undefined && message.event !== '') {
    assertSingleLine('event name', message.event);
    out += `event: ${message.event}\n`;
  }
  if (message.id !== undefined) {
    assertSingleLine('id', message.id);
    out += `id: ${message.id}\n`;
  }
  if (message.retry !== undefined) {
    if (!Number.isSafeInteger(message.retry) || message.retry < 0) {
      throw new TypeError(`An SSE retry must be a non-negative integer, got ${message.retry}`);
    }
    out += `retry: ${message.retry}\n`;
  }
  return `${out}${fieldLines('data: ', message.data)}\n`;
}

/**
 * A comment block, for keep-alives: `: text\n\n` (one `:` line per line of `text`). Clients
 * ignore it; the blank line after it only ends an event that has no data, so it is harmless
 * between events.
 */
export function serializeSseComment(text: string): string {
  return `${fieldLines(': ', text)}\n`;
}

/**
 * A Responses stream event as the API frames it: `event: <type>\ndata: <json>\n\n`. `data` is the
 * already-serialized JSON of `event`, used verbatim when given (a relay forwards the upstream's
 * bytes); otherwise `JSON.stringify(event)`.
 */
export function serializeStreamEvent(event: { type: string }, data?: string): string {
  const json = data ?? JSON.stringify(event);
  const type = event.type;
  if (type === '') return serializeSseMessage({ data: json });
  assertSingleLine('event name', type);
  if (json.includes('\n') || json.includes('\r')) {
    return `event: ${type}\n${fieldLines('data: ', json)}\n`;
  }
  return `event: ${type}\ndata: ${json}\n\n`;
}

/** True for the `data: [DONE]` sentinel (surrounding whitespace ignored). */
export function isDoneSentinel(message: SseMessage): boolean {
  return message.data.trim() === SSE_DONE;
}
