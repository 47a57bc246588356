/**
 * Event builders: the Response object and the stream events of each output item, in the order and
 * shapes the API sends them (responses-contract §1.3, §1.4). Sequence numbers are assigned later,
 * once the behaviour decided which events are sent.
 */
import type {
  JsonObject,
  ResponseCreateBody,
  ResponseItem,
  ResponseObject,
  ResponseUsage,
} from '../../../lib/protocol/types';
import { isJsonObject } from '../../../lib/protocol/types';
import type { GeneratedItem } from './generation';
import { obfuscation } from './ids';

/** An event before its `sequence_number`; `done` is the item an `output_item.done` completes. */
export interface DraftEvent {
  event: JsonObject;
  done?: ResponseItem;
}

export type IdStyle = 'normal' | 'call_id' | 'missing' | 'inconsistent';

export interface ResponseContext {
  id: string;
  createdAt: number;
  body: ResponseCreateBody;
  /** Whether the response is stored (`store` as echoed in the Response object). */
  stored: boolean;
  /** Everything the model "read", for the usage figures. */
  conversation: ResponseItem[];
}

export interface ResponseState {
  status: ResponseObject['status'];
  output: ResponseItem[];
  usage?: ResponseUsage | null;
  error?: { code: string; message: string } | null;
  incompleteReason?: string;
  completedAt?: number | null;
}

const tokens = (text: string) => Math.max(1, Math.ceil(text.length / 4));

export function usageFor(ctx: ResponseContext, output: ResponseItem[]): ResponseUsage {
  const inputTokens =
    tokens(JSON.stringify(ctx.conversation)) + tokens(ctx.body.instructions ?? '');
  const reasoningTokens = output.filter((item) => item.type === 'reasoning').length * 16;
  const outputTokens = tokens(JSON.stringify(output)) + reasoningTokens;
  return {
    input_tokens: inputTokens,
    input_tokens_details: { cached_tokens: 0 },
    output_tokens: outputTokens,
    output_tokens_details: { reasoning_tokens: reasoningTokens },
    total_tokens: inputTokens + outputTokens,
  };
}

/** The Response object, echoing the request's parameters the way the API does. */
export function responseObject(ctx: ResponseContext, state: ResponseState): ResponseObject {
  const body = ctx.body;
  const reasoning = isJsonObject(body.reasoning) ? body.reasoning : {};
  return {
    id: ctx.id,
    object: 'response',
    created_at: ctx.createdAt,
    status: state.status,
    background: false,
    completed_at: state.completedAt ?? null,
    error: state.error ?? null,
    incomplete_details: state.incompleteReason ? { reason: state.incompleteReason } : null,
    instructions: body.instructions ?? null,
    max_output_tokens: body.max_output_tokens ?? null,
    max_tool_calls: body.max_tool_calls ?? null,
    model: body.model,
    output: state.output,
    parallel_tool_calls: body.parallel_tool_calls ?? true,
    previous_response_id: body.previous_response_id ?? null,
    prompt_cache_key: body.prompt_cache_key ?? null,
    reasoning: { effort: reasoning.effort ?? null, summary: reasoning.summary ?? null },
    safety_identifier: body.safety_identifier ?? null,
    service_tier: body.service_tier ?? 'default',
    store: ctx.stored,
    temperature: body.temperature ?? 1,
    text: body.text ?? { format: { type: 'text' }, verbosity: 'medium' },
    tool_choice: body.tool_choice ?? 'auto',
    tools: body.tools ?? [],
    top_logprobs: body.top_logprobs ?? 0,
    top_p: body.top_p ?? 1,
    truncation: body.truncation ?? 'disabled',
    usage: state.usage ?? null,
    user: body.user ?? null,
    metadata: body.metadata ?? {},
  };
}

/** Splits text into at most `parts` pieces by code point (never inside a surrogate pair). */
export function splitText(text: string, parts: number): string[] {
  const points = Array.from(text);
  const count = Math.max(1, Math.min(Math.floor(parts), points.length));
  if (points.length === 0) return [];
  const size = Math.ceil(points.length / count);
  const pieces: string[] = [];
  for (let i = 0; i < points.length; i += size) pieces.push(points.slice(i, i + size).join(''));
  return pieces;
}

interface ItemIds {
  /** `id` of the item in `output_item.added` (undefined: omitted). */
  added: string | undefined;
  /** `id` in `output_item.done` and `response.completed`. */
  done: string | undefined;
  /** `item_id` of the item's delta and `.done` events. */
  events: string;
}

function idsFor(item: GeneratedItem, style: IdStyle): ItemIds {
  const isCall = item.type === 'function_call' || item.type === 'custom_tool_call';
  if (!isCall || style === 'normal') return { added: item.id, done: item.id, events: item.id };
  const callId = item.callId;
  switch (style) {
    case 'call_id':
      return { added: callId, done: callId, events: callId };
    case 'missing':
      return { added: undefined, done: undefined, events: callId };
    case 'inconsistent':
      return { added: item.id, done: callId, events: item.id };
  }
}

function withId(id: string | undefined, rest: JsonObject): JsonObject {
  return id === undefined ? rest : { id, ...rest };
}

export interface ItemEventOptions {
  outputIndex: number;
  idStyle: IdStyle;
  obfuscate: boolean;
}

/** The events of one output item, from `output_item.added` to `output_item.done`. */
export function itemEvents(item: GeneratedItem, options: ItemEventOptions): DraftEvent[] {
  const { outputIndex: output_index } = options;
  const ids = idsFor(item, options.idStyle);
  const item_id = ids.events;
  const delta = (type: string, text: string, extra: JsonObject = {}): DraftEvent => ({
    event: {
      type,
      item_id,
      output_index,
      ...extra,
      delta: text,
      ...(options.obfuscate ? { obfuscation: obfuscation() } : {}),
    },
  });
  const added = (shape: JsonObject): DraftEvent => ({
    event: { type: 'response.output_item.added', output_index, item: withId(ids.added, shape) },
  });
  const done = (shape: JsonObject): DraftEvent => {
    const finished = withId(ids.done, shape) as ResponseItem;
    return {
      event: { type: 'response.output_item.done', output_index, item: finished },
      done: finished,
    };
  };
  const events: DraftEvent[] = [];

  switch (item.type) {
    case 'message': {
      const part = (text: string) => ({ type: 'output_text', annotations: [], logprobs: [], text });
      events.push(
        added({ type: 'message', status: 'in_progress', content: [], role: 'assistant' }),
        {
          event: {
            type: 'response.content_part.added',
            item_id,
            output_index,
            content_index: 0,
            part: part(''),
          },
        },
      );
      for (const piece of splitText(item.text, item.chunks)) {
        events.push(delta('response.output_text.delta', piece, { content_index: 0, logprobs: [] }));
      }
      events.push(
        {
          event: {
            type: 'response.output_text.done',
            item_id,
            output_index,
            content_index: 0,
            text: item.text,
            logprobs: [],
          },
        },
        {
          event: {
            type: 'response.content_part.done',
            item_id,
            output_index,
            content_index: 0,
            part: part(item.text),
          },
        },
        done({
          type: 'message',
          status: 'completed',
          content: [part(item.text)],
          role: 'assistant',
        }),
      );
      break;
    }
    case 'reasoning': {
      const part = (text: string) => ({ type: 'summary_text', text });
      events.push(added({ type: 'reasoning', summary: [] }), {
        event: {
          type: 'response.reasoning_summary_part.added',
          item_id,
          output_index,
          summary_index: 0,
          part: part(''),
        },
      });
      for (const piece of splitText(item.summary, 2)) {
        events.push(delta('response.reasoning_summary_text.delta', piece, { summary_index: 0 }));
      }
      events.push(
        {
          event: {
            type: 'response.reasoning_summary_text.done',
            item_id,
            output_index,
            summary_index: 0,
            text: item.summary,
          },
        },
        {
          event: {
            type: 'response.reasoning_summary_part.done',
            item_id,
            output_index,
            summary_index: 0,
            part: part(item.summary),
          },
        },
        done({
          type: 'reasoning',
          summary: [part(item.summary)],
          ...(item.encryptedContent === undefined
            ? {}
            : { encrypted_content: item.encryptedContent }),
        }),
      );
      break;
    }
    case 'function_call': {
      const shape = (status: string, args: string) => ({
        type: 'function_call',
        status,
        arguments: args,
        call_id: item.callId,
        name: item.name,
      });
      events.push(added(shape('in_progress', '')));
      for (const piece of splitText(item.arguments, 3)) {
        events.push(delta('response.function_call_arguments.delta', piece));
      }
      events.push(
        {
          event: {
            type: 'response.function_call_arguments.done',
            item_id,
            output_index,
            name: item.name,
            arguments: item.arguments,
          },
        },
        done(shape('completed', item.arguments)),
      );
      break;
    }
    case 'custom_tool_call': {
      const shape = (input: string) => ({
        type: 'custom_tool_call',
        call_id: item.callId,
        input,
        name: item.name,
      });
      events.push(added(shape('')));
      for (const piece of splitText(item.input, 3)) {
        events.push(delta('response.custom_tool_call_input.delta', piece));
      }
      events.push(
        {
          event: {
            type: 'response.custom_tool_call_input.done',
            item_id,
            output_index,
            input: item.input,
          },
        },
        done(shape(item.input)),
      );
      break;
    }
  }
  return events;
}

export type ErrorShape = 'nested' | 'flat' | 'hybrid';

/** The in-stream `error` event, in one of the three shapes (responses-contract §1.5). */
export function errorEvent(
  error: { type: string; code: string | null; message: string; param?: string | null },
  shape: ErrorShape,
): JsonObject {
  const inner = {
    type: error.type,
    code: error.code,
    message: error.message,
    param: error.param ?? null,
  };
  const flat = { code: inner.code, message: inner.message, param: inner.param };
  if (shape === 'flat') return { type: 'error', ...flat };
  if (shape === 'hybrid') return { type: 'error', ...flat, error: inner };
  return { type: 'error', error: inner };
}

/** `event: <type>\ndata: <json>\n\n` */
export function frame(event: JsonObject): string {
  return `event: ${String(event.type)}\ndata: ${JSON.stringify(event)}\n\n`;
}
