/**
 * Logging: a pino logger whose output never holds a credential, and `relayLogger()`, a pino-http
 * middleware that writes one structured line per exchange (request id, tenant hash, session,
 * response id, upstream, status, attempts, retries, duration) and gives every relay middleware a
 * `req.log` to write through.
 *
 * Secrets are kept out three ways: credential headers are redacted by path (pino's `redact`),
 * the request URL's query string is scrubbed (`?api_key=…`), and every other string value that
 * reaches a log line passes through `sanitizeText` (keys, bearer tokens, JWTs inside messages).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import pino, { type DestinationStream, type Logger, type LoggerOptions } from 'pino';
import { pinoHttp, type HttpLogger } from 'pino-http';
import { getExchange } from '../middleware/exchange';
import { REDACTED, SENSITIVE_HEADERS, sanitizeText } from '../protocol/sanitize';
import { markStart, summarizeExchange, type ExchangeSummary } from './summary';

export type RelayLogger = Logger;

/** `"x-api-key"` → `["x-api-key"]`, `cookie` → `.cookie` (pino redact path syntax). */
function member(name: string): string {
  return /^[A-Za-z_$][\w$]*$/.test(name) ? `.${name}` : `["${name}"]`;
}

/**
 * Paths redacted in every log line: the credential headers of the request (as pino-http and
 * the relay log it) and of the response, plus credential-looking keys of logged objects.
 */
export const REDACT_PATHS: readonly string[] = Object.freeze([
  ...SENSITIVE_HEADERS.map((name) => `req.headers${member(name)}`),
  ...SENSITIVE_HEADERS.map((name) => `headers${member(name)}`),
  'res.headers["set-cookie"]',
  'res.headers["www-authenticate"]',
  'apiKey',
  'api_key',
  'authorization',
  'password',
  'secret',
  'tenantSecret',
  'token',
  '*.apiKey',
  '*.api_key',
  '*.authorization',
  '*.password',
  '*.secret',
  '*.tenantSecret',
  '*.token',
]);

export interface CreateLoggerOptions {
  /** `fatal`, `error`, `warn`, `info`, `debug`, `trace` or `silent`. @default 'info' */
  level?: string;
  /**
   * Where lines go. @default stdout, written synchronously (one line per exchange is cheap, and
   * lines written right before an exit are neither lost nor reordered)
   */
  destination?: DestinationStream;
  /** The `name` field of every line. @default 'responses-relay' */
  name?: string;
  /** More paths to redact (pino `redact` syntax), e.g. `['req.headers["x-tenant-token"]']`. */
  redact?: readonly string[];
}

const MAX_DEPTH = 6;

/** Plain data only: never walk into requests, sockets, buffers or class instances. */
function isPlain(value: object): boolean {
  const proto = Object.getPrototypeOf(value) as unknown;
  return proto === Object.prototype || proto === null || Array.isArray(value);
}

function scrub(value: unknown, depth: number): unknown {
  if (typeof value === 'string') return sanitizeText(value);
  if (value === null || typeof value !== 'object' || depth >= MAX_DEPTH || !isPlain(value)) {
    return value;
  }
  if (Array.isArray(value)) return value.map((item) => scrub(item, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [key, item] of Object.entries(value)) out[key] = scrub(item, depth + 1);
  return out;
}

/** The fields pino-http and pino serialize themselves (their serializers scrub them). */
const SERIALIZED = new Set(['req', 'res', 'err', 'error']);

function scrubLogObject(object: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(object)) {
    out[key] = SERIALIZED.has(key) && typeof value === 'object' ? value : scrub(value, 0);
  }
  return out;
}

interface SerializedRequest {
  id?: unknown;
  method?: string;
  url?: string;
  query?: unknown;
  params?: unknown;
  headers?: Record<string, unknown>;
  remoteAddress?: string;
  remotePort?: number;
}

/** The request as pino-http serializes it, with the query string (and Express's `query`) scrubbed. */
function serializeRequest(req: SerializedRequest): SerializedRequest {
  const out: SerializedRequest = { ...req };
  if (typeof out.url === 'string') out.url = sanitizeText(out.url);
  // Any header may carry a key (`x-tenant-token`, a proxy's own): values are scrubbed too.
  if (out.headers !== undefined) out.headers = scrub(out.headers, 1) as Record<string, unknown>;
  if (out.query !== undefined) out.query = scrubQuery(out.query);
  if (out.params !== undefined) out.params = scrub(out.params, 0);
  return out;
}

/** `?api_key=…` parsed by Express: values under credential-like names go, the rest is scrubbed. */
function scrubQuery(query: unknown): unknown {
  if (query === null || typeof query !== 'object' || !isPlain(query)) return query;
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(query)) {
    out[key] = CREDENTIAL_NAME.test(key) ? REDACTED : scrub(value, 1);
  }
  return out;
}

const CREDENTIAL_NAME =
  /^(?:api[_-]?key|apikey|key|access[_-]?token|token|secret|password|sig|signature|auth)$/i;

interface SerializedError {
  type?: string;
  message?: string;
  stack?: string;
  [key: string]: unknown;
}

function serializeError(error: unknown): unknown {
  const base = pino.stdSerializers.err(error as Error) as SerializedError | undefined;
  if (!base || typeof base !== 'object') return base;
  const out: SerializedError = { ...base };
  if (typeof out.message === 'string') out.message = sanitizeText(out.message);
  if (typeof out.stack === 'string') out.stack = sanitizeText(out.stack);
  return out;
}

/** The pino options the relay's loggers use (redaction, scrubbing, serializers). */
export function relayLoggerOptions(options: CreateLoggerOptions = {}): LoggerOptions {
  return {
    name: options.name ?? 'responses-relay',
    level: options.level ?? 'info',
    redact: { paths: [...REDACT_PATHS, ...(options.redact ?? [])], censor: REDACTED },
    serializers: { err: serializeError, error: serializeError },
    formatters: { log: scrubLogObject },
    hooks: {
      // Messages too: `logger.warn(obj, \`upstream said ${text}\`)` must not carry a key.
      logMethod(args, method) {
        const scrubbed = args.map((arg: unknown) =>
          typeof arg === 'string' ? sanitizeText(arg) : arg,
        ) as Parameters<typeof method>;
        method.apply(this, scrubbed);
      },
    },
  };
}

/** A pino logger with the relay's redaction rules. */
export function createLogger(options: CreateLoggerOptions = {}): Logger {
  const settings = relayLoggerOptions(options);
  return pino(settings, options.destination ?? pino.destination({ dest: 1, sync: true }));
}

export interface RelayLoggerOptions extends CreateLoggerOptions {
  /** Log through this logger (its redaction rules apply) instead of creating one. */
  logger?: Logger;
  /**
   * Level of the lines of health checks and metrics scrapes, which a load balancer sends every
   * few seconds. @default 'debug'
   */
  opsLevel?: pino.Level;
  /** Paths of those requests. @default ['/healthz', '/readyz', '/metrics'] */
  opsPaths?: readonly string[];
  /**
   * Called with each exchange's summary right before its line is written. If it throws, the line
   * is still written (and a warning logged).
   */
  onSummary?: (summary: ExchangeSummary) => void;
}

/** The fields of the per-exchange line, next to pino-http's `req`, `res` and `responseTime`. */
function summaryFields(summary: ExchangeSummary): Record<string, unknown> {
  const fields: Record<string, unknown> = {
    route: summary.route,
    status: summary.status,
    durationMs: summary.durationMs,
    attempts: summary.attempts,
  };
  if (summary.retries.length > 0) fields.retries = summary.retries;
  if (summary.stream) fields.stream = true;
  if (summary.aborted) fields.aborted = true;
  if (summary.tenant !== undefined) fields.tenant = summary.tenant;
  if (summary.session !== undefined) fields.session = summary.session;
  if (summary.responseId !== undefined) fields.responseId = summary.responseId;
  if (summary.responseStatus !== undefined) fields.responseStatus = summary.responseStatus;
  if (summary.previousResponseId !== undefined) {
    fields.previousResponseId = summary.previousResponseId;
  }
  if (summary.upstream !== undefined) fields.upstream = summary.upstream;
  if (summary.upstreamRequestId !== undefined) {
    fields.upstreamRequestId = summary.upstreamRequestId;
  }
  if (summary.profile !== undefined) fields.profile = summary.profile;
  if (summary.chainMode !== undefined) fields.chainMode = summary.chainMode;
  if (summary.chainDepth !== undefined) fields.chainDepth = summary.chainDepth;
  if (summary.chainStored !== undefined) fields.chainStored = summary.chainStored;
  if (summary.completionRebuilt) fields.completionRebuilt = true;
  if (summary.synthesizedTermination !== undefined) {
    fields.synthesizedTermination = summary.synthesizedTermination;
  }
  return fields;
}

/**
 * The access log: a pino-http middleware that writes one line per exchange when the response
 * ended or the client left, and sets `req.log` (bound to the request id) for the relay
 * middlewares mounted after it. Mount it first.
 *
 * @example
 * ```ts
 * const logger = createLogger({ level: 'info' });
 * app.use(relayLogger({ logger }));
 * ```
 */
export function relayLogger(options: RelayLoggerOptions = {}): HttpLogger {
  const logger = options.logger ?? createLogger(options);
  const opsPaths = new Set(options.opsPaths ?? ['/healthz', '/readyz', '/metrics']);
  const opsLevel = options.opsLevel ?? 'debug';
  const isOps = (req: IncomingMessage): boolean =>
    opsPaths.has((req.url ?? '').split('?')[0] ?? '');
  const withSummary = (req: IncomingMessage, res: ServerResponse, value: object): object => {
    const summary = summarizeExchange(req, res);
    try {
      options.onSummary?.(summary);
    } catch (error) {
      // An observer: its failure is reported, never thrown from the response's 'finish' handler.
      logger.warn(
        { error: error instanceof Error ? error.message : String(error) },
        'relay logger: the onSummary callback threw',
      );
    }
    return { ...value, ...summaryFields(summary) };
  };
  return pinoHttp({
    logger,
    quietReqLogger: true,
    serializers: { req: serializeRequest },
    genReqId: (req, res) => {
      markStart(req);
      return getExchange(req, res).requestId;
    },
    customLogLevel: (req, res, error) => {
      if (error !== undefined || res.statusCode >= 500) return 'error';
      if (isOps(req)) return opsLevel;
      if (res.statusCode >= 400 || !res.writableFinished) return 'warn';
      return 'info';
    },
    customSuccessMessage: (_req, res) =>
      res.writableFinished ? 'request completed' : 'request aborted by the client',
    customErrorMessage: (_req, res) =>
      res.writableFinished ? 'request failed' : 'request aborted by the client',
    customSuccessObject: (req, res, value: object) => withSummary(req, res, value),
    customErrorObject: (req, res, _error, value: object) => withSummary(req, res, value),
  });
}
