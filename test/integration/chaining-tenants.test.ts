/**
 * Tenant isolation (DESIGN.md §3, reliability G8): tenant B using tenant A's response ids —
 * continue, GET, DELETE, input_items, cancel — always gets exactly the answer for an unknown id,
 * and nothing of A's (content, tenant hash, credential) appears in B's answers or in the logs.
 * The upstream is shared and has no auth of its own, as behind a gateway with one upstream key:
 * only the relay stands between B and A's responses.
 */
import { relayError } from '../../lib/protocol/relay-errors';
import type { JsonObject } from '../../lib/protocol/types';
import { MemorySessionStore } from '../../lib/store/memory-session-store';
import { tenantId } from '../../lib/store/tenant';
import { startFakeUpstream, type FakeUpstream } from '../support/fake-upstream';
import { EXEC_COMMAND_TOOL } from '../support/fake-upstream/testing';
import { listen, type Listening } from '../support/listen';
import { chainingApp, memoryLogger, TEST_TENANT_SECRET } from './fixtures/chaining-app';
import {
  AUTH_A,
  AUTH_B,
  KEY_A,
  KEY_B,
  call,
  firstCallId,
  toolOutput,
  turn,
} from './fixtures/chaining-client';

const MODEL = 'gpt-test';
const SECRET_INPUT = 'SECRET-A-PROMPT: the launch code is 0000';
const SECRET_TOOL = 'SECRET-A-TOOL-OUTPUT: /home/a/.ssh/id_rsa';
const TENANT_A = tenantId(KEY_A, TEST_TENANT_SECRET);

const notFound = (id: string) => relayError('response_not_found', { id }).toEnvelope();
const previousNotFound = (id: string) =>
  relayError('previous_response_not_found', { id }).toEnvelope();

describe.each(['stateless', 'stateful'] as const)('tenant isolation (%s upstream)', (mode) => {
  let fake: FakeUpstream;
  let gateway: Listening;
  let logger: ReturnType<typeof memoryLogger>;

  beforeEach(async () => {
    fake = await startFakeUpstream({ mode, name: 'shared' });
    logger = memoryLogger();
    gateway = await listen(
      chainingApp({
        mode,
        store: new MemorySessionStore(),
        upstreams: { shared: fake.url },
        logger,
        sessions: true,
      }),
    );
  });
  afterEach(async () => {
    await gateway.close();
    await fake.close();
  });

  it("B never reaches A's responses, and learns nothing from trying", async () => {
    const first = await turn(gateway.url, {
      model: MODEL,
      input: SECRET_INPUT,
      tools: [EXEC_COMMAND_TOOL],
    });
    const r1 = first.response?.id as string;
    const second = await turn(gateway.url, {
      model: MODEL,
      previous_response_id: r1,
      input: [toolOutput(firstCallId(first.response), SECRET_TOOL)],
      tools: [EXEC_COMMAND_TOOL],
    });
    const r2 = second.response?.id as string;
    expect(second.response?.status).toBe('completed');
    const upstreamCalls = fake.requests.length;
    const logStart = logger.lines.length;

    const answersToB: string[] = [];
    const unknown = `resp_${'0'.repeat(48)}`;
    for (const id of [r1, r2, unknown]) {
      const continued = await turn(
        gateway.url,
        { model: MODEL, previous_response_id: id, input: 'hi', tools: [EXEC_COMMAND_TOOL] },
        { headers: AUTH_B },
      );
      expect(continued.status).toBe(400);
      expect(JSON.parse(continued.text)).toEqual(previousNotFound(id));
      answersToB.push(continued.text, JSON.stringify(continued.headers));

      for (const [method, path] of [
        ['GET', `/v1/responses/${id}`],
        ['DELETE', `/v1/responses/${id}`],
        ['GET', `/v1/responses/${id}/input_items`],
        ['POST', `/v1/responses/${id}/cancel`],
      ] as const) {
        const answer = await call(gateway.url, method, path, AUTH_B);
        expect({ method, path, status: answer.status, body: answer.json }).toEqual({
          method,
          path,
          status: 404,
          body: notFound(id),
        });
        answersToB.push(answer.text);
      }
    }
    // B's own session cannot pick up A's pending work either.
    const viaSession = await turn(
      gateway.url,
      { model: MODEL, input: [toolOutput(firstCallId(first.response))] },
      { headers: { ...AUTH_B, 'session-id': 'shared-thread' } },
    );
    expect(viaSession.status).toBe(400);
    answersToB.push(viaSession.text);

    // Nothing reached the upstream on B's behalf.
    expect(fake.requests).toHaveLength(upstreamCalls);
    const seenByB = answersToB.join('\n');
    for (const secret of [SECRET_INPUT, SECRET_TOOL, TENANT_A, KEY_A, 'exec_command']) {
      expect(seenByB).not.toContain(secret);
    }
    const bLogs = logger.lines.slice(logStart).join('\n');
    for (const secret of [SECRET_INPUT, SECRET_TOOL, TENANT_A, KEY_A, r1, r2]) {
      expect(bLogs).not.toContain(secret);
    }
    for (const credential of [KEY_A, KEY_B]) {
      expect(logger.lines.join('\n')).not.toContain(credential);
    }

    // A still owns everything (with the same key sent as x-api-key).
    const headersA = { 'x-api-key': KEY_A };
    const got = await call(gateway.url, 'GET', `/v1/responses/${r1}`, headersA);
    expect(got.status).toBe(200);
    expect(got.json).toMatchObject({ id: r1, object: 'response', status: 'completed' });
    const items = await call(gateway.url, 'GET', `/v1/responses/${r2}/input_items`, headersA);
    expect(items.status).toBe(200);
    expect(JSON.stringify(items.json)).toContain(SECRET_TOOL);
    const cancel = await call(gateway.url, 'POST', `/v1/responses/${r1}/cancel`, headersA);
    expect(cancel.status).toBe(400);
    expect((cancel.json as { error: JsonObject }).error.message).toBe(
      'Cannot cancel a synchronous response.',
    );
    const deleted = await call(gateway.url, 'DELETE', `/v1/responses/${r2}`, AUTH_A);
    expect(deleted).toMatchObject({
      status: 200,
      json: { id: r2, object: 'response.deleted', deleted: true },
    });
    await new Promise((resolve) => setImmediate(resolve));
    const afterDelete = await call(gateway.url, 'GET', `/v1/responses/${r2}`, AUTH_A);
    expect(afterDelete.json).toEqual(notFound(r2));
    const continueDeleted = await turn(gateway.url, {
      model: MODEL,
      previous_response_id: r2,
      input: 'more',
    });
    expect(JSON.parse(continueDeleted.text)).toEqual(previousNotFound(r2));
  });

  it('answers the per-response routes 401 without a credential', async () => {
    const answer = await call(gateway.url, 'GET', '/v1/responses/resp_1', {});
    expect(answer.status).toBe(401);
    expect(answer.json).toEqual(relayError('missing_credentials').toEnvelope());
  });
});

describe('a store whose deleteResponse throws synchronously (stateful upstream)', () => {
  class ThrowingDeleteStore extends MemorySessionStore {
    override deleteResponse(): Promise<boolean> {
      throw new Error('store down');
    }
  }
  let fake: FakeUpstream;
  let gateway: Listening;
  let logger: ReturnType<typeof memoryLogger>;

  beforeEach(async () => {
    fake = await startFakeUpstream({ mode: 'stateful', name: 'shared' });
    logger = memoryLogger();
    gateway = await listen(
      chainingApp({
        mode: 'stateful',
        store: new ThrowingDeleteStore(),
        upstreams: { shared: fake.url },
        logger,
      }),
    );
  });
  afterEach(async () => {
    await gateway.close();
    await fake.close();
  });

  it('answers the DELETE, logs that the relay record remains, and keeps serving', async () => {
    const first = await turn(gateway.url, { model: MODEL, input: 'hi' });
    const id = first.response?.id as string;
    expect(first.response?.status).toBe('completed');

    const deleted = await call(gateway.url, 'DELETE', `/v1/responses/${id}`, AUTH_A);
    expect(deleted).toMatchObject({
      status: 200,
      json: { id, object: 'response.deleted', deleted: true },
    });
    await new Promise((resolve) => setImmediate(resolve));
    const logged = logger.lines.map((line) => JSON.parse(line) as JsonObject);
    expect(logged).toContainEqual(
      expect.objectContaining({
        level: 'error',
        action: 'delete',
        msg: 'response ownership: the upstream deleted the response but the relay record remains',
      }),
    );

    const next = await turn(gateway.url, { model: MODEL, input: 'again' });
    expect(next.status).toBe(200);
    expect(next.response?.status).toBe('completed');
  });
});

describe('responseOwnership with a logger that throws', () => {
  class DownStore extends MemorySessionStore {
    override getResponse(): Promise<null> {
      return Promise.reject(new Error('store down'));
    }
  }
  let fake: FakeUpstream;
  let gateway: Listening;
  let logged = 0;

  beforeEach(async () => {
    fake = await startFakeUpstream({ mode: 'stateful', name: 'shared' });
    const broken = (): never => {
      logged += 1;
      throw new Error('the logger is down');
    };
    gateway = await listen(
      chainingApp({
        mode: 'stateful',
        store: new DownStore(),
        upstreams: { shared: fake.url },
        logger: { debug: broken, info: broken, warn: broken, error: broken },
      }),
    );
  });
  afterEach(async () => {
    await gateway.close();
    await fake.close();
  });

  it('still answers 503 store_unavailable, twice', async () => {
    for (let round = 0; round < 2; round += 1) {
      const answer = await call(gateway.url, 'GET', '/v1/responses/resp_1', AUTH_A);
      expect(answer.status).toBe(503);
      expect(answer.json).toEqual(relayError('store_unavailable').toEnvelope());
    }
    expect(logged).toBe(2);
    expect(fake.requests).toHaveLength(0);
  });
});
