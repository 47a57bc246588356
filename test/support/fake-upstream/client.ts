/**
 * A minimal raw HTTP client for tests of (and against) the fake: plain requests, and SSE streams
 * parsed event by event as they arrive. Self-contained: no relay code.
 */
import http from 'node:http';
import type { JsonObject } from '../../../lib/protocol/types';

export interface RawAnswer {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
  /** The body parsed as JSON, when it is JSON. */
  json: unknown;
}

export interface SseEvent {
  /** The `event:` field. */
  event: string | undefined;
  /** The `data:` lines joined by `\n`. */
  data: string;
  json: JsonObject | undefined;
}

export interface RequestOptions {
  method?: string;
  headers?: Record<string, string>;
  /** An object is sent as JSON; a string or Buffer as is. */
  body?: unknown;
}

function send(url: string, options: RequestOptions): http.ClientRequest {
  const { method = 'POST', headers = {}, body } = options;
  let payload: Buffer | undefined;
  if (Buffer.isBuffer(body)) payload = body;
  else if (typeof body === 'string') payload = Buffer.from(body);
  else if (body !== undefined) payload = Buffer.from(JSON.stringify(body));
  const request = http.request(url, {
    method,
    agent: false,
    headers: {
      ...(payload ? { 'content-type': 'application/json', 'content-length': payload.length } : {}),
      ...headers,
    },
  });
  request.end(payload);
  return request;
}

/** One request; resolves with the whole answer. */
export function rawRequest(url: string, options: RequestOptions = {}): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const request = send(url, options);
    request.once('error', reject);
    request.once('response', (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.once('error', reject);
      response.once('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json: unknown;
        try {
          json = text === '' ? undefined : JSON.parse(text);
        } catch {
          json = undefined;
        }
        resolve({ status: response.statusCode ?? 0, headers: response.headers, text, json });
      });
    });
  });
}

/** Splits an SSE byte stream into events (lines end at CR, LF or CRLF only). */
export class SseReader {
  private buffer = '';
  private pendingCR = false;
  private event: string | undefined;
  private data: string[] = [];
  /** Comment lines seen (without the leading colon). */
  readonly comments: string[] = [];

  constructor(private readonly onEvent: (event: SseEvent) => void) {}

  push(chunk: string): void {
    for (const ch of chunk) {
      if (this.pendingCR) {
        this.pendingCR = false;
        if (ch === '\n') continue;
      }
      if (ch === '\r' || ch === '\n') {
        this.pendingCR = ch === '\r';
        this.line(this.buffer);
        this.buffer = '';
      } else {
        this.buffer += ch;
      }
    }
  }

  private line(line: string): void {
    if (line === '') {
      if (this.data.length > 0) {
        const data = this.data.join('\n');
        let json: JsonObject | undefined;
        try {
          json = JSON.parse(data) as JsonObject;
        } catch {
          json = undefined;
        }
        this.onEvent({ event: this.event, data, json });
      }
      this.event = undefined;
      this.data = [];
      return;
    }
    if (line.startsWith(':')) {
      this.comments.push(line.slice(1).trim());
      return;
    }
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'event') this.event = value;
    else if (field === 'data') this.data.push(value);
  }
}

export interface StreamAnswer {
  status: number;
  headers: http.IncomingHttpHeaders;
  events: SseEvent[];
  comments: string[];
  /** The raw body text received. */
  text: string;
  /** How the body ended: `end` (clean), `error`/`aborted` (reset or destroyed). */
  ending: 'end' | 'error' | 'aborted';
}

export interface StreamOptions extends RequestOptions {
  /** Called as each event is parsed. */
  onEvent?: (event: SseEvent, request: http.ClientRequest) => void;
}

/** Starts a streaming request; `done` resolves when the body ended, however it ended. */
export function openStream(
  url: string,
  options: StreamOptions = {},
): { request: http.ClientRequest; done: Promise<StreamAnswer> } {
  const request = send(url, options);
  const done = new Promise<StreamAnswer>((resolve, reject) => {
    request.once('error', (error) => {
      reject(error);
    });
    request.once('response', (response) => {
      const events: SseEvent[] = [];
      let text = '';
      const reader = new SseReader((event) => {
        events.push(event);
        options.onEvent?.(event, request);
      });
      response.setEncoding('utf8');
      let settled = false;
      const finish = (ending: StreamAnswer['ending']) => {
        if (settled) return;
        settled = true;
        resolve({
          status: response.statusCode ?? 0,
          headers: response.headers,
          events,
          comments: reader.comments,
          text,
          ending,
        });
      };
      response.on('data', (chunk: string) => {
        text += chunk;
        reader.push(chunk);
      });
      response.once('end', () => finish('end'));
      response.once('error', () => finish('error'));
      response.once('aborted', () => finish('aborted'));
      response.once('close', () => finish(response.complete ? 'end' : 'aborted'));
    });
  });
  // A test that aborts on purpose may never await `done`: never an unhandled rejection.
  done.catch(() => undefined);
  return { request, done };
}

/** Posts a body and collects the whole stream. */
export function postStream(url: string, options: StreamOptions = {}): Promise<StreamAnswer> {
  return openStream(url, options).done;
}
