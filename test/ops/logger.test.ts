/**
 * The access log: one structured line per exchange with the relay's fields, secrets redacted
 * wherever they were planted (headers of both directions, the query string, logged objects,
 * messages), health checks at debug level.
 */
import { Writable } from 'node:stream';
import express from 'express';
import request from 'supertest';
import { getExchange } from '../../lib/middleware/exchange';
import { createLogger, relayLogger } from '../../lib/ops/logger';
import { markRoute } from '../../lib/ops/summary';

const SECRET = 'sk-test-PLANTED-SECRET-1234567890';

interface Captured {
  stream: Writable;
  text(): string;
  lines(): Array<Record<string, unknown>>;
}

function capture(): Captured {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      chunks.push(chunk.toString('utf8'));
      callback();
    },
  });
  const text = (): string => chunks.join('');
  return {
    stream,
    text,
    lines: () =>
      text()
        .split('\n')
        .filter((line) => line.trim() !== '')
        .map((line) => JSON.parse(line) as Record<string, unknown>),
  };
}

function appWith(sink: Captured, level = 'info'): express.Express {
  const logger = createLogger({ level, destination: sink.stream });
  const app = express();
  app.use(relayLogger({ logger }));
  app.post('/v1/responses', (req, res) => {
    markRoute(req, 'responses');
    const exchange = getExchange(req, res);
    exchange.annotations.tenant = 'T3nantHashAbCdEfGhIjKl';
    exchange.annotations.upstream = 'openai';
    exchange.attempts = 2;
    exchange.finalResponse = { id: 'resp_abc', object: 'response', status: 'completed' } as never;
    // What middlewares log through req.log: objects with credentials in them.
    req.log.warn(
      {
        apiKey: SECRET,
        nested: { token: SECRET, note: `key was ${SECRET}` },
        headers: { authorization: `Bearer ${SECRET}` },
        message: `upstream said: Incorrect API key provided: ${SECRET}`,
      },
      `something about Bearer ${SECRET}`,
    );
    res.setHeader('set-cookie', `session=${SECRET}; HttpOnly`);
    res.status(200).json({ ok: true });
  });
  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  app.get('/boom', () => {
    throw new Error(`failed with key ${SECRET}`);
  });
  return app;
}

describe('relayLogger', () => {
  it('writes one line per exchange with the relay fields', async () => {
    const sink = capture();
    await request(appWith(sink))
      .post('/v1/responses?stream=false')
      .set('authorization', 'Bearer sk-client')
      .set('x-request-id', 'req_client-chosen-1')
      .set('session-id', 'thread-42')
      .send({ model: 'm' })
      .expect(200);
    const lines = sink.lines().filter((line) => line.msg === 'request completed');
    expect(lines).toHaveLength(1);
    const line = lines[0] as Record<string, unknown>;
    expect(line).toMatchObject({
      reqId: 'req_client-chosen-1',
      route: 'responses',
      status: 200,
      attempts: 2,
      tenant: 'T3nantHashAbCdEfGhIjKl',
      responseId: 'resp_abc',
      responseStatus: 'completed',
      upstream: 'openai',
      level: 30,
    });
    expect(typeof line.durationMs).toBe('number');
    expect(typeof line.responseTime).toBe('number');
  });

  it('never writes a planted secret, wherever it was planted', async () => {
    const sink = capture();
    const app = appWith(sink, 'trace');
    await request(app)
      .post(`/v1/responses?api_key=${SECRET}&key=${SECRET}`)
      .set('authorization', `Bearer ${SECRET}`)
      .set('x-api-key', SECRET)
      .set('api-key', SECRET)
      .set('cookie', `session=${SECRET}`)
      .set('sec-websocket-protocol', `openai-insecure-api-key.${SECRET}`)
      .set('openai-api-key', SECRET)
      .set('chatgpt-account-id', SECRET)
      .send({ model: 'm' })
      .expect(200);
    await request(app).get('/boom').set('authorization', `Bearer ${SECRET}`).expect(500);
    const text = sink.text();
    expect(text.length).toBeGreaterThan(0);
    expect(text).not.toContain(SECRET);
    expect(text).not.toContain('PLANTED');
    // The redaction marker is there instead, and the lines are still JSON.
    const lines = sink.lines();
    const completed = lines.find((line) => line.msg === 'request completed') as {
      req: { headers: Record<string, string>; url: string };
      res: { headers: Record<string, string> };
    };
    expect(completed.req.headers.authorization).toBe('[redacted]');
    expect(completed.req.headers.cookie).toBe('[redacted]');
    expect(completed.req.headers['x-api-key']).toBe('[redacted]');
    expect(completed.res.headers['set-cookie']).toBe('[redacted]');
    expect(completed.req.url).toContain('api_key=[redacted]');
  });

  it('logs health checks at debug level and server errors at error level', async () => {
    const sink = capture();
    const app = appWith(sink, 'debug');
    await request(app).get('/healthz').expect(200);
    await request(app).get('/boom').expect(500);
    const [health, boom] = sink.lines().filter((line) => typeof line.responseTime === 'number');
    expect(health).toMatchObject({ level: 20, route: 'other', status: 200 });
    expect(boom).toMatchObject({ level: 50, status: 500 });
  });

  it('still writes the line when onSummary throws, and keeps serving', async () => {
    const sink = capture();
    const logger = createLogger({ destination: sink.stream });
    const app = express();
    let calls = 0;
    app.use(
      relayLogger({
        logger,
        onSummary: () => {
          calls += 1;
          throw new Error('observer bug');
        },
      }),
    );
    app.get('/v1/models', (_req, res) => res.json({ object: 'list', data: [] }));
    const server = app.listen(0, '127.0.0.1');
    await new Promise<void>((resolve) => server.once('listening', () => resolve()));
    const { port } = server.address() as { port: number };
    try {
      for (let round = 0; round < 2; round += 1) {
        const response = await fetch(`http://127.0.0.1:${port}/v1/models`);
        expect(response.status).toBe(200);
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    } finally {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
    expect(calls).toBe(2);
    const lines = sink.lines().filter((entry) => entry.msg === 'request completed');
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatchObject({ status: 200 });
  });

  it('reports a client that left before the end', async () => {
    const sink = capture();
    const logger = createLogger({ destination: sink.stream });
    const app = express();
    app.use(relayLogger({ logger }));
    app.get('/slow', (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(': ping\n\n');
    });
    const server = app.listen(0, '127.0.0.1');
    await new Promise<void>((resolve) => server.once('listening', () => resolve()));
    const { port } = server.address() as { port: number };
    const controller = new AbortController();
    const response = await fetch(`http://127.0.0.1:${port}/slow`, { signal: controller.signal });
    expect(response.status).toBe(200);
    controller.abort();
    await new Promise((resolve) => setTimeout(resolve, 100));
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    const line = sink.lines().find((entry) => entry.msg === 'request aborted by the client');
    expect(line).toMatchObject({ level: 40, aborted: true, status: 200 });
  });
});
