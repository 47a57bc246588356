/**
 * Public shapes of the fake Responses API upstream: its options, the scripted behaviours, the
 * request log and the stored responses. Everything a behaviour holds is plain JSON, so a test can
 * script a request through the `x-fake-script` header as well as through `upstream.script()`.
 */
import type { JsonObject, ResponseItem, ResponseObject } from '../../../lib/protocol/types';

/**
 * `stateful`: api.openai.com-like (stores responses, honours `previous_response_id`, answers
 * `stream: false` with JSON). `stateless`: Codex-backend-like (`/backend-api/codex/responses`):
 * requires `stream: true` and `store: false`, rejects `previous_response_id` and a list of
 * parameters with FastAPI `{"detail": …}` bodies, persists nothing.
 */
export type FakeMode = 'stateful' | 'stateless';

export interface FakeUpstreamOptions {
  /** Default `'stateful'`. */
  mode?: FakeMode;
  /**
   * An "account" label. Encrypted reasoning content minted by one account is only accepted by a
   * fake with the same name (unnamed fakes are each their own account). Never part of any id.
   */
  name?: string;
  /**
   * `true`: any non-empty bearer token; a string: exactly that token. Otherwise 401 with
   * OpenAI's envelope (`invalid_api_key` for a wrong token).
   */
  requireAuth?: boolean | string;
  /** `response.completed` carries `output: []` (what the Codex backend does). Default false. */
  sparseCompletion?: boolean;
  /** Default `127.0.0.1`. */
  host?: string;
  /** Default 0 (a free port). */
  port?: number;
}

// ---------------------------------------------------------------------------------------------
// Behaviours

/** One call the model "makes" in a `tool_calls` answer. */
export interface ToolCallSpec {
  /** Default `'function'`. */
  type?: 'function' | 'custom';
  name: string;
  /** Function arguments (a JSON string). Default `'{}'`. */
  arguments?: string;
  /** Custom tool input (free text). Default `''`. */
  input?: string;
  /** Default: a fresh `call_…`. */
  call_id?: string;
}

/** The in-stream error's payload. */
export interface StreamErrorSpec {
  type: string;
  code: string | null;
  message: string;
  param?: string | null;
}

/** Answers one `POST …/responses`. Wrappers (`then`) default to `{ kind: 'auto' }`. */
export type Behaviour =
  /**
   * Like the capture mock: a conversation ending with a user/developer message and a request
   * offering a function tool gets one call to it (`exec_command` → `{"cmd":"echo hi"}`); one
   * ending with a tool output gets a final text; anything else gets a text.
   */
  | { kind: 'auto'; reasoning?: boolean }
  /** One assistant message whose text is streamed as `chunks` deltas (default 3). */
  | { kind: 'text'; text: string; chunks?: number; reasoning?: boolean }
  /** Parallel calls (one output item each), optionally after an assistant message `text`. */
  | { kind: 'tool_calls'; calls: ToolCallSpec[]; text?: string; reasoning?: boolean }
  /** A non-2xx answer; `body` default: an OpenAI envelope fitting the status. */
  | {
      kind: 'http_error';
      status: number;
      body?: string | JsonObject;
      contentType?: string;
      headers?: Record<string, string>;
    }
  /** A CDN-like HTML error page. */
  | { kind: 'html_error'; status: number; headers?: Record<string, string> }
  /** An empty body. */
  | { kind: 'empty_error'; status: number; headers?: Record<string, string> }
  /** A FastAPI body `{"detail": …}`. */
  | {
      kind: 'detail_error';
      status: number;
      detail: string | unknown[];
      headers?: Record<string, string>;
    }
  /** Streams `then` and ends (`eof`, default) or resets (`reset`) the socket after N events. */
  | { kind: 'cut'; afterEvents: number; mode?: 'eof' | 'reset'; then?: Behaviour }
  /**
   * Streams N events of `then`, then an `error` event (shape default `nested`, the API's own),
   * then `response.failed` when `thenFailed`, and ends the stream.
   */
  | {
      kind: 'stream_error';
      afterEvents: number;
      error: StreamErrorSpec;
      shape?: 'nested' | 'flat' | 'hybrid';
      thenFailed?: boolean;
      then?: Behaviour;
    }
  /** Streams N events of `then` (default 2: created + in_progress), then `response.failed`. */
  | {
      kind: 'response_failed';
      code: string;
      message: string;
      afterEvents?: number;
      then?: Behaviour;
    }
  /** Streams `then` but ends with `response.incomplete`. */
  | { kind: 'incomplete'; reason?: 'max_output_tokens' | 'content_filter'; then?: Behaviour }
  /** Waits `delayMs` before each event (and before an error answer). */
  | { kind: 'slow'; delayMs: number; then?: Behaviour }
  /** Sends N events, then nothing: the socket stays open until the client leaves or close(). */
  | { kind: 'stall'; afterEvents: number; then?: Behaviour }
  /**
   * Function/custom call items with odd ids, as some backends send them: `call_id` (default: the
   * item id equals the `call_…` call id), `missing` (no `id`; deltas carry the call id as
   * `item_id`), `inconsistent` (`fc_…` when added, the call id when done).
   * Default `then`: one call to the request's function tool.
   */
  | { kind: 'odd_ids'; style?: 'call_id' | 'missing' | 'inconsistent'; then?: Behaviour }
  /**
   * Each event is released by the test: `upstream.gate(name)` returns the controller. Without
   * `gate`, the stream uses the controller made by `upstream.gate()` (unnamed) if one is pending.
   */
  | { kind: 'lockstep'; gate?: string; then?: Behaviour }
  /** `response.completed` carries `output: []`. */
  | { kind: 'sparse'; then?: Behaviour }
  /** Keeps the socket open after the terminal event (until the client leaves or close()). */
  | { kind: 'hold_open'; then?: Behaviour }
  /** Writes `raw` bytes (e.g. `': ping\n\n'`) before the event at index `at` (or at the end). */
  | { kind: 'inject'; at: number; raw: string; then?: Behaviour };

export type BehaviourKind = Behaviour['kind'];

// ---------------------------------------------------------------------------------------------
// Lockstep

/** Releases the events of one stream one by one. */
export interface Gate {
  /** The name given to `upstream.gate(name)`, if any. */
  readonly name: string | undefined;
  /** Events written so far by the stream bound to this gate. */
  readonly sent: number;
  /** Whether a stream is bound to this gate yet. */
  readonly bound: boolean;
  /** Lets `n` (default 1) more events be written. */
  release(n?: number): void;
  /** `release(1)`. */
  next(): void;
  /** Lets every remaining event be written. */
  open(): void;
  /** Resolves once at least `n` events were written (or the stream ended). */
  waitForSent(n: number): Promise<void>;
  /** Resolves once a stream is bound to this gate. */
  waitForBound(): Promise<void>;
}

export interface GateOptions {
  /** Events allowed before the first `release()`. Default 1 (event 0 goes at once). */
  initial?: number;
}

// ---------------------------------------------------------------------------------------------
// Request log and store

export interface RecordedRequest {
  /** Position in `upstream.requests` (0-based). */
  index: number;
  method: string;
  /** The path with its query string. */
  path: string;
  headers: Record<string, string | string[] | undefined>;
  /** The parsed JSON body; `undefined` when there was none or it was not JSON. */
  body: unknown;
  rawBody: Buffer;
  /** `Date.now()` when the body had been read. */
  at: number;
  /** 1 + the number of earlier requests with the same method, path and bytes (retries count up). */
  attempt: number;
  /**
   * What the fake did. `http:<status>` for JSON and scripted answers, `http:<status>:<code>` for
   * rule rejections with a code (`http:400:previous_response_not_found`), `http:200:<status>`
   * for a `stream: false` Response; `stream:completed|failed|incomplete|error|cut:eof|cut:reset|
   * stalled` for streams (`…:held_open` with `hold_open`); `cut:eof|cut:reset|stalled` for a
   * non-stream request cut or stalled; `client_closed` when the client left before the fake was
   * done; `server_closed` when close() cut a live exchange.
   */
  outcome?: string;
  /** The HTTP status the fake answered with. */
  status?: number;
  /** The `x-request-id` the fake answered with. */
  requestId: string;
  /** The id of the response created for this request, if any. */
  responseId?: string;
  /** The behaviour that answered it (after defaults), for POST …/responses. */
  behaviour?: Behaviour;
  /** True when the client closed the socket before the fake finished its answer. */
  socketClosedEarly: boolean;
  /** Resolves when the exchange is over (answer finished, socket closed, or fake closed). */
  closed: Promise<void>;
}

export interface StoredFakeResponse {
  id: string;
  /** The request body as received. */
  request: JsonObject;
  /** The request's `input` as received, as a list (a string became one user message). */
  input: ResponseItem[];
  /** Everything before this response's output: the ancestors' context and output, then `input`. */
  context: ResponseItem[];
  /** The output items as the stream sent them in `response.output_item.done`. */
  output: ResponseItem[];
  /** The Response object as GET returns it. */
  response: ResponseObject;
  createdAt: number;
}

export interface FakeUpstream {
  /** `http://<host>:<port>`; the API is under `/v1` (also `/responses` and `/backend-api/codex/responses`). */
  url: string;
  readonly mode: FakeMode;
  requests: RecordedRequest[];
  /** Queues behaviours: each next POST …/responses takes one; an empty queue means the default. */
  script(...behaviours: Behaviour[]): void;
  /** The behaviour used when the queue is empty. Initially `{ kind: 'auto' }`. */
  setDefault(behaviour: Behaviour): void;
  /** Behaviours still queued. */
  readonly pending: number;
  responses: ReadonlyMap<string, StoredFakeResponse>;
  /** Currently open sockets. */
  readonly connections: number;
  /** Resolves once `requests.length >= n`. */
  waitForRequests(n: number): Promise<void>;
  /** A lockstep controller: unnamed binds to the next stream; named binds to `lockstep` with that name. */
  gate(name?: string, options?: GateOptions): Gate;
  /** Closes every socket and the server; releases stalls and gates. Never hangs. */
  close(): Promise<void>;
}
