/**
 * One summary per client exchange, shared by the access log line, the metrics and the relay's
 * `exchange` event, so all three always agree. Built from what the relay middlewares left on the
 * per-exchange context (`findExchange`) plus the response itself; it never holds a credential
 * (the tenant is the keyed hash the chaining middleware computed, the session a client-chosen id).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { findExchange, type Exchange } from '../middleware/exchange';
import { sanitizeText } from '../protocol/sanitize';

/**
 * What kind of route served the exchange; a bounded set, so it is safe as a metrics label.
 * `responses`: `POST …/responses`; `response`: the per-response routes (`GET`/`DELETE
 * /v1/responses/{id}`, `input_items`, `cancel`); `passthrough`: any other proxied path;
 * `websocket`: an upgrade; `ops`: health and metrics; `other`: anything else (404s).
 */
export type RouteKind = 'responses' | 'response' | 'passthrough' | 'websocket' | 'ops' | 'other';

export interface ExchangeSummary {
  /** The relay's request id (the client's `x-request-id` when it sent a usable one). */
  requestId: string;
  method: string;
  /** The path without its query string (the query may hold credentials). */
  path: string;
  route: RouteKind;
  /** The status the client received (0 when it left before a response head was sent). */
  status: number;
  /** From the first byte of the request to the end (or abort) of the response. */
  durationMs: number;
  /** True when the client went away before the response ended. */
  aborted: boolean;
  /** Whether the client asked for a stream (`"stream": true`). */
  stream: boolean;
  /** The tenant hash (HMAC of the credential), when a chaining middleware computed it. */
  tenant?: string;
  /** The session key (a header such as Codex's `session-id`), when the request had one. */
  session?: string;
  /** The id of the Response the client received. */
  responseId?: string;
  /** The Response's final status (`completed`, `failed`, `incomplete`). */
  responseStatus?: string;
  /** The anchor the client continued (`previous_response_id`). */
  previousResponseId?: string;
  /** The upstream that served the exchange (a name or an origin, never a credential). */
  upstream?: string;
  /** The upstream's own `x-request-id`, when it differs from the relay's. */
  upstreamRequestId?: string;
  /** Upstream attempts made (0 when the relay answered by itself). */
  attempts: number;
  /** The reasons of the retries, in order (empty when none happened). */
  retries: string[];
  /** True when the terminal event's `output` was rebuilt from the streamed items. */
  completionRebuilt: boolean;
  /**
   * How the stream ended when the relay had to add the terminal event itself: `eof` (the
   * upstream ended without one), `error` (the connection broke), `stalled` (idle timeout).
   */
  synthesizedTermination?: string;
  /** The upstream profile applied (`openai`, `codex`, …). */
  profile?: string;
  /** `stateful` or `stateless`, when the chaining middleware ran. */
  chainMode?: string;
  /** Records in the expanded history (stateless continuations). */
  chainDepth?: number;
  /** Whether the turn was stored as an anchor for the next one. */
  chainStored?: boolean;
}

const START = new WeakMap<IncomingMessage, bigint>();
const ROUTE = new WeakMap<IncomingMessage, RouteKind>();
const SESSION = new WeakMap<IncomingMessage, string>();
const UPSTREAM = new WeakMap<IncomingMessage, string>();
const RETRIES = new WeakMap<Exchange, string[]>();
const CACHE = new WeakMap<ServerResponse, ExchangeSummary>();

/** Marks the start of an exchange (the first relay ops middleware calls it; later calls keep the first). */
export function markStart(req: IncomingMessage): void {
  if (!START.has(req)) START.set(req, process.hrtime.bigint());
}

/** Records the route kind (the relay sets it when it mounts its routes). */
export function markRoute(req: IncomingMessage, route: RouteKind): void {
  ROUTE.set(req, route);
}

/** Records the session key of a request (not a secret; see `sessionFromHeaders`). */
export function markSession(req: IncomingMessage, session: string | undefined): void {
  if (session !== undefined && session !== '') SESSION.set(req, session);
}

/**
 * Records the upstream a request is proxied to (a name or an origin), shown when the relay
 * made at least one attempt and no middleware recorded a more precise one.
 */
export function markUpstream(req: IncomingMessage, upstream: string): void {
  UPSTREAM.set(req, upstream);
}

/** Records one retry of an exchange (called from the retry guard's `onRetry`). */
export function recordRetry(exchange: Exchange, reason: string): void {
  const list = RETRIES.get(exchange);
  if (list) list.push(reason);
  else RETRIES.set(exchange, [reason]);
}

/** The retries recorded for an exchange so far. */
export function retriesOf(exchange: Exchange): readonly string[] {
  return RETRIES.get(exchange) ?? [];
}

function pathOf(req: IncomingMessage): string {
  const url = (req as IncomingMessage & { originalUrl?: string }).originalUrl ?? req.url ?? '/';
  const path = url.split('?')[0] ?? '/';
  return sanitizeText(path.length > 256 ? `${path.slice(0, 256)}…` : path);
}

/** The route kind of a request the relay did not mark (a gateway using the ops parts alone). */
function guessRoute(req: IncomingMessage, path: string): RouteKind {
  if (req.headers.upgrade !== undefined) return 'websocket';
  if (/\/responses\/?$/.test(path)) return 'responses';
  if (/\/responses\/[^/]+(?:\/(?:input_items|cancel))?\/?$/.test(path)) return 'response';
  return 'other';
}

function text(value: unknown): string | undefined {
  return typeof value === 'string' && value !== '' ? value : undefined;
}

/**
 * The summary of a finished (or aborted) exchange. Computed once per response; later calls
 * return the same object.
 */
export function summarizeExchange(req: IncomingMessage, res: ServerResponse): ExchangeSummary {
  const cached = CACHE.get(res);
  if (cached) return cached;
  const exchange = findExchange(res);
  const path = pathOf(req);
  const started = START.get(req);
  const durationMs =
    started === undefined ? 0 : Number(process.hrtime.bigint() - started) / 1_000_000;
  const annotations = exchange?.annotations ?? {};
  const final = exchange?.finalResponse;
  const summary: ExchangeSummary = {
    requestId: exchange?.requestId ?? text(req.headers['x-request-id']) ?? '',
    method: req.method ?? 'GET',
    path,
    route: ROUTE.get(req) ?? guessRoute(req, path),
    status: res.headersSent ? res.statusCode : 0,
    durationMs: Math.round(durationMs * 10) / 10,
    aborted: !res.writableFinished,
    stream: exchange?.streamRequested ?? false,
    attempts: exchange?.attempts ?? 0,
    retries: exchange ? [...retriesOf(exchange)] : [],
    completionRebuilt: annotations['sse_completion.output_rebuilt'] === true,
  };
  const tenant = text(annotations.tenant);
  if (tenant) summary.tenant = tenant;
  const session = SESSION.get(req);
  if (session) summary.session = session;
  const responseId = text(final?.id);
  if (responseId) summary.responseId = responseId;
  const responseStatus = text(final?.status);
  if (responseStatus) summary.responseStatus = responseStatus;
  const anchor = text(annotations.chain_anchor) ?? text(exchange?.clientBody?.previous_response_id);
  if (anchor) summary.previousResponseId = anchor;
  const upstream =
    text(annotations.upstream) ?? (summary.attempts > 0 ? UPSTREAM.get(req) : undefined);
  if (upstream) summary.upstream = upstream;
  const upstreamRequestId = text(res.getHeader('x-request-id'));
  if (upstreamRequestId && upstreamRequestId !== summary.requestId) {
    summary.upstreamRequestId = upstreamRequestId;
  }
  const closed = text(annotations['sse_completion.closed']);
  if (closed) summary.synthesizedTermination = closed;
  const profile = text(annotations.profile);
  if (profile) summary.profile = profile;
  const chainMode = text(annotations.chain_mode);
  if (chainMode) summary.chainMode = chainMode;
  if (typeof annotations.chain_depth === 'number') summary.chainDepth = annotations.chain_depth;
  if (typeof annotations.chain_stored === 'boolean') summary.chainStored = annotations.chain_stored;
  CACHE.set(res, summary);
  return summary;
}

/**
 * Calls `listener` once per exchange, when the response ended or the client left (whichever
 * comes first; `close` fires in both cases).
 */
export function onExchangeEnd(
  req: IncomingMessage,
  res: ServerResponse,
  listener: (summary: ExchangeSummary) => void,
): void {
  res.once('close', () => listener(summarizeExchange(req, res)));
}
