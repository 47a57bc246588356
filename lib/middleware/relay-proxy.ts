/**
 * Proxy mode: the options to spread into the user's own `createProxyMiddleware` call so the relay
 * takes part in proxying itself — it writes the (possibly rewritten) request body on every
 * attempt, handles the upstream response through the shared pipeline (`selfHandleResponse`),
 * answers connection failures with an OpenAI error envelope, and stops the upstream when the
 * client leaves. `relayProxy({ target })` is the same thing, ready-made.
 */
import type {
  ClientRequest,
  IncomingMessage,
  OutgoingHttpHeaders,
  ServerResponse,
} from 'node:http';
import type { Socket } from 'node:net';
import { Readable } from 'node:stream';
import { createProxyMiddleware, type Options, type RequestHandler } from 'http-proxy-middleware';
import { relayError, toRelayError, type RelayError } from '../protocol/relay-errors';
import { classifyConnectionError } from '../protocol/retry-hints';
import { responseSink } from './client-sink';
import { sendRelayError } from './send-error';
import { getExchange, type Exchange, type RetryPlan } from './exchange';
import { ResponsePipeline, type ResponsePipelineOptions } from './response-pipeline';

/** Hop-by-hop headers never copied from the upstream response. */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'te',
  'trailer',
  'upgrade',
]);

/** Hop-by-hop request headers never sent upstream (the relay proxies HTTP requests only). */
const REQUEST_HOP_BY_HOP = ['connection', 'keep-alive', 'proxy-connection'] as const;

/**
 * Removes the client's hop-by-hop headers from a proxied HTTP request: the upstream connection
 * belongs to the proxy's agent, and a client's `connection: close` on a pooled keep-alive
 * connection would end (or confuse) it for the next request.
 */
export function dropHopByHopRequestHeaders(proxyReq: ClientRequest): void {
  // A streamed body's first chunk may have sent the headers before `proxyReq` (a queued request).
  if (proxyReq.headersSent) return;
  for (const name of REQUEST_HOP_BY_HOP) proxyReq.removeHeader(name);
}

export interface RelayProxyHandlers {
  proxyReq?: (proxyReq: ClientRequest, req: IncomingMessage, res: ServerResponse) => void;
  proxyRes?: (proxyRes: IncomingMessage, req: IncomingMessage, res: ServerResponse) => void;
  error?: (error: Error, req: IncomingMessage, res: ServerResponse | Socket) => void;
}

export interface RelayProxyOptionsInput extends ResponsePipelineOptions {
  /**
   * Your own handlers, called after the relay's: `proxyReq` before the relay writes the body (it
   * may still set headers), `proxyRes` before the pipeline reads the response. If `proxyReq` or
   * `proxyRes` throws, the client gets a 500 `server_error` envelope; `error` runs after the
   * client got its envelope.
   */
  on?: RelayProxyHandlers;
}

interface AttemptState {
  proxyReq?: ClientRequest;
  proxyRes?: IncomingMessage;
  pipeline?: ResponsePipeline;
  abortWatched?: boolean;
  /** The body the relay writes for this attempt; undefined when the client's stream is piped. */
  body?: Buffer;
  /** Why the body could not be serialised for this attempt. */
  bodyError?: unknown;
  /** The options http-proxy used for the first attempt: a retry reuses them. */
  options?: object;
  timer?: NodeJS.Timeout;
}

/** The part of http-proxy's server a retry needs (the `this` of its event listeners). */
interface ProxyServerLike {
  web(req: IncomingMessage, res: ServerResponse, options: object): void;
}

/** The largest error body read to decide on a retry (the rest is dropped). */
const ERROR_BODY_LIMIT = 64 * 1024;

function readBounded(stream: IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    stream.on('data', (chunk: Buffer) => {
      if (size >= limit) return;
      const piece = chunk.length > limit - size ? chunk.subarray(0, limit - size) : chunk;
      chunks.push(piece);
      size += piece.length;
    });
    stream.once('end', () => resolve(Buffer.concat(chunks, size)));
    stream.once('close', () => resolve(Buffer.concat(chunks, size)));
    stream.once('error', reject);
  });
}

const ATTEMPT = new WeakMap<Exchange, AttemptState>();

function attemptState(exchange: Exchange): AttemptState {
  let state = ATTEMPT.get(exchange);
  if (!state) {
    state = {};
    ATTEMPT.set(exchange, state);
  }
  return state;
}

function responseHeaders(proxyRes: IncomingMessage): OutgoingHttpHeaders {
  const headers: OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(proxyRes.headers)) {
    if (value === undefined || HOP_BY_HOP.has(name)) continue;
    headers[name] = value;
  }
  return headers;
}

/** The body the relay sends upstream when it has one (it read, or a middleware rewrote, it). */
function relayBody(exchange: Exchange, req: IncomingMessage): Buffer | undefined {
  const parsed = (req as IncomingMessage & { body?: unknown }).body;
  return (
    exchange.upstreamBody() ??
    // A body parser ran but no relay middleware read the body: send what it parsed.
    (parsed !== undefined && !req.readable ? Buffer.from(JSON.stringify(parsed)) : undefined)
  );
}

/** Counts an attempt once per upstream request, and stops it when the client leaves. */
function beginAttempt(exchange: Exchange, proxyReq: ClientRequest, res: ServerResponse): void {
  const state = attemptState(exchange);
  if (state.proxyReq === proxyReq) return;
  exchange.attempts += 1;
  state.proxyReq = proxyReq;
  if (state.abortWatched) return;
  state.abortWatched = true;
  res.once('close', () => {
    if (res.writableFinished) return;
    exchange.aborted = true;
    if (state.timer) clearTimeout(state.timer);
    state.proxyReq?.destroy();
    state.proxyRes?.destroy();
  });
}

/**
 * http-proxy creates the upstream request and pipes the client's request into it at once, but
 * emits `proxyReq` (the last moment its headers can change) only when the request gets a socket.
 * A client body the relay already read has ended, so the pipe would end the upstream request
 * before that whenever the agent queues it (a bounded `maxSockets`): headers sent without the
 * relay's changes, an empty body under the client's `content-length`, and a throw in the relay's
 * own `proxyReq` handler. So, for each attempt, the relay takes the pipe: a body it holds is
 * written in `proxyReq` with its headers; only a body still streaming is piped.
 */
function takePipe(exchange: Exchange, req: IncomingMessage, res: ServerResponse): void {
  const state = attemptState(exchange);
  req.pipe = <T extends NodeJS.WritableStream>(destination: T, options?: { end?: boolean }): T => {
    beginAttempt(exchange, destination as unknown as ClientRequest, res);
    try {
      state.body = relayBody(exchange, req);
      state.bodyError = undefined;
    } catch (error) {
      // A body that cannot be serialised (e.g. nested past the stack) never crashes the relay.
      state.body = undefined;
      state.bodyError = error;
      return destination;
    }
    if (state.body !== undefined) return destination;
    return Readable.prototype.pipe.call(req, destination, options) as T;
  };
}

/** A connection failure as the relay's own error (by the retry guard's classification). */
function connectionError(error: Error): RelayError {
  const decision = classifyConnectionError(error);
  return relayError(
    decision.retry && decision.reason === 'timeout' ? 'upstream_timeout' : 'upstream_unreachable',
  );
}

/**
 * Options for `createProxyMiddleware` that plug the relay into your proxy.
 *
 * @example
 * ```ts
 * app.post('/v1/responses', sseCompletion(), createProxyMiddleware({
 *   target: 'https://api.openai.com', changeOrigin: true, ...relayProxyOptions(),
 * }));
 * ```
 */
export function relayProxyOptions(
  input: RelayProxyOptionsInput = {},
): Options<IncomingMessage, ServerResponse> {
  const user = input.on ?? {};

  /** Runs the next attempt after the plan's delay, unless the client left meanwhile. */
  const retry = (server: ProxyServerLike, exchange: Exchange, plan: RetryPlan): void => {
    const state = attemptState(exchange);
    state.proxyReq = undefined;
    state.proxyRes = undefined;
    state.timer = setTimeout(() => {
      state.timer = undefined;
      void (async () => {
        for (const hook of exchange.beforeAttempt) {
          if (exchange.aborted) return;
          await hook(exchange.attempts + 1, exchange);
        }
        if (exchange.aborted || !state.options) return;
        server.web(exchange.req, exchange.res, state.options);
      })().catch((error: unknown) => {
        sendRelayError(exchange, toRelayError(error));
      });
    }, plan.delayMs);
  };

  const deliver = (
    exchange: Exchange,
    proxyRes: IncomingMessage,
    pipeline: ResponsePipeline,
    prefix: Buffer | undefined,
  ): void => {
    const res = exchange.res;
    pipeline.setUpstreamAbort(() => proxyRes.destroy());
    // Headers the gateway set before the proxy (CORS, its own ids) stay, under the upstream's.
    const headers = { ...exchange.res.getHeaders(), ...responseHeaders(proxyRes) };
    pipeline.begin(proxyRes.statusCode ?? 502, headers);
    let ended = false;
    const finish = (error?: Error): void => {
      if (ended) return;
      ended = true;
      pipeline
        .finish(error ? { kind: 'error', error } : { kind: 'eof' })
        .catch((failure: unknown) => res.destroy(failure instanceof Error ? failure : undefined));
    };
    if (prefix) {
      pipeline.push(prefix);
      if (proxyRes.readableEnded || proxyRes.destroyed) {
        finish(
          proxyRes.complete
            ? undefined
            : new Error('upstream connection closed before the body ended'),
        );
        return;
      }
    }
    proxyRes.on('data', (chunk: Buffer) => {
      if (!pipeline.push(chunk)) {
        proxyRes.pause();
        pipeline.onDrain(() => proxyRes.resume());
      }
    });
    proxyRes.once('end', () => finish());
    proxyRes.once('error', (error) => finish(error));
    proxyRes.once('close', () => {
      if (!proxyRes.complete) finish(new Error('upstream connection closed before the body ended'));
    });
  };

  return {
    selfHandleResponse: true,
    on: {
      start(req, res) {
        const response = res as ServerResponse;
        if (typeof response.writeHead !== 'function') return;
        // Node answered the client's `100-continue` already; upstream, http-proxy would skip
        // `proxyReq` for it, so the relay's body would never be written.
        delete req.headers.expect;
        takePipe(getExchange(req, response), req, response);
      },
      proxyReq(proxyReq, req, res, options) {
        const exchange = getExchange(req, res);
        const state = attemptState(exchange);
        // When the pipe was not the relay's (http-proxy's `buffer` option), count the attempt here.
        beginAttempt(exchange, proxyReq, res);
        state.options = options;
        if (state.bodyError !== undefined) {
          proxyReq.destroy();
          sendRelayError(
            exchange,
            relayError('invalid_json', { reason: 'too_deep', cause: state.bodyError }),
          );
          return;
        }
        const body = state.body;
        // A body still streaming may have sent the headers already (its first chunk did).
        if (!proxyReq.headersSent) {
          dropHopByHopRequestHeaders(proxyReq);
          if (exchange.wantsResponse) proxyReq.setHeader('accept-encoding', 'identity');
          if (body !== undefined) {
            proxyReq.setHeader('content-length', body.length);
            proxyReq.removeHeader('transfer-encoding');
            if (!proxyReq.getHeader('content-type'))
              proxyReq.setHeader('content-type', 'application/json');
          }
        }
        try {
          // Before the body is written, so your handler can still change headers.
          user.proxyReq?.(proxyReq, req, res);
        } catch (error) {
          proxyReq.destroy();
          sendRelayError(exchange, relayError('internal_error', { cause: error }));
          return;
        }
        if (body !== undefined) proxyReq.end(body);
      },
      proxyRes(this: unknown, proxyRes, req, res) {
        const server = this as ProxyServerLike;
        const exchange = getExchange(req, res);
        const state = attemptState(exchange);
        state.proxyRes = proxyRes;
        const pipeline = new ResponsePipeline(exchange, responseSink(res), input);
        state.pipeline = pipeline;
        const policy = exchange.attemptPolicy;
        try {
          user.proxyRes?.(proxyRes, req, res);
        } catch (error) {
          proxyRes.destroy();
          sendRelayError(exchange, relayError('internal_error', { cause: error }));
          return;
        }
        if (!policy || res.headersSent) {
          deliver(exchange, proxyRes, pipeline, undefined);
          return;
        }
        pipeline.setRetryHandler((plan) => retry(server, exchange, plan));
        const status = proxyRes.statusCode ?? 502;
        if (status < 400) {
          deliver(exchange, proxyRes, pipeline, undefined);
          return;
        }
        // An error status: read its body (bounded) to decide, before anything reaches the client.
        readBounded(proxyRes, ERROR_BODY_LIMIT)
          .then(async (body) => {
            const plan = exchange.aborted
              ? undefined
              : await policy.onStatus(status, proxyRes.headers, body);
            if (plan && !res.headersSent) {
              proxyRes.destroy();
              retry(server, exchange, plan);
              return;
            }
            deliver(exchange, proxyRes, pipeline, body);
          })
          // A failed read, or a policy that threw: an envelope, never a request left hanging.
          .catch((error: unknown) => sendRelayError(exchange, toRelayError(error)));
      },
      error(this: unknown, error, req, res) {
        const response = res as ServerResponse;
        if (typeof response.writeHead !== 'function') {
          (res as Socket).destroy();
          return;
        }
        const exchange = getExchange(req, response);
        const policy = exchange.attemptPolicy;
        const state = attemptState(exchange);
        if (policy && !response.headersSent && !exchange.aborted && !state.proxyRes) {
          let plan: RetryPlan | undefined;
          try {
            plan = policy.onConnectionError(error);
          } catch {
            // A policy that throws does not retry; the client still gets its envelope below.
          }
          if (plan) {
            retry(this as ProxyServerLike, exchange, plan);
            return;
          }
        }
        sendRelayError(exchange, connectionError(error));
        try {
          user.error?.(error, req, res);
        } catch {
          // The client has its answer; a failing observer changes nothing.
        }
      },
    },
  };
}

export interface RelayProxyOptions extends RelayProxyOptionsInput {
  /** The upstream base URL, e.g. `https://api.openai.com`. */
  target: string;
  /** Passed to http-proxy-middleware as is (except `on`, `selfHandleResponse`). */
  proxy?: Omit<Options<IncomingMessage, ServerResponse>, 'on' | 'selfHandleResponse' | 'target'>;
}

/** A ready proxy to the upstream with the relay plugged in. */
export function relayProxy(
  options: RelayProxyOptions,
): RequestHandler<IncomingMessage, ServerResponse> {
  return createProxyMiddleware<IncomingMessage, ServerResponse>({
    changeOrigin: true,
    ...options.proxy,
    target: options.target,
    ...relayProxyOptions(options),
  });
}
