/**
 * Typed shapes of the OpenAI Responses API wire format: input and output items, the Response
 * object, stream events and error envelopes. Pure types and tiny type guards; no I/O.
 *
 * The types are deliberately open (`[key: string]: unknown`): a relay must forward fields it does
 * not know byte-for-byte in meaning, so every shape keeps unknown members instead of dropping them.
 */

/** Any JSON value. */
export type JsonValue =
  string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };

/** A JSON object with unknown extra members. */
export interface JsonObject {
  [key: string]: unknown;
}

// ---------------------------------------------------------------------------------------------
// Content parts

export interface InputTextPart extends JsonObject {
  type: 'input_text';
  text: string;
}

export interface OutputTextPart extends JsonObject {
  type: 'output_text';
  text: string;
  annotations?: unknown[];
  logprobs?: unknown[];
}

export interface RefusalPart extends JsonObject {
  type: 'refusal';
  refusal: string;
}

export interface ReasoningTextPart extends JsonObject {
  type: 'reasoning_text';
  text: string;
}

export interface SummaryTextPart extends JsonObject {
  type: 'summary_text';
  text: string;
}

export type ContentPart =
  | InputTextPart
  | OutputTextPart
  | RefusalPart
  | ReasoningTextPart
  | (JsonObject & { type: string });

// ---------------------------------------------------------------------------------------------
// Items

/** Item statuses the API uses. */
export type ItemStatus = 'in_progress' | 'completed' | 'incomplete' | 'failed' | (string & {});

/** Fields every item may carry. */
export interface BaseItem extends JsonObject {
  type?: string;
  id?: string;
  status?: ItemStatus;
}

/** A message: the easy input form (`{role, content: string}`) or a full message item. */
export interface MessageItem extends BaseItem {
  type?: 'message';
  role: 'user' | 'assistant' | 'system' | 'developer' | (string & {});
  content: string | ContentPart[];
  phase?: string;
}

export interface FunctionCallItem extends BaseItem {
  type: 'function_call';
  call_id: string;
  name: string;
  arguments: string;
  namespace?: string;
}

export interface FunctionCallOutputItem extends BaseItem {
  type: 'function_call_output';
  call_id: string;
  output: string | ContentPart[];
}

export interface CustomToolCallItem extends BaseItem {
  type: 'custom_tool_call';
  call_id: string;
  name: string;
  input: string;
}

export interface CustomToolCallOutputItem extends BaseItem {
  type: 'custom_tool_call_output';
  call_id: string;
  output: string | ContentPart[];
}

export interface ReasoningItem extends BaseItem {
  type: 'reasoning';
  summary: SummaryTextPart[];
  content?: ReasoningTextPart[];
  encrypted_content?: string | null;
}

export interface ItemReference extends BaseItem {
  type?: 'item_reference';
  id: string;
}

/**
 * Any item of an `input` array or a Response's `output`. The named variants are the ones the
 * relay reasons about; every other item type (`web_search_call`, `apply_patch_call`,
 * `local_shell_call`, `mcp_call`, `compaction`, …) is carried as a {@link GenericItem}.
 */
export type GenericItem = BaseItem & { type: string };

export type ResponseItem =
  | MessageItem
  | FunctionCallItem
  | FunctionCallOutputItem
  | CustomToolCallItem
  | CustomToolCallOutputItem
  | ReasoningItem
  | GenericItem;

/** What the request's `input` may be: a string (one user message) or a list of items. */
export type ResponseInput = string | ResponseItem[];

// ---------------------------------------------------------------------------------------------
// Request and Response objects

/** The body of `POST /v1/responses` (open: unknown fields are kept). */
export interface ResponseCreateBody extends JsonObject {
  model?: string;
  input?: ResponseInput;
  instructions?: string | null;
  previous_response_id?: string | null;
  store?: boolean;
  stream?: boolean;
  include?: string[];
  tools?: unknown[];
  /** Codex WebSocket prewarm: `false` asks for no generation. */
  generate?: boolean;
}

export type ResponseStatus =
  'completed' | 'failed' | 'in_progress' | 'cancelled' | 'queued' | 'incomplete' | (string & {});

export interface ResponseUsage extends JsonObject {
  input_tokens: number;
  output_tokens: number;
  total_tokens: number;
  input_tokens_details?: { cached_tokens?: number } & JsonObject;
  output_tokens_details?: { reasoning_tokens?: number } & JsonObject;
}

export interface ResponseErrorInfo extends JsonObject {
  code: string | null;
  message: string;
}

/** The `Response` object (`object: "response"`). */
export interface ResponseObject extends JsonObject {
  id: string;
  object: 'response';
  created_at?: number;
  completed_at?: number | null;
  status: ResponseStatus;
  error?: ResponseErrorInfo | null;
  incomplete_details?: { reason?: string } | null;
  model?: string;
  output: ResponseItem[];
  usage?: ResponseUsage | null;
  previous_response_id?: string | null;
}

// ---------------------------------------------------------------------------------------------
// Stream events

/** Fields every stream event carries. */
export interface BaseStreamEvent extends JsonObject {
  type: string;
  sequence_number?: number;
}

/** `response.created`, `.queued`, `.in_progress`, `.completed`, `.failed`, `.incomplete`. */
export interface LifecycleEvent extends BaseStreamEvent {
  type:
    | 'response.created'
    | 'response.queued'
    | 'response.in_progress'
    | 'response.completed'
    | 'response.failed'
    | 'response.incomplete';
  response: ResponseObject;
}

export interface OutputItemEvent extends BaseStreamEvent {
  type: 'response.output_item.added' | 'response.output_item.done';
  output_index: number;
  item: ResponseItem;
}

/** An event addressed to one output item (`item_id` + `output_index`): deltas, parts, `.done`s. */
export interface ItemScopedEvent extends BaseStreamEvent {
  item_id: string;
  output_index: number;
  content_index?: number;
  summary_index?: number;
  delta?: string;
}

/** The in-stream `error` event, in the hybrid shape (flat fields and the nested object). */
export interface ErrorStreamEvent extends BaseStreamEvent {
  type: 'error';
  code?: string | null;
  message?: string;
  param?: string | null;
  error?: OpenAIErrorBody;
}

export type StreamEvent =
  LifecycleEvent | OutputItemEvent | ItemScopedEvent | ErrorStreamEvent | BaseStreamEvent;

/** The three events that end a response stream. */
export const TERMINAL_EVENT_TYPES = [
  'response.completed',
  'response.failed',
  'response.incomplete',
] as const;

export type TerminalEventType = (typeof TERMINAL_EVENT_TYPES)[number];

export function isTerminalEventType(type: string): type is TerminalEventType {
  return (TERMINAL_EVENT_TYPES as readonly string[]).includes(type);
}

const LIFECYCLE_TYPES = new Set([
  'response.created',
  'response.queued',
  'response.in_progress',
  'response.completed',
  'response.failed',
  'response.incomplete',
]);

export function isLifecycleEvent(event: BaseStreamEvent): event is LifecycleEvent {
  return (
    LIFECYCLE_TYPES.has(event.type) && typeof event.response === 'object' && event.response !== null
  );
}

export function isOutputItemEvent(event: BaseStreamEvent): event is OutputItemEvent {
  return (
    (event.type === 'response.output_item.added' || event.type === 'response.output_item.done') &&
    typeof event.output_index === 'number' &&
    typeof event.item === 'object' &&
    event.item !== null
  );
}

// ---------------------------------------------------------------------------------------------
// Errors

/** The inner object of OpenAI's error envelope. All four fields are always present. */
export interface OpenAIErrorBody {
  message: string;
  type: string;
  param: string | null;
  code: string | null;
}

/** `{"error":{"message","type","param","code"}}` */
export interface OpenAIErrorEnvelope {
  error: OpenAIErrorBody;
}

/** The WebSocket form of an error the Codex client understands. */
export interface WebSocketErrorFrame {
  type: 'error';
  status: number;
  error: OpenAIErrorBody;
  headers?: Record<string, string>;
}

export function isJsonObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
