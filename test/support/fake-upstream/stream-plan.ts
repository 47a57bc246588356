/**
 * Turns generated items and a behaviour's ending into the exact list of events the fake sends,
 * numbered from 0, plus the state the response ends in (what the stateful fake stores and what a
 * `stream: false` request gets as JSON).
 */
import type { JsonObject, ResponseItem, ResponseObject } from '../../../lib/protocol/types';
import type { Ending, StreamModifiers } from './behaviours';
import {
  errorEvent,
  itemEvents,
  responseObject,
  usageFor,
  type DraftEvent,
  type ResponseContext,
} from './events';
import type { GeneratedItem } from './generation';

export type EndAction = 'end' | 'reset' | 'stall' | 'hold';

export interface StreamPlan {
  /** The events to send, `sequence_number` set. */
  events: JsonObject[];
  /** Raw bytes to write before the event at that index (index `events.length`: after the last). */
  injections: Map<number, string[]>;
  /** What happens once every event was written. */
  endAction: EndAction;
  /** The response as it stands after the last event sent. */
  final: ResponseObject;
  /** The items whose `output_item.done` is among the events sent. */
  output: ResponseItem[];
  /** For the request log: `completed`, `failed`, `incomplete`, `error`, `cut:eof`, … */
  outcome: string;
}

export interface PlanOptions {
  ctx: ResponseContext;
  items: GeneratedItem[];
  modifiers: StreamModifiers;
  ending: Ending;
  /** The fake's `sparseCompletion` option. */
  sparseDefault: boolean;
  /** Delta events carry `obfuscation` (unless `stream_options.include_obfuscation` is false). */
  obfuscate: boolean;
}

function doneItems(drafts: DraftEvent[]): ResponseItem[] {
  return drafts.flatMap((draft) => (draft.done ? [draft.done] : []));
}

export function planStream(options: PlanOptions): StreamPlan {
  const { ctx, ending, modifiers } = options;
  const inProgress = responseObject(ctx, { status: 'in_progress', output: [] });
  const body: DraftEvent[] = [];
  options.items.forEach((item, outputIndex) => {
    body.push(
      ...itemEvents(item, {
        outputIndex,
        idStyle: modifiers.idStyle,
        obfuscate: options.obfuscate,
      }),
    );
  });
  const drafts: DraftEvent[] = [
    { event: { type: 'response.created', response: inProgress } },
    { event: { type: 'response.in_progress', response: inProgress } },
    ...body,
  ];
  const now = () => Math.floor(Date.now() / 1000);
  const everything = doneItems(drafts);

  let sent: DraftEvent[];
  let endAction: EndAction = modifiers.holdOpen ? 'hold' : 'end';
  let final: ResponseObject;
  let outcome: string;

  // Endings that stop early never let the terminal event out.
  const prefix = (n: number) => drafts.slice(0, Math.max(0, Math.min(n, drafts.length)));

  switch (ending.kind) {
    case 'complete':
    case 'incomplete': {
      const status = ending.kind === 'complete' ? 'completed' : 'incomplete';
      final = responseObject(ctx, {
        status,
        output: everything,
        usage: usageFor(ctx, everything),
        completedAt: status === 'completed' ? now() : null,
        incompleteReason: ending.kind === 'incomplete' ? ending.reason : undefined,
      });
      const sparse = modifiers.sparse || options.sparseDefault;
      const wire = sparse && status === 'completed' ? { ...final, output: [] } : final;
      sent = [...drafts, { event: { type: `response.${status}`, response: wire } }];
      outcome = status;
      break;
    }
    case 'cut':
    case 'stall': {
      sent = prefix(ending.afterEvents);
      final = responseObject(ctx, { status: 'in_progress', output: doneItems(sent) });
      endAction = ending.kind === 'cut' ? (ending.mode === 'reset' ? 'reset' : 'end') : 'stall';
      outcome = ending.kind === 'cut' ? `cut:${ending.mode}` : 'stalled';
      break;
    }
    case 'error': {
      sent = prefix(ending.afterEvents);
      const error = { code: ending.error.code ?? 'server_error', message: ending.error.message };
      final = responseObject(ctx, { status: 'failed', output: doneItems(sent), error });
      sent.push({ event: errorEvent(ending.error, ending.shape) });
      if (ending.thenFailed) sent.push({ event: { type: 'response.failed', response: final } });
      outcome = ending.thenFailed ? 'failed' : 'error';
      break;
    }
    case 'failed': {
      sent = prefix(ending.afterEvents);
      const error = { code: ending.code, message: ending.message };
      final = responseObject(ctx, { status: 'failed', output: doneItems(sent), error });
      sent.push({ event: { type: 'response.failed', response: final } });
      outcome = 'failed';
      break;
    }
  }

  const events = sent.map((draft, index) => ({ ...draft.event, sequence_number: index }));
  const injections = new Map<number, string[]>();
  for (const { at, raw } of modifiers.injections) {
    const index = Math.max(0, Math.min(at, events.length));
    injections.set(index, [...(injections.get(index) ?? []), raw]);
  }
  return { events, injections, endAction, final, output: doneItems(sent), outcome };
}
