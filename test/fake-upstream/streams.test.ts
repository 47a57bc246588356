/**
 * Each behaviour of the fake produces what it promises, and every streamed answer is a
 * well-formed Responses stream (responses-contract §1.1, §1.3).
 */
import type { JsonObject } from '../../lib/protocol/types';
import { openStream } from '../support/fake-upstream/client';
import { checkStream } from '../support/fake-upstream/stream-check';
import { AUTO_TEXT, SCRIPT_HEADER } from '../support/fake-upstream';
import {
  EXEC_COMMAND_TOOL,
  errorOf,
  eventsOf,
  lastResponse,
  post,
  stream,
  typesOf,
  useFakes,
} from '../support/fake-upstream/testing';

const start = useFakes();

const TEXT_TURN = [
  'response.created',
  'response.in_progress',
  'response.output_item.added',
  'response.content_part.added',
  'response.output_text.delta',
  'response.output_text.delta',
  'response.output_text.delta',
  'response.output_text.done',
  'response.content_part.done',
  'response.output_item.done',
  'response.completed',
];

describe('a text answer', () => {
  it('is framed as `event: <type>` + `data: <json>` and follows the API order exactly', async () => {
    const fake = await start();
    fake.script({ kind: 'text', text: 'Hello there, general Kenobi.' });
    const answer = await stream(fake, { model: 'gpt-5.5', input: 'hi' });
    expect(answer.status).toBe(200);
    expect(answer.headers['content-type']).toBe('text/event-stream; charset=utf-8');
    expect(answer.headers['x-request-id']).toMatch(/^req_[0-9a-f]{32}$/);
    expect(fake.requests[0]?.requestId).toBe(answer.headers['x-request-id']);
    expect(typesOf(answer)).toEqual(TEXT_TURN);
    for (const event of answer.events) expect(event.event).toBe(event.json?.type);
    expect(answer.text).toMatch(
      /^event: response\.created\ndata: \{.*\}\n\nevent: response\.in_progress\n/,
    );
    expect(checkStream(eventsOf(answer))).toEqual([]);
    expect(answer.ending).toBe('end');
  });

  it('streams its text as the requested number of deltas, and the pieces add up', async () => {
    const fake = await start();
    const text = 'line one\u2028line two\u2029 and an emoji 🎉 at the end';
    fake.script({ kind: 'text', text, chunks: 5 });
    const events = eventsOf(await stream(fake, { model: 'm', input: 'hi' }));
    const deltas = events.filter((e) => e.type === 'response.output_text.delta');
    expect(deltas).toHaveLength(5);
    expect(deltas.map((d) => d.delta).join('')).toBe(text);
    expect(events.find((e) => e.type === 'response.output_text.done')?.text).toBe(text);
    const completed = events[events.length - 1]?.response as JsonObject;
    expect(completed).toMatchObject({
      object: 'response',
      status: 'completed',
      error: null,
      output: [
        {
          type: 'message',
          role: 'assistant',
          status: 'completed',
          content: [{ type: 'output_text', text, annotations: [] }],
        },
      ],
    });
    expect(completed.usage).toMatchObject({
      input_tokens: expect.any(Number),
      output_tokens: expect.any(Number),
      total_tokens: expect.any(Number),
      input_tokens_details: { cached_tokens: 0 },
      output_tokens_details: { reasoning_tokens: 0 },
    });
    expect(completed.completed_at).toEqual(expect.any(Number));
  });

  it('uses the API id shapes, unique across fakes', async () => {
    const [a, b] = await Promise.all([start({ name: 'acct' }), start({ name: 'acct' })]);
    const ids = await Promise.all(
      [a, b].map(async (fake) => lastResponse(await stream(fake, { model: 'm', input: 'hi' }))),
    );
    for (const response of ids) {
      expect(response.id).toMatch(/^resp_[0-9a-f]{48}$/);
      expect((response.output as JsonObject[])[0]?.id).toMatch(/^msg_[0-9a-f]{48}$/);
    }
    expect(ids[0]?.id).not.toBe(ids[1]?.id);
  });

  it('echoes the request parameters in the Response object', async () => {
    const fake = await start();
    const created = eventsOf(
      await stream(fake, {
        model: 'gpt-5.5',
        input: 'hi',
        instructions: 'Be brief.',
        tools: [EXEC_COMMAND_TOOL],
        tool_choice: 'none',
        reasoning: { effort: 'low' },
        prompt_cache_key: 'k1',
        metadata: { a: 'b' },
      }),
    )[0]?.response;
    expect(created).toMatchObject({
      status: 'in_progress',
      output: [],
      usage: null,
      model: 'gpt-5.5',
      instructions: 'Be brief.',
      tools: [EXEC_COMMAND_TOOL],
      tool_choice: 'none',
      reasoning: { effort: 'low', summary: null },
      prompt_cache_key: 'k1',
      metadata: { a: 'b' },
      store: true,
      previous_response_id: null,
    });
  });

  it('puts obfuscation padding on deltas unless stream_options.include_obfuscation is false', async () => {
    const fake = await start();
    const padded = eventsOf(await stream(fake, { model: 'm', input: 'hi' }));
    const plain = eventsOf(
      await stream(fake, {
        model: 'm',
        input: 'hi',
        stream_options: { include_obfuscation: false },
      }),
    );
    const deltas = (events: JsonObject[]) =>
      events.filter((e) => String(e.type).endsWith('.delta'));
    expect(deltas(padded).every((e) => typeof e.obfuscation === 'string')).toBe(true);
    expect(deltas(plain).some((e) => 'obfuscation' in e)).toBe(false);
  });

  it('puts a reasoning item first, with encrypted_content only when it was included', async () => {
    const fake = await start();
    fake.script(
      { kind: 'text', text: 'ok', reasoning: true },
      { kind: 'text', text: 'ok', reasoning: true },
    );
    const withContent = await stream(fake, {
      model: 'm',
      input: 'hi',
      include: ['reasoning.encrypted_content'],
    });
    const without = await stream(fake, { model: 'm', input: 'hi' });
    expect(checkStream(eventsOf(withContent))).toEqual([]);
    expect(typesOf(withContent).slice(2, 9)).toEqual([
      'response.output_item.added',
      'response.reasoning_summary_part.added',
      'response.reasoning_summary_text.delta',
      'response.reasoning_summary_text.delta',
      'response.reasoning_summary_text.done',
      'response.reasoning_summary_part.done',
      'response.output_item.done',
    ]);
    const [reasoning, message] = lastResponse(withContent).output as JsonObject[];
    expect(reasoning).toMatchObject({
      id: expect.stringMatching(/^rs_/),
      type: 'reasoning',
      summary: [{ type: 'summary_text', text: expect.any(String) }],
      encrypted_content: expect.stringMatching(/^gAAAAA/),
    });
    expect(message?.type).toBe('message');
    expect((lastResponse(without).output as JsonObject[])[0]).not.toHaveProperty(
      'encrypted_content',
    );
  });
});

describe('a tool-call answer', () => {
  it('sends parallel function and custom calls with fc_/ctc_ ids and call_ call ids', async () => {
    const fake = await start();
    fake.script({
      kind: 'tool_calls',
      calls: [
        { name: 'get_weather', arguments: '{"city":"Paris"}' },
        { name: 'get_weather', arguments: '{"city":"Oslo"}' },
        { type: 'custom', name: 'apply_patch', input: '*** Begin Patch\n*** End Patch\n' },
      ],
    });
    const answer = await stream(fake, { model: 'm', input: 'weather?' });
    const events = eventsOf(answer);
    expect(checkStream(events)).toEqual([]);
    const output = lastResponse(answer).output as JsonObject[];
    expect(output).toEqual([
      {
        id: expect.stringMatching(/^fc_[0-9a-f]{48}$/),
        type: 'function_call',
        status: 'completed',
        arguments: '{"city":"Paris"}',
        call_id: expect.stringMatching(/^call_[A-Za-z0-9]{24}$/),
        name: 'get_weather',
      },
      expect.objectContaining({ type: 'function_call', arguments: '{"city":"Oslo"}' }),
      {
        id: expect.stringMatching(/^ctc_/),
        type: 'custom_tool_call',
        call_id: expect.stringMatching(/^call_/),
        input: '*** Begin Patch\n*** End Patch\n',
        name: 'apply_patch',
      },
    ]);
    expect(new Set(output.map((item) => item.call_id)).size).toBe(3);
    const added = events.find((e) => e.type === 'response.output_item.added')?.item;
    expect(added).toMatchObject({ type: 'function_call', status: 'in_progress', arguments: '' });
    const argDeltas = events.filter(
      (e) => e.type === 'response.function_call_arguments.delta' && e.output_index === 0,
    );
    expect(argDeltas.map((e) => e.delta).join('')).toBe('{"city":"Paris"}');
    expect(events.find((e) => e.type === 'response.function_call_arguments.done')).toMatchObject({
      name: 'get_weather',
      arguments: '{"city":"Paris"}',
    });
    expect(events.find((e) => e.type === 'response.custom_tool_call_input.done')).toMatchObject({
      output_index: 2,
      input: '*** Begin Patch\n*** End Patch\n',
    });
  });

  it('can put an assistant message before the calls, and keeps a given call_id', async () => {
    const fake = await start();
    fake.script({
      kind: 'tool_calls',
      text: 'Let me check.',
      calls: [{ name: 'f', call_id: 'call_fixed' }],
    });
    const output = lastResponse(await stream(fake, { model: 'm', input: 'x' }))
      .output as JsonObject[];
    expect(output.map((item) => item.type)).toEqual(['message', 'function_call']);
    expect(output[1]).toMatchObject({ call_id: 'call_fixed', arguments: '{}' });
  });
});

describe('the auto behaviour', () => {
  it('calls the shell tool after a user message, like the capture mock', async () => {
    const fake = await start();
    const output = lastResponse(
      await stream(fake, { model: 'm', input: 'run echo hi', tools: [EXEC_COMMAND_TOOL] }),
    ).output as JsonObject[];
    expect(output).toEqual([
      expect.objectContaining({
        type: 'function_call',
        name: 'exec_command',
        arguments: '{"cmd":"echo hi"}',
      }),
    ]);
  });

  it('prefers exec_command among several function tools, and fills required fields otherwise', async () => {
    const fake = await start();
    const weather = {
      type: 'function',
      name: 'get_weather',
      parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
    };
    const both = lastResponse(
      await stream(fake, { model: 'm', input: 'x', tools: [weather, EXEC_COMMAND_TOOL] }),
    ).output as JsonObject[];
    expect(both[0]?.name).toBe('exec_command');
    const only = lastResponse(await stream(fake, { model: 'm', input: 'x', tools: [weather] }))
      .output as JsonObject[];
    expect(only[0]).toMatchObject({ name: 'get_weather', arguments: '{"city":"test"}' });
  });

  it('answers a final text once the conversation ends with a tool output', async () => {
    const fake = await start();
    const output = lastResponse(
      await stream(fake, {
        model: 'm',
        tools: [EXEC_COMMAND_TOOL],
        input: [
          { role: 'user', content: 'run echo hi' },
          { type: 'function_call', call_id: 'call_1', name: 'exec_command', arguments: '{}' },
          { type: 'function_call_output', call_id: 'call_1', output: 'hi\n' },
        ],
      }),
    ).output as JsonObject[];
    expect(output).toEqual([
      expect.objectContaining({
        type: 'message',
        content: [expect.objectContaining({ text: 'The tool returned: hi' })],
      }),
    ]);
  });

  it('answers a text when there is no function tool', async () => {
    const fake = await start();
    const output = lastResponse(await stream(fake, { model: 'm', input: 'hello' }))
      .output as JsonObject[];
    expect(output[0]).toMatchObject({ type: 'message', content: [{ text: AUTO_TEXT }] });
  });
});

describe('sparse completions', () => {
  it('the sparseCompletion option empties response.completed.output; the stored response keeps it', async () => {
    const fake = await start({ sparseCompletion: true });
    const answer = await stream(fake, { model: 'm', input: 'hi' });
    expect(lastResponse(answer).output).toEqual([]);
    expect(eventsOf(answer).filter((e) => e.type === 'response.output_item.done')).toHaveLength(1);
    expect(checkStream(eventsOf(answer), { fullOutput: false })).toEqual([]);
    const stored = fake.responses.get(String(lastResponse(answer).id));
    expect(stored?.response.output).toHaveLength(1);
  });

  it('the sparse behaviour does the same for one answer', async () => {
    const fake = await start();
    fake.script({ kind: 'sparse', then: { kind: 'text', text: 'x' } });
    expect(lastResponse(await stream(fake, { model: 'm', input: 'hi' })).output).toEqual([]);
    expect(
      (lastResponse(await stream(fake, { model: 'm', input: 'hi' })).output as []).length,
    ).toBe(1);
  });
});

describe('broken streams', () => {
  it('cut (eof) sends N events then ends the body cleanly, without a terminal event', async () => {
    const fake = await start();
    fake.script({ kind: 'cut', afterEvents: 4, then: { kind: 'text', text: 'abcdef' } });
    const answer = await stream(fake, { model: 'm', input: 'hi' });
    expect(typesOf(answer)).toEqual(TEXT_TURN.slice(0, 4));
    expect(answer.ending).toBe('end');
    expect(checkStream(eventsOf(answer), { terminal: false })).toEqual([]);
    expect(fake.requests[0]?.outcome).toBe('stream:cut:eof');
    expect(fake.requests[0]?.socketClosedEarly).toBe(false);
  });

  it('cut never lets the terminal event out, however large N is', async () => {
    const fake = await start();
    fake.script({ kind: 'cut', afterEvents: 1000 });
    const types = typesOf(await stream(fake, { model: 'm', input: 'hi' }));
    expect(types[types.length - 1]).toBe('response.output_item.done');
  });

  it('cut (reset) resets the socket: the client sees an aborted body', async () => {
    const fake = await start();
    fake.script({
      kind: 'cut',
      afterEvents: 8,
      mode: 'reset',
      then: { kind: 'tool_calls', calls: [{ name: 'f', arguments: '{"a":1}' }] },
    });
    const answer = await stream(fake, { model: 'm', input: 'hi' });
    expect(answer.ending).not.toBe('end');
    expect(typesOf(answer)).toContain('response.output_item.done');
    expect(typesOf(answer)).not.toContain('response.completed');
    expect(fake.requests[0]?.outcome).toBe('stream:cut:reset');
  });

  it.each([
    [
      'nested',
      {
        type: 'error',
        error: { type: 'server_error', code: 'server_error', message: 'boom', param: null },
      },
    ],
    ['flat', { type: 'error', code: 'server_error', message: 'boom', param: null }],
    [
      'hybrid',
      {
        type: 'error',
        code: 'server_error',
        message: 'boom',
        param: null,
        error: { type: 'server_error', code: 'server_error', message: 'boom', param: null },
      },
    ],
  ] as const)('stream_error writes the %s error shape after N events', async (shape, expected) => {
    const fake = await start();
    fake.script({
      kind: 'stream_error',
      afterEvents: 2,
      shape,
      error: { type: 'server_error', code: 'server_error', message: 'boom' },
    });
    const answer = await stream(fake, { model: 'm', input: 'hi' });
    const events = eventsOf(answer);
    expect(typesOf(answer)).toEqual(['response.created', 'response.in_progress', 'error']);
    expect(events[2]).toEqual({ ...expected, sequence_number: 2 });
    expect(answer.ending).toBe('end');
  });

  it('stream_error with thenFailed follows the error with response.failed', async () => {
    const fake = await start();
    fake.script({
      kind: 'stream_error',
      afterEvents: 3,
      thenFailed: true,
      error: {
        type: 'invalid_request_error',
        code: 'context_length_exceeded',
        message: 'too long',
      },
    });
    const answer = await stream(fake, { model: 'm', input: 'hi' });
    expect(typesOf(answer).slice(-2)).toEqual(['error', 'response.failed']);
    expect(lastResponse(answer)).toMatchObject({
      status: 'failed',
      error: { code: 'context_length_exceeded', message: 'too long' },
    });
    expect(fake.requests[0]?.outcome).toBe('stream:failed');
  });

  it('response_failed ends with response.failed carrying the code and message', async () => {
    const fake = await start();
    fake.script({
      kind: 'response_failed',
      code: 'server_error',
      message: 'The model failed to generate a response.',
    });
    const answer = await stream(fake, { model: 'm', input: 'hi' });
    expect(typesOf(answer)).toEqual([
      'response.created',
      'response.in_progress',
      'response.failed',
    ]);
    expect(lastResponse(answer)).toMatchObject({
      status: 'failed',
      output: [],
      usage: null,
      error: { code: 'server_error', message: 'The model failed to generate a response.' },
    });
    expect(checkStream(eventsOf(answer))).toEqual([]);
  });

  it('response_failed after a finished item carries that item in its output', async () => {
    const fake = await start();
    fake.script({
      kind: 'response_failed',
      afterEvents: 7,
      code: 'server_error',
      message: 'x',
      then: { kind: 'tool_calls', calls: [{ name: 'f' }, { name: 'g' }] },
    });
    const answer = await stream(fake, { model: 'm', input: 'hi' });
    expect((lastResponse(answer).output as JsonObject[]).map((item) => item.name)).toEqual(['f']);
  });

  it('incomplete ends with response.incomplete and its reason', async () => {
    const fake = await start();
    fake.script({ kind: 'incomplete', reason: 'max_output_tokens' });
    const answer = await stream(fake, { model: 'm', input: 'hi' });
    expect(typesOf(answer).pop()).toBe('response.incomplete');
    expect(lastResponse(answer)).toMatchObject({
      status: 'incomplete',
      incomplete_details: { reason: 'max_output_tokens' },
    });
  });
});

describe('odd ids', () => {
  const script = (style?: 'call_id' | 'missing' | 'inconsistent') => ({
    kind: 'odd_ids' as const,
    ...(style ? { style } : {}),
  });

  it('call_id (default): the item id is the call id in every event', async () => {
    const fake = await start();
    fake.script(script());
    const events = eventsOf(
      await stream(fake, { model: 'm', input: 'x', tools: [EXEC_COMMAND_TOOL] }),
    );
    const done = events.find((e) => e.type === 'response.output_item.done')?.item as JsonObject;
    expect(done.type).toBe('function_call');
    expect(done.id).toBe(done.call_id);
    expect(String(done.id)).toMatch(/^call_/);
    const delta = events.find((e) => e.type === 'response.function_call_arguments.delta');
    expect(delta?.item_id).toBe(done.call_id);
  });

  it('missing: call items carry no id at all', async () => {
    const fake = await start();
    fake.script(script('missing'));
    const answer = await stream(fake, { model: 'm', input: 'x' });
    for (const event of eventsOf(answer)) {
      if (String(event.type).startsWith('response.output_item')) {
        expect(event.item).not.toHaveProperty('id');
      }
    }
    expect(lastResponse(answer).output).toEqual([
      expect.not.objectContaining({ id: expect.anything() }),
    ]);
  });

  it('inconsistent: fc_ when added, the call id when done', async () => {
    const fake = await start();
    fake.script({
      kind: 'odd_ids',
      style: 'inconsistent',
      then: { kind: 'tool_calls', calls: [{ name: 'f' }] },
    });
    const events = eventsOf(await stream(fake, { model: 'm', input: 'x' }));
    const added = events.find((e) => e.type === 'response.output_item.added')?.item as JsonObject;
    const done = events.find((e) => e.type === 'response.output_item.done')?.item as JsonObject;
    expect(String(added.id)).toMatch(/^fc_/);
    expect(done.id).toBe(done.call_id);
  });
});

describe('stream decorations', () => {
  it('inject writes raw bytes before an event (a keep-alive comment, a vendor event)', async () => {
    const fake = await start();
    fake.script({
      kind: 'inject',
      at: 0,
      raw: 'event: codex.rate_limits\ndata: {"type":"codex.rate_limits"}\n\n',
      then: { kind: 'inject', at: 3, raw: ': keep-alive\n\n' },
    });
    const answer = await stream(fake, { model: 'm', input: 'hi' });
    expect(typesOf(answer).slice(0, 2)).toEqual(['codex.rate_limits', 'response.created']);
    expect(answer.comments).toEqual(['keep-alive']);
  });

  it('hold_open keeps the socket open after response.completed until the client leaves', async () => {
    const fake = await start();
    fake.script({ kind: 'hold_open' });
    let sawCompleted!: () => void;
    const completed = new Promise<void>((resolve) => (sawCompleted = resolve));
    const exchange = openStream(`${fake.url}/v1/responses`, {
      body: { model: 'm', input: 'hi', stream: true },
      onEvent(event) {
        if (event.json?.type === 'response.completed') sawCompleted();
      },
    });
    await completed;
    expect(fake.requests[0]?.outcome).toBe('stream:completed:held_open');
    exchange.request.destroy();
    await fake.requests[0]?.closed;
    expect(fake.requests[0]?.socketClosedEarly).toBe(true);
    await exchange.done.catch(() => undefined);
  });
});

describe('scripted HTTP errors', () => {
  it('http_error: status, default OpenAI envelope, extra headers, x-request-id', async () => {
    const fake = await start();
    fake.script({
      kind: 'http_error',
      status: 429,
      headers: {
        'retry-after': '1',
        'retry-after-ms': '1000',
        'x-ratelimit-remaining-requests': '0',
      },
    });
    const answer = await post(fake, { model: 'm', input: 'hi', stream: true });
    expect(answer.status).toBe(429);
    expect(answer.headers['content-type']).toBe('application/json');
    expect(answer.headers['retry-after']).toBe('1');
    expect(answer.headers['retry-after-ms']).toBe('1000');
    expect(answer.headers['x-ratelimit-remaining-requests']).toBe('0');
    expect(answer.headers['x-request-id']).toMatch(/^req_/);
    expect(errorOf(answer)).toMatchObject({
      type: 'requests',
      code: 'rate_limit_exceeded',
      param: null,
    });
  });

  it('http_error with a text body and a given content type', async () => {
    const fake = await start();
    fake.script({
      kind: 'http_error',
      status: 502,
      body: 'upstream connect error',
      contentType: 'text/plain',
    });
    const answer = await post(fake, { model: 'm', input: 'hi' });
    expect([answer.status, answer.headers['content-type'], answer.text]).toEqual([
      502,
      'text/plain',
      'upstream connect error',
    ]);
  });

  it('html_error sends a CDN-like HTML page', async () => {
    const fake = await start();
    fake.script({ kind: 'html_error', status: 502 });
    const answer = await post(fake, { model: 'm', input: 'hi' });
    expect(answer.status).toBe(502);
    expect(answer.headers['content-type']).toBe('text/html');
    expect(answer.text).toContain('<title>502 Bad Gateway</title>');
    expect(answer.headers['x-request-id']).toMatch(/^req_/);
  });

  it('empty_error sends an empty body', async () => {
    const fake = await start();
    fake.script({ kind: 'empty_error', status: 503 });
    const answer = await post(fake, { model: 'm', input: 'hi' });
    expect([answer.status, answer.text, answer.headers['content-length']]).toEqual([503, '', '0']);
  });

  it('detail_error sends a FastAPI {"detail": …} body (string or validation array)', async () => {
    const fake = await start();
    fake.script(
      { kind: 'detail_error', status: 400, detail: 'Unsupported parameter: temperature' },
      {
        kind: 'detail_error',
        status: 422,
        detail: [{ loc: ['body', 'input'], msg: 'Field required' }],
      },
    );
    expect((await post(fake, { model: 'm' })).json).toEqual({
      detail: 'Unsupported parameter: temperature',
    });
    const second = await post(fake, { model: 'm' });
    expect(second.status).toBe(422);
    expect(second.json).toEqual({ detail: [{ loc: ['body', 'input'], msg: 'Field required' }] });
  });
});

describe('stream: false (stateful)', () => {
  it('answers the Response object as JSON', async () => {
    const fake = await start();
    fake.script({ kind: 'text', text: 'plain answer' });
    const answer = await post(fake, { model: 'm', input: 'hi' });
    expect(answer.status).toBe(200);
    expect(answer.headers['content-type']).toBe('application/json');
    expect(answer.json).toMatchObject({
      object: 'response',
      status: 'completed',
      output: [{ type: 'message', content: [{ type: 'output_text', text: 'plain answer' }] }],
    });
  });

  it('turns an in-stream error into a 500 envelope and a failure into a failed Response', async () => {
    const fake = await start();
    fake.script(
      {
        kind: 'stream_error',
        afterEvents: 2,
        error: { type: 'server_error', code: 'server_error', message: 'boom' },
      },
      { kind: 'response_failed', code: 'server_error', message: 'failed' },
    );
    const first = await post(fake, { model: 'm', input: 'hi' });
    expect(first.status).toBe(500);
    expect(errorOf(first)).toEqual({
      message: 'boom',
      type: 'server_error',
      param: null,
      code: 'server_error',
    });
    expect((await post(fake, { model: 'm', input: 'hi' })).json).toMatchObject({
      status: 'failed',
      error: { code: 'server_error', message: 'failed' },
    });
  });
});

describe('the x-fake-script header', () => {
  it('answers with its behaviour and leaves the queue alone', async () => {
    const fake = await start();
    fake.script({ kind: 'text', text: 'from the queue' });
    const answer = await stream(
      fake,
      { model: 'm', input: 'hi' },
      {
        headers: { [SCRIPT_HEADER]: JSON.stringify({ kind: 'text', text: 'from the header' }) },
      },
    );
    expect(eventsOf(answer).find((e) => e.type === 'response.output_text.done')?.text).toBe(
      'from the header',
    );
    expect(fake.pending).toBe(1);
  });

  it('rejects a malformed behaviour with a 400 naming the problem', async () => {
    const fake = await start();
    const answer = await post(
      fake,
      { model: 'm', input: 'hi' },
      {
        [SCRIPT_HEADER]: JSON.stringify({ kind: 'cut' }),
      },
    );
    expect(answer.status).toBe(400);
    expect(errorOf(answer).message).toBe(
      'Invalid x-fake-script header: behaviour.afterEvents must be a number',
    );
  });
});
