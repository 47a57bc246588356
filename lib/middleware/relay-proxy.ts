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
import { createProxyMiddleware, type Options, type RequestHandler } from 'http-proxy-middleware';
import { relayError, type RelayError } from '../protocol/relay-errors';
import { responseSink } from './client-sink';
import { getExchange, type Exchange } from './exchange';
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

export interface RelayProxyHandlers {
  proxyReq?: (proxyReq: ClientRequest, req: IncomingMessage, res: ServerResponse) => void;
  proxyRes?: (proxyRes: IncomingMessage, req: IncomingMessage, res: ServerResponse) => void;
  error?: (error: Error, req: IncomingMessage, res: ServerResponse | Socket) => void;
}

export interface RelayProxyOptionsInput extends ResponsePipelineOptions {
  /** Your own handlers, called after the relay's. */
  on?: RelayProxyHandlers;
}

interface AttemptState {
  proxyReq?: ClientRequest;
  proxyRes?: IncomingMessage;
  pipeline?: ResponsePipeline;
  abortWatched?: boolean;
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

function connectionError(error: Error & { code?: string }): RelayError {
  const code = error.code ?? '';
  if (code === 'ETIMEDOUT' || code === 'ESOCKETTIMEDOUT' || code === 'UND_ERR_HEADERS_TIMEOUT') {
    return relayError('upstream_timeout');
  }
  return relayError('upstream_unreachable');
}

function writeRelayError(res: ServerResponse, exchange: Exchange, error: RelayError): void {
  if (res.headersSent || res.writableEnded || res.destroyed) {
    if (!res.writableEnded) res.end();
    return;
  }
  const body = JSON.stringify(error.toEnvelope());
  res.writeHead(error.status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(body),
    'x-request-id': exchange.requestId,
    ...error.headers,
  });
  res.end(body);
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
  return {
    selfHandleResponse: true,
    on: {
      proxyReq(proxyReq, req, res) {
        const exchange = getExchange(req, res);
        const state = attemptState(exchange);
        exchange.attempts += 1;
        state.proxyReq = proxyReq;
        const parsed = (req as IncomingMessage & { body?: unknown }).body;
        const body =
          exchange.upstreamBody() ??
          // A body parser ran but no relay middleware read the body: send what it parsed.
          (parsed !== undefined && !req.readable ? Buffer.from(JSON.stringify(parsed)) : undefined);
        // Headers first: the body write below sends them.
        if (exchange.wantsResponse) proxyReq.setHeader('accept-encoding', 'identity');
        if (body !== undefined) {
          proxyReq.setHeader('content-length', body.length);
          proxyReq.removeHeader('transfer-encoding');
          if (!proxyReq.getHeader('content-type'))
            proxyReq.setHeader('content-type', 'application/json');
          proxyReq.write(body);
        }
        if (!state.abortWatched) {
          state.abortWatched = true;
          res.once('close', () => {
            if (res.writableFinished) return;
            state.proxyReq?.destroy();
            state.proxyRes?.destroy();
          });
        }
        user.proxyReq?.(proxyReq, req, res);
      },
      proxyRes(proxyRes, req, res) {
        const exchange = getExchange(req, res);
        const state = attemptState(exchange);
        state.proxyRes = proxyRes;
        const pipeline = new ResponsePipeline(exchange, responseSink(res), input);
        state.pipeline = pipeline;
        pipeline.setUpstreamAbort(() => proxyRes.destroy());
        pipeline.begin(proxyRes.statusCode ?? 502, responseHeaders(proxyRes));
        let ended = false;
        const finish = (error?: Error): void => {
          if (ended) return;
          ended = true;
          pipeline
            .finish(error ? { kind: 'error', error } : { kind: 'eof' })
            .catch((failure: unknown) =>
              res.destroy(failure instanceof Error ? failure : undefined),
            );
        };
        proxyRes.on('data', (chunk: Buffer) => {
          if (!pipeline.push(chunk)) {
            proxyRes.pause();
            pipeline.onDrain(() => proxyRes.resume());
          }
        });
        proxyRes.once('end', () => finish());
        proxyRes.once('error', (error) => finish(error));
        proxyRes.once('close', () => {
          if (!proxyRes.complete)
            finish(new Error('upstream connection closed before the body ended'));
        });
        user.proxyRes?.(proxyRes, req, res);
      },
      error(error, req, res) {
        const response = res as ServerResponse;
        if (typeof response.writeHead !== 'function') {
          (res as Socket).destroy();
          return;
        }
        const exchange = getExchange(req, response);
        writeRelayError(response, exchange, connectionError(error));
        user.error?.(error, req, res);
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
