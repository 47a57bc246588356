/**
 * The gateway the WebSocket tests run, in-process and in child processes alike: an Express app
 * with the relay's middlewares on the Responses route in the documented order (body parser →
 * errorEnvelope → responseChaining → sseCompletion → prewarmResponder → proxy) and the bridge
 * attached to its server, so every bridged turn takes the HTTP path.
 */
import express from 'express';
import type { IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { ChainingLogger } from '../../../lib/middleware/chaining-reply';
import { errorEnvelope, relayErrorHandler } from '../../../lib/middleware/error-envelope';
import { relayProxy } from '../../../lib/middleware/relay-proxy';
import { responseChaining } from '../../../lib/middleware/response-chaining';
import { sseCompletion } from '../../../lib/middleware/sse-completion';
import type { SessionStore } from '../../../lib/store/session-store';
import { attachWebSocketBridge, type WebSocketBridge } from '../../../lib/websocket/bridge';
import type { WebSocketBridgeOptions } from '../../../lib/websocket/options';
import { prewarmResponder } from '../../../lib/websocket/prewarm';
import { bridgeSession } from '../../../lib/websocket/session';

export const TEST_TENANT_SECRET = 'websocket-test-secret';
export const KEY_A = 'sk-ws-tenant-a-0123456789abcdef';
export const KEY_B = 'sk-ws-tenant-b-fedcba9876543210';
export const AUTH_A = { authorization: `Bearer ${KEY_A}` };
export const AUTH_B = { authorization: `Bearer ${KEY_B}` };

export interface GatewayAppConfig {
  /** How the relay chains: `stateless` keeps the conversation itself. */
  relayMode: 'stateless' | 'stateful';
  store: SessionStore;
  /** The upstream's origin (the fake's `url`). */
  target: string;
  /** Mount `prewarmResponder()` (default true). */
  prewarm?: boolean;
  logger?: ChainingLogger;
}

/** A logger that keeps every line. */
export function memoryLogger(): ChainingLogger & { lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const keep =
    (level: string) =>
    (details: Record<string, unknown>, message: string): void => {
      lines.push({ level, ...details, msg: message });
    };
  return {
    lines,
    debug: keep('debug'),
    info: keep('info'),
    warn: keep('warn'),
    error: keep('error'),
  };
}

/** What reached the HTTP route (bridged turns and direct HTTP requests alike). */
export interface RouteHit {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  /** The parsed JSON body (POST on the Responses route). */
  body?: unknown;
}

export function gatewayApp(config: GatewayAppConfig, hits?: RouteHit[]): express.Express {
  const app = express();
  const seen = new WeakMap<IncomingMessage, RouteHit>();
  if (hits) {
    app.use((req, _res, next) => {
      const hit: RouteHit = { method: req.method, url: req.url, headers: { ...req.headers } };
      hits.push(hit);
      seen.set(req, hit);
      next();
    });
  }
  const capture: express.RequestHandler = (req, _res, next) => {
    const hit = seen.get(req);
    if (hit) hit.body = req.body as unknown;
    next();
  };
  app.post(
    ['/v1/responses', '/responses'],
    express.json({ limit: '32mb' }),
    capture,
    errorEnvelope({ provider: 'fake', logger: false }),
    responseChaining({
      store: config.store,
      upstreamMode: config.relayMode,
      tenantSecret: TEST_TENANT_SECRET,
      session: bridgeSession(),
      logger: config.logger ?? memoryLogger(),
    }),
    sseCompletion(),
    ...(config.prewarm === false ? [] : [prewarmResponder()]),
    relayProxy({ target: config.target }),
  );
  app.use(relayErrorHandler({ logger: false }));
  return app;
}

export interface TestGateway {
  /** `http://127.0.0.1:<port>` */
  url: string;
  /** `ws://127.0.0.1:<port>/v1/responses` */
  wsUrl: string;
  bridge: WebSocketBridge;
  hits: RouteHit[];
  logger: ReturnType<typeof memoryLogger>;
  close(): Promise<void>;
}

export async function startGateway(
  config: Omit<GatewayAppConfig, 'logger'>,
  bridgeOptions: WebSocketBridgeOptions = {},
): Promise<TestGateway> {
  const hits: RouteHit[] = [];
  const logger = memoryLogger();
  const app = gatewayApp({ ...config, logger }, hits);
  const server = app.listen(0, '127.0.0.1');
  await new Promise<void>((resolve) => server.once('listening', () => resolve()));
  const bridge = attachWebSocketBridge(server, { logger, ...bridgeOptions });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    wsUrl: `ws://127.0.0.1:${port}/v1/responses`,
    bridge,
    hits,
    logger,
    close: async () => {
      await bridge.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
