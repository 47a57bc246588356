/**
 * `responseOwnership()`: the ownership guard of the per-response routes (DESIGN.md §3): `GET` and
 * `DELETE /v1/responses/{id}`, `GET /v1/responses/{id}/input_items` and
 * `POST /v1/responses/{id}/cancel`. The tenant must own the id; otherwise the answer is exactly
 * OpenAI's 404 for an unknown id, so another tenant's response is indistinguishable from none.
 *
 * - stateful: an owned request is pinned to the upstream that produced the response and passed
 *   on; a successful DELETE also removes the relay's record.
 * - stateless: the upstream stores nothing, so the relay answers from its store: GET (a Response
 *   rebuilt from the record), DELETE, `input_items`, and cancel (400: every stored response is a
 *   synchronous one).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { relayError } from '../protocol/relay-errors';
import type { ResponseItem, ResponseObject } from '../protocol/types';
import type { SessionStore, StoredResponse } from '../store/session-store';
import { describeStoreError, loggerFor, safeLogger, type ChainingLogger } from './chaining-reply';
import { sendEnvelope, sendJson, sendRelayError } from './send-error';
import { pinUpstream } from './chaining-router';
import { createTenantResolver, type TenantOptions } from './chaining-tenant';
import { getExchange } from './exchange';
import type { RelayMiddleware } from './stream-transform';

export interface ResponseOwnershipOptions extends TenantOptions {
  store: SessionStore;
  /** As given to `responseChaining`. */
  upstreamMode: 'stateless' | 'stateful';
  /**
   * Stateless mode: answer GET, DELETE, `input_items` and cancel from the store (the upstream
   * has none of them). `false` passes owned requests on instead.
   * @default true
   */
  serveFromStore?: boolean;
  /** As for `responseChaining`. @default pino-http's `req.log`, else JSON lines on stderr */
  logger?: ChainingLogger | false;
}

/** A per-response request: which response, and what is asked of it. */
export interface ResponseRoute {
  id: string;
  action: 'retrieve' | 'delete' | 'input_items' | 'cancel';
}

const ROUTE = /\/responses\/([^/]+)(?:\/(input_items|cancel))?\/?$/;

/**
 * The per-response route of a request, or `undefined` for anything else (including
 * `POST /v1/responses`, `/compact` and `/input_tokens`).
 */
export function parseResponseRoute(
  method: string | undefined,
  url: string,
): ResponseRoute | undefined {
  const path = url.split('?')[0] ?? '';
  const match = ROUTE.exec(path);
  if (!match?.[1]) return undefined;
  let id: string;
  try {
    id = decodeURIComponent(match[1]);
  } catch {
    id = match[1];
  }
  const verb = (method ?? 'GET').toUpperCase();
  const sub = match[2];
  if (sub === undefined && verb === 'GET') return { id, action: 'retrieve' };
  if (sub === undefined && verb === 'DELETE') return { id, action: 'delete' };
  if (sub === 'input_items' && verb === 'GET') return { id, action: 'input_items' };
  if (sub === 'cancel' && verb === 'POST') return { id, action: 'cancel' };
  return undefined;
}

/** A Response object rebuilt from a stored record (what GET answers in stateless mode). */
export function responseFromRecord(record: StoredResponse): ResponseObject {
  return {
    id: record.id,
    object: 'response',
    created_at: Math.floor(record.createdAt / 1000),
    status: 'completed',
    error: null,
    incomplete_details: null,
    instructions: record.instructions ?? null,
    model: record.model ?? '',
    output: record.output,
    previous_response_id: record.parentId,
    store: false,
    usage: null,
  };
}

/** `GET …/input_items`: the record's own input, paginated like the API (`limit`, `order`, `after`). */
export function inputItemsPage(record: StoredResponse, url: string): Record<string, unknown> {
  const query = new URLSearchParams(url.includes('?') ? url.slice(url.indexOf('?') + 1) : '');
  const requested = Number(query.get('limit') ?? 20);
  const limit = Number.isInteger(requested) ? Math.min(100, Math.max(1, requested)) : 20;
  const ordered: ResponseItem[] =
    query.get('order') === 'asc' ? [...record.input] : [...record.input].reverse();
  const after = query.get('after');
  let items = ordered;
  if (after !== null) {
    const at = ordered.findIndex((item) => item.id === after);
    items = at >= 0 ? ordered.slice(at + 1) : [];
  }
  const data = items.slice(0, limit);
  const idOf = (item: ResponseItem | undefined): string | null =>
    typeof item?.id === 'string' ? item.id : null;
  return {
    object: 'list',
    data,
    first_id: idOf(data[0]),
    last_id: idOf(data[data.length - 1]),
    has_more: items.length > limit,
  };
}

function originalUrl(req: IncomingMessage): string {
  return (req as IncomingMessage & { originalUrl?: string }).originalUrl ?? req.url ?? '/';
}

/**
 * The ownership guard. Mount it on the per-response routes, in front of the proxy:
 *
 * @example
 * app.use('/v1/responses', responseOwnership({ store, upstreamMode: 'stateful', tenantSecret }));
 * app.all('/v1/responses/*rest', createProxyMiddleware({ router, changeOrigin: true }));
 */
export function responseOwnership(options: ResponseOwnershipOptions): RelayMiddleware {
  const store = options?.store as Partial<SessionStore> | undefined;
  if (typeof store?.getResponse !== 'function' || typeof store.deleteResponse !== 'function') {
    throw new TypeError('responseOwnership: options.store must be a SessionStore');
  }
  if (options.upstreamMode !== 'stateless' && options.upstreamMode !== 'stateful') {
    throw new TypeError(
      "responseOwnership: options.upstreamMode must be 'stateless' or 'stateful'",
    );
  }
  const resolveTenant = createTenantResolver('responseOwnership', options);
  // Made safe once: it is called from promise callbacks, where a throw would leave the request
  // unanswered.
  const logger = options.logger ? safeLogger(options.logger) : options.logger;
  const serveFromStore = options.upstreamMode === 'stateless' && options.serveFromStore !== false;

  async function handle(
    req: IncomingMessage,
    res: ServerResponse,
    route: ResponseRoute,
  ): Promise<boolean> {
    const exchange = getExchange(req, res);
    const log = loggerFor(logger, req);
    const tenant = resolveTenant(req);
    if (tenant === undefined) {
      sendRelayError(exchange, relayError('missing_credentials'));
      return false;
    }
    exchange.annotations.tenant = tenant;
    let record: StoredResponse | null;
    try {
      record = await options.store.getResponse(tenant, route.id);
    } catch (error) {
      // Ownership cannot be checked: never fail open here.
      log.error(
        { tenant, action: route.action, ...describeStoreError(error) },
        'response ownership: store unavailable',
      );
      sendRelayError(exchange, relayError('store_unavailable'));
      return false;
    }
    if (record === null) {
      log.debug?.({ tenant, action: route.action }, 'response ownership: not found');
      sendRelayError(exchange, relayError('response_not_found', { id: route.id }));
      return false;
    }
    if (serveFromStore) {
      const headers = { 'x-request-id': exchange.requestId };
      switch (route.action) {
        case 'retrieve':
          sendJson(res, 200, responseFromRecord(record), headers);
          return false;
        case 'input_items':
          sendJson(res, 200, inputItemsPage(record, originalUrl(req)), headers);
          return false;
        case 'cancel':
          sendEnvelope(exchange, 400, {
            error: {
              message: 'Cannot cancel a synchronous response.',
              type: 'invalid_request_error',
              param: null,
              code: null,
            },
          });
          return false;
        case 'delete':
          try {
            await options.store.deleteResponse(tenant, route.id);
          } catch (error) {
            log.error(
              { tenant, action: route.action, ...describeStoreError(error) },
              'response ownership: store unavailable',
            );
            sendRelayError(exchange, relayError('store_unavailable'));
            return false;
          }
          sendJson(res, 200, { id: record.id, object: 'response.deleted', deleted: true }, headers);
          return false;
      }
    }
    if (record.upstream !== undefined) {
      pinUpstream(req, record.upstream);
      exchange.annotations.upstream = record.upstream;
    }
    if (route.action === 'delete') {
      const owned = record;
      res.once('finish', () => {
        if (res.statusCode < 200 || res.statusCode >= 300) return;
        // Called in a promise: a store that throws synchronously must not throw out of `finish`.
        Promise.resolve()
          .then(() => options.store.deleteResponse(tenant, owned.id))
          .catch((error: unknown) => {
            log.error(
              { tenant, action: 'delete', ...describeStoreError(error) },
              'response ownership: the upstream deleted the response but the relay record remains',
            );
          });
      });
    }
    return true;
  }

  return (req, res, next) => {
    const route = parseResponseRoute(req.method, originalUrl(req));
    if (route === undefined) {
      next();
      return;
    }
    handle(req, res, route).then(
      (proceed) => {
        if (proceed) next();
      },
      (error: unknown) => {
        // The client is answered first: nothing a logger does can leave it waiting.
        sendRelayError(getExchange(req, res), relayError('internal_error'));
        try {
          loggerFor(logger, req).error(
            { error: error instanceof Error ? error.message : String(error) },
            'response ownership: unexpected failure',
          );
        } catch {
          // A failing logger never breaks a response.
        }
      },
    );
  };
}
