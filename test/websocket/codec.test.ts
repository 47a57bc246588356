/**
 * The pure parts of the bridge: the frame codec (client messages in, wrapped errors and rebuilt
 * events out), session keys, the headers of a turn, the prewarm answer and the option checks.
 */
import fc from 'fast-check';
import type { IncomingMessage } from 'node:http';
import { Socket } from 'node:net';
import { relayError } from '../../lib/protocol/relay-errors';
import type { JsonObject, ResponseObject } from '../../lib/protocol/types';
import { turnHeaders } from '../../lib/websocket/connection';
import {
  errorFrameText,
  errorFromHttpAnswer,
  eventsFromResponse,
  parseClientMessage,
  turnBody,
} from '../../lib/websocket/frames';
import {
  DEFAULT_MAX_PAYLOAD,
  normalizePath,
  resolveBridgeOptions,
} from '../../lib/websocket/options';
import { prewarmEvents, prewarmResponse } from '../../lib/websocket/prewarm';
import { bridgeSession, connectionSessionKey } from '../../lib/websocket/session';

function request(headers: Record<string, string>, remote = '10.0.0.7'): IncomingMessage {
  const socket = new Socket();
  Object.defineProperty(socket, 'remoteAddress', { value: remote });
  return { headers, socket } as unknown as IncomingMessage;
}

describe('client messages', () => {
  it('a response.create becomes the HTTP body: no type, stream true, generate:true dropped', () => {
    const message = parseClientMessage(
      Buffer.from(
        JSON.stringify({ type: 'response.create', model: 'm', input: 'x', generate: true }),
      ),
      false,
    );
    expect(message).toEqual({
      kind: 'create',
      prewarm: false,
      body: { model: 'm', input: 'x', stream: true },
    });
  });

  it('a prewarm keeps generate:false (an upstream never takes it for a generating request)', () => {
    const message = parseClientMessage(
      Buffer.from(
        '{"type":"response.create","model":"m","input":[],"stream":true,"generate":false}',
      ),
      false,
    );
    expect(message).toMatchObject({ kind: 'create', prewarm: true, body: { generate: false } });
  });

  it('keeps every other field as the client sent it (never adds what it omitted)', () => {
    const frame = {
      type: 'response.create',
      model: 'gpt-5.5',
      stream: true,
      store: false,
      previous_response_id: 'resp_1',
      include: ['reasoning.encrypted_content'],
      client_metadata: { 'x-codex-ws-stream-request-start-ms': '1' },
    };
    const { type: _type, ...rest } = frame;
    expect(turnBody(frame)).toEqual(rest);
  });

  it('fragments (Buffer[]) and ArrayBuffers are read as one text', () => {
    const text = '{"type":"response.processed","response_id":"resp_1"}';
    const bytes = Buffer.from(text);
    expect(parseClientMessage([bytes.subarray(0, 10), bytes.subarray(10)], false)).toEqual({
      kind: 'ignored',
      type: 'response.processed',
    });
    const copy = new Uint8Array(bytes).buffer;
    expect(parseClientMessage(copy, false).kind).toBe('ignored');
  });

  it('never throws, whatever arrives; anything not understood is a 400 relay error', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 512 }), fc.boolean(), (bytes, binary) => {
        const message = parseClientMessage(Buffer.from(bytes), binary);
        if (message.kind === 'invalid') expect(message.error.status).toBe(400);
      }),
    );
    fc.assert(
      fc.property(fc.json(), (json) => {
        const message = parseClientMessage(Buffer.from(json), false);
        expect(['create', 'ignored', 'invalid']).toContain(message.kind);
      }),
    );
  });
});

describe('server messages', () => {
  it('errors are wrapped: type, status, the four fields, and only the retry headers', () => {
    const frame = JSON.parse(
      errorFrameText(
        429,
        { message: 'slow down', type: 'requests', param: null, code: 'rate_limit_exceeded' },
        { 'retry-after': '2', 'set-cookie': 'x=1', 'x-ratelimit-reset-requests': '1s' },
      ),
    );
    expect(frame).toEqual({
      type: 'error',
      status: 429,
      error: { type: 'requests', code: 'rate_limit_exceeded', message: 'slow down', param: null },
      headers: { 'retry-after': '2', 'x-ratelimit-reset-requests': '1s' },
    });
  });

  it('an HTTP error body: its envelope verbatim, else one the relay writes', () => {
    const envelope = relayError('previous_response_not_found', { id: 'resp_1' }).toEnvelope();
    expect(
      errorFromHttpAnswer(400, Buffer.from(JSON.stringify(envelope)), 'application/json'),
    ).toEqual(envelope.error);
    expect(
      errorFromHttpAnswer(502, Buffer.from('<html><title>Bad gateway</title></html>'), 'text/html'),
    ).toMatchObject({
      type: 'server_error',
      message: expect.stringContaining('502'),
    });
    expect(errorFromHttpAnswer(500, Buffer.alloc(0), undefined).message).toContain('500');
  });

  it('a whole JSON Response becomes created, one output_item.done per item, the terminal', () => {
    const item = { type: 'message', id: 'msg_1', role: 'assistant', content: [] };
    const response: ResponseObject = {
      id: 'resp_1',
      object: 'response',
      status: 'incomplete',
      output: [item],
    };
    expect(
      eventsFromResponse(response)?.map((event) => [event.type, event.sequence_number]),
    ).toEqual([
      ['response.created', 0],
      ['response.output_item.done', 1],
      ['response.incomplete', 2],
    ]);
    expect(eventsFromResponse({ ...response, status: 'queued' })).toBeUndefined();
  });

  it('a JSON Response whose status names an Object property is not over, like any unknown one', () => {
    // The turn then answers upstream_invalid_response instead of sending a non-string type.
    for (const status of ['constructor', '__proto__', 'toString', 'hasOwnProperty']) {
      const response = JSON.parse(
        JSON.stringify({ id: 'resp_1', object: 'response', status, output: [] }),
      ) as ResponseObject;
      expect({ status, events: eventsFromResponse(response) }).toEqual({
        status,
        events: undefined,
      });
    }
    for (const status of ['completed', 'failed', 'incomplete']) {
      const events = eventsFromResponse({ id: 'resp_1', object: 'response', status, output: [] });
      expect(events?.at(-1)?.type).toBe(`response.${status}`);
    }
  });
});

describe('sessions and headers', () => {
  it('the session key is the client’s own session header, else the connection', () => {
    expect(connectionSessionKey(request({ 'session-id': 'thread-1' }), 'c1')).toBe('thread-1');
    expect(connectionSessionKey(request({ 'x-codex-turn-state': 'ts-abc' }), 'c1')).toBe('ts-abc');
    expect(connectionSessionKey(request({}), 'c1')).toBe('ws:c1');
    expect(connectionSessionKey(request({ 'session-id': 'x'.repeat(600) }), 'c1')).toBe('ws:c1');
  });

  it('bridgeSession() reads the bridge header first, then the Codex session headers', () => {
    const session = bridgeSession();
    expect(session(request({ 'x-relay-session': 'ws:c1', 'session-id': 's' }))).toBe('ws:c1');
    expect(session(request({ 'session-id': 's' }))).toBe('s');
    expect(session(request({}))).toBeUndefined();
  });

  it('a turn carries the client’s headers minus the handshake ones, plus session and address', () => {
    const headers = turnHeaders(
      request({
        authorization: 'Bearer sk-1',
        host: 'gw.example',
        connection: 'Upgrade',
        upgrade: 'websocket',
        'sec-websocket-key': 'k',
        'sec-websocket-extensions': 'permessage-deflate',
        'openai-beta': 'responses_websockets=2026-02-06',
        'x-request-id': 'req_same_for_every_turn',
        'x-relay-session': 'forged',
        'x-forwarded-for': '203.0.113.9',
        originator: 'codex_exec',
      }),
      'thread-1',
    );
    expect(headers).toEqual({
      authorization: 'Bearer sk-1',
      host: 'gw.example',
      originator: 'codex_exec',
      'x-forwarded-for': '203.0.113.9, 10.0.0.7',
      'content-type': 'application/json',
      accept: 'text/event-stream',
      'accept-encoding': 'identity',
      'x-relay-session': 'thread-1',
    });
  });
});

describe('the prewarm answer', () => {
  it('a completed Response with a fresh id, no output, echoing the request', () => {
    const body: JsonObject = {
      model: 'gpt-5.5',
      input: [],
      generate: false,
      store: false,
      tool_choice: 'auto',
      parallel_tool_calls: true,
      tools: [{ type: 'function', name: 'big' }],
    };
    const response = prewarmResponse(body, 'resp_x', 1_700_000_000_000);
    expect(response).toMatchObject({
      id: 'resp_x',
      object: 'response',
      status: 'completed',
      created_at: 1_700_000_000,
      model: 'gpt-5.5',
      output: [],
      previous_response_id: null,
      store: false,
      tool_choice: 'auto',
      parallel_tool_calls: true,
    });
    expect(response).not.toHaveProperty('tools');
    expect(prewarmEvents(response).map((event) => event.type)).toEqual([
      'response.created',
      'response.in_progress',
      'response.completed',
    ]);
    expect(prewarmEvents(response)[0]?.response).toMatchObject({
      status: 'in_progress',
      usage: null,
    });
  });
});

describe('options', () => {
  it('defaults', () => {
    const options = resolveBridgeOptions();
    expect([...options.paths]).toEqual(['/v1/responses', '/responses']);
    expect(options.maxPayload).toBe(DEFAULT_MAX_PAYLOAD);
    expect(options.perMessageDeflate).toBe(true);
  });

  it('paths are normalized', () => {
    expect(normalizePath('/v1/responses/?x=1')).toBe('/v1/responses');
    expect(normalizePath('/')).toBe('/');
    expect([...resolveBridgeOptions({ path: '/a/' }).paths]).toEqual(['/a']);
  });

  it.each([
    [{ path: [] }],
    [{ path: ['relative'] }],
    [{ enabled: 'yes' }],
    [{ authenticate: true }],
    [{ route: 'no-slash' }],
    [{ origin: 'ftp://x' }],
    [{ origin: 'http://x', handler: () => undefined }],
    [{ highWaterMark: -1 }],
    [{ pingIntervalMs: Number.NaN }],
  ])('refuses %j', (options) => {
    expect(() => resolveBridgeOptions(options as never)).toThrow(TypeError);
  });
});

describe('a response.create nested too deeply', () => {
  it('is refused with an invalid_json error, never serialised', () => {
    const deep = '['.repeat(5000) + '1' + ']'.repeat(5000);
    const message = parseClientMessage(
      Buffer.from(`{"type":"response.create","input":${deep}}`),
      false,
    );
    expect(message.kind).toBe('invalid');
    if (message.kind === 'invalid') expect(message.error.message).toContain('nested too deeply');
  });
});
