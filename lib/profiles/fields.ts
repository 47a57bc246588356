/**
 * Which top-level request fields an upstream takes. The Codex backend answers any field it does
 * not know with `400 {"detail":"Unsupported parameter: X"}` — a fatal error for every client — so
 * the codex profile keeps only what the official Codex client itself sends and strips the rest.
 *
 * Sources for the Codex lists:
 * - openai/codex `codex-rs/codex-api/src/common.rs`, `ResponsesApiRequest`: model, instructions
 *   (omitted when empty), input, tools, tool_choice, parallel_tool_calls, reasoning, store, stream,
 *   stream_options (only `reasoning_summary_delivery`, in newer clients), include, service_tier,
 *   prompt_cache_key, text, client_metadata, access_programs (newer clients); over WebSocket also
 *   previous_response_id and generate.
 * - The Codex CLI 0.169.0 bodies in fixtures/codex-wire (`http_request` records).
 * - Refusals reported by peers (peers.md row 50, edge case 10, complaints 10): max_output_tokens,
 *   max_completion_tokens, max_tokens, temperature, top_p, metadata, stream_options,
 *   prompt_cache_retention, safety_identifier, user; `truncation` (decolua/9router#1320).
 */
import type { ResponseCreateBody } from '../protocol/types';

/** Every top-level field the Codex client sends over HTTP, so the backend accepts. */
export const CODEX_ACCEPTED_FIELDS: readonly string[] = [
  'model',
  'instructions',
  'input',
  'tools',
  'tool_choice',
  'parallel_tool_calls',
  'reasoning',
  'store',
  'stream',
  'stream_options',
  'include',
  'service_tier',
  'prompt_cache_key',
  'text',
  'client_metadata',
  'access_programs',
];

/**
 * Fields the codex profile leaves in place although the backend refuses them, because dropping
 * them would silently lose the conversation the client refers to: a continuation must be expanded
 * by the chaining middleware (stateless mode) or refused, never sent without its history.
 * `background: true` stays too (the client would poll for a response that is never stored).
 */
export const CODEX_STATEFUL_FIELDS: readonly string[] = ['previous_response_id', 'conversation'];

/** The only `stream_options` member the Codex client sends (newer versions). */
export const CODEX_STREAM_OPTIONS: readonly string[] = ['reasoning_summary_delivery'];

/**
 * Fields known to be refused by the Codex backend (documentation: each is also outside
 * {@link CODEX_ACCEPTED_FIELDS}, so the allowlist strips it).
 */
export const CODEX_REFUSED_FIELDS: readonly string[] = [
  'max_output_tokens',
  'max_completion_tokens',
  'max_tokens',
  'temperature',
  'top_p',
  'top_logprobs',
  'metadata',
  'prompt_cache_retention',
  'safety_identifier',
  'user',
  'truncation',
];

/** What to keep. */
export interface FieldFilter {
  /** Fields that pass. */
  accepted: readonly string[];
  /** Fields that pass although not accepted (see {@link CODEX_STATEFUL_FIELDS}). */
  keep?: readonly string[];
  /** Fields removed even when accepted. */
  strip?: readonly string[];
}

/** The result of filtering: the body (the same object when nothing was removed) and what went. */
export interface FieldFilterResult {
  body: ResponseCreateBody;
  removed: string[];
}

/**
 * Removes the top-level fields `filter` does not let through. `background` stays when `true`
 * (see {@link CODEX_STATEFUL_FIELDS}); `false`/`null` is simply dropped.
 */
export function filterFields(body: ResponseCreateBody, filter: FieldFilter): FieldFilterResult {
  const removed: string[] = [];
  for (const key of Object.keys(body)) {
    const allowed =
      (filter.accepted.includes(key) || (filter.keep?.includes(key) ?? false)) &&
      !(filter.strip?.includes(key) ?? false);
    if (allowed) continue;
    if (
      key === 'background' &&
      body.background === true &&
      !(filter.strip?.includes(key) ?? false)
    ) {
      continue;
    }
    removed.push(key);
  }
  if (removed.length === 0) return { body, removed };
  const out: ResponseCreateBody = Object.fromEntries(
    Object.entries(body).filter(([key]) => !removed.includes(key)),
  );
  return { body: out, removed };
}

/**
 * Keeps only the `stream_options` members in `allowed`; removes `stream_options` when none is
 * left. Returns `body` itself when nothing changes.
 */
export function filterStreamOptions(
  body: ResponseCreateBody,
  allowed: readonly string[] = CODEX_STREAM_OPTIONS,
): FieldFilterResult {
  if (!Object.hasOwn(body, 'stream_options')) return { body, removed: [] };
  const options = body.stream_options;
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    const { stream_options: _dropped, ...rest } = body;
    return { body: rest, removed: ['stream_options'] };
  }
  const entries = Object.entries(options);
  const kept = entries.filter(([key]) => allowed.includes(key));
  if (kept.length === entries.length && kept.length > 0) return { body, removed: [] };
  const removed = entries
    .filter(([key]) => !allowed.includes(key))
    .map(([key]) => `stream_options.${key}`);
  if (kept.length === 0) {
    const { stream_options: _dropped, ...rest } = body;
    return { body: rest, removed: removed.length > 0 ? removed : ['stream_options'] };
  }
  return { body: { ...body, stream_options: Object.fromEntries(kept) }, removed };
}
