/**
 * Adapts a Node `ServerResponse` to the pipeline's `ClientSink`. In tap mode the response's
 * methods are wrapped, so the sink is given the original ones to write for real.
 */
import type { OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { ClientSink } from './response-pipeline';

export interface RawResponseMethods {
  writeHead: ServerResponse['writeHead'];
  write: ServerResponse['write'];
  end: ServerResponse['end'];
}

const RAW_METHODS = Symbol.for('responses-relay.raw-methods');

type WithRaw = ServerResponse & { [RAW_METHODS]?: RawResponseMethods };

/**
 * The response's own `writeHead`/`write`/`end`, as they were before the tap wrapped them: the
 * pipeline always writes through these, so a response is never processed twice.
 */
export function originalMethods(res: ServerResponse): RawResponseMethods {
  return (
    (res as WithRaw)[RAW_METHODS] ?? { writeHead: res.writeHead, write: res.write, end: res.end }
  );
}

/** Records the original methods before they are wrapped. */
export function keepOriginalMethods(res: ServerResponse): RawResponseMethods {
  const raw = originalMethods(res);
  (res as WithRaw)[RAW_METHODS] = raw;
  return raw;
}

export function responseSink(
  res: ServerResponse,
  raw: RawResponseMethods = originalMethods(res),
): ClientSink {
  return {
    writeHead(status: number, headers: OutgoingHttpHeaders) {
      if (res.headersSent) return;
      for (const name of res.getHeaderNames()) {
        if (!(name in headers)) res.removeHeader(name);
      }
      for (const [name, value] of Object.entries(headers)) {
        if (value !== undefined) res.setHeader(name, value);
      }
      raw.writeHead.call(res, status);
    },
    write(chunk: string | Buffer) {
      return (raw.write as (chunk: string | Buffer) => boolean).call(res, chunk);
    },
    end() {
      if (!res.writableEnded) (raw.end as () => void).call(res);
    },
    onDrain(listener: () => void) {
      // A 'drain' the tap emits itself (to resume the proxy's pipe) must not count as the
      // socket draining: only trust it when the response no longer needs one.
      res.on('drain', () => {
        if (!res.writableNeedDrain) listener();
      });
    },
    get closed() {
      return res.destroyed || res.writableEnded;
    },
  };
}
