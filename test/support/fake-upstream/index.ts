/**
 * A fake OpenAI Responses API for tests: enforces the real API's rules (tool-call pairing,
 * `previous_response_id`, `store: false`, the Codex backend's request checks) with the real
 * wordings, streams well-formed event sequences, and can be scripted to misbehave (HTTP errors,
 * cut or stalled streams, in-stream errors, odd ids, lockstep release of events).
 *
 * It is an independent implementation: nothing here imports the relay's own protocol code (only
 * its types), so relay tests against it are not tautological.
 */
export { startFakeUpstream, SCRIPT_HEADER } from './server';
export { parseBehaviour } from './behaviours';
export {
  STATEFUL_PARAMETERS,
  STATELESS_ACCEPTED_PARAMETERS,
  STATELESS_UNSUPPORTED_PARAMETERS,
} from './validation';
export { AUTO_TEXT, REASONING_SUMMARY } from './generation';
export { checkStream, type StreamCheckOptions } from './stream-check';
export {
  openStream,
  postStream,
  rawRequest,
  SseReader,
  type RawAnswer,
  type SseEvent,
  type StreamAnswer,
} from './client';
export { INVALID_JSON_MESSAGE, MISSING_KEY_MESSAGE, STORE_FALSE_ITEM_HINT } from './errors';
export type {
  Behaviour,
  BehaviourKind,
  FakeMode,
  FakeUpstream,
  FakeUpstreamOptions,
  Gate,
  GateOptions,
  RecordedRequest,
  StoredFakeResponse,
  StreamErrorSpec,
  ToolCallSpec,
} from './types';
