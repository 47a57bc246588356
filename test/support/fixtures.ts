/**
 * Loader for the captured Codex CLI traffic in `../shared/fixtures/codex-wire/*.jsonl` (format:
 * that directory's README.md). `loadFixture(name)` returns the typed records of one transcript;
 * the helpers below group them into client requests and server replies.
 */
import fs from 'node:fs';
import path from 'node:path';
import type {
  JsonObject,
  ResponseCreateBody,
  ResponseItem,
  StreamEvent,
} from '../../lib/protocol/types';

/** Where the transcripts live (`<repo>/../shared/fixtures/codex-wire`). */
export const FIXTURES_DIR = path.resolve(__dirname, '../../../shared/fixtures/codex-wire');

interface WireRecord extends JsonObject {
  /** Position in the transcript (1 = server_start). */
  seq: number;
  /** ISO time. */
  t: string;
}

/** The first line of every transcript. */
export interface ScenarioRecord extends JsonObject {
  kind: 'scenario';
  name: string;
  codex_version: string;
  transport: string;
  driver: string;
  mock_argv: string[];
  notes: string;
  config_toml: string;
  result: JsonObject;
  codex_exec_events: unknown[];
  codex_log_excerpt: string[];
  sanitizer?: string;
}

export interface ServerStartRecord extends WireRecord {
  kind: 'server_start';
  port: number;
  scenario: string;
  prefix: string;
  argv: string[];
}

export interface HttpRequestRecord extends WireRecord {
  kind: 'http_request';
  method: string;
  path: string;
  headers: Record<string, string>;
  body_bytes: number;
  body: ResponseCreateBody;
}

/** A non-200 HTTP answer. */
export interface HttpResponseRecord extends WireRecord {
  kind: 'http_response';
  status: number;
  headers: Record<string, string>;
  body: unknown;
}

/** A 200 SSE answer, written once the stream ended: every `data:` object in order. */
export interface SseResponseRecord extends WireRecord {
  kind: 'sse_response';
  status: number;
  response_id: string;
  reply_kind: string;
  dropped_before_completed: boolean;
  events: StreamEvent[];
}

export interface NoteRecord extends WireRecord {
  kind: 'note';
  note: string;
}

export interface WsUpgradeRequestRecord extends WireRecord {
  kind: 'ws_upgrade_request';
  path: string;
  headers: Record<string, string>;
}

export interface WsUpgradeRefusedRecord extends WireRecord {
  kind: 'ws_upgrade_refused';
  status: number;
  body: unknown;
}

export interface WsOpenRecord extends WireRecord {
  kind: 'ws_open';
  conn: number;
  extensions: string;
}

/** One client text frame (`frame` is the parsed JSON: `{"type":"response.create", …body}`). */
export interface WsInRecord extends WireRecord {
  kind: 'ws_in';
  conn: number;
  binary: boolean;
  bytes: number;
  frame: ResponseCreateBody & { type: string };
}

/** The mock's decision for the frame before it. */
export interface WsReplyPlanRecord extends WireRecord {
  kind: 'ws_reply_plan';
  conn: number;
  response_id: string;
  reply_kind: string;
  previous_response_id: string | null;
  input_items: number;
  dropped_before_completed: boolean;
}

/** One server text frame: a stream event, or a (wrapped or unwrapped) error frame. */
export interface WsOutRecord extends WireRecord {
  kind: 'ws_out';
  conn: number;
  frame: StreamEvent;
}

export interface WsNoteRecord extends WireRecord {
  kind: 'ws_note';
  conn: number;
  note: string;
}

export interface WsCloseRecord extends WireRecord {
  kind: 'ws_close';
  conn: number;
  code: number;
  reason: string;
}

export type FixtureRecord =
  | ScenarioRecord
  | ServerStartRecord
  | HttpRequestRecord
  | HttpResponseRecord
  | SseResponseRecord
  | NoteRecord
  | WsUpgradeRequestRecord
  | WsUpgradeRefusedRecord
  | WsOpenRecord
  | WsInRecord
  | WsReplyPlanRecord
  | WsOutRecord
  | WsNoteRecord
  | WsCloseRecord;

/** The names of every transcript (without `.jsonl`), sorted. */
export function fixtureNames(): string[] {
  return fs
    .readdirSync(FIXTURES_DIR)
    .filter((file) => file.endsWith('.jsonl'))
    .map((file) => file.slice(0, -'.jsonl'.length))
    .sort();
}

/**
 * The records of one transcript, e.g. `loadFixture('ws-tool-loop')` (`.jsonl` optional). Each
 * call parses the file again, so callers may mutate what they get.
 */
export function loadFixture(name: string): FixtureRecord[] {
  const file = path.join(FIXTURES_DIR, name.endsWith('.jsonl') ? name : `${name}.jsonl`);
  return fs
    .readFileSync(file, 'utf8')
    .split(/\r?\n/)
    .filter((line) => line.trim().length > 0)
    .map((line) => JSON.parse(line) as FixtureRecord);
}

/** The header record of a transcript. */
export function scenarioOf(records: readonly FixtureRecord[]): ScenarioRecord {
  const header = records.find((r): r is ScenarioRecord => r.kind === 'scenario');
  if (header === undefined) throw new Error('fixture has no scenario record');
  return header;
}

/** One model call: the client's request and what the server answered. */
export interface FixtureExchange {
  transport: 'http' | 'ws';
  /** The WebSocket connection number (WS only). */
  conn?: number;
  /** `seq` of the request record. */
  seq: number;
  /** The request body (for WS, the frame, `type: "response.create"` included). */
  request: ResponseCreateBody;
  /** The response id the mock planned or answered with, if any. */
  responseId?: string;
  /** The stream events (SSE `data:` objects, or WS frames), in order; empty for an HTTP error. */
  events: StreamEvent[];
  /** A non-200 HTTP answer. */
  httpError?: HttpResponseRecord;
  /** The mock cut the stream before `response.completed`. */
  dropped: boolean;
}

/**
 * The transcript as a list of exchanges, in request order: each `http_request` with the
 * `sse_response` / `http_response` after it; each `ws_in` frame with the `ws_reply_plan` and
 * `ws_out` frames of the same connection until its next `ws_in`.
 */
export function exchangesOf(records: readonly FixtureRecord[]): FixtureExchange[] {
  const out: FixtureExchange[] = [];
  let http: FixtureExchange | undefined;
  const ws = new Map<number, FixtureExchange>();
  for (const record of records) {
    switch (record.kind) {
      case 'http_request':
        http = {
          transport: 'http',
          seq: record.seq,
          request: record.body,
          events: [],
          dropped: false,
        };
        out.push(http);
        break;
      case 'sse_response':
        if (http !== undefined) {
          http.events.push(...record.events);
          http.responseId = record.response_id;
          http.dropped = record.dropped_before_completed;
        }
        break;
      case 'http_response':
        if (http !== undefined) http.httpError = record;
        break;
      case 'ws_in': {
        const exchange: FixtureExchange = {
          transport: 'ws',
          conn: record.conn,
          seq: record.seq,
          request: record.frame,
          events: [],
          dropped: false,
        };
        ws.set(record.conn, exchange);
        out.push(exchange);
        break;
      }
      case 'ws_reply_plan': {
        const exchange = ws.get(record.conn);
        if (exchange !== undefined) {
          exchange.responseId = record.response_id;
          exchange.dropped = record.dropped_before_completed;
        }
        break;
      }
      case 'ws_out':
        ws.get(record.conn)?.events.push(record.frame);
        break;
      default:
        break;
    }
  }
  return out;
}

/** The request bodies of a transcript (HTTP bodies and WS `response.create` frames), in order. */
export function clientRequests(records: readonly FixtureRecord[]): ResponseCreateBody[] {
  return exchangesOf(records).map((exchange) => exchange.request);
}

/** The `input` of a request as a list (Codex always sends a list). */
export function inputOf(request: ResponseCreateBody): ResponseItem[] {
  const input = request.input;
  if (input === undefined) return [];
  return typeof input === 'string' ? [{ type: 'message', role: 'user', content: input }] : input;
}

/** The items of the `response.output_item.done` events of a stream, in arrival order. */
export function doneItemsOf(events: readonly StreamEvent[]): ResponseItem[] {
  const out: ResponseItem[] = [];
  for (const event of events) {
    if (
      event.type === 'response.output_item.done' &&
      typeof event.item === 'object' &&
      event.item !== null
    ) {
      out.push(event.item as ResponseItem);
    }
  }
  return out;
}
