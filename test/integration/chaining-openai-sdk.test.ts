/**
 * The official `openai` client runs a tool loop with `previous_response_id` through the relay
 * against a stateless (Codex-backend-like) fake exactly as it would against OpenAI: plain
 * `responses.create` calls (the Codex profile turns them into the stream the backend requires),
 * streamed turns with `responses.stream`, parallel calls, and the SDK's own error class for an
 * unknown anchor.
 */
import OpenAI from 'openai';
import type {
  ResponseFunctionToolCall,
  ResponseInputItem,
} from 'openai/resources/responses/responses';
import { upstreamProfile } from '../../lib/middleware/upstream-profile';
import { MemorySessionStore } from '../../lib/store/memory-session-store';
import { startFakeUpstream, type FakeUpstream } from '../support/fake-upstream';
import { listen, type Listening } from '../support/listen';
import type { JsonObject } from '../../lib/protocol/types';
import { chainingApp, memoryLogger } from './fixtures/chaining-app';
import { KEY_A } from './fixtures/chaining-client';

const tools: OpenAI.Responses.Tool[] = [
  {
    type: 'function',
    name: 'exec_command',
    description: 'Runs a command.',
    strict: false,
    parameters: {
      type: 'object',
      properties: { cmd: { type: 'string' } },
      required: ['cmd'],
      additionalProperties: false,
    },
  },
];

function outputsFor(calls: ResponseFunctionToolCall[]): ResponseInputItem[] {
  return calls.map((call) => ({
    type: 'function_call_output',
    call_id: call.call_id,
    output: `ran ${call.arguments}`,
  }));
}

const functionCalls = (response: OpenAI.Responses.Response): ResponseFunctionToolCall[] =>
  response.output.filter((item): item is ResponseFunctionToolCall => item.type === 'function_call');

describe('the official openai client through the relay (stateless upstream)', () => {
  let fake: FakeUpstream;
  let gateway: Listening;
  let client: OpenAI;

  beforeEach(async () => {
    fake = await startFakeUpstream({ mode: 'stateless', name: 'codex' });
    gateway = await listen(
      chainingApp({
        mode: 'stateless',
        store: new MemorySessionStore(),
        upstreams: { codex: fake.url },
        logger: memoryLogger(),
        after: [upstreamProfile('codex')],
      }),
    );
    client = new OpenAI({ apiKey: KEY_A, baseURL: `${gateway.url}/v1`, maxRetries: 0 });
  });
  afterEach(async () => {
    await gateway.close();
    await fake.close();
  });

  it('runs a tool loop with responses.create and previous_response_id', async () => {
    fake.script(
      { kind: 'tool_calls', calls: [{ name: 'exec_command', arguments: '{"cmd":"ls"}' }] },
      {
        kind: 'tool_calls',
        calls: [
          { name: 'exec_command', arguments: '{"cmd":"cat a"}' },
          { name: 'exec_command', arguments: '{"cmd":"cat b"}' },
        ],
      },
      { kind: 'tool_calls', calls: [{ name: 'exec_command', arguments: '{"cmd":"wc -l"}' }] },
    );
    let response = await client.responses.create({
      model: 'gpt-test',
      instructions: 'You are terse.',
      input: 'Count the lines of every file.',
      tools,
    });
    const ids = [response.id];
    let calls = functionCalls(response);
    while (calls.length > 0) {
      response = await client.responses.create({
        model: 'gpt-test',
        instructions: 'You are terse.',
        previous_response_id: response.id,
        input: outputsFor(calls),
        tools,
      });
      ids.push(response.id);
      calls = functionCalls(response);
    }
    expect(response.status).toBe('completed');
    expect(response.output_text).toBe('The tool returned: ran {"cmd":"wc -l"}');
    expect(response.previous_response_id).toBe(ids[ids.length - 2]);
    expect(ids).toHaveLength(4);
    expect(new Set(ids).size).toBe(4);

    // The last request carried the whole conversation, and never an anchor.
    const last = fake.requests[fake.requests.length - 1]?.body as JsonObject;
    expect(last).not.toHaveProperty('previous_response_id');
    expect(last.instructions).toBe('You are terse.');
    const types = (last.input as Array<{ type: string }>).map((item) => item.type);
    expect(types).toEqual([
      'message',
      'function_call',
      'function_call_output',
      'function_call',
      'function_call',
      'function_call_output',
      'function_call_output',
      'function_call',
      'function_call_output',
    ]);
  });

  it('runs streamed turns with responses.stream', async () => {
    const first = await client.responses
      .stream({ model: 'gpt-test', input: 'list files', tools })
      .finalResponse();
    const call = functionCalls(first)[0] as ResponseFunctionToolCall;
    expect(call.name).toBe('exec_command');
    const texts: string[] = [];
    const stream = client.responses.stream({
      model: 'gpt-test',
      previous_response_id: first.id,
      input: outputsFor([call]),
      tools,
    });
    stream.on('response.output_text.delta', (event) => texts.push(event.delta));
    const second = await stream.finalResponse();
    expect(second.output_text).toBe(`The tool returned: ran ${call.arguments}`);
    expect(texts.join('')).toBe(second.output_text);
  });

  it('forks from an earlier response', async () => {
    const root = await client.responses.create({ model: 'gpt-test', input: 'Say hello.' });
    const [a, b] = await Promise.all(
      ['in French', 'in German'].map((text) =>
        client.responses.create({ model: 'gpt-test', previous_response_id: root.id, input: text }),
      ),
    );
    expect(a?.status).toBe('completed');
    expect(b?.status).toBe('completed');
    const replays = fake.requests.slice(1).map((r) => (r.body as JsonObject).input);
    for (const input of replays) expect((input as unknown[]).length).toBe(3);
  });

  it('gets the SDK’s BadRequestError with code previous_response_not_found for an unknown id', async () => {
    const failure = await client.responses
      .create({ model: 'gpt-test', previous_response_id: 'resp_nope', input: 'hi' })
      .then(
        () => undefined,
        (error: unknown) => error,
      );
    expect(failure).toBeInstanceOf(OpenAI.BadRequestError);
    const error = failure as InstanceType<typeof OpenAI.BadRequestError>;
    expect(error.status).toBe(400);
    expect(error.code).toBe('previous_response_not_found');
    expect(error.param).toBe('previous_response_id');
    expect(error.message).toContain("Previous response with id 'resp_nope' not found.");
    expect(fake.requests).toHaveLength(0);
  });

  it('retrieves and deletes its responses through the ownership guard', async () => {
    const created = await client.responses.create({ model: 'gpt-test', input: 'Keep this.' });
    const retrieved = await client.responses.retrieve(created.id);
    expect(retrieved.id).toBe(created.id);
    expect(retrieved.output_text).toBe(created.output_text);
    await client.responses.delete(created.id);
    await expect(client.responses.retrieve(created.id)).rejects.toBeInstanceOf(
      OpenAI.NotFoundError,
    );
    const other = new OpenAI({ apiKey: 'sk-someone-else', baseURL: `${gateway.url}/v1` });
    const kept = await client.responses.create({ model: 'gpt-test', input: 'Mine.' });
    await expect(other.responses.retrieve(kept.id)).rejects.toBeInstanceOf(OpenAI.NotFoundError);
  });
});
