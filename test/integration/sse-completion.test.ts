/**
 * sseCompletion between the official openai client (6.x) and the fake upstream, mounted in front
 * of a stock http-proxy-middleware proxy (tap mode) and with `relayProxyOptions()` (proxy mode):
 * sparse completions come out whole, cut and stalled streams end with `response.failed` holding
 * the completed items (never a silent EOF, never a hang), odd item ids come out with their
 * prefixes and are mapped back on the next turn, non-stream requests to a stream-only upstream
 * are aggregated, and the final Response is published for the chaining middleware.
 */
import express from 'express';
import { createProxyMiddleware, fixRequestBody } from 'http-proxy-middleware';
import type { IncomingMessage, ServerResponse } from 'node:http';
import OpenAI, { APIError } from 'openai';
import { getExchange } from '../../lib/middleware/exchange';
import { relayProxyOptions } from '../../lib/middleware/relay-proxy';
import { sseCompletion, type SseCompletionOptions } from '../../lib/middleware/sse-completion';
import { MemoryItemIdAliases, type ItemIdAliases } from '../../lib/middleware/sse-completion-ids';
import type { JsonObject, ResponseObject } from '../../lib/protocol/types';
import { startFakeUpstream } from '../support/fake-upstream';
import type { FakeUpstream, FakeUpstreamOptions } from '../support/fake-upstream';
import { listen, type Listening } from '../support/listen';
import { postSse } from '../support/sse-client';

const EXEC_COMMAND = {
  type: 'function' as const,
  name: 'exec_command',
  description: 'Runs a command.',
  strict: false,
  parameters: {
    type: 'object',
    properties: { cmd: { type: 'string' } },
    required: ['cmd'],
    additionalProperties: false,
  },
};

const TERMINALS = ['response.completed', 'response.failed', 'response.incomplete'];

interface Mode {
  name: string;
  /** The proxy, given whether a body parser runs in front of it. */
  proxy(target: string, parsed: boolean): express.RequestHandler;
}

const modes: Mode[] = [
  {
    name: 'tap mode (stock http-proxy-middleware)',
    proxy: (target, parsed) =>
      createProxyMiddleware<IncomingMessage, ServerResponse>({
        target,
        changeOrigin: true,
        // What a gateway with a body parser in front of a stock proxy already has to do.
        ...(parsed ? { on: { proxyReq: fixRequestBody } } : {}),
      }) as unknown as express.RequestHandler,
  },
  {
    name: 'proxy mode (relayProxyOptions)',
    proxy: (target) =>
      createProxyMiddleware<IncomingMessage, ServerResponse>({
        target,
        changeOrigin: true,
        ...relayProxyOptions(),
      }) as unknown as express.RequestHandler,
  },
];

describe.each(modes)('sseCompletion in $name', (mode) => {
  const open: Array<{ close(): Promise<void> }> = [];
  afterEach(async () => {
    while (open.length > 0) await open.pop()?.close();
  });

  async function setup(
    fakeOptions: FakeUpstreamOptions,
    options: SseCompletionOptions = {},
    extra: { parsed?: boolean; before?: express.RequestHandler[] } = {},
  ): Promise<{ fake: FakeUpstream; gateway: Listening; client: OpenAI }> {
    const fake = await startFakeUpstream(fakeOptions);
    open.push(fake);
    const app = express();
    const parsed = extra.parsed ?? false;
    app.post(
      '/v1/responses',
      ...(parsed ? [express.json({ limit: '32mb' })] : []),
      sseCompletion({ itemIdAliases: new MemoryItemIdAliases(), ...options }),
      ...(extra.before ?? []),
      mode.proxy(fake.url, parsed),
    );
    const gateway = await listen(app);
    open.push(gateway);
    const client = new OpenAI({ apiKey: 'sk-test', baseURL: `${gateway.url}/v1`, maxRetries: 0 });
    return { fake, gateway, client };
  }

  /** `responses.stream()`: the events the SDK emitted and its final Response (or error). */
  async function sdkStream(client: OpenAI, body: Record<string, unknown>) {
    const events: JsonObject[] = [];
    const stream = client.responses.stream({
      model: 'gpt-5',
      input: 'run ls',
      tools: [EXEC_COMMAND],
      ...body,
    } as Parameters<OpenAI['responses']['stream']>[0]);
    stream.on('event', (event) => events.push(event as unknown as JsonObject));
    try {
      const final = await stream.finalResponse();
      return { events, final: final as unknown as ResponseObject, error: undefined };
    } catch (error) {
      return { events, final: undefined, error };
    }
  }

  const doneItems = (events: JsonObject[]) =>
    events
      .filter((event) => event.type === 'response.output_item.done')
      .map((event) => event.item as JsonObject);

  const twoCalls = {
    kind: 'tool_calls' as const,
    text: 'Listing.',
    calls: [
      { name: 'exec_command', arguments: '{"cmd":"ls"}' },
      { name: 'exec_command', arguments: '{"cmd":"pwd"}' },
    ],
  };

  it('gives a sparse response.completed its full output (stream().finalResponse())', async () => {
    const { fake, client } = await setup({ sparseCompletion: true });
    fake.script(twoCalls);
    const { events, final, error } = await sdkStream(client, {});
    expect(error).toBeUndefined();
    expect(final?.status).toBe('completed');
    expect(final?.output.map((item) => item.type)).toEqual([
      'message',
      'function_call',
      'function_call',
    ]);
    expect(final?.output).toMatchObject(doneItems(events));
    expect(final?.usage?.total_tokens).toBeGreaterThan(0);
    expect(final?.id).toBe(fake.requests[0]?.responseId);
  });

  it('gives a sparse completion its output in create({stream: true}) too, with one terminal', async () => {
    const { fake, client } = await setup({ sparseCompletion: true });
    fake.script({ kind: 'tool_calls', calls: [{ name: 'exec_command' }] });
    const stream = await client.responses.create({
      model: 'gpt-5',
      input: 'go',
      tools: [EXEC_COMMAND],
      stream: true,
    });
    const types: string[] = [];
    let terminal: JsonObject | undefined;
    for await (const event of stream) {
      types.push(event.type);
      if (TERMINALS.includes(event.type)) terminal = event as unknown as JsonObject;
    }
    expect(types.filter((type) => TERMINALS.includes(type))).toEqual(['response.completed']);
    expect(((terminal?.response as JsonObject).output as unknown[]).length).toBe(1);
  });

  it.each(['eof', 'reset'] as const)(
    'closes a stream cut by the upstream (%s) with an error event and response.failed',
    async (cut) => {
      const { fake, gateway } = await setup({});
      // created, in_progress, the message (8 events), the first call (6 events), half the second
      fake.script({ kind: 'cut', afterEvents: 18, mode: cut, then: twoCalls });
      const answer = await postSse(`${gateway.url}/v1/responses`, {
        model: 'gpt-5',
        input: 'go',
        stream: true,
        tools: [EXEC_COMMAND],
      });
      const events = (await answer.done).map((event) => event.json as JsonObject);
      const types = events.map((event) => event.type);
      expect(types[0]).toBe('response.created');
      expect(types.slice(-2)).toEqual(['error', 'response.failed']);
      expect(types.filter((type) => TERMINALS.includes(type as string))).toHaveLength(1);
      const failed = events[events.length - 1]?.response as JsonObject;
      expect(failed.error).toMatchObject({ code: 'server_error' });
      expect(failed.output).toEqual(doneItems(events));
      expect((failed.output as JsonObject[]).map((item) => item.type)).toEqual([
        'message',
        'function_call',
      ]);
    },
  );

  it('makes the SDK raise an APIError for a cut stream, after it saw the completed items', async () => {
    const { fake, client } = await setup({});
    fake.script({ kind: 'cut', afterEvents: 18, mode: 'reset', then: twoCalls });
    const { events, final, error } = await sdkStream(client, {});
    expect(final).toBeUndefined();
    expect(error).toBeInstanceOf(APIError);
    expect((error as APIError).code).toBe('server_error');
    expect(doneItems(events).map((item) => item.type)).toEqual(['message', 'function_call']);
  });

  it.each(['eof', 'reset'] as const)(
    'with errorEvent: false, finalResponse() resolves "failed" with the completed items (%s)',
    async (cut) => {
      const { fake, client } = await setup({}, { errorEvent: false });
      fake.script({ kind: 'cut', afterEvents: 18, mode: cut, then: twoCalls });
      const { events, final, error } = await sdkStream(client, {});
      expect(error).toBeUndefined();
      expect(final?.status).toBe('failed');
      expect(final?.error?.code).toBe('server_error');
      expect(final?.output).toMatchObject(doneItems(events));
      expect(final?.output.map((item) => item.type)).toEqual(['message', 'function_call']);
    },
  );

  it('with errorEvent: false, create({stream: true}) iteration sees exactly one terminal', async () => {
    const { fake, client } = await setup({}, { errorEvent: false });
    fake.script({ kind: 'cut', afterEvents: 9, mode: 'eof', then: twoCalls });
    const stream = await client.responses.create({
      model: 'gpt-5',
      input: 'go',
      tools: [EXEC_COMMAND],
      stream: true,
    });
    const types: string[] = [];
    for await (const event of stream) types.push(event.type);
    expect(types.filter((type) => TERMINALS.includes(type))).toEqual(['response.failed']);
  });

  it('abandons a stalled upstream after idleTimeoutMs and closes the stream', async () => {
    const { fake, client } = await setup({}, { idleTimeoutMs: 150, errorEvent: false });
    fake.script({ kind: 'stall', afterEvents: 10, then: twoCalls });
    const started = Date.now();
    const { final, error } = await sdkStream(client, {});
    expect(error).toBeUndefined();
    expect(final?.status).toBe('failed');
    expect(final?.output.map((item) => item.type)).toEqual(['message']);
    expect(Date.now() - started).toBeLessThan(5_000);
    // The relay hung up on the upstream.
    await fake.requests[0]?.closed;
    expect(fake.requests[0]?.socketClosedEarly).toBe(true);
  });

  it('ends the stream when the upstream holds the connection open after the terminal', async () => {
    const { fake, client } = await setup({}, { terminalGraceMs: 100 });
    fake.script({ kind: 'hold_open', then: { kind: 'text', text: 'Hi' } });
    const started = Date.now();
    const { final, error } = await sdkStream(client, {});
    expect(error).toBeUndefined();
    expect(final?.status).toBe('completed');
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it.each(['call_id', 'missing', 'inconsistent'] as const)(
    'gives function calls with odd ids (%s) fc_ ids in every event, call_id untouched',
    async (style) => {
      const { fake, client } = await setup({});
      fake.script({ kind: 'odd_ids', style, then: twoCalls });
      const { events, final, error } = await sdkStream(client, {});
      expect(error).toBeUndefined();
      const calls = (final?.output ?? []).filter((item) => item.type === 'function_call');
      expect(calls).toHaveLength(2);
      const upstreamCallIds = (fake.responses.get(final?.id as string)?.output ?? [])
        .filter((item) => item.type === 'function_call')
        .map((item) => item.call_id);
      expect(calls.map((item) => item.call_id)).toEqual(upstreamCallIds);
      for (const item of calls) {
        expect(item.id).toMatch(/^fc_/);
        const index = final?.output.indexOf(item);
        const ids = new Set(
          events
            .filter((event) => event.output_index === index)
            .map((event) =>
              String(event.type).startsWith('response.output_item.')
                ? (event.item as JsonObject).id
                : event.item_id,
            ),
        );
        expect([...ids]).toEqual([item.id]);
      }
    },
  );

  it("maps an fc_ id it gave an id-less call back to 'no id' on the next turn", async () => {
    const { fake, client } = await setup({}, {}, { parsed: true });
    fake.script({ kind: 'odd_ids', style: 'missing' });
    const first = await sdkStream(client, { store: false });
    const call = first.final?.output.find((item) => item.type === 'function_call') as JsonObject;
    expect(call.id).toMatch(/^fc_/);
    const second = await sdkStream(client, {
      store: false,
      input: [
        { role: 'user', content: 'run ls' },
        call,
        { type: 'function_call_output', call_id: call.call_id, output: 'file.txt' },
      ],
    });
    expect(second.error).toBeUndefined();
    expect(second.final?.status).toBe('completed');
    const sent = (fake.requests[1]?.body as JsonObject).input as JsonObject[];
    expect(sent[1]).not.toHaveProperty('id');
    expect(sent[1]?.call_id).toBe(call.call_id);
  });

  it("maps an fc_ id it derived back to the upstream's own id on the next turn", async () => {
    const { fake, client } = await setup({}, {}, { parsed: true });
    fake.script({ kind: 'odd_ids', style: 'call_id' });
    const first = await sdkStream(client, { store: false });
    const call = first.final?.output.find((item) => item.type === 'function_call') as JsonObject;
    expect(call.id).toMatch(/^fc_/);
    await sdkStream(client, {
      store: false,
      input: [call, { type: 'function_call_output', call_id: call.call_id, output: 'ok' }],
    });
    const sent = (fake.requests[1]?.body as JsonObject).input as JsonObject[];
    // The upstream's own (call_…) id: an upstream that minted it knows it. (The fake checks
    // prefixes like the API and answers 400 here; restoreItemIds: 'omit' is for such upstreams.)
    expect(sent[0]?.id).toBe(call.call_id);
    expect(sent[0]?.call_id).toBe(call.call_id);
  });

  it("with restoreItemIds: 'omit', sends the call back without its id", async () => {
    const { fake, client } = await setup({}, { restoreItemIds: 'omit' }, { parsed: true });
    fake.script({ kind: 'odd_ids', style: 'call_id' });
    const first = await sdkStream(client, { store: false });
    const call = first.final?.output.find((item) => item.type === 'function_call') as JsonObject;
    const second = await sdkStream(client, {
      store: false,
      input: [call, { type: 'function_call_output', call_id: call.call_id, output: 'ok' }],
    });
    expect(second.error).toBeUndefined();
    expect(second.final?.status).toBe('completed');
    const sent = (fake.requests[1]?.body as JsonObject).input as JsonObject[];
    expect(sent[0]).not.toHaveProperty('id');
  });

  it('answers stream: false from a stream-only upstream with the aggregated JSON Response', async () => {
    const { fake, client } = await setup(
      { mode: 'stateless', sparseCompletion: true },
      { aggregateNonStreaming: true },
      { parsed: true },
    );
    fake.script(twoCalls);
    const response = await client.responses.create({
      model: 'gpt-5',
      input: 'go',
      store: false,
      tools: [EXEC_COMMAND],
    });
    expect(response.object).toBe('response');
    expect(response.status).toBe('completed');
    expect(response.output.map((item) => item.type)).toEqual([
      'message',
      'function_call',
      'function_call',
    ]);
    expect(response.output_text).toBe('Listing.');
    expect((fake.requests[0]?.body as JsonObject).stream).toBe(true);
  });

  it('publishes the Response the client saw on the exchange, before the terminal is released', async () => {
    const published: ResponseObject[] = [];
    const capture: express.RequestHandler = (req, res, next) => {
      getExchange(req, res).beforeFinal.push((response) => {
        published.push(response);
      });
      next();
    };
    const { fake, client } = await setup({ sparseCompletion: true }, {}, { before: [capture] });
    fake.script(twoCalls);
    const { final } = await sdkStream(client, {});
    expect(published).toHaveLength(1);
    // What the SDK made of the stream, minus what it adds itself (output_text, parsed fields).
    expect(final).toMatchObject(published[0] as ResponseObject);
    expect(published[0]?.output).toHaveLength(3);
  });

  it('forwards each event as it comes (the upstream sends the next only once the client saw one)', async () => {
    const { fake, gateway } = await setup({});
    fake.script({ kind: 'text', text: 'one two three four', chunks: 4 });
    const gate = fake.gate();
    const answer = await postSse(
      `${gateway.url}/v1/responses`,
      { model: 'gpt-5', input: 'hi', stream: true },
      { onEvent: () => gate.release() },
    );
    const events = await answer.done;
    expect(events.map((event) => event.json?.type).slice(-1)).toEqual(['response.completed']);
    expect(gate.sent).toBe(events.length);
  });
});

describe('sseCompletion reading the request body itself', () => {
  const open: Array<{ close(): Promise<void> }> = [];
  afterEach(async () => {
    while (open.length > 0) await open.pop()?.close();
  });

  /** An asynchronous alias store, as a shared (session) store would be. */
  class AsyncAliases implements ItemIdAliases {
    readonly map = new Map<string, string | null>();
    failGets = false;
    async set(shownId: string, upstreamId: string | null): Promise<void> {
      await new Promise((resolve) => setImmediate(resolve));
      this.map.set(shownId, upstreamId);
    }
    async get(shownId: string): Promise<string | null | undefined> {
      await new Promise((resolve) => setImmediate(resolve));
      if (this.failGets) throw new Error('store down');
      return this.map.get(shownId);
    }
  }

  async function setup(options: SseCompletionOptions) {
    const fake = await startFakeUpstream({});
    open.push(fake);
    const app = express();
    app.post(
      '/v1/responses',
      sseCompletion(options),
      createProxyMiddleware<IncomingMessage, ServerResponse>({
        target: fake.url,
        changeOrigin: true,
        ...relayProxyOptions(),
      }) as unknown as express.RequestHandler,
    );
    const gateway = await listen(app);
    open.push(gateway);
    const client = new OpenAI({ apiKey: 'sk-test', baseURL: `${gateway.url}/v1`, maxRetries: 0 });
    return { fake, client };
  }

  async function turnAfterOddCall(client: OpenAI, fake: FakeUpstream) {
    fake.script({ kind: 'odd_ids', style: 'missing' });
    const first = await client.responses
      .stream({ model: 'gpt-5', input: 'run ls', store: false, tools: [EXEC_COMMAND] })
      .finalResponse();
    const call = first.output.find(
      (item) => item.type === 'function_call',
    ) as unknown as JsonObject;
    await client.responses
      .stream({
        model: 'gpt-5',
        store: false,
        tools: [EXEC_COMMAND],
        input: [call, { type: 'function_call_output', call_id: call.call_id, output: 'ok' }],
      } as unknown as Parameters<OpenAI['responses']['stream']>[0])
      .finalResponse();
    return { call, sent: ((fake.requests[1]?.body as JsonObject).input as JsonObject[])[0] };
  }

  it('with readBody (proxy mode, no body parser), maps ids back through an async store', async () => {
    const aliases = new AsyncAliases();
    const { fake, client } = await setup({ readBody: true, itemIdAliases: aliases });
    const { call, sent } = await turnAfterOddCall(client, fake);
    expect(aliases.map.get(call.id as string)).toBeNull();
    expect(sent).not.toHaveProperty('id');
    expect(sent?.call_id).toBe(call.call_id);
  });

  it('sends the ids as they are when the alias store fails', async () => {
    const aliases = new AsyncAliases();
    const { fake, client } = await setup({ readBody: true, itemIdAliases: aliases });
    aliases.failGets = true;
    const { call, sent } = await turnAfterOddCall(client, fake);
    expect(sent?.id).toBe(call.id);
  });
});
