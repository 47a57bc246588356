/**
 * The pure decisions behind errorEnvelope() and relayErrorHandler(): status map, headers,
 * compressed bodies, http-proxy-middleware's text, in-stream error rewriting and the mapping of
 * what the gateway throws.
 */
import zlib from 'node:zlib';
import {
  decodeErrorBody,
  defaultErrorStatus,
  describeError,
  errorHeaders,
  gatewayErrorFor,
  gatewayHeaders,
  isProxyErrorText,
  rewriteStreamErrorEvent,
  upstreamErrorReplacement,
} from '../../lib/middleware/error-envelope-rules';
import type { ErrorResponse } from '../../lib/middleware/exchange';
import { relayError } from '../../lib/protocol/relay-errors';

const SECRET = 'sk-proj-SENTINEL0a1b2c3d4e5f6g7h8i9j';

function response(
  status: number,
  body: string | Buffer,
  headers: ErrorResponse['headers'] = {},
): ErrorResponse {
  return {
    status,
    headers,
    body: Buffer.isBuffer(body) ? body : Buffer.from(body),
    truncated: false,
  };
}

const replace = (r: ErrorResponse, provider = 'acme') =>
  upstreamErrorReplacement(r, { provider, requestId: 'req_local' });

describe('defaultErrorStatus', () => {
  it.each([
    [400, 400],
    [401, 401],
    [404, 404],
    [409, 409],
    [413, 400],
    [415, 400],
    [422, 422],
    [429, 429],
    [499, 499],
    [500, 500],
    [502, 502],
    [503, 503],
    [504, 504],
    [511, 511],
    [520, 502],
    [599, 502],
    [600, 502],
    [Number.NaN, 502],
  ])('%d → %d', (upstream, client) => {
    expect(defaultErrorStatus(upstream)).toBe(client);
  });
});

describe('errorHeaders', () => {
  it('keeps the preserved upstream headers and the upstream request id', () => {
    expect(
      errorHeaders(
        {
          'Retry-After': '3',
          'retry-after-ms': '2500',
          'x-ratelimit-remaining-tokens': '10',
          'x-should-retry': 'false',
          'x-request-id': 'req_up',
          'openai-organization': 'org-x',
          'set-cookie': ['a=b'],
          'content-type': 'text/html',
          'access-control-allow-origin': '*',
          'x-relay-attempts': '2',
        },
        'req_local',
      ),
    ).toEqual({
      'x-relay-attempts': '2',
      'retry-after': '3',
      'retry-after-ms': '2500',
      'x-ratelimit-remaining-tokens': '10',
      'x-should-retry': 'false',
      'x-request-id': 'req_up',
      'access-control-allow-origin': '*',
    });
  });

  it('uses the local request id when the upstream sent none, an empty one or a secret', () => {
    expect(errorHeaders({}, 'req_local')['x-request-id']).toBe('req_local');
    expect(errorHeaders({ 'x-request-id': '' }, 'req_local')['x-request-id']).toBe('req_local');
    expect(errorHeaders({ 'x-request-id': SECRET }, 'req_local')['x-request-id']).toBe('req_local');
  });

  it('drops values that look like credentials', () => {
    const out = errorHeaders({ 'x-ratelimit-key': `Bearer ${SECRET}` }, 'r');
    expect(out['x-ratelimit-key']).toBeUndefined();
  });

  it("keeps the gateway's own headers, except credential headers", () => {
    const gateway = gatewayHeaders({
      'X-Powered-By': 'Express',
      'content-type': 'text/plain',
      'x-request-id': 'ignored',
      vary: ['Origin', 'Accept'],
      'set-cookie': 'sid=1',
      authorization: 'Bearer x',
    });
    expect(gateway).toEqual({
      'x-powered-by': 'Express',
      vary: 'Origin, Accept',
      'set-cookie': 'sid=1',
      authorization: 'Bearer x',
    });
    expect(errorHeaders({}, 'r', gateway)).toEqual({
      'x-powered-by': 'Express',
      vary: 'Origin, Accept',
      'x-request-id': 'r',
    });
  });
});

describe('decodeErrorBody', () => {
  const text = JSON.stringify({ error: { message: 'compressed boom' } });
  it.each([
    ['gzip', zlib.gzipSync(text)],
    ['x-gzip', zlib.gzipSync(text)],
    ['deflate', zlib.deflateSync(text)],
    ['deflate', zlib.deflateRawSync(text)],
    ['br', zlib.brotliCompressSync(text)],
    ['identity', Buffer.from(text)],
    [undefined, Buffer.from(text)],
  ])('%s', (encoding, body) => {
    expect(decodeErrorBody(body, encoding)?.toString()).toBe(text);
  });

  it('decodes what it can of a body cut short', () => {
    const long = 'x'.repeat(100_000) + 'END';
    const gz = zlib.gzipSync(long, { level: 0 });
    const partial = decodeErrorBody(gz.subarray(0, 50_000), 'gzip');
    expect(partial?.length).toBeGreaterThan(40_000);
    expect(long.startsWith(partial?.toString() ?? '?')).toBe(true);
  });

  it('gives up on unknown encodings and garbage', () => {
    expect(decodeErrorBody(Buffer.from('abc'), 'compress')).toBeUndefined();
    expect(decodeErrorBody(Buffer.from('not gzip'), 'gzip')).toBeUndefined();
  });
});

describe('isProxyErrorText', () => {
  const text = 'Error occurred while trying to proxy: localhost:8080/v1/responses';
  it.each([504, 502, 500])('recognises http-proxy-middleware’s %d text', (status) => {
    expect(isProxyErrorText(status, undefined, text)).toBe(true);
    expect(isProxyErrorText(status, 'text/plain', text)).toBe(true);
  });
  it('ignores other statuses, types and texts', () => {
    expect(isProxyErrorText(503, undefined, text)).toBe(false);
    expect(isProxyErrorText(504, 'application/json', text)).toBe(false);
    expect(isProxyErrorText(504, undefined, 'Gateway Timeout')).toBe(false);
  });
});

describe('upstreamErrorReplacement', () => {
  it('reads a gzip-compressed envelope', () => {
    const body = zlib.gzipSync(
      JSON.stringify({ error: { message: 'slow down', type: 'rate_limit_exceeded' } }),
    );
    const out = replace(
      response(429, body, { 'content-encoding': 'gzip', 'content-type': 'application/json' }),
    );
    expect(out.replacement.status).toBe(429);
    expect(out.replacement.envelope).toEqual({
      error: { message: 'slow down', type: 'rate_limit_exceeded', param: null, code: null },
    });
    expect(out.replacement.headers['content-encoding']).toBeUndefined();
  });

  it('says so when the body cannot be decoded', () => {
    const out = replace(response(502, 'zzz', { 'content-encoding': 'compress' }));
    expect(out.replacement.envelope.error.message).toBe(
      'Upstream (acme) error 502: (a body with content-encoding compress)',
    );
  });

  it.each([
    [504, 'relay_upstream_unreachable'],
    [500, 'relay_upstream_unreachable'],
    [502, 'relay_upstream_invalid_response'],
  ])("turns http-proxy-middleware's %d text into 502 %s", (status, code) => {
    const out = replace(
      response(
        status,
        `Error occurred while trying to proxy: api.example/v1/responses?key=${SECRET}`,
      ),
    );
    expect(out.kind).toBe('proxy_error_text');
    expect(out.replacement.status).toBe(502);
    expect(out.replacement.envelope.error.code).toBe(code);
    expect(out.replacement.envelope.error.type).toBe('server_error');
    expect(JSON.stringify(out.replacement)).not.toContain('api.example');
  });

  it('reads an error answered as an event stream', () => {
    const event = { type: 'error', error: { type: 'server_error', code: 'x', message: 'inner' } };
    const out = replace(
      response(500, `event: error\ndata: ${JSON.stringify(event)}\n\n`, {
        'content-type': 'text/event-stream',
      }),
    );
    expect(out.kind).toBe('event_stream');
    expect(out.replacement.envelope).toEqual({
      error: { message: 'inner', type: 'server_error', param: null, code: 'x' },
    });
  });

  it('recognises the flat top-level form of previous_response_not_found', () => {
    const out = replace(
      response(
        400,
        JSON.stringify({
          type: 'error',
          code: 'previous_response_not_found',
          message: "Previous response with id 'resp_1' not found.",
          status_code: 400,
        }),
      ),
    );
    expect(out.kind).toBe('previous_response_not_found');
    expect(out.replacement).toMatchObject({
      status: 400,
      envelope: {
        error: {
          message: "Previous response with id 'resp_1' not found.",
          type: 'invalid_request_error',
          param: 'previous_response_id',
          code: 'previous_response_not_found',
        },
      },
    });
  });

  it('recognises the bare wording in plain text', () => {
    const out = replace(response(409, 'Invalid `previous_response_id`.'));
    expect(out.replacement.status).toBe(400);
    expect(out.replacement.envelope.error).toEqual({
      message: 'Upstream (acme) error 409: Invalid `previous_response_id`.',
      type: 'invalid_request_error',
      param: 'previous_response_id',
      code: 'previous_response_not_found',
    });
  });

  it('does not take a different error on previous_response_id for it', () => {
    const out = replace(
      response(
        400,
        JSON.stringify({
          error: {
            message:
              "Invalid 'previous_response_id': 'abc'. Expected an ID that begins with 'resp'.",
            type: 'invalid_request_error',
            param: 'previous_response_id',
            code: 'invalid_value',
          },
        }),
      ),
    );
    expect(out.kind).toBe('envelope');
    expect(out.replacement.envelope.error.code).toBe('invalid_value');
  });

  it('leaves a 5xx that only mentions a previous response alone', () => {
    const out = replace(response(500, 'previous response cache: entry not found'));
    expect(out.replacement.status).toBe(500);
    expect(out.replacement.envelope.error.code).toBeNull();
  });

  it('applies mapStatus', () => {
    const out = upstreamErrorReplacement(response(401, '{"error":{"message":"bad key"}}'), {
      requestId: 'r',
      mapStatus: (status) => (status === 401 ? 502 : status),
    });
    expect(out.replacement.status).toBe(502);
    // The type still says what the upstream said.
    expect(out.replacement.envelope.error.type).toBe('invalid_request_error');
  });

  it('fills the code of a bare 415', () => {
    const out = replace(response(415, ''));
    expect(out.replacement.status).toBe(400);
    expect(out.replacement.envelope.error.code).toBe('unsupported_media_type');
  });

  it('copes with a truncated JSON body', () => {
    const body = JSON.stringify({ error: { message: 'y'.repeat(70_000) } }).slice(0, 65_536);
    const out = upstreamErrorReplacement(
      {
        status: 500,
        headers: { 'content-type': 'application/json' },
        body: Buffer.from(body),
        truncated: true,
      },
      { requestId: 'r' },
    );
    expect(out.replacement.envelope.error.message.length).toBeLessThanOrEqual(1024);
    expect(out.replacement.envelope.error.message).toMatch(/^Upstream error 500: \{"error"/);
  });
});

describe('rewriteStreamErrorEvent', () => {
  const inner = { type: 'server_error', code: 'server_error', message: 'boom', param: null };
  const hybrid = (sequence: number) => ({
    type: 'error',
    code: 'server_error',
    message: 'boom',
    param: null,
    sequence_number: sequence,
    error: inner,
  });

  it('turns the flat shape into the hybrid one', () => {
    const out = rewriteStreamErrorEvent({
      type: 'error',
      code: 'server_error',
      message: 'boom',
      param: null,
      sequence_number: 4,
    });
    expect(out.event).toEqual(hybrid(4));
    expect(out.body).toEqual(inner);
  });

  it('turns the nested shape into the hybrid one', () => {
    expect(
      rewriteStreamErrorEvent({ type: 'error', error: inner, sequence_number: 2 }).event,
    ).toEqual(hybrid(2));
  });

  it('returns a hybrid event as the same object', () => {
    const event = hybrid(7);
    expect(rewriteStreamErrorEvent(event).event).toBe(event);
  });

  it('rebuilds a hybrid event that carries extra members', () => {
    const event = { ...hybrid(7), status: 500, headers: { a: 'b' } };
    const out = rewriteStreamErrorEvent(event).event;
    expect(out).not.toBe(event);
    expect(out).toEqual(hybrid(7));
  });

  it('reads the WebSocket frame, taking the type from its status', () => {
    const out = rewriteStreamErrorEvent({
      type: 'error',
      status: 429,
      error: { code: 'rate_limit_exceeded', message: 'slow down' },
    });
    expect(out.event).toEqual({
      type: 'error',
      code: 'rate_limit_exceeded',
      message: 'slow down',
      param: null,
      sequence_number: -1,
      error: {
        type: 'rate_limit_exceeded',
        code: 'rate_limit_exceeded',
        message: 'slow down',
        param: null,
      },
    });
  });

  it('scrubs and bounds the message, keeping the code', () => {
    const out = rewriteStreamErrorEvent(
      { type: 'error', code: 'x', message: `key ${SECRET} ${'z'.repeat(500)}` },
      64,
    );
    expect(out.body.message).toMatch(/^key \[redacted\] z+…$/);
    expect(out.body.message.length).toBe(64);
    expect(out.body.code).toBe('x');
  });

  it('gives previous_response_not_found its canonical code and param', () => {
    const out = rewriteStreamErrorEvent({
      type: 'error',
      error: {
        type: 'invalid_request_error',
        code: 'invalid_request_error',
        message: 'Invalid `previous_response_id`.',
      },
    });
    expect(out.body).toEqual({
      message: 'Invalid `previous_response_id`.',
      type: 'invalid_request_error',
      param: 'previous_response_id',
      code: 'previous_response_not_found',
    });
  });
});

describe('gatewayErrorFor', () => {
  it('keeps a RelayError', () => {
    const out = gatewayErrorFor(relayError('store_unavailable'));
    expect(out).toMatchObject({ status: 503, kind: 'store_unavailable' });
    expect(out.body.code).toBe('relay_store_unavailable');
  });

  it.each([
    ['entity.parse.failed', 400, 'invalid_json'],
    ['entity.too.large', 400, 'payload_too_large'],
    ['charset.unsupported', 400, 'unsupported_media_type'],
    ['encoding.unsupported', 400, 'unsupported_media_type'],
  ])("maps body-parser's %s to %d %s", (type, status, code) => {
    const error = Object.assign(new Error('x'), { type, status: 415, limit: 100 });
    const out = gatewayErrorFor(error);
    expect(out.status).toBe(status);
    expect(out.body.code).toBe(code);
  });

  it('names the request content type for an unsupported charset', () => {
    const error = Object.assign(new Error('x'), { type: 'charset.unsupported', charset: 'X' });
    expect(
      gatewayErrorFor(error, { contentType: 'application/json; charset=x' }).body.message,
    ).toBe(
      "Unsupported content type 'application/json; charset=x': send the request body as application/json.",
    );
  });

  it('maps any other 413 and 415 to 400', () => {
    expect(gatewayErrorFor({ status: 413, limit: 5 })).toMatchObject({
      status: 400,
      body: { code: 'payload_too_large', param: 'input' },
    });
    expect(gatewayErrorFor({ statusCode: 415 })).toMatchObject({
      status: 400,
      body: { code: 'unsupported_media_type' },
    });
  });

  it('keeps the status and scrubbed message of a client error', () => {
    const error = Object.assign(new Error(`denied for Bearer ${SECRET}`), {
      status: 403,
      expose: true,
      code: 'tenant_blocked',
    });
    expect(gatewayErrorFor(error)).toEqual({
      status: 403,
      body: {
        message: 'denied for Bearer [redacted]',
        type: 'invalid_request_error',
        param: null,
        code: 'tenant_blocked',
      },
      headers: {},
      kind: 'http_error',
    });
    expect(gatewayErrorFor({ status: 429, message: 'slow' }).body.type).toBe('rate_limit_exceeded');
  });

  it('hides the message of a client error that says not to expose it', () => {
    const out = gatewayErrorFor({ status: 401, expose: false, message: 'token table is empty' });
    expect(out.status).toBe(401);
    expect(out.body.message).toBe('Unauthorized');
  });

  it.each([
    [Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }), 502],
    [Object.assign(new Error('getaddrinfo ENOTFOUND'), { code: 'ENOTFOUND' }), 502],
    [new TypeError('fetch failed', { cause: { code: 'UND_ERR_SOCKET' } }), 502],
    [new TypeError('fetch failed', { cause: { code: 'UND_ERR_HEADERS_TIMEOUT' } }), 504],
    [Object.assign(new Error('timed out'), { code: 'ETIMEDOUT' }), 504],
    [new DOMException('The operation was aborted due to timeout', 'TimeoutError'), 504],
  ])('maps connection failure %# to %d', (error, status) => {
    const out = gatewayErrorFor(error);
    expect(out.status).toBe(status);
    expect(out.body.code).toBe(
      status === 504 ? 'relay_upstream_timeout' : 'relay_upstream_unreachable',
    );
  });

  it('keeps a deliberate 5xx status with a generic message', () => {
    const out = gatewayErrorFor(Object.assign(new Error('db pool empty'), { status: 503 }));
    expect(out.status).toBe(503);
    expect(out.body).toEqual({
      message:
        'The gateway could not process your request (503 Service Unavailable). Please retry your request.',
      type: 'server_error',
      param: null,
      code: 'server_error',
    });
  });

  it.each([new Error('bug'), 'a string', undefined, null, 42, { status: 500 }])(
    'answers 500 internal_error for %p',
    (thrown) => {
      const out = gatewayErrorFor(thrown);
      expect(out.status).toBe(500);
      expect(out.body).toEqual(relayError('internal_error').toErrorBody());
    },
  );
});

describe('describeError', () => {
  it('scrubs message, stack and cause', () => {
    const error = new Error(`failed with ${SECRET}`, { cause: new Error(`cookie: sid=${SECRET}`) });
    const out = describeError(error);
    expect(JSON.stringify(out)).not.toContain('SENTINEL');
    expect(out).toMatchObject({ type: 'Error', message: 'failed with [redacted]' });
    expect(out.stack).toEqual(expect.stringContaining('error-envelope-rules.test.ts'));
  });

  it('describes thrown non-errors', () => {
    expect(describeError('oops')).toEqual({ type: 'string', message: 'oops' });
  });
});
