/**
 * errorEnvelope() once an SSE stream has started, against the fake upstream, in tap and proxy
 * mode: in-stream errors of every shape become the hybrid `error` event followed by exactly one
 * terminal `response.failed`; a broken or stalled upstream ends the stream the same way; the
 * content type never changes; a stream without errors is forwarded byte for byte and unbuffered.
 * Also: errorEnvelope with another stage that closes streams (a minimal one, and sseCompletion),
 * mounted before and after it.
 */
import express from 'express';
import { createProxyMiddleware, fixRequestBody } from 'http-proxy-middleware';
import type http from 'node:http';
import { errorEnvelope, relayErrorHandler } from '../../lib/middleware/error-envelope';
import type { StreamEnd } from '../../lib/middleware/exchange';
import { relayProxyOptions } from '../../lib/middleware/relay-proxy';
import { sseCompletion } from '../../lib/middleware/sse-completion';
import { streamFailureEvents } from '../../lib/middleware/stream-failure';
import { streamTransform } from '../../lib/middleware/stream-transform';
import type { JsonObject } from '../../lib/protocol/types';
import { listen, type Listening } from '../support/listen';
import type { Behaviour, FakeUpstream } from '../support/fake-upstream';
import { postStream, type StreamAnswer } from '../support/fake-upstream/client';
import { useFakes } from '../support/fake-upstream/testing';

type Mode = 'tap' | 'proxy';

const BODY = { model: 'gpt-5', input: 'hi', stream: true };
const TERMINALS = ['response.completed', 'response.failed', 'response.incomplete'];

const start = useFakes();
const servers: Listening[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((server) => server.close()));
});

interface Setup {
  url: string;
  /** The upstream's bytes of the last exchange, as the proxy received them. */
  upstreamText(): string;
}

async function gatewayFor(
  fake: FakeUpstream,
  mode: Mode,
  middlewares: express.RequestHandler[] = [errorEnvelope({ provider: 'openai', logger: false })],
): Promise<Setup> {
  let upstream = '';
  const watch = (proxyRes: http.IncomingMessage) => {
    upstream = '';
    proxyRes.on('data', (chunk: Buffer) => (upstream += chunk.toString('utf8')));
  };
  const app = express();
  app.post(
    '/v1/responses',
    express.json(),
    ...middlewares,
    mode === 'tap'
      ? createProxyMiddleware({
          target: fake.url,
          changeOrigin: true,
          on: { proxyReq: fixRequestBody, proxyRes: watch },
        })
      : createProxyMiddleware({
          target: fake.url,
          changeOrigin: true,
          ...relayProxyOptions({ on: { proxyRes: watch } }),
        }),
  );
  app.use(relayErrorHandler({ logger: false }));
  const server = await listen(app);
  servers.push(server);
  return { url: `${server.url}/v1/responses`, upstreamText: () => upstream };
}

const events = (answer: StreamAnswer): JsonObject[] =>
  answer.events.map((event) => event.json ?? { unparsed: event.data });
const types = (answer: StreamAnswer): string[] => events(answer).map((e) => String(e.type));

/** The stream invariants every answer here must keep. */
function expectWellFormed(answer: StreamAnswer): void {
  expect(answer.status).toBe(200);
  expect(answer.headers['content-type']).toMatch(/^text\/event-stream/);
  expect(answer.ending).toBe('end');
  const list = events(answer);
  expect(list[0]?.type).toBe('response.created');
  expect(list.filter((e) => TERMINALS.includes(String(e.type)))).toHaveLength(1);
  expect(TERMINALS).toContain(list[list.length - 1]?.type);
  expect(list.filter((e) => e.type === 'error').length).toBeLessThanOrEqual(1);
  const sequence = list.map((e) => e.sequence_number as number);
  for (let i = 1; i < sequence.length; i += 1) {
    expect(sequence[i]).toBeGreaterThan(sequence[i - 1] as number);
  }
}

function hybrid(error: {
  type: string;
  code: string | null;
  message: string;
  param: string | null;
}) {
  return {
    type: 'error',
    code: error.code,
    message: error.message,
    param: error.param,
    sequence_number: expect.any(Number),
    error,
  };
}

const overloaded = {
  type: 'server_error',
  code: 'server_is_overloaded',
  message: 'The server is overloaded. Please retry.',
  param: null,
};

describe.each<Mode>(['tap', 'proxy'])('errorEnvelope on streams in %s mode', (mode) => {
  let fake: FakeUpstream;
  beforeEach(async () => {
    fake = await start();
  });
  const run = async (behaviour: Behaviour, setup?: Setup): Promise<StreamAnswer> => {
    const gateway = setup ?? (await gatewayFor(fake, mode));
    fake.script(behaviour);
    return postStream(gateway.url, { body: BODY });
  };

  it.each(['flat', 'nested'] as const)(
    'rewrites a %s error event into the hybrid shape and closes the stream with response.failed',
    async (shape) => {
      const answer = await run({ kind: 'stream_error', afterEvents: 4, shape, error: overloaded });
      expectWellFormed(answer);
      expect(types(answer)).toEqual([
        'response.created',
        'response.in_progress',
        'response.output_item.added',
        'response.content_part.added',
        'error',
        'response.failed',
      ]);
      const list = events(answer);
      expect(list[4]).toEqual(hybrid(overloaded));
      expect(list[5]).toMatchObject({
        response: {
          status: 'failed',
          error: {
            code: 'server_is_overloaded',
            message: 'The server is overloaded. Please retry.',
          },
          output: [],
        },
      });
      expect((list[5]?.response as JsonObject).id).toBe((list[0]?.response as JsonObject).id);
    },
  );

  it("keeps the upstream's own response.failed after its error event", async () => {
    const answer = await run({
      kind: 'stream_error',
      afterEvents: 2,
      shape: 'nested',
      thenFailed: true,
      error: {
        type: 'invalid_request_error',
        code: 'context_length_exceeded',
        message: 'Too long.',
      },
    });
    expectWellFormed(answer);
    expect(types(answer)).toEqual([
      'response.created',
      'response.in_progress',
      'error',
      'response.failed',
    ]);
    expect(events(answer)[2]).toEqual(
      hybrid({
        type: 'invalid_request_error',
        code: 'context_length_exceeded',
        message: 'Too long.',
        param: null,
      }),
    );
  });

  it('forwards an error event already in the hybrid shape byte for byte', async () => {
    const gateway = await gatewayFor(fake, mode);
    const answer = await run(
      { kind: 'stream_error', afterEvents: 3, shape: 'hybrid', error: overloaded },
      gateway,
    );
    expectWellFormed(answer);
    const upstream = gateway.upstreamText();
    expect(upstream).toContain('event: error\n');
    expect(answer.text.startsWith(upstream)).toBe(true);
    expect(types(answer).slice(-2)).toEqual(['error', 'response.failed']);
  });

  it("recognises previous_response_not_found in the WebSocket form, in the Codex backend's wording", async () => {
    const frame = {
      type: 'error',
      status: 400,
      error: {
        type: 'invalid_request_error',
        code: 'invalid_request_error',
        message: 'Invalid `previous_response_id`.',
      },
    };
    const answer = await run({
      kind: 'cut',
      afterEvents: 2,
      mode: 'eof',
      then: { kind: 'inject', at: 2, raw: `event: error\ndata: ${JSON.stringify(frame)}\n\n` },
    });
    expectWellFormed(answer);
    expect(types(answer)).toEqual([
      'response.created',
      'response.in_progress',
      'error',
      'response.failed',
    ]);
    expect(events(answer)[2]).toEqual(
      hybrid({
        type: 'invalid_request_error',
        code: 'previous_response_not_found',
        message: 'Invalid `previous_response_id`.',
        param: 'previous_response_id',
      }),
    );
    expect(events(answer)[3]).toMatchObject({
      response: { error: { code: 'previous_response_not_found' } },
    });
  });

  it('ends a stream whose upstream connection is reset with error + response.failed', async () => {
    const answer = await run({
      kind: 'cut',
      afterEvents: 9,
      mode: 'reset',
      then: { kind: 'tool_calls', calls: [{ name: 'exec_command', arguments: '{"cmd":"ls"}' }] },
    });
    expectWellFormed(answer);
    const list = events(answer);
    expect(types(answer).slice(-2)).toEqual(['error', 'response.failed']);
    const error = {
      type: 'server_error',
      code: 'server_error',
      message:
        'The upstream stream ended before the response was complete. Please retry your request.',
      param: null,
    };
    expect(list[list.length - 2]).toEqual(hybrid(error));
    const failed = list[list.length - 1]?.response as JsonObject;
    expect(failed.status).toBe('failed');
    expect(failed.error).toEqual({ code: 'server_error', message: error.message });
    // The items the client saw completed are in the failed response's output.
    const done = list.filter((e) => e.type === 'response.output_item.done').map((e) => e.item);
    expect(failed.output).toEqual(done);
  });

  it('leaves a clean EOF without terminal event alone (sseCompletion’s job)', async () => {
    const answer = await run({ kind: 'cut', afterEvents: 3, mode: 'eof' });
    expect(answer.ending).toBe('end');
    expect(types(answer)).toEqual([
      'response.created',
      'response.in_progress',
      'response.output_item.added',
    ]);
  });

  it('ends a stream another stage declared stalled', async () => {
    const idle = streamTransform({
      name: 'idle-timer',
      onEvent(event, emit, context) {
        emit(event);
        if (event.type === 'response.in_progress') {
          setTimeout(() => context.abortUpstream({ kind: 'stalled', idleMs: 50 }), 50);
        }
      },
    });
    const gateway = await gatewayFor(fake, mode, [
      errorEnvelope({ logger: false }),
      idle as express.RequestHandler,
    ]);
    const answer = await run({ kind: 'stall', afterEvents: 3 }, gateway);
    expectWellFormed(answer);
    expect(types(answer)).toEqual([
      'response.created',
      'response.in_progress',
      'response.output_item.added',
      'error',
      'response.failed',
    ]);
    await fake.requests[0]?.closed; // the stalled upstream was let go
    expect(fake.requests[0]?.socketClosedEarly).toBe(true);
  });

  it('starts the stream with response.created when the error comes first', async () => {
    const answer = await run({
      kind: 'stream_error',
      afterEvents: 0,
      shape: 'flat',
      error: overloaded,
    });
    expectWellFormed(answer);
    expect(types(answer)).toEqual(['response.created', 'error', 'response.failed']);
    expect(events(answer)[1]).toEqual(hybrid(overloaded));
    const [created, , failed] = events(answer);
    expect((failed?.response as JsonObject).id).toBe((created?.response as JsonObject).id);
    expect((created?.response as JsonObject).id).toMatch(/^resp_/);
  });

  it('asks the upstream for an uncompressed stream, leaving JSON requests alone', async () => {
    const gateway = await gatewayFor(fake, mode);
    await postStream(gateway.url, { body: BODY, headers: { 'accept-encoding': 'gzip, br' } });
    await postStream(gateway.url, {
      body: { ...BODY, stream: false },
      headers: { 'accept-encoding': 'gzip, br' },
    });
    expect(fake.requests.map((r) => r.headers['accept-encoding'])).toEqual([
      'identity',
      mode === 'tap' ? 'gzip, br' : 'identity',
    ]);
  });

  it('forwards a stream without errors byte for byte, event by event (lockstep)', async () => {
    const gateway = await gatewayFor(fake, mode);
    const gate = fake.gate();
    fake.script({
      kind: 'lockstep',
      then: { kind: 'text', text: 'one two three four', chunks: 4 },
    });
    let received = 0;
    const answer = await postStream(gateway.url, {
      body: BODY,
      onEvent: () => {
        received += 1;
        // Event N reached the client before the upstream was allowed to send N+1.
        expect(gate.sent).toBe(received);
        gate.release();
      },
    });
    expectWellFormed(answer);
    expect(types(answer).at(-1)).toBe('response.completed');
    expect(answer.text).toBe(gateway.upstreamText());
  });

  it('ends a started stream when a later middleware passes an error to Express', async () => {
    let forward: ((error: unknown) => void) | undefined;
    const keepNext: express.RequestHandler = (_req, _res, next) => {
      forward = next;
      next();
    };
    const failMidStream = streamTransform({
      name: 'fails-mid-stream',
      onEvent(event, emit) {
        emit(event);
        if (event.type === 'response.output_text.delta') {
          setImmediate(() => forward?.(new Error('quota store exploded')));
        }
      },
    });
    const gateway = await gatewayFor(fake, mode, [
      errorEnvelope({ logger: false }),
      keepNext,
      failMidStream as express.RequestHandler,
    ]);
    const gate = fake.gate();
    fake.script({ kind: 'lockstep', then: { kind: 'text', text: 'a b c d', chunks: 4 } });
    const answer = await postStream(gateway.url, {
      body: BODY,
      onEvent: (event) => {
        // Hold the upstream at the first delta: the failure arrives while the stream is live.
        if (event.json?.type !== 'response.output_text.delta') gate.release();
      },
    });
    expectWellFormed(answer);
    expect(types(answer).slice(-2)).toEqual(['error', 'response.failed']);
    expect(events(answer).at(-2)).toEqual(
      hybrid({
        type: 'server_error',
        code: 'server_error',
        message: 'The relay had an error while processing your request. Please retry your request.',
        param: null,
      }),
    );
  });
  it('only ends the stream when the failure comes after its terminal event', async () => {
    let forward: ((error: unknown) => void) | undefined;
    const keepNext: express.RequestHandler = (_req, _res, next) => {
      forward = next;
      next();
    };
    const failAfterTerminal = streamTransform({
      name: 'fails-after-terminal',
      onEvent(event, emit) {
        emit(event);
        if (event.type === 'response.completed') setImmediate(() => forward?.(new Error('late')));
      },
    });
    const gateway = await gatewayFor(fake, mode, [
      errorEnvelope({ logger: false }),
      keepNext,
      failAfterTerminal as express.RequestHandler,
    ]);
    // The upstream keeps its socket open after response.completed.
    const answer = await run({ kind: 'hold_open', then: { kind: 'text', text: 'done' } }, gateway);
    expectWellFormed(answer);
    expect(types(answer).at(-1)).toBe('response.completed');
    expect(types(answer)).not.toContain('error');
    await fake.requests[0]?.closed;
  });
});

describe.each<Mode>(['tap', 'proxy'])(
  'errorEnvelope with another stage that closes streams (%s mode)',
  (mode) => {
    /** What sseCompletion does for an unterminated stream, via the shared helper. */
    const closer = (ends: StreamEnd['kind'][]) =>
      streamTransform({
        name: 'closer',
        onEnd(end, emit, context) {
          ends.push(end.kind);
          for (const event of streamFailureEvents(context, {
            message: 'closed by the other stage',
            type: 'server_error',
            param: null,
            code: 'server_error',
          })) {
            emit(event);
          }
        },
      }) as express.RequestHandler;

    const cases: Array<[string, Behaviour]> = [
      ['a reset', { kind: 'cut', afterEvents: 4, mode: 'reset' }],
      [
        'an error event then EOF',
        { kind: 'stream_error', afterEvents: 4, shape: 'flat', error: overloaded },
      ],
    ];

    it.each(cases)('after %s, mounted first: exactly one error and one terminal', async (_n, b) => {
      const fake = await start();
      const ends: StreamEnd['kind'][] = [];
      const gateway = await gatewayFor(fake, mode, [
        errorEnvelope({ logger: false }),
        closer(ends),
      ]);
      fake.script(b);
      const answer = await postStream(gateway.url, { body: BODY });
      expectWellFormed(answer);
      expect(types(answer).slice(-2)).toEqual(['error', 'response.failed']);
      // errorEnvelope closed it; the other stage ran and added nothing.
      expect(JSON.stringify(events(answer))).not.toContain('closed by the other stage');
      expect(ends).toHaveLength(1);
    });

    it.each(cases)(
      'after %s, mounted second: exactly one error and one terminal',
      async (_n, b) => {
        const fake = await start();
        const ends: StreamEnd['kind'][] = [];
        const gateway = await gatewayFor(fake, mode, [
          closer(ends),
          errorEnvelope({ logger: false }),
        ]);
        fake.script(b);
        const answer = await postStream(gateway.url, { body: BODY });
        expectWellFormed(answer);
        expect(types(answer).slice(-2)).toEqual(['error', 'response.failed']);
        expect(ends).toHaveLength(1);
      },
    );
  },
);

describe.each<Mode>(['tap', 'proxy'])('errorEnvelope with sseCompletion (%s mode)', (mode) => {
  const cases: Array<[string, Behaviour, string[]]> = [
    [
      'a flat error event then EOF',
      { kind: 'stream_error', afterEvents: 3, shape: 'flat', error: overloaded },
      ['error', 'response.failed'],
    ],
    ['a reset', { kind: 'cut', afterEvents: 3, mode: 'reset' }, ['error', 'response.failed']],
    ['a clean EOF', { kind: 'cut', afterEvents: 3, mode: 'eof' }, ['error', 'response.failed']],
    [
      'an error before response.created',
      { kind: 'stream_error', afterEvents: 0, shape: 'nested', error: overloaded },
      ['response.created', 'error', 'response.failed'],
    ],
    ['a normal stream', { kind: 'text', text: 'hello there' }, ['response.completed']],
  ];
  const orders: Array<[string, () => express.RequestHandler[]]> = [
    [
      'errorEnvelope first (documented)',
      () => [errorEnvelope({ logger: false }), sseCompletion() as express.RequestHandler],
    ],
    [
      'sseCompletion first',
      () => [sseCompletion() as express.RequestHandler, errorEnvelope({ logger: false })],
    ],
  ];
  describe.each(orders)('%s', (_order, middlewares) => {
    it.each(cases)('after %s: one error at most, one terminal', async (_name, behaviour, tail) => {
      const fake = await start();
      const gateway = await gatewayFor(fake, mode, middlewares());
      fake.script(behaviour);
      const answer = await postStream(gateway.url, { body: BODY });
      expectWellFormed(answer);
      expect(types(answer).slice(-tail.length)).toEqual(tail);
      const error = events(answer).find((e) => e.type === 'error');
      if (error) {
        // Always the hybrid shape, whoever wrote it.
        expect(error).toEqual(hybrid(error.error as Parameters<typeof hybrid>[0]));
      }
    });
  });
});
