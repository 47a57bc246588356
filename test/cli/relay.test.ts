/**
 * createRelay(): the composition the CLI, the examples and the demo run — upstream paths per
 * profile, the Responses routes with every middleware, untouched passthrough, OpenAI 404s,
 * metrics and the exchange event, readiness, the WebSocket bridge, and graceful close.
 */
import { Writable } from 'node:stream';
import OpenAI from 'openai';
import WebSocket from 'ws';
import { createRelay, type Relay, type RelayOptions } from '../../lib/relay';
import { createLogger } from '../../lib/ops/logger';
import type { ExchangeSummary } from '../../lib/ops/summary';
import type { JsonObject } from '../../lib/protocol/types';
import { MemorySessionStore } from '../../lib/store/memory-session-store';
import type { SessionStore } from '../../lib/store/session-store';
import { rawRequest } from '../support/fake-upstream';
import { EXEC_COMMAND_TOOL, useFakes } from '../support/fake-upstream/testing';
import { postSse } from '../support/sse-client';

const KEY = 'sk-relay-test-0123456789abcdef';
const AUTH = { authorization: `Bearer ${KEY}` };
const fakes = useFakes();
const relays: Relay[] = [];

afterEach(async () => {
  await Promise.all(relays.splice(0).map((relay) => relay.close({ timeoutMs: 500 })));
});

async function startRelay(options: RelayOptions): Promise<{ relay: Relay; url: string }> {
  const relay = createRelay({
    logger: false,
    metrics: { defaultMetrics: false },
    tenantSecret: 'relay-test-secret',
    retry: { baseDelayMs: 5, maxDelayMs: 20 },
    ...options,
  });
  relays.push(relay);
  return { relay, url: await relay.listen(0, '127.0.0.1') };
}

function collect(relay: Relay): ExchangeSummary[] {
  const summaries: ExchangeSummary[] = [];
  relay.on('exchange', (summary) => summaries.push(summary));
  return summaries;
}

const settle = (ms = 30): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

describe('createRelay: upstream paths', () => {
  it.each([
    ['openai', '', '/v1/responses', '/v1/responses'],
    ['openai', '/v1', '/v1/responses', '/v1/responses'],
    ['openai', '', '/responses', '/v1/responses'],
    ['codex', '', '/v1/responses', '/backend-api/codex/responses'],
    ['codex', '/backend-api/codex', '/responses', '/backend-api/codex/responses'],
    ['codex', '', '/codex/v1/responses?x=1', '/backend-api/codex/responses?x=1'],
  ] as const)('profile %s, upstream path %j: %s goes to %s', async (profile, base, route, path) => {
    const fake = await fakes({ mode: profile === 'codex' ? 'stateless' : 'stateful' });
    const { url } = await startRelay({ upstream: `${fake.url}${base}`, profile });
    const answer = await rawRequest(`${url}${route}`, {
      body: { model: 'm', input: 'hi', stream: true, store: false },
      headers: AUTH,
    });
    expect(answer.status).toBe(200);
    expect(fake.requests[0]?.path).toBe(path);
  });

  it('refuses a bad configuration when it is built', () => {
    expect(() => createRelay({ upstream: 'not a url', logger: false })).toThrow(/not a URL/);
    expect(() => createRelay({ upstream: 'https://u:p@x.test', logger: false })).toThrow(
      /credentials/,
    );
    expect(() =>
      createRelay({ upstream: 'https://x.test', profile: 'codex', upstreamMode: 'stateful' }),
    ).toThrow(/stateless/);
    const shared = { ...new MemorySessionStore() } as unknown as SessionStore;
    const env = process.env.RELAY_TENANT_SECRET;
    delete process.env.RELAY_TENANT_SECRET;
    try {
      expect(() =>
        createRelay({ upstream: 'https://x.test', store: shared, logger: false }),
      ).toThrow(/tenantSecret/);
    } finally {
      if (env !== undefined) process.env.RELAY_TENANT_SECRET = env;
    }
  });
});

describe('createRelay: routes', () => {
  it('proxies every other /v1 path untouched', async () => {
    const fake = await fakes({ mode: 'stateful' });
    const { url, relay } = await startRelay({ upstream: fake.url });
    const summaries = collect(relay);
    const models = await rawRequest(`${url}/v1/models?limit=2`, { method: 'GET', headers: AUTH });
    // The fake has no /v1/models: its own 404, body and request id, reach the client as is.
    expect(models.status).toBe(404);
    expect(models.headers['x-request-id']).toBe(fake.requests[0]?.requestId);
    expect((models.json as { error: { message: string } }).error.message).toBe(
      'Invalid URL (GET /v1/models)',
    );
    expect(fake.requests[0]?.path).toBe('/v1/models?limit=2');
    await settle();
    expect(summaries[0]).toMatchObject({ route: 'passthrough', status: 404, attempts: 1 });
  });

  it('answers an unknown path with an OpenAI 404 and an unreachable passthrough with a 502', async () => {
    const fake = await fakes();
    const { url } = await startRelay({ upstream: fake.url });
    const unknown = await rawRequest(`${url}/nope`, { method: 'GET' });
    expect(unknown.status).toBe(404);
    expect(unknown.json).toEqual({
      error: {
        message: 'Invalid URL (GET /nope)',
        type: 'invalid_request_error',
        param: null,
        code: null,
      },
    });
    expect(unknown.headers['x-request-id']).toMatch(/^req_/);
    await fake.close();
    const down = await rawRequest(`${url}/v1/models`, { method: 'GET', headers: AUTH });
    expect(down.status).toBe(502);
    expect((down.json as { error: { code: string } }).error.code).toBe(
      'relay_upstream_unreachable',
    );
  });

  it('guards the per-response routes of a stateful upstream by tenant', async () => {
    const fake = await fakes({ mode: 'stateful' });
    const { url } = await startRelay({ upstream: fake.url });
    const alice = new OpenAI({ apiKey: KEY, baseURL: `${url}/v1`, maxRetries: 0 });
    const mallory = new OpenAI({
      apiKey: 'sk-someone-else-000000',
      baseURL: `${url}/v1`,
      maxRetries: 0,
    });
    const created = await alice.responses.create({ model: 'm', input: 'hi' });
    expect((await alice.responses.retrieve(created.id)).id).toBe(created.id);
    await expect(mallory.responses.retrieve(created.id)).rejects.toBeInstanceOf(
      OpenAI.NotFoundError,
    );
  });

  it('keeps serving when an exchange listener throws: both requests succeed, the failure is logged', async () => {
    const fake = await fakes({ mode: 'stateless' });
    const lines: string[] = [];
    const destination = new Writable({
      write(chunk: Buffer, _encoding, done) {
        lines.push(chunk.toString());
        done();
      },
    });
    const { url, relay } = await startRelay({
      upstream: fake.url,
      profile: 'codex',
      logger: createLogger({ level: 'warn', destination }),
    });
    let calls = 0;
    relay.on('exchange', () => {
      calls += 1;
      throw new Error('listener bug');
    });
    for (const input of ['one', 'two']) {
      const answer = await rawRequest(`${url}/v1/responses`, {
        body: { model: 'm', input, stream: true, store: false },
        headers: AUTH,
      });
      expect(answer.status).toBe(200);
      await settle();
    }
    expect(calls).toBe(2);
    expect(fake.requests).toHaveLength(2);
    expect(lines.filter((line) => line.includes('listener bug'))).toHaveLength(2);
  });

  it('runs a tool loop with every middleware and counts what happened', async () => {
    const fake = await fakes({ mode: 'stateless', sparseCompletion: true });
    const { url, relay } = await startRelay({ upstream: fake.url, profile: 'codex' });
    const summaries = collect(relay);
    fake.script(
      { kind: 'http_error', status: 503 },
      { kind: 'tool_calls', calls: [{ name: 'exec_command', arguments: '{"cmd":"ls"}' }] },
    );
    const client = new OpenAI({ apiKey: KEY, baseURL: `${url}/v1`, maxRetries: 0 });
    const first = await client.responses
      .stream({ model: 'm', input: 'list', tools: [EXEC_COMMAND_TOOL as OpenAI.Responses.Tool] })
      .finalResponse();
    const call = first.output.find((item) => item.type === 'function_call');
    expect(call?.type).toBe('function_call');
    const second = await client.responses.create({
      model: 'm',
      previous_response_id: first.id,
      input: [
        {
          type: 'function_call_output',
          call_id: (call as { call_id: string }).call_id,
          output: 'a b',
        },
      ],
    });
    expect(second.output_text).toBe('The tool returned: a b');
    // A stream cut after its output started cannot be retried: the relay ends it itself.
    fake.script({ kind: 'cut', afterEvents: 6 });
    const cut = await postSse(
      `${url}/v1/responses`,
      { model: 'm', input: 'again', tools: [EXEC_COMMAND_TOOL], stream: true },
      { headers: AUTH },
    );
    const events = await cut.done;
    expect(events.at(-1)?.json?.type).toBe('response.failed');
    await settle();

    const metrics = (await relay.metrics?.exposition())?.body ?? '';
    expect(metrics).toContain(
      'relay_requests_total{route="responses",method="POST",status="200"} 3',
    );
    expect(metrics).toContain('relay_retries_total{reason="server_error"} 1');
    expect(metrics).toContain('relay_completions_rebuilt_total 2');
    expect(metrics).toMatch(/relay_terminations_synthesized_total\{cause="\w+"\} 1/);
    expect(metrics).toMatch(
      /relay_store_operation_duration_seconds_count\{operation="expandChain"/,
    );

    const [turn1, turn2, turn3] = summaries;
    expect(turn1).toMatchObject({
      route: 'responses',
      status: 200,
      attempts: 2,
      retries: ['server_error'],
      stream: true,
      completionRebuilt: true,
      responseId: first.id,
      profile: 'codex',
      chainMode: 'stateless',
      chainStored: true,
    });
    expect(turn1?.tenant).toMatch(/^[\w-]{22}$/);
    expect(turn2).toMatchObject({ previousResponseId: first.id, chainDepth: 1, attempts: 1 });
    expect(turn3?.synthesizedTermination).toBeDefined();
  });
});

describe('createRelay: operations', () => {
  it('reports readiness of the store and the upstream', async () => {
    const fake = await fakes();
    const { url } = await startRelay({ upstream: fake.url, readinessTimeoutMs: 300 });
    expect((await rawRequest(`${url}/readyz`, { method: 'GET' })).status).toBe(200);
    await fake.close();
    await settle(1100); // past the readiness cache
    const down = await rawRequest(`${url}/readyz`, { method: 'GET' });
    expect(down.status).toBe(503);
    expect((down.json as { checks: JsonObject }).checks.upstream).toMatchObject({ status: 'fail' });
    expect((await rawRequest(`${url}/healthz`, { method: 'GET' })).status).toBe(200);
  });

  it('serves no /metrics when metrics are off', async () => {
    const fake = await fakes();
    const { url } = await startRelay({ upstream: fake.url, metrics: false });
    expect((await rawRequest(`${url}/metrics`, { method: 'GET' })).status).toBe(404);
  });

  it('serves turns over WebSocket, and refuses upgrades with 426 when told to', async () => {
    const fake = await fakes({ mode: 'stateless', sparseCompletion: true });
    const { url, relay } = await startRelay({ upstream: fake.url, profile: 'codex' });
    const ws = new WebSocket(`${url.replace('http', 'ws')}/v1/responses`, { headers: AUTH });
    await new Promise((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('error', reject);
    });
    const frames: JsonObject[] = [];
    const done = new Promise<void>((resolve) => {
      ws.on('message', (data) => {
        const frame = JSON.parse(String(data)) as JsonObject;
        frames.push(frame);
        if (frame.type === 'response.completed') resolve();
      });
    });
    ws.send(JSON.stringify({ type: 'response.create', model: 'm', input: [], stream: true }));
    await done;
    expect((frames.at(-1)?.response as JsonObject).status).toBe('completed');
    expect((await relay.metrics?.exposition())?.body).toContain('relay_active_websockets 1');
    ws.close();

    const { url: plain } = await startRelay({ upstream: fake.url, websocket: false });
    const refused = await new Promise<number>((resolve) => {
      const socket = new WebSocket(`${plain.replace('http', 'ws')}/v1/responses`, {
        headers: AUTH,
      });
      socket.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
      socket.once('error', () => resolve(-1));
    });
    expect(refused).toBe(426);
  });

  it('lets an in-flight stream finish on close, refusing new connections meanwhile', async () => {
    const fake = await fakes({ mode: 'stateless' });
    const { url, relay } = await startRelay({ upstream: fake.url, profile: 'codex' });
    fake.script({ kind: 'slow', delayMs: 40 });
    const stream = await postSse(
      `${url}/v1/responses`,
      { model: 'm', input: 'slowly', stream: true },
      { headers: AUTH },
    );
    expect(stream.status).toBe(200);
    const closing = relay.close({ timeoutMs: 5000 });
    expect(relay.draining).toBe(true);
    await settle(50);
    await expect(rawRequest(`${url}/healthz`, { method: 'GET' })).rejects.toThrow();
    const events = await stream.done;
    expect(events.at(-1)?.json?.type).toBe('response.completed');
    await closing;
  });

  it('ends a shutdown when the last stream ends, even when an exchange listener throws', async () => {
    const fake = await fakes({ mode: 'stateless' });
    const { url, relay } = await startRelay({ upstream: fake.url, profile: 'codex' });
    relay.on('exchange', () => {
      throw new Error('listener bug');
    });
    fake.script({ kind: 'slow', delayMs: 40 });
    const stream = await postSse(
      `${url}/v1/responses`,
      { model: 'm', input: 'slowly', stream: true },
      { headers: AUTH },
    );
    const started = Date.now();
    await relay.close({ timeoutMs: 5000 });
    expect(Date.now() - started).toBeLessThan(2000);
    expect((await stream.done).at(-1)?.json?.type).toBe('response.completed');
  });

  it('closes a stream that outlives the shutdown timeout', async () => {
    const fake = await fakes({ mode: 'stateless' });
    const { url, relay } = await startRelay({ upstream: fake.url, profile: 'codex' });
    fake.script({ kind: 'stall', afterEvents: 3 });
    const stream = await postSse(
      `${url}/v1/responses`,
      { model: 'm', input: 'forever', stream: true },
      { headers: AUTH },
    );
    const started = Date.now();
    await relay.close({ timeoutMs: 200 });
    expect(Date.now() - started).toBeLessThan(2000);
    await stream.done;
  });
});
