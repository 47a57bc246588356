/**
 * The integration seam, proven: a stream transform mounted in front of a stock
 * http-proxy-middleware proxy rewrites one SSE event while every other event streams through
 * unbuffered. The upstream sends event N+1 only after the client has received event N, so a relay
 * that buffered anything would deadlock (and the test would time out): no timing is measured.
 */
import express from 'express';
import { createProxyMiddleware } from 'http-proxy-middleware';
import type http from 'node:http';
import { streamTransform } from '../../lib/middleware/stream-transform';
import { relayProxyOptions } from '../../lib/middleware/relay-proxy';
import { listen, type Listening } from '../support/listen';
import { postSse } from '../support/sse-client';

interface LockstepUpstream extends Listening {
  /** Lets the upstream send its next event. */
  release(): void;
  sent: number;
}

function textEvents(): Array<Record<string, unknown>> {
  const events: Array<Record<string, unknown>> = [
    {
      type: 'response.created',
      response: { id: 'resp_1', object: 'response', status: 'in_progress', output: [] },
    },
    {
      type: 'response.output_item.added',
      output_index: 0,
      item: { id: 'msg_1', type: 'message', role: 'assistant', status: 'in_progress', content: [] },
    },
  ];
  for (const delta of ['a', 'b', 'c', 'd']) {
    events.push({
      type: 'response.output_text.delta',
      item_id: 'msg_1',
      output_index: 0,
      content_index: 0,
      delta,
    });
  }
  events.push({
    type: 'response.completed',
    response: { id: 'resp_1', object: 'response', status: 'completed', output: [] },
  });
  return events.map((event, index) => ({ ...event, sequence_number: index }));
}

async function lockstepUpstream(events: Array<Record<string, unknown>>): Promise<LockstepUpstream> {
  let releases = 0;
  let wake: (() => void) | undefined;
  const state = { sent: 0 };
  const listening = await listen((req: http.IncomingMessage, res: http.ServerResponse) => {
    req.resume();
    req.once('end', async () => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      for (const event of events) {
        // Event 0 goes at once; event N+1 only after the client confirmed event N.
        while (state.sent > releases) await new Promise<void>((resolve) => (wake = resolve));
        res.write(`event: ${String(event.type)}\ndata: ${JSON.stringify(event)}\n\n`);
        state.sent += 1;
      }
      res.end();
    });
  });
  const upstream = listening as LockstepUpstream;
  upstream.release = () => {
    releases += 1;
    wake?.();
  };
  Object.defineProperty(upstream, 'sent', { get: () => state.sent });
  return upstream;
}

const uppercaseB = streamTransform({
  name: 'uppercase-b',
  onEvent(event, emit) {
    if (event.type === 'response.output_text.delta' && event.delta === 'b')
      emit({ ...event, delta: 'B' });
    else emit(event);
  },
});

describe('the integration seam', () => {
  let upstream: LockstepUpstream;
  let gateway: Listening;

  afterEach(async () => {
    await gateway?.close();
    await upstream?.close();
  });

  async function runLockstep(): Promise<void> {
    const sentWhenReceived: number[] = [];
    const exchange = await postSse(
      `${gateway.url}/v1/responses`,
      { model: 'm', input: 'hi', stream: true },
      {
        onEvent() {
          sentWhenReceived.push(upstream.sent);
          upstream.release();
        },
      },
    );
    const events = await exchange.done;
    expect(exchange.status).toBe(200);
    expect(events.map((e) => (e.json?.delta as string | undefined) ?? e.json?.type)).toEqual([
      'response.created',
      'response.output_item.added',
      'a',
      'B',
      'c',
      'd',
      'response.completed',
    ]);
    // When the client saw event N, the upstream had sent exactly N+1 events: nothing was held back.
    expect(sentWhenReceived).toEqual([1, 2, 3, 4, 5, 6, 7]);
    // Untouched events keep the upstream's exact bytes.
    expect(events[2]?.data).toBe(JSON.stringify(textEvents()[2]));
  }

  describe('when mounted in front of a stock http-proxy-middleware proxy (tap mode)', () => {
    it('rewrites one event and streams every other one through unbuffered', async () => {
      upstream = await lockstepUpstream(textEvents());
      const app = express();
      app.post(
        '/v1/responses',
        uppercaseB,
        createProxyMiddleware({ target: upstream.url, changeOrigin: true }),
      );
      gateway = await listen(app);
      await runLockstep();
    });
  });

  describe('when the proxy is given relayProxyOptions() (proxy mode)', () => {
    it('rewrites one event and streams every other one through unbuffered', async () => {
      upstream = await lockstepUpstream(textEvents());
      const app = express();
      app.post(
        '/v1/responses',
        express.json(),
        uppercaseB,
        createProxyMiddleware({ target: upstream.url, changeOrigin: true, ...relayProxyOptions() }),
      );
      gateway = await listen(app);
      await runLockstep();
    });
  });
});
