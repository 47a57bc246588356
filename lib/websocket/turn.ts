/**
 * One turn of a bridged connection: a `response.create` message becomes one HTTP POST to the
 * relay's own Responses route (the same middlewares as every HTTP client: error envelope,
 * chaining, completion rebuilding, retries, the proxy), and the answer goes back as WebSocket
 * messages:
 *
 * - a 2xx `text/event-stream`: each SSE event's `data` text, unchanged, as one text message, in
 *   order; nothing after the terminal event (the client would read it as part of its next turn);
 * - any non-2xx: one wrapped error message, `{"type":"error","status":N,"error":{…},"headers":{…}}`
 *   with the route's envelope and its retry headers;
 * - a 2xx JSON Response (a route that did not stream): its events, rebuilt;
 * - a stream that ends without a terminal event, or a route that cannot be reached: a wrapped
 *   5xx, which the Codex client retries.
 *
 * Back-pressure: when the client's socket holds more than `highWaterMark` unsent bytes, the HTTP
 * response is paused (and through the route's pipeline, the upstream) until half of it drained.
 */
import type { ClientRequest, IncomingMessage, OutgoingHttpHeaders } from 'node:http';
import type { ChainingLogger } from '../middleware/chaining-reply';
import { isEventStream, isJsonType } from '../middleware/response-pipeline';
import { relayError, type RelayError } from '../protocol/relay-errors';
import { isDoneSentinel, SseParser, type SseMessage } from '../protocol/sse';
import {
  isJsonObject,
  isTerminalEventType,
  type OpenAIErrorBody,
  type ResponseObject,
} from '../protocol/types';
import { errorFrameText, errorFromHttpAnswer, eventsFromResponse } from './frames';
import { PREWARM_ANSWERED, PREWARM_HEADER } from './prewarm';

/** The part of a `ws` WebSocket a turn writes to. */
export interface TurnSocket {
  readonly readyState: number;
  readonly bufferedAmount: number;
  send(data: string): void;
}

/** Opens the loopback request of a turn. */
export type TurnTransport = (path: string, headers: OutgoingHttpHeaders) => ClientRequest;

/** Counters a turn updates (shared by the bridge). */
export interface TurnCounters {
  events: number;
  errorFrames: number;
  pauses: number;
  maxBufferedAmount: number;
}

export interface TurnOptions {
  path: string;
  headers: OutgoingHttpHeaders;
  body: Buffer;
  highWaterMark: number;
  maxErrorBodyBytes: number;
  /** Largest 2xx JSON body read (a route that answered without streaming). */
  maxJsonBodyBytes: number;
  counters: TurnCounters;
  log: ChainingLogger;
}

export type TurnOutcomeKind = 'completed' | 'failed' | 'incomplete' | 'error' | 'aborted';

export interface TurnOutcome {
  kind: TurnOutcomeKind;
  /** The id of a completed response (the connection's next anchor). */
  responseId?: string;
  /** The status of the wrapped error sent (kind `error`). */
  status?: number;
  /** True when the route's prewarm responder answered (header `x-relay-prewarm`). */
  prewarmAnswered: boolean;
  /** Messages sent to the client for this turn. */
  sent: number;
}

const OPEN = 1;
const POLL_MS = 10;

const TERMINAL_KINDS: Readonly<Record<string, TurnOutcomeKind>> = {
  'response.completed': 'completed',
  'response.failed': 'failed',
  'response.incomplete': 'incomplete',
};

function header(res: IncomingMessage, name: string): string | undefined {
  const value = res.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

export class BridgeTurn {
  readonly done: Promise<TurnOutcome>;
  private resolveDone!: (outcome: TurnOutcome) => void;
  private settled = false;
  private request: ClientRequest | undefined;
  private response: IncomingMessage | undefined;
  private paused = false;
  private pollTimer: NodeJS.Timeout | undefined;
  private prewarmAnswered = false;
  private sent = 0;
  private reposted = false;

  constructor(
    private readonly socket: TurnSocket,
    private readonly transport: TurnTransport,
    private readonly options: TurnOptions,
  ) {
    this.done = new Promise((resolve) => {
      this.resolveDone = resolve;
    });
  }

  /** Posts the turn. Never throws: every failure ends as an outcome (and a message). */
  start(): this {
    this.post();
    return this;
  }

  private post(): void {
    let request: ClientRequest;
    try {
      request = this.transport(this.options.path, {
        ...this.options.headers,
        'content-length': String(this.options.body.length),
      });
    } catch (error) {
      this.options.log.error(
        { error: error instanceof Error ? error.message : String(error) },
        'websocket bridge: the turn could not be posted to the Responses route',
      );
      this.sendRelayError(relayError('internal_error', { cause: error }));
      return;
    }
    this.request = request;
    request.on('response', (res) => this.onResponse(res));
    request.on('error', (error) => this.onRequestError(request, error));
    request.end(this.options.body);
  }

  /** Stops the turn (the client left): the HTTP request is destroyed, and with it the upstream. */
  abort(): void {
    this.settle({ kind: 'aborted', prewarmAnswered: this.prewarmAnswered, sent: this.sent });
    this.request?.destroy();
    this.response?.destroy();
  }

  private settle(outcome: TurnOutcome): void {
    if (this.settled) return;
    this.settled = true;
    this.stopPolling();
    // Whatever the route still sends after the end of the turn is drained, not buffered.
    if (this.paused) {
      this.paused = false;
      this.response?.resume();
    }
    this.resolveDone(outcome);
  }

  private onRequestError(request: ClientRequest, error: Error): void {
    if (this.settled || request !== this.request) return;
    const code = (error as Error & { code?: string }).code;
    if (
      this.response === undefined &&
      !this.reposted &&
      request.reusedSocket &&
      (code === 'ECONNRESET' || code === 'EPIPE')
    ) {
      // A kept-alive loopback connection the server closed while idle: the request never reached
      // the route, so it is posted again, once, on a fresh connection (Node's documented pattern).
      this.reposted = true;
      this.post();
      return;
    }
    this.options.log.error(
      { error: error.message, code },
      'websocket bridge: the Responses route could not be reached',
    );
    if (this.response) this.sendRelayError(relayError('stream_incomplete'));
    else this.sendRelayError(relayError('internal_error', { cause: error }));
  }

  private onResponse(res: IncomingMessage): void {
    this.response = res;
    res.on('error', () => undefined);
    this.prewarmAnswered = header(res, PREWARM_HEADER) === PREWARM_ANSWERED;
    if (this.settled) {
      res.destroy();
      return;
    }
    const status = res.statusCode ?? 502;
    const contentType = header(res, 'content-type');
    const ok = status >= 200 && status < 300;
    if (ok && isEventStream(contentType)) {
      this.readStream(res);
      return;
    }
    if (ok && isJsonType(contentType)) {
      this.readBody(res, this.options.maxJsonBodyBytes, (body, truncated) =>
        this.fromJsonResponse(body, truncated),
      );
      return;
    }
    if (ok) {
      this.readBody(res, 0, () => this.sendRelayError(relayError('upstream_invalid_response')));
      return;
    }
    this.readBody(res, this.options.maxErrorBodyBytes, (body) => {
      const error = errorFromHttpAnswer(status, body, contentType);
      this.sendError(status, error, res.headers);
    });
  }

  /** Reads a body, keeping at most `limit` bytes (the rest is drained). */
  private readBody(
    res: IncomingMessage,
    limit: number,
    done: (body: Buffer, truncated: boolean) => void,
  ): void {
    const chunks: Buffer[] = [];
    let size = 0;
    let truncated = false;
    res.on('data', (chunk: Buffer) => {
      const room = limit - size;
      if (room <= 0) {
        truncated = true;
        return;
      }
      const piece = chunk.length > room ? chunk.subarray(0, room) : chunk;
      if (piece.length < chunk.length) truncated = true;
      chunks.push(piece);
      size += piece.length;
    });
    res.once('end', () => done(Buffer.concat(chunks, size), truncated));
    res.once('close', () => {
      if (!res.complete) this.sendRelayError(relayError('stream_incomplete'));
    });
  }

  private fromJsonResponse(body: Buffer, truncated: boolean): void {
    let parsed: unknown;
    try {
      parsed = truncated ? undefined : JSON.parse(body.toString('utf8'));
    } catch {
      parsed = undefined;
    }
    const events =
      isJsonObject(parsed) && parsed.object === 'response' && typeof parsed.id === 'string'
        ? eventsFromResponse(parsed as ResponseObject)
        : undefined;
    if (!events) {
      this.sendRelayError(relayError('upstream_invalid_response'));
      return;
    }
    for (const event of events) this.onEvent(JSON.stringify(event), event);
  }

  private readStream(res: IncomingMessage): void {
    const parser = new SseParser({ onMessage: (message) => this.onMessage(message) });
    res.on('data', (chunk: Buffer) => {
      if (this.settled) return;
      try {
        parser.push(chunk);
      } catch (error) {
        this.options.log.warn(
          { error: error instanceof Error ? error.message : String(error) },
          'websocket bridge: unreadable event stream from the Responses route',
        );
        this.sendRelayError(relayError('stream_incomplete'));
        res.destroy();
        return;
      }
      this.checkPressure(res);
    });
    res.once('end', () => {
      try {
        parser.end();
      } catch {
        // A line over the parser's limit was reported already.
      }
      if (!this.settled) this.sendRelayError(relayError('stream_incomplete'));
    });
    res.once('close', () => {
      if (!res.complete && !this.settled) this.sendRelayError(relayError('stream_incomplete'));
    });
  }

  private onMessage(message: SseMessage): void {
    if (this.settled || message.data === '' || isDoneSentinel(message)) return;
    let parsed: unknown;
    try {
      parsed = JSON.parse(message.data);
    } catch {
      parsed = undefined;
    }
    if (!isJsonObject(parsed) || typeof parsed.type !== 'string') {
      this.options.log.warn(
        { event: message.event },
        'websocket bridge: an SSE message that is not a Responses event was dropped',
      );
      return;
    }
    this.onEvent(message.data, parsed as { type: string; response?: unknown });
  }

  /** Sends one event (its original JSON text); a terminal event ends the turn. */
  private onEvent(data: string, event: { type: string; response?: unknown }): void {
    if (this.settled) return;
    if (!this.send(data)) return;
    this.options.counters.events += 1;
    if (!isTerminalEventType(event.type)) return;
    const response = event.response;
    const id = isJsonObject(response) && typeof response.id === 'string' ? response.id : undefined;
    const kind = TERMINAL_KINDS[event.type] ?? 'failed';
    this.settle({
      kind,
      ...(kind === 'completed' && id !== undefined ? { responseId: id } : {}),
      prewarmAnswered: this.prewarmAnswered,
      sent: this.sent,
    });
  }

  private sendRelayError(error: RelayError): void {
    this.sendError(error.status, error.toErrorBody(), error.headers);
  }

  private sendError(
    status: number,
    error: OpenAIErrorBody,
    headers: Record<string, string | string[] | undefined> | undefined,
  ): void {
    if (this.settled) return;
    if (this.send(errorFrameText(status, error, headers))) {
      this.options.counters.errorFrames += 1;
    }
    this.settle({ kind: 'error', status, prewarmAnswered: this.prewarmAnswered, sent: this.sent });
  }

  /** Sends a text message; false (and the turn aborted) when the socket is no longer open. */
  private send(text: string): boolean {
    if (this.socket.readyState !== OPEN) {
      this.abort();
      return false;
    }
    this.socket.send(text);
    this.sent += 1;
    const buffered = this.socket.bufferedAmount;
    if (buffered > this.options.counters.maxBufferedAmount) {
      this.options.counters.maxBufferedAmount = buffered;
    }
    return true;
  }

  private checkPressure(res: IncomingMessage): void {
    if (this.settled || this.paused) return;
    if (this.socket.bufferedAmount <= this.options.highWaterMark) return;
    this.paused = true;
    this.options.counters.pauses += 1;
    res.pause();
    const lowWaterMark = Math.floor(this.options.highWaterMark / 2);
    this.pollTimer = setInterval(() => {
      if (this.socket.readyState !== OPEN) {
        this.abort();
        return;
      }
      if (this.socket.bufferedAmount > lowWaterMark) return;
      this.stopPolling();
      this.paused = false;
      res.resume();
    }, POLL_MS);
  }

  private stopPolling(): void {
    if (this.pollTimer !== undefined) clearInterval(this.pollTimer);
    this.pollTimer = undefined;
  }
}
