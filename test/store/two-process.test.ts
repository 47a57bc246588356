/**
 * Two separate Node processes (two gateway instances) write the same chain on one Redis at once:
 * both extend the shared head (forking whenever they read the same one), race on ids with
 * different content and re-send ids with the same content. Afterwards every chain must expand to
 * exactly its parent's history plus its own items.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import path from 'node:path';
import Redis from 'ioredis';
import { RedisSessionStore } from '../../lib/store/redis-session-store';
import { tenantId } from '../../lib/store/tenant';
import { testKeyPrefix, testRedisUrl } from '../support/redis';
import { deleteKeysUnder } from './redis-harness';

const ROOT = path.resolve(__dirname, '../..');
const TSX = path.join(ROOT, 'node_modules/.bin/tsx');
const WRITER = path.join(__dirname, 'fixtures/chain-writer.ts');
const TURNS = 60;

interface WriterReport {
  writer: string;
  created: { id: string; parentId: string; parentDepth: number }[];
  raced: { id: string; won: boolean }[];
}

function startWriter(config: object): {
  child: ChildProcessWithoutNullStreams;
  ready: Promise<void>;
  report: Promise<WriterReport>;
} {
  const child = spawn(TSX, [WRITER, JSON.stringify(config)], { cwd: ROOT });
  let out = '';
  let err = '';
  let onReady: () => void = () => undefined;
  let onEarlyExit: (error: Error) => void = () => undefined;
  const ready = new Promise<void>((resolve, reject) => {
    onReady = resolve;
    onEarlyExit = reject;
  });
  child.stdout.on('data', (chunk: Buffer) => {
    out += chunk.toString('utf8');
    if (out.includes('ready\n')) onReady();
  });
  child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString('utf8')));
  const report = new Promise<WriterReport>((resolve, reject) => {
    child.once('exit', (code) => {
      onEarlyExit(new Error(`writer exited with ${code} before it was ready: ${err}`));
      if (code !== 0) return reject(new Error(`writer exited with ${code}: ${err}`));
      const line = out.split('\n').find((l) => l.startsWith('{'));
      if (!line) return reject(new Error(`writer printed no report: ${out} ${err}`));
      resolve(JSON.parse(line) as WriterReport);
    });
  });
  return { child, ready, report };
}

describe('two processes writing one chain', () => {
  let redis: Redis;
  const prefix = testKeyPrefix('twoproc');
  beforeAll(() => {
    redis = new Redis(testRedisUrl());
  });
  afterAll(async () => {
    await deleteKeysUnder(redis, prefix);
    await redis.quit();
  });

  it('leaves every chain consistent: parent history + own items, no interleaving, counts match', async () => {
    const tenant = tenantId('sk-shared', 'two-process-secret');
    const store = new RedisSessionStore({ redis, keyPrefix: prefix });
    await store.putResponse({
      tenant,
      id: 'root',
      parentId: null,
      input: [{ type: 'message', role: 'user', content: 'root in' }],
      output: [{ type: 'message', role: 'assistant', content: 'root out' }],
      createdAt: Date.now(),
    });
    const base = { url: testRedisUrl(), prefix, tenant, turns: TURNS };
    const writers = [startWriter({ ...base, writer: 'a' }), startWriter({ ...base, writer: 'b' })];
    await Promise.all(writers.map((w) => w.ready));
    for (const w of writers) w.child.stdin.end('go\n');
    const reports = await Promise.all(writers.map((w) => w.report));

    const created = reports.flatMap((r) => r.created);
    expect(created).toHaveLength(2 * TURNS);
    const depthOf = new Map<string, number>([['root', 1]]);
    let forks = 0;
    const childrenOf = new Map<string, number>();
    for (const { id, parentId, parentDepth } of created) {
      const chain = await store.expandChain(tenant, id);
      expect(chain).not.toBeNull();
      if (!chain) continue;
      const ids = chain.records.map((r) => r.id);
      expect(ids[0]).toBe('root');
      expect(ids[ids.length - 1]).toBe(id);
      expect(ids[ids.length - 2]).toBe(parentId);
      expect(chain.depth).toBe(parentDepth + 1);
      // every record holds exactly its own two items, and the flattening is exactly theirs
      for (const record of chain.records) {
        expect(record.input).toEqual([
          { type: 'message', role: 'user', content: `${record.id} in` },
        ]);
        expect(record.output).toEqual([
          { type: 'message', role: 'assistant', content: `${record.id} out` },
        ]);
      }
      expect(chain.items.map((item) => item.content)).toEqual(
        ids.flatMap((r) => [`${r} in`, `${r} out`]),
      );
      // parent history + own items: the parent's own expansion is this chain minus the leaf
      const parent = await store.expandChain(tenant, parentId);
      expect(parent?.records.map((r) => r.id)).toEqual(ids.slice(0, -1));
      depthOf.set(id, chain.depth);
      childrenOf.set(parentId, (childrenOf.get(parentId) ?? 0) + 1);
    }
    for (const count of childrenOf.values()) if (count > 1) forks += 1;

    const raced = reports.flatMap((r) => r.raced);
    for (let k = 0; k < TURNS; k += 1) {
      const outcomes = raced.filter((r) => r.id === `race-${k}`);
      expect(outcomes).toHaveLength(2);
      expect(outcomes.filter((r) => r.won)).toHaveLength(1);
      const winner = reports.find((r) => r.raced.some((x) => x.id === `race-${k}` && x.won));
      const stored = await store.getResponse(tenant, `race-${k}`);
      expect(stored?.input).toEqual([
        { type: 'message', role: 'user', content: `race by ${winner?.writer}` },
      ]);
      expect((await store.getResponse(tenant, `same-${k}`))?.parentId).toBe('root');
    }

    // root + 2·TURNS turns + TURNS race ids + TURNS same ids + one session head, nothing else
    expect(await redis.zcard(`${prefix}:{${tenant}}:i`)).toBe(1 + 4 * TURNS + 1);
    const head = await store.getSessionHead(tenant, 'shared');
    expect(created.some((c) => c.id === head)).toBe(true);
    process.stdout.write(
      `two-process run: ${created.length} turns, ${forks} forked parents, deepest chain ${Math.max(...depthOf.values())}\n`,
    );
  }, 15_000);
});
