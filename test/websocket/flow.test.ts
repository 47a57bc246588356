/**
 * Flow control and lifecycle: a client that stops reading pauses the turn's HTTP response and,
 * through the route's pipeline, the upstream (the relay's buffer stays bounded); a client that
 * leaves aborts its turn upstream; pings keep connections alive and end dead ones; closing the
 * bridge ends every connection.
 */
import { randomBytes } from 'node:crypto';
import type { JsonObject } from '../../lib/protocol/types';
import { MemorySessionStore } from '../../lib/store/memory-session-store';
import type { WebSocketBridgeOptions } from '../../lib/websocket/options';
import type { FakeUpstream } from '../support/fake-upstream';
import { useFakes } from '../support/fake-upstream/testing';
import { listen, type Listening } from '../support/listen';
import { AUTH_A, startGateway, type TestGateway } from './support/gateway';
import { WsClient } from './support/ws-client';

const start = useFakes();
const open: Array<{ close(): Promise<unknown> }> = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((item) => item.close()));
});

const TURN: JsonObject = { model: 'gpt-test', input: 'hello', store: false, stream: true };

async function gatewayTo(
  target: string,
  options: WebSocketBridgeOptions = {},
): Promise<TestGateway> {
  const gateway = await startGateway(
    { relayMode: 'stateless', store: new MemorySessionStore(), target },
    options,
  );
  open.push(gateway);
  return gateway;
}

async function fakeGateway(
  options: WebSocketBridgeOptions = {},
): Promise<{ fake: FakeUpstream; gateway: TestGateway }> {
  const fake = await start({ mode: 'stateless' });
  return { fake, gateway: await gatewayTo(fake.url, options) };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function until(check: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not reached in time');
    await sleep(10);
  }
}

/**
 * An upstream streaming `count` text deltas of `size` characters, honouring back-pressure (it
 * writes the next event only when the socket takes it), counting what it wrote. The text is
 * random: permessage-deflate would shrink a repeated one a hundredfold, and the kernel's socket
 * buffers would then hold the whole stream.
 */
async function floodUpstream(
  count: number,
  size: number,
): Promise<Listening & { written(): number }> {
  let written = 0;
  const pool = Array.from({ length: 64 }, () => randomBytes((size * 3) / 4).toString('base64'));
  const upstream = await listen((req, res) => {
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      const response = { id: 'resp_flood', object: 'response', status: 'in_progress', output: [] };
      const item = {
        id: 'msg_flood',
        type: 'message',
        role: 'assistant',
        status: 'in_progress',
        content: [],
      };
      const events: Array<() => JsonObject> = [
        () => ({ type: 'response.created', response }),
        () => ({ type: 'response.output_item.added', output_index: 0, item }),
      ];
      for (let i = 0; i < count; i += 1) {
        events.push(() => ({
          type: 'response.output_text.delta',
          item_id: 'msg_flood',
          output_index: 0,
          content_index: 0,
          delta: pool[i % pool.length] as string,
        }));
      }
      const done = {
        ...item,
        status: 'completed',
        content: [{ type: 'output_text', text: `${count} pieces`, annotations: [] }],
      };
      events.push(() => ({ type: 'response.output_item.done', output_index: 0, item: done }));
      events.push(() => ({
        type: 'response.completed',
        response: { ...response, status: 'completed', output: [done] },
      }));
      let index = 0;
      const pump = (): void => {
        while (index < events.length) {
          const event: JsonObject = {
            ...(events[index] as () => JsonObject)(),
            sequence_number: index,
          };
          index += 1;
          written = index;
          if (!res.write(`event: ${String(event.type)}\ndata: ${JSON.stringify(event)}\n\n`)) {
            res.once('drain', pump);
            return;
          }
        }
        res.end();
      };
      pump();
    });
  });
  open.push(upstream);
  return Object.assign(upstream, { written: () => written });
}

describe('back-pressure', () => {
  it('a client that stops reading pauses the turn and the upstream; the relay buffers a bounded amount', async () => {
    const COUNT = 3000;
    const SIZE = 8 * 1024; // 24 MiB of deltas: more than every socket buffer on the way
    const HIGH_WATER = 256 * 1024;
    const upstream = await floodUpstream(COUNT, SIZE);
    const gateway = await gatewayTo(upstream.url, { highWaterMark: HIGH_WATER, pingIntervalMs: 0 });
    const client = await WsClient.connect(gateway.wsUrl, AUTH_A);
    open.push(client);
    client.ws.pause(); // the client stops reading
    client.send(JSON.stringify({ type: 'response.create', ...TURN }));
    try {
      await until(() => gateway.bridge.stats.pauses > 0);
      // Wait for the upstream to stall: nothing written for 300 ms.
      let last = -1;
      while (upstream.written() !== last) {
        last = upstream.written();
        await sleep(300);
      }
      const stalled = { written: upstream.written(), sent: gateway.bridge.stats.events };
      expect(stalled.written).toBeLessThan(COUNT);
      await sleep(300);
      expect({ written: upstream.written(), sent: gateway.bridge.stats.events }).toEqual(stalled);
      // What the bridge itself holds for the client: the high-water mark plus one chunk at most.
      expect(gateway.bridge.stats.maxBufferedAmount).toBeLessThan(HIGH_WATER + 128 * 1024);
    } finally {
      client.ws.resume();
    }
    const turn = await client.read(60_000);
    expect(turn.terminal?.type).toBe('response.completed');
    const deltas = turn.frames.filter((frame) => frame.type === 'response.output_text.delta');
    expect(deltas).toHaveLength(COUNT);
    expect(deltas.every((frame) => (frame.delta as string).length === SIZE)).toBe(true);
    const sequence = turn.frames.map((frame) => frame.sequence_number as number);
    expect(sequence).toEqual([...sequence].sort((a, b) => a - b));
    expect(gateway.bridge.stats.pauses).toBeGreaterThanOrEqual(1);
  }, 90_000);
});

describe('lifecycle', () => {
  it('a client that leaves mid-turn aborts the turn upstream', async () => {
    const { fake, gateway } = await fakeGateway();
    fake.script({ kind: 'stall', afterEvents: 3 });
    const client = await WsClient.connect(gateway.wsUrl, AUTH_A);
    client.send(JSON.stringify({ type: 'response.create', ...TURN }));
    await client.next();
    await fake.waitForRequests(1);
    client.terminate();
    const request = fake.requests[0];
    await request?.closed;
    expect(request?.socketClosedEarly).toBe(true);
    await until(() => gateway.bridge.stats.aborted === 1);
    expect(gateway.bridge.stats.connectionsOpen).toBe(0);
  });

  it('pings every interval; a client that answers stays, one that does not is terminated', async () => {
    const { gateway } = await fakeGateway({ pingIntervalMs: 50 });
    const lively = await WsClient.connect(gateway.wsUrl, AUTH_A);
    open.push(lively);
    let pings = 0;
    lively.ws.on('ping', () => {
      pings += 1;
    });
    const silent = await WsClient.connect(gateway.wsUrl, AUTH_A, { autoPong: false });
    open.push(silent);
    const closed = await silent.closed;
    expect(closed.code).toBe(1006);
    await sleep(200);
    expect(pings).toBeGreaterThanOrEqual(3);
    expect(lively.isOpen).toBe(true);
    expect(gateway.bridge.stats.pingTimeouts).toBe(1);
    const turn = await lively.turn(TURN);
    expect(turn.response?.status).toBe('completed');
  });

  it('bridge.close() ends every connection with 1001 and aborts its turn', async () => {
    const { fake, gateway } = await fakeGateway();
    fake.script({ kind: 'stall', afterEvents: 2 });
    const client = await WsClient.connect(gateway.wsUrl, AUTH_A);
    client.send(JSON.stringify({ type: 'response.create', ...TURN }));
    await client.next();
    await gateway.bridge.close();
    expect((await client.closed).code).toBe(1001);
    await fake.requests[0]?.closed;
    expect(fake.requests[0]?.socketClosedEarly).toBe(true);
    expect(gateway.bridge.connections).toBe(0);
  });

  it('the connection stays open across turns and after failed ones', async () => {
    const { fake, gateway } = await fakeGateway();
    const client = await WsClient.connect(gateway.wsUrl, AUTH_A);
    open.push(client);
    fake.script(
      { kind: 'http_error', status: 500 },
      { kind: 'response_failed', code: 'server_error', message: 'boom' },
    );
    expect((await client.turn(TURN)).error?.status).toBe(500);
    expect((await client.turn(TURN)).terminal?.type).toBe('response.failed');
    for (let i = 0; i < 5; i += 1) {
      expect((await client.turn(TURN)).response?.status).toBe('completed');
    }
    expect(gateway.bridge.stats).toMatchObject({ connectionsOpened: 1, turns: 7, completed: 5 });
  });
});
