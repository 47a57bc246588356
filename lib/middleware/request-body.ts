/**
 * Reads the JSON body of a Responses request once, whether or not the gateway mounted a body
 * parser in front of the relay, with a size bound. The parsed body goes on the exchange; the
 * client's bytes are kept so an unchanged body reaches the upstream byte for byte.
 */
import type { IncomingMessage } from 'node:http';
import { exceedsJsonDepth, MAX_JSON_DEPTH } from '../protocol/json-depth';
import { relayError } from '../protocol/relay-errors';
import { isJsonObject, type ResponseCreateBody } from '../protocol/types';
import type { Exchange } from './exchange';

export interface ReadBodyOptions {
  /** Largest body accepted, in bytes. @default 32 MiB */
  maxBodyBytes?: number;
}

export const DEFAULT_MAX_BODY_BYTES = 32 * 1024 * 1024;

export { MAX_JSON_DEPTH, exceedsJsonDepth };

type BodyCarrier = IncomingMessage & { body?: unknown; _body?: boolean };

function collect(req: IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length']);
    if (Number.isFinite(declared) && declared > limit) {
      reject(relayError('payload_too_large', { limit }));
      req.resume();
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let failed = false;
    req.on('data', (chunk: Buffer) => {
      if (failed) return;
      size += chunk.length;
      if (size > limit) {
        failed = true;
        reject(relayError('payload_too_large', { limit }));
        return;
      }
      chunks.push(chunk);
    });
    req.once('end', () => {
      if (!failed) resolve(Buffer.concat(chunks, size));
    });
    req.once('error', (error) => {
      if (!failed) reject(error);
      failed = true;
    });
  });
}

function isJsonContentType(value: string | undefined): boolean {
  if (value === undefined || value === '') return true;
  const type = value.split(';')[0]?.trim().toLowerCase() ?? '';
  return type === 'application/json' || type.endsWith('+json');
}

/**
 * Makes sure `exchange.body` holds the request's JSON object. Uses what a body parser already
 * produced (`req.body` as an object or a Buffer); otherwise reads the stream itself. Rejects with
 * a `RelayError` (invalid JSON, not an object, too large, wrong content type).
 */
export async function readRequestBody(
  exchange: Exchange,
  options: ReadBodyOptions = {},
): Promise<void> {
  if (exchange.body !== undefined) return;
  const req = exchange.req as BodyCarrier;
  const limit = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  let raw: Buffer | undefined;
  let parsed: unknown;
  if (req.body !== undefined && !Buffer.isBuffer(req.body) && typeof req.body !== 'string') {
    parsed = req.body;
    if (isJsonObject(parsed) && Object.keys(parsed).length === 0 && req._body !== true) {
      // Express 5 leaves `req.body` undefined, but some stacks default it to {} without parsing.
      parsed = undefined;
    }
  }
  if (parsed === undefined) {
    if (!isJsonContentType(req.headers['content-type'])) {
      throw relayError('unsupported_media_type', {
        contentType: req.headers['content-type'] ?? '',
      });
    }
    if (Buffer.isBuffer(req.body)) raw = req.body;
    else if (typeof req.body === 'string') raw = Buffer.from(req.body);
    else if (req.readableEnded) raw = Buffer.alloc(0);
    else raw = await collect(req, limit);
    if (raw.length > limit) throw relayError('payload_too_large', { limit });
    try {
      parsed = JSON.parse(raw.toString('utf8'));
    } catch {
      throw relayError('invalid_json');
    }
  }
  if (!isJsonObject(parsed)) throw relayError('invalid_json', { reason: 'not_an_object' });
  // Each level of nesting takes a byte of the text: a shorter body cannot nest too deep.
  const tooShortToNest = raw !== undefined && raw.length <= MAX_JSON_DEPTH;
  if (!tooShortToNest && exceedsJsonDepth(parsed, MAX_JSON_DEPTH))
    throw relayError('invalid_json', { reason: 'too_deep' });
  exchange.body = parsed as ResponseCreateBody;
  exchange.clientBody = exchange.body;
  exchange.rawBody = raw;
  // The stream is consumed now: a stock proxy after the relay sends `req.body` through
  // http-proxy-middleware's `fixRequestBody` (relayProxyOptions() needs nothing).
  req.body ??= parsed;
}
