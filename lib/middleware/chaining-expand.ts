/**
 * The pure half of response chaining (DESIGN.md §3, §5): what a stored history becomes when it is
 * replayed to a `store: false` upstream, how a delta's `item_reference`s are resolved, when the
 * relay asks for encrypted reasoning, the pairing policy on the full sequence, and the guards of
 * session injection. No I/O; nothing given is mutated.
 */
import { isUnpersistedReasoning } from '../protocol/items';
import {
  analyzePairing,
  pairingError,
  repairPairing,
  type PairingError,
} from '../protocol/pairing';
import { isJsonObject, type ResponseItem } from '../protocol/types';

/** What the relay does with an input whose tool calls and outputs do not pair (DESIGN.md §5). */
export type ValidatePolicy = 'reject' | 'repair' | 'off';

export const VALIDATE_POLICIES: readonly ValidatePolicy[] = Object.freeze([
  'reject',
  'repair',
  'off',
]);

/** The `include` value that makes reasoning items replayable without server-side storage. */
export { isUnpersistedReasoning };

export const ENCRYPTED_REASONING_INCLUDE = 'reasoning.encrypted_content';

/**
 * An `item_reference` input item: `{type: "item_reference", id}`, or the bare `{id}` form the
 * API also accepts (no `type`, no `role`).
 */
export function isItemReference(item: unknown): item is ResponseItem & { id: string } {
  if (!isJsonObject(item) || typeof item.id !== 'string' || item.id === '') return false;
  if (item.type === 'item_reference') return true;
  return item.type == null && item.role == null;
}

/** Whether a stored item can be sent to a `store: false` upstream as it is. */
export function isReplayable(item: unknown): boolean {
  return !isItemReference(item) && !isUnpersistedReasoning(item);
}

/** A stored history made acceptable to a `store: false` upstream. */
export interface ReplayableHistory {
  items: ResponseItem[];
  /** How many stored items were left out (reasoning without encrypted content, references). */
  dropped: number;
}

/**
 * The stored history without the items a `store: false` upstream would refuse: reasoning items
 * that carry no `encrypted_content` (their id was never persisted upstream) and references. The
 * same array is returned when nothing is dropped.
 */
export function replayableHistory(items: readonly ResponseItem[]): ReplayableHistory {
  let dropped = 0;
  for (const item of items) if (!isReplayable(item)) dropped += 1;
  if (dropped === 0) return { items: items as ResponseItem[], dropped };
  return { items: items.filter(isReplayable), dropped };
}

/** The result of {@link resolveItemReferences}. */
export interface ResolvedReferences {
  items: ResponseItem[];
  /** References replaced by the stored item they name. */
  resolved: number;
  /** Ids of the references that named nothing replayable in the history (left out). */
  dropped: string[];
}

/**
 * Replaces each `item_reference` of `delta` by the item of `history` with that id (the relay is
 * the store of a `store: false` upstream, so a reference into the conversation is resolved the
 * way the API resolves it). A reference to nothing replayable is left out: a `store: false`
 * upstream could only answer it with 404 "Item with id … not found". `delta` itself is returned
 * when it holds no reference.
 */
export function resolveItemReferences(
  delta: readonly ResponseItem[],
  history: readonly ResponseItem[],
): ResolvedReferences {
  if (!delta.some(isItemReference))
    return { items: delta as ResponseItem[], resolved: 0, dropped: [] };
  const byId = new Map<string, ResponseItem>();
  for (const item of history) {
    if (typeof item.id === 'string' && !byId.has(item.id) && isReplayable(item)) {
      byId.set(item.id, item);
    }
  }
  const items: ResponseItem[] = [];
  const dropped: string[] = [];
  let resolved = 0;
  for (const item of delta) {
    if (!isItemReference(item)) {
      items.push(item);
      continue;
    }
    const found = byId.get(item.id);
    if (found === undefined) {
      dropped.push(item.id);
    } else {
      items.push(found);
      resolved += 1;
    }
  }
  return { items, resolved, dropped };
}

/**
 * Whether the relay should ask a `store: false` upstream for encrypted reasoning: when the
 * request configures `reasoning`, or the conversation already holds reasoning items. Asking a
 * model without reasoning for it can be refused ("Encrypted content is not supported with this
 * model."), so it is not added blindly.
 */
export function wantsEncryptedReasoning(
  body: Readonly<Record<string, unknown>>,
  items: readonly ResponseItem[],
): boolean {
  if (body.reasoning != null) return true;
  return items.some((item) => isJsonObject(item) && item.type === 'reasoning');
}

/**
 * `include` with `reasoning.encrypted_content` added, or `undefined` when it is already there
 * (or `include` is not a list: the upstream will say what is wrong with it).
 */
export function withEncryptedReasoningInclude(include: unknown): string[] | undefined {
  if (include == null) return [ENCRYPTED_REASONING_INCLUDE];
  if (!Array.isArray(include)) return undefined;
  if (include.includes(ENCRYPTED_REASONING_INCLUDE)) return undefined;
  return [...(include as string[]), ENCRYPTED_REASONING_INCLUDE];
}

/** What the pairing policy decided about a delta. */
export type PairingDecision =
  | {
      ok: true;
      /** The delta to send (repaired under `repair`; the same array when nothing changed). */
      items: ResponseItem[];
      /** Synthetic outputs added by `repair`. */
      added: ResponseItem[];
      /** Items of the delta removed by `repair`. */
      dropped: ResponseItem[];
    }
  | { ok: false; error: PairingError };

/**
 * Applies the pairing policy to `history ++ delta` (the sequence the upstream will look at):
 * `reject` answers OpenAI's own 400 for the first problem, `repair` answers each unanswered call
 * with a synthetic "aborted" output and drops orphan or duplicate items of the delta, `off`
 * passes everything.
 */
export function applyPairingPolicy(
  delta: readonly ResponseItem[],
  history: readonly ResponseItem[],
  policy: ValidatePolicy,
): PairingDecision {
  const unchanged: PairingDecision = {
    ok: true,
    items: delta as ResponseItem[],
    added: [],
    dropped: [],
  };
  if (policy === 'off') return unchanged;
  const report = analyzePairing(delta, { history });
  if (report.ok) return unchanged;
  if (policy === 'reject') {
    const error = pairingError(report);
    return error === null ? unchanged : { ok: false, error };
  }
  const repaired = repairPairing(delta, { history });
  return { ok: true, items: repaired.items, added: repaired.added, dropped: repaired.dropped };
}

/**
 * Whether `delta` continues `history` (DESIGN.md §4 sessions, issue item 8): every tool output of
 * the delta answers a call that is still pending at the end of `history`, and the delta holds at
 * least one such output. Only then may the session's last response be injected as the anchor.
 */
export function answersPendingCalls(
  delta: readonly ResponseItem[],
  history: readonly ResponseItem[],
): boolean {
  const offset = history.length;
  const report = analyzePairing(delta, { history, allowTrailingCalls: true });
  const inDelta = (ref: { index: number }): boolean => ref.index >= offset;
  if (report.orphanOutputs.some(inDelta) || report.duplicateOutputs.some(inDelta)) return false;
  // At least one output of the delta must pair with a call of the history.
  const alone = analyzePairing(delta, { allowTrailingCalls: true });
  return alone.orphanOutputs.length > 0;
}

/** Structural JSON equality (object member order does not matter; `undefined` members are absent). */
export function sameJson(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== typeof b || a === null || b === null || typeof a !== 'object') return false;
  if (Array.isArray(a)) {
    if (!Array.isArray(b) || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i += 1) if (!sameJson(a[i], b[i])) return false;
    return true;
  }
  if (Array.isArray(b)) return false;
  const left = a as Record<string, unknown>;
  const right = b as Record<string, unknown>;
  const leftKeys = Object.keys(left).filter((key) => left[key] !== undefined);
  const rightKeys = Object.keys(right).filter((key) => right[key] !== undefined);
  if (leftKeys.length !== rightKeys.length) return false;
  for (const key of leftKeys) {
    if (!Object.prototype.hasOwnProperty.call(right, key)) return false;
    if (!sameJson(left[key], right[key])) return false;
  }
  return true;
}

/**
 * Whether `input` starts with every item of `history`, in order (structural equality): a full
 * transcript that extends the stored conversation, as opposed to one that replaces it (after the
 * client compacted or edited its history).
 */
export function extendsHistory(
  history: readonly ResponseItem[],
  input: readonly ResponseItem[],
): boolean {
  if (history.length === 0 || history.length > input.length) return false;
  for (let i = 0; i < history.length; i += 1) if (!sameJson(history[i], input[i])) return false;
  return true;
}
