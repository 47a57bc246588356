/**
 * Health endpoints. `GET /healthz` (liveness) answers 200 as long as the process serves HTTP.
 * `GET /readyz` (readiness) answers 200 only when the session store answers and the upstream
 * accepts a TCP connection, and 503 while the relay is draining for a shutdown, so a load
 * balancer stops sending new work before the process goes away.
 *
 * The store is probed with a read of an id that never exists (works on every SessionStore); the
 * upstream with a TCP connect to its host and port (no request, no credential, no quota spent).
 * Results are cached for `cacheMs` so frequent probes do not hammer either.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import net from 'node:net';
import type { SessionStore } from '../store/session-store';

export type CheckStatus = 'ok' | 'fail';

export interface CheckResult {
  status: CheckStatus;
  /** How long the probe took. */
  durationMs: number;
  /** Why it failed (no credentials, no URLs with user-info). */
  error?: string;
}

export interface ReadinessReport {
  status: 'ready' | 'not_ready' | 'draining';
  checks: Record<string, CheckResult>;
}

/** A named probe: resolves when healthy, rejects (or times out) otherwise. */
export type ReadinessCheck = () => Promise<void>;

export interface HealthOptions {
  /** The session store to probe. */
  store?: SessionStore;
  /** The upstream base URL to probe (TCP connect to its host and port). */
  upstream?: string;
  /** More probes by name. */
  checks?: Record<string, ReadinessCheck>;
  /** True while the relay drains for a shutdown (readiness then fails). */
  isDraining?: () => boolean;
  /** Deadline of each probe. @default 1000 */
  timeoutMs?: number;
  /** How long a readiness result is reused. @default 1000 */
  cacheMs?: number;
}

/** A tenant id no client can have (tenant ids are 22-character HMAC digests). */
const PROBE_TENANT = 'readiness-probe';
const PROBE_ID = 'resp_readiness_probe';

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Probes a store: a read of an id that does not exist must answer (with null). */
export function storeCheck(store: SessionStore): ReadinessCheck {
  return async () => {
    await store.getResponse(PROBE_TENANT, PROBE_ID);
  };
}

/** Probes an upstream: its host must accept a TCP connection on its port. */
export function upstreamCheck(url: string, timeoutMs = 1000): ReadinessCheck {
  const parsed = new URL(url);
  const port = Number(parsed.port || (parsed.protocol === 'https:' ? 443 : 80));
  const host = parsed.hostname.replace(/^\[(.*)\]$/, '$1');
  return () =>
    new Promise<void>((resolve, reject) => {
      const socket = net.connect({ host, port });
      const done = (error?: Error): void => {
        socket.destroy();
        if (error) reject(error);
        else resolve();
      };
      socket.setTimeout(timeoutMs, () =>
        done(new Error(`connect to ${host}:${port} timed out after ${timeoutMs} ms`)),
      );
      socket.once('connect', () => done());
      socket.once('error', (error: Error & { code?: string }) =>
        done(new Error(`connect to ${host}:${port} failed: ${error.code ?? error.message}`)),
      );
    });
}

function message(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  return text.length > 200 ? `${text.slice(0, 200)}…` : text;
}

/** Liveness and readiness, as a small object the relay mounts (and tests call directly). */
export class Health {
  private readonly checks: Record<string, ReadinessCheck>;
  private readonly timeoutMs: number;
  private readonly cacheMs: number;
  private cached: { at: number; report: Promise<ReadinessReport> } | undefined;

  constructor(private readonly options: HealthOptions = {}) {
    this.timeoutMs = options.timeoutMs ?? 1000;
    this.cacheMs = options.cacheMs ?? 1000;
    this.checks = { ...options.checks };
    if (options.store) this.checks.store ??= storeCheck(options.store);
    if (options.upstream) this.checks.upstream ??= upstreamCheck(options.upstream, this.timeoutMs);
  }

  /** Runs every probe (or reuses a result younger than `cacheMs`). */
  readiness(): Promise<ReadinessReport> {
    if (this.options.isDraining?.()) {
      return Promise.resolve({ status: 'draining', checks: {} });
    }
    const now = Date.now();
    if (this.cached && now - this.cached.at < this.cacheMs) return this.cached.report;
    const report = this.probe();
    this.cached = { at: now, report };
    return report;
  }

  private async probe(): Promise<ReadinessReport> {
    const entries = await Promise.all(
      Object.entries(this.checks).map(async ([name, check]): Promise<[string, CheckResult]> => {
        const started = performance.now();
        try {
          await withTimeout(check(), this.timeoutMs, name);
          return [name, { status: 'ok', durationMs: Math.round(performance.now() - started) }];
        } catch (error) {
          return [
            name,
            {
              status: 'fail',
              durationMs: Math.round(performance.now() - started),
              error: message(error),
            },
          ];
        }
      }),
    );
    const checks = Object.fromEntries(entries);
    const ready = entries.every(([, result]) => result.status === 'ok');
    return { status: ready ? 'ready' : 'not_ready', checks };
  }

  /** `GET /healthz`: 200 `{"status":"ok"}` while the process serves requests. */
  livenessHandler(): (req: IncomingMessage, res: ServerResponse) => void {
    return (_req, res) => send(res, 200, { status: 'ok' });
  }

  /** `GET /readyz`: 200 when every probe passed, else 503, with the report as JSON. */
  readinessHandler(): (
    req: IncomingMessage,
    res: ServerResponse,
    next: (error?: unknown) => void,
  ) => void {
    return (_req, res, next) => {
      this.readiness().then(
        (report) => send(res, report.status === 'ready' ? 200 : 503, report),
        next,
      );
    };
  }
}

function send(res: ServerResponse, status: number, body: object): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
  });
  res.end(text);
}

/** Creates the health endpoints' logic. */
export function createHealth(options: HealthOptions = {}): Health {
  return new Health(options);
}
