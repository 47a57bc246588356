/**
 * A raw HTTP client for SSE responses that hands over each event the moment it is parsed, so tests
 * can observe streaming (not just the final body).
 */
import http from 'node:http';
import { SseParser } from '../../lib/protocol/sse';

export interface ReceivedEvent {
  event: string | undefined;
  data: string;
  json: Record<string, unknown> | undefined;
}

export interface SseExchange {
  status: number;
  headers: http.IncomingHttpHeaders;
  events: ReceivedEvent[];
  /** Resolves when the response ended (or was cut), with all events. */
  done: Promise<ReceivedEvent[]>;
  request: http.ClientRequest;
}

export function postSse(
  url: string,
  body: unknown,
  options: { headers?: Record<string, string>; onEvent?: (event: ReceivedEvent) => void } = {},
): Promise<SseExchange> {
  return new Promise((resolve, reject) => {
    const payload = Buffer.from(JSON.stringify(body));
    const request = http.request(url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'content-length': payload.length,
        ...options.headers,
      },
    });
    request.once('error', reject);
    request.once('response', (response) => {
      const events: ReceivedEvent[] = [];
      const parser = new SseParser({
        onMessage(message) {
          let json: Record<string, unknown> | undefined;
          try {
            json = JSON.parse(message.data) as Record<string, unknown>;
          } catch {
            json = undefined;
          }
          const received = { event: message.event, data: message.data, json };
          events.push(received);
          options.onEvent?.(received);
        },
      });
      const done = new Promise<ReceivedEvent[]>((finish) => {
        response.on('data', (chunk: Buffer) => parser.push(chunk));
        response.once('end', () => finish(events));
        response.once('close', () => finish(events));
        response.once('error', () => finish(events));
      });
      resolve({
        status: response.statusCode ?? 0,
        headers: response.headers,
        events,
        done,
        request,
      });
    });
    request.end(payload);
  });
}
