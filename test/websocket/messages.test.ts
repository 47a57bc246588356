/**
 * What goes over one connection: malformed and unknown messages get a wrapped 400 and the
 * connection stays usable; an oversize message closes it with 1009 and nothing else; upstream and
 * relay errors arrive as the wrapped error message Codex honours (status, envelope, retry
 * headers); broken streams end with `response.failed`; turns queue in order; prewarms are
 * answered by the route and never generate upstream; the events are the route's own bytes.
 */
import express from 'express';
import net, { type AddressInfo } from 'node:net';
import type { JsonObject } from '../../lib/protocol/types';
import { relayError } from '../../lib/protocol/relay-errors';
import { MemorySessionStore } from '../../lib/store/memory-session-store';
import { tenantId } from '../../lib/store/tenant';
import { attachWebSocketBridge } from '../../lib/websocket/bridge';
import type { WebSocketBridgeOptions } from '../../lib/websocket/options';
import type { FakeUpstream } from '../support/fake-upstream';
import { EXEC_COMMAND_TOOL, useFakes } from '../support/fake-upstream/testing';
import { listen } from '../support/listen';
import {
  AUTH_A,
  AUTH_B,
  KEY_A,
  startGateway,
  TEST_TENANT_SECRET,
  type TestGateway,
} from './support/gateway';
import { doneItems, streamProblems, WsClient } from './support/ws-client';

const start = useFakes();
const open: Array<{ close(): Promise<unknown> }> = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((item) => item.close()));
});

interface Setup {
  fake: FakeUpstream;
  gateway: TestGateway;
  store: MemorySessionStore;
  client: WsClient;
}

async function setup(
  options: WebSocketBridgeOptions = {},
  config: { prewarm?: boolean } = {},
): Promise<Setup> {
  const fake = await start({ mode: 'stateless' });
  const store = new MemorySessionStore();
  const gateway = await startGateway(
    { relayMode: 'stateless', store, target: fake.url, ...config },
    options,
  );
  open.push(gateway);
  const client = await WsClient.connect(gateway.wsUrl, AUTH_A);
  open.push(client);
  return { fake, gateway, store, client };
}

const MODEL = 'gpt-test';
const TURN: JsonObject = { model: MODEL, input: 'hello', store: false, stream: true };

async function expectUsable(client: WsClient): Promise<void> {
  const turn = await client.turn(TURN);
  expect(turn.error).toBeUndefined();
  expect(turn.response?.status).toBe('completed');
}

describe('malformed messages', () => {
  it.each([
    ['not JSON', '{"type":"response.create",', relayError('invalid_json', { reason: 'syntax' })],
    ['an empty text', '  ', relayError('invalid_json', { reason: 'empty' })],
    ['a JSON array', '[1,2]', relayError('invalid_json', { reason: 'not_an_object' })],
    ['a JSON number', '42', relayError('invalid_json', { reason: 'not_an_object' })],
    [
      'an unknown type',
      '{"type":"response.cancel"}',
      relayError('unsupported_message_type', { type: 'response.cancel' }),
    ],
    [
      'no type',
      '{"model":"gpt-test","input":"hi"}',
      relayError('unsupported_message_type', { type: '(none)' }),
    ],
    ['a non-string type', '{"type":7}', relayError('unsupported_message_type', { type: 'number' })],
  ])('%s: a wrapped 400, and the connection stays usable', async (_name, text, expected) => {
    const { client, gateway, fake } = await setup();
    client.send(text);
    const frame = await client.next();
    expect(frame).toEqual({ type: 'error', status: 400, error: expected.toErrorBody() });
    await expectUsable(client);
    expect(gateway.bridge.stats.malformedMessages).toBe(1);
    expect(fake.requests).toHaveLength(1);
  });

  it('a binary message: a wrapped 400 (Codex only sends text)', async () => {
    const { client } = await setup();
    client.send(Buffer.from(JSON.stringify({ type: 'response.create', ...TURN })), true);
    const frame = await client.next();
    expect(frame).toMatchObject({
      type: 'error',
      status: 400,
      error: { code: 'relay_unsupported_message_type', param: 'type' },
    });
    await expectUsable(client);
  });

  it('response.processed acknowledgements are accepted silently', async () => {
    const { client, gateway } = await setup();
    client.send(JSON.stringify({ type: 'response.processed', response_id: 'resp_x' }));
    await expectUsable(client);
    expect(client.frames.filter((frame) => frame.type === 'error')).toEqual([]);
    expect(gateway.bridge.stats.ignoredMessages).toBe(1);
  });

  it('a message over maxPayload closes that connection with 1009, and only that one', async () => {
    const { client, gateway } = await setup({ maxPayload: 64 * 1024 });
    const other = await WsClient.connect(gateway.wsUrl, AUTH_A);
    open.push(other);
    const big = JSON.stringify({ ...TURN, type: 'response.create', input: 'x'.repeat(80 * 1024) });
    client.send(big);
    const closed = await client.closed;
    expect(closed.code).toBe(1009);
    await expectUsable(other);
    // Below the limit (a 40 KB Codex frame) is fine.
    const fine = await other.turn({ ...TURN, input: 'y'.repeat(40 * 1024) });
    expect(fine.response?.status).toBe('completed');
  });

  it('a compressed message that inflates past maxPayload is refused the same way', async () => {
    const { client } = await setup({ maxPayload: 64 * 1024 });
    // Compresses to a few hundred bytes, inflates to 1 MiB.
    client.send(JSON.stringify({ type: 'response.create', ...TURN, input: 'a'.repeat(1 << 20) }));
    expect((await client.closed).code).toBe(1009);
  });
});

describe('errors as wrapped error messages', () => {
  it('an upstream 429 keeps its status, envelope and retry-after; the connection stays open', async () => {
    const { client, fake } = await setup();
    fake.script({
      kind: 'http_error',
      status: 429,
      headers: { 'retry-after': '1', 'x-ratelimit-remaining-requests': '0' },
    });
    const turn = await client.turn(TURN);
    expect(turn.frames).toHaveLength(1);
    expect(turn.error).toMatchObject({
      type: 'error',
      status: 429,
      headers: { 'retry-after': '1', 'x-ratelimit-remaining-requests': '0' },
    });
    expect(Object.keys(turn.error?.error as JsonObject).sort()).toEqual([
      'code',
      'message',
      'param',
      'type',
    ]);
    await expectUsable(client);
  });

  it('an unknown anchor: OpenAI’s exact previous_response_not_found (Codex then resends everything)', async () => {
    const { client, fake } = await setup();
    const turn = await client.turn({ ...TURN, previous_response_id: 'resp_unknown' });
    expect(turn.error).toMatchObject({
      type: 'error',
      status: 400,
      headers: { 'x-request-id': expect.any(String) },
    });
    // Byte for byte: the Codex client matches this code and retries with the full history.
    expect(turn.error?.error).toEqual(
      relayError('previous_response_not_found', { id: 'resp_unknown' }).toErrorBody(),
    );
    expect(fake.requests).toHaveLength(0);
  });

  it('a FastAPI {"detail"} refusal becomes a complete envelope', async () => {
    const { client, fake } = await setup();
    fake.script({ kind: 'detail_error', status: 400, detail: 'Unsupported parameter: foo' });
    const turn = await client.turn(TURN);
    expect(turn.error).toMatchObject({
      type: 'error',
      status: 400,
      error: { type: 'invalid_request_error', param: 'foo', code: 'unsupported_parameter' },
    });
  });

  it('an upstream 5xx is a wrapped 5xx (Codex retries it)', async () => {
    const { client, fake } = await setup();
    fake.script({ kind: 'html_error', status: 503 });
    const turn = await client.turn(TURN);
    expect(turn.error?.status).toBe(503);
    expect((turn.error?.error as JsonObject).type).toBe('server_error');
  });

  it('a stream cut mid-way ends with response.failed (server_error); the next turn works', async () => {
    const { client, fake, gateway } = await setup();
    fake.script({ kind: 'cut', afterEvents: 4, mode: 'reset' });
    const turn = await client.turn(TURN);
    expect(turn.terminal?.type).toBe('response.failed');
    expect((turn.response?.error as JsonObject | undefined)?.code).toBe('server_error');
    expect(streamProblems(turn)).toEqual([]);
    await expectUsable(client);
    expect(gateway.bridge.stats.failed).toBe(1);
  });

  it('a route that cannot be reached: a wrapped 500 (retryable), the connection stays', async () => {
    // Port 1: nothing listens there (a port freed by a test could be taken by another one).
    const { client } = await setup({ origin: 'http://127.0.0.1:1' });
    const turn = await client.turn(TURN);
    expect(turn.error).toEqual({
      type: 'error',
      status: 500,
      error: relayError('internal_error').toErrorBody(),
    });
    expect(client.isOpen).toBe(true);
  });
});

describe('the loopback connection', () => {
  it('a kept-alive connection the route closed while idle: the turn is posted again, once', async () => {
    // A route that answers the first request of each connection, then resets the connection on
    // the next one (what a server's keep-alive timeout does when it races a new request).
    let connections = 0;
    let requests = 0;
    const route = net.createServer((socket) => {
      connections += 1;
      let buffer = Buffer.alloc(0);
      let served = 0;
      socket.on('data', (chunk: Buffer) => {
        buffer = Buffer.concat([buffer, chunk]);
        const end = buffer.indexOf('\r\n\r\n');
        if (end < 0) return;
        const length = Number(
          /content-length: *(\d+)/i.exec(buffer.subarray(0, end).toString())?.[1],
        );
        if (buffer.length < end + 4 + length) return;
        buffer = buffer.subarray(end + 4 + length);
        requests += 1;
        if (served > 0) {
          socket.resetAndDestroy();
          return;
        }
        served += 1;
        const response = {
          id: `resp_${requests}`,
          object: 'response',
          status: 'completed',
          output: [],
        };
        const body = [
          {
            type: 'response.created',
            sequence_number: 0,
            response: { ...response, status: 'in_progress' },
          },
          { type: 'response.completed', sequence_number: 1, response },
        ]
          .map((event) => `data: ${JSON.stringify(event)}\n\n`)
          .join('');
        socket.write(
          `HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: keep-alive\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
        );
      });
    });
    await new Promise<void>((resolve) => route.listen(0, '127.0.0.1', resolve));
    open.push({ close: () => new Promise((resolve) => route.close(resolve)) });
    const origin = `http://127.0.0.1:${(route.address() as AddressInfo).port}`;
    const { client } = await setup({ origin });
    const first = await client.turn(TURN);
    expect(first.response?.id).toBe('resp_1');
    const second = await client.turn(TURN);
    expect(second.error).toBeUndefined();
    expect(second.response?.id).toBe('resp_3');
    expect({ connections, requests }).toEqual({ connections: 2, requests: 3 });
  });
});

describe('turns on one connection', () => {
  it('run one at a time, in order, even when sent back to back', async () => {
    const { client, fake } = await setup();
    fake.script({ kind: 'slow', delayMs: 5, then: { kind: 'text', text: 'first' } });
    fake.script({ kind: 'text', text: 'second' });
    client.send(JSON.stringify({ type: 'response.create', ...TURN, input: 'one' }));
    client.send(JSON.stringify({ type: 'response.create', ...TURN, input: 'two' }));
    const first = await client.read();
    const second = await client.read();
    expect(streamProblems(first)).toEqual([]);
    expect(streamProblems(second)).toEqual([]);
    const text = (turn: typeof first) =>
      ((doneItems(turn)[0] as JsonObject).content as JsonObject[])[0]?.text;
    expect([text(first), text(second)]).toEqual(['first', 'second']);
  });

  it('closes with 1008 when more turns are queued than allowed', async () => {
    const { client, fake } = await setup({ maxQueuedTurns: 1 });
    fake.setDefault({ kind: 'slow', delayMs: 50 });
    for (let i = 0; i < 3; i += 1) {
      client.send(JSON.stringify({ type: 'response.create', ...TURN }));
    }
    expect((await client.closed).code).toBe(1008);
  });

  it('a turn that omits previous_response_id while answering a call continues the connection', async () => {
    const { client, fake, gateway } = await setup();
    const tools = [EXEC_COMMAND_TOOL];
    const call = await client.turn({ ...TURN, input: 'run it', tools });
    const [item] = doneItems(call) as JsonObject[];
    expect(item?.type).toBe('function_call');
    const output = { type: 'function_call_output', call_id: item?.call_id, output: 'hi\n' };
    const final = await client.turn({ ...TURN, input: [output], tools });
    expect(final.response?.status).toBe('completed');
    expect((fake.requests[1]?.body as JsonObject).input).toEqual([
      { type: 'message', role: 'user', content: 'run it' },
      item,
      output,
    ]);
    expect(gateway.bridge.stats.anchorsAdded).toBe(1);
    // A self-contained input is never given an anchor.
    const fresh = await client.turn({ ...TURN, input: 'new topic', tools });
    expect(fresh.response?.status).toBe('completed');
    expect((fake.requests[2]?.body as JsonObject).input).toBe('new topic');
  });
});

describe('sessions across connections', () => {
  const tools = [EXEC_COMMAND_TOOL];

  it('a reconnect with the same session header continues a tool round that omits its anchor', async () => {
    const { client, fake, gateway } = await setup();
    await client.close();
    const headers = { ...AUTH_A, 'session-id': 'thread-42' };
    const first = await WsClient.connect(gateway.wsUrl, headers);
    const call = await first.turn({ ...TURN, input: 'run it', tools });
    const [item] = doneItems(call) as JsonObject[];
    await first.close();
    const second = await WsClient.connect(gateway.wsUrl, headers);
    open.push(second);
    const output = { type: 'function_call_output', call_id: item?.call_id, output: 'done' };
    const final = await second.turn({ ...TURN, input: [output], tools });
    expect(final.response?.status).toBe('completed');
    expect((fake.requests[1]?.body as JsonObject).input).toEqual([
      { type: 'message', role: 'user', content: 'run it' },
      item,
      output,
    ]);
    expect(gateway.bridge.stats.anchorsAdded).toBe(0);
  });

  it('another tenant naming the same session reaches nothing', async () => {
    const { client, fake, gateway } = await setup();
    await client.close();
    const first = await WsClient.connect(gateway.wsUrl, { ...AUTH_A, 'session-id': 'thread-7' });
    open.push(first);
    const call = await first.turn({ ...TURN, input: 'run it', tools });
    const [item] = doneItems(call) as JsonObject[];
    const intruder = await WsClient.connect(gateway.wsUrl, { ...AUTH_B, 'session-id': 'thread-7' });
    open.push(intruder);
    const output = { type: 'function_call_output', call_id: item?.call_id, output: 'x' };
    const refused = await intruder.turn({ ...TURN, input: [output], tools });
    expect(refused.error).toMatchObject({
      type: 'error',
      status: 400,
      error: {
        message: `No tool call found for function call output with call_id ${String(item?.call_id)}.`,
      },
    });
    expect(fake.requests).toHaveLength(1);
  });
});

describe('prewarms', () => {
  const BASE = {
    type: 'message',
    role: 'developer',
    content: [{ type: 'input_text', text: 'BASE' }],
  };

  it('are answered at once by the route, stored, and never sent upstream', async () => {
    const { client, fake, store } = await setup();
    const prewarm = await client.turn({ ...TURN, input: [BASE], generate: false });
    expect(prewarm.frames.map((frame) => frame.type)).toEqual([
      'response.created',
      'response.in_progress',
      'response.completed',
    ]);
    expect(prewarm.response).toMatchObject({ status: 'completed', output: [], model: MODEL });
    expect(prewarm.response?.id).toMatch(/^resp_[0-9a-f]{48}$/);
    expect(fake.requests).toHaveLength(0);
    const stored = await store.getResponse(
      tenantId(KEY_A, TEST_TENANT_SECRET),
      prewarm.response?.id as string,
    );
    expect(stored?.input).toEqual([BASE]);
    const next = await client.turn({
      ...TURN,
      previous_response_id: prewarm.response?.id,
      input: 'first turn',
    });
    expect(next.response?.status).toBe('completed');
    expect((fake.requests[0]?.body as JsonObject).input).toEqual([
      BASE,
      { type: 'message', role: 'user', content: 'first turn' },
    ]);
  });

  it('without prewarmResponder a prewarm still never generates: the upstream refuses `generate`', async () => {
    const { client, fake, gateway } = await setup({}, { prewarm: false });
    const prewarm = await client.turn({ ...TURN, input: [BASE], generate: false });
    expect(prewarm.error).toMatchObject({ type: 'error', status: 400 });
    expect(String((prewarm.error?.error as JsonObject).message)).toContain('generate');
    expect((fake.requests[0]?.body as JsonObject).generate).toBe(false);
    expect(gateway.logger.lines.some((line) => String(line.msg).includes('prewarmResponder'))).toBe(
      true,
    );
  });

  it('answers an HTTP client’s generate:false the same way (JSON or stream)', async () => {
    const { gateway, fake } = await setup();
    const answer = await fetch(`${gateway.url}/v1/responses`, {
      method: 'POST',
      headers: { ...AUTH_A, 'content-type': 'application/json' },
      body: JSON.stringify({ model: MODEL, input: [BASE], generate: false }),
    });
    expect(answer.status).toBe(200);
    expect(answer.headers.get('x-relay-prewarm')).toBe('answered');
    expect(await answer.json()).toMatchObject({
      object: 'response',
      status: 'completed',
      output: [],
    });
    expect(fake.requests).toHaveLength(0);
  });
});

describe('what the client receives', () => {
  it('each event is the route’s own data text, unchanged, one message per event', async () => {
    // An upstream with its own JSON spacing and key order: the bridge must not re-serialize.
    const events = [
      '{ "type": "response.created", "sequence_number": 0, "response": {"id":"resp_a","object":"response","status":"in_progress","output":[]} }',
      '{"sequence_number":1,"type":"response.output_item.added","output_index":0,"item":{"id":"msg_1","type":"message","role":"assistant","status":"in_progress","content":[]}}',
      '{"type":"response.output_text.delta","sequence_number":2,"item_id":"msg_1","output_index":0,"content_index":0,"delta":"caf\u00e9 \u2028 ok"}',
    ];
    const upstream = await listen((req, res) => {
      req.resume();
      req.on('end', () => {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        res.write(events.map((data) => `data: ${data}\n\n`).join(''));
        res.end('data: [DONE]\n\n');
      });
    });
    open.push(upstream);
    const gateway = await startGateway({
      relayMode: 'stateless',
      store: new MemorySessionStore(),
      target: upstream.url,
    });
    open.push(gateway);
    const client = await WsClient.connect(gateway.wsUrl, AUTH_A);
    open.push(client);
    const received: string[] = [];
    client.ws.on('message', (data) => received.push(String(data)));
    const turn = await client.turn(TURN);
    expect(received.slice(0, 3)).toEqual(events);
    // The relay closed the stream that had no terminal event (sseCompletion), as over HTTP.
    expect(turn.terminal?.type).toBe('response.failed');
  });

  it('a route that answers a whole JSON Response: its events are rebuilt (handler option)', async () => {
    const response = {
      id: 'resp_json',
      object: 'response',
      status: 'completed',
      model: MODEL,
      output: [
        {
          id: 'fc_1',
          type: 'function_call',
          status: 'completed',
          name: 'exec_command',
          arguments: '{"cmd":"echo hi"}',
          call_id: 'call_1',
        },
      ],
    };
    const app = express();
    app.post('/v1/responses', (_req, res) => {
      res.json(response);
    });
    const server = await listen((req, res) => res.end());
    const bridge = attachWebSocketBridge(server.server, { handler: app, logger: false });
    open.push({ close: () => bridge.close().then(() => server.close()) });
    const client = await WsClient.connect(`ws://127.0.0.1:${server.port}/v1/responses`, AUTH_A);
    open.push(client);
    const turn = await client.turn(TURN);
    expect(turn.frames.map((frame) => frame.type)).toEqual([
      'response.created',
      'response.output_item.done',
      'response.completed',
    ]);
    expect(doneItems(turn)).toEqual(response.output);
    expect(turn.response).toEqual(response);
  });
});
