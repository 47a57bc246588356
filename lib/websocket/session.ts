/**
 * Sessions of WebSocket connections. Each turn the bridge posts carries the connection's session
 * key in `x-relay-session`, which the chaining middleware reads (with `bridgeSession()` as its
 * `session` option) to continue a turn that omits `previous_response_id`:
 *
 * - when the client names its conversation (Codex sends `session-id`, the thread id; others send
 *   `session_id`, `x-session-id`, `x-codex-turn-state`, …), the key is that value, so a client
 *   that reconnects — to this instance or another one sharing the store — finds its session again
 *   (and so does its HTTP fallback, which sends the same header);
 * - otherwise the key is `ws:<connection id>`, scoped to the one connection.
 *
 * Keys are scoped by tenant in the store: naming another client's session reaches nothing.
 */
import type { IncomingMessage } from 'node:http';
import {
  DEFAULT_SESSION_HEADERS,
  MAX_SESSION_KEY_LENGTH,
  sessionFromHeaders,
  type SessionResolver,
} from '../middleware/chaining-session';

/** The header carrying a bridged turn's session key to the HTTP route. */
export const BRIDGE_SESSION_HEADER = 'x-relay-session';

/**
 * The upgrade headers that name a client's conversation, in order of preference: the chaining
 * middleware's session headers, then Codex's sticky-routing token.
 */
export const AFFINITY_HEADERS: readonly string[] = Object.freeze([
  ...DEFAULT_SESSION_HEADERS,
  'x-codex-turn-state',
]);

const fromAffinityHeaders = sessionFromHeaders(AFFINITY_HEADERS);

/** The session key of a connection: the client's own session header, else `ws:<connectionId>`. */
export function connectionSessionKey(req: IncomingMessage, connectionId: string): string {
  return fromAffinityHeaders(req) ?? `ws:${connectionId}`;
}

/**
 * The chaining middleware's `session` option for a route the bridge posts to: the bridge's
 * `x-relay-session` header, else `fallback` (Codex-style session headers by default).
 *
 * @example
 * responseChaining({ store, upstreamMode: 'stateless', session: bridgeSession() })
 */
export function bridgeSession(fallback: SessionResolver = sessionFromHeaders()): SessionResolver {
  return (req) => {
    const raw = req.headers[BRIDGE_SESSION_HEADER];
    const value = (Array.isArray(raw) ? raw[0] : raw)?.trim();
    if (value !== undefined && value !== '' && value.length <= MAX_SESSION_KEY_LENGTH) return value;
    return fallback(req);
  };
}
