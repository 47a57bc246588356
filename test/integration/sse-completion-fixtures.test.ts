/**
 * Every SSE body the mock provider sent the real Codex CLI (shared/fixtures/codex-wire/http-*),
 * replayed by a raw upstream through sseCompletion in front of a stock http-proxy-middleware
 * proxy. Each comes out well-formed (`response.created` first, one terminal event, last,
 * increasing sequence numbers), with an `output_item.done` for every item of its final output
 * (what Codex builds its history from), and the openai client accepts it with the full output:
 * the minimal shape (`output_item.done` + `completed`), the completed-only shape, the stream
 * dropped after a function call, failed and errored streams alike.
 */
import express from 'express';
import { createProxyMiddleware } from 'http-proxy-middleware';
import OpenAI from 'openai';
import { sseCompletion } from '../../lib/middleware/sse-completion';
import type { JsonObject, StreamEvent } from '../../lib/protocol/types';
import { doneItemsOf, exchangesOf, fixtureNames, loadFixture } from '../support/fixtures';
import { listen, type Listening } from '../support/listen';
import { postSse } from '../support/sse-client';

const TERMINALS = ['response.completed', 'response.failed', 'response.incomplete'];

interface Replay {
  key: string;
  events: StreamEvent[];
}

const replays: Replay[] = fixtureNames()
  .filter((name) => name.startsWith('http-'))
  .flatMap((name) =>
    exchangesOf(loadFixture(name))
      .filter((exchange) => exchange.transport === 'http' && exchange.events.length > 0)
      .map((exchange, index) => ({ key: `${name}#${index}`, events: exchange.events })),
  );

/** What the client must end up with for an upstream stream. */
function expected(events: StreamEvent[]): { type: string; output: JsonObject[] } {
  const terminal = events.find((event) => TERMINALS.includes(event.type));
  const listed = (terminal?.response as JsonObject | undefined)?.output;
  const streamed = doneItemsOf(events) as JsonObject[];
  return {
    type: terminal?.type ?? 'response.failed',
    output: Array.isArray(listed) && listed.length > 0 ? (listed as JsonObject[]) : streamed,
  };
}

describe('sseCompletion replaying the captured Codex streams', () => {
  let upstream: Listening;
  let gateway: Listening;
  let client: OpenAI;

  beforeAll(async () => {
    upstream = await listen((req, res) => {
      req.resume();
      const replay = replays.find((r) => r.key === req.headers['x-replay']);
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      for (const event of replay?.events ?? []) {
        res.write(`event: ${event.type}\ndata: ${JSON.stringify(event)}\n\n`);
      }
      res.end();
    });
    const app = express();
    app.post(
      '/v1/responses',
      sseCompletion({ errorEvent: false }),
      createProxyMiddleware({ target: upstream.url, changeOrigin: true }),
    );
    gateway = await listen(app);
    client = new OpenAI({ apiKey: 'sk-test', baseURL: `${gateway.url}/v1`, maxRetries: 0 });
  });

  afterAll(async () => {
    await gateway.close();
    await upstream.close();
  });

  it('has streams to replay, including the odd shapes', () => {
    const keys = replays.map((r) => r.key);
    expect(keys.length).toBeGreaterThan(40);
    for (const name of ['http-shape-minimal', 'http-shape-completed-only', 'http-drop-after-fc']) {
      expect(keys.some((key) => key.startsWith(`${name}#`))).toBe(true);
    }
  });

  it.each(replays.map((r) => [r.key, r] as const))(
    '%s comes out well-formed, with an output_item.done per output item',
    async (key, replay) => {
      const answer = await postSse(
        `${gateway.url}/v1/responses`,
        { model: 'gpt-5.5', input: 'hi', stream: true },
        { headers: { 'x-replay': key } },
      );
      const events = (await answer.done).map((event) => event.json as JsonObject);
      expect(events[0]?.type).toBe('response.created');
      const terminals = events.filter((event) => TERMINALS.includes(event.type as string));
      expect(terminals).toHaveLength(1);
      expect(events[events.length - 1]).toBe(terminals[0]);
      for (let i = 1; i < events.length; i += 1) {
        expect(events[i]?.sequence_number as number).toBeGreaterThan(
          events[i - 1]?.sequence_number as number,
        );
      }
      const want = expected(replay.events);
      const terminal = terminals[0] as JsonObject;
      expect(terminal.type).toBe(want.type);
      const output = (terminal.response as JsonObject).output as JsonObject[];
      expect(output).toEqual(want.output);
      // Codex takes a turn's items from the output_item.done events.
      const done = events
        .filter((event) => event.type === 'response.output_item.done')
        .map((event) => event.item);
      if (want.type !== 'response.failed') expect(done).toEqual(output);
      else expect(output).toEqual(done);
    },
  );

  it.each(
    replays
      // A flat `error` event makes openai 6.x reject with a plain object (the error-envelope
      // middleware's job to reshape, not this one's).
      .filter((r) => !r.events.some((event) => event.type === 'error'))
      .map((r) => [r.key, r] as const),
  )('%s is accepted by responses.stream().finalResponse() with its full output', async (key, r) => {
    const final = await client.responses
      .stream({ model: 'gpt-5.5', input: 'hi' }, { headers: { 'x-replay': key } })
      .finalResponse();
    const want = expected(r.events);
    expect(final.status).toBe(want.type.slice('response.'.length));
    expect(final.output.map((item) => [item.type, item.id])).toEqual(
      want.output.map((item) => [item.type, item.id]),
    );
  });
});
