/**
 * The options of `attachWebSocketBridge()`, their defaults and their checks. Everything is
 * resolved once, when the bridge is attached, so a misconfiguration throws there and never on a
 * client's connection.
 */
import type { Agent, IncomingMessage, RequestListener } from 'node:http';
import type { ChainingLogger } from '../middleware/chaining-reply';
import type { RelayError } from '../protocol/relay-errors';

/** What `authenticate` may answer: accept, refuse with 401, or refuse with this error. */
export type UpgradeVerdict = boolean | RelayError;

export interface WebSocketBridgeOptions {
  /**
   * The upgrade paths the bridge accepts (query strings are ignored, a trailing `/` too). The
   * Codex CLI connects to `{base_url}/responses`.
   * @default ['/v1/responses', '/responses']
   */
  path?: string | readonly string[];
  /**
   * `false` answers every upgrade on `path` with 426: the Codex client then falls back to HTTP at
   * once (a 404 or 405 costs it several slow reconnects first). A function decides per request.
   * @default true
   */
  enabled?: boolean | ((req: IncomingMessage) => boolean);
  /**
   * Paths on which WebSocket is switched off: answered 426. An upgrade on any other path that is
   * not in `path` is left to the server's other `upgrade` listeners, or answered 426 when the
   * bridge is the only one.
   * @default []
   */
  disabledPaths?: readonly string[];
  /**
   * Decides whether an upgrade may proceed, before it is accepted, with the gateway's own rules
   * (the HTTP middlewares do not run on an upgrade). `false` answers a plain `401` with the
   * relay's `relay_missing_credentials` envelope; a `RelayError` answers its own status and
   * envelope. Every turn then passes the HTTP route's own checks as well.
   * @default a `Authorization: Bearer …`, `x-api-key` or `api-key` credential must be present
   */
  authenticate?: (req: IncomingMessage) => UpgradeVerdict | Promise<UpgradeVerdict>;
  /**
   * The HTTP route each `response.create` is posted to (path and query).
   * @default the upgrade request's own path and query (`/v1/responses` for Codex)
   */
  route?: string | ((req: IncomingMessage) => string);
  /**
   * Where the HTTP route is served, as an origin (`http://127.0.0.1:8080`).
   * @default the server the bridge is attached to, over loopback (its `server.address()`)
   */
  origin?: string;
  /**
   * Serve the turns with this request handler (your Express app) on a private loopback listener
   * instead of going through `server`. Use it when `server` is an HTTPS server, or when the
   * Responses route is not mounted on it.
   */
  handler?: RequestListener;
  /** The HTTP agent of the loopback requests. @default a keep-alive agent owned by the bridge */
  agent?: Agent;
  /**
   * Largest client message, in bytes (after permessage-deflate): a larger one closes the
   * connection with 1009. The Codex CLI sends about 40 KB per frame, and whole histories (MBs)
   * after a reconnect.
   * @default 32 MiB (the HTTP route's usual body limit)
   */
  maxPayload?: number;
  /**
   * Back-pressure: when more than this many bytes wait to be sent to a client, the turn's HTTP
   * response (and with it the upstream) is paused until half of it has drained.
   * @default 1 MiB
   */
  highWaterMark?: number;
  /**
   * A ping goes to every client this often; a client that did not answer the previous ping is
   * terminated. `0` disables pings. The Codex CLI answers pings.
   * @default 30000
   */
  pingIntervalMs?: number;
  /**
   * `response.create` messages waiting behind the turn in flight (a connection serves one turn at
   * a time, as the Codex client expects). One more closes the connection with 1008.
   * @default 4
   */
  maxQueuedTurns?: number;
  /** Largest HTTP error body read for the wrapped error message. @default 64 KiB */
  maxErrorBodyBytes?: number;
  /** Negotiate permessage-deflate (the Codex client offers it). @default true */
  perMessageDeflate?: boolean;
  /** Where warnings and errors go; `false` for none. @default JSON lines on stderr */
  logger?: ChainingLogger | false;
}

export const DEFAULT_WS_PATHS: readonly string[] = Object.freeze(['/v1/responses', '/responses']);
export const DEFAULT_MAX_PAYLOAD = 32 * 1024 * 1024;
export const DEFAULT_HIGH_WATER_MARK = 1024 * 1024;
export const DEFAULT_PING_INTERVAL_MS = 30_000;
export const DEFAULT_MAX_QUEUED_TURNS = 4;
export const DEFAULT_MAX_ERROR_BODY_BYTES = 64 * 1024;

/** The options after defaults and checks. */
export interface ResolvedBridgeOptions {
  paths: ReadonlySet<string>;
  disabledPaths: ReadonlySet<string>;
  enabled: (req: IncomingMessage) => boolean;
  authenticate: ((req: IncomingMessage) => UpgradeVerdict | Promise<UpgradeVerdict>) | undefined;
  route: ((req: IncomingMessage) => string) | undefined;
  origin: URL | undefined;
  handler: RequestListener | undefined;
  agent: Agent | undefined;
  maxPayload: number;
  highWaterMark: number;
  pingIntervalMs: number;
  maxQueuedTurns: number;
  maxErrorBodyBytes: number;
  perMessageDeflate: boolean;
  logger: ChainingLogger | false | undefined;
}

const OWNER = 'attachWebSocketBridge';

/** `/v1/responses/` and `/v1/responses?x=1` both become `/v1/responses`. */
export function normalizePath(url: string): string {
  const path = url.split('?')[0] ?? '/';
  const trimmed = path.length > 1 && path.endsWith('/') ? path.slice(0, -1) : path;
  return trimmed === '' ? '/' : trimmed;
}

function pathSet(name: string, value: string | readonly string[] | undefined): Set<string> {
  const list = value === undefined ? [] : typeof value === 'string' ? [value] : value;
  if (!Array.isArray(list) && typeof value !== 'string') {
    throw new TypeError(`${OWNER}: options.${name} must be a path or a list of paths`);
  }
  const set = new Set<string>();
  for (const entry of list) {
    if (typeof entry !== 'string' || !entry.startsWith('/')) {
      throw new TypeError(`${OWNER}: options.${name} entries must be paths starting with '/'`);
    }
    set.add(normalizePath(entry));
  }
  return set;
}

function positive(name: string, value: number | undefined, fallback: number, zero = false): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || (!zero && value === 0)) {
    throw new TypeError(
      `${OWNER}: options.${name} must be a ${zero ? 'non-negative' : 'positive'} number`,
    );
  }
  return Math.floor(value);
}

export function resolveBridgeOptions(options: WebSocketBridgeOptions = {}): ResolvedBridgeOptions {
  if (typeof options !== 'object' || options === null) {
    throw new TypeError(`${OWNER}: options must be an object`);
  }
  const paths = pathSet('path', options.path ?? DEFAULT_WS_PATHS);
  if (paths.size === 0) throw new TypeError(`${OWNER}: options.path must name at least one path`);
  const enabledOption = options.enabled ?? true;
  if (typeof enabledOption !== 'boolean' && typeof enabledOption !== 'function') {
    throw new TypeError(`${OWNER}: options.enabled must be a boolean or a function`);
  }
  if (options.authenticate !== undefined && typeof options.authenticate !== 'function') {
    throw new TypeError(`${OWNER}: options.authenticate must be a function`);
  }
  const routeOption = options.route;
  if (
    routeOption !== undefined &&
    typeof routeOption !== 'function' &&
    (typeof routeOption !== 'string' || !routeOption.startsWith('/'))
  ) {
    throw new TypeError(`${OWNER}: options.route must be a path starting with '/' or a function`);
  }
  let origin: URL | undefined;
  if (options.origin !== undefined) {
    try {
      origin = new URL(options.origin);
    } catch {
      throw new TypeError(`${OWNER}: options.origin must be a URL such as http://127.0.0.1:8080`);
    }
    if (origin.protocol !== 'http:' && origin.protocol !== 'https:') {
      throw new TypeError(`${OWNER}: options.origin must be an http: or https: URL`);
    }
  }
  if (options.handler !== undefined && typeof options.handler !== 'function') {
    throw new TypeError(`${OWNER}: options.handler must be a request listener (an Express app)`);
  }
  if (options.handler !== undefined && origin !== undefined) {
    throw new TypeError(`${OWNER}: give options.origin or options.handler, not both`);
  }
  const maxPayload = positive('maxPayload', options.maxPayload, DEFAULT_MAX_PAYLOAD);
  return {
    paths,
    disabledPaths: pathSet('disabledPaths', options.disabledPaths),
    enabled: typeof enabledOption === 'function' ? enabledOption : () => enabledOption,
    authenticate: options.authenticate,
    route: typeof routeOption === 'string' ? () => routeOption : routeOption,
    origin,
    handler: options.handler,
    agent: options.agent,
    maxPayload,
    highWaterMark: positive('highWaterMark', options.highWaterMark, DEFAULT_HIGH_WATER_MARK),
    pingIntervalMs: positive(
      'pingIntervalMs',
      options.pingIntervalMs,
      DEFAULT_PING_INTERVAL_MS,
      true,
    ),
    maxQueuedTurns: positive(
      'maxQueuedTurns',
      options.maxQueuedTurns,
      DEFAULT_MAX_QUEUED_TURNS,
      true,
    ),
    maxErrorBodyBytes: positive(
      'maxErrorBodyBytes',
      options.maxErrorBodyBytes,
      DEFAULT_MAX_ERROR_BODY_BYTES,
    ),
    perMessageDeflate: options.perMessageDeflate ?? true,
    logger: options.logger,
  };
}
