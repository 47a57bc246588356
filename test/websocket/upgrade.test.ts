/**
 * The upgrade: accepted on the Responses paths with a credential (no model needed yet), a plain
 * 401 before the upgrade without one or when `authenticate` refuses, 426 where WebSocket is
 * switched off (the Codex client's instant HTTP fallback), and permessage-deflate negotiated.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { relayError } from '../../lib/protocol/relay-errors';
import { MemorySessionStore } from '../../lib/store/memory-session-store';
import { attachWebSocketBridge } from '../../lib/websocket/bridge';
import { useFakes } from '../support/fake-upstream/testing';
import { AUTH_A, KEY_A, startGateway, type TestGateway } from './support/gateway';
import type { WebSocketBridgeOptions } from '../../lib/websocket/options';
import { refusalOf, WsClient } from './support/ws-client';

const start = useFakes();
const open: Array<{ close(): Promise<unknown> }> = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((item) => item.close()));
});

async function gateway(options: WebSocketBridgeOptions = {}): Promise<TestGateway> {
  const fake = await start({ mode: 'stateless' });
  const started = await startGateway(
    { relayMode: 'stateless', store: new MemorySessionStore(), target: fake.url },
    options,
  );
  open.push(started);
  return started;
}

const TURN = { model: 'gpt-test', input: 'hello', store: false, stream: true };

describe('accepted upgrades', () => {
  it.each(['/v1/responses', '/responses', '/v1/responses/', '/v1/responses?api-version=1'])(
    'on %s, with a credential and no model until the first response.create',
    async (path) => {
      const gw = await gateway();
      const client = await WsClient.connect(gw.wsUrl.replace('/v1/responses', path), AUTH_A);
      open.push(client);
      const turn = await client.turn(TURN);
      expect(turn.response?.status).toBe('completed');
      expect(gw.bridge.stats.connectionsOpen).toBe(1);
    },
  );

  it('accepts x-api-key and negotiates permessage-deflate (the Codex client offers it)', async () => {
    const gw = await gateway();
    const client = await WsClient.connect(gw.wsUrl, { 'x-api-key': KEY_A });
    open.push(client);
    expect(client.ws.extensions).toContain('permessage-deflate');
  });

  it('posts each turn with the query of the upgrade (Codex query_params, e.g. api-version)', async () => {
    const gw = await gateway();
    const client = await WsClient.connect(`${gw.wsUrl}?api-version=2025-01-01`, AUTH_A);
    open.push(client);
    await client.turn(TURN);
    const posted = gw.hits.filter((hit) => hit.method === 'POST');
    expect(posted.map((hit) => hit.url)).toEqual(['/v1/responses?api-version=2025-01-01']);
  });

  it('forwards the client headers on each turn, without the WebSocket ones and their beta token', async () => {
    const gw = await gateway();
    const client = await WsClient.connect(gw.wsUrl, {
      ...AUTH_A,
      'openai-beta': 'responses_websockets=2026-02-06, assistants=v2',
      originator: 'codex_exec',
      'session-id': 'thread-1',
    });
    open.push(client);
    await client.turn(TURN);
    const [hit] = gw.hits.filter((h) => h.method === 'POST');
    expect(hit?.headers).toMatchObject({
      authorization: AUTH_A.authorization,
      originator: 'codex_exec',
      'session-id': 'thread-1',
      'openai-beta': 'assistants=v2',
      'x-relay-session': 'thread-1',
      'content-type': 'application/json',
    });
    expect(hit?.headers['sec-websocket-key']).toBeUndefined();
    expect(hit?.headers.upgrade).toBeUndefined();
    expect(hit?.headers['x-forwarded-for']).toBe('127.0.0.1');
  });
});

describe('refused upgrades', () => {
  it('answers a plain 401 with an OpenAI envelope before upgrading, without a credential', async () => {
    const gw = await gateway();
    const refusal = await refusalOf(gw.wsUrl);
    expect(refusal.status).toBe(401);
    expect(refusal.headers['content-type']).toBe('application/json');
    expect(JSON.parse(refusal.body)).toEqual(relayError('missing_credentials').toEnvelope());
    expect(gw.bridge.stats.connectionsOpened).toBe(0);
    expect(gw.bridge.stats.upgradesRefused).toBe(1);
  });

  it('401 when authenticate() refuses the credential (sync or async)', async () => {
    const gw = await gateway({
      authenticate: async (req) => req.headers.authorization === AUTH_A.authorization,
    });
    const refusal = await refusalOf(gw.wsUrl, { authorization: 'Bearer sk-wrong' });
    expect(refusal.status).toBe(401);
    const client = await WsClient.connect(gw.wsUrl, AUTH_A);
    open.push(client);
  });

  it('answers the status and envelope of a RelayError authenticate() returns', async () => {
    const gw = await gateway({ authenticate: () => relayError('store_unavailable') });
    const refusal = await refusalOf(gw.wsUrl, AUTH_A);
    expect(refusal.status).toBe(503);
    expect(JSON.parse(refusal.body)).toEqual(relayError('store_unavailable').toEnvelope());
  });

  it('answers 500 when authenticate() throws, and keeps serving', async () => {
    let fail = true;
    const gw = await gateway({
      authenticate: () => {
        if (fail) throw new Error('boom');
        return true;
      },
    });
    expect((await refusalOf(gw.wsUrl, AUTH_A)).status).toBe(500);
    fail = false;
    const client = await WsClient.connect(gw.wsUrl, AUTH_A);
    open.push(client);
  });

  it.each([
    ['enabled', { enabled: () => true }],
    ['route', { route: () => '/v1/responses' }],
  ] as const)('answers 500 when %s() throws, and keeps serving', async (name, fine) => {
    let fail = true;
    const gw = await gateway({
      [name]: (req: http.IncomingMessage) => {
        if (fail) throw new Error('boom');
        return (fine[name as keyof typeof fine] as (r: http.IncomingMessage) => unknown)(req);
      },
    } as WebSocketBridgeOptions);
    const refusal = await refusalOf(gw.wsUrl, AUTH_A);
    expect(refusal.status).toBe(500);
    expect(JSON.parse(refusal.body)).toEqual(relayError('internal_error').toEnvelope());
    fail = false;
    const client = await WsClient.connect(gw.wsUrl, AUTH_A);
    open.push(client);
    expect((await client.turn(TURN)).response?.status).toBe('completed');
  });

  it.each(['authenticate', 'enabled'] as const)(
    'answers 500 when %s() throws even with a logger whose every method throws, and serves a turn',
    async (name) => {
      let fail = true;
      let logged = 0;
      const broken = (): never => {
        logged += 1;
        throw new Error('the logger is down');
      };
      const gw = await gateway({
        logger: { debug: broken, info: broken, warn: broken, error: broken },
        [name]: () => {
          if (fail) throw new Error('boom');
          return true;
        },
      });
      const refusal = await refusalOf(gw.wsUrl, AUTH_A);
      expect(refusal.status).toBe(500);
      expect(JSON.parse(refusal.body)).toEqual(relayError('internal_error').toEnvelope());
      expect(logged).toBe(1);
      fail = false;
      const client = await WsClient.connect(gw.wsUrl, AUTH_A);
      open.push(client);
      expect((await client.turn(TURN)).response?.status).toBe('completed');
    },
  );

  it('426 when WebSocket is disabled (the client falls back to HTTP at once)', async () => {
    const gw = await gateway({ enabled: false });
    const refusal = await refusalOf(gw.wsUrl, AUTH_A);
    expect(refusal.status).toBe(426);
    expect(JSON.parse(refusal.body).error.code).toBe('relay_websocket_disabled');
  });

  it('426 per request (enabled as a function) and on disabled paths', async () => {
    const gw = await gateway({
      enabled: (req) => req.headers['x-tenant'] !== 'http-only',
      disabledPaths: ['/backend-api/codex/responses'],
    });
    expect((await refusalOf(gw.wsUrl, { ...AUTH_A, 'x-tenant': 'http-only' })).status).toBe(426);
    const other = gw.wsUrl.replace('/v1/responses', '/backend-api/codex/responses');
    expect((await refusalOf(other, AUTH_A)).status).toBe(426);
    const client = await WsClient.connect(gw.wsUrl, AUTH_A);
    open.push(client);
  });

  it('426 on any other path when the bridge is the only upgrade listener', async () => {
    const gw = await gateway();
    const refusal = await refusalOf(gw.wsUrl.replace('/v1/responses', '/v1/other'), AUTH_A);
    expect(refusal.status).toBe(426);
  });

  it('leaves other paths to the server’s other upgrade listeners', async () => {
    const server = http.createServer();
    const bridge = attachWebSocketBridge(server, { logger: false });
    server.on('upgrade', (req, socket) => {
      if (req.url === '/other')
        socket.end("HTTP/1.1 418 I'm a teapot\r\nContent-Length: 0\r\n\r\n");
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    open.push({ close: () => bridge.close().then(() => new Promise((r) => server.close(r))) });
    const { port } = server.address() as AddressInfo;
    expect((await refusalOf(`ws://127.0.0.1:${port}/other`, AUTH_A)).status).toBe(418);
  });

  it('refuses bad options at attach time', () => {
    const server = http.createServer();
    expect(() => attachWebSocketBridge(server, { path: 'responses' })).toThrow(TypeError);
    expect(() => attachWebSocketBridge(server, { maxPayload: 0 })).toThrow(TypeError);
    expect(() => attachWebSocketBridge(server, { origin: 'not a url' })).toThrow(TypeError);
    expect(() => attachWebSocketBridge({} as http.Server)).toThrow(TypeError);
  });
});

describe('a logger that throws', () => {
  it('closes with 1008 on too many queued turns even with a logger whose every method throws', async () => {
    let logged = 0;
    const broken = (): never => {
      logged += 1;
      throw new Error('the logger is down');
    };
    const fake = await start({ mode: 'stateless' });
    fake.setDefault({ kind: 'slow', delayMs: 50 });
    const gw = await startGateway(
      { relayMode: 'stateless', store: new MemorySessionStore(), target: fake.url },
      { logger: { debug: broken, info: broken, warn: broken, error: broken }, maxQueuedTurns: 1 },
    );
    open.push(gw);
    const client = await WsClient.connect(gw.wsUrl, AUTH_A);
    open.push(client);
    for (let i = 0; i < 3; i += 1) {
      client.send(JSON.stringify({ type: 'response.create', ...TURN }));
    }
    expect((await client.closed).code).toBe(1008);
    expect(logged).toBeGreaterThan(0);
  });
});
