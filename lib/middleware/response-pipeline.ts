/**
 * The one place where an upstream response becomes the client's response. It parses an SSE
 * stream once, runs its events through the stages the middlewares registered, accumulates what the
 * client sees, awaits the before-final hooks before a terminal event is released, and writes with
 * back-pressure. Non-2xx bodies are buffered (bounded) for the error responders; 2xx JSON bodies
 * are buffered only when a hook needs the final Response; everything else streams through.
 */
import type { OutgoingHttpHeaders } from 'node:http';
import { ResponseAccumulator } from '../protocol/accumulator';
import { errorFromStreamEvent } from '../protocol/errors';
import { relayError, type RelayError } from '../protocol/relay-errors';
import {
  SseParser,
  serializeSseComment,
  serializeSseMessage,
  serializeStreamEvent,
} from '../protocol/sse';
import {
  isJsonObject,
  isTerminalEventType,
  type OpenAIErrorBody,
  type ResponseObject,
  type StreamEvent,
} from '../protocol/types';
import type { Exchange, RetryPlan, StageContext, StreamEnd, StreamStage } from './exchange';
import { streamFailureEvents } from './stream-failure';

/** Where the pipeline writes: the client's response (or, in tap mode, its original methods). */
export interface ClientSink {
  writeHead(status: number, headers: OutgoingHttpHeaders): void;
  /** Returns false when the client is congested; `onDrain` then fires once it is not. */
  write(chunk: string | Buffer): boolean;
  end(): void;
  onDrain(listener: () => void): void;
  readonly closed: boolean;
}

export interface ResponsePipelineOptions {
  /** Largest error body kept for the error responders; the rest is dropped. @default 64 KiB */
  maxErrorBodyBytes?: number;
  /** Largest JSON body buffered for the before-final hooks; larger bodies stream through. @default 32 MiB */
  maxJsonBodyBytes?: number;
}

/** `refused`: the response cannot be relayed at all; the client gets one of the relay's errors. */
type Mode = 'sse' | 'error' | 'json' | 'passthrough' | 'refused';

type QueueItem =
  | { kind: 'event'; event: StreamEvent; data: string }
  | { kind: 'raw'; text: string }
  | { kind: 'comment'; text: string };

function headerValue(headers: OutgoingHttpHeaders, name: string): string | undefined {
  const value = headers[name];
  if (Array.isArray(value)) return value[0];
  return value === undefined ? undefined : String(value);
}

export function isEventStream(contentType: string | undefined): boolean {
  return (contentType ?? '').toLowerCase().startsWith('text/event-stream');
}

export function isJsonType(contentType: string | undefined): boolean {
  const type = (contentType ?? '').split(';')[0]?.trim().toLowerCase() ?? '';
  return type === 'application/json' || type.endsWith('+json');
}

function isThenable(value: unknown): value is PromiseLike<void> {
  return typeof (value as PromiseLike<void> | undefined)?.then === 'function';
}

export class ResponsePipeline {
  private mode: Mode = 'passthrough';
  private status = 200;
  private headers: OutgoingHttpHeaders = {};
  private headWritten = false;
  private readonly stages: StreamStage[];
  private readonly accumulator = new ResponseAccumulator();
  private terminalSent = false;
  private parser: SseParser | undefined;
  private readonly queue: QueueItem[] = [];
  private out: string[] = [];
  private pumping: Promise<void> | undefined;
  private sinkCongested = false;
  private drainListeners: Array<() => void> = [];
  private buffered: Buffer[] = [];
  private bufferedBytes = 0;
  private bufferTruncated = false;
  private failure: Error | undefined;
  private aggregate = false;
  private lastSequence = -1;
  private finished: Promise<void> | undefined;
  private upstreamAbort: (() => void) | undefined;
  private retryHandler: ((plan: RetryPlan) => void) | undefined;
  /** True while the prelude is held back (nothing reaches the client; the attempt may be retried). */
  private holding = false;
  private holdTimer: NodeJS.Timeout | undefined;
  private abandoned = false;
  private readonly maxErrorBodyBytes: number;
  private readonly maxJsonBodyBytes: number;
  private readonly context: StageContext;
  /** Set when the response is refused (see `begin`): what the client gets instead. */
  private refusal: RelayError | undefined;

  constructor(
    private readonly exchange: Exchange,
    private readonly sink: ClientSink,
    options: ResponsePipelineOptions = {},
  ) {
    this.maxErrorBodyBytes = options.maxErrorBodyBytes ?? 64 * 1024;
    this.maxJsonBodyBytes = options.maxJsonBodyBytes ?? 32 * 1024 * 1024;
    let stages: StreamStage[] = [];
    try {
      stages = exchange.stages.map((stage) => stage.create(exchange));
    } catch {
      // A stage factory that throws: nothing can be relayed faithfully (see `begin`).
      this.refusal = relayError('internal_error');
    }
    this.stages = stages;
    const isTerminalSent = (): boolean => this.terminalSent;
    this.context = {
      exchange,
      accumulator: this.accumulator,
      get terminalSent() {
        return isTerminalSent();
      },
      abortUpstream: (end) => this.abort(end),
    };
    sink.onDrain(() => this.handleSinkDrain());
  }

  /** Tells the pipeline how to stop the upstream body (destroy its connection). */
  setUpstreamAbort(abort: () => void): void {
    this.upstreamAbort = abort;
  }

  /**
   * Lets the pipeline abandon this attempt for a new one (proxy mode): while nothing has reached
   * the client, a stream that fails before any output is retried instead of delivered.
   */
  setRetryHandler(handler: (plan: RetryPlan) => void): void {
    this.retryHandler = handler;
  }

  /** Stops reading the upstream and ends the client's response through the stages. */
  abort(end: StreamEnd): void {
    if (this.finished) return;
    void this.finish(end).catch(() => undefined);
    this.upstreamAbort?.();
  }

  /** True once any byte (or the status line) reached the client. */
  get committed(): boolean {
    return this.headWritten;
  }

  /** What the client has seen of the stream so far. */
  get seen(): ResponseAccumulator {
    return this.accumulator;
  }

  /** Starts the response with the upstream's status and headers; picks how the body is handled. */
  begin(status: number, headers: OutgoingHttpHeaders): void {
    // Node's parser accepts any three digits; Node refuses to write a status outside 100-599.
    if (!Number.isInteger(status) || status < 100 || status > 599) {
      this.refusal ??= relayError('upstream_invalid_response');
    }
    if (this.refusal) {
      this.mode = 'refused';
      this.upstreamAbort?.();
      return;
    }
    this.status = status;
    this.headers = { ...headers };
    const policy = this.exchange.attemptPolicy;
    if (policy) Object.assign(this.headers, policy.finalHeaders(status));
    const contentType = headerValue(headers, 'content-type');
    if (
      status >= 200 &&
      status < 300 &&
      isEventStream(contentType) &&
      this.exchange.wantsResponse
    ) {
      this.mode = 'sse';
      this.aggregate = this.exchange.aggregateStream;
      this.holding = policy?.holdPrelude === true && this.retryHandler !== undefined;
      delete this.headers['content-length'];
      if (this.aggregate) {
        this.headers['content-type'] = 'application/json';
      } else {
        this.headers['cache-control'] = 'no-cache, no-transform';
        this.headers['x-accel-buffering'] = 'no';
      }
      this.parser = new SseParser({
        onMessage: (message) => {
          if (message.data === '' && message.event === undefined) return;
          let parsed: unknown;
          try {
            parsed = JSON.parse(message.data);
          } catch {
            parsed = undefined;
          }
          if (isJsonObject(parsed) && typeof parsed.type === 'string') {
            this.queue.push({ kind: 'event', event: parsed as StreamEvent, data: message.data });
          } else {
            this.queue.push({ kind: 'raw', text: serializeSseMessage(message) });
          }
        },
        onComment: (text) => this.queue.push({ kind: 'comment', text }),
      });
    } else if (status >= 400 && this.exchange.errorResponders.length > 0) {
      this.mode = 'error';
    } else if (
      status >= 200 &&
      status < 300 &&
      isJsonType(contentType) &&
      this.exchange.beforeFinal.length > 0
    ) {
      this.mode = 'json';
    } else {
      this.mode = 'passthrough';
    }
  }

  /** Feeds a chunk of the upstream body. Returns false when the caller should wait for `onDrain`. */
  push(chunk: Buffer): boolean {
    if (this.failure || this.finished) return true;
    switch (this.mode) {
      case 'sse':
        try {
          this.parser?.push(chunk);
        } catch (error) {
          // A line past the parser's bound: the stream cannot be read on; end it now.
          this.failure = error instanceof Error ? error : new Error(String(error));
          this.abort({ kind: 'error', error: this.failure });
          return true;
        }
        this.pump();
        break;
      case 'error':
        this.bufferBounded(chunk, this.maxErrorBodyBytes);
        break;
      case 'json':
        if (this.bufferedBytes + chunk.length > this.maxJsonBodyBytes) {
          // Too large to hold: stream it through unchanged, hooks are skipped.
          this.mode = 'passthrough';
          for (const piece of this.buffered) this.writeOut(piece);
          this.buffered = [];
          this.writeOut(chunk);
        } else {
          this.buffered.push(chunk);
          this.bufferedBytes += chunk.length;
        }
        break;
      case 'passthrough':
        this.writeOut(chunk);
        break;
      case 'refused':
        break;
    }
    return !this.blocked;
  }

  /** Registers a one-shot listener for when `push` may be called again after returning false. */
  onDrain(listener: () => void): void {
    if (!this.blocked) {
      listener();
      return;
    }
    this.drainListeners.push(listener);
  }

  /**
   * Ends the response: flushes stages (which may add final events) and closes the client side.
   * Idempotent: later calls (an upstream that also ended) return the first call's promise.
   */
  finish(end: StreamEnd): Promise<void> {
    this.finished ??= this.finishOnce(end);
    return this.finished;
  }

  private async finishOnce(end: StreamEnd): Promise<void> {
    if (this.abandoned) return;
    const effectiveEnd: StreamEnd = this.failure ? { kind: 'error', error: this.failure } : end;
    switch (this.mode) {
      case 'sse': {
        if (!this.failure) {
          try {
            this.parser?.end();
          } catch {
            // A truncated multi-byte tail is not an event; the end is reported to the stages.
          }
        }
        this.pump();
        await this.pumping;
        if (this.abandoned) return;
        // Cut before any output while held back: retried as it is, before a stage closes it.
        if (this.holding && !this.terminalSent && this.tryRetry(undefined)) return;
        for (let index = 0; index < this.stages.length; index += 1) {
          const stage = this.stages[index];
          if (!stage?.onEnd) continue;
          const emitted: StreamEvent[] = [];
          try {
            const result = stage.onEnd(effectiveEnd, (event) => emitted.push(event), this.context);
            if (isThenable(result)) await result;
            for (const event of emitted) {
              await this.runStages({ kind: 'event', event, data: '' }, index + 1, true);
              if (this.abandoned) return;
            }
          } catch (error) {
            // The client still gets a terminal event and the end of its stream.
            this.failInternally(error);
            break;
          }
        }
        if (this.holding && !this.terminalSent && this.tryRetry(undefined)) return;
        this.releaseHold();
        if (this.aggregate) this.writeAggregate();
        else this.flushOut();
        break;
      }
      case 'error':
        this.finishError();
        break;
      case 'json':
        await this.finishJson();
        break;
      case 'passthrough':
        break;
      case 'refused':
        this.writeError(this.refusal as RelayError);
        break;
    }
    if (this.abandoned) return;
    if (!this.headWritten) this.writeHead();
    this.sink.end();
  }

  private get blocked(): boolean {
    return this.sinkCongested || this.pumping !== undefined;
  }

  private handleSinkDrain(): void {
    this.sinkCongested = false;
    this.releaseDrain();
  }

  private releaseDrain(): void {
    if (this.blocked) return;
    const listeners = this.drainListeners;
    this.drainListeners = [];
    for (const listener of listeners) listener();
  }

  private bufferBounded(chunk: Buffer, limit: number): void {
    const room = limit - this.bufferedBytes;
    if (room <= 0) {
      this.bufferTruncated = true;
      return;
    }
    const piece = chunk.length > room ? chunk.subarray(0, room) : chunk;
    if (piece.length < chunk.length) this.bufferTruncated = true;
    this.buffered.push(piece);
    this.bufferedBytes += piece.length;
  }

  /** Processes queued SSE items; synchronous while no stage returns a promise. */
  private pump(): void {
    if (this.pumping) return;
    while (this.queue.length > 0) {
      const item = this.queue.shift() as QueueItem;
      let result: void | Promise<void>;
      try {
        result = this.runStages(item, 0, false);
      } catch (error) {
        // A stage threw: the stream fails here, never the process (the upstream chunk is being
        // delivered from an event handler, where an exception would be uncaught).
        this.failInternally(error);
        return;
      }
      if (isThenable(result)) {
        this.pumping = Promise.resolve(result)
          .then(() => this.continuePump())
          .catch((error: unknown) => this.failInternally(error));
        return;
      }
    }
    this.flushOut();
  }

  private async continuePump(): Promise<void> {
    while (this.queue.length > 0) {
      const item = this.queue.shift() as QueueItem;
      const result = this.runStages(item, 0, false);
      if (isThenable(result)) await result;
    }
    this.pumping = undefined;
    this.flushOut();
    this.releaseDrain();
  }

  /**
   * Runs one item through the stages from `from` onwards, then to the client. Returns a promise
   * only when a stage (or a before-final hook) did.
   */
  private runStages(item: QueueItem, from: number, synthesized: boolean): void | Promise<void> {
    if (item.kind !== 'event') {
      this.out.push(item.kind === 'comment' ? serializeSseComment(item.text) : item.text);
      return;
    }
    let batch: StreamEvent[] = [item.event];
    for (let index = from; index < this.stages.length; index += 1) {
      const stage = this.stages[index];
      if (!stage?.onEvent) continue;
      const next: StreamEvent[] = [];
      const emit = (event: StreamEvent): void => {
        next.push(event);
      };
      for (let position = 0; position < batch.length; position += 1) {
        const result = stage.onEvent(batch[position] as StreamEvent, emit, this.context);
        if (isThenable(result)) {
          return this.runStagesAsync(item, batch, next, index, position, result, synthesized);
        }
      }
      batch = next;
    }
    return this.deliverAll(batch, item, synthesized);
  }

  private async runStagesAsync(
    item: QueueItem & { kind: 'event' },
    batch: StreamEvent[],
    next: StreamEvent[],
    stageIndex: number,
    position: number,
    pending: PromiseLike<void>,
    synthesized: boolean,
  ): Promise<void> {
    await pending;
    const stage = this.stages[stageIndex] as StreamStage;
    const emit = (event: StreamEvent): void => {
      next.push(event);
    };
    for (let rest = position + 1; rest < batch.length; rest += 1) {
      const result = stage.onEvent?.(batch[rest] as StreamEvent, emit, this.context);
      if (isThenable(result)) await result;
    }
    let current = next;
    for (let index = stageIndex + 1; index < this.stages.length; index += 1) {
      const later = this.stages[index];
      if (!later?.onEvent) continue;
      const produced: StreamEvent[] = [];
      for (const event of current) {
        const result = later.onEvent(event, (e) => produced.push(e), this.context);
        if (isThenable(result)) await result;
      }
      current = produced;
    }
    await this.deliverAll(current, item, synthesized);
  }

  private deliverAll(
    events: StreamEvent[],
    origin: QueueItem & { kind: 'event' },
    synthesized: boolean,
  ): void | Promise<void> {
    for (let index = 0; index < events.length; index += 1) {
      const event = events[index] as StreamEvent;
      const raw = !synthesized && event === origin.event ? origin.data : undefined;
      const result = this.deliver(event, raw);
      if (isThenable(result)) {
        return (async () => {
          await result;
          for (let rest = index + 1; rest < events.length; rest += 1) {
            const r = this.deliver(events[rest] as StreamEvent, undefined);
            if (isThenable(r)) await r;
          }
        })();
      }
    }
  }

  /**
   * Sends one event to the client: gives it the next sequence number when its own does not
   * increase (inserted events, odd upstreams), accumulates it, awaits the hooks before a terminal.
   */
  private deliver(original: StreamEvent, originalRaw: string | undefined): void | Promise<void> {
    let event = original;
    let raw = originalRaw;
    const sequence = event.sequence_number;
    if (
      typeof sequence === 'number' &&
      Number.isInteger(sequence) &&
      sequence > this.lastSequence
    ) {
      this.lastSequence = sequence;
    } else {
      this.lastSequence += 1;
      event = { ...event, sequence_number: this.lastSequence };
      raw = undefined;
    }
    if (this.abandoned) return;
    this.accumulator.push(event);
    if (this.holding) {
      if (event.type === 'error' || event.type === 'response.failed') {
        if (!this.accumulator.outputStarted && this.tryRetry(errorFromStreamEvent(event))) return;
        this.releaseHold();
      } else if (this.accumulator.outputStarted || isTerminalEventType(event.type)) {
        this.releaseHold();
      } else {
        this.startHoldTimer();
      }
    }
    if (this.aggregate) {
      if (isTerminalEventType(event.type)) {
        this.terminalSent = true;
        const final = this.accumulator.finalResponse();
        if (final) {
          this.exchange.finalResponse = final;
          return this.runBeforeFinal(final);
        }
      }
      return;
    }
    if (isTerminalEventType(event.type)) {
      this.terminalSent = true;
      const final = this.accumulator.finalResponse();
      if (final) {
        this.exchange.finalResponse = final;
        const pending = this.runBeforeFinal(final);
        if (pending) {
          return pending.then(() => {
            this.out.push(serializeStreamEvent(event, raw));
          });
        }
      }
    }
    this.out.push(serializeStreamEvent(event, raw));
  }

  private runBeforeFinal(final: ResponseObject): Promise<void> | undefined {
    if (this.exchange.beforeFinal.length === 0) return undefined;
    // Flush what precedes the terminal so the client is not held back while the hooks run.
    this.flushOut();
    return this.runHooks(final);
  }

  /**
   * Awaits every before-final hook, in order. A hook that throws neither stops the others nor
   * holds the Response back (the upstream did answer): the exchange is annotated
   * `before_final_failed` and the client gets what the upstream sent.
   */
  private async runHooks(final: ResponseObject): Promise<void> {
    for (const hook of this.exchange.beforeFinal) {
      try {
        await hook(final, this.exchange);
      } catch {
        this.exchange.annotations.before_final_failed = true;
      }
    }
  }

  /** Aggregate mode: the whole stream answered as one JSON Response (or an error envelope). */
  private writeAggregate(): void {
    const final = this.exchange.finalResponse;
    if (final) {
      this.writeOut(JSON.stringify(final));
      return;
    }
    this.writeError(relayError('stream_incomplete'));
  }

  /** Answers one of the relay's own errors instead of the upstream's response. */
  private writeError(error: RelayError): void {
    this.status = error.status;
    this.headers = {
      ...this.exchange.attemptPolicy?.finalHeaders(error.status),
      'content-type': 'application/json',
      'x-request-id': this.exchange.requestId,
    };
    this.writeOut(JSON.stringify(error.toEnvelope()));
  }

  /**
   * A stage (or the pipeline itself) threw: the stream cannot go on faithfully. The client gets
   * the failure events (an OpenAI `error` and `response.failed`) and the end of the stream, never
   * a crash or a hang; the upstream is stopped (the rest of its stream would be dropped anyway).
   */
  private failInternally(error: unknown): void {
    this.pumping = undefined;
    this.queue.length = 0;
    this.failure = error instanceof Error ? error : new Error(String(error));
    this.holding = false;
    if (!this.terminalSent && !this.aggregate) {
      for (const event of streamFailureEvents(
        this.context,
        relayError('internal_error').toErrorBody(),
      )) {
        this.lastSequence += 1;
        const numbered: StreamEvent = { ...event, sequence_number: this.lastSequence };
        this.out.push(serializeStreamEvent(numbered));
      }
      this.terminalSent = true;
    }
    this.flushOut();
    this.releaseDrain();
    this.abort({ kind: 'error', error: this.failure });
  }

  /** Asks the retry guard whether this attempt should be retried; if so, abandons it. */
  private tryRetry(error: OpenAIErrorBody | undefined): boolean {
    const policy = this.exchange.attemptPolicy;
    const handler = this.retryHandler;
    if (!policy || !handler || this.headWritten || this.exchange.aborted) return false;
    const plan = policy.onStreamFailure(error);
    if (!plan) return false;
    this.abandoned = true;
    this.clearHoldTimer();
    this.queue.length = 0;
    this.out = [];
    this.upstreamAbort?.();
    handler(plan);
    return true;
  }

  private startHoldTimer(): void {
    if (this.holdTimer) return;
    const timeout = this.exchange.attemptPolicy?.preludeTimeoutMs ?? 0;
    this.holdTimer = setTimeout(() => {
      this.holdTimer = undefined;
      this.releaseHold();
      if (!this.pumping) this.flushOut();
    }, timeout);
  }

  private clearHoldTimer(): void {
    if (this.holdTimer) clearTimeout(this.holdTimer);
    this.holdTimer = undefined;
  }

  /** Ends the hold: what was held goes out with the next flush; no retry is possible after it. */
  private releaseHold(): void {
    this.holding = false;
    this.clearHoldTimer();
  }

  private flushOut(): void {
    if (this.holding || this.abandoned) return;
    if (this.out.length === 0) return;
    const text = this.out.length === 1 ? (this.out[0] as string) : this.out.join('');
    this.out = [];
    this.writeOut(text);
  }

  private writeHead(): void {
    this.headWritten = true;
    this.sink.writeHead(this.status, this.headers);
  }

  private writeOut(chunk: string | Buffer): void {
    if (this.abandoned) return;
    if (!this.headWritten) this.writeHead();
    if (this.sink.closed) return;
    if (!this.sink.write(chunk)) this.sinkCongested = true;
  }

  private finishError(): void {
    const body = Buffer.concat(this.buffered, this.bufferedBytes);
    this.buffered = [];
    const response = {
      status: this.status,
      headers: this.headers as Record<string, string | string[] | undefined>,
      body,
      truncated: this.bufferTruncated,
    };
    for (const responder of this.exchange.errorResponders) {
      const replacement = responder(response, this.exchange);
      if (!replacement) continue;
      const text = JSON.stringify(replacement.envelope);
      this.status = replacement.status;
      this.headers = {
        ...replacement.headers,
        'content-type': 'application/json',
        'content-length': String(Buffer.byteLength(text)),
      };
      this.writeOut(text);
      return;
    }
    if (body.length > 0) this.writeOut(body);
  }

  private async finishJson(): Promise<void> {
    const body = Buffer.concat(this.buffered, this.bufferedBytes);
    this.buffered = [];
    let parsed: unknown;
    try {
      parsed = JSON.parse(body.toString('utf8'));
    } catch {
      parsed = undefined;
    }
    if (isJsonObject(parsed) && parsed.object === 'response' && typeof parsed.id === 'string') {
      const final = parsed as ResponseObject;
      this.exchange.finalResponse = final;
      await this.runHooks(final);
    }
    if (body.length > 0) this.writeOut(body);
  }
}
