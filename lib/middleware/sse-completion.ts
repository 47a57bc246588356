/**
 * `sseCompletion()`: every Responses stream the client receives is well-formed and every
 * completion whole (DESIGN §7).
 *
 * A stage on the shared pipeline, so it works in front of a stock http-proxy-middleware proxy
 * (tap mode) as well as with `relayProxyOptions()`. Events are forwarded as they arrive, each as
 * the same object (so the upstream's own bytes go out) unless it has to change; the only things
 * remembered are one small record per output item (its id) — the items themselves are in the
 * pipeline's accumulator, which every stage shares. What it does:
 *
 * 1. A terminal event whose `output` is missing or empty while items were streamed gets the
 *    streamed items, in `output_index` order (sse-completion-policy.ts); `id`, `status`, `usage`
 *    and everything else are kept.
 * 2. A stream that ends without a terminal event (EOF, reset, idle past `idleTimeoutMs`) is
 *    closed by the relay with an `error` event and a `response.failed` holding the completed
 *    items (`streamFailureEvents`). Nothing after the first terminal event is forwarded, and an
 *    upstream that holds the connection open after it is closed after `terminalGraceMs`.
 * 3. Item ids keep their type prefixes across every event of an item and in the terminal's
 *    output (sse-completion-ids.ts); `call_id` is never altered. Rewritten ids are remembered so
 *    that an input item referring back to one is mapped to the upstream's id before dispatch.
 * 4. A stream that does not start with `response.created` gets one; an `output_item.done`
 *    without its `output_item.added` gets one; a `response.completed` carrying items that were
 *    never streamed gets their `added`/`done` events (Codex builds its history from those).
 *    Sequence numbers of everything sent are made strictly increasing by the pipeline.
 * 5. With `aggregateNonStreaming`, a `stream: false` request is sent upstream as a stream and
 *    answered as one JSON Response (for stream-only upstreams such as the Codex backend).
 * 6. The Response the client saw is published on the exchange (`exchange.finalResponse`) by the
 *    pipeline, from the events as rewritten here, for the chaining middleware to store.
 */
import type { IncomingMessage } from 'node:http';
import { errorFromStreamEvent } from '../protocol/errors';
import { relayError } from '../protocol/relay-errors';
import {
  isJsonObject,
  isTerminalEventType,
  type JsonObject,
  type OpenAIErrorBody,
  type ResponseCreateBody,
  type ResponseItem,
  type ResponseObject,
  type StreamEvent,
  type TerminalEventType,
} from '../protocol/types';
import {
  getExchange,
  type EmitEvent,
  type Exchange,
  type StageContext,
  type StreamEnd,
  type StreamStage,
} from './exchange';
import { readRequestBody } from './request-body';
import type { ResponsePipelineOptions } from './response-pipeline';
import {
  DEFAULT_NORMALIZED_ITEM_TYPES,
  MemoryItemIdAliases,
  normalizeItemId,
  restoreInputIds,
  rewritableInputIds,
  withItemId,
  type ItemIdAliases,
  type RestoreItemIds,
} from './sse-completion-ids';
import { createdEventFor, terminalOutput, terminalResponseFor } from './sse-completion-policy';
import { streamFailureEvents } from './stream-failure';
import { installStage, type RelayMiddleware } from './stream-transform';

export interface SseCompletionOptions extends ResponsePipelineOptions {
  /**
   * Abandons the upstream when no event arrived for this long (ms) once the stream started, and
   * ends the client's stream with `response.failed`. `0` disables it. The Codex CLI's own idle
   * timeout is 300 s. SSE comments (keep-alives) do not count as events. @default 300000
   */
  idleTimeoutMs?: number;
  /**
   * After the terminal event, how long (ms) the upstream may keep its connection open before the
   * relay closes it and ends the client's response (the SDK waits for the end of the body).
   * `0` leaves it to the upstream. @default 1000
   */
  terminalGraceMs?: number;
  /**
   * Send an OpenAI `error` event before the `response.failed` the relay adds to a stream that
   * ended without a terminal event (DESIGN §6). The openai SDK turns that event into an
   * `APIError` (`finalResponse()` rejects); without it, `finalResponse()` resolves with
   * `status: "failed"` and the completed items. Codex ignores the `error` event either way.
   * @default true
   */
  errorEvent?: boolean;
  /**
   * Give item ids their type prefixes where the upstream did not: `true` for the types whose id
   * prefix the API checks on input ({@link DEFAULT_NORMALIZED_ITEM_TYPES}: `msg_`, `fc_`,
   * `ctc_`, `rs_`, `ws_`), a list of item types (with a prefix in `ITEM_ID_PREFIXES`), or
   * `false`. @default true
   */
  normalizeItemIds?: boolean | readonly string[];
  /**
   * Where the ids the relay rewrote are remembered, to map input items that refer back to them;
   * `false` to not remember them. @default one process-wide {@link MemoryItemIdAliases}
   */
  itemIdAliases?: ItemIdAliases | false;
  /**
   * How an input item carrying an id the relay rewrote is sent upstream: with the upstream's own
   * id (`'original'`; an item the upstream gave no id loses its `id`), or without an id
   * (`'omit'`, for upstreams that check id prefixes on input). @default 'original'
   */
  restoreItemIds?: RestoreItemIds;
  /**
   * Serve requests without `"stream": true` from a stream-only upstream: the request goes
   * upstream with `stream: true` and the client gets the aggregated Response as JSON. Needs the
   * relay to write the request body (`relayProxyOptions()` / `relayProxy()`, or a body parser and
   * http-proxy-middleware's `fixRequestBody`). @default false
   */
  aggregateNonStreaming?: boolean;
  /**
   * Read the request body even when no body parser ran, to map rewritten ids back. Only with
   * `relayProxyOptions()` / `relayProxy()`: a stock proxy would then send an empty body. Without
   * it the body is only looked at when it was already read. @default false
   */
  readBody?: boolean;
  /** Largest request body read, in bytes. @default 32 MiB */
  maxBodyBytes?: number;
}

/** The stage's name on the exchange (a second `sseCompletion()` on one route adds nothing). */
export const SSE_COMPLETION_STAGE = 'sse-completion';

export const DEFAULT_IDLE_TIMEOUT_MS = 300_000;
export const DEFAULT_TERMINAL_GRACE_MS = 1_000;

/** The aliases every `sseCompletion()` without its own `itemIdAliases` shares. */
export const defaultItemIdAliases = new MemoryItemIdAliases();

interface Settings {
  idleTimeoutMs: number;
  terminalGraceMs: number;
  errorEvent: boolean;
  /** The item types whose ids are normalized (empty: none). */
  idTypes: ReadonlySet<string>;
  aliases: ItemIdAliases | undefined;
  restore: RestoreItemIds;
  aggregate: boolean;
  readBody: boolean;
  maxBodyBytes: number | undefined;
}

function resolveSettings(options: SseCompletionOptions): Settings {
  const aliases =
    options.itemIdAliases === false ? undefined : (options.itemIdAliases ?? defaultItemIdAliases);
  return {
    idleTimeoutMs: Math.max(0, options.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS),
    terminalGraceMs: Math.max(0, options.terminalGraceMs ?? DEFAULT_TERMINAL_GRACE_MS),
    errorEvent: options.errorEvent ?? true,
    idTypes: new Set(
      options.normalizeItemIds === false
        ? []
        : options.normalizeItemIds === true || options.normalizeItemIds === undefined
          ? DEFAULT_NORMALIZED_ITEM_TYPES
          : options.normalizeItemIds,
    ),
    aliases,
    restore: options.restoreItemIds ?? 'original',
    aggregate: options.aggregateNonStreaming ?? false,
    readBody: options.readBody ?? false,
    maxBodyBytes: options.maxBodyBytes,
  };
}

function isIndex(value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= 0;
}

function nonEmptyString(value: unknown): string | undefined {
  return typeof value === 'string' && value.length > 0 ? value : undefined;
}

/** One output item as the client is shown it. */
interface ItemSlot {
  /** The id the client sees (`undefined`: the item has none and gets none). */
  id: string | undefined;
  /** The id the upstream gave it first. */
  upstreamId: string | undefined;
}

/** Counters for the exchange's annotations (logs). */
const ANNOTATION = {
  idsRewritten: 'sse_completion.ids_rewritten',
  outputRebuilt: 'sse_completion.output_rebuilt',
  closed: 'sse_completion.closed',
  inputIdsRestored: 'sse_completion.input_ids_restored',
  aggregated: 'sse_completion.aggregated',
} as const;

/** The stage of one upstream attempt. */
class SseCompletionStage implements StreamStage {
  readonly name = SSE_COMPLETION_STAGE;
  /** A `response.created` went out (the upstream's or ours). */
  private started = false;
  /** The terminal event went out: everything after it is dropped. */
  private terminal = false;
  /** `onEnd` ran. */
  private ended = false;
  private responseId: string | undefined;
  private readonly slots = new Map<number, ItemSlot>();
  /** Slots by an upstream id that differs from the id shown (for events without an index). */
  private byUpstreamId: Map<string, ItemSlot> | undefined;
  private byCallId: Map<string, ItemSlot> | undefined;
  /** The upstream's own `error` event, when it sent one without a terminal event. */
  private upstreamError: OpenAIErrorBody | undefined;
  private rewritten = 0;
  private lastEventAt = 0;
  private idleTimer: NodeJS.Timeout | undefined;
  private graceTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly exchange: Exchange,
    private readonly settings: Settings,
  ) {}

  onEvent(event: StreamEvent, emit: EmitEvent, context: StageContext): void {
    if (this.terminal) return;
    if (this.settings.idleTimeoutMs > 0) this.touch(context);
    const type = event.type;
    switch (type) {
      case 'response.created':
        if (this.started) return; // a second one would reset the client's snapshot
        this.started = true;
        if (isJsonObject(event.response)) this.responseId ??= nonEmptyString(event.response.id);
        emit(event);
        return;
      case 'response.output_item.added':
        this.ensureCreated(event, emit, context);
        this.onItemAdded(event, emit);
        return;
      case 'response.output_item.done':
        this.ensureCreated(event, emit, context);
        this.onItemDone(event, emit);
        return;
      case 'error':
        this.upstreamError = errorFromStreamEvent(event);
        emit(event);
        return;
      default:
        break;
    }
    if (isTerminalEventType(type)) {
      this.ensureCreated(event, emit, context);
      this.onTerminal(event, type, emit, context);
      return;
    }
    if (!this.started && type.startsWith('response.')) this.ensureCreated(event, emit, context);
    emit(this.scoped(event));
  }

  onEnd(end: StreamEnd, emit: EmitEvent, context: StageContext): void {
    this.ended = true;
    this.stopTimers();
    if (this.terminal || context.terminalSent) return;
    this.terminal = true;
    const upstreamError = this.upstreamError;
    const error = upstreamError ?? relayError('stream_incomplete').toErrorBody();
    for (const event of streamFailureEvents(context, error)) {
      // The upstream's own error event already went out; the relay adds only the terminal.
      if (event.type === 'error' && (upstreamError !== undefined || !this.settings.errorEvent)) {
        continue;
      }
      emit(event);
    }
    this.exchange.annotations[ANNOTATION.closed] = end.kind;
  }

  // --- events ---------------------------------------------------------------------------------

  /** Sends a `response.created` before `event` when the stream did not start with one. */
  private ensureCreated(event: StreamEvent, emit: EmitEvent, context: StageContext): void {
    if (this.started) return;
    this.started = true;
    const created = createdEventFor(event, context.accumulator.responseId);
    this.responseId = (created.response as ResponseObject).id;
    emit(created);
  }

  private onItemAdded(event: StreamEvent, emit: EmitEvent): void {
    const index = event.output_index;
    const item = event.item;
    if (!isIndex(index) || !isJsonObject(item) || this.slots.has(index)) {
      emit(this.scoped(event));
      return;
    }
    const slot = this.register(index, item);
    emit(
      slot.id === undefined || slot.id === item.id
        ? event
        : { ...event, item: { ...item, id: slot.id } },
    );
  }

  private onItemDone(event: StreamEvent, emit: EmitEvent): void {
    const index = event.output_index;
    const item = event.item;
    if (!isIndex(index) || !isJsonObject(item)) {
      emit(event);
      return;
    }
    const slot = this.slots.get(index);
    if (slot === undefined) {
      // A `done` without its `added` (Codex's minimal shape): the SDK needs the item added first.
      const shown = withItemId(item as ResponseItem, this.register(index, item).id);
      emit({ type: 'response.output_item.added', output_index: index, item: shown });
      emit(shown === item ? event : { ...event, item: shown });
      return;
    }
    const upstreamId = nonEmptyString(item.id);
    if (slot.id === undefined || upstreamId === slot.id) {
      emit(event);
      return;
    }
    if (upstreamId !== undefined && upstreamId !== slot.upstreamId) {
      (this.byUpstreamId ??= new Map()).set(upstreamId, slot);
    }
    emit({ ...event, item: { ...item, id: slot.id } });
  }

  /** An item-scoped event with the `item_id` of its item as the client knows it. */
  private scoped(event: StreamEvent): StreamEvent {
    const itemId = event.item_id;
    if (typeof itemId !== 'string' || this.slots.size === 0) return event;
    const index = event.output_index;
    let slot = isIndex(index) ? this.slots.get(index) : undefined;
    slot ??= this.byUpstreamId?.get(itemId) ?? this.byCallId?.get(itemId);
    if (slot === undefined || slot.id === undefined || slot.id === itemId) return event;
    return { ...event, item_id: slot.id };
  }

  private onTerminal(
    event: StreamEvent,
    type: TerminalEventType,
    emit: EmitEvent,
    context: StageContext,
  ): void {
    this.terminal = true;
    this.stopTimers();
    const given = isJsonObject(event.response) ? (event.response as ResponseObject) : undefined;
    const response =
      given ?? terminalResponseFor(type, { ...context.accumulator.snapshot(), output: [] });
    let output = terminalOutput(type, response.output, context.accumulator);
    if (output !== undefined && output.length > 0) {
      this.exchange.annotations[ANNOTATION.outputRebuilt] = true;
    } else if (output === undefined && Array.isArray(response.output)) {
      const listed = response.output;
      output = this.shownOutput(listed);
      if (this.slots.size === 0 && type !== 'response.failed' && listed.length > 0) {
        // Items only listed in the terminal event: Codex takes a turn's items from
        // `output_item.done` events, so they are streamed before it.
        (output ?? listed).forEach((item, index) => {
          emit({ type: 'response.output_item.added', output_index: index, item });
          emit({ type: 'response.output_item.done', output_index: index, item });
        });
      }
    }
    if (this.rewritten > 0) this.exchange.annotations[ANNOTATION.idsRewritten] = this.rewritten;
    if (output === undefined && given !== undefined) emit(event);
    else emit({ ...event, response: { ...response, output: output ?? response.output } });
    this.armGrace(context);
  }

  // --- ids ------------------------------------------------------------------------------------

  /** Decides the id the client is shown for the item at `index` and remembers it. */
  private register(index: number, item: JsonObject): ItemSlot {
    const upstreamId = nonEmptyString(item.id);
    const id = normalizeItemId(
      item,
      { responseId: this.responseId, outputIndex: index },
      this.settings.idTypes,
    );
    const slot: ItemSlot = { id, upstreamId };
    this.slots.set(index, slot);
    if (id !== undefined && id !== upstreamId) {
      this.remember(id, upstreamId);
      if (upstreamId !== undefined) (this.byUpstreamId ??= new Map()).set(upstreamId, slot);
    }
    const callId = nonEmptyString(item.call_id);
    if (callId !== undefined) (this.byCallId ??= new Map()).set(callId, slot);
    return slot;
  }

  /** The terminal's own output list with the ids the client was shown (`undefined`: unchanged). */
  private shownOutput(listed: ResponseItem[]): ResponseItem[] | undefined {
    let out: ResponseItem[] | undefined;
    listed.forEach((item, position) => {
      if (!isJsonObject(item)) return;
      const upstreamId = nonEmptyString(item.id);
      const callId = nonEmptyString(item.call_id);
      const slot =
        (upstreamId === undefined ? undefined : this.byUpstreamId?.get(upstreamId)) ??
        (callId === undefined ? undefined : this.byCallId?.get(callId));
      let id = slot?.id;
      if (slot === undefined) {
        id = normalizeItemId(
          item,
          { responseId: this.responseId, outputIndex: position },
          this.settings.idTypes,
        );
        if (id !== undefined && id !== upstreamId) this.remember(id, upstreamId);
      }
      if (id === undefined || id === upstreamId) return;
      out ??= listed.slice();
      out[position] = { ...item, id };
    });
    return out;
  }

  private remember(shownId: string, upstreamId: string | undefined): void {
    this.rewritten += 1;
    const aliases = this.settings.aliases;
    if (aliases === undefined) return;
    try {
      const pending = aliases.set(shownId, upstreamId ?? null);
      if (pending !== undefined) pending.catch(() => undefined);
    } catch {
      // Not remembering an alias only means the id is not mapped back later.
    }
  }

  // --- timers ---------------------------------------------------------------------------------

  private touch(context: StageContext): void {
    this.lastEventAt = Date.now();
    if (this.idleTimer === undefined && !this.ended) this.armIdle(context);
  }

  private armIdle(context: StageContext): void {
    const limit = this.settings.idleTimeoutMs;
    const check = (): void => {
      this.idleTimer = undefined;
      if (this.ended || this.terminal) return;
      const idle = Date.now() - this.lastEventAt;
      if (idle >= limit) {
        context.abortUpstream({ kind: 'stalled', idleMs: idle });
        return;
      }
      this.idleTimer = setTimeout(check, limit - idle);
      this.idleTimer.unref();
    };
    this.idleTimer = setTimeout(check, limit);
    this.idleTimer.unref();
  }

  private armGrace(context: StageContext): void {
    const grace = this.settings.terminalGraceMs;
    if (grace <= 0 || this.ended) return;
    this.graceTimer = setTimeout(() => {
      this.graceTimer = undefined;
      if (!this.ended) context.abortUpstream({ kind: 'eof' });
    }, grace);
    this.graceTimer.unref();
  }

  private stopTimers(): void {
    if (this.idleTimer !== undefined) clearTimeout(this.idleTimer);
    if (this.graceTimer !== undefined) clearTimeout(this.graceTimer);
    this.idleTimer = undefined;
    this.graceTimer = undefined;
  }
}

/**
 * The stage `sseCompletion()` registers, for one upstream attempt of `exchange`: for gateways
 * that drive a {@link ResponsePipeline} themselves (and for tests).
 */
export function createSseCompletionStage(
  exchange: Exchange,
  options: SseCompletionOptions = {},
): StreamStage {
  return new SseCompletionStage(exchange, resolveSettings(options));
}

// --- the request side ---------------------------------------------------------------------------

type BodyCarrier = IncomingMessage & { body?: unknown };

/** The body can be read without consuming the request stream (a parser ran, or it is over). */
function bodyAvailable(exchange: Exchange): boolean {
  const req = exchange.req as BodyCarrier;
  return exchange.body !== undefined || req.body !== undefined || req.readableEnded;
}

/** The upstream ids of the input items that carry an id the relay rewrote. */
async function lookupAliases(
  aliases: ItemIdAliases,
  input: unknown,
  types: ReadonlySet<string>,
): Promise<Map<string, string | null>> {
  const found = new Map<string, string | null>();
  if (aliases instanceof MemoryItemIdAliases && aliases.size === 0) return found;
  const ids = rewritableInputIds(input, types);
  if (ids.length === 0) return found;
  const values = await Promise.all(ids.map((id) => aliases.get(id)));
  ids.forEach((id, index) => {
    const value = values[index];
    if (value !== undefined) found.set(id, value);
  });
  return found;
}

/**
 * Before dispatch: maps input ids the relay rewrote back to the upstream's, and turns a
 * non-stream request into a stream when aggregating. Returns without a promise when there is
 * nothing to do.
 */
function prepareRequest(exchange: Exchange, settings: Settings): Promise<void> | undefined {
  const mapsIds = settings.aliases !== undefined && settings.idTypes.size > 0;
  const wantsBody =
    settings.aggregate || (mapsIds && (settings.readBody || bodyAvailable(exchange)));
  if (!wantsBody) return undefined;
  return (async () => {
    try {
      await readRequestBody(exchange, { maxBodyBytes: settings.maxBodyBytes });
    } catch (error) {
      // Only looking for ids to map back, in a body a parser already read: the upstream judges
      // a body the relay cannot read. Aggregating needs the body, and `readBody` consumed it.
      if (settings.aggregate || settings.readBody) throw error;
      return;
    }
    const body = exchange.body as ResponseCreateBody;
    let next: ResponseCreateBody | undefined;
    if (mapsIds && settings.aliases !== undefined) {
      // A store that cannot answer only means the ids go upstream as the client sent them.
      const upstreamIds = await lookupAliases(settings.aliases, body.input, settings.idTypes).catch(
        () => new Map<string, string | null>(),
      );
      const input = restoreInputIds(body.input, upstreamIds, settings.restore);
      if (input !== undefined) {
        next = { ...body, input };
        exchange.annotations[ANNOTATION.inputIdsRestored] = upstreamIds.size;
      }
    }
    const aggregate = settings.aggregate && body.stream !== true;
    if (aggregate) next = { ...(next ?? body), stream: true };
    if (next !== undefined) {
      exchange.replaceBody(next);
      // A stock proxy with http-proxy-middleware's `fixRequestBody` sends `req.body`.
      const req = exchange.req as BodyCarrier;
      if (isJsonObject(req.body)) req.body = next;
    }
    if (aggregate) {
      exchange.aggregateStream = true;
      exchange.annotations[ANNOTATION.aggregated] = true;
    }
  })();
}

/**
 * Well-formed streams and whole completions (DESIGN §7). Mount it in front of your proxy on the
 * Responses route.
 *
 * @example
 * ```ts
 * app.post('/v1/responses', sseCompletion(),
 *   createProxyMiddleware({ target: 'https://api.openai.com', changeOrigin: true }));
 * // a stream-only upstream (the Codex backend) serving non-stream clients too:
 * app.post('/v1/responses', express.json(), sseCompletion({ aggregateNonStreaming: true }),
 *   relayProxy({ target: 'https://chatgpt.com/backend-api/codex' }));
 * ```
 */
export function sseCompletion(options: SseCompletionOptions = {}): RelayMiddleware {
  const settings = resolveSettings(options);
  return (req, res, next) => {
    const exchange = getExchange(req, res);
    installStage(
      req,
      res,
      SSE_COMPLETION_STAGE,
      () => new SseCompletionStage(exchange, settings),
      options,
    );
    const pending = prepareRequest(exchange, settings);
    if (pending === undefined) {
      next();
      return;
    }
    pending.then(
      () => next(),
      (error: unknown) => next(error),
    );
  };
}
