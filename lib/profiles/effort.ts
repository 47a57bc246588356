/**
 * Reasoning effort mapping: clients spell effort levels in ways a given upstream refuses
 * (`max`, `maximum`, `off`, `x-high` …). This module maps them onto the levels the upstream takes.
 *
 * The Codex backend takes `none`, `minimal`, `low`, `medium`, `high`, `xhigh` — the values of the
 * Codex client's own `ReasoningEffort` enum (openai/codex `codex-rs/protocol/src/openai_models.rs`).
 * The public API additionally lists `max` (responses-contract.md §4.1).
 */
import { isJsonObject, type ResponseCreateBody } from '../protocol/types';
import type { ProfileContext } from './types';

/** The effort levels the Codex backend accepts. */
export const CODEX_EFFORTS: readonly string[] = [
  'none',
  'minimal',
  'low',
  'medium',
  'high',
  'xhigh',
];

/**
 * Aliases, keyed by the normalized spelling (lower case, without `-`, `_` and spaces), to a
 * canonical level. `none` is a canonical level of its own, handled by `EffortMappingOptions.none`.
 */
export const DEFAULT_EFFORT_ALIASES: Readonly<Record<string, string>> = {
  max: 'xhigh',
  maximum: 'xhigh',
  ultra: 'xhigh',
  xhigh: 'xhigh',
  extrahigh: 'xhigh',
  veryhigh: 'xhigh',
  off: 'none',
  none: 'none',
  disabled: 'none',
  disable: 'none',
  no: 'none',
  min: 'minimal',
  minimum: 'minimal',
  med: 'medium',
  mid: 'medium',
};

/** How efforts are mapped. */
export interface EffortMappingOptions {
  /**
   * The levels the upstream accepts as sent.
   * @default CODEX_EFFORTS (`none`, `minimal`, `low`, `medium`, `high`, `xhigh`)
   * @example ['low', 'medium', 'high']
   */
  accepted?: readonly string[];
  /**
   * Extra aliases (normalized spelling → level), merged over {@link DEFAULT_EFFORT_ALIASES}.
   * @default {}
   * @example { turbo: 'high' }
   */
  aliases?: Readonly<Record<string, string>>;
  /**
   * What `none` / `off` become. `omit`: the `reasoning` block is removed (the model's default
   * applies; a non-reasoning model accepts the request). `none`: `effort: "none"` is sent, for
   * models that take it. A function decides per model.
   * @default 'omit'
   * @example (model) => (model?.startsWith('gpt-5.5') ? 'none' : 'omit')
   */
  none?: 'none' | 'omit' | ((model: string | undefined) => 'none' | 'omit');
  /**
   * The level sent instead of one the upstream does not know (a note is logged).
   * @default 'medium'
   */
  fallback?: string;
}

/** The outcome of mapping one effort value. */
export type EffortDecision =
  { kind: 'keep' } | { kind: 'set'; effort: string; unknown: boolean } | { kind: 'omit' };

function normalizeSpelling(value: string): string {
  return value
    .trim()
    .toLowerCase()
    .replace(/[-_\s]+/g, '');
}

/**
 * Decides what one `reasoning.effort` value becomes: kept as is, replaced (`unknown` when it was
 * not recognised and the fallback is used), or removed together with the reasoning block.
 */
export function mapEffort(
  value: unknown,
  options: EffortMappingOptions = {},
  model?: string,
): EffortDecision {
  const accepted = options.accepted ?? CODEX_EFFORTS;
  const fallback = options.fallback ?? 'medium';
  if (value === undefined) return { kind: 'keep' };
  if (value === null) return { kind: 'omit' };
  if (typeof value !== 'string') return { kind: 'set', effort: fallback, unknown: true };
  const key = normalizeSpelling(value);
  const aliases = { ...DEFAULT_EFFORT_ALIASES, ...options.aliases };
  const level = Object.hasOwn(aliases, key)
    ? aliases[key]
    : accepted.includes(key)
      ? key
      : undefined;
  if (level === 'none') {
    const policy =
      typeof options.none === 'function' ? options.none(model) : (options.none ?? 'omit');
    if (policy === 'omit') return { kind: 'omit' };
    return value === 'none' ? { kind: 'keep' } : { kind: 'set', effort: 'none', unknown: false };
  }
  if (level !== undefined && accepted.includes(level)) {
    return level === value ? { kind: 'keep' } : { kind: 'set', effort: level, unknown: false };
  }
  return { kind: 'set', effort: fallback, unknown: true };
}

/**
 * Applies {@link mapEffort} to `body.reasoning.effort`. Returns `body` itself when nothing
 * changes. `none`/`off` under the `omit` policy (and `effort: null`) remove the whole `reasoning`
 * block; an unknown value becomes the fallback and leaves an `unknown_effort` note.
 */
export function applyEffortMapping(
  body: ResponseCreateBody,
  options: EffortMappingOptions = {},
  context?: Pick<ProfileContext, 'note'>,
): ResponseCreateBody {
  const reasoning = body.reasoning;
  if (!isJsonObject(reasoning) || !Object.hasOwn(reasoning, 'effort')) return body;
  const model = typeof body.model === 'string' ? body.model : undefined;
  const decision = mapEffort(reasoning.effort, options, model);
  switch (decision.kind) {
    case 'keep':
      return body;
    case 'omit': {
      const { reasoning: _dropped, ...rest } = body;
      return rest;
    }
    case 'set':
      if (decision.unknown) {
        context?.note(
          'unknown_effort',
          `reasoning.effort ${JSON.stringify(reasoning.effort).slice(0, 64)} is not a level the upstream knows; sent '${decision.effort}'`,
        );
      }
      return { ...body, reasoning: { ...reasoning, effort: decision.effort } };
  }
}
