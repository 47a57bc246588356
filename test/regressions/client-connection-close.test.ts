/**
 * Regression: the relay keeps a pool of keep-alive connections to the upstream, but forwarded the
 * client's own `connection: close` (a client without an agent sends it) on them. Node then put the
 * connection back in the pool while the upstream closed its side, and the next turn was written to
 * it and answered `400 Bad Request` with an empty body. Connection headers are hop-by-hop: the
 * relay must never forward them, and its upstream connections must be reused across clients.
 */
import type http from 'node:http';
import { createRelay, type Relay } from '../../lib/relay';
import { startFakeUpstream, type FakeUpstream } from '../support/fake-upstream';
import { rawRequest } from '../support/fake-upstream/client';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy';

describe.each(['openai', 'codex'] as const)(
  'clients sending connection: close (%s profile)',
  (profile) => {
    let upstream: FakeUpstream;
    let proxy: TcpProxy;
    let relay: Relay;

    beforeAll(async () => {
      upstream = await startFakeUpstream({ mode: profile === 'codex' ? 'stateless' : 'stateful' });
      proxy = await startTcpProxy({ targetPort: Number(new URL(upstream.url).port) });
      relay = createRelay({
        upstream: proxy.url,
        profile,
        upstreamMode: profile === 'codex' ? 'stateless' : 'stateful',
        logger: false,
        metrics: false,
        retry: false,
      });
      await relay.listen(0, '127.0.0.1');
    });

    afterAll(async () => {
      await relay.close({ timeoutMs: 1000 });
      await proxy.close();
      await upstream.close();
    });

    it('chain turn after turn over one pooled upstream connection', async () => {
      let previous: string | undefined;
      for (const text of ['first turn', 'second turn', 'third turn']) {
        // `rawRequest` uses no agent: each request carries `connection: close`.
        const answer = await rawRequest(`${relay.url}/v1/responses`, {
          headers: { authorization: 'Bearer sk-connection-close' },
          body: {
            model: 'gpt-test',
            input: [{ type: 'message', role: 'user', content: [{ type: 'input_text', text }] }],
            stream: false,
            ...(previous === undefined ? {} : { previous_response_id: previous }),
          },
        });
        expect(answer.status).toBe(200);
        previous = (answer.json as { id: string }).id;
      }
      expect(upstream.requests.map((request) => request.status)).toEqual([200, 200, 200]);
      expect(proxy.connections).toBe(1);
    });

    /** The connection headers the upstream saw while `send` ran. */
    async function upstreamConnectionHeaders(send: () => Promise<void>): Promise<string[]> {
      const seen: string[] = [];
      const listener = (request: http.IncomingMessage): void => {
        seen.push(`${request.headers.connection ?? ''}|${request.headers['keep-alive'] ?? ''}`);
      };
      const server = (upstream as unknown as { server: http.Server }).server;
      server.on('request', listener);
      try {
        await send();
      } finally {
        server.off('request', listener);
      }
      return seen;
    }

    const hopByHop = {
      authorization: 'Bearer sk-connection-close',
      connection: 'close',
      'keep-alive': 'timeout=1',
    };

    it('never forwards the client connection headers upstream', async () => {
      const seen = await upstreamConnectionHeaders(async () => {
        const answer = await rawRequest(`${relay.url}/v1/responses`, {
          headers: hopByHop,
          body: { model: 'gpt-test', input: 'hello', stream: false },
        });
        expect(answer.status).toBe(200);
      });
      // HTTP/1.1 connections persist unless a `close` says otherwise.
      expect(seen).toHaveLength(1);
      expect(seen[0]).not.toMatch(/close|timeout/i);
    });

    it('nor on the routes it passes through untouched', async () => {
      const seen = await upstreamConnectionHeaders(async () => {
        await rawRequest(`${relay.url}/v1/models`, { method: 'GET', headers: hopByHop });
      });
      expect(seen).toHaveLength(1);
      expect(seen[0]).not.toMatch(/close|timeout/i);
    });
  },
);
