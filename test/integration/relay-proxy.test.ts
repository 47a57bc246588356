/**
 * relayProxy's own edges, over real sockets: a bounded upstream agent that queues requests, a
 * client's `Expect: 100-continue`, an upstream status Node cannot write back, and handlers (yours,
 * a stage factory) that throw. Each must end with an answer for the client and a gateway that
 * goes on serving.
 */
import express from 'express';
import http from 'node:http';
import net from 'node:net';
import { installStage } from '../../lib/middleware/stream-transform';
import { relayProxy, type RelayProxyOptions } from '../../lib/middleware/relay-proxy';
import { retryGuard } from '../../lib/middleware/retry-guard';
import { createProxyMiddleware } from 'http-proxy-middleware';
import { startFakeUpstream, type FakeUpstream } from '../support/fake-upstream';
import { listen, type Listening } from '../support/listen';
import { freePort } from '../support/redis-server';

const AUTH = { authorization: 'Bearer sk-test-relay-proxy' };

const open: Array<{ close(): Promise<void> }> = [];
afterEach(async () => {
  while (open.length > 0) await open.pop()?.close();
});

async function fake(): Promise<FakeUpstream> {
  const upstream = await startFakeUpstream({ mode: 'stateful' });
  open.push(upstream);
  return upstream;
}

/** A gateway whose route reads the body first (the retry guard does), as the relay's always does. */
async function gateway(
  target: string,
  proxy: RelayProxyOptions['proxy'] = {},
  on: RelayProxyOptions['on'] = {},
  ...before: express.RequestHandler[]
): Promise<Listening> {
  const app = express();
  app.post(
    '/v1/responses',
    ...before,
    retryGuard({ budget: false }),
    relayProxy({ target, proxy, on }),
  );
  const listening = await listen(app);
  open.push(listening);
  return listening;
}

interface Answer {
  status: number;
  json: Record<string, unknown>;
}

/** POSTs a JSON body with Node's client (fetch cannot send `Expect`). */
function post(url: string, body: object, headers: Record<string, string> = {}): Promise<Answer> {
  const payload = Buffer.from(JSON.stringify(body));
  return new Promise((resolve, reject) => {
    const request = http.request(`${url}/v1/responses`, {
      method: 'POST',
      agent: false,
      headers: {
        ...AUTH,
        'content-type': 'application/json',
        'content-length': payload.length,
        ...headers,
      },
    });
    request.once('error', reject);
    request.once('response', (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.once('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        resolve({ status: response.statusCode ?? 0, json: JSON.parse(text) as Answer['json'] });
      });
    });
    if (headers.expect === '100-continue') request.once('continue', () => request.end(payload));
    else request.end(payload);
  });
}

const errorCode = (answer: Answer): unknown => (answer.json.error as { code?: unknown })?.code;

describe('relayProxy', () => {
  it('writes the body of requests a bounded agent queued (maxSockets 1, 6 at once)', async () => {
    const upstream = await fake();
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    open.push({ close: async () => agent.destroy() });
    const gw = await gateway(upstream.url, { agent });
    const answers = await Promise.all(
      Array.from({ length: 6 }, (_, index) =>
        post(gw.url, { model: 'gpt-test', input: `turn ${index}` }),
      ),
    );
    expect(answers.map((answer) => answer.status)).toEqual([200, 200, 200, 200, 200, 200]);
    expect(answers.map((answer) => answer.json.status)).toEqual(Array(6).fill('completed'));
    const inputs = upstream.requests.map((request) => (request.body as { input?: unknown }).input);
    expect([...inputs].sort()).toEqual([
      'turn 0',
      'turn 1',
      'turn 2',
      'turn 3',
      'turn 4',
      'turn 5',
    ]);
  });

  it('sends the body of a client that asked for 100-continue', async () => {
    const upstream = await fake();
    const gw = await gateway(upstream.url);
    const answer = await post(
      gw.url,
      { model: 'gpt-test', input: 'hi' },
      { expect: '100-continue' },
    );
    expect(answer.status).toBe(200);
    expect(answer.json.status).toBe('completed');
    expect(upstream.requests).toHaveLength(1);
    expect(upstream.requests[0]?.headers.expect).toBeUndefined();
    expect((upstream.requests[0]?.body as { input?: unknown }).input).toBe('hi');
  });

  it.each(['099', '000'])(
    'answers an upstream status %s with relay_upstream_invalid_response, and goes on',
    async (status) => {
      const upstream = net.createServer((socket) => {
        socket.on('error', () => undefined);
        socket.once('data', () =>
          socket.end(
            `HTTP/1.1 ${status} Odd\r\ncontent-type: text/plain\r\ncontent-length: 2\r\n\r\nok`,
          ),
        );
      });
      await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
      open.push({ close: () => new Promise<void>((resolve) => upstream.close(() => resolve())) });
      const { port } = upstream.address() as net.AddressInfo;
      const gw = await gateway(`http://127.0.0.1:${port}`);
      for (let round = 0; round < 2; round += 1) {
        const answer = await post(gw.url, { model: 'gpt-test', input: 'hi' });
        expect(answer.status).toBe(502);
        expect(errorCode(answer)).toBe('relay_upstream_invalid_response');
      }
    },
  );

  describe.each(['proxyReq', 'proxyRes'] as const)('when your %s handler throws', (name) => {
    it('answers 500 server_error, and goes on', async () => {
      const upstream = await fake();
      let fail = true;
      const gw = await gateway(
        upstream.url,
        {},
        {
          [name]: () => {
            if (fail) throw new Error('handler bug');
          },
        },
      );
      const failed = await post(gw.url, { model: 'gpt-test', input: 'hi' });
      expect(failed.status).toBe(500);
      expect(errorCode(failed)).toBe('server_error');
      expect(JSON.stringify(failed.json)).not.toContain('handler bug');
      fail = false;
      const next = await post(gw.url, { model: 'gpt-test', input: 'again' });
      expect(next.status).toBe(200);
    });
  });

  it('lets your proxyReq handler still set headers (the body is written after it)', async () => {
    const upstream = await fake();
    const gw = await gateway(
      upstream.url,
      {},
      {
        proxyReq: (proxyReq) => proxyReq.setHeader('x-gateway', 'set-in-proxyReq'),
      },
    );
    expect((await post(gw.url, { model: 'gpt-test', input: 'hi' })).status).toBe(200);
    expect(upstream.requests[0]?.headers['x-gateway']).toBe('set-in-proxyReq');
  });

  it('answers a refused connection even when your error handler throws, and goes on', async () => {
    const gw = await gateway(
      `http://127.0.0.1:${await freePort()}`,
      {},
      {
        error: () => {
          throw new Error('handler bug');
        },
      },
    );
    for (let round = 0; round < 2; round += 1) {
      const answer = await post(gw.url, { model: 'gpt-test', input: 'hi' }, {});
      expect(answer.status).toBe(502);
      expect(errorCode(answer)).toBe('relay_upstream_unreachable');
    }
  });
});

describe.each([
  {
    mode: 'proxy mode',
    route: (target: string, faulty: express.RequestHandler): express.RequestHandler[] => [
      faulty,
      relayProxy({ target }),
    ],
  },
  {
    mode: 'tap mode (stock proxy)',
    route: (target: string, faulty: express.RequestHandler): express.RequestHandler[] => [
      faulty,
      createProxyMiddleware({ target, changeOrigin: true }),
    ],
  },
])('a stage factory that throws ($mode)', ({ route }) => {
  it('answers 500 server_error instead of the response, and goes on', async () => {
    const upstream = await fake();
    let fail = true;
    const faulty: express.RequestHandler = (req, res, next) => {
      installStage(req, res, 'faulty-factory', () => {
        if (fail) throw new Error('factory bug');
        return { name: 'faulty-factory' };
      });
      next();
    };
    const app = express();
    app.post('/v1/responses', ...route(upstream.url, faulty));
    const gw = await listen(app);
    open.push(gw);
    const failed = await post(gw.url, { model: 'gpt-test', input: 'hi', stream: true });
    expect(failed.status).toBe(500);
    expect(errorCode(failed)).toBe('server_error');
    fail = false;
    const next = await post(gw.url, { model: 'gpt-test', input: 'again' });
    expect(next.status).toBe(200);
    expect(next.json.status).toBe('completed');
  });
});
