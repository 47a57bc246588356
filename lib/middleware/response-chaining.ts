/**
 * `responseChaining()`: `previous_response_id` continuation, ownership and upstream affinity
 * across gateway instances (DESIGN.md §3–§5), on top of a SessionStore.
 *
 * - **stateless** upstreams (`store: false`, the Codex backend): a continuation is expanded into
 *   the stored history plus the new input and sent without the anchor; the new response is stored
 *   with its parent link, so the client can chain on any earlier id (forks work).
 * - **stateful** upstreams (api.openai.com): the anchor passes through once the tenant is known to
 *   own it, and the request is pinned to the upstream that produced the anchor (see
 *   `chainingRouter`).
 * - Without an anchor, a `session` (a header such as Codex's `session-id`) lets a tool-output
 *   turn continue the session's last response; a self-contained input is never given an anchor.
 * - Only completed responses become anchors, and a turn is stored before the client receives its
 *   terminal event (a `beforeFinal` hook), never after.
 *
 * Mount it after the body parser (or none: it reads the body itself) and before the proxy.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { normalizeInput, toInputItems } from '../protocol/items';
import { isSelfContained } from '../protocol/pairing';
import { isRelayError, relayError, type RelayError } from '../protocol/relay-errors';
import {
  isJsonObject,
  type ResponseCreateBody,
  type ResponseItem,
  type ResponseObject,
} from '../protocol/types';
import type {
  ExpandedChain,
  SessionHeadChain,
  SessionStore,
  StoredResponse,
} from '../store/session-store';
import {
  answersPendingCalls,
  applyPairingPolicy,
  extendsHistory,
  replayableHistory,
  resolveItemReferences,
  VALIDATE_POLICIES,
  wantsEncryptedReasoning,
  withEncryptedReasoningInclude,
  type ValidatePolicy,
} from './chaining-expand';
import {
  classifyStoreFailure,
  describeStoreError,
  loggerFor,
  safeLogger,
  type ChainingLogger,
  type StoreErrorPolicy,
  type StoreFailure,
} from './chaining-reply';
import { sendEnvelope, sendRelayError } from './send-error';
import { pinUpstream, routedUpstream } from './chaining-router';
import type { SessionResolver } from './chaining-session';
import { createTenantResolver, type TenantOptions } from './chaining-tenant';
import { getExchange, type Exchange } from './exchange';
import { readRequestBody } from './request-body';
import type { ResponsePipelineOptions } from './response-pipeline';
import { tapResponse } from './response-tap';
import type { RelayMiddleware } from './stream-transform';

/** How the upstream keeps conversations (DESIGN.md §3). */
export type ChainingMode = 'stateless' | 'stateful';

export interface ResponseChainingOptions extends TenantOptions {
  /** Where conversations live: `MemorySessionStore` (one process) or `RedisSessionStore` (many). */
  store: SessionStore;
  /** `stateless`: the relay keeps the conversation; `stateful`: the upstream does. */
  upstreamMode: ChainingMode;
  /**
   * The session of a request, for turns that omit `previous_response_id` (see
   * `sessionFromHeaders()`). None by default.
   */
  session?: SessionResolver;
  /**
   * Tool-call pairing of the sequence the upstream will see (history + input): `reject` answers
   * OpenAI's own 400, `repair` answers unanswered calls with an "aborted" output and drops orphan
   * outputs (logged), `off` sends everything as is.
   * @default 'reject'
   */
  validate?: ValidatePolicy;
  /**
   * When the store fails on a read: `fail-closed` answers 503 `relay_store_unavailable`;
   * `fail-open` forwards requests without an anchor unchained, and answers an anchored request
   * `previous_response_not_found` (the ownership of an anchor is never skipped; clients answer
   * that error by resending their full history). A failed write after a completed turn is logged
   * under both policies (see docs/middleware/response-chaining.md).
   * @default 'fail-closed'
   */
  onStoreError?: StoreErrorPolicy;
  /**
   * The name of the upstream that serves a request, stored with the response for affinity.
   * @default the name `chainingRouter` chose, else the anchor's upstream
   */
  upstreamName?: (req: IncomingMessage) => string | undefined;
  /**
   * Stateless mode with a session: a full transcript (no anchor, self-contained) that extends the
   * session's stored conversation is stored as its continuation (only the new items), so storage
   * stays linear for clients that resend their whole history every turn (Codex over HTTP). Costs
   * two reads per such turn (session head, chain); `false` stores every transcript as a new root.
   * @default true
   */
  linkTranscripts?: boolean;
  /**
   * Where warnings and errors go (a pino-compatible logger), `false` for nowhere.
   * @default pino-http's `req.log`, else JSON lines on stderr
   */
  logger?: ChainingLogger | false;
  /** Largest request body read. @default 32 MiB */
  maxBodyBytes?: number;
  /** Options of the response pipeline when it taps the response. */
  pipeline?: ResponsePipelineOptions;
}

/** What one turn will store once it completed. */
interface TurnPlan {
  parentId: string | null;
  /** The items this turn adds to the conversation (the delta as sent, or a root's full input). */
  storedInput: ResponseItem[];
  /** The upstream holding the anchor, when known. */
  pinned: string | undefined;
}

interface TurnContext {
  req: IncomingMessage;
  res: ServerResponse;
  exchange: Exchange;
  body: ResponseCreateBody;
  tenant: string;
  anchor: string | undefined;
  sessionKey: string | undefined;
  log: ChainingLogger;
}

type Read<T> = { ok: true; value: T } | { ok: false; failure: StoreFailure; error: unknown };

const HANDLED = new WeakSet<Exchange>();

/** The stage that shows the client its own anchor in the Response objects of a stateless turn. */
export const ANCHOR_ECHO_STAGE = 'chaining-anchor-echo';

/**
 * A stateless upstream never saw the anchor, so its Response objects say
 * `previous_response_id: null`; the API echoes the anchor, and so does the relay.
 */
function echoAnchor(exchange: Exchange, anchor: string): void {
  exchange.addStage(ANCHOR_ECHO_STAGE, () => ({
    name: ANCHOR_ECHO_STAGE,
    onEvent(event, emit) {
      const response = event.response;
      if (!isJsonObject(response) || response.previous_response_id === anchor) {
        emit(event);
        return;
      }
      emit({ ...event, response: { ...response, previous_response_id: anchor } });
    },
  }));
}

const OWNER = 'responseChaining';

function pathnameOf(req: IncomingMessage): string {
  const url = (req as IncomingMessage & { originalUrl?: string }).originalUrl ?? req.url ?? '/';
  const path = url.split('?')[0] ?? '/';
  return path.length > 1 && path.endsWith('/') ? path.slice(0, -1) : path;
}

/** `POST …/responses` (the create endpoint), not `…/responses/compact`, `…/{id}/cancel`, …. */
export function isCreateRequest(req: IncomingMessage): boolean {
  if ((req.method ?? 'GET').toUpperCase() !== 'POST') return false;
  const path = pathnameOf(req);
  return path === '/' || path.endsWith('/responses');
}

function checkOptions(options: ResponseChainingOptions): void {
  const store = options?.store as Partial<SessionStore> | undefined;
  if (
    typeof store?.putResponse !== 'function' ||
    typeof store.getResponse !== 'function' ||
    typeof store.expandChain !== 'function' ||
    typeof store.getSessionHead !== 'function' ||
    typeof store.setSessionHead !== 'function'
  ) {
    throw new TypeError(`${OWNER}: options.store must be a SessionStore`);
  }
  if (options.upstreamMode !== 'stateless' && options.upstreamMode !== 'stateful') {
    throw new TypeError(`${OWNER}: options.upstreamMode must be 'stateless' or 'stateful'`);
  }
  if (options.validate !== undefined && !VALIDATE_POLICIES.includes(options.validate)) {
    throw new TypeError(
      `${OWNER}: options.validate must be one of ${VALIDATE_POLICIES.join(', ')}`,
    );
  }
  if (
    options.onStoreError !== undefined &&
    options.onStoreError !== 'fail-closed' &&
    options.onStoreError !== 'fail-open'
  ) {
    throw new TypeError(`${OWNER}: options.onStoreError must be 'fail-closed' or 'fail-open'`);
  }
}

/**
 * The chaining middleware. See the module notes and docs/middleware/response-chaining.md.
 *
 * @example
 * const store = new RedisSessionStore({ redis: new Redis(process.env.REDIS_URL!) });
 * app.post('/v1/responses', express.json({ limit: '32mb' }),
 *   responseChaining({ store, upstreamMode: 'stateless', tenantSecret: process.env.RELAY_TENANT_SECRET,
 *     session: sessionFromHeaders() }),
 *   createProxyMiddleware({ target, changeOrigin: true, ...relayProxyOptions() }));
 */
export function responseChaining(options: ResponseChainingOptions): RelayMiddleware {
  checkOptions(options);
  const resolveTenant = createTenantResolver(OWNER, options);
  const store = options.store;
  const mode = options.upstreamMode;
  const policy: ValidatePolicy = options.validate ?? 'reject';
  const onStoreError: StoreErrorPolicy = options.onStoreError ?? 'fail-closed';
  const linkTranscripts = options.linkTranscripts !== false;
  // The `logger` option made safe once: it is called from store hooks and promise callbacks,
  // where a throw would leave the request unanswered.
  const logger = options.logger ? safeLogger(options.logger) : options.logger;

  async function read<T>(operation: () => Promise<T>, anchor: string): Promise<Read<T>> {
    try {
      return { ok: true, value: await operation() };
    } catch (error) {
      return { ok: false, failure: classifyStoreFailure(error, anchor), error };
    }
  }

  /** Answers a failed read of an anchor; always ends the request. */
  function failAnchorRead(ctx: TurnContext, failed: Read<unknown> & { ok: false }): void {
    const { failure } = failed;
    const details = { tenant: ctx.tenant, mode, ...describeStoreError(failed.error) };
    if (failure.kind === 'answer') {
      ctx.log.warn(details, 'response chaining: the stored history is over a cap');
      sendRelayError(ctx.exchange, failure.error);
      return;
    }
    if (onStoreError === 'fail-open') {
      ctx.log.warn(
        details,
        'response chaining: store unavailable, anchor answered as not found (fail-open)',
      );
      sendRelayError(
        ctx.exchange,
        relayError('previous_response_not_found', { id: ctx.anchor ?? '' }),
      );
      return;
    }
    ctx.log.error(details, 'response chaining: store unavailable (fail-closed)');
    sendRelayError(ctx.exchange, relayError('store_unavailable'));
  }

  /**
   * A failed read of a session head: fail-closed answers 503 (returns false), fail-open goes on
   * without the session (returns true).
   */
  function failSessionRead(ctx: TurnContext, failed: Read<unknown> & { ok: false }): boolean {
    const details = { tenant: ctx.tenant, mode, ...describeStoreError(failed.error) };
    if (onStoreError === 'fail-open') {
      ctx.log.warn(details, 'response chaining: store unavailable, session ignored (fail-open)');
      return true;
    }
    ctx.log.error(details, 'response chaining: store unavailable (fail-closed)');
    sendRelayError(ctx.exchange, relayError('store_unavailable'));
    return false;
  }

  function notFound(ctx: TurnContext, anchor: string): void {
    ctx.log.debug?.({ tenant: ctx.tenant, mode }, 'response chaining: anchor not found');
    sendRelayError(ctx.exchange, relayError('previous_response_not_found', { id: anchor }));
  }

  /** Looks up the session's last response; `undefined` when answered (503), `null` for none. */
  async function sessionHead(ctx: TurnContext): Promise<string | null | undefined> {
    if (ctx.sessionKey === undefined) return null;
    const sessionKey = ctx.sessionKey;
    const head = await read(() => store.getSessionHead(ctx.tenant, sessionKey), '');
    if (!head.ok) return failSessionRead(ctx, head) ? null : undefined;
    return head.value;
  }

  /**
   * The session's last response and its chain (one round trip when the store offers
   * `expandSessionHead`); `undefined` when answered (503), `null` for none. A chain that cannot be
   * expanded (gone, over a cap) comes back as `chain: null`: the turn goes on without it.
   */
  async function sessionChain(ctx: TurnContext): Promise<SessionHeadChain | null | undefined> {
    const { tenant, sessionKey } = ctx;
    if (sessionKey === undefined) return null;
    const combined = store.expandSessionHead;
    if (combined !== undefined) {
      const found = await read(() => combined.call(store, tenant, sessionKey), '');
      if (found.ok) return found.value;
      if (found.failure.kind === 'unavailable' && !failSessionRead(ctx, found)) return undefined;
      return null;
    }
    const head = await sessionHead(ctx);
    if (head === undefined || head === null) return head;
    const expanded = await read(() => store.expandChain(tenant, head), head);
    if (expanded.ok) return { head, chain: expanded.value };
    if (expanded.failure.kind === 'unavailable' && !failSessionRead(ctx, expanded)) {
      return undefined;
    }
    return null;
  }

  async function planStateless(ctx: TurnContext): Promise<TurnPlan | undefined> {
    const { body, tenant, anchor, exchange } = ctx;
    const delta = normalizeInput(body.input);
    const selfContained = anchor === undefined && isSelfContained(delta);
    let chain: ExpandedChain | null = null;
    let parentId: string | null = null;
    let headChain: ExpandedChain | null = null;
    let head: string | null = null;

    if (anchor !== undefined) {
      const expanded = await read(() => store.expandChain(tenant, anchor), anchor);
      if (!expanded.ok) return void failAnchorRead(ctx, expanded);
      if (expanded.value === null) return void notFound(ctx, anchor);
      chain = expanded.value;
      parentId = anchor;
    } else if (ctx.sessionKey !== undefined && (linkTranscripts || !selfContained)) {
      const found = await sessionChain(ctx);
      if (found === undefined) return undefined;
      if (found !== null && found.chain !== null) {
        head = found.head;
        headChain = found.chain;
        if (!selfContained && answersPendingCalls(delta, headChain.items)) {
          chain = headChain;
          parentId = head;
          exchange.annotations.chain_injected = true;
        }
      }
    }

    const replay = chain ? replayableHistory(chain.items) : { items: [], dropped: 0 };
    // References into the conversation become the items they name; what the upstream could only
    // refuse (unknown references, reasoning known by id alone) is left out.
    const refs = resolveItemReferences(delta, chain ? chain.items : []);
    const cleaned = replayableHistory(refs.items);
    const decision = applyPairingPolicy(cleaned.items, replay.items, policy);
    if (!decision.ok) {
      ctx.log.info?.(
        { tenant, mode, message: decision.error.error.message },
        'response chaining: input rejected (tool-call pairing)',
      );
      sendEnvelope(exchange, decision.error.status, {
        error: decision.error.error,
      });
      return undefined;
    }
    if (replay.dropped > 0 || cleaned.dropped > 0 || refs.dropped.length > 0 || refs.resolved > 0) {
      ctx.log.info?.(
        {
          tenant,
          droppedHistoryItems: replay.dropped,
          droppedInputItems: cleaned.dropped,
          droppedReferences: refs.dropped.length,
          resolvedReferences: refs.resolved,
        },
        'response chaining: history adapted for a store=false upstream',
      );
    }
    if (decision.added.length > 0 || decision.dropped.length > 0) {
      ctx.log.warn(
        { tenant, added: decision.added.length, dropped: decision.dropped.length },
        'response chaining: input repaired (tool-call pairing)',
      );
    }
    const sent = decision.items;

    // A full transcript that extends the session's conversation is stored as its continuation
    // (storage stays linear); one that does not (compacted, edited) starts a new root.
    let storedInput = sent;
    if (
      chain === null &&
      headChain !== null &&
      head !== null &&
      extendsHistory(headChain.items, sent)
    ) {
      parentId = head;
      storedInput = sent.slice(headChain.items.length);
      exchange.annotations.chain_linked = true;
    }

    const full = chain ? [...replay.items, ...sent] : sent;
    const inputChanged = chain !== null || sent !== delta;
    const include = wantsEncryptedReasoning(body, full)
      ? withEncryptedReasoningInclude(body.include)
      : undefined;
    if (
      inputChanged ||
      include !== undefined ||
      body.store !== false ||
      Object.prototype.hasOwnProperty.call(body, 'previous_response_id')
    ) {
      const next: ResponseCreateBody = { ...body, store: false };
      delete next.previous_response_id;
      if (inputChanged) next.input = full;
      if (include !== undefined) next.include = include;
      exchange.replaceBody(next);
    }

    const source = chain ?? (parentId !== null ? headChain : null);
    const leaf = source?.records[source.records.length - 1];
    if (chain) exchange.annotations.chain_depth = chain.depth;
    return { parentId, storedInput, pinned: leaf?.upstream };
  }

  async function planStateful(ctx: TurnContext): Promise<TurnPlan | undefined> {
    const { body, tenant, anchor, exchange } = ctx;
    const delta = normalizeInput(body.input);
    let anchorRecord: StoredResponse | null = null;
    let parentId: string | null = null;
    let injected = false;

    if (anchor !== undefined) {
      const found = await read(() => store.getResponse(tenant, anchor), anchor);
      if (!found.ok) return void failAnchorRead(ctx, found);
      if (found.value === null) return void notFound(ctx, anchor);
      anchorRecord = found.value;
      parentId = anchor;
    } else if (ctx.sessionKey !== undefined && !isSelfContained(delta)) {
      const head = await sessionHead(ctx);
      if (head === undefined) return undefined;
      if (head !== null) {
        const found = await read(() => store.getResponse(tenant, head), head);
        if (!found.ok) {
          if (!failSessionRead(ctx, found)) return undefined;
        } else if (found.value !== null && answersPendingCalls(delta, found.value.output)) {
          anchorRecord = found.value;
          parentId = head;
          injected = true;
          exchange.annotations.chain_injected = true;
        }
      }
    }

    // The upstream looks at the anchor's output and the new input: the anchor's calls must be
    // answered, and every output must answer one of them (or a call of the input).
    const decision = applyPairingPolicy(delta, anchorRecord?.output ?? [], policy);
    if (!decision.ok) {
      ctx.log.info?.(
        { tenant, mode, message: decision.error.error.message },
        'response chaining: input rejected (tool-call pairing)',
      );
      sendEnvelope(exchange, decision.error.status, {
        error: decision.error.error,
      });
      return undefined;
    }
    if (decision.added.length > 0 || decision.dropped.length > 0) {
      ctx.log.warn(
        { tenant, added: decision.added.length, dropped: decision.dropped.length },
        'response chaining: input repaired (tool-call pairing)',
      );
    }
    const repaired = decision.items !== delta;
    if (injected || repaired) {
      const next: ResponseCreateBody = { ...body };
      if (injected && parentId !== null) next.previous_response_id = parentId;
      if (repaired) next.input = decision.items;
      exchange.replaceBody(next);
    }
    return { parentId, storedInput: decision.items, pinned: anchorRecord?.upstream };
  }

  function storeHook(ctx: TurnContext, plan: TurnPlan) {
    return async (final: ResponseObject, exchange: Exchange): Promise<void> => {
      if (final.status !== 'completed' || typeof final.id !== 'string' || final.id === '') {
        exchange.annotations.chain_stored = false;
        return;
      }
      const record: StoredResponse = {
        tenant: ctx.tenant,
        id: final.id,
        parentId: plan.parentId,
        input: plan.storedInput,
        output: toInputItems(Array.isArray(final.output) ? final.output : []),
        createdAt: Date.now(),
      };
      const model = typeof final.model === 'string' ? final.model : ctx.body.model;
      if (typeof model === 'string') record.model = model;
      if (typeof ctx.body.instructions === 'string') record.instructions = ctx.body.instructions;
      // The record and the session head in one atomic round trip when the store offers it.
      const withHead = ctx.sessionKey !== undefined ? store.putSessionResponse : undefined;
      try {
        // Inside the try: an `upstreamName` option that throws loses the turn like a store error.
        const upstream = options.upstreamName?.(ctx.req) ?? routedUpstream(ctx.req) ?? plan.pinned;
        if (upstream !== undefined && upstream !== '') record.upstream = upstream;
        if (withHead !== undefined) await withHead.call(store, record, ctx.sessionKey as string);
        else await store.putResponse(record);
      } catch (error) {
        exchange.annotations.chain_stored = false;
        ctx.log.error(
          { tenant: ctx.tenant, mode, responseId: final.id, ...describeStoreError(error) },
          'response chaining: the turn completed but could not be stored; a continuation from it will be answered previous_response_not_found',
        );
        return;
      }
      exchange.annotations.chain_stored = true;
      if (ctx.sessionKey === undefined || withHead !== undefined) return;
      try {
        await store.setSessionHead(ctx.tenant, ctx.sessionKey, final.id);
      } catch (error) {
        ctx.log.error(
          { tenant: ctx.tenant, mode, responseId: final.id, ...describeStoreError(error) },
          'response chaining: the session head could not be moved',
        );
      }
    };
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<boolean> {
    const exchange = getExchange(req, res);
    if (HANDLED.has(exchange)) return true;
    HANDLED.add(exchange);
    const log = loggerFor(logger, req);
    try {
      await readRequestBody(exchange, { maxBodyBytes: options.maxBodyBytes });
    } catch (error) {
      if (!isRelayError(error)) throw error;
      sendRelayError(exchange, error as RelayError);
      return false;
    }
    const body = exchange.body as ResponseCreateBody;
    const rawAnchor = body.previous_response_id;
    // A malformed anchor is the upstream's to refuse; nothing is chained or stored for it.
    if (rawAnchor != null && typeof rawAnchor !== 'string') return true;
    const anchor = typeof rawAnchor === 'string' && rawAnchor !== '' ? rawAnchor : undefined;
    if (anchor !== undefined && body.conversation != null) {
      sendRelayError(exchange, relayError('previous_response_with_conversation'));
      return false;
    }
    const tenant = resolveTenant(req);
    if (tenant === undefined) {
      sendRelayError(exchange, relayError('missing_credentials'));
      return false;
    }
    const session = options.session?.(req);
    const ctx: TurnContext = {
      req,
      res,
      exchange,
      body,
      tenant,
      anchor,
      sessionKey: typeof session === 'string' && session !== '' ? session : undefined,
      log,
    };
    exchange.annotations.tenant = tenant;
    exchange.annotations.chain_mode = mode;

    const plan = mode === 'stateless' ? await planStateless(ctx) : await planStateful(ctx);
    if (plan === undefined) return false;
    // Only an anchor the tenant owns is annotated (another tenant's id never reaches the logs).
    if (plan.parentId !== null) exchange.annotations.chain_parent = plan.parentId;
    if (plan.pinned !== undefined) {
      pinUpstream(req, plan.pinned);
      exchange.annotations.upstream = plan.pinned;
    }
    if (mode === 'stateless' && anchor !== undefined) echoAnchor(exchange, anchor);
    exchange.beforeFinal.push(storeHook(ctx, plan));
    if (mode === 'stateful' && plan.parentId !== null) {
      exchange.anchorLost.push(freshFromHistory(ctx, plan.parentId, plan.storedInput));
    }
    tapResponse(exchange, options.pipeline);
    return true;
  }

  /**
   * The upstream lost an anchor the relay knows (expired, another account, deleted): the next
   * attempt may go without it, from the relay's own stored history, but only when that history
   * plus the new input is self-contained. A tool-output delta whose calls the relay cannot replay
   * is never sent without its anchor: the client then sees `previous_response_not_found` and
   * resends its full history itself.
   */
  function freshFromHistory(ctx: TurnContext, anchor: string, delta: ResponseItem[]) {
    return async (exchange: Exchange): Promise<boolean> => {
      let chain: ExpandedChain | null;
      try {
        chain = await store.expandChain(ctx.tenant, anchor);
      } catch {
        return false;
      }
      if (chain === null) return false;
      const full = [...replayableHistory(chain.items).items, ...delta];
      if (!isSelfContained(full)) return false;
      const next: ResponseCreateBody = { ...(exchange.body ?? ctx.body), input: full };
      delete next.previous_response_id;
      exchange.replaceBody(next);
      exchange.annotations.chain_fresh_retry = true;
      ctx.log.warn(
        { tenant: ctx.tenant, mode, items: full.length },
        'response chaining: the upstream lost the anchor; retrying fresh from the stored history',
      );
      return true;
    };
  }

  return (req, res, next) => {
    if (!isCreateRequest(req)) {
      next();
      return;
    }
    handle(req, res).then(
      (proceed) => {
        if (proceed) next();
      },
      (error: unknown) => {
        // The client is answered first: nothing a logger does can leave it waiting.
        sendRelayError(getExchange(req, res), relayError('internal_error', { cause: error }));
        try {
          loggerFor(logger, req).error(
            { error: error instanceof Error ? error.message : String(error) },
            'response chaining: unexpected failure',
          );
        } catch {
          // A failing logger never breaks a response.
        }
      },
    );
  };
}
