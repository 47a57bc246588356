import { fc, test } from '@fast-check/jest';
import {
  DEFAULT_MAX_MESSAGE_LENGTH,
  errorFromStreamEvent,
  isPreviousResponseNotFound,
  normalizeErrorBody,
  toStreamErrorEvent,
  toWebSocketErrorFrame,
} from '../../lib/protocol/errors';
import { sanitizeText } from '../../lib/protocol/sanitize';
import type { OpenAIErrorBody } from '../../lib/protocol/types';

const RUNS = { numRuns: 300 };

/** Planted secrets, and the part of each that must never reach the client. */
const SECRETS = [
  { planted: 'sk-test-SECRET1234567890abcdef', forbidden: 'sk-test-SECRET1234567890abcdef' },
  { planted: 'Bearer abc.def.ghi', forbidden: 'abc.def.ghi' },
] as const;

const secret = fc.constantFrom(...SECRETS);

/** Text that contains `planted` at a random place among arbitrary characters. */
const textWith = (planted: string) =>
  fc
    .tuple(fc.string({ unit: 'binary' }), fc.string({ unit: 'binary' }))
    .map(([before, after]) => `${before}${planted}${after}`);

const anyText = fc.oneof(fc.string(), fc.string({ unit: 'binary' }), fc.constant(''));
const anyScalar = fc.oneof(anyText, fc.integer(), fc.constant(null), fc.boolean());

/** JSON-shaped upstream bodies with the secret planted in a string somewhere. */
const jsonBody = (planted: string) => {
  const s = textWith(planted);
  return fc.oneof(
    // An OpenAI envelope, complete or partial, the secret in any field.
    fc
      .record(
        {
          message: fc.oneof(s, anyScalar),
          type: fc.oneof(s, anyScalar),
          param: fc.oneof(s, anyScalar),
          code: fc.oneof(s, anyScalar),
          extra: fc.jsonValue(),
        },
        { requiredKeys: [] },
      )
      .chain((error) => s.map((str) => ({ error: { ...error, note: str } }))),
    s.map((str) => ({
      error: { message: str, type: 'invalid_request_error', param: null, code: null },
    })),
    s.map((str) => ({ detail: str })),
    s.map((str) => ({ detail: `Unsupported parameter: ${str}` })),
    fc
      .array(
        fc.record({
          loc: fc.array(fc.oneof(fc.string(), fc.nat(), s), { maxLength: 4 }),
          msg: fc.oneof(s, fc.string()),
          type: fc.oneof(s, fc.string()),
        }),
        { minLength: 1, maxLength: 12 },
      )
      .map((detail) => ({ detail })),
    s.map((str) => ({ error: str })),
    fc.tuple(fc.string(), s).map(([code, str]) => ({ error: code, error_description: str })),
    s.map((str) => ({ message: str })),
    fc
      .tuple(s, anyText, anyText)
      .map(([m, type, code]) => ({ type, code, message: m, param: null })),
    fc.array(s, { minLength: 1, maxLength: 3 }).map((errors) => ({ errors })),
    fc
      .tuple(fc.jsonValue(), fc.string(), s)
      .map(([value, key, str]) =>
        typeof value === 'object' && value !== null && !Array.isArray(value)
          ? { ...value, [key]: str }
          : { value, [key]: str },
      ),
    fc.tuple(fc.jsonValue(), s).map(([value, str]) => [value, str]),
    fc.tuple(fc.jsonValue(), s).map(([value, str]) => [{ error: { message: str, detail: value } }]),
    s,
  );
};

/** Any upstream body: parsed JSON, JSON text, JSON bytes, raw text, raw bytes, HTML. */
const upstreamBody = (planted: string) =>
  fc.oneof(
    jsonBody(planted),
    jsonBody(planted).map((v) => JSON.stringify(v)),
    jsonBody(planted).map((v) => Buffer.from(JSON.stringify(v))),
    textWith(planted),
    fc
      .tuple(fc.uint8Array({ maxLength: 200 }), fc.uint8Array({ maxLength: 200 }))
      .map(([a, b]) => Buffer.concat([a, Buffer.from(planted), b])),
    fc
      .tuple(textWith(planted), fc.string(), fc.boolean())
      .map(([inner, other, titled]) =>
        titled
          ? `<html><head><title>${inner}</title></head><body>${other}</body></html>`
          : `<!DOCTYPE html><html><body><h1>${other}</h1><p>${inner}</p></body></html>`,
      ),
    textWith(planted).map((t) => `{"error":{"message":"${t}`), // invalid JSON
  );

const contentType = fc.constantFrom(
  undefined,
  '',
  'application/json',
  'application/json; charset=utf-8',
  'application/problem+json',
  'text/html; charset=UTF-8',
  'text/plain',
  'application/xml',
  'application/octet-stream',
);

const status = fc.integer({ min: 400, max: 599 });
const cap = fc.option(fc.integer({ min: 1, max: 2000 }), { nil: undefined });
const provider = fc.option(fc.constantFrom('openai', 'codex', 'azure', 'upstream'), {
  nil: undefined,
});

function expectCompleteEnvelope(value: unknown, max: number): void {
  expect(Object.keys(value as object)).toEqual(['error']);
  const error = (value as { error: Record<string, unknown> }).error;
  expect(Object.keys(error)).toEqual(['message', 'type', 'param', 'code']);
  expect(typeof error.message).toBe('string');
  expect(typeof error.type).toBe('string');
  expect((error.type as string).length).toBeGreaterThan(0);
  expect(error.param === null || typeof error.param === 'string').toBe(true);
  expect(error.code === null || typeof error.code === 'string').toBe(true);
  expect((error.message as string).length).toBeLessThanOrEqual(max);
  expect((error.message as string).length).toBeGreaterThan(0);
}

describe('normalizeErrorBody (properties)', () => {
  test.prop(
    [
      status,
      contentType,
      provider,
      cap,
      secret.chain((s) => upstreamBody(s.planted).map((body) => ({ s, body }))),
    ],
    RUNS,
  )(
    'always returns a complete, capped envelope that never carries the planted secret',
    (code, type, name, max, { s, body }) => {
      const out = normalizeErrorBody({
        status: code,
        body,
        contentType: type,
        provider: name,
        maxMessageLength: max,
      });
      expectCompleteEnvelope(out, max ?? DEFAULT_MAX_MESSAGE_LENGTH);
      expect(JSON.stringify(out)).not.toContain(s.forbidden);
    },
  );

  test.prop(
    [status, contentType, cap, fc.oneof(fc.jsonValue(), fc.string(), fc.uint8Array())],
    RUNS,
  )(
    'returns a complete envelope for arbitrary bodies, and is stable on its own output',
    (code, type, max, body) => {
      const out = normalizeErrorBody({
        status: code,
        body,
        contentType: type,
        maxMessageLength: max,
      });
      expectCompleteEnvelope(out, max ?? DEFAULT_MAX_MESSAGE_LENGTH);
      const again = normalizeErrorBody({
        status: code,
        body: JSON.stringify(out),
        contentType: 'application/json',
        maxMessageLength: max,
      });
      expect(again).toEqual(out);
    },
  );
});

describe('sanitizeText (properties)', () => {
  test.prop([secret.chain((s) => textWith(s.planted).map((text) => ({ s, text })))], RUNS)(
    'removes a planted secret wherever it sits, and is idempotent',
    ({ s, text }) => {
      const once = sanitizeText(text);
      expect(once).not.toContain(s.forbidden);
      expect(sanitizeText(once)).toBe(once);
    },
  );
});

const errorBody: fc.Arbitrary<OpenAIErrorBody> = fc.record({
  message: fc.string({ unit: 'binary' }),
  type: fc.string(),
  param: fc.option(fc.string(), { nil: null }),
  code: fc.option(fc.string(), { nil: null }),
});

describe('stream and WebSocket forms (properties)', () => {
  test.prop([errorBody, fc.nat()], RUNS)(
    'toStreamErrorEvent round-trips through errorFromStreamEvent, also as JSON text',
    (body, seq) => {
      const event = toStreamErrorEvent(body, seq);
      expect(event.sequence_number).toBe(seq);
      expect(event).toMatchObject({
        type: 'error',
        code: body.code,
        message: body.message,
        param: body.param,
      });
      expect(errorFromStreamEvent(event)).toEqual(body);
      expect(errorFromStreamEvent(JSON.stringify(event))).toEqual(body);
    },
  );

  test.prop(
    [
      errorBody,
      fc.integer({ min: 400, max: 599 }),
      fc.dictionary(
        fc.oneof(
          fc.constantFrom('retry-after', 'Retry-After', 'x-ratelimit-reset-tokens', 'x-request-id'),
          fc.string(),
        ),
        fc.string(),
      ),
    ],
    RUNS,
  )('toWebSocketErrorFrame round-trips through errorFromStreamEvent', (body, code, headers) => {
    const frame = toWebSocketErrorFrame(code, body, headers);
    expect(frame.type).toBe('error');
    expect(frame.status).toBe(code);
    expect(errorFromStreamEvent(frame)).toEqual(body);
    expect(errorFromStreamEvent(JSON.parse(JSON.stringify(frame)))).toEqual(body);
    for (const name of Object.keys(frame.headers ?? {})) {
      expect(name).toMatch(
        /^(retry-after|retry-after-ms|x-should-retry|x-request-id|openai-|x-ratelimit-)/,
      );
    }
  });

  test.prop([errorBody, fc.nat()], RUNS)(
    'previous_response_not_found survives every form',
    (body, seq) => {
      const marked = { ...body, code: 'previous_response_not_found' };
      expect(isPreviousResponseNotFound(toStreamErrorEvent(marked, seq))).toBe(true);
      expect(isPreviousResponseNotFound(toWebSocketErrorFrame(400, marked))).toBe(true);
      expect(isPreviousResponseNotFound({ error: marked })).toBe(true);
    },
  );
});
