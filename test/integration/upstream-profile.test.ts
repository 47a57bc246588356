/**
 * `upstreamProfile` through the full chain: express → upstreamProfile → http-proxy-middleware
 * (with `relayProxyOptions()`) → the fake upstream. The codex profile must turn every request the
 * Codex CLI (fixtures) and a Droid-like `openai` SDK client send into one the fake's stateless
 * (Codex-backend-like) mode accepts; the openai profile must pass requests byte for byte.
 */
import express from 'express';
import { createProxyMiddleware } from 'http-proxy-middleware';
import OpenAI from 'openai';
import request from 'supertest';
import { findExchange } from '../../lib/middleware/exchange';
import { relayProxyOptions } from '../../lib/middleware/relay-proxy';
import {
  upstreamProfile,
  type UpstreamProfileOptions,
} from '../../lib/middleware/upstream-profile';
import { CODEX_BACKEND_PATH, codexProfile } from '../../lib/profiles/codex';
import { CODEX_REFUSED_FIELDS } from '../../lib/profiles/fields';
import { openaiProfile } from '../../lib/profiles/openai';
import type { ProfileDefinition } from '../../lib/profiles/registry';
import {
  mountResponsesRoutes,
  profilePathRewrite,
  RESPONSES_ROUTES,
} from '../../lib/profiles/routes';
import type { ProfileName, UpstreamProfile } from '../../lib/profiles/types';
import type { JsonObject, ResponseCreateBody } from '../../lib/protocol/types';
import { startFakeUpstream, type FakeUpstream } from '../support/fake-upstream';
import { fixtureNames, loadFixture, type HttpRequestRecord } from '../support/fixtures';
import { listen, type Listening } from '../support/listen';
import { postSse } from '../support/sse-client';

/** The annotations of every finished exchange, in order. */
const annotations: Array<Record<string, string | number | boolean>> = [];

/** An express app with the profile in front of a proxy to the fake, on every route alias. */
function relayApp(
  fake: FakeUpstream,
  profile: ProfileName | ProfileDefinition | UpstreamProfile,
  options: UpstreamProfileOptions = {},
): express.Express {
  const resolved =
    typeof profile === 'string'
      ? profile === 'codex'
        ? codexProfile()
        : openaiProfile()
      : profile;
  const app = express();
  mountResponsesRoutes(app, [
    (req: express.Request, res: express.Response, next: express.NextFunction) => {
      res.once('finish', () => {
        const exchange = findExchange(res);
        if (exchange) annotations.push({ ...exchange.annotations });
      });
      next();
    },
    upstreamProfile(profile, options),
    createProxyMiddleware({
      target: fake.url,
      changeOrigin: true,
      pathRewrite: profilePathRewrite(resolved),
      ...relayProxyOptions(),
    }),
  ]);
  return app;
}

const SENT_HEADERS = new Set([
  'originator',
  'user-agent',
  'session-id',
  'thread-id',
  'x-client-request-id',
  'x-codex-window-id',
  'x-codex-beta-features',
  'x-codex-turn-metadata',
  'accept',
]);

/** Every distinct Codex CLI HTTP request of the fixtures, with its Codex headers. */
function codexFixtureRequests(): Array<{
  label: string;
  body: ResponseCreateBody;
  headers: Record<string, string>;
}> {
  const toolLoop = loadFixture('http-tool-loop').find(
    (record): record is HttpRequestRecord => record.kind === 'http_request',
  );
  const fullTools = toolLoop?.body.tools;
  if (!Array.isArray(fullTools)) throw new Error('http-tool-loop has no full tools array');
  const seen = new Set<string>();
  const out: Array<{ label: string; body: ResponseCreateBody; headers: Record<string, string> }> =
    [];
  for (const name of fixtureNames()) {
    loadFixture(name).forEach((record) => {
      if (record.kind !== 'http_request') return;
      const http = record as HttpRequestRecord;
      // The sanitizer elided most `tools` arrays; they are the same ten tools (fixtures README).
      const body = Array.isArray(http.body.tools) ? http.body : { ...http.body, tools: fullTools };
      const key = JSON.stringify(body);
      if (seen.has(key)) return;
      seen.add(key);
      const headers: Record<string, string> = {};
      for (const [header, value] of Object.entries(http.headers)) {
        if (SENT_HEADERS.has(header)) headers[header] = value;
      }
      out.push({ label: `${name} seq ${http.seq}`, body, headers });
    });
  }
  return out;
}

const SDK_HEADERS = {
  'user-agent': 'OpenAI/JS 6.49.0',
  'x-stainless-lang': 'js',
  'x-stainless-package-version': '6.49.0',
};

/** What a Droid/Factory-like client sends through the openai SDK. */
function droidLikeBody(stream = true): ResponseCreateBody {
  return {
    model: 'gpt-5.5',
    instructions: 'You are Droid, an AI software engineering agent built by Factory.',
    input: [
      { role: 'user', content: [{ type: 'input_text', text: 'Run the shell command echo hi.' }] },
    ],
    tools: [
      {
        type: 'function',
        name: 'exec_command',
        description: 'Runs a shell command.',
        strict: false,
        parameters: {
          anyOf: [
            {
              type: 'object',
              properties: { cmd: { type: 'string' }, workdir: { type: 'string' } },
              required: ['cmd'],
            },
            {
              type: 'object',
              properties: { cmd: { type: 'string' }, timeout_ms: { type: 'integer' } },
              required: ['cmd', 'timeout_ms'],
            },
          ],
        },
      },
    ],
    tool_choice: 'auto',
    parallel_tool_calls: true,
    reasoning: { effort: 'max', summary: 'auto' },
    temperature: 0.7,
    top_p: 1,
    max_output_tokens: 32000,
    metadata: { droid_session: 'sess_1' },
    user: 'droid-user-1',
    safety_identifier: 'user-hash',
    prompt_cache_key: 'sess_1',
    prompt_cache_retention: '24h',
    store: true,
    stream,
    ...(stream ? { stream_options: { include_obfuscation: false } } : {}),
    include: ['reasoning.encrypted_content'],
    text: { verbosity: 'medium' },
  };
}

function lastRecorded(fake: FakeUpstream): {
  body: JsonObject;
  path: string;
  status?: number;
  raw: Buffer;
} {
  const last = fake.requests[fake.requests.length - 1];
  if (last === undefined) throw new Error('the fake received nothing');
  return { body: last.body as JsonObject, path: last.path, status: last.status, raw: last.rawBody };
}

describe('codex profile through the full chain (stateless fake)', () => {
  let fake: FakeUpstream;
  let relay: Listening;

  beforeAll(async () => {
    fake = await startFakeUpstream({ mode: 'stateless' });
    relay = await listen(relayApp(fake, 'codex'));
  });
  afterAll(async () => {
    await relay.close();
    await fake.close();
  });

  const requests = codexFixtureRequests();

  it('covers the fixtures', () => {
    expect(requests.length).toBeGreaterThan(40);
  });

  it.each(requests.map((entry, index) => [entry.label, index] as const))(
    'Codex CLI request %s reaches the fake unchanged and is accepted',
    async (_label, index) => {
      const entry = requests[index];
      if (entry === undefined) throw new Error('missing fixture');
      const alias = RESPONSES_ROUTES[index % RESPONSES_ROUTES.length] ?? '/v1/responses';
      const answer = await postSse(relay.url + alias, entry.body, { headers: entry.headers });
      const events = await answer.done;
      expect(answer.status).toBe(200);
      expect(answer.headers['content-type']).toMatch(/^text\/event-stream/);
      expect(events.map((event) => event.json?.type)).toContain('response.completed');
      const recorded = lastRecorded(fake);
      expect(recorded.status).toBe(200);
      expect(recorded.path).toBe(CODEX_BACKEND_PATH);
      // A Codex body already satisfies the backend: it reaches it byte for byte.
      expect(recorded.raw.equals(Buffer.from(JSON.stringify(entry.body)))).toBe(true);
      expect(annotations[annotations.length - 1]).toMatchObject({
        profile: 'codex',
        client: 'codex',
      });
      expect(annotations[annotations.length - 1]).not.toHaveProperty('profile_changed');
    },
  );

  it('accepts every field a Droid-like SDK client sends, stripping what the backend refuses', async () => {
    const body = droidLikeBody();
    const answer = await postSse(`${relay.url}/v1/responses`, body, { headers: SDK_HEADERS });
    const events = await answer.done;
    expect(answer.status).toBe(200);
    expect(events.map((event) => event.json?.type)).toContain('response.completed');
    const recorded = lastRecorded(fake);
    expect(recorded.status).toBe(200);
    for (const key of [...CODEX_REFUSED_FIELDS, 'stream_options']) {
      expect(recorded.body).not.toHaveProperty(key);
    }
    expect(recorded.body.store).toBe(false);
    expect(recorded.body.stream).toBe(true);
    expect(recorded.body.instructions).toBe(body.instructions);
    expect(recorded.body.reasoning).toEqual({ effort: 'xhigh', summary: 'auto' });
    expect(recorded.body.prompt_cache_key).toBe('sess_1');
    expect((recorded.body.tools as JsonObject[])[0]?.parameters).toEqual({
      type: 'object',
      properties: {
        cmd: { type: 'string' },
        workdir: { type: 'string' },
        timeout_ms: { type: 'integer' },
      },
      required: ['cmd'],
    });
    expect(annotations[annotations.length - 1]).toMatchObject({
      profile: 'codex',
      upstream_mode: 'stateless',
      client: 'openai-sdk',
      vendor_events: 'drop',
      profile_stripped:
        'temperature,top_p,max_output_tokens,metadata,user,safety_identifier,prompt_cache_retention,stream_options',
      profile_changed: 'tools,reasoning,store',
      profile_notes: expect.stringContaining('sanitized_tool_schema: exec_command(anyOf+type)'),
    });
    // The model called the (sanitized) tool: the fake understood the schema.
    const done = events.filter((event) => event.json?.type === 'response.output_item.done');
    expect(done.map((event) => (event.json?.item as JsonObject | undefined)?.type)).toContain(
      'function_call',
    );
  });

  it('serves a non-stream client with one JSON Response from the forced stream', async () => {
    const answer = await request(relay.server)
      .post('/responses')
      .set(SDK_HEADERS)
      .send(droidLikeBody(false));
    expect(answer.status).toBe(200);
    expect(answer.headers['content-type']).toMatch(/^application\/json/);
    expect(answer.body).toMatchObject({ object: 'response', status: 'completed' });
    expect((answer.body as { output: unknown[] }).output.length).toBeGreaterThan(0);
    expect(lastRecorded(fake).body.stream).toBe(true);
    expect(annotations[annotations.length - 1]).toMatchObject({
      aggregate_stream: true,
      profile_changed: 'tools,reasoning,store,stream',
    });
  });

  it('turns a string input into the list the backend requires', async () => {
    const answer = await postSse(`${relay.url}/codex/v1/responses`, {
      model: 'gpt-5.5',
      input: 'Hello!',
      stream: true,
    });
    await answer.done;
    expect(answer.status).toBe(200);
    expect(lastRecorded(fake).body.input).toEqual([
      { type: 'message', role: 'user', content: [{ type: 'input_text', text: 'Hello!' }] },
    ]);
  });

  it('answers an unreadable body with an OpenAI error envelope, without calling the upstream', async () => {
    const before = fake.requests.length;
    const answer = await request(relay.server)
      .post('/v1/responses')
      .set('content-type', 'application/json')
      .send('{"model":');
    expect(answer.status).toBe(400);
    expect(answer.body).toEqual({
      error: expect.objectContaining({ type: 'invalid_request_error', code: 'invalid_json' }),
    });
    expect(fake.requests.length).toBe(before);
  });
});

describe('vendor events (codex profile)', () => {
  const RATE_LIMITS =
    'event: codex.rate_limits\ndata: {"type":"codex.rate_limits","plan_type":"plus","rate_limits":{"primary":{"used_percent":12.5}}}\n\n';
  let fake: FakeUpstream;
  const servers: Listening[] = [];

  beforeAll(async () => {
    fake = await startFakeUpstream({ mode: 'stateless' });
  });
  afterAll(async () => {
    await Promise.all(servers.map((server) => server.close()));
    await fake.close();
  });

  async function relayFor(options: UpstreamProfileOptions = {}): Promise<Listening> {
    const server = await listen(relayApp(fake, 'codex', options));
    servers.push(server);
    return server;
  }

  const body = { model: 'gpt-5.5', input: [{ role: 'user', content: 'hi' }], stream: true };

  it('reach a Codex client (recognised by its headers) untouched', async () => {
    const relay = await relayFor();
    fake.script({ kind: 'inject', at: 0, raw: RATE_LIMITS });
    const answer = await postSse(`${relay.url}/v1/responses`, body, {
      headers: { originator: 'codex_exec', 'user-agent': 'codex_exec/0.169.0' },
    });
    const types = (await answer.done).map((event) => event.json?.type);
    expect(types[0]).toBe('codex.rate_limits');
    expect(types).toContain('response.completed');
  });

  it('are dropped for other clients, so the official openai SDK accepts the stream', async () => {
    const relay = await relayFor();
    fake.script({ kind: 'inject', at: 0, raw: RATE_LIMITS });
    const client = new OpenAI({ baseURL: `${relay.url}/v1`, apiKey: 'sk-test', maxRetries: 0 });
    const final = await client.responses.stream({ model: 'gpt-5.5', input: 'hi' }).finalResponse();
    expect(final.status).toBe('completed');
    expect(final.output_text.length).toBeGreaterThan(0);
  });

  it('passed to the SDK they break it: the reason for dropping them (vendorEvents: pass)', async () => {
    const relay = await relayFor({ vendorEvents: 'pass' });
    fake.script({ kind: 'inject', at: 0, raw: RATE_LIMITS });
    const client = new OpenAI({ baseURL: `${relay.url}/v1`, apiKey: 'sk-test', maxRetries: 0 });
    await expect(
      client.responses.stream({ model: 'gpt-5.5', input: 'hi' }).finalResponse(),
    ).rejects.toThrow(/codex\.rate_limits/);
  });

  it('vendorEvents: drop removes them for Codex clients too', async () => {
    const relay = await relayFor({ vendorEvents: 'drop' });
    fake.script({ kind: 'inject', at: 0, raw: RATE_LIMITS });
    const answer = await postSse(`${relay.url}/v1/responses`, body, {
      headers: { originator: 'codex_exec' },
    });
    const types = (await answer.done).map((event) => event.json?.type);
    expect(types).not.toContain('codex.rate_limits');
    expect(types[0]).toBe('response.created');
  });
});

describe('openai profile through the full chain (stateful fake)', () => {
  let fake: FakeUpstream;
  let relay: Listening;

  beforeAll(async () => {
    fake = await startFakeUpstream({ mode: 'stateful' });
    relay = await listen(relayApp(fake, 'openai'));
  });
  afterAll(async () => {
    await relay.close();
    await fake.close();
  });

  it('passes the request byte for byte (odd spacing, key order and escapes kept)', async () => {
    const raw =
      '{ "temperature" : 0.5,\n  "model":"gpt-5.5", "input":"caf\\u00e9 \u2028 ok",\t"metadata":{"k":"v"},' +
      '"max_output_tokens":64, "reasoning":{"effort":"max"}, "stream":true }';
    const answer = await request(relay.server)
      .post('/responses')
      .set('content-type', 'application/json')
      .send(raw)
      .buffer(true)
      .parse((res, done) => {
        let text = '';
        res.on('data', (chunk: Buffer) => (text += chunk.toString()));
        res.on('end', () => done(null, text));
      });
    expect(answer.status).toBe(200);
    const recorded = lastRecorded(fake);
    expect(recorded.path).toBe('/v1/responses');
    expect(recorded.raw.equals(Buffer.from(raw))).toBe(true);
  });

  it('passes a non-stream request through as JSON', async () => {
    const answer = await request(relay.server)
      .post('/codex/v1/responses')
      .send({ model: 'gpt-5.5', input: 'hi', temperature: 0.2 });
    expect(answer.status).toBe(200);
    expect(answer.body).toMatchObject({ object: 'response', status: 'completed' });
    expect(lastRecorded(fake).body).toEqual({ model: 'gpt-5.5', input: 'hi', temperature: 0.2 });
  });

  it('a custom profile object works the same way', async () => {
    const custom = await listen(
      relayApp(fake, {
        name: 'pinned-model',
        prepareRequest: (body) => (body.model === 'gpt-5.5' ? body : { ...body, model: 'gpt-5.5' }),
      }),
    );
    try {
      const answer = await request(custom.server)
        .post('/v1/responses')
        .send({ model: 'gpt-4o', input: 'hi' });
      expect(answer.status).toBe(200);
      expect(lastRecorded(fake).body).toEqual({ model: 'gpt-5.5', input: 'hi' });
    } finally {
      await custom.close();
    }
  });
});

describe('upstreamProfile middleware edges', () => {
  let fake: FakeUpstream;

  beforeAll(async () => {
    fake = await startFakeUpstream({ mode: 'stateless' });
  });
  afterAll(async () => {
    await fake.close();
  });

  it('refuses an unknown profile when mounted, not per request', () => {
    expect(() => upstreamProfile('azure' as ProfileName)).toThrow(
      /unknown upstream profile 'azure'/,
    );
    expect(() => upstreamProfile({ name: 'x', vendorEvents: 'sometimes' as 'pass' })).toThrow(
      /vendorEvents/,
    );
  });

  it('answers a failing custom profile with a 500 envelope and never calls the upstream', async () => {
    const before = fake.requests.length;
    const app = relayApp(fake, {
      name: 'broken',
      prepareRequest: () => {
        throw new Error('boom: sk-secret-should-not-leak');
      },
    });
    const answer = await request(app).post('/v1/responses').send({ model: 'm', input: 'hi' });
    expect(answer.status).toBe(500);
    expect(answer.body).toEqual({
      error: expect.objectContaining({ type: 'server_error', code: 'server_error' }),
    });
    expect(JSON.stringify(answer.body)).not.toContain('sk-secret');
    expect(fake.requests.length).toBe(before);
  });

  it('lets requests other than POST through untouched', async () => {
    const app = express();
    app.get('/v1/responses', upstreamProfile('codex'), (_req, res) => {
      res.json({ reached: true, exchange: findExchange(res) !== undefined });
    });
    const answer = await request(app).get('/v1/responses');
    expect(answer.body).toEqual({ reached: true, exchange: false });
  });

  it('works after express.json() (the parsed body is used, then re-serialized when changed)', async () => {
    const app = express();
    app.post(
      '/v1/responses',
      express.json({ limit: '32mb' }),
      upstreamProfile('codex'),
      createProxyMiddleware({
        target: fake.url,
        changeOrigin: true,
        pathRewrite: profilePathRewrite(codexProfile()),
        ...relayProxyOptions(),
      }),
    );
    const answer = await request(app)
      .post('/v1/responses')
      .set(SDK_HEADERS)
      .send({ ...droidLikeBody(false), reasoning: { effort: 'off' } });
    expect(answer.status).toBe(200);
    expect(answer.body).toMatchObject({ object: 'response', status: 'completed' });
    const recorded = lastRecorded(fake);
    expect(recorded.status).toBe(200);
    expect(recorded.body).not.toHaveProperty('temperature');
    expect(recorded.body).not.toHaveProperty('reasoning');
  });
});
