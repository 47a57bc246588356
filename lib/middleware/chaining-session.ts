/**
 * Session keys: what groups the turns of one conversation when the client does not send
 * `previous_response_id` (a WebSocket connection, or a header such as Codex's `session-id`).
 * A session key is not a secret; the store digests keys that are not plain id characters.
 */
import type { IncomingMessage } from 'node:http';

/** The session of a request, or `undefined` when it has none. */
export type SessionResolver = (req: IncomingMessage) => string | undefined;

/**
 * Headers that name a conversation, in order of preference: the Codex CLI sends `session-id`
 * and `thread-id` (the thread UUID, codex-wire.md §2.1); older clients and other gateways use
 * the other spellings (peers.md row 16).
 */
export const DEFAULT_SESSION_HEADERS: readonly string[] = Object.freeze([
  'session-id',
  'session_id',
  'x-session-id',
  'thread-id',
  'x-codex-session-id',
  'x-codex-conversation-id',
  // What the WebSocket bridge sends for a connection whose client gave no session header.
  'x-relay-session',
]);

/** Longest session key taken from a header; a longer value is ignored (not a session). */
export const MAX_SESSION_KEY_LENGTH = 512;

/**
 * A session resolver reading the first present header of `names` (case-insensitive).
 *
 * @example
 * app.post('/v1/responses', responseChaining({ store, upstreamMode: 'stateless',
 *   session: sessionFromHeaders() }), proxy);
 */
export function sessionFromHeaders(
  names: readonly string[] = DEFAULT_SESSION_HEADERS,
): SessionResolver {
  const lower = names.map((name) => name.toLowerCase());
  return (req) => {
    for (const name of lower) {
      const raw = req.headers[name];
      const value = Array.isArray(raw) ? raw[0] : raw;
      if (typeof value !== 'string') continue;
      const trimmed = value.trim();
      if (trimmed !== '' && trimmed.length <= MAX_SESSION_KEY_LENGTH) return trimmed;
    }
    return undefined;
  };
}
