/**
 * The generic building block every stream-aware middleware of the relay stands on: it registers a
 * stage on the exchange and makes sure the response passes through the shared pipeline (by
 * tapping the response, which is harmless when `relayProxyOptions()` handles it instead).
 * Exported so gateway authors can add their own event rewrites with the same guarantees.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  getExchange,
  type EmitEvent,
  type StageContext,
  type StreamEnd,
  type StreamStageFactory,
} from './exchange';
import { tapResponse } from './response-tap';
import type { ResponsePipelineOptions } from './response-pipeline';
import type { StreamEvent } from '../protocol/types';

/** A plain Connect/Express middleware (no dependency on Express's types). */
export type RelayMiddleware = (
  req: IncomingMessage,
  res: ServerResponse,
  next: (error?: unknown) => void,
) => void;

export interface StreamTransformOptions extends ResponsePipelineOptions {
  /** Names the stage; a second stage with the same name on one exchange is ignored. */
  name: string;
  /** Called for each event; emit it (or a new object) to pass it on, emit nothing to drop it. */
  onEvent?(event: StreamEvent, emit: EmitEvent, context: StageContext): void | Promise<void>;
  /** Called once when the upstream body is over; may emit final events. */
  onEnd?(end: StreamEnd, emit: EmitEvent, context: StageContext): void | Promise<void>;
}

/** Registers a stage factory on the exchange and taps the response. */
export function installStage(
  req: IncomingMessage,
  res: ServerResponse,
  name: string,
  create: StreamStageFactory,
  options: ResponsePipelineOptions = {},
): void {
  const exchange = getExchange(req, res);
  exchange.addStage(name, create);
  tapResponse(exchange, options);
}

/**
 * A middleware that rewrites Responses stream events in flight, incrementally: each event is
 * forwarded as soon as it has passed the stage; nothing waits for the end of the stream.
 *
 * @example
 * ```ts
 * app.post('/v1/responses',
 *   streamTransform({ name: 'drop-vendor-events', onEvent: (event, emit) => {
 *     if (!event.type.startsWith('codex.')) emit(event);
 *   } }),
 *   createProxyMiddleware({ target, changeOrigin: true }));
 * ```
 */
export function streamTransform(options: StreamTransformOptions): RelayMiddleware {
  const { name, onEvent, onEnd } = options;
  return (req, res, next) => {
    installStage(req, res, name, () => ({ name, onEvent, onEnd }), options);
    next();
  };
}
