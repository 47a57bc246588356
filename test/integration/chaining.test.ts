/**
 * responseChaining against the fake upstream, in-process: stateless expansion (tool loops, forks,
 * reasoning, references), what becomes an anchor and when it is stored, sessions without anchors,
 * the pairing policy, store failures, and stateful pass-through with affinity. Every stateless
 * case runs through `relayProxyOptions()` and through a stock (tapped) proxy.
 */
import { errorEnvelope } from '../../lib/middleware/error-envelope';
import { sseCompletion } from '../../lib/middleware/sse-completion';
import { relayError } from '../../lib/protocol/relay-errors';
import type { JsonObject, ResponseItem } from '../../lib/protocol/types';
import { MemorySessionStore } from '../../lib/store/memory-session-store';
import {
  SessionStoreError,
  type ExpandedChain,
  type SessionStore,
  type StoredResponse,
} from '../../lib/store/session-store';
import { tenantId } from '../../lib/store/tenant';
import { startFakeUpstream, type FakeUpstream } from '../support/fake-upstream';
import { rawRequest } from '../support/fake-upstream/client';
import { EXEC_COMMAND_TOOL } from '../support/fake-upstream/testing';
import { listen, type Listening } from '../support/listen';
import {
  chainingApp,
  memoryLogger,
  TEST_TENANT_SECRET,
  type ChainingAppConfig,
} from './fixtures/chaining-app';
import {
  AUTH_A,
  KEY_A,
  firstCallId,
  toolOutput,
  turn,
  userMessage,
  type Turn,
} from './fixtures/chaining-client';

const MODEL = 'gpt-test';
const TOOLS = [EXEC_COMMAND_TOOL];
const TENANT_A = tenantId(KEY_A, TEST_TENANT_SECRET);

interface Harness {
  gateway: Listening;
  fakes: FakeUpstream[];
  store: SessionStore;
  logger: ReturnType<typeof memoryLogger>;
}

const open: Array<{ close(): Promise<void> }> = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((item) => item.close()));
});

async function harness(
  config: Partial<ChainingAppConfig> & { fakeModes?: Array<'stateless' | 'stateful'> } = {},
): Promise<Harness> {
  const modes = config.fakeModes ?? [config.mode === 'stateful' ? 'stateful' : 'stateless'];
  const fakes: FakeUpstream[] = [];
  const upstreams: Record<string, string> = {};
  for (const [index, mode] of modes.entries()) {
    const name = String.fromCharCode(97 + index);
    const fake = await startFakeUpstream({ mode, name });
    open.push(fake);
    fakes.push(fake);
    upstreams[name] = fake.url;
  }
  const store = config.store ?? new MemorySessionStore();
  const logger = memoryLogger();
  const gateway = await listen(
    chainingApp({ mode: 'stateless', store, upstreams, logger, ...config }),
  );
  open.push(gateway);
  return { gateway, fakes, store, logger };
}

function upstreamBody(fake: FakeUpstream, index: number): JsonObject {
  return fake.requests[index]?.body as JsonObject;
}

function expectCompleted(result: Turn): NonNullable<Turn['response']> {
  expect(result.error).toBeUndefined();
  expect(result.status).toBe(200);
  expect(result.response?.status).toBe('completed');
  return result.response as NonNullable<Turn['response']>;
}

const notFoundEnvelope = (id: string) =>
  relayError('previous_response_not_found', { id }).toEnvelope();

describe.each([{ proxy: 'relay' as const }, { proxy: 'tap' as const }])(
  'stateless chaining ($proxy proxy)',
  ({ proxy }) => {
    it('expands each continuation into the full history, without the anchor, with store false', async () => {
      const { gateway, fakes } = await harness({ proxy });
      const [fake] = fakes as [FakeUpstream];
      const first = expectCompleted(
        await turn(gateway.url, { model: MODEL, input: 'list the files', tools: TOOLS }),
      );
      const call = first.output[0] as ResponseItem;
      expect(call.type).toBe('function_call');

      const second = expectCompleted(
        await turn(gateway.url, {
          model: MODEL,
          previous_response_id: first.id,
          input: [toolOutput(firstCallId(first))],
          tools: TOOLS,
        }),
      );
      const third = expectCompleted(
        await turn(gateway.url, {
          model: MODEL,
          previous_response_id: second.id,
          input: 'and now?',
          tools: TOOLS,
        }),
      );

      // The client sees the upstream's own ids, and its anchor echoed back.
      expect(fake.requests.map((r) => r.responseId)).toEqual([first.id, second.id, third.id]);
      expect(second.previous_response_id).toBe(first.id);

      const sent = [0, 1, 2].map((i) => upstreamBody(fake, i));
      for (const body of sent) {
        expect(body.store).toBe(false);
        expect(body).not.toHaveProperty('previous_response_id');
      }
      expect(sent[1]?.input).toEqual([
        userMessage('list the files'),
        call,
        toolOutput(firstCallId(first)),
      ]);
      expect(sent[2]?.input).toEqual([
        userMessage('list the files'),
        call,
        toolOutput(firstCallId(first)),
        ...second.output,
        userMessage('and now?'),
      ]);
    });

    it('forks: a continuation from an earlier id replays that branch only', async () => {
      const { gateway, fakes } = await harness({ proxy });
      const [fake] = fakes as [FakeUpstream];
      const root = expectCompleted(await turn(gateway.url, { model: MODEL, input: 'root' }));
      const left = expectCompleted(
        await turn(gateway.url, { model: MODEL, previous_response_id: root.id, input: 'left' }),
      );
      const right = expectCompleted(
        await turn(gateway.url, { model: MODEL, previous_response_id: root.id, input: 'right' }),
      );
      expectCompleted(
        await turn(gateway.url, { model: MODEL, previous_response_id: left.id, input: 'deeper' }),
      );
      expect(upstreamBody(fake, 2).input).toEqual([
        userMessage('root'),
        ...root.output,
        userMessage('right'),
      ]);
      expect(upstreamBody(fake, 3).input).toEqual([
        userMessage('root'),
        ...root.output,
        userMessage('left'),
        ...left.output,
        userMessage('deeper'),
      ]);
      expect(right.id).not.toBe(left.id);
    });

    it('answers an unknown anchor with OpenAI’s exact 400, without calling the upstream', async () => {
      const { gateway, fakes } = await harness({ proxy });
      const result = await turn(gateway.url, {
        model: MODEL,
        previous_response_id: 'resp_unknown',
        input: 'hi',
      });
      expect(result.status).toBe(400);
      expect(result.headers['content-type']).toMatch(/^application\/json/);
      expect(JSON.parse(result.text)).toEqual(notFoundEnvelope('resp_unknown'));
      expect(JSON.parse(result.text)).toEqual({
        error: {
          message: "Previous response with id 'resp_unknown' not found.",
          type: 'invalid_request_error',
          param: 'previous_response_id',
          code: 'previous_response_not_found',
        },
      });
      expect(fakes[0]?.requests).toHaveLength(0);
    });

    it('never makes a failed or cut turn an anchor, and leaves the chain before it intact', async () => {
      const { gateway, fakes, store } = await harness({ proxy });
      const [fake] = fakes as [FakeUpstream];
      const root = expectCompleted(await turn(gateway.url, { model: MODEL, input: 'start' }));

      fake.script({ kind: 'response_failed', code: 'server_error', message: 'boom' });
      const failed = await turn(gateway.url, {
        model: MODEL,
        previous_response_id: root.id,
        input: 'fail please',
      });
      expect(failed.response?.status).toBe('failed');
      const failedId = failed.response?.id as string;

      fake.script({ kind: 'cut', afterEvents: 3 });
      const cut = await turn(gateway.url, {
        model: MODEL,
        previous_response_id: root.id,
        input: 'cut please',
      });
      const cutId = (cut.events[0]?.response as JsonObject).id as string;

      for (const id of [failedId, cutId]) {
        expect(await store.getResponse(TENANT_A, id)).toBeNull();
        const again = await turn(gateway.url, {
          model: MODEL,
          previous_response_id: id,
          input: 'continue',
        });
        expect(JSON.parse(again.text)).toEqual(notFoundEnvelope(id));
      }
      const retry = expectCompleted(
        await turn(gateway.url, { model: MODEL, previous_response_id: root.id, input: 'retry' }),
      );
      const chain = await store.expandChain(TENANT_A, retry.id);
      expect(chain?.records.map((r) => r.id)).toEqual([root.id, retry.id]);
    });

    it('stores the turn before the client can see its terminal event', async () => {
      const memory = new MemorySessionStore();
      const events: string[] = [];
      const slow: SessionStore = Object.assign(Object.create(memory) as SessionStore, {
        async putResponse(record: StoredResponse) {
          await new Promise((resolve) => setTimeout(resolve, 150));
          await memory.putResponse(record);
          events.push(`stored ${record.id}`);
        },
      });
      const { gateway } = await harness({ proxy, store: slow });
      let next: Promise<Turn> | undefined;
      const root = await turn(
        gateway.url,
        { model: MODEL, input: 'quick' },
        {
          onEvent(event) {
            if (event.json?.type !== 'response.completed') return;
            const id = (event.json.response as JsonObject).id as string;
            events.push(`terminal ${id}`);
            // The client continues the moment it sees the terminal event.
            next = turn(gateway.url, { model: MODEL, previous_response_id: id, input: 'next' });
          },
        },
      );
      const id = expectCompleted(root).id;
      expect(events.slice(0, 2)).toEqual([`stored ${id}`, `terminal ${id}`]);
      expectCompleted(await (next as Promise<Turn>));
    });

    it('asks for encrypted reasoning and replays it, so a store=false upstream accepts it', async () => {
      const { gateway, fakes } = await harness({ proxy });
      const [fake] = fakes as [FakeUpstream];
      fake.setDefault({ kind: 'auto', reasoning: true });
      const first = expectCompleted(
        await turn(gateway.url, {
          model: MODEL,
          input: 'think, then call',
          tools: TOOLS,
          reasoning: { effort: 'low' },
        }),
      );
      expect(upstreamBody(fake, 0).include).toEqual(['reasoning.encrypted_content']);
      const reasoning = first.output.find((item) => item.type === 'reasoning');
      expect(typeof reasoning?.encrypted_content).toBe('string');

      expectCompleted(
        await turn(gateway.url, {
          model: MODEL,
          previous_response_id: first.id,
          input: [toolOutput(firstCallId(first))],
          tools: TOOLS,
        }),
      );
      // No `reasoning` in the second request: the history's reasoning items call for the include.
      const second = upstreamBody(fake, 1);
      expect(second.include).toEqual(['reasoning.encrypted_content']);
      expect((second.input as ResponseItem[])[1]).toEqual(reasoning);
    });

    it('adds nothing for a model without reasoning', async () => {
      const { gateway, fakes } = await harness({ proxy });
      expectCompleted(await turn(gateway.url, { model: MODEL, input: 'plain', store: false }));
      expect(upstreamBody(fakes[0] as FakeUpstream, 0)).toEqual({
        model: MODEL,
        input: 'plain',
        store: false,
        stream: true,
      });
    });

    it('drops stored reasoning that has no encrypted content from the replay', async () => {
      const { gateway, fakes } = await harness({ proxy });
      const [fake] = fakes as [FakeUpstream];
      fake.script({ kind: 'text', text: 'thought about it', reasoning: true });
      const first = expectCompleted(await turn(gateway.url, { model: MODEL, input: 'think' }));
      expect(first.output[0]?.type).toBe('reasoning');
      expect(first.output[0]?.encrypted_content).toBeUndefined();
      expectCompleted(
        await turn(gateway.url, { model: MODEL, previous_response_id: first.id, input: 'more' }),
      );
      const replayed = upstreamBody(fake, 1).input as ResponseItem[];
      expect(replayed.map((item) => item.type)).toEqual(['message', 'message', 'message']);
    });

    it('leaves out a reasoning item the client sent by id alone (never persisted upstream)', async () => {
      const { gateway, fakes } = await harness({ proxy });
      expectCompleted(
        await turn(gateway.url, {
          model: MODEL,
          input: [{ type: 'reasoning', id: 'rs_only_an_id', summary: [] }, userMessage('hi')],
        }),
      );
      expect(upstreamBody(fakes[0] as FakeUpstream, 0).input).toEqual([userMessage('hi')]);
    });

    it('resolves item references into the conversation and drops the others', async () => {
      const { gateway, fakes } = await harness({ proxy });
      const [fake] = fakes as [FakeUpstream];
      const first = expectCompleted(await turn(gateway.url, { model: MODEL, input: 'say hi' }));
      const message = first.output[0] as ResponseItem;
      expectCompleted(
        await turn(gateway.url, {
          model: MODEL,
          previous_response_id: first.id,
          input: [
            { type: 'item_reference', id: message.id as string },
            { type: 'item_reference', id: 'msg_never_persisted' },
            userMessage('again'),
          ],
        }),
      );
      expect(upstreamBody(fake, 1).input).toEqual([
        userMessage('say hi'),
        message,
        message,
        userMessage('again'),
      ]);
    });
  },
);

describe('in the documented stack (errorEnvelope → responseChaining → sseCompletion → proxy)', () => {
  const stack = { before: [errorEnvelope()], after: [sseCompletion()] };

  it('stores the output rebuilt from output_item.done when the upstream sends it sparse', async () => {
    const { gateway, fakes, store } = await harness(stack);
    const [fake] = fakes as [FakeUpstream];
    fake.setDefault({ kind: 'sparse', then: { kind: 'auto' } });
    const first = expectCompleted(
      await turn(gateway.url, { model: MODEL, input: 'run', tools: TOOLS }),
    );
    expect(first.output.map((item) => item.type)).toEqual(['function_call']);
    expect((await store.getResponse(TENANT_A, first.id))?.output).toEqual(first.output);
    expectCompleted(
      await turn(gateway.url, {
        model: MODEL,
        previous_response_id: first.id,
        input: [toolOutput(firstCallId(first))],
        tools: TOOLS,
      }),
    );
  });

  it('does not store a stream the relay had to finish as failed, nor an upstream error', async () => {
    const { gateway, fakes, store } = await harness(stack);
    const [fake] = fakes as [FakeUpstream];
    fake.script({ kind: 'cut', afterEvents: 4 }, { kind: 'http_error', status: 500 });
    const cut = await turn(gateway.url, { model: MODEL, input: 'cut' });
    expect(cut.response?.status).toBe('failed');
    expect(await store.getResponse(TENANT_A, cut.response?.id as string)).toBeNull();
    const failed = await turn(gateway.url, { model: MODEL, input: 'error' });
    expect(failed.status).toBe(500);
    expect(failed.error?.type).toBe('server_error');
  });
});

describe('a generate:false prewarm', () => {
  it('becomes an anchor, and the next turn is expanded with the prewarm input', async () => {
    // A minimal upstream that answers a prewarm with an empty completed response (what the
    // Responses WebSocket does) and anything else with one message.
    const bodies: JsonObject[] = [];
    let n = 0;
    const upstream = await listen((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as JsonObject;
        bodies.push(body);
        n += 1;
        const id = `resp_prewarm_test_${n}`;
        const output =
          body.generate === false
            ? []
            : [
                {
                  type: 'message',
                  id: `msg_${n}`,
                  status: 'completed',
                  role: 'assistant',
                  content: [{ type: 'output_text', text: 'ok', annotations: [] }],
                },
              ];
        const response = { id, object: 'response', status: 'completed', model: MODEL, output };
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        res.write(
          `event: response.created\ndata: ${JSON.stringify({ type: 'response.created', sequence_number: 0, response: { ...response, status: 'in_progress', output: [] } })}\n\n`,
        );
        res.end(
          `event: response.completed\ndata: ${JSON.stringify({ type: 'response.completed', sequence_number: 1, response })}\n\n`,
        );
      });
    });
    open.push(upstream);
    const store = new MemorySessionStore();
    const gateway = await listen(
      chainingApp({ mode: 'stateless', store, upstreams: { ws: upstream.url } }),
    );
    open.push(gateway);
    const base = { type: 'message', role: 'developer', content: 'BASE INSTRUCTIONS' };
    const prewarm = expectCompleted(
      await turn(gateway.url, { model: MODEL, input: [base], generate: false }),
    );
    expect(prewarm.output).toEqual([]);
    expectCompleted(
      await turn(gateway.url, {
        model: MODEL,
        previous_response_id: prewarm.id,
        input: [userMessage('first real turn')],
      }),
    );
    expect(bodies[1]?.input).toEqual([base, userMessage('first real turn')]);
    expect((await store.getResponse(TENANT_A, prewarm.id))?.input).toEqual([base]);
  });
});

describe('sessions without anchors (stateless)', () => {
  const SESSION = { ...AUTH_A, 'session-id': 'thread-0001' };

  it('continues the session when a tool-output-only turn omits previous_response_id', async () => {
    const { gateway, fakes, store } = await harness({ sessions: true });
    const [fake] = fakes as [FakeUpstream];
    const first = expectCompleted(
      await turn(gateway.url, { model: MODEL, input: 'run', tools: TOOLS }, { headers: SESSION }),
    );
    const second = expectCompleted(
      await turn(
        gateway.url,
        { model: MODEL, input: [toolOutput(firstCallId(first))], tools: TOOLS },
        { headers: SESSION },
      ),
    );
    expect(upstreamBody(fake, 1).input).toEqual([
      userMessage('run'),
      ...first.output,
      toolOutput(firstCallId(first)),
    ]);
    expect((await store.getResponse(TENANT_A, second.id))?.parentId).toBe(first.id);
    expect(await store.getSessionHead(TENANT_A, 'thread-0001')).toBe(second.id);
  });

  it('never gives a self-contained input an anchor, and links a full transcript that extends the session', async () => {
    const { gateway, fakes, store } = await harness({ sessions: true });
    const [fake] = fakes as [FakeUpstream];
    const first = expectCompleted(
      await turn(gateway.url, { model: MODEL, input: 'run', tools: TOOLS }, { headers: SESSION }),
    );
    // Codex over HTTP: the full history every time, no previous_response_id.
    const transcript = [userMessage('run'), ...first.output, toolOutput(firstCallId(first))];
    const second = expectCompleted(
      await turn(
        gateway.url,
        { model: MODEL, input: transcript, tools: TOOLS },
        { headers: SESSION },
      ),
    );
    expect(upstreamBody(fake, 1).input).toEqual(transcript);
    // Stored as the continuation of the session: only the new item, so storage stays linear.
    const record = await store.getResponse(TENANT_A, second.id);
    expect(record?.parentId).toBe(first.id);
    expect(record?.input).toEqual([toolOutput(firstCallId(first))]);
    const chain = await store.expandChain(TENANT_A, second.id);
    expect(chain?.items).toEqual([...transcript, ...second.output]);
  });

  it('with linkTranscripts: false, reads nothing for a full transcript and stores it as a root', async () => {
    const memory = new MemorySessionStore();
    const reads: string[] = [];
    const store = Object.assign(Object.create(memory) as SessionStore, {
      getSessionHead: (tenant: string, key: string) => {
        reads.push('getSessionHead');
        return memory.getSessionHead(tenant, key);
      },
      expandChain: (tenant: string, id: string) => {
        reads.push('expandChain');
        return memory.expandChain(tenant, id);
      },
    });
    const { gateway } = await harness({ sessions: true, linkTranscripts: false, store });
    const first = expectCompleted(
      await turn(gateway.url, { model: MODEL, input: 'run', tools: TOOLS }, { headers: SESSION }),
    );
    const transcript = [userMessage('run'), ...first.output, toolOutput(firstCallId(first))];
    const second = expectCompleted(
      await turn(
        gateway.url,
        { model: MODEL, input: transcript, tools: TOOLS },
        { headers: SESSION },
      ),
    );
    expect(reads).toEqual([]);
    expect((await memory.getResponse(TENANT_A, second.id))?.parentId).toBeNull();
    expect(await memory.getSessionHead(TENANT_A, 'thread-0001')).toBe(second.id);
    // A tool-output-only turn still reads the session (here the call was already answered in
    // the stored transcript, so nothing is injected and the stray output is refused).
    const stray = await turn(
      gateway.url,
      { model: MODEL, input: [toolOutput(firstCallId(first))], tools: TOOLS },
      { headers: SESSION },
    );
    expect(stray.status).toBe(400);
    expect(reads).toEqual(['getSessionHead', 'expandChain']);
  });

  it('lets a compacted transcript replace the stored history instead of appending to it', async () => {
    const { gateway, fakes, store } = await harness({ sessions: true });
    const [fake] = fakes as [FakeUpstream];
    const first = expectCompleted(
      await turn(
        gateway.url,
        { model: MODEL, input: 'long story', tools: TOOLS },
        { headers: SESSION },
      ),
    );
    const second = expectCompleted(
      await turn(
        gateway.url,
        { model: MODEL, input: [toolOutput(firstCallId(first))], tools: TOOLS },
        { headers: SESSION },
      ),
    );
    const compacted = [userMessage('summary of the long story'), userMessage('go on')];
    const third = expectCompleted(
      await turn(
        gateway.url,
        { model: MODEL, input: compacted, tools: TOOLS },
        { headers: SESSION },
      ),
    );
    expect(upstreamBody(fake, 2).input).toEqual(compacted);
    expect((await store.getResponse(TENANT_A, third.id))?.parentId).toBeNull();

    expectCompleted(
      await turn(
        gateway.url,
        { model: MODEL, input: [toolOutput(firstCallId(third))], tools: TOOLS },
        { headers: SESSION },
      ),
    );
    expect(upstreamBody(fake, 3).input).toEqual([
      ...compacted,
      ...third.output,
      toolOutput(firstCallId(third)),
    ]);
    expect(second.id).not.toBe(third.id);
  });

  it('does not inject when the outputs answer nothing pending; the relay rejects them', async () => {
    const { gateway, fakes } = await harness({ sessions: true });
    expectCompleted(
      await turn(gateway.url, { model: MODEL, input: 'run', tools: TOOLS }, { headers: SESSION }),
    );
    const stray = await turn(
      gateway.url,
      { model: MODEL, input: [toolOutput('call_unknown')], tools: TOOLS },
      { headers: SESSION },
    );
    expect(stray.status).toBe(400);
    expect(stray.error).toEqual({
      message: 'No tool call found for function call output with call_id call_unknown.',
      type: 'invalid_request_error',
      param: 'input',
      code: null,
    });
    expect(fakes[0]?.requests).toHaveLength(1);
  });

  it('keeps sessions of different tenants apart', async () => {
    const { gateway, fakes } = await harness({ sessions: true });
    const first = expectCompleted(
      await turn(gateway.url, { model: MODEL, input: 'run', tools: TOOLS }, { headers: SESSION }),
    );
    const other = await turn(
      gateway.url,
      { model: MODEL, input: [toolOutput(firstCallId(first))], tools: TOOLS },
      { headers: { authorization: 'Bearer sk-other', 'session-id': 'thread-0001' } },
    );
    expect(other.status).toBe(400);
    expect(String(other.error?.message)).toMatch(/^No tool call found/);
    expect(fakes[0]?.requests).toHaveLength(1);
  });
});

describe('the pairing policy on the expanded history', () => {
  async function withPendingCall(validate: 'reject' | 'repair' | 'off') {
    const h = await harness({ validate });
    const first = expectCompleted(
      await turn(h.gateway.url, { model: MODEL, input: 'run', tools: TOOLS }),
    );
    return { ...h, first };
  }

  it("reject: answers OpenAI's 400 locally", async () => {
    const { gateway, fakes, first } = await withPendingCall('reject');
    const result = await turn(gateway.url, {
      model: MODEL,
      previous_response_id: first.id,
      input: 'ignore the tool',
      tools: TOOLS,
    });
    expect(result.status).toBe(400);
    expect(result.error).toEqual({
      message: `No tool output found for function call ${firstCallId(first)}.`,
      type: 'invalid_request_error',
      param: 'input',
      code: null,
    });
    expect(fakes[0]?.requests).toHaveLength(1);
  });

  it('repair: answers the pending call with an aborted output, and logs it', async () => {
    const { gateway, fakes, first, logger } = await withPendingCall('repair');
    expectCompleted(
      await turn(gateway.url, {
        model: MODEL,
        previous_response_id: first.id,
        input: [toolOutput('call_stray'), userMessage('ignore the tool')],
        tools: TOOLS,
      }),
    );
    expect(upstreamBody(fakes[0] as FakeUpstream, 1).input).toEqual([
      userMessage('run'),
      ...first.output,
      { type: 'function_call_output', call_id: firstCallId(first), output: 'aborted' },
      userMessage('ignore the tool'),
    ]);
    expect(logger.lines.some((line) => line.includes('input repaired'))).toBe(true);
  });

  it("off: sends it as is, and the upstream's own error comes back", async () => {
    const { gateway, fakes, first } = await withPendingCall('off');
    const result = await turn(gateway.url, {
      model: MODEL,
      previous_response_id: first.id,
      input: 'ignore the tool',
      tools: TOOLS,
    });
    expect(fakes[0]?.requests).toHaveLength(2);
    expect(result.status).toBe(400);
    expect(String(result.error?.message)).toBe(
      `No tool output found for function call ${firstCallId(first)}.`,
    );
  });
});

/** A store whose chosen methods fail with `error`. */
function failingStore(
  base: SessionStore,
  error: Error,
  methods: Array<keyof SessionStore>,
): SessionStore {
  const overrides: Partial<SessionStore> = {};
  for (const method of methods) {
    (overrides as Record<string, unknown>)[method] = () => Promise.reject(error);
  }
  return Object.assign(Object.create(base) as SessionStore, overrides);
}

describe('store failures', () => {
  const down = new SessionStoreError('store_unavailable', 'redis is down');

  it('an upstreamName option that throws loses the turn like a store error, logged, not the response', async () => {
    const { gateway, store, logger } = await harness({
      upstreamName: () => {
        throw new Error('naming bug');
      },
    });
    const first = expectCompleted(await turn(gateway.url, { model: MODEL, input: 'hello' }));
    expect(await store.getResponse(TENANT_A, first.id)).toBeNull();
    expect(logger.lines.some((line) => line.includes('could not be stored'))).toBe(true);
    const next = await turn(gateway.url, {
      model: MODEL,
      previous_response_id: first.id,
      input: 'and then?',
    });
    expect(next.status).toBe(400);
    expect(JSON.parse(next.text)).toEqual(notFoundEnvelope(first.id));
  });

  it('fail-closed: 503 for a continuation; a new conversation still runs, its write is logged', async () => {
    const memory = new MemorySessionStore();
    const store = failingStore(memory, down, ['expandChain', 'putResponse']);
    const { gateway, fakes, logger } = await harness({ store, onStoreError: 'fail-closed' });
    const result = await turn(gateway.url, {
      model: MODEL,
      previous_response_id: 'resp_x',
      input: 'hi',
    });
    expect(result.status).toBe(503);
    expect(JSON.parse(result.text)).toEqual(relayError('store_unavailable').toEnvelope());
    expect(fakes[0]?.requests).toHaveLength(0);

    const fresh = expectCompleted(await turn(gateway.url, { model: MODEL, input: 'hello' }));
    expect(await memory.getResponse(TENANT_A, fresh.id)).toBeNull();
    const line = logger.lines.find((l) => l.includes('could not be stored'));
    expect(line).toContain('"level":"error"');
    expect(line).toContain('store_unavailable');
    expect(line).not.toContain(KEY_A);
  });

  it('fail-open: an anchor that cannot be checked is not found; a session is ignored', async () => {
    const memory = new MemorySessionStore();
    const store = failingStore(memory, down, ['expandChain', 'getSessionHead']);
    const { gateway, fakes } = await harness({
      store,
      onStoreError: 'fail-open',
      sessions: true,
    });
    const anchored = await turn(gateway.url, {
      model: MODEL,
      previous_response_id: 'resp_x',
      input: 'hi',
    });
    expect(JSON.parse(anchored.text)).toEqual(notFoundEnvelope('resp_x'));
    const unchained = expectCompleted(
      await turn(
        gateway.url,
        { model: MODEL, input: 'hello' },
        { headers: { ...AUTH_A, 'session-id': 's1' } },
      ),
    );
    expect(fakes[0]?.requests).toHaveLength(1);
    // The write still worked, so the response is an anchor.
    expect(await memory.getResponse(TENANT_A, unchained.id)).not.toBeNull();
  });

  it('a failed write delivers the completed turn; continuing from it is previous_response_not_found', async () => {
    const memory = new MemorySessionStore();
    const store = failingStore(memory, down, ['putResponse']);
    const { gateway } = await harness({ store });
    const completed = expectCompleted(await turn(gateway.url, { model: MODEL, input: 'hello' }));
    const next = await turn(gateway.url, {
      model: MODEL,
      previous_response_id: completed.id,
      input: 'again',
    });
    expect(JSON.parse(next.text)).toEqual(notFoundEnvelope(completed.id));
  });

  it('a history over the store caps is a clear 400, never a truncated history', async () => {
    const memory = new MemorySessionStore();
    const deep = new SessionStoreError('chain_too_deep', 'too deep', { limit: 3 });
    const store = failingStore(memory, deep, ['expandChain']);
    const { gateway } = await harness({ store });
    const result = await turn(gateway.url, {
      model: MODEL,
      previous_response_id: 'resp_deep',
      input: 'hi',
    });
    expect(result.status).toBe(400);
    expect(result.error?.code).toBe('relay_chain_too_deep');
    expect(String(result.error?.message)).toContain("'resp_deep'");
  });

  it('answers an OpenAI envelope even when the logger throws: 500 for a corrupt chain, 503 when down', async () => {
    const memory = new MemorySessionStore();
    const store = Object.assign(Object.create(memory) as SessionStore, {
      // A chain without its items: the middleware fails on it, outside any store error handling.
      expandChain: (_tenant: string, id: string) =>
        id === 'resp_corrupt' ? Promise.resolve({} as ExpandedChain) : Promise.reject(down),
    });
    let logged = 0;
    const broken = (): never => {
      logged += 1;
      throw new Error('the logger is down');
    };
    const { gateway, fakes } = await harness({
      store,
      logger: { debug: broken, info: broken, warn: broken, error: broken },
    });
    const corrupt = await turn(gateway.url, {
      model: MODEL,
      previous_response_id: 'resp_corrupt',
      input: 'hi',
    });
    expect(corrupt.status).toBe(500);
    expect(JSON.parse(corrupt.text)).toEqual(relayError('internal_error').toEnvelope());
    const unavailable = await turn(gateway.url, {
      model: MODEL,
      previous_response_id: 'resp_x',
      input: 'hi',
    });
    expect(unavailable.status).toBe(503);
    expect(JSON.parse(unavailable.text)).toEqual(relayError('store_unavailable').toEnvelope());
    expect(logged).toBe(2);
    expect(fakes[0]?.requests).toHaveLength(0);
  });

  it('caps hit when storing keep the turn but never store a cut history', async () => {
    const store = new MemorySessionStore({ maxChainDepth: 2 });
    const { gateway, logger } = await harness({ store });
    const one = expectCompleted(await turn(gateway.url, { model: MODEL, input: '1' }));
    const two = expectCompleted(
      await turn(gateway.url, { model: MODEL, previous_response_id: one.id, input: '2' }),
    );
    const three = expectCompleted(
      await turn(gateway.url, { model: MODEL, previous_response_id: two.id, input: '3' }),
    );
    expect(await store.getResponse(TENANT_A, three.id)).toBeNull();
    expect(logger.lines.some((line) => line.includes('chain_too_deep'))).toBe(true);
  });
});

describe('requests the middleware refuses or leaves alone', () => {
  it('401 without a credential, never an anonymous tenant', async () => {
    const { gateway, fakes } = await harness();
    const result = await turn(gateway.url, { model: MODEL, input: 'hi' }, { headers: {} });
    expect(result.status).toBe(401);
    expect(JSON.parse(result.text)).toEqual(relayError('missing_credentials').toEnvelope());
    expect(fakes[0]?.requests).toHaveLength(0);
  });

  it('refuses previous_response_id together with conversation', async () => {
    const { gateway } = await harness();
    const result = await turn(gateway.url, {
      model: MODEL,
      previous_response_id: 'resp_1',
      conversation: 'conv_1',
      input: 'hi',
    });
    expect(result.status).toBe(400);
    expect(result.error?.param).toBe('conversation');
  });

  it('answers a body it cannot read with an envelope', async () => {
    const { gateway, fakes } = await harness();
    const answer = await rawRequest(`${gateway.url}/v1/responses`, {
      body: 'model=gpt',
      headers: { ...AUTH_A, 'content-type': 'text/plain' },
    });
    expect(answer.status).toBe(400);
    expect((answer.json as { error: JsonObject }).error.code).toBe('unsupported_media_type');
    expect(fakes[0]?.requests).toHaveLength(0);
  });
});

describe('stateful chaining with two upstream accounts', () => {
  it('passes the anchor through and pins every continuation to the account that holds it', async () => {
    const { gateway, fakes, store } = await harness({
      mode: 'stateful',
      fakeModes: ['stateful', 'stateful'],
    });
    const [a, b] = fakes as [FakeUpstream, FakeUpstream];
    // Two conversations, spread round-robin: one per account.
    const c1 = expectCompleted(
      await turn(gateway.url, { model: MODEL, input: 'one', tools: TOOLS }),
    );
    const c2 = expectCompleted(
      await turn(gateway.url, { model: MODEL, input: 'two', tools: TOOLS }),
    );
    expect(a.responses.has(c1.id)).toBe(true);
    expect(b.responses.has(c2.id)).toBe(true);
    const step = async (head: NonNullable<Turn['response']>) => {
      const pending = head.output.some((item) => item.type === 'function_call');
      return expectCompleted(
        await turn(gateway.url, {
          model: MODEL,
          previous_response_id: head.id,
          input: pending ? [toolOutput(firstCallId(head))] : 'continue',
          tools: TOOLS,
        }),
      );
    };
    let heads = [c1, c2];
    for (let round = 0; round < 4; round += 1) heads = await Promise.all(heads.map(step));
    for (const fake of [a, b]) {
      for (const request of fake.requests) {
        const anchor = (request.body as JsonObject).previous_response_id;
        if (typeof anchor === 'string') expect(fake.responses.has(anchor)).toBe(true);
        expect(request.status).toBe(200);
      }
    }
    expect((await store.getResponse(TENANT_A, c1.id))?.upstream).toBe('a');
    expect((await store.getResponse(TENANT_A, c2.id))?.upstream).toBe('b');
  });

  it('leaves the body as the client sent it', async () => {
    const { gateway, fakes } = await harness({ mode: 'stateful' });
    const first = expectCompleted(await turn(gateway.url, { model: MODEL, input: 'x' }));
    const body = { model: MODEL, previous_response_id: first.id, input: 'y', stream: true };
    expectCompleted(await turn(gateway.url, body));
    expect(fakes[0]?.requests[1]?.body).toEqual(body);
  });

  it('stores a JSON (non-stream) response before the client gets it', async () => {
    const { gateway, store } = await harness({ mode: 'stateful' });
    const first = await turn(gateway.url, { model: MODEL, input: 'json', stream: false });
    expect(first.status).toBe(200);
    const id = first.response?.id as string;
    expect(await store.getResponse(TENANT_A, id)).not.toBeNull();
    expectCompleted(
      await turn(gateway.url, {
        model: MODEL,
        previous_response_id: id,
        input: 'again',
        stream: false,
      }),
    );
  });

  it('answers an anchor it never stored as not found, without asking the upstream', async () => {
    const { gateway, fakes } = await harness({ mode: 'stateful' });
    const result = await turn(gateway.url, {
      model: MODEL,
      previous_response_id: 'resp_elsewhere',
      input: 'hi',
    });
    expect(JSON.parse(result.text)).toEqual(notFoundEnvelope('resp_elsewhere'));
    expect(fakes[0]?.requests).toHaveLength(0);
  });

  it('injects the session head for a tool-output-only turn', async () => {
    const { gateway, fakes } = await harness({ mode: 'stateful', sessions: true });
    const headers = { ...AUTH_A, 'session-id': 'abc' };
    const first = expectCompleted(
      await turn(gateway.url, { model: MODEL, input: 'run', tools: TOOLS }, { headers }),
    );
    expectCompleted(
      await turn(
        gateway.url,
        { model: MODEL, input: [toolOutput(firstCallId(first))], tools: TOOLS },
        { headers },
      ),
    );
    expect((fakes[0]?.requests[1]?.body as JsonObject).previous_response_id).toBe(first.id);
  });
});

/** A store that records the name of every method called on it (optionally hiding some). */
function countingStore(
  memory: MemorySessionStore,
  calls: string[],
  hidden: string[] = [],
): SessionStore {
  return new Proxy(memory, {
    get(target, property, receiver) {
      if (hidden.includes(String(property))) return undefined;
      const value = Reflect.get(target, property, receiver) as unknown;
      if (typeof value !== 'function') return value;
      return (...args: unknown[]) => {
        calls.push(String(property));
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  }) as SessionStore;
}

describe('expansion reads the store once per turn', () => {
  it('uses expandChain (one round trip) and putResponse per continuation', async () => {
    const memory = new MemorySessionStore();
    const calls: string[] = [];
    const counting = countingStore(memory, calls);
    const { gateway } = await harness({ store: counting });
    let previous = expectCompleted(await turn(gateway.url, { model: MODEL, input: '0' }));
    calls.length = 0;
    for (let i = 1; i <= 5; i += 1) {
      previous = expectCompleted(
        await turn(gateway.url, { model: MODEL, previous_response_id: previous.id, input: `${i}` }),
      );
    }
    expect(calls).toEqual(Array.from({ length: 5 }, () => ['expandChain', 'putResponse']).flat());
    const chain = (await memory.expandChain(TENANT_A, previous.id)) as ExpandedChain;
    expect(chain.depth).toBe(6);
  });

  /**
   * Four turns over a session header, no anchor: a prompt (a call comes back), its tool output
   * (the session head is injected), then the same again.
   */
  async function sessionLoop(store: SessionStore): Promise<string> {
    const { gateway, fakes } = await harness({ store, sessions: true });
    const headers = { ...AUTH_A, 'session-id': 'loop' };
    let previous: NonNullable<Turn['response']> | undefined;
    for (let i = 0; i < 4; i += 1) {
      const input =
        i % 2 === 0
          ? `run ${i}`
          : [toolOutput(firstCallId(previous as NonNullable<Turn['response']>))];
      previous = expectCompleted(
        await turn(gateway.url, { model: MODEL, input, tools: TOOLS }, { headers }),
      );
    }
    // the tool-output turns went out with the history the session head holds
    const last = upstreamBody(fakes[0] as FakeUpstream, 3);
    expect(Array.isArray(last.input) && last.input.length).toBeGreaterThan(1);
    return (previous as NonNullable<Turn['response']>).id;
  }

  it('reads and writes a session turn in one call each (expandSessionHead, putSessionResponse)', async () => {
    const memory = new MemorySessionStore();
    const calls: string[] = [];
    const head = await sessionLoop(countingStore(memory, calls));
    // the first turn reads a session that has no head yet
    expect(calls).toEqual(
      Array.from({ length: 4 }, () => ['expandSessionHead', 'putSessionResponse']).flat(),
    );
    expect(await memory.getSessionHead(TENANT_A, 'loop')).toBe(head);
  });

  it('falls back to the separate calls on a store without the optional methods', async () => {
    const memory = new MemorySessionStore();
    const calls: string[] = [];
    const head = await sessionLoop(
      countingStore(memory, calls, ['expandSessionHead', 'putSessionResponse']),
    );
    expect(calls).toEqual([
      ...['getSessionHead', 'putResponse', 'setSessionHead'],
      ...Array.from({ length: 3 }, () => [
        'getSessionHead',
        'expandChain',
        'putResponse',
        'setSessionHead',
      ]).flat(),
    ]);
    expect(await memory.getSessionHead(TENANT_A, 'loop')).toBe(head);
  });
});
