/**
 * The `openai` profile: the public OpenAI API (`https://api.openai.com/v1/responses`). It takes
 * everything the Responses API defines, stores responses and chains `previous_response_id`
 * itself, and sends no vendor events — so by default the request passes as is, byte for byte.
 * Two opt-in normalizations exist for gateways that serve odd clients.
 */
import type { ResponseCreateBody } from '../protocol/types';
import { applyEffortMapping, type EffortMappingOptions } from './effort';
import { applyToolSchemaSanitizing } from './tool-schema';
import type { ProfileContext, UpstreamProfile, VendorEventPolicy } from './types';

/** The public API's effort levels (responses-contract.md §4.1). */
export const OPENAI_EFFORTS: readonly string[] = [
  'none',
  'minimal',
  'low',
  'medium',
  'high',
  'xhigh',
  'max',
];

export interface OpenAIProfileOptions {
  /**
   * Map effort aliases (`maximum` → `max`, `off` → `none` …) onto the API's levels. `true` uses
   * the API's own levels (`max` stays `max`); an object customizes the mapping.
   * @default false (the request passes as is)
   * @example true
   */
  effort?: boolean | EffortMappingOptions;
  /**
   * Fold root-level `oneOf`/`anyOf`/`allOf`/`enum`/`not` of function tool schemas.
   * @default false
   */
  sanitizeToolSchemas?: boolean;
  /**
   * @default 'pass'
   */
  vendorEvents?: VendorEventPolicy;
  /**
   * The upstream path of the Responses endpoint, for `profilePathRewrite`.
   * @default '/v1/responses'
   */
  path?: string;
}

/** Builds the `openai` profile. */
export function openaiProfile(options: OpenAIProfileOptions = {}): UpstreamProfile {
  const effort: EffortMappingOptions | undefined =
    options.effort === true
      ? {
          accepted: OPENAI_EFFORTS,
          aliases: { max: 'max', maximum: 'max', ultra: 'max' },
          none: 'none',
        }
      : options.effort === false || options.effort === undefined
        ? undefined
        : options.effort;
  const sanitize = options.sanitizeToolSchemas === true;
  const profile: UpstreamProfile = {
    name: 'openai',
    upstreamMode: 'stateful',
    vendorEvents: options.vendorEvents ?? 'pass',
    path: options.path ?? '/v1/responses',
  };
  if (effort === undefined && !sanitize) return profile;
  return {
    ...profile,
    prepareRequest(body: ResponseCreateBody, context: ProfileContext): ResponseCreateBody {
      let out = body;
      if (effort !== undefined) out = applyEffortMapping(out, effort, context);
      if (sanitize) out = applyToolSchemaSanitizing(out);
      return out;
    },
  };
}
