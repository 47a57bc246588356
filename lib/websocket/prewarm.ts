/**
 * `prewarmResponder()`: answers a `generate: false` request (the Codex client's WebSocket prewarm)
 * on the HTTP Responses route itself, at once, the way the real server does: `response.created`,
 * `response.in_progress` and `response.completed` with a fresh id and no output. Nothing goes
 * upstream.
 *
 * Mounted after `responseChaining()` and before the proxy, the answer runs through the same
 * response pipeline as any turn, so the chaining middleware stores the prewarm (its input holds
 * the base instructions, which exist nowhere else) before the client sees `response.completed`,
 * and the client's next turn, anchored on the prewarm id, is expanded with it.
 *
 * The WebSocket bridge posts each `response.create` to this route, prewarms included; the
 * responder answers HTTP clients that send `generate: false` the same way.
 */
import type { ServerResponse } from 'node:http';
import { getExchange, type Exchange } from '../middleware/exchange';
import { readRequestBody } from '../middleware/request-body';
import { isCreateRequest } from '../middleware/response-chaining';
import { tapResponse } from '../middleware/response-tap';
import type { RelayMiddleware } from '../middleware/stream-transform';
import { newResponseId } from '../protocol/ids';
import { serializeStreamEvent } from '../protocol/sse';
import type {
  ResponseCreateBody,
  ResponseObject,
  ResponseUsage,
  StreamEvent,
} from '../protocol/types';

/** Response header marking an answer the prewarm responder wrote (the bridge checks it). */
export const PREWARM_HEADER = 'x-relay-prewarm';
export const PREWARM_ANSWERED = 'answered';

export interface PrewarmResponderOptions {
  /** Largest request body read when no body parser ran before. @default 32 MiB */
  maxBodyBytes?: number;
}

/** Whether a request body is a prewarm (`generate: false`). */
export function isPrewarm(body: ResponseCreateBody | undefined): boolean {
  return body?.generate === false;
}

function zeroUsage(): ResponseUsage {
  return {
    input_tokens: 0,
    input_tokens_details: { cached_tokens: 0 },
    output_tokens: 0,
    output_tokens_details: { reasoning_tokens: 0 },
    total_tokens: 0,
  };
}

/** Request fields a Response echoes, when the client sent them. */
const ECHOED_FIELDS = [
  'instructions',
  'parallel_tool_calls',
  'reasoning',
  'store',
  'text',
  'tool_choice',
  'prompt_cache_key',
  'service_tier',
  'metadata',
] as const;

/** The completed Response of a prewarm: a fresh id, no output, nothing used. */
export function prewarmResponse(
  body: ResponseCreateBody,
  id: string = newResponseId(),
  now: number = Date.now(),
): ResponseObject {
  const response: ResponseObject = {
    id,
    object: 'response',
    created_at: Math.floor(now / 1000),
    status: 'completed',
    completed_at: Math.floor(now / 1000),
    error: null,
    incomplete_details: null,
    model: typeof body.model === 'string' ? body.model : '',
    output: [],
    previous_response_id:
      typeof body.previous_response_id === 'string' ? body.previous_response_id : null,
    usage: zeroUsage(),
  };
  for (const field of ECHOED_FIELDS) {
    const value = body[field];
    if (value !== undefined) response[field] = value;
  }
  return response;
}

/** The stream of a prewarm: created, in_progress, completed. */
export function prewarmEvents(response: ResponseObject): StreamEvent[] {
  const started: ResponseObject = {
    ...response,
    status: 'in_progress',
    completed_at: null,
    usage: null,
  };
  return [
    { type: 'response.created', sequence_number: 0, response: started },
    { type: 'response.in_progress', sequence_number: 1, response: started },
    { type: 'response.completed', sequence_number: 2, response },
  ];
}

function answer(res: ServerResponse, body: ResponseCreateBody): void {
  const response = prewarmResponse(body);
  if (body.stream === true) {
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache, no-transform',
      [PREWARM_HEADER]: PREWARM_ANSWERED,
    });
    // One write: the events of a prewarm are few and small.
    res.end(
      prewarmEvents(response)
        .map((event) => serializeStreamEvent(event))
        .join(''),
    );
    return;
  }
  const json = JSON.stringify(response);
  res.writeHead(200, {
    'content-type': 'application/json',
    'content-length': String(Buffer.byteLength(json)),
    [PREWARM_HEADER]: PREWARM_ANSWERED,
  });
  res.end(json);
}

/**
 * The prewarm responder. Mount it on the Responses route after `responseChaining()` (which stores
 * the prewarm) and before the proxy.
 *
 * @example
 * app.post(['/v1/responses', '/responses'], express.json({ limit: '32mb' }),
 *   errorEnvelope(), responseChaining({ store, upstreamMode: 'stateless', session: bridgeSession() }),
 *   sseCompletion(), prewarmResponder(), relayProxy({ target }));
 */
export function prewarmResponder(options: PrewarmResponderOptions = {}): RelayMiddleware {
  /** Answers the exchange when it is a prewarm; false when it goes on to the upstream. */
  const answered = (exchange: Exchange, res: ServerResponse): boolean => {
    // The client's own body: an upstream profile may have dropped `generate` from what goes
    // upstream, the request is a prewarm all the same.
    const body = exchange.clientBody ?? exchange.body;
    if (!isPrewarm(body)) return false;
    exchange.annotations.prewarm = true;
    // The answer goes through the stages and the before-final hooks (which store it).
    tapResponse(exchange, {}, true);
    answer(res, body as ResponseCreateBody);
    return true;
  };
  return (req, res, next) => {
    if (!isCreateRequest(req)) {
      next();
      return;
    }
    const exchange = getExchange(req, res);
    if (exchange.body !== undefined) {
      // Read already (the usual case, by the middlewares in front): no need to wait a tick.
      if (!answered(exchange, res)) next();
      return;
    }
    readRequestBody(exchange, { maxBodyBytes: options.maxBodyBytes }).then(
      () => {
        if (!answered(exchange, res)) next();
      },
      (error: unknown) => next(error),
    );
  };
}
