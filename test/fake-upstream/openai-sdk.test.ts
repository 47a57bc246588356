/**
 * The official `openai` client (6.49) against the fake: a tool loop chained with
 * `previous_response_id` (create and stream().finalResponse()), the other endpoints, and the
 * errors the SDK raises for the API's rule violations, with the exact messages.
 */
import OpenAI from 'openai';
import type { FakeUpstream } from '../support/fake-upstream';
import { EXEC_COMMAND_TOOL, useFakes } from '../support/fake-upstream/testing';

const start = useFakes();

const tools = [EXEC_COMMAND_TOOL] as OpenAI.Responses.Tool[];

function client(fake: FakeUpstream): OpenAI {
  return new OpenAI({ apiKey: 'sk-test', baseURL: `${fake.url}/v1`, maxRetries: 0 });
}

async function rejection(promise: Promise<unknown>): Promise<InstanceType<typeof OpenAI.APIError>> {
  try {
    await promise;
  } catch (error) {
    return error as InstanceType<typeof OpenAI.APIError>;
  }
  throw new Error('expected a rejection');
}

function firstCall(response: OpenAI.Responses.Response): OpenAI.Responses.ResponseFunctionToolCall {
  const call = response.output.find((item) => item.type === 'function_call');
  if (call?.type !== 'function_call') throw new Error('no function call');
  return call;
}

describe('a tool loop chained with previous_response_id', () => {
  it('works with responses.create', async () => {
    const fake = await start({ requireAuth: 'sk-test' });
    const openai = client(fake);
    const first = await openai.responses.create({ model: 'gpt-5.5', input: 'Run echo hi.', tools });
    const call = firstCall(first);
    expect(call).toMatchObject({ name: 'exec_command', arguments: '{"cmd":"echo hi"}' });
    expect(call.call_id).toMatch(/^call_/);
    const second = await openai.responses.create({
      model: 'gpt-5.5',
      previous_response_id: first.id,
      input: [{ type: 'function_call_output', call_id: call.call_id, output: 'hi\n' }],
      tools,
    });
    expect(second.status).toBe('completed');
    expect(second.previous_response_id).toBe(first.id);
    expect(second.output_text).toBe('The tool returned: hi');
    const third = await openai.responses.create({
      model: 'gpt-5.5',
      previous_response_id: second.id,
      input: 'Thanks!',
    });
    expect(third.output_text.length).toBeGreaterThan(0);
    expect(fake.requests.map((r) => r.headers['x-stainless-retry-count'])).toEqual(['0', '0', '0']);
  });

  it('works with responses.stream(...).finalResponse()', async () => {
    const fake = await start();
    const openai = client(fake);
    const deltas: string[] = [];
    const first = await openai.responses
      .stream({ model: 'gpt-5.5', input: 'Run echo hi.', tools })
      .on('response.function_call_arguments.delta', (event) => deltas.push(event.delta))
      .finalResponse();
    const call = firstCall(first);
    expect(deltas.join('')).toBe(call.arguments);
    const second = await openai.responses
      .stream({
        model: 'gpt-5.5',
        previous_response_id: first.id,
        input: [{ type: 'function_call_output', call_id: call.call_id, output: 'hi\n' }],
        tools,
      })
      .finalResponse();
    expect(second.output_text).toBe('The tool returned: hi');
    expect(fake.requests[0]?.headers['x-stainless-helper-method']).toBe('stream');
    expect(fake.responses.size).toBe(2);
  });

  it('works statelessly too (store:false, full history each time)', async () => {
    const fake = await start({ mode: 'stateless' });
    const openai = client(fake);
    const input: OpenAI.Responses.ResponseInput = [{ role: 'user', content: 'Run echo hi.' }];
    const first = await openai.responses
      .stream({
        model: 'gpt-5.5',
        input,
        tools,
        store: false,
        include: ['reasoning.encrypted_content'],
      })
      .finalResponse();
    const call = firstCall(first);
    input.push(call, { type: 'function_call_output', call_id: call.call_id, output: 'hi\n' });
    const second = await openai.responses
      .stream({ model: 'gpt-5.5', input, tools, store: false })
      .finalResponse();
    expect(second.output_text).toBe('The tool returned: hi');
  });

  it('reaches the other endpoints: retrieve, input items, cancel, delete', async () => {
    const fake = await start();
    const openai = client(fake);
    const created = await openai.responses.create({ model: 'gpt-5.5', input: 'hi' });
    const retrieved = await openai.responses.retrieve(created.id);
    expect(retrieved.id).toBe(created.id);
    expect(retrieved.output_text).toBe(created.output_text);
    const items = await openai.responses.inputItems.list(created.id);
    expect(items.data).toHaveLength(1);
    const cancel = await rejection(openai.responses.cancel(created.id));
    expect(cancel).toBeInstanceOf(OpenAI.BadRequestError);
    expect(cancel.message).toBe('400 Cannot cancel a synchronous response.');
    await openai.responses.delete(created.id);
    const gone = await rejection(openai.responses.retrieve(created.id));
    expect(gone).toBeInstanceOf(OpenAI.NotFoundError);
    expect(gone.message).toBe(`404 Response with id '${created.id}' not found.`);
  });
});

describe('rule violations raise BadRequestError with the API’s messages', () => {
  async function pendingCall(openai: OpenAI) {
    const first = await openai.responses.create({ model: 'gpt-5.5', input: 'Run echo hi.', tools });
    return { first, call: firstCall(first) };
  }

  it('a call left without output (create)', async () => {
    const fake = await start();
    const openai = client(fake);
    const { first, call } = await pendingCall(openai);
    const error = await rejection(
      openai.responses.create({
        model: 'gpt-5.5',
        previous_response_id: first.id,
        input: 'Hello?',
      }),
    );
    expect(error).toBeInstanceOf(OpenAI.BadRequestError);
    expect(error.message).toBe(`400 No tool output found for function call ${call.call_id}.`);
    expect(error).toMatchObject({
      status: 400,
      type: 'invalid_request_error',
      param: 'input',
      code: null,
    });
    expect(error.requestID).toBe(fake.requests[1]?.requestId);
    expect(error.requestID).toMatch(/^req_/);
  });

  it('an output without a call (stream().finalResponse())', async () => {
    const fake = await start();
    const openai = client(fake);
    const error = await rejection(
      openai.responses
        .stream({
          model: 'gpt-5.5',
          input: [{ type: 'function_call_output', call_id: 'call_orphan', output: 'x' }],
        })
        .finalResponse(),
    );
    expect(error).toBeInstanceOf(OpenAI.BadRequestError);
    expect(error.message).toBe(
      '400 No tool call found for function call output with call_id call_orphan.',
    );
  });

  it('an unknown previous_response_id', async () => {
    const fake = await start();
    const error = await rejection(
      client(fake).responses.create({
        model: 'gpt-5.5',
        previous_response_id: 'resp_gone',
        input: 'x',
      }),
    );
    expect(error).toBeInstanceOf(OpenAI.BadRequestError);
    expect(error.message).toBe("400 Previous response with id 'resp_gone' not found.");
    expect(error).toMatchObject({
      code: 'previous_response_not_found',
      param: 'previous_response_id',
    });
  });

  it('a replayed function call whose id is not fc_…', async () => {
    const fake = await start();
    const openai = client(fake);
    const { call } = await pendingCall(openai);
    const error = await rejection(
      openai.responses.create({
        model: 'gpt-5.5',
        input: [
          { role: 'user', content: 'Run echo hi.' },
          { ...call, id: call.call_id },
          { type: 'function_call_output', call_id: call.call_id, output: 'hi' },
        ],
      }),
    );
    expect(error.message).toBe(
      `400 Invalid 'input[1].id': '${call.call_id}'. Expected an ID that begins with 'fc'.`,
    );
  });

  it('a wrong key is an AuthenticationError', async () => {
    const fake = await start({ requireAuth: 'sk-other-key-0000' });
    const error = await rejection(client(fake).responses.create({ model: 'gpt-5.5', input: 'x' }));
    expect(error).toBeInstanceOf(OpenAI.AuthenticationError);
    expect(error.code).toBe('invalid_api_key');
  });
});

describe('what the SDK makes of scripted failures', () => {
  it('429 → RateLimitError with the headers', async () => {
    const fake = await start();
    fake.script({ kind: 'http_error', status: 429, headers: { 'retry-after': '2' } });
    const error = await rejection(client(fake).responses.create({ model: 'gpt-5.5', input: 'x' }));
    expect(error).toBeInstanceOf(OpenAI.RateLimitError);
    expect(error.headers?.get('retry-after')).toBe('2');
  });

  it('a FastAPI detail body loses its text in 6.49 (`400 status code (no body)`)', async () => {
    const fake = await start();
    fake.script({
      kind: 'detail_error',
      status: 400,
      detail: 'Unsupported parameter: temperature',
    });
    const error = await rejection(client(fake).responses.create({ model: 'gpt-5.5', input: 'x' }));
    expect(error.message).toBe('400 status code (no body)');
  });

  it('a nested in-stream error rejects finalResponse() with an APIError', async () => {
    const fake = await start();
    fake.script({
      kind: 'stream_error',
      afterEvents: 2,
      thenFailed: true,
      error: { type: 'server_error', code: 'server_error', message: 'boom' },
    });
    const error = await rejection(
      client(fake).responses.stream({ model: 'gpt-5.5', input: 'x' }).finalResponse(),
    );
    expect(error).toBeInstanceOf(OpenAI.APIError);
    expect(error.message).toBe('boom');
    expect(error.code).toBe('server_error');
  });

  it('a cut stream (clean EOF) resolves in_progress: the SDK does not notice', async () => {
    const fake = await start();
    fake.script({ kind: 'cut', afterEvents: 5 });
    const response = await client(fake)
      .responses.stream({ model: 'gpt-5.5', input: 'x' })
      .finalResponse();
    expect(response.status).toBe('in_progress');
  });

  it('sparse completion empties finalResponse().output', async () => {
    const fake = await start({ sparseCompletion: true });
    const response = await client(fake)
      .responses.stream({ model: 'gpt-5.5', input: 'x' })
      .finalResponse();
    expect(response.output).toEqual([]);
  });
});
