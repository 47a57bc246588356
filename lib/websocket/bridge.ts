/**
 * `attachWebSocketBridge(server, options)`: serves the Responses API over WebSocket ("responses
 * websockets", as the Codex CLI and Desktop speak it) on top of the gateway's HTTP Responses
 * route.
 *
 * Every `response.create` message becomes one HTTP POST to that route, over loopback to the very
 * server the bridge is attached to, so each turn passes the same middlewares as an HTTP request:
 * authentication, upstream profile, error envelope, chaining (with the connection's session),
 * completion rebuilding, the retry guard and the proxy. The stream's events come back as one text
 * message each; errors as the wrapped error message the Codex client understands. Nothing about a
 * turn is decided twice: the bridge only translates transports.
 *
 * The upgrade itself is checked before it is accepted: a bad credential gets a plain 401, a path
 * where WebSocket is switched off a 426 (the Codex client then falls back to HTTP at once).
 */
import { randomUUID } from 'node:crypto';
import http, {
  STATUS_CODES,
  type IncomingMessage,
  type OutgoingHttpHeaders,
  type Server,
} from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import tls from 'node:tls';
import { WebSocketServer, type WebSocket } from 'ws';
import { safeLogger, STDERR_LOGGER, type ChainingLogger } from '../middleware/chaining-reply';
import { requestCredential } from '../middleware/chaining-tenant';
import { isRelayError, relayError } from '../protocol/relay-errors';
import type { OpenAIErrorEnvelope } from '../protocol/types';
import { BridgeConnection, emptyStats, turnHeaders, type WebSocketBridgeStats } from './connection';
import {
  normalizePath,
  resolveBridgeOptions,
  type ResolvedBridgeOptions,
  type UpgradeVerdict,
  type WebSocketBridgeOptions,
} from './options';
import { connectionSessionKey } from './session';
import type { TurnTransport } from './turn';

export interface WebSocketBridge {
  /** The `ws` server (noServer mode) holding the connections. */
  readonly wss: WebSocketServer;
  /** A snapshot of the bridge's counters. */
  readonly stats: Readonly<WebSocketBridgeStats>;
  /** Connections open now. */
  readonly connections: number;
  /**
   * Stops accepting upgrades, closes every connection (1001, turns in flight aborted) and
   * releases what the bridge owns. Call it before `server.close()`: open WebSocket connections
   * keep a server from closing.
   */
  close(): Promise<void>;
}

/**
 * The answer to an upgrade on a path where WebSocket is switched off (426 makes the Codex client
 * fall back to HTTP at once).
 */
export function websocketDisabledEnvelope(path: string): OpenAIErrorEnvelope {
  return {
    error: {
      message: `WebSocket is not available on '${path}'. Send the request over HTTP instead.`,
      type: 'invalid_request_error',
      param: null,
      code: 'relay_websocket_disabled',
    },
  };
}

const SILENT: ChainingLogger = Object.freeze({ warn: () => undefined, error: () => undefined });

const OWNER = 'attachWebSocketBridge';

/** Writes a plain HTTP answer on an upgrade socket and closes it. */
function refuse(
  socket: Duplex,
  status: number,
  envelope: OpenAIErrorEnvelope,
  headers: Record<string, string> = {},
): void {
  if (socket.destroyed || !socket.writable) {
    socket.destroy();
    return;
  }
  const body = JSON.stringify(envelope);
  const lines = [
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Error'}`,
    'Connection: close',
    'Content-Type: application/json',
    `Content-Length: ${Buffer.byteLength(body)}`,
  ];
  for (const [name, value] of Object.entries(headers)) {
    if (/^[\w-]+$/.test(name) && !/[\r\n]/.test(value)) lines.push(`${name}: ${value}`);
  }
  socket.once('finish', () => socket.destroy());
  socket.end(`${lines.join('\r\n')}\r\n\r\n${body}`);
  setTimeout(() => socket.destroy(), 1000).unref();
}

function defaultAuthenticate(req: IncomingMessage): boolean {
  return requestCredential(req) !== undefined;
}

interface Target {
  secure: boolean;
  hostname?: string;
  port?: number;
  socketPath?: string;
}

function loopbackHost(address: string): string {
  if (address === '0.0.0.0' || address === '') return '127.0.0.1';
  if (address === '::' || address === '::0') return '::1';
  return address;
}

function targetOfAddress(address: AddressInfo | string | null): Target {
  if (address === null) {
    throw new Error(`${OWNER}: the server is not listening, so its Responses route is unreachable`);
  }
  if (typeof address === 'string') return { secure: false, socketPath: address };
  return { secure: false, hostname: loopbackHost(address.address), port: address.port };
}

/**
 * Attaches the bridge to an HTTP server (the one your Express app listens on).
 *
 * @example
 * const app = express();
 * app.post(['/v1/responses', '/responses'], express.json({ limit: '32mb' }),
 *   errorEnvelope({ provider: 'openai' }),
 *   responseChaining({ store, upstreamMode: 'stateless', session: bridgeSession() }),
 *   sseCompletion(), retryGuard(), prewarmResponder(),
 *   createProxyMiddleware({ target, changeOrigin: true, ...relayProxyOptions() }));
 * const server = app.listen(8080);
 * const bridge = attachWebSocketBridge(server, { path: ['/v1/responses', '/responses'] });
 */
export function attachWebSocketBridge(
  server: Server,
  options: WebSocketBridgeOptions = {},
): WebSocketBridge {
  if (typeof (server as Partial<Server> | undefined)?.on !== 'function') {
    throw new TypeError(`${OWNER}: server must be an http.Server (what app.listen() returns)`);
  }
  const settings: ResolvedBridgeOptions = resolveBridgeOptions(options);
  if (
    settings.origin === undefined &&
    settings.handler === undefined &&
    server instanceof tls.Server
  ) {
    throw new TypeError(
      `${OWNER}: the server is an HTTPS server; pass options.handler (your app, served on a ` +
        'private loopback listener) or options.origin to reach the Responses route',
    );
  }
  const log: ChainingLogger =
    settings.logger === false
      ? SILENT
      : settings.logger === undefined
        ? STDERR_LOGGER
        : safeLogger(settings.logger);
  const stats = emptyStats();
  const connections = new Set<BridgeConnection>();
  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: settings.maxPayload,
    perMessageDeflate: settings.perMessageDeflate,
    clientTracking: false,
  });
  wss.on('error', (error) => log.error({ error: error.message }, 'websocket bridge: server error'));

  const secure = settings.origin?.protocol === 'https:';
  const ownAgent = settings.agent === undefined;
  const agent =
    settings.agent ??
    (secure ? new https.Agent({ keepAlive: true }) : new http.Agent({ keepAlive: true }));

  // Where turns are posted: an explicit origin, a private listener running `handler`, or the
  // server itself over loopback.
  let privateServer: Server | undefined;
  let privateTarget: Target | undefined;
  let ready: Promise<void> = Promise.resolve();
  if (settings.handler !== undefined) {
    const internal = http.createServer(settings.handler);
    privateServer = internal;
    ready = new Promise<void>((resolve, reject) => {
      internal.once('error', reject);
      internal.listen(0, '127.0.0.1', () => {
        privateTarget = targetOfAddress(internal.address());
        resolve();
      });
    });
    ready.catch((error: unknown) =>
      log.error(
        { error: error instanceof Error ? error.message : String(error) },
        'websocket bridge: the private listener could not start',
      ),
    );
  }
  const target = (): Target => {
    if (settings.origin !== undefined) {
      const origin = settings.origin;
      return {
        secure,
        hostname: origin.hostname.replace(/^\[(.*)\]$/, '$1'),
        port: origin.port === '' ? (secure ? 443 : 80) : Number(origin.port),
      };
    }
    if (privateTarget !== undefined) return privateTarget;
    return targetOfAddress(server.address());
  };
  const transport: TurnTransport = (path: string, headers: OutgoingHttpHeaders) => {
    const where = target();
    const request = where.secure ? https.request : http.request;
    return request({
      method: 'POST',
      path,
      headers,
      agent,
      ...(where.socketPath !== undefined
        ? { socketPath: where.socketPath }
        : { hostname: where.hostname, port: where.port }),
    });
  };

  let warnedPrewarm = false;
  const onUnansweredPrewarm = (): void => {
    if (warnedPrewarm) return;
    warnedPrewarm = true;
    log.warn(
      {},
      'websocket bridge: a generate:false prewarm was not answered by prewarmResponder(); mount it on the Responses route (after responseChaining) so prewarms are answered at once and stored',
    );
  };

  /** The HTTP route of a connection's turns. */
  const routeOf = (req: IncomingMessage): string => {
    const url = req.url ?? '/';
    return settings.route?.(req) ?? (url.startsWith('/') ? url : `/${url}`);
  };

  const accept = (ws: WebSocket, req: IncomingMessage, path: string): void => {
    const id = randomUUID();
    const sessionKey = connectionSessionKey(req, id);
    const connection = new BridgeConnection(ws, {
      id,
      sessionKey,
      path,
      headers: turnHeaders(req, sessionKey),
      transport,
      ready,
      highWaterMark: settings.highWaterMark,
      maxQueuedTurns: settings.maxQueuedTurns,
      maxErrorBodyBytes: settings.maxErrorBodyBytes,
      maxJsonBodyBytes: settings.maxPayload,
      stats,
      log,
      onUnansweredPrewarm,
    });
    stats.connectionsOpened += 1;
    stats.connectionsOpen += 1;
    connections.add(connection);
    ws.once('close', () => connections.delete(connection));
  };

  const authorize = async (req: IncomingMessage): Promise<UpgradeVerdict> =>
    (settings.authenticate ?? defaultAuthenticate)(req);

  const reject = (
    socket: Duplex,
    status: number,
    envelope: OpenAIErrorEnvelope,
    headers?: Record<string, string>,
  ): void => {
    stats.upgradesRefused += 1;
    refuse(socket, status, envelope, headers);
  };

  /** A callback of the options threw: a 500 envelope, and the server goes on. */
  const failUpgrade = (socket: Duplex, callback: string, error: unknown): void => {
    log.error(
      { error: error instanceof Error ? error.message : String(error) },
      `websocket bridge: ${callback} failed`,
    );
    reject(socket, 500, relayError('internal_error').toEnvelope());
  };

  let closing = false;
  const onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    socket.on('error', () => undefined);
    const path = normalizePath(req.url ?? '/');
    const ours = settings.paths.has(path);
    let disabled: boolean;
    try {
      disabled = settings.disabledPaths.has(path) || (ours && (closing || !settings.enabled(req)));
    } catch (error) {
      failUpgrade(socket, 'enabled()', error);
      return;
    }
    if (disabled) {
      reject(socket, 426, websocketDisabledEnvelope(path));
      return;
    }
    if (!ours) {
      // Another listener may serve this path; when there is none, the client should use HTTP.
      if (server.listenerCount('upgrade') <= 1)
        reject(socket, 426, websocketDisabledEnvelope(path));
      return;
    }
    authorize(req).then(
      (verdict) => {
        if (socket.destroyed) return;
        if (verdict !== true) {
          const error = isRelayError(verdict) ? verdict : relayError('missing_credentials');
          reject(socket, error.status, error.toEnvelope(), error.headers);
          return;
        }
        if (closing) {
          reject(socket, 426, websocketDisabledEnvelope(path));
          return;
        }
        let route: string;
        try {
          route = routeOf(req);
        } catch (error) {
          failUpgrade(socket, 'route()', error);
          return;
        }
        wss.handleUpgrade(req, socket, head, (ws) => accept(ws, req, route));
      },
      (error: unknown) => failUpgrade(socket, 'authenticate()', error),
    );
  };
  server.on('upgrade', onUpgrade);

  const heartbeat =
    settings.pingIntervalMs > 0
      ? setInterval(() => {
          for (const connection of connections) connection.heartbeat();
        }, settings.pingIntervalMs)
      : undefined;
  heartbeat?.unref();

  let closed: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closed ??= (async () => {
      closing = true;
      server.off('upgrade', onUpgrade);
      if (heartbeat !== undefined) clearInterval(heartbeat);
      const ended = [...connections].map(
        (connection) =>
          new Promise<void>((resolve) => {
            if (connection.ws.readyState === connection.ws.CLOSED) resolve();
            else connection.ws.once('close', () => resolve());
            connection.shutdown();
          }),
      );
      await Promise.all(ended);
      await new Promise<void>((resolve) => wss.close(() => resolve()));
      if (ownAgent) agent.destroy();
      if (privateServer !== undefined) {
        const internal = privateServer;
        internal.closeAllConnections();
        await new Promise<void>((resolve) => internal.close(() => resolve()));
      }
    })();
    return closed;
  };
  server.once('close', () => void close());

  return {
    wss,
    get stats() {
      return { ...stats };
    },
    get connections() {
      return connections.size;
    },
    close,
  };
}
