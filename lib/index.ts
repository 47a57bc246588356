/**
 * responses-relay: the public API, and nothing else.
 */
export * from './protocol/types';
export {
  Exchange,
  getExchange,
  findExchange,
  type EmitEvent,
  type StreamEnd,
  type StageContext,
  type StreamStage,
  type StreamStageFactory,
  type ErrorResponse,
  type ErrorReplacement,
  type ErrorResponder,
  type BeforeFinalHook,
} from './middleware/exchange';
export {
  readRequestBody,
  DEFAULT_MAX_BODY_BYTES,
  type ReadBodyOptions,
} from './middleware/request-body';
export {
  ResponsePipeline,
  type ClientSink,
  type ResponsePipelineOptions,
} from './middleware/response-pipeline';
export { tapResponse } from './middleware/response-tap';
export {
  relayProxy,
  relayProxyOptions,
  type RelayProxyOptions,
  type RelayProxyOptionsInput,
  type RelayProxyHandlers,
} from './middleware/relay-proxy';
export {
  streamTransform,
  installStage,
  type RelayMiddleware,
  type StreamTransformOptions,
} from './middleware/stream-transform';
