/**
 * Tool-call pairing analysis (DESIGN §5): which calls lack an output, which outputs lack a call,
 * OpenAI's exact wording for each, and the `repair` policy. Pure; inputs are never mutated.
 *
 * The sequence analysed is `history ++ input`, `history` being what `previous_response_id`
 * expands to (the items the API itself would look at). The rules:
 * - an output is an **orphan** when no EARLIER call with its key exists in the sequence, or when
 *   that call is of a kind the output cannot answer (an output before its call is an orphan too:
 *   the API answers "No tool call found…" for both);
 * - the first call with a key is the call; a later call with the same key (any call kind of the
 *   same id space) is a **duplicate call**; an output for a call that already has one is a
 *   **duplicate output**. The API rejects both with the "No tool call found…" wording;
 * - a call with no LATER output is **unanswered**, except, with `allowTrailingCalls`, the calls
 *   of the trailing model-produced run (see {@link AnalyzeOptions.allowTrailingCalls}).
 *
 * Keys, kinds and which outputs answer which calls are documented in `items.ts`.
 */
import {
  CALL_KINDS,
  abortedOutputFor,
  classifyItem,
  itemType,
  normalizeInput,
  outputAnswers,
  pairingNamespace,
  type CallKind,
} from './items';
import type { ResponseInput, ResponseItem } from './types';
import { isJsonObject } from './types';

export type { CallKind } from './items';

/** One call or output found by the analysis. */
export interface CallRef {
  /** The call's kind; for an output, the kind of the family the output belongs to. */
  kind: CallKind;
  /** The pairing key (`call_id`, or the key documented in `items.ts` for the kind). */
  callId: string;
  /** The position in the analysed sequence (`history ++ input`). */
  index: number;
  item: ResponseItem;
}

export interface PairingReport {
  /** No violation of any kind. */
  ok: boolean;
  unansweredCalls: CallRef[];
  orphanOutputs: CallRef[];
  duplicateCalls: CallRef[];
  duplicateOutputs: CallRef[];
}

export interface AnalyzeOptions {
  /** The items `previous_response_id` stands for; they come before `input`. */
  history?: readonly ResponseItem[];
  /**
   * Tolerate the unanswered calls of the trailing model-produced run: the calls that come after
   * the last item a client writes (any tool output, a message whose role is not `assistant`, an
   * `item_reference`, any other `*_output` item). That run is what a response that ended with
   * tool calls adds to a conversation, so this is the option to analyse a stored history that
   * has not received its next input yet. Default `false`: every call needs an output, which is
   * what the API enforces on a request (an anchored response ending with calls that the new input
   * does not answer is rejected, and so is a full-history replay ending with bare calls).
   */
  allowTrailingCalls?: boolean;
}

/** Items a client (not the model) writes; they end the trailing model-produced run. */
function isClientAuthored(item: unknown, role: 'call' | 'output' | 'other'): boolean {
  if (role === 'output') return true;
  if (role === 'call' || !isJsonObject(item)) return false;
  const type = itemType(item);
  if (type === 'message') return item.role !== 'assistant';
  if (type === 'item_reference') return true;
  return type !== undefined && (type.endsWith('_output') || type === 'mcp_approval_response');
}

/** Analyse the pairing of `history ++ input` (see the rules at the top of this file). */
export function analyzePairing(
  input: readonly ResponseItem[],
  options: AnalyzeOptions = {},
): PairingReport {
  const history = options.history ?? [];
  const total = history.length + input.length;
  const calls = new Map<string, { ref: CallRef; answered: boolean }>();
  const orphanOutputs: CallRef[] = [];
  const duplicateCalls: CallRef[] = [];
  const duplicateOutputs: CallRef[] = [];
  let lastClientIndex = -1;

  for (let index = 0; index < total; index++) {
    const item = (index < history.length ? history[index] : input[index - history.length])!;
    const c = classifyItem(item);
    if (isClientAuthored(item, c.role)) lastClientIndex = index;
    if (c.role === 'other') continue;
    const ref: CallRef = { kind: c.kind, callId: c.key, index, item };
    const slot = `${pairingNamespace(c.kind)}:${c.key}`;
    const call = calls.get(slot);
    if (c.role === 'call') {
      if (call === undefined) calls.set(slot, { ref, answered: false });
      else duplicateCalls.push(ref);
    } else if (call === undefined || !outputAnswers(call.ref.kind, c.kind)) {
      orphanOutputs.push(ref);
    } else if (call.answered) {
      duplicateOutputs.push(ref);
    } else {
      call.answered = true;
    }
  }

  const unansweredCalls: CallRef[] = [];
  for (const { ref, answered } of calls.values()) {
    if (answered) continue;
    if (options.allowTrailingCalls === true && ref.index > lastClientIndex) continue;
    unansweredCalls.push(ref);
  }
  return {
    ok:
      unansweredCalls.length === 0 &&
      orphanOutputs.length === 0 &&
      duplicateCalls.length === 0 &&
      duplicateOutputs.length === 0,
    unansweredCalls,
    orphanOutputs,
    duplicateCalls,
    duplicateOutputs,
  };
}

/**
 * Whether `input` may be sent without its anchor: every output has an EARLIER call with the same
 * key IN THE SAME INPUT (exactly: the input alone has no orphan output). A tool-output-only delta
 * is therefore never self-contained; an input without outputs always is.
 */
export function isSelfContained(input: ResponseInput | readonly ResponseItem[]): boolean {
  const items = typeof input === 'string' ? normalizeInput(input) : input;
  return analyzePairing(items).orphanOutputs.length === 0;
}

/**
 * OpenAI's message for a pairing problem:
 * - `orphan_output`: `No tool call found for <kind> output with call_id <id>.`
 *   (e.g. `No tool call found for function call output with call_id call_x.`);
 * - `unanswered_call`: `No tool output found for <kind> call <id>.`
 *   (e.g. `No tool output found for local shell call call_x.`).
 */
export function pairingErrorMessage(
  ref: CallRef,
  problem: 'orphan_output' | 'unanswered_call',
): string {
  const words = CALL_KINDS[ref.kind];
  return problem === 'orphan_output'
    ? `No tool call found for ${words.outputWords} with call_id ${ref.callId}.`
    : `No tool output found for ${words.callWords} ${ref.callId}.`;
}

/** The 400 the API answers for a pairing problem. */
export interface PairingError {
  status: 400;
  error: { message: string; type: 'invalid_request_error'; param: 'input'; code: null };
}

/**
 * The error for the first violation of `report` (the one at the lowest index of the analysed
 * sequence), or `null` when the report is clean. Orphan outputs, duplicate outputs and duplicate
 * calls use the "No tool call found…" wording (what the API answers for a duplicate too),
 * unanswered calls the "No tool output found…" one.
 */
export function pairingError(report: PairingReport): PairingError | null {
  let first: { ref: CallRef; problem: 'orphan_output' | 'unanswered_call' } | undefined;
  const consider = (refs: readonly CallRef[], problem: 'orphan_output' | 'unanswered_call') => {
    for (const ref of refs)
      if (first === undefined || ref.index < first.ref.index) first = { ref, problem };
  };
  consider(report.orphanOutputs, 'orphan_output');
  consider(report.duplicateOutputs, 'orphan_output');
  consider(report.duplicateCalls, 'orphan_output');
  consider(report.unansweredCalls, 'unanswered_call');
  if (first === undefined) return null;
  return {
    status: 400,
    error: {
      message: pairingErrorMessage(first.ref, first.problem),
      type: 'invalid_request_error',
      param: 'input',
      code: null,
    },
  };
}

export interface RepairResult {
  /** The repaired input (history is never part of it). */
  items: ResponseItem[];
  /** The synthetic outputs inserted, in the order they appear in `items`. */
  added: ResponseItem[];
  /** The items of the input left out, in input order. */
  dropped: ResponseItem[];
}

/**
 * The `repair` policy of DESIGN §5, applied to `items` (analysed after `history`):
 * - a synthetic output of the matching type (see `abortedOutputFor` in items.ts) goes right
 *   after each unanswered call of `items`; for an unanswered call of `history`, at the start of
 *   `items`, in call order;
 * - orphan outputs, duplicate outputs and duplicate calls of `items` are dropped.
 *
 * Every other item is kept, in order, as the same object. With a history free of orphans and
 * duplicates, the result always analyses as ok; problems inside `history` itself cannot be
 * repaired here and remain.
 */
export function repairPairing(
  items: readonly ResponseItem[],
  options: { history?: readonly ResponseItem[] } = {},
): RepairResult {
  const history = options.history ?? [];
  const offset = history.length;
  const report = analyzePairing(items, { history });
  const drop = new Set<number>();
  for (const refs of [report.orphanOutputs, report.duplicateOutputs, report.duplicateCalls]) {
    for (const ref of refs) if (ref.index >= offset) drop.add(ref.index - offset);
  }
  const leading: ResponseItem[] = [];
  const after = new Map<number, ResponseItem>();
  for (const ref of report.unansweredCalls) {
    const synthetic = abortedOutputFor(ref.item);
    if (synthetic === undefined) continue;
    if (ref.index < offset) leading.push(synthetic);
    else after.set(ref.index - offset, synthetic);
  }

  const out: ResponseItem[] = [...leading];
  const added: ResponseItem[] = [...leading];
  const dropped: ResponseItem[] = [];
  items.forEach((item, i) => {
    if (drop.has(i)) {
      dropped.push(item);
      return;
    }
    out.push(item);
    const synthetic = after.get(i);
    if (synthetic !== undefined) {
      out.push(synthetic);
      added.push(synthetic);
    }
  });
  return { items: out, added, dropped };
}
