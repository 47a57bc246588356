/**
 * Redis stopped mid-conversation and restarted, through the full relay (`createRelay`, codex
 * profile: the relay keeps the conversation) on a `redis-server` this test owns (own port, AOF
 * with fsync always, so a SIGKILL loses nothing that was acknowledged). `fail-closed`: anchored
 * turns get a clean 503 `relay_store_unavailable` envelope while Redis is down, nothing reaches
 * the upstream, and after the restart the conversation continues with every anchor intact.
 * `fail-open`: un-anchored turns go on while Redis is down.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Redis from 'ioredis';
import type { StoreErrorPolicy } from '../../lib/middleware/chaining-reply';
import { RedisSessionStore } from '../../lib/store/redis-session-store';
import { rawRequest, type RawAnswer } from '../support/fake-upstream/client';
import { useFakes } from '../support/fake-upstream/testing';
import type { FakeUpstream } from '../support/fake-upstream';
import {
  redisServerUnavailableReason,
  spawnRedis,
  type SpawnedRedis,
} from '../support/redis-server';
import { AUTH_A, MODEL, expectEnvelope, useRelays } from './support';

const unavailable = redisServerUnavailableReason();
if (unavailable !== null) {
  process.stdout.write(`\nSkipping the Redis outage fault tests: ${unavailable}\n`);
}

const start = useFakes();
const relayFor = useRelays();
let dir: string;
let server: SpawnedRedis | undefined;
let redis: Redis | undefined;

afterEach(async () => {
  redis?.disconnect();
  redis = undefined;
  await server?.stop();
  server = undefined;
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function durableRedis(port?: number): Promise<SpawnedRedis> {
  return spawnRedis({
    ...(port === undefined ? {} : { port }),
    args: ['--dir', dir, '--appendonly', 'yes', '--appendfsync', 'always'],
  });
}

async function setup(
  onStoreError: StoreErrorPolicy,
): Promise<{ url: string; fake: FakeUpstream; store: RedisSessionStore }> {
  dir = mkdtempSync(path.join(tmpdir(), 'rr-faults-redis-'));
  server = await durableRedis();
  redis = new Redis(server.url, { maxRetriesPerRequest: 1 });
  const store = new RedisSessionStore({ redis, keyPrefix: 'faults', operationTimeoutMs: 300 });
  const fake = await start({ mode: 'stateless' });
  const { url } = await relayFor({
    upstream: fake.url,
    profile: 'codex',
    store,
    tenantSecret: 'faults-secret',
    onStoreError,
    retry: false,
  });
  return { url, fake, store };
}

function turn(url: string, input: string, previous?: string): Promise<RawAnswer> {
  return rawRequest(`${url}/v1/responses`, {
    headers: AUTH_A,
    body: {
      model: MODEL,
      input,
      stream: false,
      ...(previous === undefined ? {} : { previous_response_id: previous }),
    },
  });
}

function completedId(answer: RawAnswer): string {
  expect(answer.status).toBe(200);
  const body = answer.json as { id: string; status: string };
  expect(body.status).toBe('completed');
  return body.id;
}

/** The user texts the upstream received in the request at `index`. */
function userTexts(fake: FakeUpstream, index: number): string[] {
  const input = (fake.requests[index]?.body as { input: unknown[] }).input;
  return JSON.stringify(input).match(/(first|second|third|fork|fresh)[a-z ]* turn/g) ?? [];
}

async function stopRedis(): Promise<void> {
  const closed = new Promise((resolve) => redis?.once('close', resolve));
  await server?.stop();
  await closed;
}

async function restartRedis(): Promise<void> {
  server = await durableRedis(server?.port);
}

(unavailable === null ? describe : describe.skip)('Redis stopped mid-conversation', () => {
  it('fail-closed: anchored turns get a 503 relay_store_unavailable while down; after the restart no anchor is lost', async () => {
    const { url, fake } = await setup('fail-closed');
    const first = completedId(await turn(url, 'first turn'));
    const second = completedId(await turn(url, 'second turn', first));
    expect(userTexts(fake, 1)).toEqual(['first turn', 'second turn']);

    await stopRedis();
    const sentBefore = fake.requests.length;
    for (const anchor of [second, first]) {
      const down = await turn(url, 'third turn', anchor);
      expect(down.status).toBe(503);
      expect(String(down.headers['content-type'])).toMatch(/^application\/json/);
      expectEnvelope(down.json);
      expect((down.json as { error: { code: string } }).error.code).toBe('relay_store_unavailable');
    }
    expect(fake.requests.length).toBe(sentBefore);

    await restartRedis();
    let third: RawAnswer;
    for (;;) {
      third = await turn(url, 'third turn', second);
      if (third.status !== 503) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    const thirdId = completedId(third);
    expect(userTexts(fake, fake.requests.length - 1)).toEqual([
      'first turn',
      'second turn',
      'third turn',
    ]);
    // the older anchor survived too, and so did the new one
    completedId(await turn(url, 'fork turn', first));
    expect(userTexts(fake, fake.requests.length - 1)).toEqual(['first turn', 'fork turn']);
    completedId(await turn(url, 'fresh turn', thirdId));
    expect(userTexts(fake, fake.requests.length - 1)).toEqual([
      'first turn',
      'second turn',
      'third turn',
      'fresh turn',
    ]);
  });

  it('fail-open: un-anchored turns go on while Redis is down; chaining resumes after the restart', async () => {
    const { url, fake } = await setup('fail-open');
    const first = completedId(await turn(url, 'first turn'));

    await stopRedis();
    const sentBefore = fake.requests.length;
    completedId(await turn(url, 'fresh turn'));
    expect(fake.requests.length).toBe(sentBefore + 1);
    // an anchor that cannot be checked is answered as not found (never a 500, never a guess)
    const anchored = await turn(url, 'second turn', first);
    expect(anchored.status).toBe(400);
    expectEnvelope(anchored.json);
    expect((anchored.json as { error: { code: string } }).error.code).toBe(
      'previous_response_not_found',
    );

    await restartRedis();
    let second: RawAnswer;
    for (;;) {
      second = await turn(url, 'second turn', first);
      if (second.status === 200) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    completedId(second);
    expect(userTexts(fake, fake.requests.length - 1)).toEqual(['first turn', 'second turn']);
  });
});
