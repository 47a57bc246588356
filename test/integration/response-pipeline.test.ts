/**
 * The response pipeline behind every relay middleware, in both adapters: a broken upstream ends
 * the client's stream through the stages, a departed client stops the upstream, an async stage
 * keeps order, a before-final hook holds the terminal event back, error responders replace error
 * bodies, and back-pressure reaches the upstream.
 */
import express from 'express';
import { createProxyMiddleware } from 'http-proxy-middleware';
import http from 'node:http';
import { getExchange, type StreamEnd } from '../../lib/middleware/exchange';
import { relayProxyOptions } from '../../lib/middleware/relay-proxy';
import { installStage, streamTransform } from '../../lib/middleware/stream-transform';
import { tapResponse } from '../../lib/middleware/response-tap';
import { listen, type Listening } from '../support/listen';
import { postSse } from '../support/sse-client';

type Handler = (req: http.IncomingMessage, res: http.ServerResponse) => void;

const sse = (event: Record<string, unknown>): string =>
  `event: ${String(event.type)}\ndata: ${JSON.stringify(event)}\n\n`;

const created = {
  type: 'response.created',
  sequence_number: 0,
  response: { id: 'resp_1', object: 'response', status: 'in_progress', output: [] },
};
const delta = (n: number): Record<string, unknown> => ({
  type: 'response.output_text.delta',
  sequence_number: n,
  item_id: 'msg_1',
  output_index: 0,
  content_index: 0,
  delta: `d${n}`,
});
const completed = {
  type: 'response.completed',
  sequence_number: 9,
  response: { id: 'resp_1', object: 'response', status: 'completed', output: [] },
};

const modes = [
  {
    name: 'tap mode (stock proxy)',
    proxy: (target: string) => createProxyMiddleware({ target, changeOrigin: true }),
  },
  {
    name: 'proxy mode (relayProxyOptions)',
    proxy: (target: string) =>
      createProxyMiddleware({ target, changeOrigin: true, ...relayProxyOptions() }),
  },
];

describe.each(modes)('the response pipeline in $name', ({ proxy }) => {
  const open: Listening[] = [];
  afterEach(async () => {
    while (open.length > 0) await open.pop()?.close();
  });

  async function setup(
    upstreamHandler: Handler,
    ...middlewares: express.RequestHandler[]
  ): Promise<Listening> {
    const upstream = await listen(upstreamHandler);
    open.push(upstream);
    const app = express();
    app.post('/v1/responses', ...middlewares, proxy(upstream.url));
    const gateway = await listen(app);
    open.push(gateway);
    return gateway;
  }

  it('ends the client stream through the stages when the upstream resets mid-stream', async () => {
    const ends: StreamEnd['kind'][] = [];
    const gateway = await setup(
      (req, res) => {
        req.resume();
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        res.write(sse(created) + sse(delta(1)), () =>
          setImmediate(() => res.socket?.resetAndDestroy()),
        );
      },
      streamTransform({
        name: 'watch-end',
        onEvent: (event, emit) => emit(event),
        onEnd: (end, emit) => {
          ends.push(end.kind);
          emit({
            type: 'response.failed',
            response: { id: 'resp_1', object: 'response', status: 'failed', output: [] },
          });
        },
      }),
    );
    const client = await postSse(`${gateway.url}/v1/responses`, { stream: true });
    const events = await client.done;
    expect(events.map((e) => e.json?.type)).toEqual([
      'response.created',
      'response.output_text.delta',
      'response.failed',
    ]);
    expect(ends).toEqual(['error']);
  });

  it('stops the upstream when the client leaves mid-stream', async () => {
    let upstreamClosed!: () => void;
    const closed = new Promise<void>((resolve) => (upstreamClosed = resolve));
    const gateway = await setup(
      (req, res) => {
        req.resume();
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        res.write(sse(created));
        res.once('close', () => upstreamClosed());
      },
      streamTransform({ name: 'pass', onEvent: (event, emit) => emit(event) }),
    );
    let received = 0;
    const client = await postSse(
      `${gateway.url}/v1/responses`,
      { stream: true },
      {
        onEvent: () => {
          received += 1;
          setImmediate(() => client.request.destroy());
        },
      },
    );
    await closed; // the upstream saw its connection close; the jest timeout is the hang detector
    expect(received).toBe(1);
  });

  describe.each([
    {
      how: 'throws',
      stage: (): express.RequestHandler =>
        streamTransform({
          name: 'faulty',
          onEvent: (event, emit) => {
            if (event.type === 'response.output_text.delta') throw new Error('stage bug');
            emit(event);
          },
        }),
    },
    {
      how: 'rejects',
      stage: (): express.RequestHandler =>
        streamTransform({
          name: 'faulty',
          onEvent: async (event, emit) => {
            if (event.type === 'response.output_text.delta') throw new Error('stage bug');
            emit(event);
          },
        }),
    },
  ])('a stage that $how on an event', ({ stage }) => {
    it('fails the stream for the client, stops the upstream and keeps the gateway up', async () => {
      let upstreamClosed!: () => void;
      const closed = new Promise<void>((resolve) => (upstreamClosed = resolve));
      const gateway = await setup((req, res) => {
        req.resume();
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        // The upstream never ends its stream: only the relay can end the client's.
        res.write(sse(created), () => setTimeout(() => res.write(sse(delta(1))), 20));
        res.once('close', () => upstreamClosed());
      }, stage());
      const client = await postSse(`${gateway.url}/v1/responses`, { stream: true });
      const events = await client.done;
      expect(events.map((event) => event.json?.type)).toEqual([
        'response.created',
        'error',
        'response.failed',
      ]);
      // The relay's own error, never the stage's message.
      expect(events[1]?.json).toMatchObject({ type: 'error', code: 'server_error' });
      expect(JSON.stringify(events)).not.toContain('stage bug');
      const sequence = events.map((event) => event.json?.sequence_number as number);
      expect(sequence).toEqual([...sequence].sort((a, b) => a - b));
      await closed;
      // The gateway still serves (an uncaught exception would have failed the test run).
      const next = await postSse(`${gateway.url}/v1/responses`, { stream: true });
      expect((await next.done)[0]?.json?.type).toBe('response.created');
    });
  });

  it('ends the stream with a terminal event when a stage throws at its end', async () => {
    const gateway = await setup(
      (req, res) => {
        req.resume();
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        res.end(sse(created) + sse(delta(1)));
      },
      streamTransform({
        name: 'faulty-end',
        onEnd: () => {
          throw new Error('stage bug at the end');
        },
      }),
    );
    const client = await postSse(`${gateway.url}/v1/responses`, { stream: true });
    const types = (await client.done).map((event) => event.json?.type);
    expect(types).toEqual([
      'response.created',
      'response.output_text.delta',
      'error',
      'response.failed',
    ]);
  });

  it('forwards the upstream bytes of every event a stage passed on unchanged', async () => {
    // Odd spacing and key order: any re-serialisation would show.
    const raw =
      '{ "sequence_number" : 1, "type":"response.output_text.delta",  "delta":"\\u00e9" }';
    const gateway = await setup(
      (req, res) => {
        req.resume();
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        res.end(
          sse(created) + `event: response.output_text.delta\ndata: ${raw}\n\n` + sse(completed),
        );
      },
      streamTransform({ name: 'pass', onEvent: (event, emit) => emit(event) }),
    );
    const events = await (await postSse(`${gateway.url}/v1/responses`, { stream: true })).done;
    expect(events[1]?.data).toBe(raw);
  });

  it('keeps event order when a stage is asynchronous', async () => {
    const gateway = await setup(
      (req, res) => {
        req.resume();
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        const body = [created, delta(1), delta(2), delta(3), delta(4), completed].map(sse).join('');
        // One chunk holding every event: the stage's awaits must not reorder them.
        res.end(body);
      },
      streamTransform({
        name: 'slow',
        onEvent: async (event, emit) => {
          await new Promise((resolve) => setImmediate(resolve));
          emit(event);
        },
      }),
    );
    const events = await (await postSse(`${gateway.url}/v1/responses`, { stream: true })).done;
    expect(events.map((e) => e.json?.delta ?? e.json?.type)).toEqual([
      'response.created',
      'd1',
      'd2',
      'd3',
      'd4',
      'response.completed',
    ]);
  });

  it('holds the terminal event back until the before-final hooks are done', async () => {
    let releaseHook!: () => void;
    const hookGate = new Promise<void>((resolve) => (releaseHook = resolve));
    const seenByHook: unknown[] = [];
    const holdFinal: express.RequestHandler = (req, res, next) => {
      const exchange = getExchange(req, res);
      exchange.beforeFinal.push(async (final) => {
        seenByHook.push(final.status, final.output.length);
        await hookGate;
      });
      tapResponse(exchange);
      next();
    };
    const message = {
      id: 'msg_1',
      type: 'message',
      role: 'assistant',
      status: 'completed',
      content: [{ type: 'output_text', text: 'hi', annotations: [] }],
    };
    const gateway = await setup((req, res) => {
      req.resume();
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.end(
        [
          created,
          {
            type: 'response.output_item.added',
            sequence_number: 1,
            output_index: 0,
            item: { ...message, status: 'in_progress', content: [] },
          },
          { type: 'response.output_item.done', sequence_number: 2, output_index: 0, item: message },
          completed,
        ]
          .map(sse)
          .join(''),
      );
    }, holdFinal);
    const types: unknown[] = [];
    const client = await postSse(
      `${gateway.url}/v1/responses`,
      { stream: true },
      {
        onEvent: (event) => {
          types.push(event.json?.type);
          if (event.json?.type === 'response.output_item.done') {
            // Everything before the terminal arrived while the hook still holds it.
            setImmediate(() => {
              expect(types).not.toContain('response.completed');
              releaseHook();
            });
          }
        },
      },
    );
    await client.done;
    expect(types).toEqual([
      'response.created',
      'response.output_item.added',
      'response.output_item.done',
      'response.completed',
    ]);
    // The hook saw the Response with the output rebuilt from the streamed item (completed had []).
    expect(seenByHook).toEqual(['completed', 1]);
  });

  it('still delivers the Response when a before-final hook throws, to the other hooks too', async () => {
    const annotations: Array<Record<string, unknown>> = [];
    const hooksRan: string[] = [];
    const faultyHooks: express.RequestHandler = (req, res, next) => {
      const exchange = getExchange(req, res);
      exchange.beforeFinal.push(
        () => {
          hooksRan.push('sync throw');
          throw new Error('hook bug');
        },
        async () => {
          hooksRan.push('async throw');
          throw new Error('hook bug');
        },
        () => {
          hooksRan.push('fine');
        },
      );
      annotations.push(exchange.annotations);
      tapResponse(exchange);
      next();
    };
    const json = { id: 'resp_2', object: 'response', status: 'completed', output: [] };
    const gateway = await setup((req, res) => {
      req.resume();
      if (req.headers['x-json'] === '1') {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify(json));
        return;
      }
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.end(sse(created) + sse(delta(1)) + sse(completed));
    }, faultyHooks);
    const stream = await postSse(`${gateway.url}/v1/responses`, { stream: true });
    expect((await stream.done).map((event) => event.json?.type)).toEqual([
      'response.created',
      'response.output_text.delta',
      'response.completed',
    ]);
    const reply = await fetch(`${gateway.url}/v1/responses`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-json': '1' },
      body: '{}',
    });
    expect(reply.status).toBe(200);
    expect(await reply.json()).toEqual(json);
    expect(hooksRan).toEqual([
      'sync throw',
      'async throw',
      'fine',
      'sync throw',
      'async throw',
      'fine',
    ]);
    expect(annotations.map((a) => a.before_final_failed)).toEqual([true, true]);
  });

  it('lets an error responder replace an upstream error body', async () => {
    const envelope: express.RequestHandler = (req, res, next) => {
      const exchange = getExchange(req, res);
      exchange.errorResponders.push((response) => ({
        status: response.status,
        headers: { 'x-seen-bytes': String(response.body.length) },
        envelope: { error: { message: 'replaced', type: 'server_error', param: null, code: null } },
      }));
      tapResponse(exchange);
      next();
    };
    const gateway = await setup((req, res) => {
      req.resume();
      res.writeHead(502, { 'content-type': 'text/html' });
      res.end('<html><body>Bad gateway</body></html>');
    }, envelope);
    const response = await fetch(`${gateway.url}/v1/responses`, {
      method: 'POST',
      body: '{}',
      headers: { 'content-type': 'application/json' },
    });
    expect(response.status).toBe(502);
    expect(response.headers.get('content-type')).toBe('application/json');
    expect(response.headers.get('x-seen-bytes')).toBe('37');
    expect(await response.json()).toEqual({
      error: { message: 'replaced', type: 'server_error', param: null, code: null },
    });
  });

  it('passes back-pressure on to the upstream instead of buffering the stream', async () => {
    const chunk = sse({ ...delta(1), delta: 'x'.repeat(64 * 1024) });
    const total = 64 * 1024 * 1024;
    let written = 0;
    let blocked!: () => void;
    const upstreamBlocked = new Promise<void>((resolve) => (blocked = resolve));
    const gateway = await setup(
      (req, res) => {
        req.resume();
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        res.write(sse(created));
        const pump = (): void => {
          while (written < total) {
            written += chunk.length;
            if (!res.write(chunk)) {
              blocked();
              res.once('drain', pump);
              return;
            }
          }
          res.end();
        };
        pump();
      },
      streamTransform({ name: 'pass', onEvent: (event, emit) => emit(event) }),
    );
    // A client that reads nothing after the headers.
    const request = http.request(`${gateway.url}/v1/responses`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
    });
    const response = await new Promise<http.IncomingMessage>((resolve) => {
      request.once('response', resolve);
      request.end('{"stream":true}');
    });
    response.pause();
    await upstreamBlocked;
    // Give a buffering relay every chance to drain the upstream into memory.
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(written).toBeLessThan(total / 2);
    request.destroy();
  });
});

describe('the response pipeline in proxy mode', () => {
  it('answers an unreachable upstream with an OpenAI error envelope', async () => {
    const dead = await listen(() => undefined);
    await dead.close();
    const app = express();
    app.post(
      '/v1/responses',
      createProxyMiddleware({ target: dead.url, changeOrigin: true, ...relayProxyOptions() }),
    );
    const gateway = await listen(app);
    try {
      const response = await fetch(`${gateway.url}/v1/responses`, { method: 'POST', body: '{}' });
      expect(response.status).toBe(502);
      expect(response.headers.get('content-type')).toBe('application/json');
      const body = (await response.json()) as { error: Record<string, unknown> };
      expect(Object.keys(body.error).sort()).toEqual(['code', 'message', 'param', 'type']);
      expect(body.error.code).toBe('relay_upstream_unreachable');
      expect(response.headers.get('x-request-id')).toMatch(/^req_/);
    } finally {
      await gateway.close();
    }
  });

  it('sends the body a middleware replaced, with its own content-length', async () => {
    let received = '';
    const upstream = await listen((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        received = Buffer.concat(chunks).toString();
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ length: req.headers['content-length'] }));
      });
    });
    const app = express();
    app.post(
      '/v1/responses',
      express.json(),
      (req, res, next) => {
        const exchange = getExchange(req, res);
        exchange.body = req.body as Record<string, unknown>;
        exchange.replaceBody({ ...exchange.body, input: 'rewritten ✓' });
        installStage(req, res, 'noop', () => ({ name: 'noop' }));
        next();
      },
      createProxyMiddleware({ target: upstream.url, changeOrigin: true, ...relayProxyOptions() }),
    );
    const gateway = await listen(app);
    try {
      const response = await fetch(`${gateway.url}/v1/responses`, {
        method: 'POST',
        body: JSON.stringify({ model: 'm', input: 'original' }),
        headers: { 'content-type': 'application/json' },
      });
      const answer = (await response.json()) as { length: string };
      expect(JSON.parse(received)).toEqual({ model: 'm', input: 'rewritten ✓' });
      expect(Number(answer.length)).toBe(Buffer.byteLength(received));
    } finally {
      await gateway.close();
      await upstream.close();
    }
  });
});
