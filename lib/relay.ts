/**
 * `createRelay()`: the standalone relay, composed only from the package's public parts — the
 * same middlewares a gateway author mounts (DESIGN.md §1), in the documented order — into an
 * Express app and an HTTP server. The `responses-relay` command, the examples and the demo all
 * run it.
 *
 * ```
 * every request   relayLogger → metrics → drain guard
 * GET  /healthz /readyz /metrics
 * POST …/responses            upstreamProfile → errorEnvelope → responseChaining → sseCompletion
 *                             → retryGuard → prewarmResponder → relayProxy
 * WebSocket …/responses       attachWebSocketBridge: each `response.create` is posted to the
 *                             route above (same middlewares), events come back as messages
 * GET|DELETE …/responses/{id}, GET …/{id}/input_items, POST …/{id}/cancel
 *                             errorEnvelope → responseOwnership → relayProxy
 * any other /v1/*             proxied untouched (a connection failure becomes an OpenAI error)
 * anything else               404 OpenAI error
 * errors                      relayErrorHandler
 * ```
 */
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import https from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import express, { type Express } from 'express';
import { createProxyMiddleware } from 'http-proxy-middleware';
import type { Logger } from 'pino';
import type { ValidatePolicy } from './middleware/chaining-expand';
import { responseOwnership } from './middleware/chaining-ownership';
import type { ChainingLogger, StoreErrorPolicy } from './middleware/chaining-reply';
import { errorEnvelope, relayErrorHandler } from './middleware/error-envelope';
import { getExchange, type Exchange } from './middleware/exchange';
import { sendEnvelope, sendRelayError } from './middleware/send-error';
import { dropHopByHopRequestHeaders, relayProxy } from './middleware/relay-proxy';
import { responseChaining } from './middleware/response-chaining';
import { retryGuard, type RetryGuardOptions } from './middleware/retry-guard';
import { sseCompletion, type SseCompletionOptions } from './middleware/sse-completion';
import { upstreamProfile } from './middleware/upstream-profile';
import { createHealth, type Health, type ReadinessReport } from './ops/health';
import { createLogger, relayLogger } from './ops/logger';
import { RelayMetrics, type RelayMetricsOptions } from './ops/metrics';
import {
  markRoute,
  markSession,
  markUpstream,
  summarizeExchange,
  recordRetry,
  type ExchangeSummary,
  type RouteKind,
} from './ops/summary';
import { responsesRoutes } from './profiles/routes';
import { resolveProfile, type ProfileDefinition } from './profiles/registry';
import type { ProfileName, UpstreamMode, UpstreamProfile } from './profiles/types';
import { relayError } from './protocol/relay-errors';
import { MemorySessionStore } from './store/memory-session-store';
import type { SessionStore } from './store/session-store';
import {
  attachWebSocketBridge,
  websocketDisabledEnvelope,
  type WebSocketBridge,
} from './websocket/bridge';
import type { WebSocketBridgeOptions } from './websocket/options';
import { prewarmResponder } from './websocket/prewarm';
import { bridgeSession } from './websocket/session';

export interface RelayOptions {
  /**
   * The upstream's base URL. For the `openai` profile, the origin the client's `/v1/…` paths are
   * appended to (a trailing `/v1` is accepted): `https://api.openai.com`. For the `codex` profile,
   * the origin (`https://chatgpt.com`, requests go to `/backend-api/codex/responses`) or the base
   * of the Responses endpoint (`https://chatgpt.com/backend-api/codex`).
   */
  upstream: string;
  /**
   * The upstream profile: `'openai'` (the OpenAI API and compatible servers), `'codex'` (the
   * ChatGPT Codex backend) or your own (see `defineProfile`). @default 'openai'
   */
  profile?: ProfileName | ProfileDefinition | UpstreamProfile;
  /**
   * `stateful`: the upstream stores responses and continues `previous_response_id` itself;
   * `stateless`: the relay keeps conversations. @default the profile's (`openai`: stateful,
   * `codex`: stateless)
   */
  upstreamMode?: UpstreamMode;
  /** Where conversations and ownership records live. @default a new `MemorySessionStore` */
  store?: SessionStore;
  /**
   * HMAC key of tenant ids; every relay sharing a store must use the same one.
   * @default process.env.RELAY_TENANT_SECRET; with a memory store and none set, a random
   * per-process key (a Redis store requires one)
   */
  tenantSecret?: string | Buffer;
  /** What a store failure does to a request (see `responseChaining`). @default 'fail-closed' */
  onStoreError?: StoreErrorPolicy;
  /** Tool-call pairing policy (see `responseChaining`). @default 'reject' */
  validate?: ValidatePolicy;
  /** The retry guard's options, or `false` for no retries. @default {} (4 attempts) */
  retry?: RetryGuardOptions | false;
  /** Options of `sseCompletion`. @default {} */
  sseCompletion?: SseCompletionOptions;
  /** The name stored with each response for upstream affinity. @default the upstream's host */
  upstreamName?: string;
  /** The logger (pino), or `false` for none. @default a logger at `logLevel` on stdout */
  logger?: Logger | false;
  /** Level of the default logger. @default 'info' */
  logLevel?: string;
  /** Metrics on a registry of their own (or yours), or `false` for no `/metrics`. @default {} */
  metrics?: RelayMetrics | RelayMetricsOptions | false;
  /**
   * Serve the Responses routes over WebSocket too (the Codex CLI's "responses websockets"), or
   * the bridge's options, or `false` for HTTP only (upgrades are then answered 426, so Codex
   * falls back to HTTP at once). @default true
   */
  websocket?: boolean | Omit<WebSocketBridgeOptions, 'handler' | 'origin'>;
  /** Proxy every other `/v1/*` path to the upstream untouched. @default true */
  passthrough?: boolean;
  /** Largest request body, in bytes. @default 32 MiB */
  maxBodyBytes?: number;
  /** Deadline of each readiness probe, in ms. @default 1000 */
  readinessTimeoutMs?: number;
  /** How long `close()` lets in-flight requests and streams finish, in ms. @default 30000 */
  shutdownTimeoutMs?: number;
  /**
   * The agent for upstream connections. By default the relay keeps its own keep-alive agent
   * (connections are reused across requests and destroyed by `close()`); a new TCP (and TLS)
   * connection per request would cost more than everything else the relay does.
   */
  upstreamAgent?: http.Agent;
}

export interface CloseOptions {
  /** Overrides `shutdownTimeoutMs` for this call. */
  timeoutMs?: number;
}

/** Events of a relay: one `exchange` per client request, when it ended. */
export interface RelayEvents {
  exchange: [summary: ExchangeSummary];
}

export interface Relay extends EventEmitter<RelayEvents> {
  readonly app: Express;
  readonly server: http.Server;
  readonly store: SessionStore;
  readonly logger: Logger | undefined;
  readonly metrics: RelayMetrics | undefined;
  readonly health: Health;
  /** The WebSocket bridge, unless `websocket: false`. */
  readonly bridge: WebSocketBridge | undefined;
  /** The upstream profile in use. */
  readonly profile: UpstreamProfile;
  readonly upstreamMode: UpstreamMode;
  /** `http://host:port` once listening. */
  readonly url: string | undefined;
  /** True once `close()` started. */
  readonly draining: boolean;
  /** Starts listening; resolves with the URL. */
  listen(port?: number, host?: string): Promise<string>;
  /** Readiness, as `/readyz` reports it. */
  readiness(): Promise<ReadinessReport>;
  /**
   * Graceful shutdown: readiness turns to `draining`, the server stops accepting connections,
   * in-flight requests and streams may finish up to the timeout (then their connections are
   * closed), and the store the relay created is closed. A store you passed is yours to close.
   */
  close(options?: CloseOptions): Promise<void>;
}

/** Where the upstream's paths are. */
interface UpstreamLayout {
  /** `scheme://host:port`, no user-info. */
  origin: string;
  /** The path the client's `/v1/…` paths are appended to (no trailing slash, may be ''). */
  apiBase: string;
  /** The upstream path of `POST …/responses`. */
  responsesPath: string;
}

function resolveLayout(upstream: string, profile: UpstreamProfile): UpstreamLayout {
  let url: URL;
  try {
    url = new URL(upstream);
  } catch {
    throw new TypeError(`createRelay: options.upstream is not a URL: ${JSON.stringify(upstream)}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new TypeError('createRelay: options.upstream must be an http: or https: URL');
  }
  if (url.username !== '' || url.password !== '') {
    throw new TypeError('createRelay: options.upstream must not carry credentials');
  }
  const base = url.pathname.replace(/\/+$/, '');
  const apiBase = base.replace(/\/v1$/, '');
  let responsesPath: string;
  if (profile.path !== undefined) {
    if (base === '') responsesPath = profile.path;
    else if (base.endsWith('/responses')) responsesPath = base;
    else responsesPath = `${base}/responses`;
  } else {
    responsesPath = `${apiBase}/v1/responses`;
  }
  return { origin: url.origin, apiBase, responsesPath };
}

/** Keeps the query string of `path` on `target`. */
function withQuery(target: string, path: string): string {
  const query = path.indexOf('?');
  return query === -1 ? target : `${target}${path.slice(query)}`;
}

/** `/v1/responses/abc/input_items?x=1` → `<responsesPath>/abc/input_items?x=1`. */
function perResponsePath(responsesPath: string, path: string): string {
  const at = path.indexOf('/responses/');
  return at === -1 ? path : `${responsesPath}${path.slice(at + '/responses'.length)}`;
}

function resolveTenantSecret(
  given: string | Buffer | undefined,
  store: SessionStore,
  logger: Logger | undefined,
): string | Buffer {
  const secret = given ?? process.env.RELAY_TENANT_SECRET;
  if (secret !== undefined && secret.length > 0) return secret;
  if (store instanceof MemorySessionStore) {
    logger?.info(
      'no tenant secret configured: using a random per-process key (fine with the memory store)',
    );
    return randomBytes(32);
  }
  throw new TypeError(
    'createRelay: options.tenantSecret (or RELAY_TENANT_SECRET) is required with a shared store: ' +
      'every relay instance must hash tenants with the same key',
  );
}

function sendNotFound(req: IncomingMessage, res: ServerResponse): void {
  const path = (req.url ?? '/').split('?')[0] ?? '/';
  sendEnvelope(getExchange(req, res), 404, {
    error: {
      message: `Invalid URL (${req.method ?? 'GET'} ${path.slice(0, 200)})`,
      type: 'invalid_request_error',
      param: null,
      code: null,
    },
  });
}

/** Without the bridge, an upgrade gets 426: the Codex client then falls back to HTTP at once. */
function refuseUpgrade(req: IncomingMessage, socket: Duplex): void {
  const body = JSON.stringify(websocketDisabledEnvelope((req.url ?? '/').split('?')[0] ?? '/'));
  socket.on('error', () => undefined);
  socket.end(
    'HTTP/1.1 426 Upgrade Required\r\nConnection: close\r\nContent-Type: application/json\r\n' +
      `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
}

const SILENT: ChainingLogger = Object.freeze({ warn: () => undefined, error: () => undefined });

/** The bridge logs through pino with the chaining logger's `(details, message)` calls. */
function chainingLogger(logger: Logger): ChainingLogger {
  return {
    debug: (details, message) => logger.debug(details, message),
    info: (details, message) => logger.info(details, message),
    warn: (details, message) => logger.warn(details, message),
    error: (details, message) => logger.error(details, message),
  };
}

/** Marks the exchange as answered through relayProxy (see `Exchange.proxyHandlesResponse`). */
function proxiedByRelay(req: IncomingMessage, res: ServerResponse, next: () => void): void {
  getExchange(req, res).proxyHandlesResponse = true;
  next();
}

/** Marks the route kind (and the upstream it goes to) for logs and metrics. */
function route(kind: RouteKind, upstream?: string) {
  return (req: IncomingMessage, _res: ServerResponse, next: () => void): void => {
    markRoute(req, kind);
    if (upstream !== undefined) markUpstream(req, upstream);
    next();
  };
}

/**
 * Builds the standalone relay (not listening yet; call `listen()`).
 *
 * @example
 * ```ts
 * const relay = createRelay({ upstream: 'https://api.openai.com' });
 * await relay.listen(8080, '0.0.0.0');
 * process.once('SIGTERM', () => void relay.close());
 * ```
 */
export function createRelay(options: RelayOptions): Relay {
  if (typeof options?.upstream !== 'string') {
    throw new TypeError('createRelay: options.upstream (the upstream base URL) is required');
  }
  const profile = resolveProfile(options.profile ?? 'openai');
  const upstreamMode = options.upstreamMode ?? profile.upstreamMode;
  if (upstreamMode !== 'stateful' && upstreamMode !== 'stateless') {
    throw new TypeError("createRelay: options.upstreamMode must be 'stateful' or 'stateless'");
  }
  if (profile.name === 'codex' && upstreamMode === 'stateful') {
    throw new TypeError(
      'createRelay: the codex profile needs upstreamMode stateless (the backend stores nothing)',
    );
  }
  const layout = resolveLayout(options.upstream, profile);
  const upstreamName = options.upstreamName ?? new URL(layout.origin).host;
  const ownAgent = options.upstreamAgent === undefined;
  const upstreamAgent =
    options.upstreamAgent ??
    (layout.origin.startsWith('https:')
      ? new https.Agent({ keepAlive: true })
      : new http.Agent({ keepAlive: true }));

  const logger =
    options.logger === false
      ? undefined
      : (options.logger ?? createLogger({ level: options.logLevel ?? 'info' }));
  const metrics =
    options.metrics === false
      ? undefined
      : options.metrics instanceof RelayMetrics
        ? options.metrics
        : new RelayMetrics(options.metrics ?? {});

  const ownStore = options.store === undefined;
  const rawStore = options.store ?? new MemorySessionStore();
  const store = metrics ? metrics.instrumentStore(rawStore) : rawStore;
  const tenantSecret = resolveTenantSecret(options.tenantSecret, rawStore, logger);

  let draining = false;
  /** Set while a shutdown waits for the in-flight requests; called once the last one ends. */
  let onDrained: (() => void) | undefined;
  let url: string | undefined;
  const inflight = new Set<ServerResponse>();
  const byRequestId = new Map<string, Exchange>();
  const emitter = new EventEmitter<RelayEvents>();
  const health = createHealth({
    store,
    upstream: layout.origin,
    isDraining: () => draining,
    timeoutMs: options.readinessTimeoutMs,
  });
  // Codex-style session headers, and the session of a bridged WebSocket connection.
  const sessionOf = bridgeSession();

  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);

  // --- every request -------------------------------------------------------------------------
  if (logger) app.use(relayLogger({ logger }));
  if (metrics) app.use(metrics.middleware());
  app.use((req, res, next) => {
    const exchange = getExchange(req, res);
    inflight.add(res);
    byRequestId.set(exchange.requestId, exchange);
    markSession(req, sessionOf(req));
    if (draining) res.setHeader('connection', 'close');
    res.once('close', () => {
      inflight.delete(res);
      if (byRequestId.get(exchange.requestId) === exchange) byRequestId.delete(exchange.requestId);
      // The drain first: a listener of 'exchange' that throws must not hold up a shutdown.
      if (draining) {
        server.closeIdleConnections();
        if (inflight.size === 0) onDrained?.();
      }
      // The summary is built only for someone who listens (the logger and metrics build their own).
      if (emitter.listenerCount('exchange') === 0) return;
      try {
        emitter.emit('exchange', summarizeExchange(req, res));
      } catch (error) {
        // A listener's failure never takes the relay down.
        try {
          logger?.warn(
            { error: error instanceof Error ? error.message : String(error) },
            "relay: an 'exchange' listener threw",
          );
        } catch {
          // Nor does a failing logger.
        }
      }
    });
    next();
  });

  // --- operations ------------------------------------------------------------------------------
  app.get('/healthz', route('ops'), health.livenessHandler());
  app.get('/readyz', route('ops'), health.readinessHandler());
  if (metrics) app.get('/metrics', route('ops'), metrics.handler());

  // --- the Responses routes ------------------------------------------------------------------
  const provider = profile.name;
  // With a logger, the middlewares write through pino-http's `req.log` (bound to the request id);
  // `logger: false` silences them too.
  const tenancy = { tenantSecret, upstreamMode, ...(logger ? {} : { logger: SILENT }) };
  const proxyTo = (rewrite: (path: string) => string) =>
    relayProxy({
      target: layout.origin,
      proxy: { agent: upstreamAgent, pathRewrite: (path: string) => rewrite(path) },
    });

  const createChain = [
    route('responses', upstreamName),
    // The chain ends in relayProxy, which runs the shared pipeline: no middleware need tap.
    proxiedByRelay,
    upstreamProfile(profile, { maxBodyBytes: options.maxBodyBytes }),
    errorEnvelope({ provider }),
    responseChaining({
      store,
      ...tenancy,
      session: sessionOf,
      validate: options.validate,
      onStoreError: options.onStoreError,
      upstreamName: () => upstreamName,
      maxBodyBytes: options.maxBodyBytes,
    }),
    sseCompletion(options.sseCompletion ?? {}),
  ];
  // ── Retry guard (DESIGN §8): mounted here, in front of the proxy that carries the attempts.
  if (options.retry !== false) {
    createChain.push(
      retryGuard({
        ...options.retry,
        logger: options.retry?.logger ?? logger,
        onRetry: (event) => {
          const exchange = byRequestId.get(event.requestId);
          if (exchange) recordRetry(exchange, event.reason);
          metrics?.recordRetry(event.reason);
          if (options.retry) options.retry.onRetry?.(event);
        },
      }),
    );
  }
  // Codex's WebSocket prewarm (`generate: false`) is answered here and stored; nothing goes upstream.
  createChain.push(prewarmResponder({ maxBodyBytes: options.maxBodyBytes }));
  app.post(
    responsesRoutes(),
    ...createChain,
    proxyTo((path) => withQuery(layout.responsesPath, path)),
  );

  const perResponse = responsesRoutes()
    .map((base) => [`${base}/:id`, `${base}/:id/input_items`, `${base}/:id/cancel`])
    .flat();
  const ownershipChain = [
    route('response', upstreamName),
    errorEnvelope({ provider }),
    responseOwnership({ store, ...tenancy }),
    proxyTo((path) => perResponsePath(layout.responsesPath, path)),
  ];
  app.get(
    perResponse.filter((path) => !path.endsWith('/cancel')),
    ...ownershipChain,
  );
  app.delete(
    perResponse.filter((path) => path.endsWith('/:id')),
    ...ownershipChain,
  );
  app.post(
    perResponse.filter((path) => path.endsWith('/cancel')),
    ...ownershipChain,
  );

  // --- everything else under /v1 -------------------------------------------------------------
  if (options.passthrough !== false) {
    app.use(
      route('passthrough', upstreamName),
      createProxyMiddleware<IncomingMessage, ServerResponse>({
        target: layout.origin,
        changeOrigin: true,
        agent: upstreamAgent,
        pathFilter: (path) => path === '/v1' || path.startsWith('/v1/'),
        pathRewrite: (path) => `${layout.apiBase}${path}`,
        on: {
          proxyReq: (proxyReq, req, res) => {
            getExchange(req, res).attempts += 1;
            dropHopByHopRequestHeaders(proxyReq);
          },
          error: (_error, req, res) => {
            const response = res as ServerResponse;
            if (typeof response.writeHead !== 'function' || response.headersSent) {
              (res as Socket).destroy();
              return;
            }
            sendRelayError(getExchange(req, response), relayError('upstream_unreachable'));
          },
        },
      }),
    );
  }
  app.use(route('other'), sendNotFound);
  app.use(relayErrorHandler());

  // --- the server ----------------------------------------------------------------------------
  const server = http.createServer(app);
  const sockets = new Set<Socket>();
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  // The WebSocket bridge posts each turn to the app on a private loopback listener (not through
  // `server`), so turns keep working while `server` drains for a shutdown.
  const websocket = typeof options.websocket === 'object' ? options.websocket : {};
  const bridge =
    options.websocket === false
      ? undefined
      : attachWebSocketBridge(server, {
          path: responsesRoutes(),
          ...websocket,
          handler: app,
          logger: websocket.logger ?? (logger ? chainingLogger(logger) : false),
        });
  if (!bridge) server.on('upgrade', refuseUpgrade);
  if (bridge && metrics) metrics.countWebSockets(() => bridge.connections);

  let closing: Promise<void> | undefined;

  // Descriptors, not Object.assign: `url` and `draining` are live getters.
  const members = {
    app,
    server,
    store,
    logger,
    metrics,
    health,
    bridge,
    profile,
    upstreamMode,
    get url() {
      return url;
    },
    get draining() {
      return draining;
    },
    listen(port = 0, host = '127.0.0.1'): Promise<string> {
      return new Promise<string>((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => {
          server.off('error', reject);
          const address = server.address() as AddressInfo;
          const shown = address.family === 'IPv6' ? `[${address.address}]` : address.address;
          url = `http://${shown}:${address.port}`;
          resolve(url);
        });
      });
    },
    readiness: () => health.readiness(),
    close(closeOptions: CloseOptions = {}): Promise<void> {
      closing ??= shutdown(closeOptions.timeoutMs ?? options.shutdownTimeoutMs ?? 30_000);
      return closing;
    },
  };
  const relay = Object.defineProperties(
    emitter,
    Object.getOwnPropertyDescriptors(members),
  ) as unknown as Relay;

  async function shutdown(timeoutMs: number): Promise<void> {
    draining = true;
    const closed = new Promise<void>((resolve) => {
      if (!server.listening) resolve();
      else server.close(() => resolve());
    });
    server.closeIdleConnections();
    const drained = inflight.size === 0 ? Promise.resolve(true) : waitForDrain(timeoutMs);
    if (!(await drained)) {
      logger?.warn(
        { inflight: inflight.size, timeoutMs },
        'shutdown: in-flight requests outlived the timeout; closing their connections',
      );
    }
    // WebSocket clients get a 1001 "going away" and reconnect (to another instance).
    await bridge?.close();
    server.closeAllConnections();
    for (const socket of sockets) socket.destroy();
    await closed;
    if (ownAgent) upstreamAgent.destroy();
    if (ownStore) await rawStore.close();
  }

  function waitForDrain(timeoutMs: number): Promise<boolean> {
    return new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => {
        onDrained = undefined;
        resolve(false);
      }, timeoutMs);
      onDrained = () => {
        clearTimeout(timer);
        onDrained = undefined;
        resolve(true);
      };
    });
  }

  return relay;
}
