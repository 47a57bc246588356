/**
 * Properties of the error-envelope rules over random upstream responses (status, content type,
 * encoding, headers, body bytes with a planted secret), random in-stream error events and random
 * thrown values: the client always gets a complete envelope that survives JSON, a status in
 * 400–599, bounded messages, the preserved headers, an x-request-id, and never the secret.
 */
import { fc, test } from '@fast-check/jest';
import zlib from 'node:zlib';
import {
  defaultErrorStatus,
  gatewayErrorFor,
  rewriteStreamErrorEvent,
  upstreamErrorReplacement,
} from '../../lib/middleware/error-envelope-rules';
import { isPreviousResponseNotFound, isOpenAIErrorEnvelope } from '../../lib/protocol/errors';
import { sanitizeText } from '../../lib/protocol/sanitize';
import type { OpenAIErrorBody, StreamEvent } from '../../lib/protocol/types';

const SECRET = 'sk-proj-PROPSECRET9f8e7d6c5b4a3210';
const TAIL = SECRET.slice(-14);
const RUNS = { numRuns: Number(process.env.EE_RUNS ?? 400) };

const text = fc.oneof(fc.string(), fc.string({ unit: 'binary' }), fc.constant(''));

/** The secret in one of the contexts it shows up in real error bodies. */
const planted = fc.constantFrom(
  SECRET,
  `Bearer ${SECRET}`,
  `Authorization: Bearer ${SECRET}`,
  `api_key=${SECRET}`,
  `"api_key": "${SECRET}"`,
  `cookie: session=${SECRET}`,
  `Incorrect API key provided: ${SECRET}.`,
);

const withSecret = fc
  .tuple(text, planted, text)
  .map(([before, secret, after]) => `${before} ${secret} ${after}`);

const bodyText = fc.oneof(
  text,
  withSecret,
  withSecret.map((s) => JSON.stringify({ error: { message: s, type: 'x' } })),
  withSecret.map((s) => JSON.stringify({ error: { message: 'm', code: s, param: s, type: s } })),
  withSecret.map((s) => JSON.stringify({ detail: s })),
  withSecret.map((s) =>
    JSON.stringify({ detail: [{ loc: ['body', s], msg: s, type: 'missing' }] }),
  ),
  withSecret.map((s) => JSON.stringify({ error: s })),
  withSecret.map((s) => JSON.stringify({ message: s, code: 'c' })),
  withSecret.map((s) => `<html><head><title>${s}</title></head><body>${s}</body></html>`),
  withSecret.map((s) => `event: error\ndata: ${JSON.stringify({ type: 'error', message: s })}\n\n`),
  withSecret.map((s) => `Error occurred while trying to proxy: host/${s}`),
  fc.constant(
    JSON.stringify({
      error: {
        message: "Previous response with id 'resp_1' not found.",
        type: 'invalid_request_error',
        param: 'previous_response_id',
        code: 'previous_response_not_found',
      },
    }),
  ),
  fc.jsonValue().map((v) => JSON.stringify(v)),
);

const contentType = fc.constantFrom(
  undefined,
  'application/json',
  'application/json; charset=utf-8',
  'application/problem+json',
  'text/html; charset=utf-8',
  'text/plain',
  'text/event-stream',
  'application/octet-stream',
);

const encoding = fc.constantFrom(undefined, 'identity', 'gzip', 'deflate', 'br', 'compress');

function encode(body: Buffer, how: string | undefined): Buffer {
  switch (how) {
    case 'gzip':
      return zlib.gzipSync(body);
    case 'deflate':
      return zlib.deflateSync(body);
    case 'br':
      return zlib.brotliCompressSync(body);
    default:
      return body;
  }
}

const headerValue = fc.oneof(
  fc.stringMatching(/^[0-9a-zA-Z .,=_-]{1,24}$/),
  planted.filter((p) => !p.includes('"')),
);

const upstreamHeaders = fc.record(
  {
    'retry-after': headerValue,
    'retry-after-ms': headerValue,
    'x-ratelimit-limit-requests': headerValue,
    'x-ratelimit-reset-tokens': headerValue,
    'x-request-id': headerValue,
    'x-should-retry': fc.constantFrom('true', 'false'),
    'openai-organization': headerValue,
    'set-cookie': headerValue,
  },
  { requiredKeys: [] },
);

function expectValidEnvelope(envelope: unknown, max: number): OpenAIErrorBody {
  const roundTrip: unknown = JSON.parse(JSON.stringify(envelope));
  expect(roundTrip).toEqual(envelope);
  expect(isOpenAIErrorEnvelope(roundTrip)).toBe(true);
  expect(Object.keys(roundTrip as object)).toEqual(['error']);
  const error = (roundTrip as { error: OpenAIErrorBody }).error;
  expect(Object.keys(error)).toEqual(['message', 'type', 'param', 'code']);
  expect(error.message.length).toBeLessThanOrEqual(max);
  expect(error.message.length).toBeGreaterThan(0);
  return error;
}

function expectNoSecret(value: unknown): void {
  const json = JSON.stringify(value);
  expect(json).not.toContain(SECRET);
  expect(json).not.toContain(TAIL);
}

describe('upstreamErrorReplacement', () => {
  test.prop(
    [
      fc.integer({ min: 400, max: 999 }),
      bodyText,
      contentType,
      encoding,
      upstreamHeaders,
      fc.oneof(fc.constant(undefined), fc.integer({ min: 16, max: 2048 })),
      fc.boolean(),
    ],
    RUNS,
  )(
    'always answers a complete, bounded, secret-free envelope with the preserved headers',
    (status, body, type, how, headers, maxMessageLength, truncate) => {
      let bytes = encode(Buffer.from(body), how);
      if (truncate && bytes.length > 8) bytes = bytes.subarray(0, Math.floor(bytes.length / 2));
      const all: Record<string, string> = { ...headers };
      if (type !== undefined) all['content-type'] = type;
      if (how !== undefined) all['content-encoding'] = how;
      const { replacement } = upstreamErrorReplacement(
        { status, headers: all, body: bytes, truncated: truncate },
        { provider: 'openai', requestId: 'req_local', maxMessageLength },
      );
      const error = expectValidEnvelope(replacement.envelope, maxMessageLength ?? 1024);
      expect(replacement.status).toBeGreaterThanOrEqual(400);
      expect(replacement.status).toBeLessThanOrEqual(599);
      if (error.code === 'previous_response_not_found') {
        expect(replacement.status).toBe(400);
        expect(error.param).toBe('previous_response_id');
      } else if (
        error.code !== 'relay_upstream_unreachable' &&
        error.code !== 'relay_upstream_invalid_response'
      ) {
        expect(replacement.status).toBe(defaultErrorStatus(status));
      }
      expectNoSecret(replacement);
      expect(replacement.headers['x-request-id']).toMatch(/\S/);
      expect(replacement.headers['openai-organization']).toBeUndefined();
      expect(replacement.headers['set-cookie']).toBeUndefined();
      expect(replacement.headers['content-encoding']).toBeUndefined();
      for (const name of [
        'retry-after',
        'retry-after-ms',
        'x-ratelimit-limit-requests',
        'x-should-retry',
      ] as const) {
        const value = headers[name];
        // Kept unless it looks like a credential (then dropped, never rewritten).
        if (value !== undefined) {
          expect(replacement.headers[name]).toBe(sanitizeText(value) === value ? value : undefined);
        }
      }
    },
  );
});

describe('rewriteStreamErrorEvent', () => {
  const field = fc.oneof(withSecret, text, fc.constant(null), fc.integer());
  const event = fc
    .record(
      {
        code: field,
        message: field,
        param: field,
        status: fc.integer({ min: 100, max: 999 }),
        sequence_number: fc.oneof(fc.nat(), fc.string()),
        error: fc.record(
          { type: field, code: field, message: field, param: field },
          { requiredKeys: [] },
        ),
      },
      { requiredKeys: [] },
    )
    .map((rest) => ({ type: 'error', ...rest }));

  test.prop([event, fc.integer({ min: 1, max: 2048 })], RUNS)(
    'gives the hybrid shape: flat fields equal to the nested ones, bounded, secret-free',
    (input, max) => {
      const { event: out, body } = rewriteStreamErrorEvent(input as StreamEvent, max);
      expectValidEnvelope({ error: body }, max);
      expectNoSecret(body);
      expect(out).toMatchObject({
        type: 'error',
        code: body.code,
        message: body.message,
        param: body.param,
        error: body,
      });
      if (isPreviousResponseNotFound(input)) expect(body.code).toBe('previous_response_not_found');
    },
  );
});

describe('gatewayErrorFor', () => {
  const thrown = fc.oneof(
    withSecret.map((s) => new Error(s)),
    fc
      .record({
        message: withSecret,
        status: fc.integer({ min: 100, max: 700 }),
        expose: fc.boolean(),
        code: fc.oneof(fc.string(), fc.constantFrom('ECONNREFUSED', 'ETIMEDOUT', 'bad_thing')),
        type: fc.oneof(
          fc.string(),
          fc.constantFrom('entity.parse.failed', 'entity.too.large', 'charset.unsupported'),
        ),
      })
      .map((r) => Object.assign(new Error(r.message), r)),
    fc.anything(),
  );

  test.prop([thrown], RUNS)('answers a valid envelope, 4xx/5xx, never the secret', (error) => {
    const out = gatewayErrorFor(error);
    expectValidEnvelope({ error: out.body }, 1024);
    expectNoSecret(out);
    expect(out.status).toBeGreaterThanOrEqual(400);
    expect(out.status).toBeLessThanOrEqual(599);
    if (out.status >= 500) expect(out.body.message).not.toMatch(/SECRET|at .*\.ts/);
  });
});
