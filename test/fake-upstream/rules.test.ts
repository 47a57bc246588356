/**
 * The rules the fake enforces, each with the real API's status and wording
 * (responses-contract §2.3–2.5, §3.1; codex-wire.md for the stateless Codex backend).
 */
import type { JsonObject } from '../../lib/protocol/types';
import {
  INVALID_JSON_MESSAGE,
  MISSING_KEY_MESSAGE,
  STATELESS_UNSUPPORTED_PARAMETERS,
  STORE_FALSE_ITEM_HINT,
} from '../support/fake-upstream';
import { rawRequest } from '../support/fake-upstream/client';
import {
  EXEC_COMMAND_TOOL,
  errorOf,
  lastResponse,
  post,
  stream,
  useFakes,
} from '../support/fake-upstream/testing';

const start = useFakes();

const user = (text: string) => ({ role: 'user', content: text });
const call = (callId: string, type = 'function_call', extra: JsonObject = {}) => ({
  type,
  call_id: callId,
  ...(type === 'function_call' ? { name: 'f', arguments: '{}' } : {}),
  ...(type === 'custom_tool_call' ? { name: 'apply_patch', input: '' } : {}),
  ...extra,
});
const output = (callId: string, type = 'function_call_output') => ({
  type,
  call_id: callId,
  output: 'ok',
});

function invalidInput(message: string) {
  return { error: { message, type: 'invalid_request_error', param: 'input', code: null } };
}

describe('tool-call pairing (expanded history ++ input)', () => {
  it('rejects an output without a call', async () => {
    const fake = await start();
    const answer = await post(fake, { model: 'm', input: [user('hi'), output('call_orphan')] });
    expect(answer.status).toBe(400);
    expect(answer.json).toEqual(
      invalidInput('No tool call found for function call output with call_id call_orphan.'),
    );
    expect(answer.headers['x-request-id']).toMatch(/^req_/);
    expect(fake.requests[0]?.outcome).toBe('http:400');
  });

  it('rejects a custom tool output without a custom call (even if a function call has that id)', async () => {
    const fake = await start();
    const answer = await post(fake, {
      model: 'm',
      input: [user('hi'), call('call_1'), output('call_1', 'custom_tool_call_output')],
    });
    expect(answer.json).toEqual(
      invalidInput('No tool call found for custom tool call output with call_id call_1.'),
    );
  });

  it('rejects an output placed before its call, and a duplicated output', async () => {
    const fake = await start();
    const before = await post(fake, { model: 'm', input: [output('call_1'), call('call_1')] });
    expect(errorOf(before).message).toBe(
      'No tool call found for function call output with call_id call_1.',
    );
    const twice = await post(fake, {
      model: 'm',
      input: [call('call_1'), output('call_1'), output('call_1')],
    });
    expect(errorOf(twice).message).toBe(
      'No tool call found for function call output with call_id call_1.',
    );
  });

  it.each([
    ['function_call', 'No tool output found for function call call_9.'],
    ['custom_tool_call', 'No tool output found for custom tool call call_9.'],
    ['apply_patch_call', 'No tool output found for apply patch call call_9.'],
    ['local_shell_call', 'No tool output found for local shell call call_9.'],
    ['shell_call', 'No tool output found for shell call call_9.'],
    ['tool_search_call', 'No tool output found for tool search call call_9.'],
  ])('rejects a %s without an output: "%s"', async (type, message) => {
    const fake = await start();
    const answer = await post(fake, { model: 'm', input: [user('hi'), call('call_9', type)] });
    expect(answer.status).toBe(400);
    expect(answer.json).toEqual(invalidInput(message));
  });

  it('accepts every kind of complete pair, and a server-executed tool search without output', async () => {
    const fake = await start();
    const answer = await post(fake, {
      model: 'm',
      input: [
        user('hi'),
        call('c1'),
        call('c2', 'custom_tool_call'),
        call('c3', 'apply_patch_call'),
        output('c2', 'custom_tool_call_output'),
        output('c1'),
        output('c3', 'apply_patch_call_output'),
        { type: 'local_shell_call', id: 'lsc_1', call_id: 'c4', action: {} },
        { type: 'local_shell_call_output', id: 'c4', output: 'ok' },
        { type: 'tool_search_call', call_id: 'c5', execution: 'client', arguments: {} },
        { type: 'tool_search_output', call_id: 'c5', execution: 'client', tools: [] },
        { type: 'tool_search_call', call_id: 'c6', execution: 'server', arguments: {} },
      ],
    });
    expect(answer.status).toBe(200);
  });

  it('reports the first orphan output before any unanswered call', async () => {
    const fake = await start();
    const answer = await post(fake, {
      model: 'm',
      input: [call('call_a'), output('call_b')],
    });
    expect(errorOf(answer).message).toBe(
      'No tool call found for function call output with call_id call_b.',
    );
  });

  it('pairs across previous_response_id: the anchor’s calls need outputs in the new input', async () => {
    const fake = await start();
    fake.script({ kind: 'tool_calls', calls: [{ name: 'f', call_id: 'call_prev' }] });
    const first = lastResponse(await stream(fake, { model: 'm', input: 'hi' }));
    const unanswered = await post(fake, {
      model: 'm',
      previous_response_id: first.id,
      input: [user('never mind')],
    });
    expect(unanswered.json).toEqual(
      invalidInput('No tool output found for function call call_prev.'),
    );
    const answered = await post(fake, {
      model: 'm',
      previous_response_id: first.id,
      input: [output('call_prev')],
    });
    expect(answered.status).toBe(200);
    // The tool-output-only delta alone, without its anchor, is not self-contained.
    const fresh = await post(fake, { model: 'm', input: [output('call_prev')] });
    expect(errorOf(fresh).message).toBe(
      'No tool call found for function call output with call_id call_prev.',
    );
  });

  it('checks pairing in stateless mode too', async () => {
    const fake = await start({ mode: 'stateless' });
    const answer = await post(fake, {
      model: 'm',
      stream: true,
      store: false,
      input: [user('hi'), output('call_x')],
    });
    expect(answer.json).toEqual(
      invalidInput('No tool call found for function call output with call_id call_x.'),
    );
  });
});

describe('previous_response_id (stateful)', () => {
  it('answers previous_response_not_found for an unknown id, with the exact envelope', async () => {
    const fake = await start();
    const answer = await post(fake, {
      model: 'm',
      input: 'hi',
      previous_response_id: 'resp_stale',
    });
    expect(answer.status).toBe(400);
    expect(answer.json).toEqual({
      error: {
        message: "Previous response with id 'resp_stale' not found.",
        type: 'invalid_request_error',
        param: 'previous_response_id',
        code: 'previous_response_not_found',
      },
    });
    expect(fake.requests[0]?.outcome).toBe('http:400:previous_response_not_found');
  });

  it('cannot chain on a store:false response, nor on a deleted one', async () => {
    const fake = await start();
    const unstored = lastResponse(await stream(fake, { model: 'm', input: 'hi', store: false }));
    expect(unstored.store).toBe(false);
    expect(fake.responses.has(String(unstored.id))).toBe(false);
    const a = await post(fake, { model: 'm', input: 'x', previous_response_id: unstored.id });
    expect(errorOf(a).code).toBe('previous_response_not_found');

    const stored = lastResponse(await stream(fake, { model: 'm', input: 'hi' }));
    await rawRequest(`${fake.url}/v1/responses/${String(stored.id)}`, { method: 'DELETE' });
    const b = await post(fake, { model: 'm', input: 'x', previous_response_id: stored.id });
    expect(errorOf(b).message).toBe(`Previous response with id '${String(stored.id)}' not found.`);
  });

  it('expands the stored history: the new response’s context is anchor context + output + input', async () => {
    const fake = await start();
    const first = lastResponse(
      await stream(fake, { model: 'm', input: 'run it', tools: [EXEC_COMMAND_TOOL] }),
    );
    const fc = (first.output as JsonObject[])[0] as JsonObject;
    expect(fc.type).toBe('function_call');
    const second = lastResponse(
      await stream(fake, {
        model: 'm',
        tools: [EXEC_COMMAND_TOOL],
        previous_response_id: first.id,
        input: [output(String(fc.call_id))],
      }),
    );
    expect(second.previous_response_id).toBe(first.id);
    const stored = fake.responses.get(String(second.id));
    expect(stored?.context.map((item) => item.type)).toEqual([
      'message',
      'function_call',
      'function_call_output',
    ]);
    expect(stored?.context[1]).toEqual(fc);
    // auto saw the tool output at the end of the expanded conversation: a final text.
    expect((second.output as JsonObject[])[0]?.type).toBe('message');
  });
});

describe('request validation (stateful)', () => {
  it('rejects an unknown parameter', async () => {
    const fake = await start();
    const answer = await post(fake, { model: 'm', input: 'hi', generate: false });
    expect(answer.json).toEqual({
      error: {
        message: "Unknown parameter: 'generate'.",
        type: 'invalid_request_error',
        param: 'generate',
        code: 'unknown_parameter',
      },
    });
  });

  it('requires model, and checks parameter types', async () => {
    const fake = await start();
    expect(errorOf(await post(fake, { input: 'hi' }))).toEqual({
      message: "Missing required parameter: 'model'.",
      type: 'invalid_request_error',
      param: 'model',
      code: 'missing_required_parameter',
    });
    expect(errorOf(await post(fake, { model: 'm', input: 'hi', store: 'no' }))).toMatchObject({
      message: "Invalid type for 'store': expected a boolean, but got a string instead.",
      param: 'store',
      code: 'invalid_type',
    });
    expect(errorOf(await post(fake, { model: 'm', input: { role: 'user' } })).param).toBe('input');
  });

  it('rejects an input item id with the wrong prefix (a function_call whose id is its call id)', async () => {
    const fake = await start();
    const answer = await post(fake, {
      model: 'm',
      input: [
        user('hi'),
        call('call_abc', 'function_call', { id: 'call_abc' }),
        output('call_abc'),
      ],
    });
    expect(answer.json).toEqual({
      error: {
        message: "Invalid 'input[1].id': 'call_abc'. Expected an ID that begins with 'fc'.",
        type: 'invalid_request_error',
        param: 'input[1].id',
        code: 'invalid_value',
      },
    });
  });

  it('requires call_id on calls and outputs', async () => {
    const fake = await start();
    const answer = await post(fake, {
      model: 'm',
      input: [{ type: 'function_call_output', output: 'x' }],
    });
    expect(errorOf(answer)).toMatchObject({
      message: "Missing required parameter: 'input[0].call_id'.",
      code: 'missing_required_parameter',
    });
  });

  it('says plainly what it does not model (background mode, conversations)', async () => {
    const fake = await start();
    expect(errorOf(await post(fake, { model: 'm', input: 'x', background: true })).param).toBe(
      'background',
    );
    const both = await post(fake, {
      model: 'm',
      input: 'x',
      conversation: 'conv_1',
      previous_response_id: 'resp_1',
    });
    expect(errorOf(both).message).toMatch(/^Mutually exclusive parameters/);
  });

  it('answers a body that is not JSON with the API’s parse error, and logs it', async () => {
    const fake = await start();
    const answer = await rawRequest(`${fake.url}/v1/responses`, {
      body: '{"model": "m",',
      headers: { 'content-type': 'application/json' },
    });
    expect(answer.status).toBe(400);
    expect(answer.json).toEqual({
      error: {
        message: INVALID_JSON_MESSAGE,
        type: 'invalid_request_error',
        param: null,
        code: null,
      },
    });
    expect(answer.headers['x-request-id']).toMatch(/^req_/);
    expect(fake.requests[0]).toMatchObject({ body: undefined, status: 400 });
    expect(fake.requests[0]?.rawBody.toString()).toBe('{"model": "m",');
  });

  it('answers an unknown route with Invalid URL', async () => {
    const fake = await start();
    const answer = await rawRequest(`${fake.url}/v1/chat/completions`, { body: {} });
    expect(answer.status).toBe(404);
    expect(errorOf(answer).message).toBe('Invalid URL (POST /v1/chat/completions)');
  });

  it('serves /v1/responses, /responses and /backend-api/codex/responses', async () => {
    const fake = await start();
    for (const path of ['/v1/responses', '/responses', '/backend-api/codex/responses']) {
      expect((await post(fake, { model: 'm', input: 'hi' }, {}, path)).status).toBe(200);
    }
  });
});

describe('items that are not persisted', () => {
  it('stateful: resolves an item_reference to a stored item (it counts for pairing)', async () => {
    const fake = await start();
    fake.script({ kind: 'tool_calls', calls: [{ name: 'f', call_id: 'call_ref' }] });
    const first = lastResponse(await stream(fake, { model: 'm', input: 'hi' }));
    const fcId = String((first.output as JsonObject[])[0]?.id);
    const answer = await post(fake, {
      model: 'm',
      input: [user('hi'), { type: 'item_reference', id: fcId }, output('call_ref')],
    });
    expect(answer.status).toBe(200);
  });

  it('stateful: an unknown reference is a 404; with store:false it adds the store hint', async () => {
    const fake = await start();
    const plain = await post(fake, {
      model: 'm',
      input: [{ type: 'item_reference', id: 'msg_nope' }],
    });
    expect(plain.status).toBe(404);
    expect(plain.json).toEqual({
      error: {
        message: "Item with id 'msg_nope' not found.",
        type: 'invalid_request_error',
        param: 'input',
        code: null,
      },
    });
    const unstored = await post(fake, { model: 'm', store: false, input: [{ id: 'msg_nope' }] });
    expect(errorOf(unstored).message).toBe(
      `Item with id 'msg_nope' not found. ${STORE_FALSE_ITEM_HINT}`,
    );
  });

  it('stateless: any reference, or a reasoning item without encrypted_content, is a 404', async () => {
    const fake = await start({ mode: 'stateless' });
    const base = { model: 'm', stream: true, store: false };
    const reference = await post(fake, {
      ...base,
      input: [{ type: 'item_reference', id: 'rs_1' }],
    });
    expect(reference.status).toBe(404);
    expect(errorOf(reference).message).toBe(
      "Item with id 'rs_1' not found. Items are not persisted when `store` is set to false. Try again with `store` set to true, or remove this item from your input.",
    );
    const reasoning = await post(fake, {
      ...base,
      input: [user('hi'), { type: 'reasoning', id: 'rs_2', summary: [] }],
    });
    expect(reasoning.status).toBe(404);
    expect(errorOf(reasoning).message).toMatch(
      /^Item with id 'rs_2' not found\. Items are not persisted/,
    );
  });

  it('reasoning items travel with their encrypted content, verified per account', async () => {
    const fake = await start({ mode: 'stateless', name: 'account-a' });
    const sameAccount = await start({ mode: 'stateless', name: 'account-a' });
    const otherAccount = await start({ mode: 'stateless', name: 'account-b' });
    fake.script({ kind: 'text', text: 'ok', reasoning: true });
    const base = { model: 'm', store: false, include: ['reasoning.encrypted_content'] };
    const first = lastResponse(await stream(fake, { ...base, input: 'hi' }));
    const replay = {
      ...base,
      stream: true,
      input: [user('hi'), ...(first.output as JsonObject[]), user('more')],
    };
    expect((await post(fake, replay)).status).toBe(200);
    expect((await post(sameAccount, replay)).status).toBe(200);
    const refused = await post(otherAccount, replay);
    expect(refused.status).toBe(400);
    const content = String((first.output as JsonObject[])[0]?.encrypted_content);
    expect(refused.json).toEqual({
      error: {
        message: `The encrypted content ${content.slice(0, 4)}...${content.slice(-4)} could not be verified.`,
        type: 'invalid_request_error',
        param: null,
        code: 'invalid_encrypted_content',
      },
    });
  });

  it('stateful: a stored reasoning item may be replayed by id alone', async () => {
    const fake = await start();
    fake.script({ kind: 'text', text: 'ok', reasoning: true });
    const first = lastResponse(await stream(fake, { model: 'm', input: 'hi' }));
    const reasoning = (first.output as JsonObject[])[0] as JsonObject;
    expect(reasoning).not.toHaveProperty('encrypted_content');
    expect((await post(fake, { model: 'm', input: [user('hi'), reasoning] })).status).toBe(200);
  });
});

describe('stateless mode (the Codex backend)', () => {
  const ok = { model: 'gpt-5.5', input: 'hi', stream: true, store: false };

  it('requires store:false, then stream:true, with FastAPI detail bodies', async () => {
    const fake = await start({ mode: 'stateless' });
    const noStore = await post(fake, { model: 'm', input: 'hi', stream: true });
    expect([noStore.status, noStore.json]).toEqual([400, { detail: 'Store must be set to false' }]);
    const noStream = await post(fake, { model: 'm', input: 'hi', store: false });
    expect([noStream.status, noStream.json]).toEqual([
      400,
      { detail: 'Stream must be set to true' },
    ]);
    expect(noStream.headers['x-request-id']).toMatch(/^req_/);
    expect((await stream(fake, ok)).status).toBe(200);
  });

  it.each(STATELESS_UNSUPPORTED_PARAMETERS)(
    'rejects %s as an unsupported parameter',
    async (name) => {
      const fake = await start({ mode: 'stateless' });
      const answer = await post(fake, { ...ok, [name]: name === 'metadata' ? {} : 1 });
      expect(answer.status).toBe(400);
      expect(answer.json).toEqual({ detail: `Unsupported parameter: ${name}` });
    },
  );

  it('rejects parameters it does not know the same way, and a missing model with a 422', async () => {
    const fake = await start({ mode: 'stateless' });
    expect((await post(fake, { ...ok, user: 'u' })).json).toEqual({
      detail: 'Unsupported parameter: user',
    });
    const { model: _model, ...noModel } = ok;
    const missing = await post(fake, noModel);
    expect(missing.status).toBe(422);
    expect(missing.json).toMatchObject({ detail: [{ type: 'missing', loc: ['body', 'model'] }] });
  });

  it('persists nothing: GET finds nothing', async () => {
    const fake = await start({ mode: 'stateless' });
    const response = lastResponse(await stream(fake, ok));
    expect(response.store).toBe(false);
    expect(fake.responses.size).toBe(0);
    expect(
      (await rawRequest(`${fake.url}/v1/responses/${String(response.id)}`, { method: 'GET' }))
        .status,
    ).toBe(404);
  });
});

describe('authentication', () => {
  it('requireAuth: true accepts any bearer token and rejects a missing one', async () => {
    const fake = await start({ requireAuth: true });
    const missing = await post(fake, { model: 'm', input: 'hi' });
    expect(missing.status).toBe(401);
    expect(missing.json).toEqual({
      error: {
        message: MISSING_KEY_MESSAGE,
        type: 'invalid_request_error',
        param: null,
        code: null,
      },
    });
    expect(missing.headers['x-request-id']).toMatch(/^req_/);
    expect(
      (await post(fake, { model: 'm', input: 'hi' }, { authorization: 'Bearer anything' })).status,
    ).toBe(200);
  });

  it('requireAuth: <token> rejects another token with invalid_api_key, masking it', async () => {
    const fake = await start({ requireAuth: 'sk-right-key-000' });
    const wrong = await post(
      fake,
      { model: 'm', input: 'hi' },
      { authorization: 'Bearer sk-wrong-key-1234' },
    );
    expect(wrong.status).toBe(401);
    expect(errorOf(wrong)).toEqual({
      message:
        'Incorrect API key provided: sk-**********1234. You can find your API key at https://platform.openai.com/account/api-keys.',
      type: 'invalid_request_error',
      param: null,
      code: 'invalid_api_key',
    });
    expect(wrong.text).not.toContain('sk-wrong-key-1234');
    const right = await post(
      fake,
      { model: 'm', input: 'hi' },
      { authorization: 'Bearer sk-right-key-000' },
    );
    expect(right.status).toBe(200);
    expect(fake.requests.map((r) => r.status)).toEqual([401, 200]);
  });
});
