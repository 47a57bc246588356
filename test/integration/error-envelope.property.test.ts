/**
 * fast-check over HTTP (DESIGN.md §6, reliability.md G6): the fake upstream answers random error
 * statuses, content types, headers and bodies (secrets planted in them), through a gateway with
 * errorEnvelope() in tap or proxy mode, while the client sends its own API key. The client always
 * gets `application/json` with the four fields, a bounded message, the status map, the preserved
 * headers and an x-request-id; neither secret appears in the response or in any log line.
 */
import { fc, test } from '@fast-check/jest';
import express from 'express';
import { createProxyMiddleware, fixRequestBody } from 'http-proxy-middleware';
import { Writable } from 'node:stream';
import pino from 'pino';
import { errorEnvelope, relayErrorHandler } from '../../lib/middleware/error-envelope';
import { defaultErrorStatus } from '../../lib/middleware/error-envelope-rules';
import { relayProxyOptions } from '../../lib/middleware/relay-proxy';
import { sanitizeText } from '../../lib/protocol/sanitize';
import type { FakeUpstream } from '../support/fake-upstream';
import { rawRequest } from '../support/fake-upstream/client';
import { useFakes } from '../support/fake-upstream/testing';
import { listen, type Listening } from '../support/listen';

const UPSTREAM_SECRET = 'sk-proj-UPSTREAMSECRET0123456789ab';
const CLIENT_KEY = 'sk-proj-CLIENTKEY9876543210zyxwvu';
const MAX = 300;

const start = useFakes();
const servers: Listening[] = [];
afterAll(async () => {
  await Promise.all(servers.splice(0).map((server) => server.close()));
});

async function gateway(fake: FakeUpstream, mode: 'tap' | 'proxy', logs: string[]) {
  const logger = pino(
    { level: 'debug' },
    new Writable({
      write(chunk: Buffer, _encoding, callback) {
        logs.push(chunk.toString());
        callback();
      },
    }),
  );
  const app = express();
  app.use((req, _res, next) => {
    // What pino-http would log at the start of a request, minus its redaction: the relay's own
    // lines must not need it.
    logger.debug({ url: req.url }, 'request');
    next();
  });
  app.post(
    '/v1/responses',
    express.json(),
    errorEnvelope({ provider: 'openai', logger, maxMessageLength: MAX }),
    mode === 'tap'
      ? createProxyMiddleware({
          target: fake.url,
          changeOrigin: true,
          on: { proxyReq: fixRequestBody },
        })
      : createProxyMiddleware({ target: fake.url, changeOrigin: true, ...relayProxyOptions() }),
  );
  app.use(relayErrorHandler({ logger }));
  const server = await listen(app);
  servers.push(server);
  return `${server.url}/v1/responses`;
}

const text = fc.oneof(fc.string(), fc.string({ unit: 'grapheme' }), fc.constant(''));
const planted = fc.constantFrom(
  UPSTREAM_SECRET,
  `Authorization: Bearer ${UPSTREAM_SECRET}`,
  `x-api-key: ${UPSTREAM_SECRET}`,
  `?api_key=${UPSTREAM_SECRET}&x=1`,
  `Incorrect API key provided: ${UPSTREAM_SECRET}.`,
);
const withSecret = fc.tuple(text, planted, text).map(([a, s, b]) => `${a} ${s} ${b}`);
const body = fc.oneof(
  text,
  withSecret,
  withSecret.map((s) => JSON.stringify({ error: { message: s } })),
  withSecret.map((s) => JSON.stringify({ detail: s })),
  withSecret.map((s) => JSON.stringify({ detail: [{ loc: ['body', 'input'], msg: s }] })),
  withSecret.map((s) => JSON.stringify({ error: s })),
  withSecret.map((s) => JSON.stringify({ message: s })),
  withSecret.map((s) => `<!doctype html><html><head><title>${s}</title></head><body/></html>`),
  fc.jsonValue().map((v) => JSON.stringify(v)),
);
const contentType = fc.constantFrom(
  'application/json',
  'text/html; charset=utf-8',
  'text/plain; charset=utf-8',
  'application/problem+json',
  'application/octet-stream',
);
const value = fc.stringMatching(/^[0-9a-zA-Z.,_-]{1,20}$/);
const headers = fc.record(
  {
    'retry-after': value,
    'retry-after-ms': value,
    'x-ratelimit-remaining-requests': value,
    'x-ratelimit-reset-tokens': value,
    'x-request-id': fc.oneof(value, fc.constant('')),
  },
  { requiredKeys: [] },
);

test.prop(
  [
    fc.integer({ min: 400, max: 599 }),
    body,
    contentType,
    headers,
    fc.constantFrom<'tap' | 'proxy'>('tap', 'proxy'),
  ],
  { numRuns: 60 },
)(
  'every upstream error reaches the client as a valid, secret-free envelope',
  async (status, payload, type, upstreamHeaders, mode) => {
    const fake = await start();
    const logs: string[] = [];
    const url = await gateway(fake, mode, logs);
    fake.script({
      kind: 'http_error',
      status,
      body: payload,
      contentType: type,
      headers: upstreamHeaders,
    });
    const answer = await rawRequest(url, {
      body: { model: 'gpt-5', input: 'hi' },
      headers: { authorization: `Bearer ${CLIENT_KEY}` },
    });

    expect(answer.headers['content-type']).toBe('application/json');
    const envelope = JSON.parse(answer.text) as { error: Record<string, unknown> };
    expect(Object.keys(envelope)).toEqual(['error']);
    expect(Object.keys(envelope.error)).toEqual(['message', 'type', 'param', 'code']);
    const { message, type: errorType, param, code } = envelope.error;
    expect(typeof message).toBe('string');
    expect((message as string).length).toBeLessThanOrEqual(MAX);
    expect(typeof errorType).toBe('string');
    expect(param === null || typeof param === 'string').toBe(true);
    expect(code === null || typeof code === 'string').toBe(true);

    if (code === 'previous_response_not_found') expect(answer.status).toBe(400);
    else expect(answer.status).toBe(defaultErrorStatus(status));

    for (const [name, sent] of Object.entries(upstreamHeaders)) {
      if (name === 'x-request-id' || sanitizeText(sent) !== sent) continue;
      expect(answer.headers[name]).toBe(sent);
    }
    expect(answer.headers['x-request-id']).toMatch(
      upstreamHeaders['x-request-id'] ? /^[0-9a-zA-Z.,_-]+$/ : /^req_/,
    );

    const everything = answer.text + JSON.stringify(answer.headers) + logs.join('');
    for (const secret of [UPSTREAM_SECRET, CLIENT_KEY]) {
      expect(everything).not.toContain(secret);
      expect(everything).not.toContain(secret.slice(-12));
    }
    expect(logs.some((line) => line.includes('upstream error normalized'))).toBe(true);
    await fake.close();
  },
);
