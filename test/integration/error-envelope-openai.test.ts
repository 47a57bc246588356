/**
 * The official openai npm client (6.x) pointed at a gateway with errorEnvelope(), in front of the
 * fake upstream: each error becomes the typed APIError subclass for its status, carrying our
 * message, type, code, param and the request id; in-stream failures raise an APIError with the
 * code instead of being yielded as ordinary events (flat error) or surfacing as `terminated`.
 */
import express from 'express';
import { createProxyMiddleware, fixRequestBody } from 'http-proxy-middleware';
import OpenAI from 'openai';
import { errorEnvelope, relayErrorHandler } from '../../lib/middleware/error-envelope';
import { relayProxyOptions } from '../../lib/middleware/relay-proxy';
import { listen, type Listening } from '../support/listen';
import type { Behaviour, FakeUpstream } from '../support/fake-upstream';
import { useFakes } from '../support/fake-upstream/testing';

type Mode = 'tap' | 'proxy';

const KEY = 'sk-test-0123456789abcdefghij';
const FAKE_REQUEST_ID = /^req_[0-9a-f]{32}$/;
const GENERATED_ID = /^req_[0-9a-f-]{36}$/;

const start = useFakes();
const servers: Listening[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((server) => server.close()));
});

async function clientFor(target: string, mode: Mode, jsonLimit = '1mb'): Promise<OpenAI> {
  const app = express();
  app.post(
    '/v1/responses',
    express.json({ limit: jsonLimit }),
    errorEnvelope({ provider: 'openai', logger: false }),
    mode === 'tap'
      ? createProxyMiddleware({ target, changeOrigin: true, on: { proxyReq: fixRequestBody } })
      : createProxyMiddleware({ target, changeOrigin: true, ...relayProxyOptions() }),
  );
  app.use(relayErrorHandler({ logger: false }));
  const server = await listen(app);
  servers.push(server);
  return new OpenAI({ apiKey: KEY, baseURL: `${server.url}/v1`, maxRetries: 0 });
}

async function caught(promise: Promise<unknown>): Promise<InstanceType<typeof OpenAI.APIError>> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof OpenAI.APIError) return error;
    throw new Error(`expected an APIError, got ${String(error)}`);
  }
  throw new Error('expected the call to fail');
}

interface Case {
  name: string;
  behaviour: Behaviour;
  class: new (...args: never[]) => InstanceType<typeof OpenAI.APIError>;
  status: number;
  message: string;
  type: string;
  code: string | null;
  param: string | null;
}

const cases: Case[] = [
  {
    name: '429 with an OpenAI envelope',
    behaviour: { kind: 'http_error', status: 429, headers: { 'retry-after': '1' } },
    class: OpenAI.RateLimitError,
    status: 429,
    message:
      'Rate limit reached for requests. Limit: 500, Used: 500, Requested: 1. Please try again in 120ms.',
    type: 'requests',
    code: 'rate_limit_exceeded',
    param: null,
  },
  {
    name: '400 {"detail": "…"} (the SDK alone loses this body)',
    behaviour: { kind: 'detail_error', status: 400, detail: 'Unsupported parameter: metadata' },
    class: OpenAI.BadRequestError,
    status: 400,
    message: 'Upstream (openai) error 400: Unsupported parameter: metadata',
    type: 'invalid_request_error',
    code: 'unsupported_parameter',
    param: 'metadata',
  },
  {
    name: '401 envelope',
    behaviour: { kind: 'http_error', status: 401 },
    class: OpenAI.AuthenticationError,
    status: 401,
    message: 'Invalid Authentication',
    type: 'invalid_request_error',
    code: 'invalid_api_key',
    param: null,
  },
  {
    name: '403 plain text',
    behaviour: { kind: 'http_error', status: 403, body: 'Forbidden: country not supported' },
    class: OpenAI.PermissionDeniedError,
    status: 403,
    message: 'Upstream (openai) error 403: Forbidden: country not supported',
    type: 'invalid_request_error',
    code: null,
    param: null,
  },
  {
    name: '404 {"message": …}',
    behaviour: { kind: 'http_error', status: 404, body: { message: 'model gpt-9 not found' } },
    class: OpenAI.NotFoundError,
    status: 404,
    message: 'Upstream (openai) error 404: model gpt-9 not found',
    type: 'invalid_request_error',
    code: null,
    param: null,
  },
  {
    name: '422 validation array',
    behaviour: {
      kind: 'detail_error',
      status: 422,
      detail: [{ loc: ['body', 'input'], msg: 'Field required', type: 'missing' }],
    },
    class: OpenAI.UnprocessableEntityError,
    status: 422,
    message: 'Upstream (openai) error 422: input: Field required',
    type: 'invalid_request_error',
    code: 'missing_required_parameter',
    param: 'input',
  },
  {
    name: '500 empty body',
    behaviour: { kind: 'empty_error', status: 500 },
    class: OpenAI.InternalServerError,
    status: 500,
    message: 'Upstream (openai) error 500: Internal Server Error (empty body)',
    type: 'server_error',
    code: null,
    param: null,
  },
  {
    name: '502 HTML page',
    behaviour: { kind: 'html_error', status: 502 },
    class: OpenAI.InternalServerError,
    status: 502,
    message: 'Upstream (openai) error 502: 502 Bad Gateway',
    type: 'server_error',
    code: null,
    param: null,
  },
  {
    name: '503 {"error": "…"}',
    behaviour: { kind: 'http_error', status: 503, body: { error: 'overloaded' } },
    class: OpenAI.InternalServerError,
    status: 503,
    message: 'Upstream (openai) error 503: overloaded',
    type: 'server_error',
    code: null,
    param: null,
  },
];

describe.each<Mode>(['tap', 'proxy'])(
  'the openai client through errorEnvelope (%s mode)',
  (mode) => {
    let fake: FakeUpstream;
    let client: OpenAI;
    beforeEach(async () => {
      fake = await start();
      client = await clientFor(fake.url, mode);
    });

    it.each(cases)('$name → $class.name', async (c) => {
      fake.script(c.behaviour);
      const error = await caught(client.responses.create({ model: 'gpt-5', input: 'hi' }));
      expect(error).toBeInstanceOf(c.class);
      expect(error.status).toBe(c.status);
      expect(error.message).toBe(`${c.status} ${c.message}`);
      expect(error.type).toBe(c.type);
      expect(error.code).toBe(c.code);
      expect(error.param).toBe(c.param);
      expect(error.requestID).toMatch(FAKE_REQUEST_ID);
      if (c.status === 429) expect(error.headers?.get('retry-after')).toBe('1');
    });

    it('previous_response_not_found keeps its exact code and param', async () => {
      const error = await caught(
        client.responses.create({ model: 'gpt-5', input: 'hi', previous_response_id: 'resp_gone' }),
      );
      expect(error).toBeInstanceOf(OpenAI.BadRequestError);
      expect(error.message).toBe("400 Previous response with id 'resp_gone' not found.");
      expect(error.code).toBe('previous_response_not_found');
      expect(error.param).toBe('previous_response_id');
      expect(error.requestID).toMatch(FAKE_REQUEST_ID);
    });

    it('an unreachable upstream → InternalServerError relay_upstream_unreachable', async () => {
      const dead = await start();
      const url = dead.url;
      await dead.close();
      const offline = await clientFor(url, mode);
      const error = await caught(offline.responses.create({ model: 'gpt-5', input: 'hi' }));
      expect(error).toBeInstanceOf(OpenAI.InternalServerError);
      expect(error.status).toBe(502);
      expect(error.code).toBe('relay_upstream_unreachable');
      expect(error.type).toBe('server_error');
      expect(error.message).toMatch(/^502 The relay could not /);
      expect(error.requestID).toMatch(GENERATED_ID);
    });

    it('a body over the gateway limit → BadRequestError payload_too_large', async () => {
      const small = await clientFor(fake.url, mode, '2kb');
      const error = await caught(
        small.responses.create({ model: 'gpt-5', input: 'x'.repeat(8192) }),
      );
      expect(error).toBeInstanceOf(OpenAI.BadRequestError);
      expect(error.code).toBe('payload_too_large');
      expect(error.param).toBe('input');
      expect(error.message).toBe(
        '400 The request body is larger than the limit of 2048 bytes. Shorten or compact the input and try again.',
      );
      expect(error.requestID).toMatch(GENERATED_ID);
      expect(fake.requests).toHaveLength(0);
    });

    const flatError: Behaviour = {
      kind: 'stream_error',
      afterEvents: 4,
      shape: 'flat',
      error: { type: 'server_error', code: 'server_is_overloaded', message: 'Overloaded, retry.' },
    };

    it('a flat in-stream error raises an APIError while iterating (6.x would yield it)', async () => {
      fake.script(flatError);
      const stream = await client.responses.create({ model: 'gpt-5', input: 'hi', stream: true });
      const seen: string[] = [];
      let thrown: unknown;
      try {
        for await (const event of stream) seen.push(event.type);
      } catch (error) {
        thrown = error;
      }
      expect(seen).toEqual([
        'response.created',
        'response.in_progress',
        'response.output_item.added',
        'response.content_part.added',
      ]);
      expect(thrown).toBeInstanceOf(OpenAI.APIError);
      const error = thrown as InstanceType<typeof OpenAI.APIError>;
      expect(error.code).toBe('server_is_overloaded');
      expect(error.type).toBe('server_error');
      expect(error.message).toBe('Overloaded, retry.');
    });

    it('a flat in-stream error rejects stream().finalResponse() with an APIError', async () => {
      fake.script(flatError);
      const error = await caught(
        client.responses.stream({ model: 'gpt-5', input: 'hi' }).finalResponse(),
      );
      expect(error.code).toBe('server_is_overloaded');
      expect(error.message).toBe('Overloaded, retry.');
    });

    it('a reset mid-stream raises an APIError with code server_error, not `terminated`', async () => {
      fake.script({ kind: 'cut', afterEvents: 5, mode: 'reset' });
      const stream = await client.responses.create({ model: 'gpt-5', input: 'hi', stream: true });
      let thrown: unknown;
      try {
        for await (const event of stream) void event;
      } catch (error) {
        thrown = error;
      }
      expect(thrown).toBeInstanceOf(OpenAI.APIError);
      expect((thrown as InstanceType<typeof OpenAI.APIError>).code).toBe('server_error');
      expect((thrown as Error).message).toBe(
        'The upstream stream ended before the response was complete. Please retry your request.',
      );
    });
  },
);

describe('the openai client straight at the fake upstream (control: what the relay fixes)', () => {
  it('loses a {"detail": …} body and yields a flat error event as an ordinary event', async () => {
    const fake = await start();
    const direct = new OpenAI({ apiKey: KEY, baseURL: `${fake.url}/v1`, maxRetries: 0 });
    fake.script({ kind: 'detail_error', status: 400, detail: 'Unsupported parameter: metadata' });
    const error = await caught(direct.responses.create({ model: 'gpt-5', input: 'hi' }));
    expect(error.message).toBe('400 status code (no body)');
    expect(error.code).toBeUndefined();

    fake.script({
      kind: 'stream_error',
      afterEvents: 2,
      shape: 'flat',
      error: { type: 'server_error', code: 'server_error', message: 'boom' },
    });
    const stream = await direct.responses.create({ model: 'gpt-5', input: 'hi', stream: true });
    const seen: string[] = [];
    for await (const event of stream) seen.push(event.type);
    expect(seen).toEqual(['response.created', 'response.in_progress', 'error']);
  });
});
