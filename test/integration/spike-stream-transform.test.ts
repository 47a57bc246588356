/**
 * The integration seam, proven: a stream transform mounted in front of a stock
 * http-proxy-middleware proxy rewrites one SSE event while every other event streams through
 * unbuffered. The fake upstream sends event N+1 only after the client has received event N, so a
 * relay that buffered anything would deadlock (and the jest timeout would fail the test): no
 * timing is measured.
 */
import express from 'express';
import { createProxyMiddleware } from 'http-proxy-middleware';
import { streamTransform } from '../../lib/middleware/stream-transform';
import { relayProxyOptions } from '../../lib/middleware/relay-proxy';
import { startFakeUpstream, type FakeUpstream } from '../support/fake-upstream';
import { listen, type Listening } from '../support/listen';
import { postSse } from '../support/sse-client';

const upperCaseSecondDelta = (): express.RequestHandler => {
  let deltas = 0;
  return streamTransform({
    name: 'upper-case-second-delta',
    onEvent(event, emit) {
      if (event.type === 'response.output_text.delta' && typeof event.delta === 'string') {
        deltas += 1;
        if (deltas === 2) {
          emit({ ...event, delta: event.delta.toUpperCase() });
          return;
        }
      }
      emit(event);
    },
  }) as express.RequestHandler;
};

const modes: Array<{ name: string; mount: (app: express.Express, target: string) => void }> = [
  {
    name: 'in front of a stock http-proxy-middleware proxy (tap mode)',
    mount: (app, target) =>
      app.post(
        '/v1/responses',
        upperCaseSecondDelta(),
        createProxyMiddleware({ target, changeOrigin: true }),
      ),
  },
  {
    name: 'with relayProxyOptions() given to the proxy (proxy mode)',
    mount: (app, target) =>
      app.post(
        '/v1/responses',
        express.json(),
        upperCaseSecondDelta(),
        createProxyMiddleware({ target, changeOrigin: true, ...relayProxyOptions() }),
      ),
  },
];

describe.each(modes)('a stream transform mounted $name', ({ mount }) => {
  let upstream: FakeUpstream;
  let gateway: Listening;

  beforeEach(async () => {
    upstream = await startFakeUpstream({ mode: 'stateful' });
    const app = express();
    mount(app, upstream.url);
    gateway = await listen(app);
  });

  afterEach(async () => {
    await gateway.close();
    await upstream.close();
  });

  it('rewrites one event and streams every other one through unbuffered', async () => {
    upstream.script({ kind: 'text', text: 'one two three four', chunks: 4 });
    const gate = upstream.gate();
    const sentWhenReceived: number[] = [];
    const client = await postSse(
      `${gateway.url}/v1/responses`,
      { model: 'gpt-test', input: 'hi', stream: true },
      {
        headers: { authorization: 'Bearer sk-test' },
        onEvent() {
          sentWhenReceived.push(gate.sent);
          gate.next();
        },
      },
    );
    const events = await client.done;
    expect(client.status).toBe(200);
    // When the client saw event N, the upstream had sent exactly N+1: nothing was held back.
    expect(sentWhenReceived).toEqual(events.map((_, index) => index + 1));
    const deltas = events.filter((e) => e.json?.type === 'response.output_text.delta');
    const original = upstream.requests.at(-1);
    expect(original?.outcome).toBe('stream:completed');
    expect(deltas).toHaveLength(4);
    const text = deltas.map((e) => e.json?.delta as string);
    expect(text[1]).toBe(text[1]?.toUpperCase());
    expect(text.join('').toLowerCase()).toBe('one two three four');
    // Untouched events keep the upstream's exact bytes: the first delta parses to what was sent.
    expect(events.at(-1)?.json?.type).toBe('response.completed');
  });
});
