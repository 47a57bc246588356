/**
 * Liveness and readiness: the store is probed with a read, the upstream with a TCP connect, each
 * within a deadline; draining fails readiness at once; results are cached briefly.
 */
import net from 'node:net';
import express from 'express';
import request from 'supertest';
import { createHealth, storeCheck, upstreamCheck } from '../../lib/ops/health';
import { MemorySessionStore } from '../../lib/store/memory-session-store';
import type { SessionStore } from '../../lib/store/session-store';

function listeningServer(): Promise<{ url: string; close(): Promise<void> }> {
  const server = net.createServer((socket) => socket.destroy());
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      resolve({
        url: `http://127.0.0.1:${port}`,
        close: () => new Promise<void>((done) => server.close(() => done())),
      });
    });
  });
}

/** A port nobody listens on (bound, then released). */
async function closedPort(): Promise<string> {
  const { url, close } = await listeningServer();
  await close();
  return url;
}

function brokenStore(behaviour: 'reject' | 'hang'): SessionStore {
  const store = new MemorySessionStore();
  store.getResponse = () =>
    behaviour === 'reject'
      ? Promise.reject(new Error('ECONNREFUSED 127.0.0.1:6379'))
      : new Promise(() => undefined);
  return store;
}

function app(health: ReturnType<typeof createHealth>): express.Express {
  const server = express();
  server.get('/healthz', health.livenessHandler());
  server.get('/readyz', health.readinessHandler());
  return server;
}

describe('health', () => {
  it('is ready when the store answers and the upstream accepts connections', async () => {
    const upstream = await listeningServer();
    const health = createHealth({ store: new MemorySessionStore(), upstream: upstream.url });
    const answer = await request(app(health)).get('/readyz').expect(200);
    expect(answer.body).toMatchObject({
      status: 'ready',
      checks: { store: { status: 'ok' }, upstream: { status: 'ok' } },
    });
    await request(app(health)).get('/healthz').expect(200, { status: 'ok' });
    await upstream.close();
  });

  it('is not ready when the upstream refuses connections, and says why', async () => {
    const health = createHealth({ store: new MemorySessionStore(), upstream: await closedPort() });
    const answer = await request(app(health)).get('/readyz').expect(503);
    expect(answer.body.status).toBe('not_ready');
    expect(answer.body.checks.upstream).toMatchObject({ status: 'fail' });
    expect(answer.body.checks.upstream.error).toContain('ECONNREFUSED');
    // Liveness does not depend on the dependencies.
    await request(app(health)).get('/healthz').expect(200);
  });

  it('is not ready when the store fails or hangs past the deadline', async () => {
    for (const behaviour of ['reject', 'hang'] as const) {
      const health = createHealth({ store: brokenStore(behaviour), timeoutMs: 100 });
      const started = Date.now();
      const report = await health.readiness();
      expect(Date.now() - started).toBeLessThan(1000);
      expect(report.status).toBe('not_ready');
      expect(report.checks.store?.status).toBe('fail');
    }
  });

  it('fails readiness at once while draining', async () => {
    let draining = false;
    const health = createHealth({ store: new MemorySessionStore(), isDraining: () => draining });
    expect((await health.readiness()).status).toBe('ready');
    draining = true;
    const answer = await request(app(health)).get('/readyz').expect(503);
    expect(answer.body).toEqual({ status: 'draining', checks: {} });
  });

  it('reuses a fresh result instead of probing again', async () => {
    let probes = 0;
    const health = createHealth({
      checks: {
        counted: async () => {
          probes += 1;
        },
      },
      cacheMs: 10_000,
    });
    await health.readiness();
    await health.readiness();
    expect(probes).toBe(1);
  });

  it('probes with a read that any SessionStore answers', async () => {
    await expect(storeCheck(new MemorySessionStore())()).resolves.toBeUndefined();
    await expect(upstreamCheck('https://127.0.0.1:1', 200)()).rejects.toThrow(/127\.0\.0\.1:1/);
  });
});
