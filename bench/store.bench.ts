/**
 * Session store cost of a long tool loop: a 200-turn conversation where every turn does what the
 * chaining middleware does (expandChain(parent), then putResponse(child)). Reports Redis round
 * trips per turn (commands counted on the client), stored bytes (STRLEN and MEMORY USAGE of the
 * conversation's keys) at turns 10/50/100/200, and per-turn latency, for RedisSessionStore and
 * MemorySessionStore. Redis: REDIS_URL, else 127.0.0.1:6379, else a redis-server spawned here.
 */
import Redis from 'ioredis';
import { MemorySessionStore } from '../lib/store/memory-session-store';
import { RedisSessionStore } from '../lib/store/redis-session-store';
import type { SessionStore, StoredResponse } from '../lib/store/session-store';
import { tenantId } from '../lib/store/tenant';
import type { ResponseItem } from '../lib/protocol/types';
import { pingRedis, spawnRedis, type SpawnedRedis } from '../test/support/redis-server';

export const title =
  'Session store: 200-turn tool conversation (expandChain + putResponse per turn), Redis vs memory';

const TURNS = 200;
const CHECKPOINTS = [10, 50, 100, 200];
const REPEATS = 5;
const TENANT = tenantId('sk-bench', 'bench-secret');

/** Deterministic filler text of about `bytes` characters. */
function filler(seed: number, bytes: number): string {
  const words = [
    'src/',
    'index.ts',
    'const',
    'return',
    'await',
    '// ok',
    'function',
    '=>',
    '{}',
    'line',
  ];
  let out = '';
  for (let i = 0; out.length < bytes; i += 1) out += `${words[(seed + i) % words.length]} `;
  return out.slice(0, bytes);
}

/** Turn i: a ~1 KB tool output in and a ~300 B tool call out; every 10th turn a user message and a reply. */
function turnRecord(i: number, prefix: string): StoredResponse {
  const id = `resp_${prefix}_${String(i).padStart(4, '0')}`;
  const parentId = i === 0 ? null : `resp_${prefix}_${String(i - 1).padStart(4, '0')}`;
  let input: ResponseItem[];
  let output: ResponseItem[];
  if (i % 10 === 0) {
    input = [
      { type: 'message', role: 'user', content: [{ type: 'input_text', text: filler(i, 200) }] },
    ];
    output = [
      {
        type: 'message',
        id: `msg_${i}`,
        role: 'assistant',
        status: 'completed',
        content: [{ type: 'output_text', text: filler(i + 1, 300), annotations: [] }],
      },
    ];
  } else {
    input = [{ type: 'function_call_output', call_id: `call_${i - 1}`, output: filler(i, 1000) }];
    output = [
      {
        type: 'function_call',
        id: `fc_${i}`,
        call_id: `call_${i}`,
        name: 'shell',
        arguments: JSON.stringify({ command: ['bash', '-lc', filler(i + 2, 220)] }),
        status: 'completed',
      },
    ];
  }
  return {
    tenant: TENANT,
    id,
    parentId,
    input,
    output,
    model: 'gpt-5.1-codex',
    createdAt: Date.now(),
  };
}

interface TurnStats {
  ms: number[];
  commands: number[];
  chainBytes: number[];
  stored: Map<number, { strlen: number; memory: number }>;
}

async function conversation(
  store: SessionStore,
  prefix: string,
  counter: () => number,
  measure?: (turn: number) => Promise<{ strlen: number; memory: number }>,
): Promise<TurnStats> {
  const stats: TurnStats = { ms: [], commands: [], chainBytes: [], stored: new Map() };
  for (let i = 0; i < TURNS; i += 1) {
    const record = turnRecord(i, prefix);
    const before = counter();
    const start = process.hrtime.bigint();
    let chainBytes = 0;
    if (record.parentId !== null) {
      const chain = await store.expandChain(TENANT, record.parentId);
      if (!chain || chain.depth !== i) throw new Error(`turn ${i}: the chain did not expand`);
      chainBytes = chain.bytes;
    }
    await store.putResponse(record);
    stats.ms.push(Number(process.hrtime.bigint() - start) / 1e6);
    stats.commands.push(counter() - before);
    stats.chainBytes.push(chainBytes);
    if (measure && CHECKPOINTS.includes(i + 1)) stats.stored.set(i + 1, await measure(i + 1));
  }
  return stats;
}

const median = (values: number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? 0;
};

/** Median over repeats of the mean latency of the 5 turns ending at `turn`. */
function latencyAt(runs: TurnStats[], turn: number): number {
  return median(runs.map((r) => r.ms.slice(turn - 5, turn).reduce((a, b) => a + b, 0) / 5));
}

async function redisUrl(): Promise<{ url: string; spawned?: SpawnedRedis } | null> {
  if (process.env.REDIS_URL) return { url: process.env.REDIS_URL };
  if (await pingRedis('127.0.0.1', 6379)) return { url: 'redis://127.0.0.1:6379' };
  try {
    const spawned = await spawnRedis();
    return { url: spawned.url, spawned };
  } catch {
    return null;
  }
}

export async function run(): Promise<void> {
  const memoryRuns: TurnStats[] = [];
  for (let r = 0; r < REPEATS; r += 1) {
    const store = new MemorySessionStore();
    memoryRuns.push(await conversation(store, `m${r}`, () => 0));
    await store.close();
  }

  const target = await redisUrl();
  if (!target) {
    process.stdout.write(
      'Redis: skipped (no REDIS_URL, nothing on 127.0.0.1:6379, no redis-server)\n',
    );
    return;
  }
  const redis = new Redis(target.url);
  const admin = new Redis(target.url);
  let commands = 0;
  const send = redis.sendCommand.bind(redis);
  redis.sendCommand = ((...args: unknown[]) => {
    commands += 1;
    return (send as (...a: unknown[]) => unknown)(...args);
  }) as typeof redis.sendCommand;

  const keyPrefix = `bench:${process.pid}:${Date.now()}`;
  const store = new RedisSessionStore({ redis, keyPrefix });
  const redisRuns: TurnStats[] = [];
  try {
    for (let r = 0; r < REPEATS; r += 1) {
      const prefix = `r${r}`;
      const measure = async (turn: number): Promise<{ strlen: number; memory: number }> => {
        const keys: string[] = [];
        for (let i = 0; i < turn; i += 1) {
          keys.push(`${keyPrefix}:{${TENANT}}:r:${turnRecord(i, prefix).id}`);
        }
        const pipeline = admin.pipeline();
        for (const key of keys) pipeline.strlen(key).memory('USAGE', key);
        const replies = (await pipeline.exec()) ?? [];
        let strlen = 0;
        let memory = 0;
        replies.forEach(([, value], index) => {
          if (index % 2 === 0) strlen += Number(value);
          else memory += Number(value);
        });
        return { strlen, memory };
      };
      redisRuns.push(
        await conversation(store, prefix, () => commands, r === 0 ? measure : undefined),
      );
    }
    const indexBytes = Number(await admin.memory('USAGE', `${keyPrefix}:{${TENANT}}:i`));
    const first = redisRuns[0] as TurnStats;
    const rows = CHECKPOINTS.map((turn) => {
      const stored = first.stored.get(turn) ?? { strlen: 0, memory: 0 };
      const rtsPerTurn =
        first.commands.slice(1, turn).reduce((a, b) => a + b, 0) / Math.max(1, turn - 1);
      return [
        String(turn),
        String(first.commands[turn - 1]),
        rtsPerTurn.toFixed(2),
        String(stored.strlen),
        String(Math.round(stored.strlen / turn)),
        String(stored.memory),
        String(first.chainBytes[turn - 1]),
        latencyAt(redisRuns, turn).toFixed(3),
        latencyAt(memoryRuns, turn).toFixed(3),
      ];
    });
    const header = [
      'turn',
      'RTs this turn',
      'RTs/turn avg',
      'stored B (STRLEN)',
      'B/turn',
      'MEMORY USAGE B',
      'chain B expanded',
      'Redis ms/turn',
      'memory ms/turn',
    ];
    const widths = header.map((h, c) =>
      Math.max(h.length, ...rows.map((row) => (row[c] ?? '').length)),
    );
    const line = (cells: string[]): string =>
      `| ${cells.map((cell, c) => cell.padStart(widths[c] ?? 0)).join(' | ')} |\n`;
    process.stdout.write(
      `Redis ${target.url}${target.spawned ? ' (spawned for the bench)' : ''}; ${REPEATS} runs, latency = median of the mean of the 5 turns ending at each row\n`,
    );
    process.stdout.write(line(header));
    process.stdout.write(line(widths.map((w) => '-'.repeat(w))));
    for (const row of rows) process.stdout.write(line(row));
    process.stdout.write(
      `turn 1 has no parent (1 round trip: the put). Tenant index (sorted set, ${REPEATS * TURNS} members over all runs): ${indexBytes} B\n`,
    );
  } finally {
    let cursor = '0';
    do {
      const [next, keys] = await admin.scan(cursor, 'MATCH', `${keyPrefix}:*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length > 0) await admin.del(...keys);
    } while (cursor !== '0');
    redis.disconnect();
    admin.disconnect();
    await target.spawned?.stop();
  }
}
