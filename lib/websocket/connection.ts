/**
 * One bridged WebSocket connection: reads client messages, runs one turn at a time (the Codex
 * client waits for a turn's terminal event before sending the next `response.create`; extra
 * messages wait in a short queue), chains turns per connection, and answers malformed messages
 * with a wrapped 400 while staying open.
 */
import type { IncomingMessage, OutgoingHttpHeaders } from 'node:http';
import type { RawData, WebSocket } from 'ws';
import type { ChainingLogger } from '../middleware/chaining-reply';
import { normalizeInput } from '../protocol/items';
import { isSelfContained } from '../protocol/pairing';
import type { ResponseCreateBody } from '../protocol/types';
import { parseClientMessage, relayErrorFrameText } from './frames';
import { BRIDGE_SESSION_HEADER } from './session';
import { BridgeTurn, type TurnCounters, type TurnOutcome, type TurnTransport } from './turn';

/** What the bridge counts (see `WebSocketBridge.stats`). */
export interface WebSocketBridgeStats extends TurnCounters {
  /** Upgrades accepted since the bridge was attached. */
  connectionsOpened: number;
  /** Connections open now. */
  connectionsOpen: number;
  /** Upgrades answered 401/426/… instead. */
  upgradesRefused: number;
  /** `response.create` messages received (prewarms included). */
  turns: number;
  /** `generate: false` prewarms among them. */
  prewarms: number;
  /** Turns that ended with `response.completed`. */
  completed: number;
  /** Turns that ended with `response.failed` or `response.incomplete`. */
  failed: number;
  /** Turns stopped because the client left. */
  aborted: number;
  /** Turns that omitted `previous_response_id` and were given the connection's last response. */
  anchorsAdded: number;
  /** Messages answered with a wrapped 400 (not JSON, not an object, unknown type, binary). */
  malformedMessages: number;
  /** Acknowledgements (`response.processed`) received. */
  ignoredMessages: number;
  /** Connections closed for not answering a ping. */
  pingTimeouts: number;
}

export function emptyStats(): WebSocketBridgeStats {
  return {
    connectionsOpened: 0,
    connectionsOpen: 0,
    upgradesRefused: 0,
    turns: 0,
    prewarms: 0,
    completed: 0,
    failed: 0,
    aborted: 0,
    anchorsAdded: 0,
    malformedMessages: 0,
    ignoredMessages: 0,
    pingTimeouts: 0,
    events: 0,
    errorFrames: 0,
    pauses: 0,
    maxBufferedAmount: 0,
  };
}

export interface ConnectionSettings {
  id: string;
  sessionKey: string;
  /** The HTTP route's path and query. */
  path: string;
  /** Headers of every turn's request (credential, client headers, session). */
  headers: OutgoingHttpHeaders;
  transport: TurnTransport;
  /** Resolves once the transport can be used (a private listener is up). */
  ready: Promise<void>;
  highWaterMark: number;
  maxQueuedTurns: number;
  maxErrorBodyBytes: number;
  maxJsonBodyBytes: number;
  stats: WebSocketBridgeStats;
  log: ChainingLogger;
  /** Called when a prewarm was not answered by the route's prewarm responder. */
  onUnansweredPrewarm(): void;
}

/** Close code for a client that sends more turns than the queue holds. */
export const CLOSE_POLICY_VIOLATION = 1008;
export const CLOSE_GOING_AWAY = 1001;

interface QueuedTurn {
  body: ResponseCreateBody;
  prewarm: boolean;
}

function hasAnchor(body: ResponseCreateBody): boolean {
  const anchor = body.previous_response_id;
  return anchor !== undefined && anchor !== null && anchor !== '';
}

export class BridgeConnection {
  /** Set by each pong; cleared by each ping (see the bridge's heartbeat). */
  alive = true;
  private readonly queue: QueuedTurn[] = [];
  private current: BridgeTurn | undefined;
  private running = false;
  private closed = false;
  /** The connection's last completed response: the anchor of a turn that omits one. */
  private lastCompleted: string | undefined;

  constructor(
    readonly ws: WebSocket,
    private readonly settings: ConnectionSettings,
  ) {
    ws.on('message', (data, isBinary) => this.onMessage(data, isBinary));
    ws.on('pong', () => {
      this.alive = true;
    });
    ws.on('error', (error) => {
      // ws closes the connection itself (1002/1007/1009); only record why.
      settings.log.debug?.(
        { connection: settings.id, error: error.message },
        'websocket bridge: connection error',
      );
    });
    ws.once('close', () => this.onClose());
  }

  /** Sends a ping, or terminates a connection that did not answer the previous one. */
  heartbeat(): void {
    if (this.closed) return;
    if (!this.alive) {
      this.settings.stats.pingTimeouts += 1;
      this.ws.terminate();
      return;
    }
    this.alive = false;
    try {
      this.ws.ping();
    } catch {
      this.ws.terminate();
    }
  }

  /** Closes the connection (the bridge is shutting down). */
  shutdown(): void {
    this.abortTurns();
    if (this.ws.readyState === this.ws.OPEN)
      this.ws.close(CLOSE_GOING_AWAY, 'server shutting down');
    setTimeout(() => this.ws.terminate(), 1000).unref();
  }

  private onMessage(data: RawData, isBinary: boolean): void {
    if (this.closed) return;
    const message = parseClientMessage(data, isBinary);
    switch (message.kind) {
      case 'invalid':
        this.settings.stats.malformedMessages += 1;
        this.settings.stats.errorFrames += 1;
        this.ws.send(relayErrorFrameText(message.error));
        return;
      case 'ignored':
        this.settings.stats.ignoredMessages += 1;
        return;
      case 'create':
        this.settings.stats.turns += 1;
        if (message.prewarm) this.settings.stats.prewarms += 1;
        if (this.running && this.queue.length >= this.settings.maxQueuedTurns) {
          this.settings.log.warn(
            { connection: this.settings.id, queued: this.queue.length },
            'websocket bridge: too many response.create messages in flight; closing',
          );
          this.ws.close(CLOSE_POLICY_VIOLATION, 'too many response.create messages in flight');
          this.abortTurns();
          return;
        }
        this.queue.push({ body: message.body, prewarm: message.prewarm });
        void this.pump();
        return;
    }
  }

  private async pump(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      await this.settings.ready;
      while (!this.closed && this.queue.length > 0) {
        const next = this.queue.shift() as QueuedTurn;
        await this.run(next);
      }
    } catch (error) {
      this.settings.log.error(
        { connection: this.settings.id, error: error instanceof Error ? error.message : error },
        'websocket bridge: unexpected failure',
      );
      this.ws.terminate();
    } finally {
      this.running = false;
    }
  }

  private async run(turn: QueuedTurn): Promise<void> {
    let body = turn.body;
    // A turn that omits its anchor while answering tool calls continues the connection's last
    // response; a self-contained input (a full history) is never given one.
    if (
      !turn.prewarm &&
      !hasAnchor(body) &&
      this.lastCompleted !== undefined &&
      !isSelfContained(normalizeInput(body.input))
    ) {
      body = { ...body, previous_response_id: this.lastCompleted };
      this.settings.stats.anchorsAdded += 1;
    }
    const current = new BridgeTurn(this.ws, this.settings.transport, {
      path: this.settings.path,
      headers: this.settings.headers,
      body: Buffer.from(JSON.stringify(body)),
      highWaterMark: this.settings.highWaterMark,
      maxErrorBodyBytes: this.settings.maxErrorBodyBytes,
      maxJsonBodyBytes: this.settings.maxJsonBodyBytes,
      counters: this.settings.stats,
      log: this.settings.log,
    });
    this.current = current;
    const outcome = await current.start().done;
    this.current = undefined;
    this.record(turn, outcome);
  }

  private record(turn: QueuedTurn, outcome: TurnOutcome): void {
    const stats = this.settings.stats;
    switch (outcome.kind) {
      case 'completed':
        stats.completed += 1;
        if (outcome.responseId !== undefined) this.lastCompleted = outcome.responseId;
        break;
      case 'failed':
      case 'incomplete':
        stats.failed += 1;
        break;
      case 'aborted':
        stats.aborted += 1;
        break;
      case 'error':
        break;
    }
    if (turn.prewarm && outcome.kind !== 'aborted' && !outcome.prewarmAnswered) {
      this.settings.onUnansweredPrewarm();
    }
  }

  private abortTurns(): void {
    this.queue.length = 0;
    this.current?.abort();
  }

  private onClose(): void {
    if (this.closed) return;
    this.closed = true;
    this.settings.stats.connectionsOpen -= 1;
    this.abortTurns();
  }
}

/** Request headers never copied from the upgrade request onto a turn's POST. */
const NOT_FORWARDED = new Set([
  'connection',
  'upgrade',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'te',
  'trailer',
  'expect',
  'content-length',
  'content-type',
  'content-encoding',
  'accept',
  'accept-encoding',
  'sec-websocket-key',
  'sec-websocket-version',
  'sec-websocket-extensions',
  'sec-websocket-protocol',
  // Each turn is a request of its own, with its own id.
  'x-request-id',
  BRIDGE_SESSION_HEADER,
]);

/** `OpenAI-Beta` without its WebSocket token (an HTTP upstream has no use for it). */
function httpBetaHeader(value: string): string | undefined {
  const kept = value
    .split(',')
    .map((token) => token.trim())
    .filter((token) => token !== '' && !token.toLowerCase().startsWith('responses_websockets'));
  return kept.length > 0 ? kept.join(', ') : undefined;
}

/**
 * The headers of every turn's POST: the upgrade request's own (credential, tenant and Codex
 * headers, so the route applies the same rules as to HTTP clients), minus what belongs to the
 * WebSocket handshake, plus the session key and the client's address.
 */
export function turnHeaders(req: IncomingMessage, sessionKey: string): OutgoingHttpHeaders {
  const headers: OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(req.headers)) {
    if (value === undefined || NOT_FORWARDED.has(name)) continue;
    if (name === 'openai-beta') {
      const beta = httpBetaHeader(Array.isArray(value) ? value.join(', ') : value);
      if (beta !== undefined) headers[name] = beta;
      continue;
    }
    headers[name] = value;
  }
  const remote = req.socket.remoteAddress;
  if (remote !== undefined) {
    const forwarded = req.headers['x-forwarded-for'];
    const prior = Array.isArray(forwarded) ? forwarded.join(', ') : forwarded;
    headers['x-forwarded-for'] = prior ? `${prior}, ${remote}` : remote;
  }
  headers['content-type'] = 'application/json';
  headers.accept = 'text/event-stream';
  headers['accept-encoding'] = 'identity';
  headers[BRIDGE_SESSION_HEADER] = sessionKey;
  return headers;
}
