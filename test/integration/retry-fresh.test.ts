/**
 * DESIGN §8: a `previous_response_not_found` from a stateful upstream is retried fresh only from
 * the relay's own stored history, and only when that history plus the new input is
 * self-contained — for anchors the client sent and for anchors the relay injected. A tool-output
 * delta whose calls the relay cannot replay is never sent without its anchor.
 */
import express from 'express';
import OpenAI from 'openai';
import { relayProxy } from '../../lib/middleware/relay-proxy';
import { responseChaining } from '../../lib/middleware/response-chaining';
import { sessionFromHeaders } from '../../lib/middleware/chaining-session';
import { retryGuard } from '../../lib/middleware/retry-guard';
import { MemorySessionStore, tenantId } from '../../lib/store';
import { startFakeUpstream, type FakeUpstream } from '../support/fake-upstream';
import { listen, type Listening } from '../support/listen';

const KEY = 'sk-test-fresh';
const open: Array<{ close(): Promise<void> }> = [];
afterEach(async () => {
  while (open.length > 0) await open.pop()?.close();
});

async function setup(options: {
  chaining: boolean;
}): Promise<{ upstream: FakeUpstream; gateway: Listening; store: MemorySessionStore }> {
  const upstream = await startFakeUpstream({ mode: 'stateful' });
  open.push(upstream);
  const store = new MemorySessionStore();
  const app = express();
  const chain = responseChaining({
    store,
    upstreamMode: 'stateful',
    tenantSecret: 'fresh-secret',
    session: sessionFromHeaders(),
    logger: false,
  });
  app.post(
    '/v1/responses',
    ...(options.chaining ? [chain] : []),
    retryGuard({ baseDelayMs: 5, maxDelayMs: 10, budget: false }),
    relayProxy({ target: upstream.url }),
  );
  const gateway = await listen(app);
  open.push(gateway);
  return { upstream, gateway, store };
}

const tools = [
  {
    type: 'function' as const,
    name: 'exec_command',
    parameters: { type: 'object', properties: {} },
    strict: false,
  },
];

async function forgetOnUpstream(upstream: FakeUpstream, id: string): Promise<void> {
  const response = await fetch(`${upstream.url}/v1/responses/${id}`, {
    method: 'DELETE',
    headers: { authorization: `Bearer ${KEY}` },
  });
  expect(response.status).toBe(200);
}

describe('a fresh retry after the upstream lost the anchor', () => {
  it('is made from the stored history when the client sent the anchor', async () => {
    const { upstream, gateway } = await setup({ chaining: true });
    const client = new OpenAI({ apiKey: KEY, baseURL: `${gateway.url}/v1`, maxRetries: 0 });
    const first = await client.responses.create({ model: 'gpt-test', input: 'run it', tools });
    const call = first.output.find((item) => item.type === 'function_call');
    expect(call?.type).toBe('function_call');
    await forgetOnUpstream(upstream, first.id);
    const second = await client.responses.create({
      model: 'gpt-test',
      previous_response_id: first.id,
      tools,
      input: [
        {
          type: 'function_call_output',
          call_id: call?.type === 'function_call' ? call.call_id : '',
          output: 'hi',
        },
      ],
    });
    expect(second.status).toBe('completed');
    const attempts = upstream.requests.slice(-2);
    expect(attempts.map((r) => r.outcome)).toEqual([
      'http:400:previous_response_not_found',
      'http:200:completed',
    ]);
    const fresh = attempts[1]?.body as { previous_response_id?: string; input: unknown[] };
    expect(fresh.previous_response_id).toBeUndefined();
    // The stored history (user message + the call) plus the delta: self-contained.
    expect(fresh.input.map((item) => (item as { type?: string }).type ?? 'message')).toEqual([
      'message',
      'function_call',
      'function_call_output',
    ]);
  });

  it('is made from the stored history when the relay injected the anchor from the session', async () => {
    const { upstream, gateway } = await setup({ chaining: true });
    const client = new OpenAI({
      apiKey: KEY,
      baseURL: `${gateway.url}/v1`,
      maxRetries: 0,
      defaultHeaders: { session_id: 'sess-1' },
    });
    const first = await client.responses.create({ model: 'gpt-test', input: 'run it', tools });
    const call = first.output.find((item) => item.type === 'function_call');
    await forgetOnUpstream(upstream, first.id);
    const second = await client.responses.create({
      model: 'gpt-test',
      tools,
      input: [
        {
          type: 'function_call_output',
          call_id: call?.type === 'function_call' ? call.call_id : '',
          output: 'hi',
        },
      ],
    });
    expect(second.status).toBe('completed');
    const attempts = upstream.requests.slice(-2);
    expect((attempts[0]?.body as { previous_response_id?: string }).previous_response_id).toBe(
      first.id,
    );
    expect(
      (attempts[1]?.body as { previous_response_id?: string }).previous_response_id,
    ).toBeUndefined();
  });

  it('is refused for a tool-output delta when the relay cannot replay its calls', async () => {
    const { upstream, gateway, store } = await setup({ chaining: true });
    const client = new OpenAI({ apiKey: KEY, baseURL: `${gateway.url}/v1`, maxRetries: 0 });
    const root = await client.responses.create({ model: 'gpt-test', input: 'hello' });
    const first = await client.responses.create({
      model: 'gpt-test',
      previous_response_id: root.id,
      input: 'run it',
      tools,
    });
    const call = first.output.find((item) => item.type === 'function_call');
    await forgetOnUpstream(upstream, first.id);
    // The relay's chain is broken too (its root is gone): no history to replay.
    const record = await findTenantRecord(store, first.id);
    await store.deleteResponse(record.tenant, root.id);
    const before = upstream.requests.length;
    const failure = await client.responses
      .create({
        model: 'gpt-test',
        previous_response_id: first.id,
        tools,
        input: [
          {
            type: 'function_call_output',
            call_id: call?.type === 'function_call' ? call.call_id : '',
            output: 'hi',
          },
        ],
      })
      .catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(OpenAI.BadRequestError);
    expect((failure as InstanceType<typeof OpenAI.BadRequestError>).code).toBe(
      'previous_response_not_found',
    );
    expect(upstream.requests.length - before).toBe(1);
  });

  it('is refused for a tool-output delta whose injected anchor cannot be replayed', async () => {
    const { upstream, gateway, store } = await setup({ chaining: true });
    const client = new OpenAI({
      apiKey: KEY,
      baseURL: `${gateway.url}/v1`,
      maxRetries: 0,
      defaultHeaders: { session_id: 'sess-2' },
    });
    const root = await client.responses.create({ model: 'gpt-test', input: 'hello' });
    const first = await client.responses.create({
      model: 'gpt-test',
      previous_response_id: root.id,
      input: 'run it',
      tools,
    });
    const call = first.output.find((item) => item.type === 'function_call');
    await forgetOnUpstream(upstream, first.id);
    const record = await findTenantRecord(store, first.id);
    await store.deleteResponse(record.tenant, root.id);
    const before = upstream.requests.length;
    const failure = await client.responses
      .create({
        model: 'gpt-test',
        tools,
        input: [
          {
            type: 'function_call_output',
            call_id: call?.type === 'function_call' ? call.call_id : '',
            output: 'hi',
          },
        ],
      })
      .catch((error: unknown) => error);
    expect((failure as InstanceType<typeof OpenAI.BadRequestError>).code).toBe(
      'previous_response_not_found',
    );
    // One attempt, with the injected anchor: never sent without it.
    expect(upstream.requests.length - before).toBe(1);
    expect(
      (upstream.requests.at(-1)?.body as { previous_response_id?: string }).previous_response_id,
    ).toBe(first.id);
  });

  it('is never attempted without the chaining middleware (no stored history)', async () => {
    const { upstream, gateway } = await setup({ chaining: false });
    const client = new OpenAI({ apiKey: KEY, baseURL: `${gateway.url}/v1`, maxRetries: 0 });
    const failure = await client.responses
      .create({
        model: 'gpt-test',
        previous_response_id: 'resp_unknown',
        input: [{ type: 'function_call_output', call_id: 'call_x', output: 'hi' }],
      })
      .catch((error: unknown) => error);
    expect((failure as InstanceType<typeof OpenAI.BadRequestError>).code).toBe(
      'previous_response_not_found',
    );
    expect(upstream.requests).toHaveLength(1);
  });
});

/** The tenant that holds `id`: the keyed hash of the test's credential. */
async function findTenantRecord(
  store: MemorySessionStore,
  id: string,
): Promise<{ tenant: string }> {
  const tenant = tenantId(KEY, 'fresh-secret');
  const record = await store.getResponse(tenant, id);
  expect(record).not.toBeNull();
  return { tenant };
}
