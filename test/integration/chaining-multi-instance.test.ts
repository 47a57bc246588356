/**
 * Two relay instances in separate processes share one real Redis and act as one: a conversation
 * of more than 20 tool turns whose requests alternate between the instances succeeds in both
 * modes. Stateless: every request reaches the fake as exactly the full history. Stateful, with two
 * fake "accounts" (a response exists only on the account that made it): new conversations are
 * spread, and the fakes' logs show every continuation went to the account holding its anchor.
 */
import Redis from 'ioredis';
import type { JsonObject, ResponseItem } from '../../lib/protocol/types';
import { RedisSessionStore } from '../../lib/store/redis-session-store';
import { tenantId } from '../../lib/store/tenant';
import { startFakeUpstream, type FakeUpstream } from '../support/fake-upstream';
import { EXEC_COMMAND_TOOL } from '../support/fake-upstream/testing';
import { testKeyPrefix, testRedisUrl } from '../support/redis';
import { deleteKeysUnder } from '../store/redis-harness';
import { TEST_TENANT_SECRET } from './fixtures/chaining-app';
import { KEY_A, firstCallId, toolOutput, turn, userMessage } from './fixtures/chaining-client';
import { startGatewayProcess, type GatewayProcess } from './fixtures/chaining-processes';

const MODEL = 'gpt-test';
const TOOLS = [EXEC_COMMAND_TOOL];
const TOOL_TURNS = 21;

jest.setTimeout(90_000);

type Response = { id: string; status: string; output: ResponseItem[] };

async function completedTurn(instance: GatewayProcess, body: JsonObject): Promise<Response> {
  const result = await turn(instance.url, { model: MODEL, tools: TOOLS, ...body });
  if (result.status !== 200 || result.response?.status !== 'completed') {
    throw new Error(
      `turn on ${instance.url} failed: ${result.status} ${result.text.slice(0, 500)}\n${instance.stderr()}`,
    );
  }
  return result.response as Response;
}

/**
 * Runs a tool conversation: each tool turn is a prompt (answered with a call) and the call's output
 * (answered with text), each request anchored on the previous response; request n goes to
 * `instances[(offset + n) % 2]`. Returns the ids in order and the transcript the client saw.
 */
async function toolConversation(
  instances: GatewayProcess[],
  name: string,
  offset = 0,
): Promise<{ ids: string[]; transcripts: ResponseItem[][] }> {
  const ids: string[] = [];
  const transcripts: ResponseItem[][] = [];
  let history: ResponseItem[] = [];
  let previous: string | undefined;
  let n = offset;
  const send = async (input: ResponseItem[]): Promise<Response> => {
    const instance = instances[n % instances.length] as GatewayProcess;
    n += 1;
    transcripts.push([...history, ...input]);
    const response = await completedTurn(instance, {
      input,
      ...(previous === undefined ? {} : { previous_response_id: previous }),
    });
    history = [...history, ...input, ...response.output];
    previous = response.id;
    ids.push(response.id);
    return response;
  };
  for (let k = 0; k < TOOL_TURNS; k += 1) {
    const asked = await send([userMessage(`${name}: step ${k}`)]);
    await send([toolOutput(firstCallId(asked), `${name} ${k} ok`)]);
  }
  return { ids, transcripts };
}

describe('two relay instances in separate processes sharing one Redis', () => {
  const prefix = testKeyPrefix('chain-mi');
  let redis: Redis;
  const children: GatewayProcess[] = [];
  const fakes: FakeUpstream[] = [];

  beforeAll(() => {
    redis = new Redis(testRedisUrl());
  });
  afterAll(async () => {
    await Promise.all(children.splice(0).map((child) => child.stop()));
    await Promise.all(fakes.splice(0).map((fake) => fake.close()));
    await deleteKeysUnder(redis, prefix);
    await redis.quit();
  });

  async function instances(
    mode: 'stateless' | 'stateful',
    upstreams: Record<string, FakeUpstream>,
  ): Promise<GatewayProcess[]> {
    const env = {
      REDIS_URL: testRedisUrl(),
      KEY_PREFIX: `${prefix}:${mode}`,
      UPSTREAMS: Object.entries(upstreams)
        .map(([name, fake]) => `${name}=${fake.url}`)
        .join(','),
      MODE: mode,
      TENANT_SECRET: TEST_TENANT_SECRET,
    };
    const started = await Promise.all([startGatewayProcess(env), startGatewayProcess(env)]);
    children.push(...started);
    expect(started[0]?.pid).not.toBe(started[1]?.pid);
    return started;
  }

  it('stateless: 21 tool turns alternating instances, each request the exact full history', async () => {
    const codex = await startFakeUpstream({ mode: 'stateless', name: 'codex' });
    fakes.push(codex);
    const pair = await instances('stateless', { codex });
    const { ids, transcripts } = await toolConversation(pair, 'solo');

    expect(ids).toHaveLength(2 * TOOL_TURNS);
    expect(codex.requests).toHaveLength(2 * TOOL_TURNS);
    codex.requests.forEach((request, index) => {
      const body = request.body as JsonObject;
      expect(request.status).toBe(200);
      expect(body).not.toHaveProperty('previous_response_id');
      expect(body.store).toBe(false);
      expect(body.input).toEqual(transcripts[index]);
    });

    // The shared store holds the whole chain, written by both processes.
    const store = new RedisSessionStore({ redis, keyPrefix: `${prefix}:stateless` });
    const chain = await store.expandChain(
      tenantId(KEY_A, TEST_TENANT_SECRET),
      ids[ids.length - 1] as string,
    );
    expect(chain?.records.map((record) => record.id)).toEqual(ids);
  });

  it('stateful: continuations always reach the account holding their anchor', async () => {
    const a = await startFakeUpstream({ mode: 'stateful', name: 'a' });
    const b = await startFakeUpstream({ mode: 'stateful', name: 'b' });
    fakes.push(a, b);
    const pair = await instances('stateful', { a, b });
    // Three conversations, started on instances 1, 2, 1: each instance spreads its new
    // conversations round-robin, so both accounts get some.
    const conversations = await Promise.all([
      toolConversation(pair, 'first', 0),
      toolConversation(pair, 'second', 1),
      toolConversation(pair, 'third', 2),
    ]);

    const accountOf = (id: string): 'a' | 'b' => {
      const onA = a.responses.has(id);
      const onB = b.responses.has(id);
      expect(onA !== onB).toBe(true);
      return onA ? 'a' : 'b';
    };
    const accounts = conversations.map(({ ids }) => {
      const account = accountOf(ids[0] as string);
      for (const id of ids) expect(accountOf(id)).toBe(account);
      return account;
    });
    expect(new Set(accounts)).toEqual(new Set(['a', 'b']));

    for (const fake of [a, b]) {
      for (const request of fake.requests) {
        expect(request.status).toBe(200);
        const anchor = (request.body as JsonObject).previous_response_id;
        if (typeof anchor === 'string') expect(fake.responses.has(anchor)).toBe(true);
      }
    }
    const continuations = [...a.requests, ...b.requests].filter(
      (request) => typeof (request.body as JsonObject).previous_response_id === 'string',
    );
    expect(continuations).toHaveLength(3 * (2 * TOOL_TURNS - 1));
  });
});
