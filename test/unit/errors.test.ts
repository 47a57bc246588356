import { readFileSync } from 'node:fs';
import path from 'node:path';
import {
  DEFAULT_MAX_MESSAGE_LENGTH,
  PRESERVED_ERROR_HEADERS,
  completeErrorBody,
  errorFromStreamEvent,
  errorTypeForFailureCode,
  errorTypeForStatus,
  extractErrorBody,
  isOpenAIErrorEnvelope,
  isPreviousResponseNotFound,
  locationToParam,
  normalizeErrorBody,
  pickPreservedHeaders,
  toErrorEnvelope,
  toStreamErrorEvent,
  toWebSocketErrorFrame,
} from '../../lib/protocol/errors';
import { relayError } from '../../lib/protocol/relay-errors';
import { ELLIPSIS, REDACTED } from '../../lib/protocol/sanitize';
import type { OpenAIErrorBody } from '../../lib/protocol/types';

const FIXTURES = path.resolve(__dirname, '../../../shared/fixtures/codex-wire');

type Rec = Record<string, unknown>;

function records(file: string): Rec[] {
  return readFileSync(path.join(FIXTURES, file), 'utf8')
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line) as Rec);
}

function httpResponses(file: string): Array<{ status: number; headers: Rec; body: unknown }> {
  return records(file)
    .filter((r) => r.kind === 'http_response')
    .map((r) => ({ status: r.status as number, headers: r.headers as Rec, body: r.body }));
}

function wsOutFrames(file: string): Rec[] {
  return records(file)
    .filter((r) => r.kind === 'ws_out')
    .map((r) => r.frame as Rec);
}

function sseEvents(file: string): Rec[] {
  return records(file)
    .filter((r) => r.kind === 'sse_response')
    .flatMap((r) => r.events as Rec[]);
}

const envelope = (message: string, type: string, param: string | null, code: string | null) => ({
  error: { message, type, param, code },
});

describe('errorTypeForStatus', () => {
  it.each([
    [400, 'invalid_request_error'],
    [401, 'invalid_request_error'],
    [403, 'invalid_request_error'],
    [404, 'invalid_request_error'],
    [408, 'invalid_request_error'],
    [409, 'invalid_request_error'],
    [413, 'invalid_request_error'],
    [415, 'invalid_request_error'],
    [422, 'invalid_request_error'],
    [429, 'rate_limit_exceeded'],
    [499, 'invalid_request_error'],
    [500, 'server_error'],
    [502, 'server_error'],
    [503, 'server_error'],
    [504, 'server_error'],
    [599, 'server_error'],
    [200, 'server_error'],
    [302, 'server_error'],
  ])('%i → %s', (status, type) => {
    expect(errorTypeForStatus(status)).toBe(type);
  });
});

describe('errorTypeForFailureCode', () => {
  it.each([
    [null, 'server_error'],
    ['server_error', 'server_error'],
    ['server_is_overloaded', 'server_error'],
    ['rate_limit_exceeded', 'rate_limit_exceeded'],
    ['insufficient_quota', 'insufficient_quota'],
    ['usage_limit_reached', 'usage_limit_reached'],
    ['context_length_exceeded', 'invalid_request_error'],
    ['invalid_prompt', 'invalid_request_error'],
  ])('%s → %s', (code, type) => {
    expect(errorTypeForFailureCode(code)).toBe(type);
  });
});

describe('normalizeErrorBody', () => {
  describe('when the upstream sent an OpenAI envelope', () => {
    const files = [
      'http-400-once.jsonl',
      'http-401-once.jsonl',
      'http-403-once.jsonl',
      'http-404-once.jsonl',
      'http-409-once.jsonl',
      'http-413-once.jsonl',
      'http-422-once.jsonl',
      'http-500-once.jsonl',
      'http-503-once.jsonl',
      'http-429-retry-after-1.jsonl',
      'http-429-no-retry-after.jsonl',
      'http-429-body-hint-only.jsonl',
    ];
    it.each(files)('keeps the captured body of %s exactly (bytes, text or parsed)', (file) => {
      const responses = httpResponses(file);
      expect(responses.length).toBeGreaterThan(0);
      for (const { status, body } of responses) {
        const text = JSON.stringify(body);
        for (const input of [text, Buffer.from(text), body]) {
          expect(normalizeErrorBody({ status, body: input, provider: 'openai' })).toEqual(body);
        }
      }
    });

    it('keeps previous_response_not_found verbatim', () => {
      const body = envelope(
        "Previous response with id 'resp_stale' not found.",
        'invalid_request_error',
        'previous_response_id',
        'previous_response_not_found',
      );
      const out = normalizeErrorBody({
        status: 400,
        body: JSON.stringify(body),
        provider: 'openai',
      });
      expect(JSON.stringify(out)).toBe(JSON.stringify(body));
    });

    it('completes a partial envelope: type from the status, param and code null', () => {
      expect(normalizeErrorBody({ status: 429, body: '{"error":{"message":"boom 429"}}' })).toEqual(
        envelope('boom 429', 'rate_limit_exceeded', null, null),
      );
      expect(
        normalizeErrorBody({ status: 404, body: { error: { message: 'gone', code: 'x' } } }),
      ).toEqual(envelope('gone', 'invalid_request_error', null, 'x'));
    });

    it('drops fields of the wrong type (a numeric code, a non-string type)', () => {
      expect(
        normalizeErrorBody({
          status: 400,
          body: { error: { code: 400, message: 'Bad input', status: 'INVALID_ARGUMENT', type: 7 } },
        }),
      ).toEqual(envelope('Bad input', 'invalid_request_error', null, null));
    });

    it('writes a message when the envelope has none', () => {
      expect(
        normalizeErrorBody({
          status: 500,
          body: '{"error":{"code":"server_error","message":""}}',
          provider: 'openai',
        }),
      ).toEqual(
        envelope('Upstream (openai) error 500: server_error', 'server_error', null, 'server_error'),
      );
      expect(
        normalizeErrorBody({ status: 503, body: { error: { detail: 'overloaded' } } }),
      ).toEqual(envelope('Upstream error 503: overloaded', 'server_error', null, null));
    });

    it('reads an envelope wrapped in a one-element array', () => {
      expect(
        normalizeErrorBody({
          status: 400,
          body: '[{"error":{"message":"m","type":"invalid_request_error","param":"p","code":"c"}}]',
        }),
      ).toEqual(envelope('m', 'invalid_request_error', 'p', 'c'));
    });

    it('sanitizes every field', () => {
      const out = normalizeErrorBody({
        status: 401,
        body: {
          error: {
            message: 'Incorrect API key provided: sk-proj-AbCdEf0123456789xyz. Bearer abc.def.ghi',
            type: 'invalid_request_error',
            param: 'Authorization: Bearer sk-proj-AbCdEf0123456789xyz',
            code: 'invalid_api_key',
          },
        },
      });
      expect(out).toEqual(
        envelope(
          `Incorrect API key provided: ${REDACTED}. Bearer ${REDACTED}`,
          'invalid_request_error',
          `Authorization: ${REDACTED}`,
          'invalid_api_key',
        ),
      );
    });

    it('truncates a long message to the cap with an ellipsis', () => {
      const message = 'x'.repeat(5000);
      const out = normalizeErrorBody({ status: 400, body: { error: { message } } });
      expect(out.error.message).toHaveLength(DEFAULT_MAX_MESSAGE_LENGTH);
      expect(out.error.message.endsWith(ELLIPSIS)).toBe(true);
      const small = normalizeErrorBody({
        status: 400,
        body: { error: { message } },
        maxMessageLength: 10,
      });
      expect(small.error.message).toBe(`${'x'.repeat(9)}${ELLIPSIS}`);
    });

    it('bounds the other fields too', () => {
      const out = normalizeErrorBody({
        status: 400,
        body: {
          error: {
            message: 'm',
            type: 't'.repeat(1000),
            param: 'p'.repeat(1000),
            code: 'c'.repeat(1000),
          },
        },
      });
      expect(out.error.type.length).toBeLessThanOrEqual(256);
      expect(out.error.param?.length).toBeLessThanOrEqual(256);
      expect(out.error.code?.length).toBeLessThanOrEqual(256);
    });
  });

  describe('when the upstream sent FastAPI `detail`', () => {
    it('prefixes a string detail with the provider and status', () => {
      expect(
        normalizeErrorBody({ status: 400, body: '{"detail":"nope"}', provider: 'codex' }),
      ).toEqual(envelope('Upstream (codex) error 400: nope', 'invalid_request_error', null, null));
    });

    it('reads `Unsupported parameter: X` as param X, code unsupported_parameter', () => {
      expect(
        normalizeErrorBody({
          status: 400,
          body: '{"detail":"Unsupported parameter: previous_response_id"}',
          provider: 'codex',
        }),
      ).toEqual(
        envelope(
          'Upstream (codex) error 400: Unsupported parameter: previous_response_id',
          'invalid_request_error',
          'previous_response_id',
          'unsupported_parameter',
        ),
      );
      expect(
        normalizeErrorBody({ status: 400, body: { detail: "Unknown parameter: 'tools[0].foo'." } })
          .error,
      ).toMatchObject({ param: 'tools[0].foo', code: 'unknown_parameter' });
    });

    it('joins a validation array, taking param and code from the first location', () => {
      const body = {
        detail: [
          { loc: ['body', 'input', 0, 'content'], msg: 'field required', type: 'missing' },
          { loc: ['body', 'model'], msg: 'str type expected', type: 'string_type' },
        ],
      };
      expect(
        normalizeErrorBody({ status: 422, body: JSON.stringify(body), provider: 'openai' }),
      ).toEqual(
        envelope(
          'Upstream (openai) error 422: input[0].content: field required; model: str type expected',
          'invalid_request_error',
          'input[0].content',
          'missing_required_parameter',
        ),
      );
    });

    it('keeps validation items without a location and caps their number', () => {
      const items = Array.from({ length: 12 }, (_, i) => ({ msg: `m${i}`, type: 'value_error' }));
      const out = normalizeErrorBody({ status: 422, body: { detail: items } });
      expect(out.error.message).toBe(
        'Upstream error 422: m0; m1; m2; m3; m4; m5; m6; m7; m8; m9; (and 2 more)',
      );
      expect(out.error.param).toBeNull();
      expect(out.error.code).toBe('invalid_value');
    });

    it('scrubs secrets out of locations joined into a param (found by fast-check)', () => {
      const out = normalizeErrorBody({
        status: 400,
        body: {
          detail: [{ loc: ['Bearer abc.def.ghi', 'Bearer abc.def.ghi'], msg: 'x', type: '' }],
        },
      });
      expect(out.error.param).toBe(`Bearer ${REDACTED}Bearer ${REDACTED}`);
      expect(JSON.stringify(out)).not.toContain('abc.def.ghi');
    });

    it('reads a detail object', () => {
      expect(
        normalizeErrorBody({
          status: 403,
          body: { detail: { code: 'deactivated', message: 'Account off' } },
        }),
      ).toEqual(
        envelope('Upstream error 403: Account off', 'invalid_request_error', null, 'deactivated'),
      );
    });

    it('prefers detail over RFC 7807 title, and ignores a URI type', () => {
      expect(
        normalizeErrorBody({
          status: 403,
          contentType: 'application/problem+json',
          body: JSON.stringify({
            type: 'https://example.com/probs/out-of-credit',
            title: 'You do not have enough credit.',
            status: 403,
            detail: 'Your current balance is 30, but that costs 50.',
          }),
        }),
      ).toEqual(
        envelope(
          'Upstream error 403: Your current balance is 30, but that costs 50.',
          'invalid_request_error',
          null,
          null,
        ),
      );
    });
  });

  describe('when the upstream sent some other JSON', () => {
    it.each<[string, unknown, number, ReturnType<typeof envelope>]>([
      [
        '{"error":"string"}',
        '{"error":"Model is overloaded"}',
        503,
        envelope('Upstream (p) error 503: Model is overloaded', 'server_error', null, null),
      ],
      [
        'OAuth {"error","error_description"}',
        '{"error":"invalid_token","error_description":"The access token expired"}',
        401,
        envelope(
          'Upstream (p) error 401: The access token expired',
          'invalid_request_error',
          null,
          'invalid_token',
        ),
      ],
      [
        '{"message"} (an API gateway)',
        '{"message":"Internal server error"}',
        500,
        envelope('Upstream (p) error 500: Internal server error', 'server_error', null, null),
      ],
      [
        'a flat error event body',
        '{"type":"error","code":"server_error","message":"boom","param":null}',
        500,
        envelope('Upstream (p) error 500: boom', 'server_error', null, 'server_error'),
      ],
      [
        'a flat body with its own type',
        '{"message":"Too many","type":"requests","code":"rate_limit_exceeded","param":"x"}',
        429,
        envelope('Upstream (p) error 429: Too many', 'requests', 'x', 'rate_limit_exceeded'),
      ],
      [
        '{"errors":[…]}',
        '{"errors":[{"message":"a"},"b",{"x":1}]}',
        400,
        envelope('Upstream (p) error 400: a; b', 'invalid_request_error', null, null),
      ],
      [
        'an unknown object',
        '{"foo":1,"bar":[true]}',
        502,
        envelope('Upstream (p) error 502: {"foo":1,"bar":[true]}', 'server_error', null, null),
      ],
      [
        'an array',
        '[1,2]',
        500,
        envelope('Upstream (p) error 500: [1,2]', 'server_error', null, null),
      ],
      ['a number', 42, 500, envelope('Upstream (p) error 500: 42', 'server_error', null, null)],
      [
        'a boolean',
        true,
        500,
        envelope('Upstream (p) error 500: true', 'server_error', null, null),
      ],
      [
        'a parsed JSON string',
        'Gateway says no',
        502,
        envelope('Upstream (p) error 502: Gateway says no', 'server_error', null, null),
      ],
    ])('reads %s', (_name, body, status, expected) => {
      expect(normalizeErrorBody({ status, body, provider: 'p' })).toEqual(expected);
    });

    it('reads a JSON string body when the content type says JSON', () => {
      expect(
        normalizeErrorBody({ status: 500, body: '"oops"', contentType: 'application/json' }),
      ).toEqual(envelope('Upstream error 500: oops', 'server_error', null, null));
    });
  });

  describe('when the upstream sent text or markup', () => {
    it('prefixes plain text and collapses its whitespace', () => {
      expect(
        normalizeErrorBody({
          status: 503,
          body: 'upstream connect error or disconnect/reset before headers.\n  reset reason: connection failure\n',
          contentType: 'text/plain',
          provider: 'openai',
        }),
      ).toEqual(
        envelope(
          'Upstream (openai) error 503: upstream connect error or disconnect/reset before headers. reset reason: connection failure',
          'server_error',
          null,
          null,
        ),
      );
    });

    it("reads http-proxy-middleware's plain-text error", () => {
      expect(
        normalizeErrorBody({
          status: 504,
          body: 'Error occurred while trying to proxy: localhost:8080/v1/responses',
          contentType: 'text/plain',
        }),
      ).toEqual(
        envelope(
          'Upstream error 504: Error occurred while trying to proxy: localhost:8080/v1/responses',
          'server_error',
          null,
          null,
        ),
      );
    });

    it('treats invalid JSON as text', () => {
      expect(
        normalizeErrorBody({
          status: 400,
          body: '{"error":{"message":"cut',
          contentType: 'application/json',
        }),
      ).toEqual(
        envelope(
          'Upstream error 400: {"error":{"message":"cut',
          'invalid_request_error',
          null,
          null,
        ),
      );
    });

    it("takes a CDN's 502 page title", () => {
      const page = `<!DOCTYPE html>
<html><head><title>api.example.com | 502: Bad gateway</title>
<style>body{font:13px}</style></head>
<body><div id="cf-error-details"><h1>Bad gateway</h1><span>Error code 502</span>
<p>Your IP: 203.0.113.9</p><p>Ray ID: 8c1f0e2a9b7d4c3e</p></div></body></html>`;
      expect(
        normalizeErrorBody({
          status: 502,
          body: page,
          contentType: 'text/html; charset=UTF-8',
          provider: 'openai',
        }),
      ).toEqual(
        envelope(
          'Upstream (openai) error 502: api.example.com | 502: Bad gateway',
          'server_error',
          null,
          null,
        ),
      );
    });

    it("takes nginx's 502 page title", () => {
      expect(
        normalizeErrorBody({
          status: 502,
          body: '<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n',
          contentType: 'text/html',
          provider: 'openai',
        }),
      ).toEqual(
        envelope('Upstream (openai) error 502: 502 Bad Gateway', 'server_error', null, null),
      );
    });

    it('strips tags, scripts, styles and comments when there is no title, and decodes entities', () => {
      expect(
        normalizeErrorBody({
          status: 500,
          body: '<html><body><!-- hi --><script>var x = "<b>";</script><style>p{}</style><h1>Bad &amp; sad</h1>\n<p>3 &lt; 4 &#38; 5 < 6</p></body></html>',
        }),
      ).toEqual(
        envelope('Upstream error 500: Bad & sad 3 < 4 & 5 < 6', 'server_error', null, null),
      );
    });

    it('reads an XML error document', () => {
      expect(
        normalizeErrorBody({
          status: 403,
          contentType: 'application/xml',
          body: '<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>',
        }),
      ).toEqual(
        envelope(
          'Upstream error 403: AccessDenied Access Denied',
          'invalid_request_error',
          null,
          null,
        ),
      );
    });

    it('scrubs secrets out of markup', () => {
      const out = normalizeErrorBody({
        status: 502,
        contentType: 'text/html',
        body: '<html><body><pre>Authorization: Bearer sk-proj-AbCdEf0123456789xyz\ncookie: sid=abc</pre></body></html>',
      });
      expect(out.error.message).toBe(`Upstream error 502: Authorization: ${REDACTED}`);
    });

    it('drops control characters from binary garbage', () => {
      const out = normalizeErrorBody({
        status: 502,
        body: new Uint8Array([0x00, 0x01, 0x41, 0xff, 0x42, 0x1b, 0x43]),
      });
      expect(out).toEqual(envelope('Upstream error 502: A\uFFFDBC', 'server_error', null, null));
    });
  });

  describe('when the body is empty', () => {
    it.each<[string, unknown]>([
      ['undefined', undefined],
      ['null', null],
      ['an empty string', ''],
      ['whitespace', ' \r\n\t'],
      ['an empty Buffer', Buffer.alloc(0)],
      ['an empty ArrayBuffer', new ArrayBuffer(0)],
      ['JSON null', 'null'],
    ])('names the provider and the status for %s', (_name, body) => {
      expect(
        normalizeErrorBody({
          status: 502,
          body,
          provider: 'openai',
          contentType: 'application/json',
        }),
      ).toEqual(
        envelope(
          'Upstream (openai) error 502: Bad Gateway (empty body)',
          'server_error',
          null,
          null,
        ),
      );
    });

    it('works without a provider and without a reason phrase', () => {
      expect(normalizeErrorBody({ status: 599 })).toEqual(
        envelope('Upstream error 599 (empty body)', 'server_error', null, null),
      );
      expect(normalizeErrorBody({ status: 500, provider: 'upstream' })).toEqual(
        envelope(
          'Upstream error 500: Internal Server Error (empty body)',
          'server_error',
          null,
          null,
        ),
      );
    });
  });

  it('reads bytes with a BOM and ArrayBuffers', () => {
    const json = '{"error":{"message":"m","type":"t","param":null,"code":null}}';
    const bom = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(json)]);
    expect(normalizeErrorBody({ status: 400, body: bom })).toEqual(envelope('m', 't', null, null));
    const ab = new TextEncoder().encode(json).buffer;
    expect(normalizeErrorBody({ status: 400, body: ab })).toEqual(envelope('m', 't', null, null));
  });

  it('falls back to 502 for a nonsense status', () => {
    expect(normalizeErrorBody({ status: Number.NaN, body: 'x' }).error.message).toBe(
      'Upstream error 502: x',
    );
  });
});

describe('isPreviousResponseNotFound', () => {
  const http = envelope(
    "Previous response with id 'resp_stale' not found.",
    'invalid_request_error',
    'previous_response_id',
    'previous_response_not_found',
  );

  it('matches the HTTP envelope, as an object, JSON text and bytes', () => {
    expect(isPreviousResponseNotFound(http)).toBe(true);
    expect(isPreviousResponseNotFound(http.error)).toBe(true);
    expect(isPreviousResponseNotFound(JSON.stringify(http))).toBe(true);
    expect(isPreviousResponseNotFound(Buffer.from(JSON.stringify(http)))).toBe(true);
  });

  it('matches the wrapped WebSocket frame captured from the mock (ws-prev-not-found)', () => {
    const frame = wsOutFrames('ws-prev-not-found.jsonl').find((f) => f.type === 'error');
    expect(frame).toMatchObject({ type: 'error', status: 400 });
    expect(isPreviousResponseNotFound(frame)).toBe(true);
  });

  it("matches the Codex backend's newer wording (no param)", () => {
    expect(
      isPreviousResponseNotFound({
        error: {
          message: 'Invalid `previous_response_id`.',
          type: 'invalid_request_error',
          code: 'invalid_request_error',
        },
      }),
    ).toBe(true);
  });

  it('matches SSE error events: nested, hybrid and flat', () => {
    expect(
      isPreviousResponseNotFound({ type: 'error', error: http.error, sequence_number: 1 }),
    ).toBe(true);
    expect(isPreviousResponseNotFound(toStreamErrorEvent(http.error, 4))).toBe(true);
    expect(
      isPreviousResponseNotFound({
        type: 'error',
        code: 'previous_response_not_found',
        message: 'x',
        param: null,
      }),
    ).toBe(true);
  });

  it('matches on the param alone, and on the message alone', () => {
    expect(
      isPreviousResponseNotFound(
        envelope('gone', 'invalid_request_error', 'previous_response_id', null),
      ),
    ).toBe(true);
    expect(
      isPreviousResponseNotFound(
        envelope(
          "Previous response with id 'resp_1' not found.",
          'invalid_request_error',
          null,
          null,
        ),
      ),
    ).toBe(true);
    expect(isPreviousResponseNotFound('previous_response_id resp_1 not found')).toBe(true);
  });

  it('matches what the relay produces and what normalizeErrorBody keeps', () => {
    const own = relayError('previous_response_not_found', { id: 'resp_x' });
    expect(isPreviousResponseNotFound(own)).toBe(true);
    expect(isPreviousResponseNotFound(own.toEnvelope())).toBe(true);
    expect(isPreviousResponseNotFound(normalizeErrorBody({ status: 400, body: http }))).toBe(true);
    expect(
      isPreviousResponseNotFound(
        toWebSocketErrorFrame(400, own.toErrorBody(), { 'x-request-id': 'r' }),
      ),
    ).toBe(true);
  });

  it('rejects other errors', () => {
    const conn = wsOutFrames('ws-conn-limit.jsonl').find((f) => f.type === 'error');
    expect(conn).toBeDefined();
    expect(isPreviousResponseNotFound(conn)).toBe(false);
    const noToolCall = wsOutFrames('ws-400-no-tool-call.jsonl').find((f) => f.type === 'error');
    expect(isPreviousResponseNotFound(noToolCall)).toBe(false);
    expect(
      isPreviousResponseNotFound(
        envelope("Response with id 'resp_1' not found.", 'invalid_request_error', null, null),
      ),
    ).toBe(false);
    expect(
      isPreviousResponseNotFound(
        envelope(
          "Invalid 'previous_response_id': expected an ID that begins with 'resp'.",
          'invalid_request_error',
          'previous_response_id',
          'invalid_value',
        ),
      ),
    ).toBe(false);
    for (const value of [undefined, null, 42, {}, [], 'garbage', { type: 'response.completed' }]) {
      expect(isPreviousResponseNotFound(value)).toBe(false);
    }
  });
});

describe('toStreamErrorEvent', () => {
  it('writes the hybrid shape, flat fields first', () => {
    const body: OpenAIErrorBody = {
      message: 'The upstream stream ended.',
      type: 'server_error',
      param: null,
      code: 'server_error',
    };
    expect(JSON.stringify(toStreamErrorEvent(body, 7))).toBe(
      '{"type":"error","code":"server_error","message":"The upstream stream ended.","param":null,"sequence_number":7,"error":{"type":"server_error","code":"server_error","message":"The upstream stream ended.","param":null}}',
    );
  });

  it('does not share objects with its input', () => {
    const body: OpenAIErrorBody = { message: 'm', type: 't', param: null, code: null };
    const event = toStreamErrorEvent(body, 0);
    expect(event.error).not.toBe(body);
    expect(event.error).toEqual(body);
  });
});

describe('toWebSocketErrorFrame', () => {
  const body: OpenAIErrorBody = {
    type: 'rate_limit_exceeded',
    code: 'rate_limit_exceeded',
    message: 'Rate limit reached (mock). Please try again in 1s.',
    param: null,
  };

  it('writes the wrapped shape Codex honours, with the preserved headers only', () => {
    const frame = toWebSocketErrorFrame(429, body, {
      'Retry-After': '1',
      'x-ratelimit-remaining-requests': '0',
      'x-request-id': 'req_1',
      'set-cookie': 'a=b',
      authorization: 'Bearer sk-x',
      'content-type': 'application/json',
      'openai-organization': 'org-gateway',
    });
    expect(JSON.stringify(frame)).toBe(
      '{"type":"error","status":429,"error":{"type":"rate_limit_exceeded","code":"rate_limit_exceeded","message":"Rate limit reached (mock). Please try again in 1s.","param":null},"headers":{"retry-after":"1","x-ratelimit-remaining-requests":"0","x-request-id":"req_1"}}',
    );
  });

  it('matches the frame captured in ws-error-429-once (apart from the absent param)', () => {
    const captured = wsOutFrames('ws-error-429-once.jsonl').find((f) => f.type === 'error') as Rec;
    const frame = toWebSocketErrorFrame(429, body, { 'retry-after': '1' });
    expect(frame).toEqual({ ...captured, error: { ...(captured.error as Rec), param: null } });
  });

  it('leaves headers out when none are kept', () => {
    expect(toWebSocketErrorFrame(500, body)).not.toHaveProperty('headers');
    expect(toWebSocketErrorFrame(500, body, { 'content-type': 'text/html' })).not.toHaveProperty(
      'headers',
    );
  });
});

describe('errorFromStreamEvent', () => {
  const nested = {
    type: 'error',
    error: {
      type: 'server_error',
      code: 'server_error',
      message: 'An error occurred while processing your request.',
      param: null,
    },
    sequence_number: 2,
  };

  it('reads the nested (API) form', () => {
    expect(errorFromStreamEvent(nested)).toEqual(nested.error);
  });

  it('reads the flat form (fixture http-midstream-error-event)', () => {
    const event = sseEvents('http-midstream-error-event.jsonl').find((e) => e.type === 'error');
    expect(errorFromStreamEvent(event)).toEqual({
      message: 'The server had an error while processing your request (mock plain error event).',
      type: 'server_error',
      param: null,
      code: 'server_error',
    });
    expect(
      errorFromStreamEvent({ type: 'error', code: null, message: 'x', param: 'input' }),
    ).toEqual({
      message: 'x',
      type: 'server_error',
      param: 'input',
      code: null,
    });
  });

  it('reads the hybrid form, the nested object winning', () => {
    expect(
      errorFromStreamEvent({
        type: 'error',
        code: 'flat',
        message: 'flat',
        param: 'flat',
        error: nested.error,
      }),
    ).toEqual(nested.error);
  });

  it('fills a nested object from flat fields', () => {
    expect(
      errorFromStreamEvent({
        type: 'error',
        code: 'c',
        message: 'm',
        param: 'p',
        error: { type: 'server_error' },
      }),
    ).toEqual({ message: 'm', type: 'server_error', param: 'p', code: 'c' });
  });

  it('reads WebSocket wrapped frames (fixtures), using status for a missing type', () => {
    const frame = wsOutFrames('ws-midstream-error-wrapped-500.jsonl').find(
      (f) => f.type === 'error',
    );
    expect(errorFromStreamEvent(frame)).toEqual({
      message: 'The server had an error while processing your request (mock wrapped error).',
      type: 'server_error',
      param: null,
      code: 'server_error',
    });
    expect(
      errorFromStreamEvent({ type: 'error', status: 429, error: { message: 'slow' } }),
    ).toEqual({
      message: 'slow',
      type: 'rate_limit_exceeded',
      param: null,
      code: null,
    });
  });

  it.each([
    ['http-midstream-response-failed.jsonl', 'server_error', 'server_error'],
    [
      'http-response-failed-context_length_exceeded.jsonl',
      'context_length_exceeded',
      'invalid_request_error',
    ],
    ['http-response-failed-insufficient_quota.jsonl', 'insufficient_quota', 'insufficient_quota'],
    ['http-response-failed-invalid_prompt.jsonl', 'invalid_prompt', 'invalid_request_error'],
  ])('reads response.failed from %s', (file, code, type) => {
    const event = sseEvents(file).find((e) => e.type === 'response.failed') as Rec;
    const error = (event.response as Rec).error as Rec;
    expect(errorFromStreamEvent(event)).toEqual({
      message: error.message,
      type,
      param: null,
      code,
    });
  });

  it('reads a response.failed without error, an untyped event with error, and JSON text', () => {
    expect(
      errorFromStreamEvent({ type: 'response.failed', response: { status: 'failed' } }),
    ).toEqual({
      message: 'The response failed without an error description.',
      type: 'server_error',
      param: null,
      code: null,
    });
    expect(errorFromStreamEvent({ error: { message: 'm', type: 't' } })).toEqual({
      message: 'm',
      type: 't',
      param: null,
      code: null,
    });
    expect(errorFromStreamEvent(JSON.stringify(nested))).toEqual(nested.error);
  });

  it('ignores other events and junk', () => {
    for (const event of [
      { type: 'response.completed', response: { status: 'completed' } },
      { type: 'response.output_text.delta', delta: 'x' },
      { type: 'response.incomplete', response: {} },
      { message: 'no type, no nested error' },
      'not json',
      null,
      42,
    ]) {
      expect(errorFromStreamEvent(event)).toBeUndefined();
    }
  });

  it('round-trips the hybrid event and the WebSocket frame', () => {
    const body: OpenAIErrorBody = {
      message: 'm',
      type: 'invalid_request_error',
      param: 'input',
      code: null,
    };
    expect(errorFromStreamEvent(toStreamErrorEvent(body, 3))).toEqual(body);
    expect(errorFromStreamEvent(toWebSocketErrorFrame(400, body))).toEqual(body);
  });
});

describe('extractErrorBody', () => {
  it('reads envelopes, bare bodies, RelayErrors, and rejects non-errors', () => {
    const body = { message: 'm', type: 't', param: null, code: 'c' };
    expect(extractErrorBody({ error: body })).toEqual(body);
    expect(extractErrorBody(body)).toEqual(body);
    expect(extractErrorBody(relayError('store_unavailable'))).toEqual(
      relayError('store_unavailable').toErrorBody(),
    );
    expect(extractErrorBody({ id: 'resp_1', object: 'response' })).toBeUndefined();
    expect(extractErrorBody('{"not":"an error"}')).toBeUndefined();
  });
});

describe('envelope helpers', () => {
  it('completeErrorBody fills type, param and code', () => {
    expect(completeErrorBody({ message: 'm' }, 503)).toEqual({
      message: 'm',
      type: 'server_error',
      param: null,
      code: null,
    });
    expect(completeErrorBody({ message: 'm', type: 't', param: 'p', code: 'c' }, 400)).toEqual({
      message: 'm',
      type: 't',
      param: 'p',
      code: 'c',
    });
  });

  it('isOpenAIErrorEnvelope checks the four fields and their types', () => {
    expect(isOpenAIErrorEnvelope(envelope('m', 't', null, null))).toBe(true);
    expect(isOpenAIErrorEnvelope({ error: { message: 'm', type: 't', param: null } })).toBe(false);
    expect(
      isOpenAIErrorEnvelope({ error: { message: 'm', type: 't', param: 1, code: null } }),
    ).toBe(false);
    expect(isOpenAIErrorEnvelope({ detail: 'x' })).toBe(false);
  });

  it('toErrorEnvelope copies the body in OpenAI order', () => {
    const out = toErrorEnvelope({
      code: 'c',
      param: null,
      type: 't',
      message: 'm',
    } as OpenAIErrorBody);
    expect(JSON.stringify(out)).toBe(
      '{"error":{"message":"m","type":"t","param":null,"code":"c"}}',
    );
  });

  it.each<[unknown[], string | undefined]>([
    [['body', 'input', 0], 'input[0]'],
    [['body', 'input', 0, 'content', 1, 'text'], 'input[0].content[1].text'],
    [['query', 'limit'], 'limit'],
    [['body'], undefined],
    [['tools', 2, 'name'], 'tools[2].name'],
    [[], undefined],
  ])('locationToParam(%j) → %j', (loc, param) => {
    expect(locationToParam(loc)).toBe(param);
  });
});

describe('pickPreservedHeaders', () => {
  it('keeps retry hints, rate-limit, request-id and openai diagnostics, lower-cased', () => {
    expect(
      pickPreservedHeaders({
        'Retry-After': '2',
        'retry-after-ms': '1500',
        'x-should-retry': 'false',
        'X-RateLimit-Limit-Requests': '500',
        'x-ratelimit-reset-tokens': '6m0s',
        'x-request-id': 'req_abc',
        'openai-processing-ms': 12,
        'openai-version': '2020-10-01',
        'openai-model': 'gpt-5.5',
        'openai-organization': 'org-gateway',
        'set-cookie': ['a=b', 'c=d'],
        'content-type': 'application/json',
        'content-length': '10',
        authorization: 'Bearer x',
        'x-empty': undefined,
        'x-ratelimit-empty': '',
        'x-ratelimit-multi': ['1', '2'],
      }),
    ).toEqual({
      'retry-after': '2',
      'retry-after-ms': '1500',
      'x-should-retry': 'false',
      'x-ratelimit-limit-requests': '500',
      'x-ratelimit-reset-tokens': '6m0s',
      'x-request-id': 'req_abc',
      'openai-processing-ms': '12',
      'openai-version': '2020-10-01',
      'openai-model': 'gpt-5.5',
      'x-ratelimit-multi': '1, 2',
    });
  });

  it('lists its names lower-case', () => {
    for (const name of PRESERVED_ERROR_HEADERS) expect(name).toBe(name.toLowerCase());
    expect(PRESERVED_ERROR_HEADERS).toEqual(
      expect.arrayContaining(['retry-after', 'retry-after-ms', 'x-request-id', 'x-should-retry']),
    );
  });
});
