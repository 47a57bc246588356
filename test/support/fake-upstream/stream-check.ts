/**
 * A checker of the well-formedness of a Responses event stream (responses-contract §1.3, §5.1),
 * for tests: returns the list of violations (empty when the stream is well formed).
 */
import type { JsonObject } from '../../../lib/protocol/types';
import { isJsonObject } from '../../../lib/protocol/types';

const TERMINALS = new Set(['response.completed', 'response.failed', 'response.incomplete']);
const LIFECYCLE = new Set(['response.created', 'response.in_progress', ...TERMINALS]);

export interface StreamCheckOptions {
  /** Require exactly one terminal event at the end (default true). */
  terminal?: boolean;
  /** Require `response.completed.output` to list every item done (default true). */
  fullOutput?: boolean;
}

export function checkStream(events: JsonObject[], options: StreamCheckOptions = {}): string[] {
  const problems: string[] = [];
  const requireTerminal = options.terminal ?? true;
  const requireFullOutput = options.fullOutput ?? true;
  const items = new Map<number, { id: unknown; type: unknown; done: JsonObject | undefined }>();
  let responseId: unknown;
  let terminals = 0;

  events.forEach((event, index) => {
    const type = event.type;
    if (event.sequence_number !== index) {
      problems.push(
        `event ${index} (${String(type)}) has sequence_number ${String(event.sequence_number)}`,
      );
    }
    if (index === 0 && type !== 'response.created') problems.push(`first event is ${String(type)}`);
    if (terminals > 0) problems.push(`event ${index} (${String(type)}) after the terminal event`);
    if (typeof type === 'string' && LIFECYCLE.has(type)) {
      const response = event.response;
      if (!isJsonObject(response)) {
        problems.push(`${type} has no response`);
        return;
      }
      if (responseId === undefined) responseId = response.id;
      else if (response.id !== responseId) problems.push(`${type} changes the response id`);
      if (TERMINALS.has(type)) {
        terminals += 1;
        const output = Array.isArray(response.output)
          ? (response.output as JsonObject[])
          : undefined;
        if (output === undefined) problems.push(`${type} has no output array`);
        if (type === 'response.completed' && requireFullOutput && output) {
          const done = [...items.values()].map((item) => item.done).filter(Boolean);
          if (JSON.stringify(output) !== JSON.stringify(done)) {
            problems.push('response.completed output differs from the items done');
          }
        }
      }
      return;
    }
    if (type === 'response.output_item.added') {
      const outputIndex = event.output_index as number;
      if (outputIndex !== items.size)
        problems.push(`item added at output_index ${outputIndex}, expected ${items.size}`);
      const item = event.item as JsonObject;
      items.set(outputIndex, { id: item.id, type: item.type, done: undefined });
      if (item.type === 'message' && !Array.isArray(item.content))
        problems.push('message added without content []');
      if (item.type === 'function_call' && item.arguments !== '')
        problems.push('function_call added without arguments ""');
      return;
    }
    if (type === 'response.output_item.done') {
      const outputIndex = event.output_index as number;
      const known = items.get(outputIndex);
      const item = event.item as JsonObject;
      if (!known) problems.push(`item done at unknown output_index ${outputIndex}`);
      else {
        if (known.done) problems.push(`item ${outputIndex} done twice`);
        if (known.id !== item.id || known.type !== item.type)
          problems.push(`item ${outputIndex} changes id or type when done`);
        known.done = item;
      }
      return;
    }
    if (typeof event.item_id === 'string' || typeof event.output_index === 'number') {
      const known = items.get(event.output_index as number);
      if (!known)
        problems.push(`${String(type)} for unknown output_index ${String(event.output_index)}`);
      else if (known.done) problems.push(`${String(type)} after its item was done`);
      else if (known.id !== event.item_id)
        problems.push(
          `${String(type)} item_id ${String(event.item_id)} is not ${String(known.id)}`,
        );
    }
  });
  if (requireTerminal && terminals !== 1) problems.push(`${terminals} terminal events`);
  return problems;
}
