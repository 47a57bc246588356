/**
 * The `codex` profile: the ChatGPT Codex backend (`https://chatgpt.com/backend-api/codex/responses`),
 * a Responses-compatible upstream that only streams, stores nothing and refuses every parameter it
 * does not know. Any client (the Codex CLI, Droid, the `openai` SDK) can talk to it through this
 * profile; what each rule does and why:
 *
 * | rule | why |
 * | --- | --- |
 * | `stream: true` | the backend only streams (`Stream must be set to true`); a client that did not ask for a stream gets one aggregated JSON Response |
 * | `store: false` | the backend stores nothing (`Store must be set to false`); continuations are the relay's job (`upstreamMode: 'stateless'`) |
 * | `instructions: ""` when missing or null (not for Codex clients) | `{"detail":"Instructions are required"}` otherwise; an empty string is accepted and adds no prompt (Wei-Shaw/sub2api#2257, router-for-me/CLIProxyAPI#2434) |
 * | keep only the fields the Codex client sends | anything else is `{"detail":"Unsupported parameter: X"}`, fatal for clients (see `fields.ts`) |
 * | `stream_options` reduced to `reasoning_summary_delivery` | the only member Codex sends; `include_obfuscation`/`include_usage` are refused |
 * | string `input` → one user message | `{"detail":"Input must be a list"}` otherwise |
 * | reasoning items without `encrypted_content` removed | `store: false` cannot resolve them by id (404 "Items are not persisted") |
 * | effort aliases (`max`/`maximum` → `xhigh`, `off`/`none` → no reasoning block, unknown → `medium`) | the backend's levels are Codex's enum: none … xhigh |
 * | root `oneOf`/`anyOf`/`allOf`/`enum`/`not` of tool schemas folded | strict schema validation refuses them |
 * | `previous_response_id`, `conversation`, `background: true` left in place | dropping them would lose the conversation silently; the chaining middleware expands a continuation, otherwise the backend refuses it |
 *
 * Nothing the client omitted is added (no `tools: []`, `tool_choice`, `include`), except
 * `instructions`, `stream` and `store`, which the backend requires. Requests from Codex clients
 * are trusted (`trustCodexClients`): only the hard rules apply, which leave a real Codex body
 * untouched, so it reaches the backend byte for byte.
 */
import type { ResponseCreateBody } from '../protocol/types';
import { applyEffortMapping, CODEX_EFFORTS, type EffortMappingOptions } from './effort';
import {
  CODEX_ACCEPTED_FIELDS,
  CODEX_STATEFUL_FIELDS,
  CODEX_STREAM_OPTIONS,
  filterFields,
  filterStreamOptions,
} from './fields';
import { dropUnpersistedReasoning, inputAsList } from './input';
import { sanitizeTools } from './tool-schema';
import type { ProfileContext, UpstreamProfile, VendorEventPolicy } from './types';
import { isCodexVendorEventType } from './vendor-events';

/** The Codex backend's path under `https://chatgpt.com`. */
export const CODEX_BACKEND_PATH = '/backend-api/codex/responses';

export interface CodexProfileOptions {
  /**
   * The `instructions` sent when the client sent none (or `null`); `false` never adds them.
   * @default '' (accepted by the backend, adds no prompt)
   * @example 'You are a helpful assistant.'
   */
  defaultInstructions?: string | false;
  /**
   * More top-level fields to let through (for a backend that learned new ones).
   * @default []
   * @example ['prompt_cache_options']
   */
  allowFields?: readonly string[];
  /**
   * Fields to remove although the Codex client sends them.
   * @default []
   * @example ['service_tier']
   */
  stripFields?: readonly string[];
  /**
   * Effort mapping (see `EffortMappingOptions`); `false` passes efforts as sent.
   * @default { accepted: CODEX_EFFORTS, none: 'omit', fallback: 'medium' }
   * @example { none: 'none' }
   */
  effort?: EffortMappingOptions | false;
  /**
   * Fold root-level combinators of function tool schemas (see `tool-schema.ts`).
   * @default true
   */
  sanitizeToolSchemas?: boolean;
  /**
   * Remove reasoning items that have an id but no `encrypted_content`.
   * @default true
   */
  dropUnpersistedReasoning?: boolean;
  /**
   * Leave requests from Codex clients (recognised by their headers) as Codex sent them, apart
   * from the backend's hard rules (`stream`, `store`, the field allowlist — all no-ops for a real
   * Codex body): no default `instructions`, no effort mapping, no schema folding, no reasoning
   * removal. Codex knows the backend better than any relay (it reads the supported levels from
   * the backend's `/models`), and its large bodies then reach the upstream byte for byte.
   * @default true
   */
  trustCodexClients?: boolean;
  /**
   * What vendor events (`codex.rate_limits`, …) become.
   * @default 'auto' (passed to Codex clients, dropped for everyone else)
   */
  vendorEvents?: VendorEventPolicy;
  /**
   * The upstream path of the Responses endpoint, for `profilePathRewrite`.
   * @default '/backend-api/codex/responses'
   */
  path?: string;
}

/** Builds the `codex` profile. */
export function codexProfile(options: CodexProfileOptions = {}): UpstreamProfile {
  const accepted = [...CODEX_ACCEPTED_FIELDS, ...(options.allowFields ?? [])];
  const keep = CODEX_STATEFUL_FIELDS;
  const strip = options.stripFields ?? [];
  const instructions = options.defaultInstructions ?? '';
  const effort =
    options.effort === false
      ? undefined
      : { accepted: CODEX_EFFORTS, none: 'omit' as const, ...options.effort };
  const sanitize = options.sanitizeToolSchemas !== false;
  const dropReasoning = options.dropUnpersistedReasoning !== false;
  const trustCodex = options.trustCodexClients !== false;

  return {
    name: 'codex',
    upstreamMode: 'stateless',
    vendorEvents: options.vendorEvents ?? 'auto',
    isVendorEvent: isCodexVendorEventType,
    path: options.path ?? CODEX_BACKEND_PATH,
    prepareRequest(body: ResponseCreateBody, context: ProfileContext): ResponseCreateBody {
      let out = filterFields(body, { accepted, keep, strip }).body;
      if (!strip.includes('stream_options')) {
        out = filterStreamOptions(out, CODEX_STREAM_OPTIONS).body;
      }
      if (out.stream !== true || out.store !== false) {
        out = { ...out, stream: true, store: false };
      }
      if (trustCodex && context.client === 'codex') return out;
      if (instructions !== false && (out.instructions === undefined || out.instructions === null)) {
        out = { ...out, instructions };
      }
      out = inputAsList(out);
      if (dropReasoning) {
        const dropped = dropUnpersistedReasoning(out);
        if (dropped.removed.length > 0) {
          context.note(
            'dropped_unpersisted_reasoning',
            `removed ${dropped.removed.length} reasoning item(s) without encrypted_content (${dropped.removed.slice(0, 3).join(',')})`,
          );
        }
        out = dropped.body;
      }
      if (effort !== undefined) out = applyEffortMapping(out, effort, context);
      if (sanitize && Array.isArray(out.tools)) {
        const result = sanitizeTools(out.tools);
        if (result.changed.length > 0) {
          context.note(
            'sanitized_tool_schema',
            result.changed.map((entry) => `${entry.tool}(${entry.changes.join('+')})`).join(','),
          );
          out = { ...out, tools: result.tools as unknown[] };
        }
      }
      return out;
    },
  };
}
