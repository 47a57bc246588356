/**
 * Upstream profiles: request normalization for the OpenAI API, the ChatGPT Codex backend and any
 * Responses-compatible upstream a user describes. Pure: no I/O, no mutation of the client's body.
 * The middleware that applies a profile is `upstreamProfile` (lib/middleware/upstream-profile.ts).
 */
export type {
  ClientKind,
  ProfileContext,
  ProfileName,
  ProfileNote,
  RequestHeaders,
  UpstreamMode,
  UpstreamProfile,
  VendorEventPolicy,
} from './types';
export {
  createProfileContext,
  identifyClient,
  isCodexClient,
  type CollectingProfileContext,
} from './clients';
export { openaiProfile, OPENAI_EFFORTS, type OpenAIProfileOptions } from './openai';
export { codexProfile, CODEX_BACKEND_PATH, type CodexProfileOptions } from './codex';
export {
  applyEffortMapping,
  mapEffort,
  CODEX_EFFORTS,
  DEFAULT_EFFORT_ALIASES,
  type EffortDecision,
  type EffortMappingOptions,
} from './effort';
export {
  applyToolSchemaSanitizing,
  sanitizeToolParameters,
  sanitizeTools,
  ROOT_FORBIDDEN_KEYWORDS,
  type SchemaSanitizeResult,
  type ToolSanitizeChange,
  type ToolsSanitizeResult,
} from './tool-schema';
export {
  filterFields,
  filterStreamOptions,
  CODEX_ACCEPTED_FIELDS,
  CODEX_REFUSED_FIELDS,
  CODEX_STATEFUL_FIELDS,
  CODEX_STREAM_OPTIONS,
  type FieldFilter,
  type FieldFilterResult,
} from './fields';
export {
  inputAsList,
  dropUnpersistedReasoning,
  isUnpersistedReasoning,
  type InputFilterResult,
} from './input';
export {
  isVendorEventType,
  isCodexVendorEventType,
  dropsVendorEvents,
  vendorEventPredicate,
} from './vendor-events';
export {
  RESPONSES_ROUTES,
  responsesRoutes,
  mountResponsesRoutes,
  profilePathRewrite,
  type ResponsesRoutesOptions,
} from './routes';
export {
  PROFILES,
  defineProfile,
  resolveProfile,
  prepareRequest,
  diffBodies,
  type BodyDiff,
  type ProfileDefinition,
} from './registry';
