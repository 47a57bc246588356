/**
 * Prometheus metrics (prom-client) on a registry of their own per relay, so two relays in one
 * process (or in one test run) never share counters. What is counted:
 *
 * | metric | type | labels |
 * | --- | --- | --- |
 * | `relay_requests_total` | counter | `route`, `method`, `status` (`499`: the client left first) |
 * | `relay_request_duration_seconds` | histogram | `route` |
 * | `relay_upstream_attempts_total` | counter | `route` |
 * | `relay_retries_total` | counter | `reason` |
 * | `relay_completions_rebuilt_total` | counter | |
 * | `relay_terminations_synthesized_total` | counter | `cause` (`eof`, `error`, `stalled`) |
 * | `relay_store_operation_duration_seconds` | histogram | `operation`, `outcome` (`ok`, `error`) |
 * | `relay_store_errors_total` | counter | `operation`, `code` |
 * | `relay_active_requests` | gauge | |
 * | `relay_active_streams` | gauge | |
 * | `relay_active_websockets` | gauge | |
 *
 * plus prom-client's default process metrics (`process_*`, `nodejs_*`) unless turned off.
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import {
  collectDefaultMetrics,
  Counter,
  Gauge,
  Histogram,
  Registry,
  type CounterConfiguration,
} from 'prom-client';
import { findExchange } from '../middleware/exchange';
import type { SessionStore } from '../store/session-store';
import { markStart, onExchangeEnd, type ExchangeSummary } from './summary';

export interface RelayMetricsOptions {
  /** Register on this registry instead of a new one. */
  registry?: Registry;
  /** Prefix of every relay metric name. @default 'relay_' */
  prefix?: string;
  /** Also collect prom-client's default process metrics on the registry. @default true */
  defaultMetrics?: boolean;
  /** Labels added to every metric (e.g. `{ instance: 'relay-a' }`). */
  defaultLabels?: Record<string, string>;
}

type Next = (error?: unknown) => void;

/** `SessionStore` methods that are timed (every operation of the contract). */
const STORE_OPERATIONS = [
  'putResponse',
  'getResponse',
  'expandChain',
  'deleteResponse',
  'setSessionHead',
  'getSessionHead',
  // optional (SessionStore.expandSessionHead / putSessionResponse): wrapped when present
  'expandSessionHead',
  'putSessionResponse',
] as const;

type StoreOperation = (typeof STORE_OPERATIONS)[number];

function errorCode(error: unknown): string {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^[\w.-]{1,64}$/.test(code) ? code : 'unknown';
}

function isEventStream(res: ServerResponse): boolean {
  const type = res.getHeader('content-type');
  return String(Array.isArray(type) ? type[0] : (type ?? ''))
    .toLowerCase()
    .startsWith('text/event-stream');
}

/** The metrics of one relay. */
export class RelayMetrics {
  readonly registry: Registry;
  readonly requests: Counter<'route' | 'method' | 'status'>;
  readonly duration: Histogram<'route'>;
  readonly upstreamAttempts: Counter<'route'>;
  readonly retries: Counter<'reason'>;
  readonly completionsRebuilt: Counter;
  readonly terminationsSynthesized: Counter<'cause'>;
  readonly storeDuration: Histogram<'operation' | 'outcome'>;
  readonly storeErrors: Counter<'operation' | 'code'>;
  readonly activeRequests: Gauge;
  readonly activeStreams: Gauge;
  readonly activeWebSockets: Gauge;
  private readonly inflight = new Set<ServerResponse>();
  private readonly sockets = new Set<Duplex>();
  private readonly socketSources: Array<() => number> = [];

  constructor(options: RelayMetricsOptions = {}) {
    const registry = options.registry ?? new Registry();
    this.registry = registry;
    if (options.defaultLabels) registry.setDefaultLabels(options.defaultLabels);
    const p = options.prefix ?? 'relay_';
    const counter = <L extends string>(config: CounterConfiguration<L>) =>
      new Counter<L>({ ...config, registers: [registry] });

    this.requests = counter({
      name: `${p}requests_total`,
      help: 'Client requests by route kind, method and status (499: the client left before a response head).',
      labelNames: ['route', 'method', 'status'],
    });
    this.duration = new Histogram({
      name: `${p}request_duration_seconds`,
      help: 'Time from the request to the end of its response (streams included), by route kind.',
      labelNames: ['route'],
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300],
      registers: [registry],
    });
    this.upstreamAttempts = counter({
      name: `${p}upstream_attempts_total`,
      help: 'Requests sent upstream (first attempts and retries), by route kind.',
      labelNames: ['route'],
    });
    this.retries = counter({
      name: `${p}retries_total`,
      help: 'Upstream attempts repeated by the retry guard, by reason.',
      labelNames: ['reason'],
    });
    this.completionsRebuilt = counter({
      name: `${p}completions_rebuilt_total`,
      help: 'Terminal events whose missing or empty output was rebuilt from the streamed items.',
    });
    this.terminationsSynthesized = counter({
      name: `${p}terminations_synthesized_total`,
      help: 'Streams the relay had to end itself (no terminal event from the upstream), by cause.',
      labelNames: ['cause'],
    });
    this.storeDuration = new Histogram({
      name: `${p}store_operation_duration_seconds`,
      help: 'Session store operation latency, by operation and outcome.',
      labelNames: ['operation', 'outcome'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: [registry],
    });
    this.storeErrors = counter({
      name: `${p}store_errors_total`,
      help: 'Session store operations that failed, by operation and error code.',
      labelNames: ['operation', 'code'],
    });
    const inflight = this.inflight;
    this.activeRequests = new Gauge({
      name: `${p}active_requests`,
      help: 'Client requests in flight.',
      registers: [registry],
      collect() {
        this.set(inflight.size);
      },
    });
    this.activeStreams = new Gauge({
      name: `${p}active_streams`,
      help: 'SSE responses being streamed to clients.',
      registers: [registry],
      collect() {
        let streams = 0;
        for (const res of inflight) {
          if (!res.headersSent || res.writableEnded) continue;
          if (findExchange(res)?.streamRequested === true || isEventStream(res)) streams += 1;
        }
        this.set(streams);
      },
    });
    const sockets = this.sockets;
    const sources = this.socketSources;
    this.activeWebSockets = new Gauge({
      name: `${p}active_websockets`,
      help: 'Open WebSocket connections.',
      registers: [registry],
      collect() {
        this.set(sources.reduce((sum, source) => sum + source(), sockets.size));
      },
    });
    if (options.defaultMetrics !== false) collectDefaultMetrics({ register: registry });
  }

  /**
   * Counts every exchange: mount it first (before the routes). Keeps the set of responses in
   * flight for the active gauges and observes each exchange's summary when it ends.
   */
  middleware(): (req: IncomingMessage, res: ServerResponse, next: Next) => void {
    return (req, res, next) => {
      markStart(req);
      this.inflight.add(res);
      onExchangeEnd(req, res, (summary) => {
        this.inflight.delete(res);
        this.observe(summary);
      });
      next();
    };
  }

  /** Records a finished exchange. */
  observe(summary: ExchangeSummary): void {
    const status = summary.status === 0 ? '499' : String(summary.status);
    this.requests.inc({ route: summary.route, method: summary.method, status });
    this.duration.observe({ route: summary.route }, summary.durationMs / 1000);
    if (summary.attempts > 0) this.upstreamAttempts.inc({ route: summary.route }, summary.attempts);
    if (summary.completionRebuilt) this.completionsRebuilt.inc();
    if (summary.synthesizedTermination !== undefined) {
      this.terminationsSynthesized.inc({ cause: summary.synthesizedTermination });
    }
  }

  /** Records one retry (wire it to the retry guard's `onRetry`). */
  recordRetry(reason: string): void {
    this.retries.inc({ reason: /^[\w.:-]{1,64}$/.test(reason) ? reason : 'other' });
  }

  /** Adds a source of open WebSocket connections (e.g. `() => bridge.connections`). */
  countWebSockets(source: () => number): void {
    this.socketSources.push(source);
  }

  /** Counts an open WebSocket (or any upgraded socket) until it closes. */
  trackSocket(socket: Duplex): void {
    if (this.sockets.has(socket)) return;
    this.sockets.add(socket);
    socket.once('close', () => this.sockets.delete(socket));
  }

  /**
   * Counts the upgraded connections of a server whose `filter` accepts the request (a `filter`
   * that throws counts nothing: it runs in the server's 'upgrade' handler, where a throw would be
   * uncaught).
   */
  trackUpgrades(server: Server, filter: (req: IncomingMessage) => boolean = () => true): void {
    server.on('upgrade', (req: IncomingMessage, socket: Duplex) => {
      let counted: boolean;
      try {
        counted = filter(req);
      } catch {
        counted = false;
      }
      if (counted) this.trackSocket(socket);
    });
  }

  /**
   * A store that times every operation of `store` and counts its failures; everything else
   * (results, errors, `close`) is the store's own.
   */
  instrumentStore<S extends SessionStore>(store: S): SessionStore {
    const timed = {} as Record<StoreOperation, (...args: unknown[]) => Promise<unknown>>;
    for (const operation of STORE_OPERATIONS) {
      const method = store[operation] as ((...args: unknown[]) => Promise<unknown>) | undefined;
      if (typeof method !== 'function') continue;
      timed[operation] = async (...args: unknown[]) => {
        const end = this.storeDuration.startTimer({ operation });
        try {
          const result = await method.apply(store, args);
          end({ outcome: 'ok' });
          return result;
        } catch (error) {
          end({ outcome: 'error' });
          this.storeErrors.inc({ operation, code: errorCode(error) });
          throw error;
        }
      };
    }
    return { ...(timed as unknown as SessionStore), close: () => store.close() };
  }

  /** The exposition of every metric (for `GET /metrics`). */
  async exposition(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }

  /** A handler answering the exposition (mount it on `GET /metrics`). */
  handler(): (req: IncomingMessage, res: ServerResponse, next: Next) => void {
    return (_req, res, next) => {
      this.exposition().then(({ contentType, body }) => {
        res.writeHead(200, {
          'content-type': contentType,
          'content-length': Buffer.byteLength(body),
          'cache-control': 'no-store',
        });
        res.end(body);
      }, next);
    };
  }
}

/** Creates the metrics of one relay. */
export function createRelayMetrics(options: RelayMetricsOptions = {}): RelayMetrics {
  return new RelayMetrics(options);
}
