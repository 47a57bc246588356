import { readFileSync } from 'node:fs';
import path from 'node:path';
import {
  NON_RETRYABLE_5XX,
  backoffDelayMs,
  classifyConnectionError,
  classifyStatus,
  classifyStreamFailure,
  headerValue,
  parseRetryAfterMs,
  parseRetryAfterValue,
  parseShouldRetry,
  retryDelayMs,
} from '../../lib/protocol/retry-hints';
import { errorFromStreamEvent } from '../../lib/protocol/errors';

const FIXTURES = path.resolve(__dirname, '../../../shared/fixtures/codex-wire');
const NOW = Date.parse('2026-11-23T07:33:20.000Z');

function firstRecord(file: string, kind: string): Record<string, unknown> {
  const line = readFileSync(path.join(FIXTURES, file), 'utf8')
    .split('\n')
    .find((l) => l.includes(`"kind":"${kind}"`));
  if (line === undefined) throw new Error(`${file} has no ${kind}`);
  return JSON.parse(line) as Record<string, unknown>;
}

describe('parseRetryAfterMs', () => {
  it.each<[string, Record<string, string | string[] | undefined>, number | undefined]>([
    ['integer seconds', { 'retry-after': '2' }, 2000],
    ['zero', { 'retry-after': '0' }, 0],
    ['decimal seconds', { 'retry-after': '1.5' }, 1500],
    ['decimal seconds with rounding', { 'retry-after': '0.1234' }, 123],
    ['surrounding spaces', { 'retry-after': ' 3 ' }, 3000],
    ['an HTTP date 3 s ahead', { 'retry-after': 'Mon, 23 Nov 2026 07:33:23 GMT' }, 3000],
    ['an HTTP date in the past', { 'retry-after': 'Mon, 23 Nov 2026 07:33:10 GMT' }, 0],
    ['an RFC 850 date', { 'retry-after': 'Monday, 23-Nov-26 07:33:25 GMT' }, 5000],
    ['an asctime date', { 'retry-after': 'Mon Nov 23 07:33:30 2026' }, 10000],
    ['garbage', { 'retry-after': 'soon' }, undefined],
    ['a negative number', { 'retry-after': '-1' }, undefined],
    ['an exponent', { 'retry-after': '1e3' }, undefined],
    ['an empty value', { 'retry-after': '' }, undefined],
    ['a date that is not an HTTP date', { 'retry-after': '2026-11-23T07:33:25Z' }, undefined],
    ['a bare year', { 'retry-after': '2027x' }, undefined],
    ['no header', {}, undefined],
    ['retry-after-ms', { 'retry-after-ms': '300' }, 300],
    ['fractional retry-after-ms', { 'retry-after-ms': '250.6' }, 251],
    ['retry-after-ms over retry-after', { 'retry-after-ms': '300', 'retry-after': '2' }, 300],
    ['garbage retry-after-ms falls back', { 'retry-after-ms': 'x', 'retry-after': '2' }, 2000],
    ['negative retry-after-ms falls back', { 'retry-after-ms': '-5', 'retry-after': '1' }, 1000],
    ['both unusable', { 'retry-after-ms': 'x', 'retry-after': 'y' }, undefined],
    ['any header case', { 'Retry-After': '4' }, 4000],
    ['repeated values: the first', { 'retry-after': ['5', '9'] }, 5000],
  ])('reads %s', (_name, headers, expected) => {
    expect(parseRetryAfterMs(headers, NOW)).toBe(expected);
  });

  it('uses the real clock by default', () => {
    const future = new Date(Date.now() + 60_000).toUTCString();
    const ms = parseRetryAfterMs({ 'retry-after': future });
    expect(ms).toBeGreaterThan(50_000);
    expect(ms).toBeLessThanOrEqual(60_000);
  });

  it('parses huge numbers as finite or not at all', () => {
    expect(parseRetryAfterValue('9'.repeat(400), NOW)).toBeUndefined();
    expect(parseRetryAfterValue('3600', NOW)).toBe(3_600_000);
  });

  it('reads the captured 429 headers', () => {
    const rec = firstRecord('http-429-retry-after-3.jsonl', 'http_response');
    expect(parseRetryAfterMs(rec.headers as Record<string, string>, NOW)).toBe(3000);
    const none = firstRecord('http-429-no-retry-after.jsonl', 'http_response');
    expect(parseRetryAfterMs(none.headers as Record<string, string>, NOW)).toBeUndefined();
  });
});

describe('parseShouldRetry and headerValue', () => {
  it('reads x-should-retry true/false in any case, nothing else', () => {
    expect(parseShouldRetry({ 'x-should-retry': 'true' })).toBe(true);
    expect(parseShouldRetry({ 'X-Should-Retry': ' FALSE ' })).toBe(false);
    expect(parseShouldRetry({ 'x-should-retry': 'yes' })).toBeUndefined();
    expect(parseShouldRetry(undefined)).toBeUndefined();
  });

  it('finds headers in any case and stringifies numbers', () => {
    expect(headerValue({ 'Content-Type': 'x' }, 'content-type')).toBe('x');
    expect(headerValue({ 'content-length': 10 }, 'Content-Length')).toBe('10');
    expect(headerValue({ a: undefined }, 'a')).toBeUndefined();
  });
});

describe('classifyStatus', () => {
  it.each<[number, boolean, string]>([
    [400, false, 'client_error'],
    [401, false, 'client_error'],
    [403, false, 'client_error'],
    [404, false, 'client_error'],
    [408, true, 'timeout'],
    [409, true, 'conflict'],
    [413, false, 'client_error'],
    [422, false, 'client_error'],
    [429, true, 'rate_limited'],
    [500, true, 'server_error'],
    [501, false, 'status_501'],
    [502, true, 'server_error'],
    [503, true, 'server_error'],
    [504, true, 'server_error'],
    [505, false, 'status_505'],
    [507, true, 'server_error'],
    [511, false, 'status_511'],
    [520, true, 'server_error'],
    [529, true, 'server_error'],
    [200, false, 'not_an_error'],
    [302, false, 'not_an_error'],
  ])('%i → retry %s (%s)', (status, retry, reason) => {
    expect(classifyStatus(status)).toEqual({ retry, reason });
  });

  it('lets x-should-retry decide first', () => {
    expect(classifyStatus(400, { 'x-should-retry': 'true' })).toEqual({
      retry: true,
      reason: 'upstream_requested',
    });
    expect(classifyStatus(500, { 'x-should-retry': 'false' })).toEqual({
      retry: false,
      reason: 'upstream_declined',
    });
    expect(classifyStatus(503, { 'x-should-retry': 'maybe' })).toEqual({
      retry: true,
      reason: 'server_error',
    });
  });

  it('does not retry a 429 whose body says the quota is gone', () => {
    const quota = {
      error: {
        message: 'You exceeded your current quota, please check your plan and billing details.',
        type: 'insufficient_quota',
        param: null,
        code: 'insufficient_quota',
      },
    };
    expect(classifyStatus(429, {}, quota)).toEqual({ retry: false, reason: 'quota_exhausted' });
    expect(classifyStatus(429, {}, JSON.stringify(quota))).toEqual({
      retry: false,
      reason: 'quota_exhausted',
    });
    expect(
      classifyStatus(429, {}, { error: { type: 'usage_limit_reached', message: 'limit' } }),
    ).toEqual({ retry: false, reason: 'quota_exhausted' });
    expect(classifyStatus(429, {}, { detail: 'slow down' })).toEqual({
      retry: true,
      reason: 'rate_limited',
    });
  });

  it.each([
    'http-429-retry-after-1.jsonl',
    'http-429-no-retry-after.jsonl',
    'http-429-body-hint-only.jsonl',
  ])('retries the captured rate limit of %s', (file) => {
    const rec = firstRecord(file, 'http_response');
    expect(
      classifyStatus(rec.status as number, rec.headers as Record<string, string>, rec.body),
    ).toEqual({ retry: true, reason: 'rate_limited' });
  });

  it('documents the 5xx statuses it never retries', () => {
    expect([...NON_RETRYABLE_5XX].sort()).toEqual([501, 505, 506, 510, 511]);
  });
});

describe('classifyConnectionError', () => {
  const errno = (code: string, message = code): NodeJS.ErrnoException =>
    Object.assign(new Error(message), { code });

  it.each([
    'ECONNREFUSED',
    'ECONNRESET',
    'EPIPE',
    'ENOTFOUND',
    'EAI_AGAIN',
    'EHOSTUNREACH',
    'ENETUNREACH',
    'UND_ERR_SOCKET',
  ])('retries %s as a connection failure', (code) => {
    expect(classifyConnectionError(errno(code))).toEqual({ retry: true, reason: 'connection' });
  });

  it.each(['ETIMEDOUT', 'ESOCKETTIMEDOUT', 'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT'])(
    'retries %s as a timeout',
    (code) => {
      expect(classifyConnectionError(errno(code))).toEqual({ retry: true, reason: 'timeout' });
    },
  );

  it('retries "socket hang up" and an AbortSignal.timeout()', () => {
    expect(classifyConnectionError(new Error('socket hang up'))).toEqual({
      retry: true,
      reason: 'connection',
    });
    const timeout = new Error('The operation was aborted due to timeout');
    timeout.name = 'TimeoutError';
    expect(classifyConnectionError(timeout)).toEqual({ retry: true, reason: 'timeout' });
  });

  it("looks through undici's `fetch failed` cause chain", () => {
    const error = new TypeError('fetch failed', { cause: errno('ECONNREFUSED') });
    expect(classifyConnectionError(error)).toEqual({ retry: true, reason: 'connection' });
  });

  it('never retries an abort (the client left)', () => {
    const abort = new Error('This operation was aborted');
    abort.name = 'AbortError';
    expect(classifyConnectionError(abort)).toEqual({ retry: false, reason: 'aborted' });
    expect(classifyConnectionError(errno('ABORT_ERR'))).toEqual({
      retry: false,
      reason: 'aborted',
    });
  });

  it('does not retry what it does not know (TLS, parse errors, junk)', () => {
    expect(classifyConnectionError(errno('CERT_HAS_EXPIRED'))).toEqual({
      retry: false,
      reason: 'unknown_error',
    });
    expect(classifyConnectionError(errno('HPE_INVALID_CONSTANT'))).toEqual({
      retry: false,
      reason: 'unknown_error',
    });
    expect(classifyConnectionError(new Error('boom'))).toEqual({
      retry: false,
      reason: 'unknown_error',
    });
  });
});

describe('classifyStreamFailure', () => {
  const body = (code: string | null, type = 'server_error') => ({
    message: 'm',
    type,
    param: null,
    code,
  });

  it('retries a cut stream', () => {
    expect(classifyStreamFailure(undefined)).toEqual({ retry: true, reason: 'stream_cut' });
  });

  it.each<[string, string]>([
    ['server_error', 'server_error'],
    ['server_is_overloaded', 'server_error'],
    ['slow_down', 'server_error'],
    ['overloaded_error', 'server_error'],
    ['rate_limit_exceeded', 'rate_limited'],
  ])('retries %s', (code, reason) => {
    expect(classifyStreamFailure(body(code))).toEqual({ retry: true, reason });
  });

  it.each([
    'context_length_exceeded',
    'insufficient_quota',
    'usage_limit_reached',
    'invalid_prompt',
    'invalid_image',
    'previous_response_not_found',
    'something_new',
  ])('does not retry %s', (code) => {
    expect(classifyStreamFailure(body(code, 'invalid_request_error'))).toEqual({
      retry: false,
      reason: code,
    });
  });

  it('falls back to the type when the code is null', () => {
    expect(classifyStreamFailure(body(null, 'server_error'))).toEqual({
      retry: true,
      reason: 'server_error',
    });
    expect(classifyStreamFailure(body(null, 'invalid_request_error'))).toEqual({
      retry: false,
      reason: 'invalid_request_error',
    });
  });

  it.each([
    ['http-midstream-response-failed.jsonl', true],
    ['http-midstream-error-event.jsonl', true],
    ['http-response-failed-context_length_exceeded.jsonl', false],
    ['http-response-failed-insufficient_quota.jsonl', false],
    ['http-response-failed-invalid_prompt.jsonl', false],
  ])('agrees with Codex on %s (retry %s)', (file, retry) => {
    const events = firstRecord(file, 'sse_response').events as unknown[];
    const failure = events.map(errorFromStreamEvent).find((e) => e !== undefined);
    expect(classifyStreamFailure(failure).retry).toBe(retry);
  });
});

describe('backoffDelayMs', () => {
  const opts = (r: number) => ({ baseMs: 500, maxMs: 8000, random: () => r });

  it('draws uniformly below the exponential ceiling (full jitter)', () => {
    expect(backoffDelayMs(1, opts(0.5))).toBe(250);
    expect(backoffDelayMs(2, opts(0.5))).toBe(500);
    expect(backoffDelayMs(3, opts(0.5))).toBe(1000);
    expect(backoffDelayMs(4, opts(0.999))).toBe(3996);
    expect(backoffDelayMs(1, opts(0))).toBe(0);
  });

  it('caps the ceiling at maxMs', () => {
    expect(backoffDelayMs(5, opts(0.5))).toBe(4000);
    expect(backoffDelayMs(6, opts(0.5))).toBe(4000);
    expect(backoffDelayMs(10_000, opts(0.5))).toBe(4000);
    expect(backoffDelayMs(Number.POSITIVE_INFINITY, opts(0.5))).toBe(4000);
    expect(backoffDelayMs(Number.NaN, opts(0.5))).toBe(250);
  });

  it('stays below the ceiling and sane for odd inputs', () => {
    expect(backoffDelayMs(1, opts(1))).toBeLessThan(500);
    expect(backoffDelayMs(1, opts(2))).toBeLessThan(500);
    expect(backoffDelayMs(1, opts(-1))).toBe(0);
    expect(backoffDelayMs(1, opts(Number.NaN))).toBe(0);
    expect(backoffDelayMs(0, opts(0.5))).toBe(250);
    expect(backoffDelayMs(-3, opts(0.5))).toBe(250);
  });
});

describe('retryDelayMs', () => {
  const base = { baseMs: 500, maxMs: 8000, random: () => 0.5, now: NOW };

  it('uses the hint when there is one', () => {
    expect(retryDelayMs(1, { ...base, headers: { 'retry-after': '2' } })).toEqual({
      retry: true,
      delayMs: 2000,
      source: 'hint',
    });
    expect(
      retryDelayMs(3, { ...base, headers: { 'retry-after': 'Mon, 23 Nov 2026 07:33:10 GMT' } }),
    ).toEqual({
      retry: true,
      delayMs: 0,
      source: 'hint',
    });
  });

  it('gives up on a hint above the cap', () => {
    expect(retryDelayMs(1, { ...base, headers: { 'retry-after': '3600' } })).toEqual({
      retry: false,
      reason: 'hint_too_long',
      hintMs: 3_600_000,
    });
    expect(
      retryDelayMs(1, { ...base, maxHintMs: 1000, headers: { 'retry-after-ms': '1001' } }),
    ).toMatchObject({ retry: false, hintMs: 1001 });
  });

  it('falls back to the backoff', () => {
    expect(retryDelayMs(2, { ...base, headers: { 'retry-after': 'soon' } })).toEqual({
      retry: true,
      delayMs: 500,
      source: 'backoff',
    });
    expect(retryDelayMs(1, base)).toEqual({ retry: true, delayMs: 250, source: 'backoff' });
  });
});
