/**
 * Secret scrubbing for text the relay shows to clients or writes to logs: upstream error
 * messages, HTML pages, header dumps. Pure string functions, no I/O.
 *
 * The rules err on the side of hiding too much: a redacted word in an error message costs a
 * little readability, a leaked key costs an account. Every rule is linear in the input length
 * (no unbounded backtracking), and `sanitizeText(sanitizeText(x)) === sanitizeText(x)`.
 */

/** What a secret is replaced with. */
export const REDACTED = '[redacted]';

/**
 * Request/response headers whose values are credentials. Log serializers redact them, and the
 * relay never echoes them to clients.
 *
 * `openai-organization` and `openai-project` are deliberately NOT here: they are identifiers,
 * not credentials, and they help when reading logs. They are kept out of the headers copied to
 * clients instead (see `PRESERVED_ERROR_HEADERS` in errors.ts), so one tenant of a shared
 * gateway never learns the gateway's organization.
 */
export const SENSITIVE_HEADERS: readonly string[] = Object.freeze([
  'authorization',
  'proxy-authorization',
  'x-api-key',
  'api-key',
  'x-goog-api-key',
  'openai-api-key',
  'x-auth-token',
  'cookie',
  'set-cookie',
  // The browser WebSocket API cannot set headers, so clients pass the key as a subprotocol
  // (`openai-insecure-api-key.<key>`).
  'sec-websocket-protocol',
  // ChatGPT-account routing for the Codex backend: identifies a paying account.
  'chatgpt-account-id',
]);

const SENSITIVE_HEADER_SET = new Set(SENSITIVE_HEADERS);

/** Whether a header name (any case) carries a credential. */
export function isSensitiveHeader(name: string): boolean {
  return SENSITIVE_HEADER_SET.has(name.toLowerCase());
}

/**
 * A copy of `headers` with the values of {@link SENSITIVE_HEADERS} replaced by {@link REDACTED}
 * (names keep their case; array values become one marker).
 */
export function redactHeaders<T>(headers: Record<string, T>): Record<string, T | string> {
  const out: Record<string, T | string> = {};
  for (const [name, value] of Object.entries(headers)) {
    out[name] = isSensitiveHeader(name) && value !== undefined ? REDACTED : value;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Rules, applied in this order. Each one only ever replaces text with REDACTED (plus the kept
// context around it), so no rule can assemble a secret out of the pieces another left.

/** `Authorization: …` style lines (also `"cookie": "…"` inside JSON-ish text): the whole value. */
const HEADER_LINE = new RegExp(
  String.raw`(["']?)\b(` +
    [
      ...SENSITIVE_HEADERS,
      'api[_-]?key',
      'apikey',
      'access[_-]?token',
      'refresh[_-]?token',
      'id[_-]?token',
      'client[_-]?secret',
      'secret[_-]?key',
      'password',
      'passwd',
    ].join('|') +
    String.raw`)\1([ \t]*:[ \t]*)("[^"\r\n]*"?|'[^'\r\n]*'?|[^\r\n]*)`,
  'gi',
);

/** Credentials in URLs: `https://user:pass@host`. The whole user-info part goes. */
const URL_USERINFO = /\b([a-z][a-z0-9+.-]{0,20}:\/\/)[^\s/?#@]+@/gi;

/** `?api_key=…`, `&token=…`, `key=…` and friends: the value up to the next delimiter. */
const QUERY_PARAM = new RegExp(
  String.raw`\b(` +
    [
      'api[_-]?key',
      'apikey',
      'key',
      'access[_-]?token',
      'refresh[_-]?token',
      'id[_-]?token',
      'token',
      'secret',
      'client[_-]?secret',
      'password',
      'passwd',
      'pwd',
      'sig',
      'signature',
      'auth',
      'session(?:[_-]?id)?',
    ].join('|') +
    String.raw`)=[^&\s"'<>#;,]+`,
  'gi',
);

/**
 * `Bearer <token>`; no left boundary: `xBearer abc` counts. The token never starts or runs into
 * another `Bearer `, so a credential after it keeps its scheme word for the next match
 * (`Bearer Bearer x`, `Bearer a.Bearer b`: every token redacted), and the scan stays linear.
 */
const BEARER = /(bearer)(\s+)(?:(?!bearer\s)[A-Za-z0-9._~+/=-])+/gi;

/** `Basic <base64>`, `token <opaque>`: ordinary words too, so only before an opaque value. */
const OTHER_SCHEME = /(basic|token)(\s+)([A-Za-z0-9._~+/=-]+)/gi;

/**
 * JWTs (`eyJ…` header), and other dotted triples that look like opaque signed tokens. Both only
 * start at the beginning of a run of token characters, which keeps them linear.
 */
const JWT = /(?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]*/g;
const DOTTED_TRIPLE =
  /(?<![A-Za-z0-9_-])[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}/g;

/**
 * OpenAI keys: `sk-`/`sk-proj-`/`rk-`/`sess-` standing on their own, and `sk-` keys glued to a
 * preceding word (`…%3Dsk-…`) when long and with digits ("task-management" is not a key).
 */
const VENDOR_KEY = /(?<![A-Za-z0-9])(?:sk|rk|sess)-[A-Za-z0-9_-]{8,}/g;
const GLUED_KEY = /sk-[A-Za-z0-9_-]{20,}/g;

/** A few other vendors' key formats (Stripe, AWS, Google, GitHub, Slack). */
const OTHER_KEYS =
  /\b(?:sk_(?:live|test)_[A-Za-z0-9]{10,}|AKIA[0-9A-Z]{16}|AIza[0-9A-Za-z_-]{30,}|gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{30,}|xox[abprs]-[A-Za-z0-9-]{10,})/g;

/** A long opaque value right after a word like "key", "token" or "secret" ("the key is …" too). */
const KEYWORD_TOKEN =
  /\b(api[_ -]?key|key|token|secret|password|credential)(s?["']?(?:[ \t]*[:=][ \t]*|[ \t]+(?:(?:is|was)[ \t]+)?)["']?)([A-Za-z0-9._~+/=-]{16,})/gi;

const DIGIT = /\d/;
const LETTER = /[A-Za-z]/;

function looksOpaque(token: string): boolean {
  return token.length >= 32 || (DIGIT.test(token) && LETTER.test(token));
}

/**
 * Like `String.prototype.replace` with a global regex, except that `decide` may decline a match
 * by returning how many characters to skip: scanning then resumes inside the declined match, so
 * "basic token ghp123…" still finds "token ghp123…". Linear as long as the skip is the match's
 * leading word.
 */
function redactWhere(
  text: string,
  pattern: RegExp,
  decide: (match: RegExpExecArray) => string | number,
): string {
  const re = new RegExp(pattern.source, pattern.flags);
  let out = '';
  let last = 0;
  let match: RegExpExecArray | null;
  while ((match = re.exec(text)) !== null) {
    const verdict = decide(match);
    if (typeof verdict === 'number') {
      re.lastIndex = match.index + Math.max(1, verdict);
      continue;
    }
    out += text.slice(last, match.index) + verdict;
    last = match.index + match[0].length;
    if (match[0].length === 0) re.lastIndex += 1;
  }
  return last === 0 ? text : out + text.slice(last);
}

/** Redacts the value after a scheme/keyword word when it looks opaque; else skips the word. */
function redactOpaqueValue(match: RegExpExecArray): string | number {
  const [, word = '', separator = '', value = ''] = match;
  return looksOpaque(value) ? `${word}${separator}${REDACTED}` : word.length;
}

/**
 * Removes secrets from `text`, replacing each with {@link REDACTED}: `Bearer`/`Basic` credentials,
 * `sk-…`/`sk-proj-…`/`rk-…`/`sess-…` keys (and a few other vendors' formats), credential header
 * lines (`Authorization: …`, `x-api-key: …`, `cookie: …`, `set-cookie: …`), credential query
 * parameters (`api_key=…`, `key=…`, `token=…`), user-info in URLs, JWT-looking triples, and long
 * opaque tokens right after "key", "token" or "secret".
 *
 * @example
 * sanitizeText('Incorrect API key provided: sk-proj-abc123def456ghi')
 * // → 'Incorrect API key provided: [redacted]'
 */
export function sanitizeText(text: string): string {
  if (text === '') return text;
  let out = text.replace(
    HEADER_LINE,
    (_m, quote: string, name: string, separator: string, value: string) => {
      if (value === '') return `${quote}${name}${quote}${separator}`;
      const q = value.startsWith('"') ? '"' : value.startsWith("'") ? "'" : '';
      return `${quote}${name}${quote}${separator}${q}${REDACTED}${q}`;
    },
  );
  // Before the query rule, which would take "Bearer" for the value of `key=Bearer abc…`.
  out = out.replace(BEARER, (_m, scheme: string, space: string) => `${scheme}${space}${REDACTED}`);
  out = out.replace(URL_USERINFO, `$1${REDACTED}@`);
  out = out.replace(QUERY_PARAM, (m) => `${m.slice(0, m.indexOf('=') + 1)}${REDACTED}`);
  out = redactWhere(out, OTHER_SCHEME, redactOpaqueValue);
  out = out.replace(JWT, REDACTED);
  out = out.replace(DOTTED_TRIPLE, (m) =>
    DIGIT.test(m) && /[a-z]/.test(m) && /[A-Z]/.test(m) ? REDACTED : m,
  );
  out = out.replace(VENDOR_KEY, REDACTED);
  // A declined glued match has no digit, so no key can hide inside it: plain replace is enough.
  out = out.replace(GLUED_KEY, (m) => (DIGIT.test(m) ? REDACTED : m));
  out = out.replace(OTHER_KEYS, REDACTED);
  out = redactWhere(out, KEYWORD_TOKEN, redactOpaqueValue);
  return out;
}

/** The marker {@link truncateText} appends. */
export const ELLIPSIS = '…';

/**
 * `text` cut to at most `maxLength` UTF-16 code units, ending with {@link ELLIPSIS} when it was
 * cut. Never splits a surrogate pair. `maxLength` below 1 gives an empty string.
 */
export function truncateText(text: string, maxLength: number): string {
  const max = Number.isNaN(maxLength) ? text.length : Math.floor(maxLength);
  if (text.length <= max) return text;
  if (max < 1) return '';
  let cut = max - ELLIPSIS.length;
  const last = text.charCodeAt(cut - 1);
  if (cut > 0 && last >= 0xd800 && last <= 0xdbff) cut -= 1;
  return text.slice(0, cut) + ELLIPSIS;
}
