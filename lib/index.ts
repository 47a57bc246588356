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

// Pure protocol code (no I/O).
export {
  SseParser,
  SseLineTooLongError,
  serializeSseMessage,
  serializeSseComment,
  serializeStreamEvent,
  isDoneSentinel,
  SSE_DONE,
  type SseMessage,
  type SseParserOptions,
} from './protocol/sse';
export { ResponseAccumulator } from './protocol/accumulator';
export {
  analyzePairing,
  isSelfContained,
  pairingError,
  pairingErrorMessage,
  repairPairing,
  type CallRef,
  type PairingReport,
  type PairingError,
  type RepairResult,
  type AnalyzeOptions,
} from './protocol/pairing';
export {
  normalizeInput,
  toInputItems,
  classifyItem,
  CALL_KINDS,
  type CallKind,
  type ItemClass,
} from './protocol/items';
export { newResponseId, newItemId, newCallId, isResponseId, hasItemIdPrefix } from './protocol/ids';
export {
  normalizeErrorBody,
  errorTypeForStatus,
  isPreviousResponseNotFound,
  errorFromStreamEvent,
  toStreamErrorEvent,
  toWebSocketErrorFrame,
  pickPreservedHeaders,
  PRESERVED_ERROR_HEADERS,
  type NormalizeErrorInput,
} from './protocol/errors';
export {
  RelayError,
  relayError,
  toRelayError,
  isRelayError,
  RELAY_ERRORS,
  type RelayErrorKind,
} from './protocol/relay-errors';
export {
  sanitizeText,
  truncateText,
  redactHeaders,
  SENSITIVE_HEADERS,
  REDACTED,
} from './protocol/sanitize';
export {
  parseRetryAfterMs,
  classifyStatus,
  classifyConnectionError,
  classifyStreamFailure,
  backoffDelayMs,
  retryDelayMs,
  type RetryDecision,
  type RetryReason,
} from './protocol/retry-hints';
export { streamFailureEvents } from './middleware/stream-failure';

// Upstream profiles (request normalization per backend).
export * from './profiles';
export {
  upstreamProfile,
  VENDOR_EVENTS_STAGE,
  type UpstreamProfileOptions,
} from './middleware/upstream-profile';
export * from './store';

// The middlewares.
export {
  errorEnvelope,
  relayErrorHandler,
  type ErrorEnvelopeOptions,
  type ErrorEnvelopeLogger,
  type RelayErrorHandlerOptions,
  type RelayErrorHandler,
} from './middleware/error-envelope';
export { defaultErrorStatus } from './middleware/error-envelope-rules';
export {
  sseCompletion,
  createSseCompletionStage,
  SSE_COMPLETION_STAGE,
  type SseCompletionOptions,
} from './middleware/sse-completion';
export { MemoryItemIdAliases, type ItemIdAliases } from './middleware/sse-completion-ids';
export {
  responseChaining,
  isCreateRequest,
  type ResponseChainingOptions,
  type ChainingMode,
} from './middleware/response-chaining';
export { responseOwnership, type ResponseOwnershipOptions } from './middleware/chaining-ownership';
export {
  chainingRouter,
  pinUpstream,
  pinnedUpstream,
  routedUpstream,
  type ChainingRouter,
  type ChainingRouterOptions,
} from './middleware/chaining-router';
export {
  sessionFromHeaders,
  DEFAULT_SESSION_HEADERS,
  type SessionResolver,
} from './middleware/chaining-session';
export { requestCredential, type TenantKeyResolver } from './middleware/chaining-tenant';
export { type ValidatePolicy } from './middleware/chaining-expand';
export { type ChainingLogger, type StoreErrorPolicy } from './middleware/chaining-reply';
export {
  retryGuard,
  ExchangeRetryPolicy,
  type RetryGuardOptions,
  type RetryEvent,
  type RetryLogger,
} from './middleware/retry-guard';
export { RetryBudget, type RetryBudgetOptions } from './protocol/retry-budget';
export { sendJson, sendEnvelope, sendRelayError } from './middleware/send-error';
export {
  type AttemptPolicy,
  type RetryPlan,
  type BeforeAttemptHook,
  type AnchorLostHook,
} from './middleware/exchange';
export * from './websocket';

// The standalone relay and operations.
export {
  createRelay,
  type Relay,
  type RelayOptions,
  type RelayEvents,
  type CloseOptions,
} from './relay';
export {
  createLogger,
  relayLogger,
  relayLoggerOptions,
  REDACT_PATHS,
  type CreateLoggerOptions,
  type RelayLoggerOptions,
} from './ops/logger';
export { RelayMetrics, createRelayMetrics, type RelayMetricsOptions } from './ops/metrics';
export {
  createHealth,
  Health,
  storeCheck,
  upstreamCheck,
  type HealthOptions,
  type ReadinessReport,
  type CheckResult,
  type ReadinessCheck,
} from './ops/health';
export { summarizeExchange, type ExchangeSummary, type RouteKind } from './ops/summary';
export { recommendedRedisOptions, recommendedClusterOptions } from './ops/redis';
