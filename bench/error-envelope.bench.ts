/**
 * What errorEnvelope() costs on the successful path, on loopback: the same upstream answers
 * through an Express gateway with a stock http-proxy-middleware proxy, without and with
 * errorEnvelope() in front (tap mode), and through relayProxyOptions() without and with it
 * (proxy mode), and with a no-op stream stage instead (what any stream-aware middleware costs, since
 * the shared pipeline then parses the stream once for all of them). Scenarios: a small JSON Response (latency), an 8 MiB JSON body (throughput) and a
 * 10,000-event SSE stream (time to first byte and to the last). Requests run one at a time over a
 * keep-alive connection; the gateways are interleaved so drift hits all of them alike.
 */
import express from 'express';
import { createProxyMiddleware } from 'http-proxy-middleware';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { errorEnvelope } from '../lib/middleware/error-envelope';
import { relayProxyOptions } from '../lib/middleware/relay-proxy';
import { streamTransform } from '../lib/middleware/stream-transform';
import { serializeStreamEvent } from '../lib/protocol/sse';

export const title =
  'errorEnvelope() on the 2xx path: gateway latency without vs with the middleware (loopback)';

interface Server {
  url: string;
  close(): Promise<void>;
}

function serve(handler: http.RequestListener): Promise<Server> {
  const server = http.createServer(handler);
  server.keepAliveTimeout = 60_000;
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      resolve({
        url: `http://127.0.0.1:${port}`,
        close: () =>
          new Promise<void>((done) => {
            server.closeAllConnections();
            server.close(() => done());
          }),
      });
    });
  });
}

const SMALL = Buffer.from(
  JSON.stringify({
    id: 'resp_1',
    object: 'response',
    status: 'completed',
    output: [
      {
        id: 'msg_1',
        type: 'message',
        role: 'assistant',
        status: 'completed',
        content: [{ type: 'output_text', text: 'Hello! '.repeat(100), annotations: [] }],
      },
    ],
  }),
);
const LARGE = Buffer.from(
  JSON.stringify({ id: 'resp_2', object: 'response', output: [{ text: 'x'.repeat(8 << 20) }] }),
);
/** created, in_progress, one message item, 10,000 text deltas, the item's done events, completed. */
function buildStream(): Buffer {
  const response = { id: 'resp_3', object: 'response', status: 'in_progress', output: [] };
  const item = {
    id: 'msg_3',
    type: 'message',
    role: 'assistant',
    status: 'in_progress',
    content: [],
  };
  const events: Array<{ type: string; [key: string]: unknown }> = [
    { type: 'response.created', response },
    { type: 'response.in_progress', response },
    { type: 'response.output_item.added', output_index: 0, item },
  ];
  let text = '';
  for (let index = 0; index < 10_000; index += 1) {
    const delta = `token ${index} of a streamed answer, `;
    text += delta;
    events.push({
      type: 'response.output_text.delta',
      item_id: 'msg_3',
      output_index: 0,
      content_index: 0,
      delta,
      logprobs: [],
      obfuscation: index.toString(36).padStart(8, '0'),
    });
  }
  const done = {
    ...item,
    status: 'completed',
    content: [{ type: 'output_text', text, annotations: [] }],
  };
  events.push({ type: 'response.output_item.done', output_index: 0, item: done });
  events.push({
    type: 'response.completed',
    response: { ...response, status: 'completed', output: [done] },
  });
  return Buffer.from(
    events
      .map((event, index) =>
        serializeStreamEvent({ ...event, sequence_number: index } as { type: string }),
      )
      .join(''),
  );
}

const STREAM = buildStream();

function upstreamHandler(req: http.IncomingMessage, res: http.ServerResponse): void {
  req.resume();
  req.on('end', () => {
    if (req.url?.includes('stream')) {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      // 64 KiB writes, as a socket would deliver them.
      for (let at = 0; at < STREAM.length; at += 65_536)
        res.write(STREAM.subarray(at, at + 65_536));
      res.end();
      return;
    }
    const body = req.url?.includes('large') ? LARGE : SMALL;
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length });
    res.end(body);
  });
}

type Front = 'none' | 'errorEnvelope' | 'no-op stage';

function gatewayApp(target: string, mode: 'tap' | 'proxy', front: Front) {
  const app = express();
  const proxy =
    mode === 'tap'
      ? createProxyMiddleware({ target, changeOrigin: true })
      : createProxyMiddleware({ target, changeOrigin: true, ...relayProxyOptions() });
  const chain: express.RequestHandler[] = [proxy];
  if (front === 'errorEnvelope') chain.unshift(errorEnvelope({ logger: false }));
  // Any stream-aware middleware: the shared pipeline parses the stream once for all of them.
  if (front === 'no-op stage') chain.unshift(streamTransform({ name: 'noop' }));
  app.post('/v1/:kind', ...chain);
  return app;
}

interface Sample {
  firstByteMs: number;
  totalMs: number;
  bytes: number;
}

function fetchOnce(agent: http.Agent, url: string, body: string): Promise<Sample> {
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    let firstByte: bigint | undefined;
    let bytes = 0;
    const request = http.request(url, {
      method: 'POST',
      agent,
      headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
    });
    request.once('error', reject);
    request.once('response', (response) => {
      response.on('data', (chunk: Buffer) => {
        firstByte ??= process.hrtime.bigint();
        bytes += chunk.length;
      });
      response.once('end', () => {
        const end = process.hrtime.bigint();
        resolve({
          firstByteMs: Number((firstByte ?? end) - started) / 1e6,
          totalMs: Number(end - started) / 1e6,
          bytes,
        });
      });
      response.once('error', reject);
    });
    request.end(body);
  });
}

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? NaN;
}

export async function run(): Promise<void> {
  const upstream = await serve(upstreamHandler);
  const variants: Array<{ label: string; mode: 'tap' | 'proxy'; front: Front }> = [
    { label: 'stock proxy', mode: 'tap', front: 'none' },
    { label: 'stock proxy + errorEnvelope', mode: 'tap', front: 'errorEnvelope' },
    { label: 'stock proxy + no-op stage', mode: 'tap', front: 'no-op stage' },
    { label: 'relayProxyOptions', mode: 'proxy', front: 'none' },
    { label: 'relayProxyOptions + errorEnvelope', mode: 'proxy', front: 'errorEnvelope' },
    { label: 'relayProxyOptions + no-op stage', mode: 'proxy', front: 'no-op stage' },
  ];
  const gateways = await Promise.all(
    variants.map(async (variant) => ({
      ...variant,
      server: await serve(gatewayApp(upstream.url, variant.mode, variant.front)),
      agent: new http.Agent({ keepAlive: true, maxSockets: 1 }),
    })),
  );
  const scenarios = [
    { name: 'small JSON (1 KiB)', path: 'small', warmup: 200, repeats: 1500 },
    { name: 'large JSON (8 MiB)', path: 'large', warmup: 5, repeats: 40 },
    {
      name: `SSE (10,005 events, ${(STREAM.length / 2 ** 20).toFixed(1)} MiB)`,
      path: 'stream',
      warmup: 5,
      repeats: 40,
    },
  ];
  const body = JSON.stringify({ model: 'gpt-5', input: 'hi', stream: false });
  process.stdout.write(
    'median / p99 over sequential requests on one keep-alive connection; first byte = time to first body byte\n\n',
  );
  const rows: string[][] = [
    ['scenario', 'gateway', 'median ms', 'p99 ms', 'first byte median ms', 'Δ median vs without'],
  ];
  for (const scenario of scenarios) {
    const samples = new Map<string, Sample[]>(gateways.map((g) => [g.label, []]));
    for (let round = 0; round < scenario.warmup + scenario.repeats; round += 1) {
      const order = round % 2 === 0 ? gateways : [...gateways].reverse();
      for (const gateway of order) {
        const sample = await fetchOnce(
          gateway.agent,
          `${gateway.server.url}/v1/${scenario.path}`,
          body,
        );
        if (round >= scenario.warmup) samples.get(gateway.label)?.push(sample);
      }
    }
    const medians = new Map<string, number>();
    for (const gateway of gateways) {
      const list = samples.get(gateway.label) ?? [];
      medians.set(
        gateway.label,
        percentile(
          list.map((s) => s.totalMs),
          0.5,
        ),
      );
    }
    for (const gateway of gateways) {
      const list = samples.get(gateway.label) ?? [];
      const median = medians.get(gateway.label) ?? NaN;
      const base =
        gateway.front === 'none'
          ? undefined
          : medians.get(gateway.mode === 'tap' ? 'stock proxy' : 'relayProxyOptions');
      rows.push([
        scenario.name,
        gateway.label,
        median.toFixed(3),
        percentile(
          list.map((s) => s.totalMs),
          0.99,
        ).toFixed(3),
        percentile(
          list.map((s) => s.firstByteMs),
          0.5,
        ).toFixed(3),
        base === undefined
          ? '—'
          : `${median - base >= 0 ? '+' : ''}${(median - base).toFixed(3)} ms (${(((median - base) / base) * 100).toFixed(1)}%)`,
      ]);
    }
  }
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => row[column]!.length)));
  const format = (row: string[]) =>
    `| ${row.map((cell, column) => cell.padEnd(widths[column]!)).join(' | ')} |\n`;
  process.stdout.write(format(rows[0]!));
  process.stdout.write(`| ${widths.map((width) => '-'.repeat(width)).join(' | ')} |\n`);
  for (const row of rows.slice(1)) process.stdout.write(format(row));
  for (const gateway of gateways) {
    gateway.agent.destroy();
    await gateway.server.close();
  }
  await upstream.close();
}
