/**
 * The API's tool-call pairing rule, implemented on its own (not the relay's code, so that relay
 * tests against the fake are not tautological).
 *
 * Over the whole conversation (expanded history, then the request's input), in order:
 * - an output answers the earliest still-unanswered call of its family with the same `call_id`;
 *   an output with none (no call, a call only later, a call already answered) is rejected:
 *   `No tool call found for function call output with call_id X.`
 * - when every output found its call, the first call left unanswered is rejected:
 *   `No tool output found for function call X.`
 * A call needs an answer only when it has a `call_id` (and, for `tool_search_call`, was executed by
 * the client).
 */
import type { JsonObject } from '../../../lib/protocol/types';
import { isJsonObject } from '../../../lib/protocol/types';
import { noToolCallFound, noToolOutputFound, type Rejection } from './errors';
import { CALL_KINDS, OUTPUT_KINDS, itemType } from './items';

interface OpenCall {
  family: string;
  label: string;
  callId: string;
  /** The call item's own id (a local shell output may name its call by it). */
  itemId: string | undefined;
  answered: boolean;
}

function callIdOf(item: JsonObject): string | undefined {
  return typeof item.call_id === 'string' && item.call_id !== '' ? item.call_id : undefined;
}

function needsAnswer(type: string, item: JsonObject): boolean {
  if (type === 'tool_search_call' && item.execution === 'server') return false;
  return callIdOf(item) !== undefined;
}

/** Returns the first pairing violation of `items`, or `undefined` when every pair is complete. */
export function checkPairing(items: readonly unknown[]): Rejection | undefined {
  const calls: OpenCall[] = [];
  for (const raw of items) {
    if (!isJsonObject(raw)) continue;
    const type = itemType(raw);
    if (type === undefined) continue;
    const callKind = CALL_KINDS[type];
    if (callKind !== undefined) {
      if (needsAnswer(type, raw)) {
        calls.push({
          ...callKind,
          callId: callIdOf(raw) as string,
          itemId: typeof raw.id === 'string' ? raw.id : undefined,
          answered: false,
        });
      }
      continue;
    }
    const outputKind = OUTPUT_KINDS[type];
    if (outputKind === undefined) continue;
    // A local shell output names its call by `id` in the SDK's types; accept either.
    const callId =
      callIdOf(raw) ??
      (type === 'local_shell_call_output' && typeof raw.id === 'string' ? raw.id : undefined);
    const open = calls.find(
      (call) =>
        !call.answered &&
        call.family === outputKind.family &&
        (call.callId === callId || (call.family === 'local_shell' && call.itemId === callId)),
    );
    if (open === undefined) return noToolCallFound(outputKind.label, callId ?? 'None');
    open.answered = true;
  }
  const unanswered = calls.find((call) => !call.answered);
  return unanswered === undefined
    ? undefined
    : noToolOutputFound(unanswered.label, unanswered.callId);
}
