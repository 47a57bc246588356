/**
 * The fake Responses API server: routing, authentication, the request log, behaviour selection,
 * and writing answers (JSON, errors, and streams event by event, with lockstep gates).
 */
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import zlib from 'node:zlib';
import { isJsonObject, type JsonObject, type ResponseItem } from '../../../lib/protocol/types';
import {
  parseBehaviour,
  resolveBehaviour,
  type GeneratePlan,
  type HttpErrorPlan,
} from './behaviours';
import {
  cannotCancelSynchronous,
  envelope,
  incorrectApiKey,
  invalidJson,
  invalidUrl,
  missingApiKey,
  responseNotFound,
  type Rejection,
} from './errors';
import { frame, type ResponseContext } from './events';
import { GateController } from './gate';
import { generate } from './generation';
import { mintId, mintRequestId } from './ids';
import { storedInputItem } from './items';
import { ReasoningSeal } from './seal';
import { FakeResponseStore } from './store';
import { planStream, type StreamPlan } from './stream-plan';
import type {
  Behaviour,
  FakeMode,
  FakeUpstream,
  FakeUpstreamOptions,
  Gate,
  GateOptions,
  RecordedRequest,
  StoredFakeResponse,
} from './types';
import { validateCreate, type ValidRequest } from './validation';

/** Header through which a request can carry its own behaviour (JSON), bypassing the queue. */
export const SCRIPT_HEADER = 'x-fake-script';

const ROUTE =
  /^(?:\/v1|\/backend-api\/codex)?\/responses(?:\/([^/]+)(?:\/(input_items|cancel))?)?\/?$/;

/** One request/response exchange: its log entry and how it ends. */
interface Exchange {
  record: RecordedRequest;
  req: http.IncomingMessage;
  res: http.ServerResponse;
  /** Resolves when the client left or the fake is closing: stop writing. */
  gone: Promise<void>;
  isGone(): boolean;
  /** The fake itself ends the socket early (cut, reset): not a client abort. */
  selfClosed: boolean;
}

/** A request body as sent with `content-encoding` gzip, deflate or br (throws otherwise). */
function decode(raw: Buffer, encoding: string | undefined): Buffer {
  switch (encoding?.trim().toLowerCase()) {
    case undefined:
    case '':
    case 'identity':
      return raw;
    case 'gzip':
      return zlib.gunzipSync(raw);
    case 'deflate':
      return zlib.inflateSync(raw);
    case 'br':
      return zlib.brotliDecompressSync(raw);
    default:
      throw new Error(`unsupported content-encoding ${encoding}`);
  }
}

function sleep(ms: number, abort: Promise<void>): Promise<void> {
  if (ms <= 0) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    void abort.then(() => {
      clearTimeout(timer);
      resolve();
    });
  });
}

class FakeUpstreamServer implements FakeUpstream {
  url = '';
  readonly mode: FakeMode;
  readonly requests: RecordedRequest[] = [];
  private readonly queue: Behaviour[] = [];
  private defaultBehaviour: Behaviour = { kind: 'auto' };
  private readonly store = new FakeResponseStore();
  private readonly seal: ReasoningSeal;
  private readonly sockets = new Set<Socket>();
  private readonly requestWaiters: Array<() => void> = [];
  private readonly pendingGates: GateController[] = [];
  private readonly namedGates = new Map<string, GateController>();
  private readonly server: http.Server;
  private closing = false;
  private closed: Promise<void> | undefined;
  private signalShutdown: () => void = () => undefined;
  private readonly shutdown: Promise<void>;

  constructor(private readonly options: FakeUpstreamOptions) {
    this.mode = options.mode ?? 'stateful';
    this.seal = new ReasoningSeal(options.name);
    this.shutdown = new Promise((resolve) => (this.signalShutdown = resolve));
    this.server = http.createServer((req, res) => this.accept(req, res));
    this.server.on('connection', (socket) => {
      this.sockets.add(socket);
      socket.once('close', () => this.sockets.delete(socket));
    });
  }

  get responses(): ReadonlyMap<string, StoredFakeResponse> {
    return this.store.responses;
  }

  get connections(): number {
    return this.sockets.size;
  }

  get pending(): number {
    return this.queue.length;
  }

  listen(): Promise<void> {
    const host = this.options.host ?? '127.0.0.1';
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.options.port ?? 0, host, () => {
        const { port } = this.server.address() as AddressInfo;
        this.url = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
        resolve();
      });
    });
  }

  script(...behaviours: Behaviour[]): void {
    this.queue.push(...behaviours.map((b) => parseBehaviour(b)));
  }

  setDefault(behaviour: Behaviour): void {
    this.defaultBehaviour = parseBehaviour(behaviour);
  }

  waitForRequests(n: number): Promise<void> {
    return new Promise((resolve) => {
      const check = () => {
        if (this.requests.length >= n) resolve();
        else this.requestWaiters.push(check);
      };
      check();
    });
  }

  gate(name?: string, options?: GateOptions): Gate {
    if (name === undefined) {
      const gate = new GateController(undefined, options);
      this.pendingGates.push(gate);
      return gate;
    }
    let gate = this.namedGates.get(name);
    if (gate === undefined) {
      gate = new GateController(name, options);
      this.namedGates.set(name, gate);
    }
    return gate;
  }

  close(): Promise<void> {
    if (this.closed) return this.closed;
    this.closing = true;
    this.signalShutdown();
    for (const gate of [...this.pendingGates, ...this.namedGates.values()]) gate.finish();
    this.closed = new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      for (const socket of this.sockets) socket.destroy();
      this.server.closeAllConnections();
    });
    return this.closed;
  }

  // --- request log ------------------------------------------------------------------------------

  private accept(req: http.IncomingMessage, res: http.ServerResponse): void {
    const requestId = mintRequestId();
    res.setHeader('x-request-id', requestId);
    res.setHeader('openai-version', '2020-10-01');
    const chunks: Buffer[] = [];
    let recorded: Exchange | undefined;
    let resolveClosed: () => void = () => undefined;
    const closedPromise = new Promise<void>((resolve) => (resolveClosed = resolve));
    let gone = false;
    let signalGone: () => void = () => undefined;
    const gonePromise = new Promise<void>((resolve) => (signalGone = resolve));
    void this.shutdown.then(() => {
      gone = true;
      signalGone();
    });

    const record = (): Exchange => {
      if (recorded) return recorded;
      const rawBody = Buffer.concat(chunks);
      let body: unknown;
      if (rawBody.length > 0) {
        try {
          body = JSON.parse(decode(rawBody, req.headers['content-encoding']).toString('utf8'));
        } catch {
          body = undefined;
        }
      }
      const method = req.method ?? 'GET';
      const path = req.url ?? '/';
      const attempt =
        1 +
        this.requests.filter(
          (r) => r.method === method && r.path === path && r.rawBody.equals(rawBody),
        ).length;
      const entry: RecordedRequest = {
        index: this.requests.length,
        method,
        path,
        headers: { ...req.headers },
        body,
        rawBody,
        at: Date.now(),
        attempt,
        requestId,
        socketClosedEarly: false,
        closed: closedPromise,
      };
      recorded = {
        record: entry,
        req,
        res,
        gone: gonePromise,
        isGone: () => gone,
        selfClosed: false,
      };
      this.requests.push(entry);
      for (const wake of this.requestWaiters.splice(0)) wake();
      return recorded;
    };

    res.once('close', () => {
      const exchange = record();
      if (!res.writableFinished && !exchange.selfClosed) {
        if (this.closing) {
          exchange.record.outcome ??= 'server_closed';
        } else {
          exchange.record.socketClosedEarly = true;
          exchange.record.outcome ??= 'client_closed';
        }
      }
      gone = true;
      signalGone();
      resolveClosed();
    });
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.once('end', () => {
      const exchange = record();
      this.route(exchange).catch((error: unknown) => {
        if (!res.headersSent && !exchange.isGone()) {
          this.reject(exchange, {
            status: 500,
            body: { ...envelope(`Fake upstream failure: ${String(error)}`, 'server_error') },
            tag: 'fake_failure',
          });
        } else {
          res.destroy();
        }
      });
    });
  }

  // --- answers ----------------------------------------------------------------------------------

  private answerJson(exchange: Exchange, status: number, body: unknown, outcome?: string): void {
    const { res, record } = exchange;
    if (exchange.isGone()) return;
    const payload = JSON.stringify(body);
    res.writeHead(status, {
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(payload),
    });
    res.end(payload);
    record.status = status;
    record.outcome = outcome ?? `http:${status}`;
  }

  private reject(exchange: Exchange, rejection: Rejection): void {
    const outcome = `http:${rejection.status}${rejection.tag ? `:${rejection.tag}` : ''}`;
    this.answerJson(exchange, rejection.status, rejection.body, outcome);
  }

  private async answerHttpError(exchange: Exchange, plan: HttpErrorPlan): Promise<void> {
    await sleep(plan.delayMs, exchange.gone);
    const { res, record } = exchange;
    if (exchange.isGone()) return;
    if (plan.contentType !== undefined) res.setHeader('content-type', plan.contentType);
    for (const [name, value] of Object.entries(plan.headers)) {
      res.setHeader(name, value);
      if (name.toLowerCase() === 'x-request-id') record.requestId = value;
    }
    res.setHeader('content-length', Buffer.byteLength(plan.body));
    res.writeHead(plan.status);
    res.end(plan.body);
    record.status = plan.status;
    record.outcome = `http:${plan.status}`;
  }

  // --- routing ----------------------------------------------------------------------------------

  private checkAuth(exchange: Exchange): Rejection | undefined {
    const required = this.options.requireAuth;
    if (required === undefined || required === false) return undefined;
    const header = exchange.req.headers.authorization;
    const match = typeof header === 'string' ? /^Bearer\s+(.*)$/i.exec(header) : null;
    const token = match?.[1]?.trim() ?? '';
    if (token === '') return missingApiKey();
    if (typeof required === 'string' && token !== required) return incorrectApiKey(token);
    return undefined;
  }

  private async route(exchange: Exchange): Promise<void> {
    const { req } = exchange;
    const method = req.method ?? 'GET';
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    const auth = this.checkAuth(exchange);
    if (auth) return this.reject(exchange, auth);
    const match = ROUTE.exec(path);
    if (match === null) return this.reject(exchange, invalidUrl(method, path));
    const [, id, action] = match;
    if (id === undefined) {
      if (method === 'POST') return this.create(exchange);
      return this.reject(exchange, invalidUrl(method, path));
    }
    const stored = this.store.get(id);
    if (action === undefined && method === 'GET') {
      if (!stored) return this.reject(exchange, responseNotFound(id));
      return this.answerJson(exchange, 200, stored.response);
    }
    if (action === undefined && method === 'DELETE') {
      if (!this.store.delete(id)) return this.reject(exchange, responseNotFound(id));
      return this.answerJson(exchange, 200, { id, object: 'response.deleted', deleted: true });
    }
    if (action === 'input_items' && method === 'GET') {
      if (!stored) return this.reject(exchange, responseNotFound(id));
      return this.answerJson(exchange, 200, this.inputItems(stored, req.url ?? ''));
    }
    if (action === 'cancel' && method === 'POST') {
      // Background mode is not modelled, so every stored response is a synchronous one.
      return this.reject(exchange, stored ? cannotCancelSynchronous() : responseNotFound(id));
    }
    return this.reject(exchange, invalidUrl(method, path));
  }

  private inputItems(stored: StoredFakeResponse, url: string): JsonObject {
    const query = new URL(url, 'http://fake').searchParams;
    const limit = Math.min(100, Math.max(1, Number(query.get('limit') ?? 20) || 20));
    const order = query.get('order') === 'asc' ? 'asc' : 'desc';
    let items = order === 'asc' ? [...stored.input] : [...stored.input].reverse();
    const after = query.get('after');
    if (after !== null) {
      const at = items.findIndex((item) => item.id === after);
      items = at >= 0 ? items.slice(at + 1) : [];
    }
    const data = items.slice(0, limit);
    return {
      object: 'list',
      data,
      first_id: data[0]?.id ?? null,
      last_id: data[data.length - 1]?.id ?? null,
      has_more: items.length > limit,
    };
  }

  /** The behaviour for this request: its header, else the queue's head, else the default. */
  private pickBehaviour(
    exchange: Exchange,
  ): { behaviour: Behaviour; fromQueue: boolean } | Rejection {
    const header = exchange.req.headers[SCRIPT_HEADER];
    if (typeof header === 'string') {
      try {
        return { behaviour: parseBehaviour(JSON.parse(header)), fromQueue: false };
      } catch (error) {
        return {
          status: 400,
          body: {
            ...envelope(
              `Invalid ${SCRIPT_HEADER} header: ${(error as Error).message}`,
              'invalid_request_error',
              SCRIPT_HEADER,
            ),
          },
          tag: 'fake_script',
        };
      }
    }
    const head = this.queue[0];
    return head
      ? { behaviour: head, fromQueue: true }
      : { behaviour: this.defaultBehaviour, fromQueue: false };
  }

  private async create(exchange: Exchange): Promise<void> {
    const { record } = exchange;
    if (record.body === undefined) return this.reject(exchange, invalidJson());
    const picked = this.pickBehaviour(exchange);
    if ('status' in picked) return this.reject(exchange, picked);
    const plan = resolveBehaviour(picked.behaviour);
    // Scripted HTTP errors answer before any validation, like a rate limiter or a proxy in front.
    if (plan.kind === 'http') {
      if (picked.fromQueue) this.queue.shift();
      record.behaviour = picked.behaviour;
      return this.answerHttpError(exchange, plan);
    }
    const validation = validateCreate(record.body, {
      mode: this.mode,
      store: this.store,
      seal: this.seal,
    });
    if (!validation.ok) return this.reject(exchange, validation.rejection);
    if (picked.fromQueue) this.queue.shift();
    record.behaviour = picked.behaviour;
    return this.generateAnswer(exchange, validation.request, plan);
  }

  private async generateAnswer(
    exchange: Exchange,
    request: ValidRequest,
    plan: GeneratePlan,
  ): Promise<void> {
    const conversation = [...request.history, ...request.resolvedInput];
    const ctx: ResponseContext = {
      id: mintId('resp'),
      createdAt: Math.floor(Date.now() / 1000),
      body: request.body,
      stored: request.persist,
      conversation,
    };
    const items = generate(plan.content, { body: request.body, conversation, seal: this.seal });
    const streamOptions = isJsonObject(request.body.stream_options)
      ? request.body.stream_options
      : {};
    const stream = planStream({
      ctx,
      items,
      modifiers: plan.modifiers,
      ending: plan.ending,
      sparseDefault: this.options.sparseCompletion ?? false,
      obfuscate: streamOptions.include_obfuscation !== false,
    });
    exchange.record.responseId = ctx.id;
    if (request.persist) {
      const input: ResponseItem[] = request.resolvedInput.map(storedInputItem);
      this.store.save({
        id: ctx.id,
        request: request.body,
        input,
        context: [...request.history, ...input],
        output: stream.output,
        response: stream.final,
        createdAt: Date.now(),
      });
    }
    if (request.stream) return this.writeStream(exchange, stream, plan);
    return this.answerNonStream(exchange, stream, plan);
  }

  private async answerNonStream(
    exchange: Exchange,
    stream: StreamPlan,
    plan: GeneratePlan,
  ): Promise<void> {
    await sleep(plan.modifiers.delayMs, exchange.gone);
    if (exchange.isGone()) return;
    const { ending } = plan;
    const socket = exchange.req.socket;
    switch (ending.kind) {
      case 'cut':
        exchange.selfClosed = true;
        exchange.record.outcome = `cut:${ending.mode}`;
        if (ending.mode === 'reset') socket.resetAndDestroy();
        else socket.end();
        return;
      case 'stall':
        exchange.record.outcome = 'stalled';
        return exchange.gone;
      case 'error':
        return this.answerJson(
          exchange,
          500,
          envelope(
            ending.error.message,
            ending.error.type,
            ending.error.param ?? null,
            ending.error.code,
          ),
          'http:500',
        );
      default:
        return this.answerJson(exchange, 200, stream.final, `http:200:${stream.final.status}`);
    }
  }

  /**
   * A named `lockstep` binds its named gate; otherwise the oldest gate made by `gate()` binds to
   * this stream; an unnamed `lockstep` with no such gate binds the gate named `default`.
   */
  private bindGate(plan: GeneratePlan): GateController | undefined {
    const name = plan.modifiers.gate;
    let gate: GateController | undefined;
    if (name !== undefined && name !== '') gate = this.gate(name) as GateController;
    else gate = this.pendingGates.shift();
    if (gate === undefined && name === '') gate = this.gate('default') as GateController;
    gate?.bind();
    return gate;
  }

  private async writeStream(
    exchange: Exchange,
    stream: StreamPlan,
    plan: GeneratePlan,
  ): Promise<void> {
    const { res, record } = exchange;
    if (exchange.isGone()) return;
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache',
      connection: 'keep-alive',
      'openai-processing-ms': '42',
    });
    record.status = 200;
    const gate = this.bindGate(plan);
    const write = (chunk: string) =>
      new Promise<void>((resolve) => {
        res.write(chunk, () => resolve());
        void exchange.gone.then(resolve);
      });
    try {
      for (let index = 0; index <= stream.events.length; index += 1) {
        for (const raw of stream.injections.get(index) ?? []) {
          if (exchange.isGone()) return;
          await write(raw);
        }
        const event = stream.events[index];
        if (event === undefined) break;
        if (gate) await gate.permit(exchange.gone);
        await sleep(plan.modifiers.delayMs, exchange.gone);
        if (exchange.isGone()) return;
        await write(frame(event));
        gate?.wrote();
      }
    } finally {
      gate?.finish();
    }
    if (exchange.isGone()) return;
    record.outcome = `stream:${stream.outcome}`;
    switch (stream.endAction) {
      case 'end':
        res.end();
        return;
      case 'reset':
        exchange.selfClosed = true;
        res.socket?.resetAndDestroy();
        return;
      case 'stall':
      case 'hold':
        if (stream.endAction === 'hold') record.outcome = `stream:${stream.outcome}:held_open`;
        await exchange.gone;
        return;
    }
  }
}

/** Starts a fake Responses API on a loopback port. */
export async function startFakeUpstream(options: FakeUpstreamOptions = {}): Promise<FakeUpstream> {
  const server = new FakeUpstreamServer(options);
  await server.listen();
  return server;
}
