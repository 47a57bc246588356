/**
 * Tap mode: lets the relay's middlewares see and rewrite a response written by a stock
 * http-proxy-middleware proxy (or any handler), the way `compression` does. `writeHead`, `write`
 * and `end` are wrapped; the status and headers are held until the pipeline decides what to send;
 * back-pressure is passed on through the `write` return value and `drain`. When a stream is piped
 * into the response (as http-proxy does), the source is watched so that a broken upstream ends
 * the client's stream cleanly and a departed client stops the upstream.
 */
import type { OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';
import { keepOriginalMethods, responseSink } from './client-sink';
import type { Exchange, StreamEnd } from './exchange';
import { ResponsePipeline, type ResponsePipelineOptions } from './response-pipeline';

const TAPPED = Symbol.for('responses-relay.tapped');

type Callback = (error?: Error | null) => void;

function toBuffer(chunk: unknown, encoding?: BufferEncoding): Buffer {
  if (Buffer.isBuffer(chunk)) return chunk;
  if (chunk instanceof Uint8Array)
    return Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  return Buffer.from(String(chunk), encoding ?? 'utf8');
}

function applyHeaders(res: ServerResponse, headers: unknown): void {
  if (Array.isArray(headers)) {
    // Raw form: [name, value, name, value, …] or [[name, value], …]
    if (headers.length > 0 && Array.isArray(headers[0])) {
      for (const pair of headers as Array<[string, string]>) res.setHeader(pair[0], pair[1]);
    } else {
      for (let i = 0; i + 1 < headers.length; i += 2)
        res.setHeader(String(headers[i]), headers[i + 1] as string);
    }
  } else if (headers && typeof headers === 'object') {
    for (const [name, value] of Object.entries(headers as OutgoingHttpHeaders)) {
      if (value !== undefined) res.setHeader(name, value);
    }
  }
}

/**
 * Installs the tap on the exchange's response (once). Skipped when the exchange's proxy handles
 * the response itself (`exchange.proxyHandlesResponse`) unless `force`d, as a middleware that
 * writes the answer itself does.
 */
export function tapResponse(
  exchange: Exchange,
  options: ResponsePipelineOptions = {},
  force = false,
): void {
  const res = exchange.res as ServerResponse & { [TAPPED]?: boolean };
  if (res[TAPPED] || (exchange.proxyHandlesResponse && !force)) return;
  res[TAPPED] = true;
  const raw = keepOriginalMethods(res);
  let pipeline: ResponsePipeline | undefined;
  let upstreamSource: Readable | undefined;
  let finishing = false;
  let drainRequested = false;

  const start = (): ResponsePipeline => {
    if (!pipeline) {
      pipeline = new ResponsePipeline(exchange, responseSink(res, raw), options);
      pipeline.setUpstreamAbort(() => {
        upstreamSource?.unpipe(res);
        upstreamSource?.destroy();
      });
      pipeline.begin(res.statusCode, res.getHeaders());
    }
    return pipeline;
  };

  const finish = (end: StreamEnd, callback?: Callback): void => {
    if (finishing) return;
    finishing = true;
    start()
      .finish(end)
      .then(
        () => callback?.(),
        (error: unknown) => {
          res.destroy(error instanceof Error ? error : new Error(String(error)));
        },
      );
  };

  res.writeHead = function writeHead(this: ServerResponse, status: number, ...rest: unknown[]) {
    if (pipeline?.committed) return this;
    res.statusCode = status;
    const [first, second] = rest;
    if (typeof first === 'string') {
      res.statusMessage = first;
      applyHeaders(res, second);
    } else {
      applyHeaders(res, first);
    }
    return this;
  } as ServerResponse['writeHead'];

  res.write = function write(this: ServerResponse, chunk: unknown, ...rest: unknown[]): boolean {
    const callback = rest.find((arg): arg is Callback => typeof arg === 'function');
    const encoding = typeof rest[0] === 'string' ? (rest[0] as BufferEncoding) : undefined;
    if (finishing) return false;
    const current = start();
    const ok = current.push(toBuffer(chunk, encoding));
    if (callback) process.nextTick(callback);
    if (!ok && !drainRequested) {
      drainRequested = true;
      current.onDrain(() => {
        drainRequested = false;
        res.emit('drain');
      });
    }
    return ok;
  } as ServerResponse['write'];

  res.end = function end(this: ServerResponse, ...args: unknown[]) {
    const callback = args.find((arg): arg is Callback => typeof arg === 'function');
    const chunk = typeof args[0] === 'function' ? undefined : args[0];
    const encoding = typeof args[1] === 'string' ? (args[1] as BufferEncoding) : undefined;
    if (finishing) return this;
    const current = start();
    if (chunk !== undefined && chunk !== null) current.push(toBuffer(chunk, encoding));
    finish({ kind: 'eof' }, callback);
    return this;
  } as ServerResponse['end'];

  // http-proxy pipes the upstream response into `res`: watch it for a broken upstream and stop it
  // when the client leaves.
  res.on('pipe', (source: Readable & { complete?: boolean }) => {
    upstreamSource = source;
    const fail = (error: Error): void => {
      source.unpipe(res);
      finish({ kind: 'error', error });
    };
    source.once('error', fail);
    source.once('aborted', () => fail(new Error('upstream connection aborted')));
    source.once('close', () => {
      if (source.complete === false)
        fail(new Error('upstream connection closed before the body ended'));
    });
    res.once('close', () => {
      if (!res.writableFinished) source.destroy();
    });
  });
}
