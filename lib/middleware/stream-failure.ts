/**
 * The events that end a stream which cannot end normally: an OpenAI `error` event (flat and nested
 * fields, so both openai 6.x and 7.x raise an APIError) followed by a terminal `response.failed`
 * whose `output` holds the items that were completed, so the client keeps a consistent history.
 * Shared by every stage that may have to close a stream, so they close it the same way.
 */
import { toStreamErrorEvent } from '../protocol/errors';
import { newResponseId } from '../protocol/ids';
import type { OpenAIErrorBody, ResponseObject, StreamEvent } from '../protocol/types';
import type { StageContext } from './exchange';

/**
 * The events to emit to end the stream with `error`. Emits `response.created` first when the
 * client has not seen one (the SDK rejects a stream that starts otherwise), and nothing at all when
 * a terminal event was already sent. Sequence numbers are left to the pipeline.
 */
export function streamFailureEvents(context: StageContext, error: OpenAIErrorBody): StreamEvent[] {
  if (context.terminalSent) return [];
  const seen = context.accumulator;
  const events: StreamEvent[] = [];
  const snapshot: ResponseObject = { ...seen.snapshot() };
  if (!snapshot.id) snapshot.id = newResponseId();
  snapshot.object = 'response';
  if (!seen.started) {
    events.push({
      type: 'response.created',
      response: { ...snapshot, status: 'in_progress', output: [] },
    });
  }
  events.push(toStreamErrorEvent(error, 0));
  const failed: ResponseObject = {
    ...snapshot,
    status: 'failed',
    error: { code: error.code, message: error.message },
    output: seen.completedItems(),
  };
  events.push({ type: 'response.failed', response: failed });
  return events;
}
