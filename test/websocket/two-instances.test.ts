/**
 * Two relay processes on one Redis: a Codex-like client chains turns over a WebSocket to the
 * first instance, the socket closes after turn 3, the client reconnects to the other instance and
 * turns 4..10 continue the same chain (stored by the first instance, read from Redis). A client
 * that reconnects mid tool round and omits the anchor continues through its session header.
 */
import Redis from 'ioredis';
import type { JsonObject, ResponseItem } from '../../lib/protocol/types';
import { RedisSessionStore } from '../../lib/store/redis-session-store';
import { tenantId } from '../../lib/store/tenant';
import type { WebSocketBridgeStats } from '../../lib/websocket/connection';
import { startFakeUpstream, type FakeUpstream } from '../support/fake-upstream';
import { EXEC_COMMAND_TOOL } from '../support/fake-upstream/testing';
import { testKeyPrefix, testRedisUrl } from '../support/redis';
import { deleteKeysUnder } from '../store/redis-harness';
import { startWsGateway, type WsGatewayProcess } from './fixtures/processes';
import { AUTH_A, KEY_A, TEST_TENANT_SECRET } from './support/gateway';
import { doneItems, WsClient, type WsTurn } from './support/ws-client';

jest.setTimeout(90_000);

const MODEL = 'gpt-test';
const SESSION = '01a20753-5785-7880-8dee-6922500a1548';
const HEADERS = { ...AUTH_A, 'session-id': SESSION, originator: 'codex_exec' };
const BASE: ResponseItem = {
  type: 'message',
  role: 'developer',
  content: [{ type: 'input_text', text: 'BASE INSTRUCTIONS (only in the prewarm)' }],
};
const BODY = {
  model: MODEL,
  tools: [EXEC_COMMAND_TOOL],
  tool_choice: 'auto',
  parallel_tool_calls: true,
  store: false,
  stream: true,
  include: ['reasoning.encrypted_content'],
};

const user = (text: string): ResponseItem => ({
  type: 'message',
  role: 'user',
  content: [{ type: 'input_text', text }],
});

async function bridgeStats(instance: WsGatewayProcess): Promise<WebSocketBridgeStats> {
  const answer = await fetch(`${instance.url}/__bridge`);
  return ((await answer.json()) as { stats: WebSocketBridgeStats }).stats;
}

/** A conversation as Codex runs it, tracking the full history each response closes. */
class Conversation {
  readonly ids: string[] = [];
  readonly sent: ResponseItem[][] = [];
  private readonly history = new Map<string, ResponseItem[]>();
  last: WsTurn | undefined;

  constructor(private readonly fake: FakeUpstream) {}

  async turn(
    client: WsClient,
    input: ResponseItem[],
    options: { anchor?: string | null; prewarm?: boolean } = {},
  ): Promise<WsTurn> {
    const anchor =
      options.anchor === null ? undefined : (options.anchor ?? this.ids[this.ids.length - 1]);
    const turn = await client.turn({
      ...BODY,
      input,
      ...(anchor === undefined || options.anchor === null ? {} : { previous_response_id: anchor }),
      ...(options.prewarm ? { generate: false } : {}),
    });
    if (turn.error || turn.response?.status !== 'completed') {
      throw new Error(`turn ${this.ids.length + 1} failed: ${JSON.stringify(turn.frames.at(-1))}`);
    }
    const base = anchor === undefined ? [] : (this.history.get(anchor) ?? []);
    const full = [...base, ...input];
    if (!options.prewarm) this.sent.push(full);
    this.history.set(turn.response.id, [...full, ...doneItems(turn)]);
    this.ids.push(turn.response.id);
    this.last = turn;
    return turn;
  }

  /** The output answering the last response's call. */
  toolOutput(text: string): ResponseItem {
    const call = doneItems(this.last as WsTurn).find((item) => item.type === 'function_call');
    if (!call) throw new Error(`no call in ${JSON.stringify(this.last?.frames)}`);
    return { type: 'function_call_output', call_id: call.call_id as string, output: text };
  }

  get upstreamInputs(): unknown[] {
    return this.fake.requests.map((request) => (request.body as JsonObject).input);
  }
}

describe('two bridge instances in separate processes sharing one Redis', () => {
  const prefix = testKeyPrefix('ws-two');
  let redis: Redis;
  let fake: FakeUpstream;
  const children: WsGatewayProcess[] = [];

  beforeAll(() => {
    redis = new Redis(testRedisUrl());
  });
  afterAll(async () => {
    await Promise.all(children.splice(0).map((child) => child.stop()));
    await fake?.close();
    await deleteKeysUnder(redis, prefix);
    await redis.quit();
  });

  it('the socket closes after turn 3; turns 4..10 continue the chain on the other instance', async () => {
    fake = await startFakeUpstream({ mode: 'stateless', sparseCompletion: true });
    const env = {
      REDIS_URL: testRedisUrl(),
      KEY_PREFIX: prefix,
      TARGET: fake.url,
      MODE: 'stateless' as const,
    };
    const [a, b] = await Promise.all([startWsGateway(env), startWsGateway(env)]);
    children.push(a, b);
    expect(a.pid).not.toBe(b.pid);
    const chat = new Conversation(fake);

    // Instance A: the prewarm (turn 1), a prompt answered with a call (2), its output (3).
    const first = await WsClient.connect(a.wsUrl, HEADERS);
    await chat.turn(first, [BASE], { anchor: null, prewarm: true });
    await chat.turn(first, [user('step 2: run something')]);
    await chat.turn(first, [chat.toolOutput('output 2')]);
    await first.close();

    // Instance B: the client continues from turn 3's id.
    const second = await WsClient.connect(b.wsUrl, HEADERS);
    await chat.turn(second, [user('step 4: run something else')]);
    await chat.turn(second, [chat.toolOutput('output 4')]);
    await chat.turn(second, [user('step 6')]);
    await chat.turn(second, [chat.toolOutput('output 6')]);
    await chat.turn(second, [user('step 8')]);
    await chat.turn(second, [chat.toolOutput('output 8')]);
    await chat.turn(second, [user('step 10')]);
    await second.close();
    expect(chat.ids).toHaveLength(10);

    // Every generating turn reached the upstream as the exact full history, base instructions
    // first, never anchored.
    expect(fake.requests).toHaveLength(9);
    expect(chat.upstreamInputs).toEqual(chat.sent);
    for (const request of fake.requests) {
      expect(request.status).toBe(200);
      expect(request.body).not.toHaveProperty('previous_response_id');
      expect(((request.body as JsonObject).input as ResponseItem[])[0]).toEqual(BASE);
    }
    expect((await bridgeStats(a)).turns).toBe(3);
    expect(await bridgeStats(b)).toMatchObject({ turns: 7, completed: 7, errorFrames: 0 });

    // One chain in Redis, written by both processes, rooted at the prewarm.
    const store = new RedisSessionStore({ redis, keyPrefix: prefix });
    const chain = await store.expandChain(
      tenantId(KEY_A, TEST_TENANT_SECRET),
      chat.ids[9] as string,
    );
    expect(chain?.records.map((record) => record.id)).toEqual(chat.ids);
    expect(chain?.records[0]?.input).toEqual([BASE]);

    // Turn 10 was answered with a call. The client reconnects to A mid tool round and sends only
    // the output, without an anchor: its session header finds the chain's head (written by B) in
    // Redis, and the output is sent upstream with the whole history.
    const reconnected = await WsClient.connect(a.wsUrl, HEADERS);
    const output = chat.toolOutput('output 10');
    const turn = await reconnected.turn({ ...BODY, input: [output] });
    await reconnected.close();
    expect(turn.error).toBeUndefined();
    expect(turn.response?.status).toBe('completed');
    const expected = [
      ...(chat.sent.at(-1) as ResponseItem[]),
      ...doneItems(chat.last as WsTurn),
      output,
    ];
    expect(chat.upstreamInputs.at(-1)).toEqual(expected);
    expect(await bridgeStats(a)).toMatchObject({ turns: 4, anchorsAdded: 0, errorFrames: 0 });
  });
});
