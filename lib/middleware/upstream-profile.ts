/**
 * `upstreamProfile(name | profile)`: makes any client's Responses request acceptable to one kind
 * of upstream (the public OpenAI API, the ChatGPT Codex backend, or a profile you describe).
 *
 * Per request it reads the body once (shared with the other relay middlewares), runs the
 * profile's pure `prepareRequest`, and replaces the body sent upstream only when something
 * changed — an untouched request still reaches the upstream byte for byte. What changed goes in
 * the exchange's annotations for the logs. Vendor stream events are dropped for the clients the
 * profile's policy says (a stream stage), and a client that did not ask for a stream while the
 * profile forced one is answered with one aggregated JSON Response.
 *
 * Annotations written (all strings/booleans, never secrets):
 * `profile`, `upstream_mode`, `client` (`codex` | `openai-sdk` | `other`), `profile_stripped`,
 * `profile_added`, `profile_changed` (comma-separated top-level fields), `profile_notes`
 * (`code: detail; …`), `vendor_events` (`pass` | `drop`), `vendor_events_dropped` (count),
 * `aggregate_stream` (true when a non-stream client is served from a forced stream).
 *
 * @example
 * ```ts
 * app.post(responsesRoutes(),
 *   upstreamProfile('codex'),
 *   createProxyMiddleware({
 *     target: 'https://chatgpt.com', changeOrigin: true,
 *     pathRewrite: profilePathRewrite(codexProfile()),
 *     ...relayProxyOptions(),
 *   }));
 * ```
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { toRelayError, type RelayError } from '../protocol/relay-errors';
import { isJsonObject, type ResponseCreateBody } from '../protocol/types';
import { createProfileContext } from '../profiles/clients';
import {
  diffBodies,
  prepareRequest,
  resolveProfile,
  type ProfileDefinition,
} from '../profiles/registry';
import type { ProfileName, UpstreamProfile, VendorEventPolicy } from '../profiles/types';
import { dropsVendorEvents, vendorEventPredicate } from '../profiles/vendor-events';
import { getExchange, type Exchange } from './exchange';
import { readRequestBody, type ReadBodyOptions } from './request-body';
import type { ResponsePipelineOptions } from './response-pipeline';
import { installStage, type RelayMiddleware } from './stream-transform';

/** The stage name of the vendor-event filter (one per exchange). */
export const VENDOR_EVENTS_STAGE = 'vendor-events';

export interface UpstreamProfileOptions extends ReadBodyOptions, ResponsePipelineOptions {
  /**
   * Overrides the profile's vendor-event policy.
   * @default the profile's `vendorEvents` (`openai`: 'pass', `codex`: 'auto')
   * @example 'drop'
   */
  vendorEvents?: VendorEventPolicy;
}

function writeError(res: ServerResponse, exchange: Exchange, error: RelayError): void {
  if (res.headersSent || res.writableEnded || res.destroyed) {
    if (!res.writableEnded) res.end();
    return;
  }
  const body = JSON.stringify(error.toEnvelope());
  res.writeHead(error.status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(body),
    'x-request-id': exchange.requestId,
    ...error.headers,
  });
  res.end(body);
}

const MAX_NOTES_LENGTH = 512;

/**
 * Applies an upstream profile. `profile` is a built-in name (`'openai'`, `'codex'`) or a profile
 * object (see `defineProfile`); an invalid one throws here, at mount time.
 */
export function upstreamProfile(
  profile: ProfileName | ProfileDefinition | UpstreamProfile,
  options: UpstreamProfileOptions = {},
): RelayMiddleware {
  const resolved = resolveProfile(profile);
  const policy = options.vendorEvents ?? resolved.vendorEvents;
  const isVendorEvent = vendorEventPredicate(resolved);

  return (req: IncomingMessage, res: ServerResponse, next: (error?: unknown) => void) => {
    if (req.method !== 'POST') {
      next();
      return;
    }
    const exchange = getExchange(req, res);
    readRequestBody(exchange, options).then(
      () => {
        try {
          apply(exchange, req, res);
        } catch (error) {
          writeError(res, exchange, toRelayError(error));
          return;
        }
        next();
      },
      (error: unknown) => writeError(res, exchange, toRelayError(error)),
    );
  };

  function apply(exchange: Exchange, req: IncomingMessage, res: ServerResponse): void {
    const body = exchange.body as ResponseCreateBody;
    const context = createProfileContext(req.headers);
    const prepared = prepareRequest(resolved, body, context);
    if (!isJsonObject(prepared)) {
      throw new TypeError(`profile '${resolved.name}' returned a body that is not an object`);
    }
    const annotations = exchange.annotations;
    annotations.profile = resolved.name;
    annotations.upstream_mode = resolved.upstreamMode;
    annotations.client = context.client;

    let aggregate = false;
    if (prepared !== body) {
      const diff = diffBodies(body, prepared);
      if (diff.removed.length > 0) annotations.profile_stripped = diff.removed.join(',');
      if (diff.added.length > 0) annotations.profile_added = diff.added.join(',');
      if (diff.changed.length > 0) annotations.profile_changed = diff.changed.join(',');
      if (diff.removed.length + diff.added.length + diff.changed.length > 0) {
        exchange.replaceBody(prepared);
        aggregate = body.stream !== true && prepared.stream === true;
      }
    }
    if (context.notes.length > 0) {
      const text = context.notes.map((note) => `${note.code}: ${note.detail}`).join('; ');
      annotations.profile_notes =
        text.length > MAX_NOTES_LENGTH ? `${text.slice(0, MAX_NOTES_LENGTH)}…` : text;
    }
    if (aggregate) {
      exchange.aggregateStream = true;
      annotations.aggregate_stream = true;
    }

    const drop = dropsVendorEvents(policy, context.client);
    annotations.vendor_events = drop ? 'drop' : 'pass';
    // An aggregated answer needs the stream parsed; vendor events never reach a JSON client.
    if (drop || aggregate) {
      installStage(
        req,
        res,
        VENDOR_EVENTS_STAGE,
        (stageExchange) => ({
          name: VENDOR_EVENTS_STAGE,
          onEvent(event, emit) {
            if (!isVendorEvent(event.type)) {
              emit(event);
              return;
            }
            const dropped = stageExchange.annotations.vendor_events_dropped;
            stageExchange.annotations.vendor_events_dropped =
              (typeof dropped === 'number' ? dropped : 0) + 1;
          },
        }),
        options,
      );
    }
  }
}
