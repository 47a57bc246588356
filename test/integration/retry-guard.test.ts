/**
 * The retry guard against the fake upstream, over real sockets: what is retried, how often, with
 * which delays, what the client sees, and that a client who leaves stops everything.
 */
import express from 'express';
import net from 'node:net';
import OpenAI from 'openai';
import { getExchange } from '../../lib/middleware/exchange';
import { relayProxy } from '../../lib/middleware/relay-proxy';
import {
  retryGuard,
  type RetryEvent,
  type RetryGuardOptions,
} from '../../lib/middleware/retry-guard';
import { sseCompletion } from '../../lib/middleware/sse-completion';
import { RetryBudget } from '../../lib/protocol/retry-budget';
import { startFakeUpstream, type FakeUpstream } from '../support/fake-upstream';
import { listen, type Listening } from '../support/listen';
import { postSse } from '../support/sse-client';
import { freePort } from '../support/redis-server';

const AUTH = { authorization: 'Bearer sk-test-retry' };
const body = { model: 'gpt-test', input: 'hi', stream: true };

interface Harness {
  upstream: FakeUpstream;
  gateway: Listening;
  retries: RetryEvent[];
}

const open: Array<{ close(): Promise<void> }> = [];
afterEach(async () => {
  while (open.length > 0) await open.pop()?.close();
});

async function harness(options: RetryGuardOptions = {}, target?: string): Promise<Harness> {
  const upstream = await startFakeUpstream({ mode: 'stateful' });
  open.push(upstream);
  const retries: RetryEvent[] = [];
  const app = express();
  app.post(
    '/v1/responses',
    sseCompletion(),
    retryGuard({
      baseDelayMs: 20,
      maxDelayMs: 50,
      budget: false,
      ...options,
      onRetry: (event) => {
        retries.push(event);
        options.onRetry?.(event);
      },
    }),
    relayProxy({ target: target ?? upstream.url }),
  );
  const gateway = await listen(app);
  open.push(gateway);
  return { upstream, gateway, retries };
}

async function post(gateway: Listening, payload: unknown = body): Promise<Response> {
  return fetch(`${gateway.url}/v1/responses`, {
    method: 'POST',
    headers: { ...AUTH, 'content-type': 'application/json' },
    body: JSON.stringify(payload),
  });
}

const client = (gateway: Listening): OpenAI =>
  new OpenAI({ apiKey: 'sk-test-retry', baseURL: `${gateway.url}/v1`, maxRetries: 0 });

describe('retryGuard', () => {
  describe('when the upstream answers 429 with Retry-After, then succeeds', () => {
    it('waits the hinted time and the client sees one success', async () => {
      const { upstream, gateway, retries } = await harness();
      upstream.script(
        { kind: 'http_error', status: 429, headers: { 'retry-after': '1' } },
        { kind: 'text', text: 'after the wait' },
      );
      const final = await client(gateway)
        .responses.stream({ model: 'gpt-test', input: 'hi' })
        .finalResponse();
      expect(final.output_text).toBe('after the wait');
      expect(upstream.requests).toHaveLength(2);
      expect(retries).toEqual([
        expect.objectContaining({ reason: 'rate_limited', attempt: 1, delayMs: 1000 }),
      ]);
    });
  });

  describe('when the upstream answers 503 twice, then succeeds', () => {
    it('retries twice with backoff and reports three attempts', async () => {
      const { upstream, gateway, retries } = await harness();
      upstream.script(
        { kind: 'http_error', status: 503 },
        { kind: 'http_error', status: 503 },
        { kind: 'text', text: 'third time' },
      );
      const response = await post(gateway, { model: 'gpt-test', input: 'hi' });
      expect(response.status).toBe(200);
      expect(response.headers.get('x-relay-attempts')).toBe('3');
      expect(((await response.json()) as { status: string }).status).toBe('completed');
      expect(upstream.requests.map((r) => r.status)).toEqual([503, 503, 200]);
      expect(retries.map((r) => r.reason)).toEqual(['server_error', 'server_error']);
      for (const retry of retries) expect(retry.delayMs).toBeLessThanOrEqual(50);
    });

    it('lets the official client with maxRetries: 0 see the success', async () => {
      const { upstream, gateway } = await harness();
      upstream.script(
        { kind: 'http_error', status: 503 },
        { kind: 'http_error', status: 502 },
        { kind: 'text', text: 'ok' },
      );
      const response = await client(gateway).responses.create({ model: 'gpt-test', input: 'hi' });
      expect(response.output_text).toBe('ok');
    });
  });

  describe('when Retry-After is beyond the cap', () => {
    it('makes one attempt and hands the 429 and its headers to the client', async () => {
      const { upstream, gateway, retries } = await harness({ maxRetryAfterMs: 60_000 });
      upstream.script({ kind: 'http_error', status: 429, headers: { 'retry-after': '3600' } });
      const response = await post(gateway);
      expect(response.status).toBe(429);
      expect(response.headers.get('retry-after')).toBe('3600');
      expect(response.headers.get('x-relay-attempts')).toBe('1');
      const envelope = (await response.json()) as { error: Record<string, unknown> };
      expect(Object.keys(envelope.error).sort()).toEqual(['code', 'message', 'param', 'type']);
      expect(upstream.requests).toHaveLength(1);
      expect(retries).toEqual([]);
    });
  });

  describe.each([400, 401, 403, 404, 422])('when the upstream answers %i', (status) => {
    it('makes exactly one attempt', async () => {
      const { upstream, gateway, retries } = await harness();
      upstream.script({ kind: 'http_error', status });
      const response = await post(gateway);
      expect(response.status).toBe(status);
      expect(upstream.requests).toHaveLength(1);
      expect(retries).toEqual([]);
    });
  });

  describe('when the upstream says x-should-retry: false', () => {
    it('does not retry a 503', async () => {
      const { upstream, gateway } = await harness();
      upstream.script({ kind: 'http_error', status: 503, headers: { 'x-should-retry': 'false' } });
      expect((await post(gateway)).status).toBe(503);
      expect(upstream.requests).toHaveLength(1);
    });
  });

  describe('when the first connection is refused', () => {
    it('retries once the upstream listens and the client sees a success', async () => {
      const port = await freePort();
      let forwarder: net.Server | undefined;
      const upstream = await startFakeUpstream({ mode: 'stateful' });
      open.push(upstream);
      const upstreamPort = Number(new URL(upstream.url).port);
      const startForwarder = (): void => {
        forwarder = net.createServer((socket) => {
          const target = net.connect(upstreamPort, '127.0.0.1');
          socket.pipe(target).pipe(socket);
          socket.on('error', () => target.destroy());
          target.on('error', () => socket.destroy());
        });
        forwarder.listen(port, '127.0.0.1');
        open.push({
          close: () => new Promise<void>((resolve) => forwarder?.close(() => resolve())),
        });
      };
      const retries: RetryEvent[] = [];
      const app = express();
      app.post(
        '/v1/responses',
        retryGuard({
          baseDelayMs: 300,
          maxDelayMs: 300,
          random: () => 0.99,
          budget: false,
          onRetry: (event) => {
            retries.push(event);
            if (!forwarder) startForwarder();
          },
        }),
        relayProxy({ target: `http://127.0.0.1:${port}` }),
      );
      const gateway = await listen(app);
      open.push(gateway);
      upstream.script({ kind: 'text', text: 'reached' });
      const response = await client(gateway).responses.create({ model: 'gpt-test', input: 'hi' });
      expect(response.output_text).toBe('reached');
      expect(retries.map((r) => r.reason)).toEqual(['connection']);
      expect(upstream.requests).toHaveLength(1);
    });
  });

  describe('when the onRetry observer throws', () => {
    const throwing = (): RetryGuardOptions => ({
      onRetry: () => {
        throw new Error('observer bug');
      },
    });

    it('still retries an error status', async () => {
      const { upstream, gateway, retries } = await harness(throwing());
      upstream.script({ kind: 'http_error', status: 503 }, { kind: 'text', text: 'after' });
      const response = await post(gateway, { model: 'gpt-test', input: 'hi' });
      expect(response.status).toBe(200);
      expect(response.headers.get('x-relay-attempts')).toBe('2');
      expect(retries.map((r) => r.reason)).toEqual(['server_error']);
    });

    it('still retries a refused connection, and the gateway stays up', async () => {
      const port = await freePort();
      const { upstream, gateway, retries } = await harness(
        {
          onRetry: () => {
            throw new Error('observer bug');
          },
          maxAttempts: 2,
        },
        `http://127.0.0.1:${port}`,
      );
      const response = await post(gateway, { model: 'gpt-test', input: 'hi' });
      // Nothing listens on the port: both attempts are refused; the client gets the envelope.
      expect(response.status).toBe(502);
      expect(((await response.json()) as { error: { code: string } }).error.code).toBe(
        'relay_upstream_unreachable',
      );
      expect(retries.map((r) => r.reason)).toEqual(['connection']);
      expect(upstream.requests).toHaveLength(0);
    });

    it('still retries a stream cut before any output', async () => {
      const { upstream, gateway, retries } = await harness(throwing());
      upstream.script(
        { kind: 'cut', afterEvents: 2, mode: 'reset', then: { kind: 'text', text: 'lost' } },
        { kind: 'text', text: 'whole' },
      );
      const exchange = await postSse(`${gateway.url}/v1/responses`, body, { headers: AUTH });
      const events = await exchange.done;
      expect(events.at(-1)?.json?.type).toBe('response.completed');
      expect(exchange.headers['x-relay-attempts']).toBe('2');
      expect(retries.map((r) => r.reason)).toEqual(['stream_cut']);
    });
  });

  describe('when a custom attempt policy throws', () => {
    const faultyPolicy: express.RequestHandler = (req, res, next) => {
      getExchange(req, res).attemptPolicy = {
        holdPrelude: false,
        preludeTimeoutMs: 0,
        onStatus: () => Promise.reject(new Error('policy bug')),
        onConnectionError: () => {
          throw new Error('policy bug');
        },
        onStreamFailure: () => undefined,
        finalHeaders: () => ({}),
      };
      next();
    };

    async function gatewayTo(target: string): Promise<Listening> {
      const app = express();
      app.post('/v1/responses', faultyPolicy, relayProxy({ target }));
      const gateway = await listen(app);
      open.push(gateway);
      return gateway;
    }

    it('answers an error status with an envelope instead of hanging', async () => {
      const upstream = await startFakeUpstream({ mode: 'stateful' });
      open.push(upstream);
      upstream.script({ kind: 'http_error', status: 503 });
      const response = await post(await gatewayTo(upstream.url));
      expect(response.status).toBe(500);
      const envelope = (await response.json()) as { error: Record<string, unknown> };
      expect(envelope.error.type).toBe('server_error');
      expect(JSON.stringify(envelope)).not.toContain('policy bug');
    });

    it('answers a refused connection with an envelope, and the gateway stays up', async () => {
      const gateway = await gatewayTo(`http://127.0.0.1:${await freePort()}`);
      for (let round = 0; round < 2; round += 1) {
        const response = await post(gateway);
        expect(response.status).toBe(502);
        expect(((await response.json()) as { error: { code: string } }).error.code).toBe(
          'relay_upstream_unreachable',
        );
      }
    });
  });

  describe('when the stream is cut before any output', () => {
    it('retries invisibly: the client sees one clean stream', async () => {
      const { upstream, gateway, retries } = await harness();
      upstream.script(
        { kind: 'cut', afterEvents: 2, mode: 'reset', then: { kind: 'text', text: 'lost' } },
        { kind: 'text', text: 'second attempt' },
      );
      const exchange = await postSse(`${gateway.url}/v1/responses`, body, { headers: AUTH });
      const events = await exchange.done;
      const types = events.map((e) => e.json?.type);
      expect(types.filter((t) => t === 'response.created')).toHaveLength(1);
      expect(types.at(-1)).toBe('response.completed');
      expect(types).not.toContain('error');
      const text = events
        .filter((e) => e.json?.type === 'response.output_text.delta')
        .map((e) => e.json?.delta)
        .join('');
      expect(text).toBe('second attempt');
      expect(exchange.headers['x-relay-attempts']).toBe('2');
      expect(retries.map((r) => r.reason)).toEqual(['stream_cut']);
      expect(upstream.requests).toHaveLength(2);
    });

    it('lets the official client with maxRetries: 0 see the retried stream succeed', async () => {
      const { upstream, gateway } = await harness();
      upstream.script(
        { kind: 'cut', afterEvents: 2, mode: 'eof', then: { kind: 'text', text: 'lost' } },
        { kind: 'text', text: 'delivered' },
      );
      const final = await client(gateway)
        .responses.stream({ model: 'gpt-test', input: 'hi' })
        .finalResponse();
      expect(final.status).toBe('completed');
      expect(final.output_text).toBe('delivered');
      expect(upstream.requests).toHaveLength(2);
    });

    it('retries an in-stream server_error before output', async () => {
      const { upstream, gateway, retries } = await harness();
      upstream.script(
        {
          kind: 'stream_error',
          afterEvents: 2,
          error: { type: 'server_error', code: 'server_error', message: 'overloaded' },
          thenFailed: true,
        },
        { kind: 'text', text: 'fine now' },
      );
      const final = await client(gateway)
        .responses.stream({ model: 'gpt-test', input: 'hi' })
        .finalResponse();
      expect(final.output_text).toBe('fine now');
      expect(retries.map((r) => r.reason)).toEqual(['server_error']);
    });

    it('does not retry a fatal in-stream failure (context_length_exceeded)', async () => {
      const { upstream, gateway, retries } = await harness();
      upstream.script({
        kind: 'response_failed',
        code: 'context_length_exceeded',
        message: 'too long',
      });
      const final = await client(gateway)
        .responses.stream({ model: 'gpt-test', input: 'hi' })
        .finalResponse();
      expect(final.status).toBe('failed');
      expect(final.error?.code).toBe('context_length_exceeded');
      expect(upstream.requests).toHaveLength(1);
      expect(retries).toEqual([]);
    });
  });

  describe('when the stream is cut after output reached the client', () => {
    it('does not retry and ends the stream with an error event and response.failed', async () => {
      const { upstream, gateway, retries } = await harness();
      upstream.script({
        kind: 'cut',
        afterEvents: 5,
        mode: 'reset',
        then: { kind: 'text', text: 'partial answer here', chunks: 4 },
      });
      const exchange = await postSse(`${gateway.url}/v1/responses`, body, { headers: AUTH });
      const events = await exchange.done;
      const types = events.map((e) => e.json?.type);
      expect(types.slice(-2)).toEqual(['error', 'response.failed']);
      expect(
        types.filter(
          (t) =>
            t?.toString().startsWith('response.') &&
            ['response.completed', 'response.failed', 'response.incomplete'].includes(String(t)),
        ),
      ).toHaveLength(1);
      expect(upstream.requests).toHaveLength(1);
      expect(retries).toEqual([]);
    });
  });

  describe('when the retry budget is exhausted', () => {
    it('passes the error straight through and tells the client not to retry', async () => {
      const budget = new RetryBudget({ ratio: 0, minRetries: 1, windowMs: 60_000 });
      const { upstream, gateway, retries } = await harness({ budget });
      upstream.setDefault({ kind: 'http_error', status: 503 });
      const first = await post(gateway);
      const second = await post(gateway);
      expect(first.status).toBe(503);
      expect(second.status).toBe(503);
      // The first request used the only retry of the window (2 attempts), the second got none.
      expect(first.headers.get('x-relay-attempts')).toBe('2');
      expect(first.headers.get('x-should-retry')).toBe('false');
      expect(second.headers.get('x-relay-attempts')).toBe('1');
      expect(second.headers.get('x-should-retry')).toBe('false');
      expect(retries).toHaveLength(1);
      expect(upstream.requests).toHaveLength(3);
    });
  });

  describe('when the client disconnects', () => {
    it('aborts the upstream request of a stalled stream', async () => {
      const { upstream, gateway } = await harness();
      upstream.script({ kind: 'stall', afterEvents: 3, then: { kind: 'text', text: 'never' } });
      const exchange = await postSse(`${gateway.url}/v1/responses`, body, { headers: AUTH });
      await upstream.waitForRequests(1);
      exchange.request.destroy();
      await upstream.requests[0]?.closed; // the jest timeout is the hang detector
      expect(upstream.requests[0]?.socketClosedEarly).toBe(true);
      expect(upstream.requests).toHaveLength(1);
    });

    it('cancels the pending retry: no further attempt starts', async () => {
      const retried = new Promise<void>((resolve) => {
        void harness({
          baseDelayMs: 400,
          maxDelayMs: 400,
          random: () => 0.99,
          onRetry: () => resolve(),
        }).then((h) => {
          state.h = h;
          h.upstream.setDefault({ kind: 'http_error', status: 503 });
          const controller = new AbortController();
          state.abort = () => controller.abort();
          fetch(`${h.gateway.url}/v1/responses`, {
            method: 'POST',
            headers: { ...AUTH, 'content-type': 'application/json' },
            body: JSON.stringify(body),
            signal: controller.signal,
          }).catch(() => undefined);
        });
      });
      const state: { h?: Harness; abort?: () => void } = {};
      await retried;
      state.abort?.();
      // Past the moment the retry would have fired.
      await new Promise((resolve) => setTimeout(resolve, 700));
      expect(state.h?.upstream.requests).toHaveLength(1);
    });
  });
});
