/**
 * The stream accumulator: what a Responses stream has produced so far, rebuilt from its events.
 * Pure and incremental; `push` never throws and ignores what it cannot place.
 *
 * Items live in slots addressed by `output_index` (an item-scoped event without one is placed by
 * its `item_id`). Output is always listed in `output_index` order; gaps are allowed, and a second
 * `output_item.added` for an index already in use is ignored, so the first item added there keeps
 * its place. An `output_item.done` is the item's final form (it may come without an `added`, as
 * in the minimal shapes Codex accepts); a later `done` for the same index replaces it.
 *
 * Memory: the event objects are never kept. While an item is in progress, each text it grows
 * (a content part's text or refusal, function-call arguments, custom-tool input, MCP arguments,
 * interpreter code, a reasoning summary part, reasoning text) keeps its deltas in an array of
 * strings, joined lazily (and compacted to one string when read). A text `.done` event replaces
 * the deltas of its part, and `output_item.done` drops every buffer of the item, so the memory
 * held is the text itself, never a function of the number of deltas.
 *
 * Lifecycle events: `responseId` comes from the first lifecycle event carrying a response id;
 * the last lifecycle event's `response` is the base of {@link ResponseAccumulator.snapshot};
 * the first terminal event ends the response (later lifecycle events are ignored).
 */
import {
  isJsonObject,
  isTerminalEventType,
  type JsonObject,
  type LifecycleEvent,
  type ResponseItem,
  type ResponseObject,
  type StreamEvent,
} from './types';

const LIFECYCLE_TYPES: ReadonlySet<string> = new Set([
  'response.created',
  'response.queued',
  'response.in_progress',
  'response.completed',
  'response.failed',
  'response.incomplete',
]);

/** A content part, summary part or reasoning-text part being streamed. */
interface PartBuffer {
  /** The part as added (a shallow copy), or the default shape for the event family. */
  base: JsonObject;
  /** The field the deltas grow: `text` or `refusal`. */
  field: 'text' | 'refusal';
  chunks: string[];
  /** The full text from a text `.done` event: it overrides the deltas. */
  final?: string;
  /** The part from `content_part.done` / `reasoning_summary_part.done`: overrides everything. */
  finalPart?: JsonObject;
  /** Annotations from `output_text.annotation.added`, by `annotation_index`. */
  annotations?: Map<number, unknown>;
}

/** A top-level string field being streamed (`arguments`, `input`, `code`). */
interface FieldBuffer {
  name: string;
  chunks: string[];
  final?: string;
}

interface Slot {
  /** The item from `output_item.added` (a shallow copy); dropped once the item is done. */
  added?: JsonObject;
  /** The item from `output_item.done`. */
  done?: ResponseItem;
  content?: Map<number, PartBuffer>;
  summary?: Map<number, PartBuffer>;
  field?: FieldBuffer;
  /** Extra top-level fields learned from `.done` events (e.g. `name`). */
  extra?: JsonObject;
}

/** How an item-scoped event family grows an item. */
type Route =
  | {
      to: 'content' | 'summary';
      itemType: string;
      field: 'text' | 'refusal';
      partType: string;
      op: Op;
    }
  | { to: 'field'; itemType: string; field: string; op: 'delta' | 'done' };
type Op = 'delta' | 'done' | 'part_added' | 'part_done';

/** The item-scoped event types (other than `content_part.*` and annotations), by route. */
const ROUTES = new Map<string, Route>();
/** `response.<family>.delta` / `.done` grow the `field` of a part of type `partType`. */
function partEvents(
  family: string,
  to: 'content' | 'summary',
  itemType: string,
  partType: string,
  field: 'text' | 'refusal',
): void {
  for (const op of ['delta', 'done'] as const) {
    ROUTES.set(`response.${family}.${op}`, { to, itemType, field, partType, op });
  }
}
/** `response.<family>.delta` / `.done` grow the top-level string `field` of the item. */
function fieldEvents(family: string, itemType: string, field: string): void {
  for (const op of ['delta', 'done'] as const) {
    ROUTES.set(`response.${family}.${op}`, { to: 'field', itemType, field, op });
  }
}
partEvents('output_text', 'content', 'message', 'output_text', 'text');
partEvents('refusal', 'content', 'message', 'refusal', 'refusal');
partEvents('reasoning_text', 'content', 'reasoning', 'reasoning_text', 'text');
partEvents('reasoning_summary_text', 'summary', 'reasoning', 'summary_text', 'text');
for (const op of ['added', 'done'] as const) {
  ROUTES.set(`response.reasoning_summary_part.${op}`, {
    to: 'summary',
    itemType: 'reasoning',
    field: 'text',
    partType: 'summary_text',
    op: op === 'added' ? 'part_added' : 'part_done',
  });
}
fieldEvents('function_call_arguments', 'function_call', 'arguments');
fieldEvents('custom_tool_call_input', 'custom_tool_call', 'input');
fieldEvents('mcp_call_arguments', 'mcp_call', 'arguments');
fieldEvents('code_interpreter_call_code', 'code_interpreter_call', 'code');

/** Which part type a `content_part.*` event may carry on which item type. */
const CONTENT_PART_FIELDS: Readonly<
  Record<string, { itemType: string; field: 'text' | 'refusal' }>
> = Object.freeze({
  output_text: { itemType: 'message', field: 'text' },
  refusal: { itemType: 'message', field: 'refusal' },
  reasoning_text: { itemType: 'reasoning', field: 'text' },
});

function isIndex(value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= 0;
}

/**
 * Deltas a text keeps unjoined at most: reaching it joins them into one string, so the memory of
 * a long stream of tiny deltas stays the text plus a bounded array.
 */
export const MAX_PENDING_CHUNKS = 4096;

function pushChunk(chunks: string[], delta: string): void {
  chunks.push(delta);
  if (chunks.length >= MAX_PENDING_CHUNKS) joined(chunks);
}

/** Join a buffer's chunks and keep the result as its only chunk. */
function joined(chunks: string[]): string {
  if (chunks.length === 0) return '';
  if (chunks.length > 1) {
    const text = chunks.join('');
    chunks.length = 0;
    chunks.push(text);
  }
  return chunks[0]!;
}

/**
 * `base` (a list of the item as added) with the entries of `overrides` written at their indexes,
 * holes removed: an index within `base` replaces its entry, the others follow in ascending order.
 * Only the indexes present are visited, never the range up to the largest one (an index is
 * whatever the upstream sent, up to 2^53).
 */
function overlay<T>(
  base: unknown,
  overrides: Map<number, T>,
  render: (value: T) => unknown,
): unknown[] {
  const given: unknown[] = Array.isArray(base) ? (base as unknown[]) : [];
  const indexes = [...overrides.keys()].sort((a, b) => a - b);
  const out: unknown[] = [];
  let next = 0;
  for (let i = 0; i < given.length; i++) {
    if (indexes[next] === i) out.push(render(overrides.get(indexes[next++]!)!));
    else if (given[i] !== undefined) out.push(given[i]);
  }
  for (; next < indexes.length; next++) out.push(render(overrides.get(indexes[next]!)!));
  return out;
}

function renderPart(buffer: PartBuffer): JsonObject {
  if (buffer.finalPart !== undefined) return buffer.finalPart;
  const part: JsonObject = { ...buffer.base };
  const start = typeof part[buffer.field] === 'string' ? (part[buffer.field] as string) : '';
  part[buffer.field] = buffer.final ?? start + joined(buffer.chunks);
  if (buffer.annotations !== undefined) {
    part.annotations = overlay(part.annotations, buffer.annotations, (annotation) => annotation);
  }
  return part;
}

/** `base` with the parts of `buffers` written at their indexes (holes removed). */
function renderParts(base: unknown, buffers: Map<number, PartBuffer>): unknown[] {
  return overlay(base, buffers, renderPart);
}

/**
 * Accumulates one response stream. See the file comment for the rules; in short: push every
 * event, read the items at any time, and the final Response once the terminal event arrived.
 */
export class ResponseAccumulator {
  private readonly slots = new Map<number, Slot>();
  /** The slot indexes, ascending. */
  private readonly order: number[] = [];
  private readonly indexById = new Map<string, number>();
  private _responseId: string | undefined;
  private _started = false;
  private _terminal: LifecycleEvent | undefined;
  private _outputStarted = false;
  private _lastSequenceNumber: number | undefined;
  private lastResponse: JsonObject | undefined;

  /** The response id, from `response.created` (or the first lifecycle event carrying one). */
  get responseId(): string | undefined {
    return this._responseId;
  }

  /** Whether `response.created` was seen. */
  get started(): boolean {
    return this._started;
  }

  /**
   * The terminal event (`response.completed` / `.failed` / `.incomplete`), once seen. A terminal
   * event without a `response` object is recorded as a copy whose `response` is the last known
   * Response with the terminal's status and no `output` (so {@link finalResponse} rebuilds it).
   */
  get terminal(): LifecycleEvent | undefined {
    return this._terminal;
  }

  /**
   * Whether any output was seen: an `output_item.added` / `.done`, or any event addressed to an
   * item (one with an `output_index` or an `item_id`), or an audio delta. The retry guard's
   * "before any output" is `!outputStarted`.
   */
  get outputStarted(): boolean {
    return this._outputStarted;
  }

  /** The `sequence_number` of the last event that carried a numeric one. */
  get lastSequenceNumber(): number | undefined {
    return this._lastSequenceNumber;
  }

  /**
   * The number of delta strings currently buffered, for diagnostics: at most
   * {@link MAX_PENDING_CHUNKS} per text in progress, one per text once read, none once done.
   */
  get bufferedChunks(): number {
    let count = 0;
    for (const slot of this.slots.values()) {
      for (const parts of [slot.content, slot.summary]) {
        if (parts !== undefined) for (const part of parts.values()) count += part.chunks.length;
      }
      if (slot.field !== undefined) count += slot.field.chunks.length;
    }
    return count;
  }

  /** Feed one event. Never throws; an event that cannot be placed is ignored. */
  push(event: StreamEvent): void {
    if (!isJsonObject(event) || typeof event.type !== 'string') return;
    const sequence = event.sequence_number;
    if (typeof sequence === 'number' && Number.isFinite(sequence)) {
      this._lastSequenceNumber = sequence;
    }
    const type = event.type;
    if (LIFECYCLE_TYPES.has(type)) {
      this.onLifecycle(event, type);
      return;
    }
    if (type === 'error') return;
    if (
      type === 'response.output_item.added' ||
      type === 'response.output_item.done' ||
      isIndex(event.output_index) ||
      typeof event.item_id === 'string' ||
      type.startsWith('response.audio.')
    ) {
      this._outputStarted = true;
    }
    if (type === 'response.output_item.added') this.onItemAdded(event);
    else if (type === 'response.output_item.done') this.onItemDone(event);
    else if (type === 'response.content_part.added' || type === 'response.content_part.done') {
      this.onContentPart(
        event,
        type === 'response.content_part.added' ? 'part_added' : 'part_done',
      );
    } else if (type === 'response.output_text.annotation.added') this.onAnnotation(event);
    else {
      const route = ROUTES.get(type);
      if (route !== undefined) this.onRoute(event, route);
    }
  }

  /** The items of `output_item.done` events, in `output_index` order. */
  completedItems(): ResponseItem[] {
    const out: ResponseItem[] = [];
    for (const index of this.order) {
      const done = this.slots.get(index)?.done;
      if (done !== undefined) out.push(done);
    }
    return out;
  }

  /**
   * Every item seen, in `output_index` order: the completed ones as `output_item.done` gave
   * them, the others rebuilt from their `output_item.added` and the events since (text from the
   * deltas unless a `.done` event gave the full text). The rebuilt items are new objects.
   */
  items(): ResponseItem[] {
    const out: ResponseItem[] = [];
    for (const index of this.order) {
      const slot = this.slots.get(index)!;
      if (slot.done !== undefined) out.push(slot.done);
      else if (slot.added !== undefined) out.push(this.render(slot, slot.added));
    }
    return out;
  }

  /**
   * The current best Response: after the terminal event, {@link finalResponse}; before it, the
   * last lifecycle event's `response` with `output` = {@link items}.
   */
  snapshot(): ResponseObject {
    const final = this.finalResponse();
    if (final !== undefined) return final;
    return this.baseResponse('in_progress', this.items());
  }

  /**
   * Once a terminal event was seen: its `response`, with `output` rebuilt from
   * {@link completedItems} when it is missing (or not a list), or empty while items were
   * streamed — the `output: []` that makes the SDK drop every streamed item. Everything else
   * (`id`, `status`, `usage`, …) is kept. `undefined` before the terminal event.
   */
  finalResponse(): ResponseObject | undefined {
    const terminal = this._terminal;
    if (terminal === undefined) return undefined;
    const response = terminal.response;
    const output: unknown = response.output;
    if (Array.isArray(output) && (output.length > 0 || this.order.length === 0)) {
      return { ...response };
    }
    return { ...response, output: this.completedItems() };
  }

  // -------------------------------------------------------------------------------------------

  private baseResponse(status: string, output: ResponseItem[] | undefined): ResponseObject {
    const base: JsonObject = this.lastResponse ?? {};
    const response: JsonObject = { object: 'response', status, ...base };
    response.id = typeof base.id === 'string' ? base.id : (this._responseId ?? '');
    if (output === undefined) delete response.output;
    else response.output = output;
    return response as ResponseObject;
  }

  private onLifecycle(event: JsonObject, type: string): void {
    if (this._terminal !== undefined) return;
    if (type === 'response.created') this._started = true;
    const response = isJsonObject(event.response) ? event.response : undefined;
    if (response !== undefined) {
      this.lastResponse = response;
      if (this._responseId === undefined && typeof response.id === 'string') {
        this._responseId = response.id;
      }
    }
    if (!isTerminalEventType(type)) return;
    if (response !== undefined) {
      this._terminal = event as LifecycleEvent;
    } else {
      const status = type.slice('response.'.length);
      const synthetic = this.baseResponse(status, undefined);
      synthetic.status = status;
      this._terminal = { ...event, type, response: synthetic } as LifecycleEvent;
    }
  }

  private insertSlot(index: number, slot: Slot): void {
    this.slots.set(index, slot);
    // Indexes usually arrive in ascending order: search from the end.
    let at = this.order.length;
    while (at > 0 && this.order[at - 1]! > index) at--;
    this.order.splice(at, 0, index);
  }

  private remember(item: JsonObject, index: number): void {
    if (typeof item.id === 'string' && item.id.length > 0) this.indexById.set(item.id, index);
  }

  private onItemAdded(event: JsonObject): void {
    const index = event.output_index;
    const item = event.item;
    if (!isIndex(index) || !isJsonObject(item) || this.slots.has(index)) return;
    this.insertSlot(index, { added: { ...item } });
    this.remember(item, index);
  }

  private onItemDone(event: JsonObject): void {
    const index = event.output_index;
    const item = event.item;
    if (!isIndex(index) || !isJsonObject(item)) return;
    const slot = this.slots.get(index);
    if (slot === undefined) {
      this.insertSlot(index, { done: item as ResponseItem });
    } else {
      slot.done = item as ResponseItem;
      delete slot.added;
      delete slot.content;
      delete slot.summary;
      delete slot.field;
      delete slot.extra;
    }
    this.remember(item, index);
  }

  /** The in-progress slot an item-scoped event addresses, if its item has type `itemType`. */
  private target(event: JsonObject, itemType: string | undefined): Slot | undefined {
    let index: unknown = event.output_index;
    if (!isIndex(index) && typeof event.item_id === 'string')
      index = this.indexById.get(event.item_id);
    if (!isIndex(index)) return undefined;
    const slot = this.slots.get(index);
    if (slot === undefined || slot.done !== undefined || slot.added === undefined) return undefined;
    if (itemType !== undefined && slot.added.type !== itemType) return undefined;
    return slot;
  }

  private onContentPart(event: JsonObject, op: 'part_added' | 'part_done'): void {
    const part = event.part;
    if (!isJsonObject(part) || typeof part.type !== 'string') return;
    const fits = CONTENT_PART_FIELDS[part.type];
    if (fits === undefined) return;
    const slot = this.target(event, fits.itemType);
    if (slot === undefined) return;
    this.onPart(slot, 'content', event.content_index, part.type, fits.field, op, event);
  }

  private onRoute(event: JsonObject, route: Route): void {
    const slot = this.target(event, route.itemType);
    if (slot === undefined) return;
    if (route.to === 'field') {
      const key = route.field;
      const field = (slot.field ??= { name: key, chunks: [] });
      if (field.name !== key) return;
      if (route.op === 'delta') {
        if (field.final === undefined && typeof event.delta === 'string')
          pushChunk(field.chunks, event.delta);
      } else if (typeof event[key] === 'string') {
        field.final = event[key] as string;
        field.chunks = [];
        if (key === 'arguments' && typeof event.name === 'string') {
          (slot.extra ??= {}).name = event.name;
        }
      }
      return;
    }
    const position = route.to === 'summary' ? event.summary_index : event.content_index;
    this.onPart(slot, route.to, position, route.partType, route.field, route.op, event);
  }

  private onPart(
    slot: Slot,
    to: 'content' | 'summary',
    position: unknown,
    partType: string,
    field: 'text' | 'refusal',
    op: Op,
    event: JsonObject,
  ): void {
    if (!isIndex(position)) return;
    const parts = to === 'summary' ? (slot.summary ??= new Map()) : (slot.content ??= new Map());
    let buffer = parts.get(position);
    if (op === 'part_added') {
      if (buffer === undefined && isJsonObject(event.part)) {
        parts.set(position, { base: { ...event.part }, field, chunks: [] });
      }
      return;
    }
    if (buffer === undefined) {
      buffer = { base: { type: partType, [field]: '' }, field, chunks: [] };
      if (partType === 'output_text') buffer.base.annotations = [];
      parts.set(position, buffer);
    }
    if (buffer.base.type !== partType || buffer.finalPart !== undefined) return;
    if (op === 'part_done') {
      if (isJsonObject(event.part)) {
        buffer.finalPart = { ...event.part };
        buffer.chunks = [];
        delete buffer.final;
        delete buffer.annotations;
      }
    } else if (op === 'delta') {
      if (buffer.final === undefined && typeof event.delta === 'string')
        pushChunk(buffer.chunks, event.delta);
    } else {
      const text = event[field];
      if (typeof text === 'string') {
        buffer.final = text;
        buffer.chunks = [];
      }
    }
  }

  private onAnnotation(event: JsonObject): void {
    const slot = this.target(event, 'message');
    const position = event.content_index;
    const index = event.annotation_index;
    if (slot === undefined || !isIndex(position) || !isIndex(index)) return;
    const buffer = slot.content?.get(position);
    if (
      buffer === undefined ||
      buffer.finalPart !== undefined ||
      buffer.base.type !== 'output_text'
    ) {
      return;
    }
    (buffer.annotations ??= new Map()).set(index, event.annotation);
  }

  private render(slot: Slot, added: JsonObject): ResponseItem {
    const item: JsonObject = { ...added, ...slot.extra };
    if (slot.content !== undefined) item.content = renderParts(added.content, slot.content);
    if (slot.summary !== undefined) item.summary = renderParts(added.summary, slot.summary);
    const field = slot.field;
    if (field !== undefined) {
      const start = typeof added[field.name] === 'string' ? (added[field.name] as string) : '';
      item[field.name] = field.final ?? start + joined(field.chunks);
    }
    return item as ResponseItem;
  }
}
