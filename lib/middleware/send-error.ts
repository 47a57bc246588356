/**
 * Writes a JSON answer of the relay's own (an OpenAI error envelope, mostly) straight to the
 * client, bypassing the tap so it is never processed twice. Shared by every middleware that
 * answers a request itself.
 */
import type { ServerResponse } from 'node:http';
import type { RelayError } from '../protocol/relay-errors';
import type { OpenAIErrorEnvelope } from '../protocol/types';
import { originalMethods } from './client-sink';
import type { Exchange } from './exchange';

/** Writes `body` as JSON with `status` (only ends the response if it already started). */
export function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const raw = originalMethods(res);
  if (res.headersSent || res.writableEnded || res.destroyed) {
    if (!res.writableEnded) (raw.end as () => void).call(res);
    return;
  }
  const text = JSON.stringify(body);
  for (const [name, value] of Object.entries({
    ...headers,
    'content-type': 'application/json',
    'content-length': String(Buffer.byteLength(text)),
  })) {
    res.setHeader(name, value);
  }
  raw.writeHead.call(res, status);
  (raw.end as (chunk: string) => void).call(res, text);
}

/** Writes an OpenAI error envelope with the exchange's request id and attempt headers. */
export function sendEnvelope(
  exchange: Exchange,
  status: number,
  envelope: OpenAIErrorEnvelope,
  headers: Record<string, string> = {},
): void {
  sendJson(exchange.res, status, envelope, {
    ...exchange.attemptPolicy?.finalHeaders(status),
    ...headers,
    'x-request-id': exchange.requestId,
  });
}

/** Writes one of the relay's own errors. */
export function sendRelayError(exchange: Exchange, error: RelayError): void {
  sendEnvelope(exchange, error.status, error.toEnvelope(), error.headers);
}
