/**
 * The pure rules of the SSE completion middleware: what a terminal event's `output` must be, and
 * what the `response.created` the relay puts in front of a stream that started without one looks
 * like. No I/O, no state: the stage (sse-completion.ts) applies them.
 */
import { newResponseId } from '../protocol/ids';
import {
  isJsonObject,
  type JsonObject,
  type ResponseItem,
  type ResponseObject,
  type StreamEvent,
  type TerminalEventType,
} from '../protocol/types';

/** What the client has seen of the items (the pipeline's accumulator satisfies it). */
export interface SeenItems {
  /** Items of `output_item.done` events, in `output_index` order. */
  completedItems(): ResponseItem[];
  /** Every item seen, unfinished ones rebuilt from `added` plus their deltas. */
  items(): ResponseItem[];
}

/**
 * The `output` a terminal event must carry, or `undefined` to keep the upstream's:
 * - a non-empty list is the upstream's word and is kept;
 * - a missing, non-list or empty `output` while items were streamed gets the streamed items:
 *   for `response.completed` and `response.incomplete` every item seen (completed ones as their
 *   `output_item.done` gave them, unfinished ones from `added` plus the deltas), for
 *   `response.failed` the completed items only (what the client can keep in its history);
 * - a missing or non-list `output` with nothing streamed becomes `[]` (openai 6.x crashes on a
 *   missing one: `rsp.output is not iterable`).
 */
export function terminalOutput(
  type: TerminalEventType,
  output: unknown,
  seen: SeenItems,
): ResponseItem[] | undefined {
  if (Array.isArray(output) && output.length > 0) return undefined;
  const streamed = type === 'response.failed' ? seen.completedItems() : seen.items();
  if (streamed.length > 0) return streamed;
  return Array.isArray(output) ? undefined : [];
}

/** Fields of a finished Response that a `response.created` must not carry. */
const FINISHED_FIELDS = ['error', 'incomplete_details', 'completed_at', 'usage'] as const;

/**
 * The `response.created` to send before `first`, the first event of a stream that did not start
 * with one (the SDK rejects such a stream): the Response of `first` when it is a lifecycle event
 * (same id, model, …) turned `in_progress` with no output, else a minimal Response with `id` (or
 * a fresh id).
 */
export function createdEventFor(first: StreamEvent, id?: string): StreamEvent {
  const source = isJsonObject(first.response) ? first.response : undefined;
  const response: JsonObject = source ? { ...source } : {};
  for (const field of FINISHED_FIELDS) {
    if (field in response) response[field] = null;
  }
  response.id =
    typeof response.id === 'string' && response.id.length > 0
      ? response.id
      : (id ?? newResponseId());
  response.object = 'response';
  response.status = 'in_progress';
  response.output = [];
  return { type: 'response.created', response: response as ResponseObject };
}

/**
 * The Response of a terminal event that came without one (openai 6.x cannot read it): the last
 * Response the client saw (`base`), with the terminal's status.
 */
export function terminalResponseFor(type: TerminalEventType, base: ResponseObject): ResponseObject {
  return { ...base, object: 'response', status: type.slice('response.'.length) };
}
