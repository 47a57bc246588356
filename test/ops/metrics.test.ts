/**
 * Metrics: a registry per relay (no collisions), request counts by status, retries by reason,
 * rebuilt completions and synthesized terminations from the exchange annotations, store latency
 * and errors by code, active requests/streams/sockets at scrape time.
 */
import { EventEmitter } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import express from 'express';
import request from 'supertest';
import { getExchange } from '../../lib/middleware/exchange';
import { RelayMetrics } from '../../lib/ops/metrics';
import { markRoute } from '../../lib/ops/summary';
import { MemorySessionStore } from '../../lib/store/memory-session-store';
import { SessionStoreError, type SessionStore } from '../../lib/store/session-store';

/** A store with only the required SessionStore methods, delegating to `inner`. */
function basicStore(inner: SessionStore): SessionStore {
  return {
    putResponse: (record) => inner.putResponse(record),
    getResponse: (tenant, id) => inner.getResponse(tenant, id),
    expandChain: (tenant, id) => inner.expandChain(tenant, id),
    deleteResponse: (tenant, id) => inner.deleteResponse(tenant, id),
    setSessionHead: (tenant, key, id) => inner.setSessionHead(tenant, key, id),
    getSessionHead: (tenant, key) => inner.getSessionHead(tenant, key),
    close: () => inner.close(),
  };
}

async function value(metrics: RelayMetrics, name: string, labels: Record<string, string> = {}) {
  const metric = await metrics.registry.getSingleMetric(name)?.get();
  const match = metric?.values.find((entry) =>
    Object.entries(labels).every(([key, wanted]) => String(entry.labels[key]) === wanted),
  );
  return match?.value;
}

describe('RelayMetrics', () => {
  it('uses a registry of its own: two relays in one process do not collide', async () => {
    const a = new RelayMetrics({ defaultMetrics: false });
    const b = new RelayMetrics({ defaultMetrics: false });
    a.recordRetry('server_error');
    expect(await value(a, 'relay_retries_total', { reason: 'server_error' })).toBe(1);
    expect(await value(b, 'relay_retries_total', { reason: 'server_error' })).toBeUndefined();
    const body = (await a.exposition()).body;
    expect(body).toContain('relay_retries_total{reason="server_error"} 1');
  });

  it('counts exchanges by route, method and status, with annotations turned into counters', async () => {
    const metrics = new RelayMetrics({ defaultMetrics: false });
    const app = express();
    app.use(metrics.middleware());
    app.post('/v1/responses', (req, res) => {
      markRoute(req, 'responses');
      const exchange = getExchange(req, res);
      exchange.attempts = 3;
      exchange.annotations['sse_completion.output_rebuilt'] = true;
      exchange.annotations['sse_completion.closed'] = 'eof';
      res.status(200).json({});
    });
    app.get('/metrics', metrics.handler());
    await request(app).post('/v1/responses').send({}).expect(200);
    await request(app).get('/nowhere').expect(404);
    expect(
      await value(metrics, 'relay_requests_total', {
        route: 'responses',
        method: 'POST',
        status: '200',
      }),
    ).toBe(1);
    expect(await value(metrics, 'relay_requests_total', { route: 'other', status: '404' })).toBe(1);
    expect(await value(metrics, 'relay_upstream_attempts_total', { route: 'responses' })).toBe(3);
    expect(await value(metrics, 'relay_completions_rebuilt_total')).toBe(1);
    expect(await value(metrics, 'relay_terminations_synthesized_total', { cause: 'eof' })).toBe(1);
    const scrape = await request(app).get('/metrics').expect(200);
    expect(scrape.headers['content-type']).toContain('text/plain');
    expect(scrape.text).toContain('relay_request_duration_seconds_bucket');
  });

  it('names retry reasons that are safe as labels, and folds the rest', async () => {
    const metrics = new RelayMetrics({ defaultMetrics: false });
    metrics.recordRetry('rate_limited');
    metrics.recordRetry('has spaces and "quotes"');
    expect(await value(metrics, 'relay_retries_total', { reason: 'rate_limited' })).toBe(1);
    expect(await value(metrics, 'relay_retries_total', { reason: 'other' })).toBe(1);
  });

  it('keeps the optional one-round-trip store operations, and adds none a store lacks', async () => {
    const metrics = new RelayMetrics({ defaultMetrics: false });
    const full = metrics.instrumentStore(new MemorySessionStore());
    expect(typeof full.expandSessionHead).toBe('function');
    expect(typeof full.putSessionResponse).toBe('function');
    const tenant = 'tenantBBBBBBBBBBBBBBBB';
    await full.putSessionResponse?.(
      { tenant, id: 'resp_s1', parentId: null, input: [], output: [], createdAt: Date.now() },
      'session-1',
    );
    expect(await full.getSessionHead(tenant, 'session-1')).toBe('resp_s1');
    expect((await full.expandSessionHead?.(tenant, 'session-1'))?.head).toBe('resp_s1');
    const histogram = await metrics.registry
      .getSingleMetric('relay_store_operation_duration_seconds')
      ?.get();
    expect(histogram?.values).toEqual(
      expect.arrayContaining([
        expect.objectContaining({
          metricName: 'relay_store_operation_duration_seconds_count',
          labels: { operation: 'putSessionResponse', outcome: 'ok' },
          value: 1,
        }),
      ]),
    );
    const plain = metrics.instrumentStore(basicStore(new MemorySessionStore()));
    expect('expandSessionHead' in plain).toBe(false);
    expect('putSessionResponse' in plain).toBe(false);
    await full.close();
    await plain.close();
  });

  it('times store operations and counts their failures by code', async () => {
    const metrics = new RelayMetrics({ defaultMetrics: false });
    const failing: SessionStore = {
      ...basicStore(new MemorySessionStore()),
      getResponse: () => Promise.reject(new SessionStoreError('store_timeout', 'slow')),
    };
    const store = metrics.instrumentStore(failing);
    await store.putResponse({
      tenant: 'tenantAAAAAAAAAAAAAAAA',
      id: 'resp_1',
      parentId: null,
      input: [],
      output: [],
      createdAt: Date.now(),
    });
    await expect(store.getResponse('tenantAAAAAAAAAAAAAAAA', 'resp_1')).rejects.toMatchObject({
      code: 'store_timeout',
    });
    const histogram = await metrics.registry
      .getSingleMetric('relay_store_operation_duration_seconds')
      ?.get();
    const counts = histogram?.values.filter((entry) =>
      (entry as { metricName?: string }).metricName?.endsWith('_count'),
    );
    expect(counts).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ labels: { operation: 'putResponse', outcome: 'ok' }, value: 1 }),
        expect.objectContaining({
          labels: { operation: 'getResponse', outcome: 'error' },
          value: 1,
        }),
      ]),
    );
    expect(
      await value(metrics, 'relay_store_errors_total', {
        operation: 'getResponse',
        code: 'store_timeout',
      }),
    ).toBe(1);
    await store.close();
  });

  it('reports active requests, streams and WebSocket connections at scrape time', async () => {
    const metrics = new RelayMetrics({ defaultMetrics: false });
    const app = express();
    app.use(metrics.middleware());
    let release: () => void = () => undefined;
    app.post('/v1/responses', (req, res) => {
      getExchange(req, res).body = { stream: true };
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(': ping\n\n');
      release = () => res.end();
    });
    const server = app.listen(0, '127.0.0.1');
    await new Promise<void>((resolve) => server.once('listening', () => resolve()));
    const { port } = server.address() as { port: number };
    const response = await fetch(`http://127.0.0.1:${port}/v1/responses`, {
      method: 'POST',
      body: '{}',
    });
    expect(response.status).toBe(200);
    const socket = Object.assign(new EventEmitter(), {}) as unknown as Duplex;
    metrics.trackSocket(socket);
    metrics.countWebSockets(() => 2);
    expect(await value(metrics, 'relay_active_requests')).toBe(1);
    expect(await value(metrics, 'relay_active_streams')).toBe(1);
    expect(await value(metrics, 'relay_active_websockets')).toBe(3);
    release();
    await response.text();
    socket.emit('close');
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(await value(metrics, 'relay_active_requests')).toBe(0);
    expect(await value(metrics, 'relay_active_streams')).toBe(0);
    expect(await value(metrics, 'relay_active_websockets')).toBe(2);
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  it('counts the upgrades its filter accepts; a filter that throws counts nothing, the server goes on', async () => {
    const metrics = new RelayMetrics({ defaultMetrics: false });
    const server = http.createServer();
    metrics.trackUpgrades(server, (req) => {
      if (req.url === '/broken') throw new Error('filter bug');
      return req.url === '/counted';
    });
    // The server's own upgrade handler: a 101 with no protocol behind it, kept open.
    const upgraded: Duplex[] = [];
    server.on('upgrade', (_req, socket: Duplex) => {
      upgraded.push(socket);
      socket.write(
        'HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: test\r\n\r\n',
      );
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    const upgrade = (path: string) =>
      new Promise<Duplex>((resolve, reject) => {
        http
          .request({
            port,
            host: '127.0.0.1',
            path,
            headers: { connection: 'upgrade', upgrade: 'test' },
          })
          .once('upgrade', (_res, socket) => resolve(socket))
          .once('error', reject)
          .end();
      });
    const clients = [await upgrade('/broken'), await upgrade('/counted'), await upgrade('/other')];
    expect(await value(metrics, 'relay_active_websockets')).toBe(1);
    for (const socket of [...clients, ...upgraded]) socket.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  it('collects the default process metrics unless told not to', async () => {
    const withDefaults = new RelayMetrics();
    const without = new RelayMetrics({ defaultMetrics: false, prefix: 'gw_' });
    expect((await withDefaults.exposition()).body).toContain('process_cpu_user_seconds_total');
    const body = (await without.exposition()).body;
    expect(body).not.toContain('process_cpu_user_seconds_total');
    expect(body).toContain('gw_requests_total');
  });
});
