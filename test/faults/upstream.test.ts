/**
 * Upstream faults through the full relay (`createRelay`, memory store): resets mid-stream, stalls,
 * garbage instead of HTTP or SSE, a connection closed before any header, a 100 MB body, and a
 * client that leaves mid-stream. Real sockets only: the faithful fake upstream, a raw `net`
 * server, and the fault-injecting TCP proxy between them. Every case asserts what the client
 * observes; jest's timeout is the hang detector.
 */
import http from 'node:http';
import net from 'node:net';
import v8 from 'node:v8';
import vm from 'node:vm';
import { useFakes } from '../support/fake-upstream/testing';
import { openStream, postStream, rawRequest } from '../support/fake-upstream/client';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy';
import {
  AUTH_A,
  FAST_RETRY,
  MODEL,
  expectCleanFailure,
  expectEnvelope,
  types,
  until,
  useRelays,
} from './support';

const start = useFakes();
const relayFor = useRelays();
const closers: Array<() => Promise<void>> = [];
afterEach(async () => {
  await Promise.all(closers.splice(0).map((close) => close()));
});

async function proxyTo(port: number): Promise<TcpProxy> {
  const proxy = await startTcpProxy({ targetPort: port });
  closers.push(() => proxy.close());
  return proxy;
}

/** A raw TCP "upstream" that answers every connection with `answer(socket)` once it saw a request. */
async function rawUpstream(answer: (socket: net.Socket) => void): Promise<{ url: string }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    let seen = '';
    let answered = false;
    socket.on('data', (chunk: Buffer) => {
      seen += chunk.toString('latin1');
      if (!answered && seen.includes('\r\n\r\n')) {
        answered = true;
        answer(socket);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  closers.push(
    () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  );
  return { url: `http://127.0.0.1:${port}` };
}

/** `maxJsonBodyBytes` default of lib/middleware/response-pipeline.ts. */
const JSON_HOLD_BYTES = 32 * 1024 * 1024;
const STREAM_TURN = { model: MODEL, input: 'hello', stream: true };
const LONG_TEXT = 'The quick brown fox jumps over the lazy dog. '.repeat(40);

describe('upstream resets and stalls', () => {
  it('a reset mid-stream (after output reached the client) ends with one response.failed, no retry', async () => {
    const fake = await start({ mode: 'stateful' });
    fake.script({
      kind: 'cut',
      afterEvents: 6,
      mode: 'reset',
      then: { kind: 'text', text: LONG_TEXT, chunks: 8 },
    });
    const { url } = await relayFor({ upstream: fake.url, retry: FAST_RETRY });
    const answer = await postStream(`${url}/v1/responses`, { body: STREAM_TURN, headers: AUTH_A });
    expect(expectCleanFailure(answer)).toBe('failed');
    expect(types(answer)).toContain('response.output_text.delta');
    expect(fake.requests).toHaveLength(1);
    expect(fake.requests[0]?.outcome).toBe('stream:cut:reset');
  });

  it('a TCP reset after N bytes of the upstream answer (proxy cut) ends cleanly', async () => {
    const fake = await start({ mode: 'stateful' });
    fake.setDefault({ kind: 'text', text: LONG_TEXT, chunks: 40 });
    const proxy = await proxyTo(Number(new URL(fake.url).port));
    await proxy.setMode('cut', { cutAfterBytes: 4000 });
    const { url } = await relayFor({ upstream: proxy.url, retry: false });
    const answer = await postStream(`${url}/v1/responses`, { body: STREAM_TURN, headers: AUTH_A });
    expect(expectCleanFailure(answer)).toBe('failed');
    expect(proxy.connections).toBe(1);
  });

  it('an upstream that stalls mid-stream is ended by idleTimeoutMs with response.failed and its socket closed', async () => {
    const fake = await start({ mode: 'stateful' });
    fake.script({ kind: 'stall', afterEvents: 5, then: { kind: 'text', text: LONG_TEXT } });
    const { url } = await relayFor({
      upstream: fake.url,
      retry: false,
      sseCompletion: { idleTimeoutMs: 300 },
    });
    const answer = await postStream(`${url}/v1/responses`, { body: STREAM_TURN, headers: AUTH_A });
    expect(expectCleanFailure(answer)).toBe('failed');
    const failed = answer.events[answer.events.length - 1]?.json as {
      response: { status: string };
    };
    expect(failed.response.status).toBe('failed');
    // the relay let go of the stalled upstream exchange
    await fake.requests[0]?.closed;
    expect(fake.requests[0]?.socketClosedEarly).toBe(true);
  });

  it('1-byte writes from the upstream (proxy trickle) still give a complete stream', async () => {
    const fake = await start({ mode: 'stateful' });
    fake.setDefault({ kind: 'text', text: 'small answer', chunks: 3 });
    const proxy = await proxyTo(Number(new URL(fake.url).port));
    await proxy.setMode('trickle');
    const { url } = await relayFor({ upstream: proxy.url, retry: false });
    const answer = await postStream(`${url}/v1/responses`, { body: STREAM_TURN, headers: AUTH_A });
    expect(answer.status).toBe(200);
    expect(types(answer).at(-1)).toBe('response.completed');
    expect(answer.ending).toBe('end');
  });

  it('a resetting, then refusing upstream is a 5xx envelope after bounded attempts', async () => {
    const fake = await start({ mode: 'stateful' });
    const proxy = await proxyTo(Number(new URL(fake.url).port));
    await proxy.setMode('reset');
    const { url } = await relayFor({
      upstream: proxy.url,
      retry: { ...FAST_RETRY, maxAttempts: 3 },
    });
    const reset = await postStream(`${url}/v1/responses`, { body: STREAM_TURN, headers: AUTH_A });
    expect(reset.status).toBeGreaterThanOrEqual(500);
    expect(expectCleanFailure(reset)).toBe('envelope');
    expect(proxy.connections).toBe(3);

    await proxy.setMode('refuse');
    const refused = await postStream(`${url}/v1/responses`, { body: STREAM_TURN, headers: AUTH_A });
    expect(refused.status).toBeGreaterThanOrEqual(500);
    expect(expectCleanFailure(refused)).toBe('envelope');
    expect(fake.requests).toHaveLength(0);
  });
});

describe('upstream garbage', () => {
  it.each([
    ['an invalid status line', 'GARBAGE / NOT-HTTP\r\n\r\n'],
    ['binary noise', Buffer.from([0, 255, 1, 254, 13, 10, 13, 10, 7, 7, 7]).toString('latin1')],
    ['a bad status code', 'HTTP/1.1 99999 Nope\r\ncontent-length: 0\r\n\r\n'],
  ])('%s instead of a response is a JSON error envelope', async (_name, bytes) => {
    const upstream = await rawUpstream((socket) => socket.end(Buffer.from(bytes, 'latin1')));
    const { url } = await relayFor({
      upstream: upstream.url,
      retry: { ...FAST_RETRY, maxAttempts: 2 },
    });
    const answer = await postStream(`${url}/v1/responses`, { body: STREAM_TURN, headers: AUTH_A });
    expect(answer.status).toBeGreaterThanOrEqual(500);
    expect(expectCleanFailure(answer)).toBe('envelope');
  });

  it('closing without any header is a JSON error envelope (connection error, retried)', async () => {
    let connections = 0;
    const upstream = await rawUpstream((socket) => {
      connections += 1;
      socket.end();
    });
    const { url } = await relayFor({
      upstream: upstream.url,
      retry: { ...FAST_RETRY, maxAttempts: 2 },
    });
    const answer = await postStream(`${url}/v1/responses`, { body: STREAM_TURN, headers: AUTH_A });
    expect(answer.status).toBe(502);
    expect(expectCleanFailure(answer)).toBe('envelope');
    expect(connections).toBe(2);
  });

  it('a 200 event-stream of garbage bytes (no SSE events) ends cleanly', async () => {
    const upstream = await rawUpstream((socket) => {
      socket.end(
        'HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n' +
          '\u0000\u0001garbage without fields\n{"type":"response.completed"}\n\n\xff\xfe::::\n\n',
      );
    });
    const { url } = await relayFor({ upstream: upstream.url, retry: false });
    const answer = await postStream(`${url}/v1/responses`, { body: STREAM_TURN, headers: AUTH_A });
    expectCleanFailure(answer);
  });

  it('a 200 event-stream whose data is not JSON ends cleanly', async () => {
    const upstream = await rawUpstream((socket) => {
      socket.end(
        'HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n' +
          'event: response.created\ndata: {not json\n\ndata: [DONE]\n\n',
      );
    });
    const { url } = await relayFor({ upstream: upstream.url, retry: false });
    const answer = await postStream(`${url}/v1/responses`, { body: STREAM_TURN, headers: AUTH_A });
    expectCleanFailure(answer);
  });
});

describe('a very large upstream body', () => {
  it('a 100 MB non-stream 2xx JSON body streams through; the RSS grows < 64 MB over the 32 MiB JSON hold', async () => {
    const TOTAL = 100 * 1024 * 1024;
    const chunk = Buffer.alloc(64 * 1024, 'a');
    const server = http.createServer((req, res) => {
      req.resume();
      req.once('end', () => {
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': TOTAL });
        const head = Buffer.from('{"id":"resp_big","object":"response","pad":"');
        const tail = Buffer.from('"}');
        let sent = 0;
        const pump = (): void => {
          while (sent < TOTAL) {
            let piece: Buffer;
            if (sent === 0) piece = head;
            else if (TOTAL - sent === tail.length) piece = tail;
            else piece = chunk.subarray(0, Math.min(chunk.length, TOTAL - sent - tail.length));
            sent += piece.length;
            if (!res.write(piece)) {
              res.once('drain', pump);
              return;
            }
          }
          res.end();
        };
        pump();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    closers.push(
      () =>
        new Promise<void>((resolve) => {
          server.closeAllConnections();
          server.close(() => resolve());
        }),
    );
    const { port } = server.address() as net.AddressInfo;
    const { url } = await relayFor({ upstream: `http://127.0.0.1:${port}`, retry: false });

    // A real collector call (not exposed by default) so the RSS measures live memory, not garbage
    // the collector has not reached yet.
    v8.setFlagsFromString('--expose-gc');
    const gc = vm.runInNewContext('gc') as () => void;
    gc();
    const before = process.memoryUsage().rss;
    let peak = before;
    let sinceGc = 0;
    const received = await new Promise<number>((resolve, reject) => {
      const payload = JSON.stringify({ model: MODEL, input: 'hello' });
      const request = http.request(`${url}/v1/responses`, {
        method: 'POST',
        agent: false,
        headers: { 'content-type': 'application/json', ...AUTH_A },
      });
      request.once('error', reject);
      request.once('response', (response) => {
        expect(response.statusCode).toBe(200);
        let bytes = 0;
        response.on('data', (data: Buffer) => {
          bytes += data.length;
          sinceGc += data.length;
          if (sinceGc < 8 * 1024 * 1024) return;
          sinceGc = 0;
          gc();
          const rss = process.memoryUsage().rss;
          if (rss > peak) peak = rss;
        });
        response.once('end', () => resolve(bytes));
        response.once('error', reject);
      });
      request.end(payload);
    });
    expect(received).toBe(TOTAL);
    // The response pipeline holds a non-stream JSON body up to its maxJsonBodyBytes (32 MiB) to
    // run its hooks, then streams the rest through: 64 MB of slack over that window. A relay that
    // buffered the whole body would need at least 100 MB more.
    expect(peak - before).toBeLessThan(JSON_HOLD_BYTES + 64 * 1024 * 1024);
  }, 30000);
});

describe('a client that leaves mid-stream', () => {
  it('closes the upstream request, and the relay ends the exchange', async () => {
    const fake = await start({ mode: 'stateful' });
    fake.script({ kind: 'slow', delayMs: 30, then: { kind: 'text', text: LONG_TEXT, chunks: 50 } });
    const { relay, url } = await relayFor({ upstream: fake.url, retry: false });
    const ended = new Promise((resolve) => relay.once('exchange', resolve));
    const { request, done } = openStream(`${url}/v1/responses`, {
      body: STREAM_TURN,
      headers: AUTH_A,
      onEvent: (event, req) => {
        if (event.json?.type === 'response.output_text.delta') req.destroy();
      },
    });
    const answer = await done;
    expect(request.destroyed).toBe(true);
    expect(answer.ending).not.toBe('end');
    await fake.waitForRequests(1);
    await fake.requests[0]?.closed;
    expect(fake.requests[0]?.socketClosedEarly).toBe(true);
    expect(fake.requests[0]?.outcome).toBe('client_closed');
    await ended;
    await until(() => fake.connections === 0);
  });

  it('a client leaving while the upstream is a blackhole frees the upstream connection', async () => {
    const fake = await start({ mode: 'stateful' });
    const proxy = await proxyTo(Number(new URL(fake.url).port));
    await proxy.setMode('blackhole');
    const { url } = await relayFor({ upstream: proxy.url, retry: false });
    const { request, done } = openStream(`${url}/v1/responses`, {
      body: STREAM_TURN,
      headers: AUTH_A,
    });
    await until(() => proxy.connections >= 1);
    request.destroy();
    await done.catch(() => undefined);
    await until(() => proxy.open === 0);
    expect(proxy.connections).toBe(1);
  });
});

describe('the envelope on a plain non-stream request to garbage', () => {
  it('is JSON', async () => {
    const upstream = await rawUpstream((socket) => socket.end('NOT HTTP AT ALL\r\n\r\n'));
    const { url } = await relayFor({ upstream: upstream.url, retry: false });
    const answer = await rawRequest(`${url}/v1/responses`, {
      body: { model: MODEL, input: 'hi' },
      headers: AUTH_A,
    });
    expect(answer.status).toBe(502);
    expectEnvelope(answer.json);
  });
});
