/**
 * The WebSocket → HTTP bridge: Codex "responses websockets" served on top of the gateway's HTTP
 * Responses route (see docs/middleware/websocket-bridge.md).
 */
export { attachWebSocketBridge, websocketDisabledEnvelope, type WebSocketBridge } from './bridge';
export { type WebSocketBridgeStats } from './connection';
export {
  DEFAULT_WS_PATHS,
  DEFAULT_MAX_PAYLOAD,
  DEFAULT_HIGH_WATER_MARK,
  DEFAULT_PING_INTERVAL_MS,
  DEFAULT_MAX_QUEUED_TURNS,
  type WebSocketBridgeOptions,
  type UpgradeVerdict,
} from './options';
export {
  prewarmResponder,
  prewarmResponse,
  prewarmEvents,
  isPrewarm,
  PREWARM_HEADER,
  type PrewarmResponderOptions,
} from './prewarm';
export {
  bridgeSession,
  connectionSessionKey,
  BRIDGE_SESSION_HEADER,
  AFFINITY_HEADERS,
} from './session';
export {
  parseClientMessage,
  turnBody,
  errorFrameText,
  errorFromHttpAnswer,
  eventsFromResponse,
  CREATE_MESSAGE_TYPE,
  IGNORED_MESSAGE_TYPES,
  type ClientMessage,
} from './frames';
