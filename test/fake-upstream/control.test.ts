/**
 * What tests steer and observe: the behaviour queue, the request log, lockstep gates, stalls,
 * client aborts, open connections and close().
 */
import fs from 'node:fs';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import type { JsonObject } from '../../lib/protocol/types';
import { openStream, rawRequest } from '../support/fake-upstream/client';
import {
  eventsOf,
  lastResponse,
  post,
  stream,
  typesOf,
  useFakes,
} from '../support/fake-upstream/testing';

const start = useFakes();

describe('the behaviour queue', () => {
  it('each POST takes the next behaviour; an empty queue means the default (auto, or setDefault)', async () => {
    const fake = await start();
    fake.script({ kind: 'text', text: 'one' }, { kind: 'http_error', status: 503 });
    expect(fake.pending).toBe(2);
    const texts = async () =>
      eventsOf(await stream(fake, { model: 'm', input: 'hi' })).find(
        (e) => e.type === 'response.output_text.done',
      )?.text;
    expect(await texts()).toBe('one');
    expect((await post(fake, { model: 'm', input: 'hi' })).status).toBe(503);
    expect(await texts()).toBe('Hello from the fake upstream.');
    fake.setDefault({ kind: 'text', text: 'default' });
    expect(await texts()).toBe('default');
    expect(fake.requests.map((r) => r.behaviour?.kind)).toEqual([
      'text',
      'http_error',
      'auto',
      'text',
    ]);
  });

  it('a request the rules reject does not consume a generating behaviour', async () => {
    const fake = await start();
    fake.script({ kind: 'text', text: 'kept' });
    expect((await post(fake, { model: 'm', previous_response_id: 'resp_x' })).status).toBe(400);
    expect(fake.pending).toBe(1);
  });

  it('a scripted HTTP error answers before validation (like a rate limiter in front)', async () => {
    const fake = await start();
    fake.script({ kind: 'http_error', status: 429, headers: { 'retry-after': '0' } });
    expect((await post(fake, { model: 'm', previous_response_id: 'resp_x' })).status).toBe(429);
    expect(fake.pending).toBe(0);
  });

  it('refuses to queue a malformed behaviour', async () => {
    const fake = await start();
    expect(() => fake.script({ kind: 'text' } as never)).toThrow('behaviour.text must be a string');
  });
});

describe('the request log', () => {
  it('records every request with headers, raw and parsed body, time, status and outcome', async () => {
    const fake = await start({ requireAuth: 'sk-1' });
    const before = Date.now();
    await post(
      fake,
      { model: 'm', input: 'hi' },
      { authorization: 'Bearer sk-1', 'x-custom': 'v' },
    );
    await rawRequest(`${fake.url}/v1/responses/resp_x`, { method: 'GET' });
    await fake.waitForRequests(2);
    const [first, second] = fake.requests;
    expect(first).toMatchObject({
      index: 0,
      method: 'POST',
      path: '/v1/responses',
      body: { model: 'm', input: 'hi' },
      attempt: 1,
      status: 200,
      outcome: 'http:200:completed',
      socketClosedEarly: false,
      responseId: expect.stringMatching(/^resp_/),
    });
    expect(first?.headers['x-custom']).toBe('v');
    expect(first?.rawBody.toString()).toBe('{"model":"m","input":"hi"}');
    expect(first?.at).toBeGreaterThanOrEqual(before);
    expect(second).toMatchObject({ method: 'GET', status: 401 });
  });

  it('counts attempts of byte-identical requests (retries)', async () => {
    const fake = await start();
    fake.script({ kind: 'http_error', status: 500 }, { kind: 'http_error', status: 500 });
    const body = { model: 'm', input: 'hi' };
    await post(fake, body);
    await post(fake, body);
    await post(fake, { ...body, input: 'other' });
    await post(fake, body);
    expect(fake.requests.map((r) => r.attempt)).toEqual([1, 2, 1, 3]);
  });

  it('reads gzip-encoded bodies (rawBody keeps the bytes sent)', async () => {
    const fake = await start();
    const raw = gzipSync(Buffer.from(JSON.stringify({ model: 'm', input: 'hi' })));
    const answer = await rawRequest(`${fake.url}/v1/responses`, {
      body: raw,
      headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' },
    });
    expect(answer.status).toBe(200);
    expect(fake.requests[0]?.body).toEqual({ model: 'm', input: 'hi' });
    expect(fake.requests[0]?.rawBody.equals(raw)).toBe(true);
  });

  it('waitForRequests resolves once enough requests arrived', async () => {
    const fake = await start();
    const waiting = fake.waitForRequests(2);
    let resolved = false;
    void waiting.then(() => (resolved = true));
    await post(fake, { model: 'm', input: 'a' });
    await new Promise((resolve) => setImmediate(resolve));
    expect(resolved).toBe(false);
    await post(fake, { model: 'm', input: 'b' });
    await waiting;
  });
});

describe('lockstep gates', () => {
  it('upstream.gate() binds the next stream: event N+1 is written only after release()', async () => {
    const fake = await start();
    fake.script({ kind: 'text', text: 'abcdef', chunks: 3 });
    const gate = fake.gate();
    const sentWhenSeen: number[] = [];
    const answer = await stream(
      fake,
      { model: 'm', input: 'hi' },
      {
        onEvent() {
          sentWhenSeen.push(gate.sent);
          gate.next();
        },
      },
    );
    expect(typesOf(answer)).toHaveLength(11);
    // When the client saw event N, the fake had written exactly N+1 events.
    expect(sentWhenSeen).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
    expect(gate.bound).toBe(true);
  });

  it('holds the stream until the test releases it, whatever the timing', async () => {
    const fake = await start();
    const gate = fake.gate(undefined, { initial: 0 });
    const exchange = openStream(`${fake.url}/v1/responses`, {
      body: { model: 'm', input: 'hi', stream: true },
    });
    await gate.waitForBound();
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(gate.sent).toBe(0);
    gate.release(2);
    await gate.waitForSent(2);
    expect(gate.sent).toBe(2);
    gate.open();
    const answer = await exchange.done;
    expect(typesOf(answer).pop()).toBe('response.completed');
  });

  it('a lockstep behaviour binds the named gate, created before or after the request', async () => {
    const fake = await start();
    fake.script({ kind: 'lockstep', gate: 'g1', then: { kind: 'text', text: 'x', chunks: 1 } });
    const exchange = openStream(`${fake.url}/v1/responses`, {
      body: { model: 'm', input: 'hi', stream: true },
    });
    const gate = fake.gate('g1');
    await gate.waitForBound();
    await gate.waitForSent(1);
    expect(gate.sent).toBe(1);
    gate.open();
    expect((await exchange.done).events).toHaveLength(9);
  });
});

describe('stalls, aborts and connections', () => {
  it('stall sends N events then keeps the socket open until the client aborts', async () => {
    const fake = await start();
    fake.script({ kind: 'stall', afterEvents: 3 });
    let seen = 0;
    let third!: () => void;
    const gotThree = new Promise<void>((resolve) => (third = resolve));
    const exchange = openStream(`${fake.url}/v1/responses`, {
      body: { model: 'm', input: 'hi', stream: true },
      onEvent() {
        seen += 1;
        if (seen === 3) third();
      },
    });
    await gotThree;
    await fake.waitForRequests(1);
    const record = fake.requests[0];
    expect(record?.outcome).toBe('stream:stalled');
    expect(fake.connections).toBe(1);
    exchange.request.destroy();
    await record?.closed;
    expect(record?.socketClosedEarly).toBe(true);
    await exchange.done.catch(() => undefined);
    expect(seen).toBe(3);
  });

  it('notices a client that aborts mid-stream (slow stream)', async () => {
    const fake = await start();
    fake.script({
      kind: 'slow',
      delayMs: 5,
      then: { kind: 'text', text: 'a long answer', chunks: 10 },
    });
    const exchange = openStream(`${fake.url}/v1/responses`, {
      body: { model: 'm', input: 'hi', stream: true },
      onEvent(event, request) {
        if (event.json?.type === 'response.output_text.delta') request.destroy();
      },
    });
    await exchange.done.catch(() => undefined);
    await fake.waitForRequests(1);
    await fake.requests[0]?.closed;
    expect(fake.requests[0]).toMatchObject({ socketClosedEarly: true, outcome: 'client_closed' });
  });

  it('connections counts open sockets and drops to 0 when clients leave', async () => {
    const fake = await start();
    fake.script({ kind: 'stall', afterEvents: 1 }, { kind: 'stall', afterEvents: 1 });
    let started = 0;
    let both!: () => void;
    const bothStarted = new Promise<void>((resolve) => (both = resolve));
    const open = (input: string) =>
      openStream(`${fake.url}/v1/responses`, {
        body: { model: 'm', input, stream: true },
        onEvent() {
          started += 1;
          if (started === 2) both();
        },
      });
    const a = open('a');
    const b = open('b');
    await bothStarted;
    expect(fake.connections).toBe(2);
    a.request.destroy();
    b.request.destroy();
    await Promise.all(fake.requests.map((r) => r.closed));
    await new Promise((resolve) => setImmediate(resolve));
    expect(fake.connections).toBe(0);
  });

  it('close() never hangs: stalled streams, unreleased gates and held sockets are cut', async () => {
    const fake = await start();
    fake.script(
      { kind: 'stall', afterEvents: 1 },
      { kind: 'lockstep', gate: 'never' },
      { kind: 'hold_open' },
    );
    const exchanges = ['a', 'b', 'c'].map((input) =>
      openStream(`${fake.url}/v1/responses`, { body: { model: 'm', input, stream: true } }),
    );
    await fake.waitForRequests(3);
    await fake.close();
    await Promise.all(exchanges.map((e) => e.done.catch(() => undefined)));
    await Promise.all(fake.requests.map((r) => r.closed));
    expect(fake.requests.every((r) => !r.socketClosedEarly)).toBe(true);
    await fake.close(); // idempotent
  });
});

describe('independence from the relay', () => {
  it('imports nothing from lib/ but the shared types', () => {
    const dir = path.resolve(__dirname, '../support/fake-upstream');
    for (const file of fs.readdirSync(dir).filter((name) => name.endsWith('.ts'))) {
      const source = fs.readFileSync(path.join(dir, file), 'utf8');
      const imports = [...source.matchAll(/from '([^']+)'/g)].map((m) => m[1] as string);
      for (const target of imports.filter((name) => name.includes('lib/'))) {
        expect(`${file}: ${target}`).toBe(`${file}: ../../../lib/protocol/types`);
      }
    }
  });
});

describe('stateless answers', () => {
  it('stream like the Codex backend; sparse when asked', async () => {
    const fake = await start({ mode: 'stateless', sparseCompletion: true });
    const answer = await stream(fake, { model: 'gpt-5.5', input: 'hi', store: false });
    expect(typesOf(answer)[0]).toBe('response.created');
    expect(lastResponse(answer)).toMatchObject({ status: 'completed', output: [], store: false });
    expect(
      eventsOf(answer).filter((e: JsonObject) => e.type === 'response.output_item.done'),
    ).toHaveLength(1);
  });
});
