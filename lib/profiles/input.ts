/**
 * `input` rewrites for a stateless (`store: false`) upstream such as the Codex backend. Every
 * item the client sent is kept — unknown item types included — except the ones the upstream can
 * only refuse.
 *
 * - A string `input` becomes one user message: the Codex backend answers
 *   `{"detail":"Input must be a list"}` to the string form the public API allows
 *   (cubezhao/ai-tools-mng#79, a Droid compaction request).
 * - A `reasoning` item with an `id` but no `encrypted_content` refers to an item the upstream
 *   never persisted: with `store: false` it is answered 404 "Item with id 'rs_…' not found. Items
 *   are not persisted when `store` is set to false" (peers.md complaints 8, edge case 7). Such an
 *   item carries nothing the model can use, so it is removed.
 */
import { isUnpersistedReasoning } from '../protocol/items';
import type { ResponseCreateBody, ResponseItem } from '../protocol/types';

/** `input` as a list: a string becomes one user `message` with an `input_text` part. */
export function inputAsList(body: ResponseCreateBody): ResponseCreateBody {
  if (typeof body.input !== 'string') return body;
  const message: ResponseItem = {
    type: 'message',
    role: 'user',
    content: [{ type: 'input_text', text: body.input }],
  };
  return { ...body, input: [message] };
}

export { isUnpersistedReasoning };

/** The result of {@link dropUnpersistedReasoning}. */
export interface InputFilterResult {
  body: ResponseCreateBody;
  /** Ids of the items removed. */
  removed: string[];
}

/** Removes reasoning items a `store: false` upstream could only refuse (see the module notes). */
export function dropUnpersistedReasoning(body: ResponseCreateBody): InputFilterResult {
  if (!Array.isArray(body.input) || !body.input.some(isUnpersistedReasoning)) {
    return { body, removed: [] };
  }
  const removed: string[] = [];
  const input = body.input.filter((item) => {
    if (!isUnpersistedReasoning(item)) return true;
    removed.push(String(item.id));
    return false;
  });
  return { body: { ...body, input }, removed };
}
