/**
 * errorEnvelope() and relayErrorHandler() over HTTP, against the fake upstream, in both ways the
 * response reaches the relay: a stock http-proxy-middleware proxy (tap mode) and one built with
 * relayProxyOptions() (proxy mode). Every upstream error shape, the gateway's own failures, the
 * headers, previous_response_not_found, and the untouched 2xx path.
 */
import express from 'express';
import { createProxyMiddleware, fixRequestBody } from 'http-proxy-middleware';
import http from 'node:http';
import net from 'node:net';
import { Writable } from 'node:stream';
import pino from 'pino';
import request from 'supertest';
import {
  errorEnvelope,
  relayErrorHandler,
  type ErrorEnvelopeOptions,
} from '../../lib/middleware/error-envelope';
import { getExchange } from '../../lib/middleware/exchange';
import { relayProxyOptions } from '../../lib/middleware/relay-proxy';
import { readRequestBody } from '../../lib/middleware/request-body';
import type { FakeUpstream } from '../support/fake-upstream';
import { useFakes } from '../support/fake-upstream/testing';

const SECRET = 'sk-proj-SENTINEL0a1b2c3d4e5f6g7h8i9j';
const BODY = { model: 'gpt-5', input: 'hi' };
const REQ_ID = /^req_[0-9a-f]{32}$/; // the fake's x-request-id
const GENERATED_ID = /^req_[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

type Mode = 'tap' | 'proxy';

interface Gateway {
  app: express.Express;
  logs: string[];
}

interface GatewayOptions {
  envelope?: ErrorEnvelopeOptions;
  jsonLimit?: string;
  /** Extra middlewares between errorEnvelope() and the proxy. */
  before?: express.RequestHandler[];
  /** Skip express.json() (a relay middleware reads the body itself). */
  noBodyParser?: boolean;
  agent?: http.Agent;
}

/** An agent whose sockets fail with ETIMEDOUT after `ms` of silence (a socket idle timeout). */
function idleTimeoutAgent(ms: number): http.Agent {
  const agent = new http.Agent({ keepAlive: false });
  (agent as unknown as { createConnection: typeof net.createConnection }).createConnection = ((
    options: net.NetConnectOpts,
  ) => {
    const socket = net.createConnection(options);
    socket.setTimeout(ms, () =>
      socket.destroy(Object.assign(new Error('read ETIMEDOUT'), { code: 'ETIMEDOUT' })),
    );
    return socket;
  }) as typeof net.createConnection;
  return agent;
}

function buildGateway(target: string, mode: Mode, options: GatewayOptions = {}): Gateway {
  const logs: string[] = [];
  const logger = pino(
    { level: 'info' },
    new Writable({
      write(chunk: Buffer, _encoding, callback) {
        logs.push(chunk.toString());
        callback();
      },
    }),
  );
  const app = express();
  const cors: express.RequestHandler = (_req, res, next) => {
    res.setHeader('access-control-allow-origin', 'https://app.example');
    next();
  };
  const proxy =
    mode === 'tap'
      ? createProxyMiddleware({
          target,
          changeOrigin: true,
          agent: options.agent,
          on: { proxyReq: fixRequestBody },
        })
      : createProxyMiddleware({
          target,
          changeOrigin: true,
          agent: options.agent,
          ...relayProxyOptions(),
        });
  app.post(
    '/v1/responses',
    cors,
    ...(options.noBodyParser ? [] : [express.json({ limit: options.jsonLimit ?? '1mb' })]),
    errorEnvelope({ provider: 'openai', logger, ...options.envelope }),
    ...(options.before ?? []),
    proxy,
  );
  app.use(relayErrorHandler({ logger }));
  return { app, logs };
}

/** Asserts the four fields with their types, in OpenAI's order; returns the inner object. */
function expectEnvelope(body: unknown): Record<string, unknown> {
  const error = (body as { error: Record<string, unknown> }).error;
  expect(Object.keys(body as object)).toEqual(['error']);
  expect(Object.keys(error)).toEqual(['message', 'type', 'param', 'code']);
  expect(typeof error.message).toBe('string');
  expect(typeof error.type).toBe('string');
  expect(error.param === null || typeof error.param === 'string').toBe(true);
  expect(error.code === null || typeof error.code === 'string').toBe(true);
  return error;
}

const start = useFakes();

describe.each<Mode>(['tap', 'proxy'])('errorEnvelope in %s mode', (mode) => {
  let fake: FakeUpstream;
  let gateway: Gateway;
  beforeEach(async () => {
    fake = await start();
    gateway = buildGateway(fake.url, mode);
  });
  const post = (body: object = BODY) =>
    request(gateway.app).post('/v1/responses').set('authorization', `Bearer ${SECRET}`).send(body);

  describe('upstream errors of every shape', () => {
    it('keeps a complete OpenAI envelope, its status and its rate-limit headers', async () => {
      fake.script({
        kind: 'http_error',
        status: 429,
        headers: {
          'retry-after': '1',
          'retry-after-ms': '120',
          'x-ratelimit-limit-requests': '500',
          'x-ratelimit-remaining-requests': '0',
          'x-ratelimit-reset-requests': '120ms',
          'openai-organization': 'org-gateway',
          'set-cookie': '__cf_bm=abc; path=/',
        },
      });
      const response = await post();
      expect(response.status).toBe(429);
      expect(response.headers['content-type']).toBe('application/json');
      expect(response.body).toEqual({
        error: {
          message:
            'Rate limit reached for requests. Limit: 500, Used: 500, Requested: 1. Please try again in 120ms.',
          type: 'requests',
          param: null,
          code: 'rate_limit_exceeded',
        },
      });
      expect(response.headers).toMatchObject({
        'retry-after': '1',
        'retry-after-ms': '120',
        'x-ratelimit-limit-requests': '500',
        'x-ratelimit-remaining-requests': '0',
        'x-ratelimit-reset-requests': '120ms',
        'openai-version': '2020-10-01',
        'access-control-allow-origin': 'https://app.example',
      });
      expect(response.headers['x-request-id']).toMatch(REQ_ID);
      expect(response.headers['openai-organization']).toBeUndefined();
      expect(response.headers['set-cookie']).toBeUndefined();
    });

    it('completes an envelope that lacks fields', async () => {
      fake.script({ kind: 'http_error', status: 500, body: { error: { message: 'boom' } } });
      const response = await post();
      expect(response.status).toBe(500);
      expect(response.body).toEqual({
        error: { message: 'boom', type: 'server_error', param: null, code: null },
      });
    });

    it('reads {"detail": "…"} (FastAPI, the Codex backend), naming provider and status', async () => {
      fake.script({ kind: 'detail_error', status: 400, detail: 'Unsupported parameter: metadata' });
      const response = await post();
      expect(response.status).toBe(400);
      expect(response.body).toEqual({
        error: {
          message: 'Upstream (openai) error 400: Unsupported parameter: metadata',
          type: 'invalid_request_error',
          param: 'metadata',
          code: 'unsupported_parameter',
        },
      });
    });

    it('reads the stateless backend’s own rejection of an unsupported parameter', async () => {
      const stateless = await start({ mode: 'stateless' });
      const app = buildGateway(stateless.url, mode).app;
      const response = await request(app)
        .post('/v1/responses')
        .send({ ...BODY, stream: true, store: false, metadata: { a: '1' } });
      expect(response.status).toBe(400);
      const error = expectEnvelope(response.body);
      expect(error.message).toMatch(/^Upstream \(openai\) error 400: Unsupported parameter: /);
      expect(error.code).toBe('unsupported_parameter');
      expect(error.param).toBe('metadata');
    });

    it('reads a validation array, taking param from the first location', async () => {
      fake.script({
        kind: 'detail_error',
        status: 422,
        detail: [
          { loc: ['body', 'input', 0, 'content'], msg: 'Field required', type: 'missing' },
          { loc: ['body', 'model'], msg: 'Input should be a valid string', type: 'string_type' },
        ],
      });
      const response = await post();
      expect(response.status).toBe(422);
      expect(response.body).toEqual({
        error: {
          message:
            'Upstream (openai) error 422: input[0].content: Field required; model: Input should be a valid string',
          type: 'invalid_request_error',
          param: 'input[0].content',
          code: 'missing_required_parameter',
        },
      });
    });

    it('reads {"error": "a string"}', async () => {
      fake.script({ kind: 'http_error', status: 503, body: { error: 'upstream overloaded' } });
      const response = await post();
      expect(response.status).toBe(503);
      expect(response.body).toEqual({
        error: {
          message: 'Upstream (openai) error 503: upstream overloaded',
          type: 'server_error',
          param: null,
          code: null,
        },
      });
    });

    it('reads {"message": …}', async () => {
      fake.script({
        kind: 'http_error',
        status: 400,
        body: { message: 'Request too large for gpt-5', code: 'request_too_large' },
      });
      const response = await post();
      expect(response.status).toBe(400);
      expect(response.body).toEqual({
        error: {
          message: 'Upstream (openai) error 400: Request too large for gpt-5',
          type: 'invalid_request_error',
          param: null,
          code: 'request_too_large',
        },
      });
    });

    it('reads plain text', async () => {
      fake.script({
        kind: 'http_error',
        status: 502,
        body: 'upstream connect error or disconnect/reset before headers. reset reason: connection failure',
      });
      const response = await post();
      expect(response.status).toBe(502);
      expect(response.body).toEqual({
        error: {
          message:
            'Upstream (openai) error 502: upstream connect error or disconnect/reset before headers. reset reason: connection failure',
          type: 'server_error',
          param: null,
          code: null,
        },
      });
    });

    it("reads a CDN's HTML page by its title", async () => {
      fake.script({ kind: 'html_error', status: 502 });
      const response = await post();
      expect(response.status).toBe(502);
      expect(response.headers['content-type']).toBe('application/json');
      expect(response.body).toEqual({
        error: {
          message: 'Upstream (openai) error 502: 502 Bad Gateway',
          type: 'server_error',
          param: null,
          code: null,
        },
      });
    });

    it('maps an unregistered 5xx (a CDN’s 520) to 502, naming the upstream status', async () => {
      fake.script({ kind: 'html_error', status: 520 });
      const response = await post();
      expect(response.status).toBe(502);
      expect(response.body).toEqual({
        error: {
          message: 'Upstream (openai) error 520: 520 Error',
          type: 'server_error',
          param: null,
          code: null,
        },
      });
    });

    it('maps an upstream 413 page to 400 payload_too_large (Codex would resend a 413)', async () => {
      fake.script({ kind: 'html_error', status: 413 });
      const response = await post();
      expect(response.status).toBe(400);
      expect(response.body).toEqual({
        error: {
          message: 'Upstream (openai) error 413: 413 Payload Too Large',
          type: 'invalid_request_error',
          param: null,
          code: 'payload_too_large',
        },
      });
    });

    it('answers an empty body, generating x-request-id when the upstream sent none', async () => {
      fake.script({ kind: 'empty_error', status: 500, headers: { 'x-request-id': '' } });
      const response = await post();
      expect(response.status).toBe(500);
      expect(response.body).toEqual({
        error: {
          message: 'Upstream (openai) error 500: Internal Server Error (empty body)',
          type: 'server_error',
          param: null,
          code: null,
        },
      });
      expect(response.headers['x-request-id']).toMatch(GENERATED_ID);
    });

    it("echoes the client's x-request-id when the upstream sent none", async () => {
      fake.script({ kind: 'empty_error', status: 503, headers: { 'x-request-id': '' } });
      const response = await request(gateway.app)
        .post('/v1/responses')
        .set('x-request-id', 'client-trace-42')
        .send(BODY);
      expect(response.status).toBe(503);
      expect(response.headers['x-request-id']).toBe('client-trace-42');
    });

    it('never shows credentials, and keeps the original (scrubbed) in the log', async () => {
      fake.script({
        kind: 'http_error',
        status: 500,
        body: `proxy failed. Authorization: Bearer ${SECRET}\ncookie: session=${SECRET}\nGET https://api.example/v1?api_key=${SECRET}`,
        headers: { 'x-ratelimit-token': SECRET },
      });
      const response = await post();
      expect(response.status).toBe(500);
      const error = expectEnvelope(response.body);
      expect(error.message).toMatch(/^Upstream \(openai\) error 500: proxy failed\. /);
      expect(error.message).toContain('[redacted]');
      expect(response.text).not.toContain('SENTINEL');
      expect(JSON.stringify(response.headers)).not.toContain('SENTINEL');
      const line = gateway.logs.find((l) => l.includes('upstream error normalized'));
      expect(line).toBeDefined();
      expect(JSON.parse(line as string)).toMatchObject({
        upstreamStatus: 500,
        upstreamBody: expect.stringContaining('proxy failed. Authorization: [redacted]'),
      });
      expect(gateway.logs.join('')).not.toContain('SENTINEL');
    });

    it('truncates the message to maxMessageLength', async () => {
      const short = buildGateway(fake.url, mode, { envelope: { maxMessageLength: 120 } });
      fake.script({ kind: 'detail_error', status: 400, detail: 'x'.repeat(5000) });
      const response = await request(short.app).post('/v1/responses').send(BODY);
      const error = expectEnvelope(response.body);
      expect((error.message as string).length).toBe(120);
      expect(error.message).toMatch(/^Upstream \(openai\) error 400: x+…$/);
    });
  });

  describe('previous_response_not_found', () => {
    const canonical = (message: string) => ({
      error: {
        message,
        type: 'invalid_request_error',
        param: 'previous_response_id',
        code: 'previous_response_not_found',
      },
    });

    it("passes OpenAI's own envelope through byte for byte", async () => {
      const direct = await request(fake.url)
        .post('/v1/responses')
        .send({ ...BODY, previous_response_id: 'resp_gone' });
      const response = await post({ ...BODY, previous_response_id: 'resp_gone' });
      expect(response.status).toBe(400);
      expect(response.text).toBe(direct.text);
      expect(response.body).toEqual(canonical("Previous response with id 'resp_gone' not found."));
    });

    it("recognises the Codex backend's newer wording (no param)", async () => {
      fake.script({
        kind: 'http_error',
        status: 400,
        body: {
          error: {
            message: 'Invalid `previous_response_id`.',
            type: 'invalid_request_error',
            code: 'invalid_request_error',
          },
        },
      });
      const response = await post();
      expect(response.status).toBe(400);
      expect(response.body).toEqual(canonical('Invalid `previous_response_id`.'));
    });

    it('recognises the WebSocket form of the error', async () => {
      fake.script({
        kind: 'http_error',
        status: 400,
        body: {
          type: 'error',
          status: 400,
          error: {
            type: 'invalid_request_error',
            code: 'previous_response_not_found',
            message: "Previous response with id 'resp_abc' not found.",
            param: 'previous_response_id',
          },
        },
      });
      const response = await post();
      expect(response.status).toBe(400);
      expect(response.body).toEqual(canonical("Previous response with id 'resp_abc' not found."));
    });

    it('answers 400 even when the upstream used another 4xx', async () => {
      fake.script({
        kind: 'http_error',
        status: 404,
        body: { detail: "Previous response with id 'resp_x' not found." },
      });
      const response = await post();
      expect(response.status).toBe(400);
      expect(response.body).toEqual(
        canonical("Upstream (openai) error 404: Previous response with id 'resp_x' not found."),
      );
    });
  });

  describe("the gateway's own failures", () => {
    it('invalid JSON → 400 invalid_json', async () => {
      const response = await request(gateway.app)
        .post('/v1/responses')
        .set('content-type', 'application/json')
        .send('{"model": "gpt-5", ');
      expect(response.status).toBe(400);
      expect(response.body).toEqual({
        error: {
          message: 'We could not parse the JSON body of your request. The body is not valid JSON.',
          type: 'invalid_request_error',
          param: null,
          code: 'invalid_json',
        },
      });
      expect(response.headers['x-request-id']).toMatch(GENERATED_ID);
      expect(response.headers['access-control-allow-origin']).toBe('https://app.example');
      expect(fake.requests).toHaveLength(0);
    });

    it('oversized body → 400 payload_too_large (not a 413 Codex would resend)', async () => {
      const small = buildGateway(fake.url, mode, { jsonLimit: '1kb' });
      const response = await request(small.app)
        .post('/v1/responses')
        .send({ ...BODY, input: 'x'.repeat(4096) });
      expect(response.status).toBe(400);
      expect(response.body).toEqual({
        error: {
          message:
            'The request body is larger than the limit of 1024 bytes. Shorten or compact the input and try again.',
          type: 'invalid_request_error',
          param: 'input',
          code: 'payload_too_large',
        },
      });
      expect(fake.requests).toHaveLength(0);
    });

    it('unsupported charset (body parser) → 400 unsupported_media_type', async () => {
      const response = await request(gateway.app)
        .post('/v1/responses')
        .set('content-type', 'application/json; charset=koi8-r')
        .send(JSON.stringify(BODY));
      expect(response.status).toBe(400);
      expect(response.body).toEqual({
        error: {
          message:
            "Unsupported content type 'application/json; charset=koi8-r': send the request body as application/json.",
          type: 'invalid_request_error',
          param: null,
          code: 'unsupported_media_type',
        },
      });
    });

    it('wrong content type seen by a relay middleware reading the body → 400', async () => {
      const readsBody: express.RequestHandler = (req, res, next) => {
        readRequestBody(getExchange(req, res)).then(() => next(), next);
      };
      const app = buildGateway(fake.url, mode, { noBodyParser: true, before: [readsBody] }).app;
      const response = await request(app)
        .post('/v1/responses')
        .set('content-type', 'text/plain')
        .send('hello');
      expect(response.status).toBe(400);
      expect(response.body).toEqual({
        error: {
          message:
            "Unsupported content type 'text/plain': send the request body as application/json.",
          type: 'invalid_request_error',
          param: null,
          code: 'unsupported_media_type',
        },
      });
    });

    it('upstream refusing connections → 502 relay_upstream_unreachable', async () => {
      const dead = await start();
      const url = dead.url;
      await dead.close();
      const app = buildGateway(url, mode).app;
      const response = await request(app).post('/v1/responses').send(BODY);
      expect(response.status).toBe(502);
      const error = expectEnvelope(response.body);
      expect(error).toMatchObject({
        type: 'server_error',
        param: null,
        code: 'relay_upstream_unreachable',
      });
      expect(error.message).toMatch(/^The relay could not/);
      expect(response.headers['x-request-id']).toMatch(GENERATED_ID);
      expect(response.text).not.toContain('127.0.0.1');
    });

    it(
      mode === 'proxy'
        ? 'upstream timing out → 504 relay_upstream_timeout'
        : "upstream timing out → 502 relay_upstream_unreachable (the stock proxy's text hides the errno)",
      async () => {
        fake.script({ kind: 'slow', delayMs: 2000, then: { kind: 'http_error', status: 500 } });
        const app = buildGateway(fake.url, mode, { agent: idleTimeoutAgent(100) }).app;
        const response = await request(app).post('/v1/responses').send(BODY);
        const error = expectEnvelope(response.body);
        if (mode === 'proxy') {
          expect(response.status).toBe(504);
          expect(error).toEqual({
            message: 'The upstream did not answer in time. Please retry your request.',
            type: 'server_error',
            param: null,
            code: 'relay_upstream_timeout',
          });
        } else {
          expect(response.status).toBe(502);
          expect(error).toEqual({
            message:
              'The relay could not get a response from the upstream (openai): the connection was refused, reset or timed out, or the host was not found. Please retry your request.',
            type: 'server_error',
            param: null,
            code: 'relay_upstream_unreachable',
          });
        }
      },
    );

    it('an unexpected exception → 500 without stack or secret; the original is logged', async () => {
      const fails: express.RequestHandler = (req) => {
        throw new TypeError(`cannot read tenant for ${String(req.headers.authorization)}`);
      };
      const { app, logs } = buildGateway(fake.url, mode, { before: [fails] });
      const response = await request(app)
        .post('/v1/responses')
        .set('authorization', `Bearer ${SECRET}`)
        .send(BODY);
      expect(response.status).toBe(500);
      expect(response.body).toEqual({
        error: {
          message:
            'The relay had an error while processing your request. Please retry your request.',
          type: 'server_error',
          param: null,
          code: 'server_error',
        },
      });
      expect(response.text).not.toMatch(/TypeError|at |SENTINEL/);
      const line = JSON.parse(logs.find((l) => l.includes('gateway error')) as string) as {
        level: number;
        error: { type: string; message: string; stack: string };
      };
      expect(line.level).toBe(50);
      expect(line.error.type).toBe('TypeError');
      expect(line.error.message).toBe('cannot read tenant for Bearer [redacted]');
      expect(line.error.stack).toContain('error-envelope.test.ts');
      expect(logs.join('')).not.toContain('SENTINEL');
      expect(fake.requests).toHaveLength(0);
    });
  });

  describe('the 2xx path', () => {
    it('passes a large JSON body through byte for byte', async () => {
      let upstreamBytes = Buffer.alloc(0);
      const watch = (proxyRes: http.IncomingMessage) => {
        const chunks: Buffer[] = [];
        proxyRes.on('data', (chunk: Buffer) => chunks.push(chunk));
        proxyRes.on('end', () => (upstreamBytes = Buffer.concat(chunks)));
      };
      const app = express();
      app.post(
        '/v1/responses',
        express.json(),
        errorEnvelope({ provider: 'openai' }),
        mode === 'tap'
          ? createProxyMiddleware({
              target: fake.url,
              on: { proxyReq: fixRequestBody, proxyRes: watch },
            })
          : createProxyMiddleware({
              target: fake.url,
              ...relayProxyOptions({ on: { proxyRes: watch } }),
            }),
      );
      fake.script({ kind: 'text', text: 'lorem ipsum '.repeat(400_000), chunks: 4 });
      const response = await request(app)
        .post('/v1/responses')
        .buffer(true)
        .parse((res, done) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => done(null, Buffer.concat(chunks)));
        })
        .send(BODY);
      expect(response.status).toBe(200);
      const body = response.body as Buffer;
      expect(body.length).toBeGreaterThan(4_000_000);
      expect(body.equals(upstreamBytes)).toBe(true);
    });
  });
});

describe('relayErrorHandler on its own', () => {
  it('answers a body-parser error on a route without errorEnvelope', async () => {
    const app = express();
    app.post('/v1/responses', express.json(), (_req, res) => res.json({ ok: true }));
    app.use(relayErrorHandler({ logger: false }));
    const response = await request(app)
      .post('/v1/responses')
      .set('content-type', 'application/json')
      .set('x-request-id', 'abc-123')
      .send('nope');
    expect(response.status).toBe(400);
    expect(response.headers['content-type']).toBe('application/json');
    expect(response.headers['x-request-id']).toBe('abc-123');
    expect(response.body.error.code).toBe('invalid_json');
  });

  it('keeps the status of an http-errors style client error', async () => {
    const app = express();
    app.post('/v1/responses', () => {
      throw Object.assign(new Error('Tenant is suspended'), { status: 403, expose: true });
    });
    app.use(relayErrorHandler({ logger: false }));
    const response = await request(app).post('/v1/responses').send(BODY);
    expect(response.status).toBe(403);
    expect(response.body).toEqual({
      error: {
        message: 'Tenant is suspended',
        type: 'invalid_request_error',
        param: null,
        code: null,
      },
    });
  });
});
