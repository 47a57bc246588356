/**
 * Starts a throw-away Redis Cluster for tests: N masters from `redis-server` on free loopback ports
 * (no replicas, no persistence), slots split evenly with CLUSTER ADDSLOTSRANGE, joined with CLUSTER
 * MEET, ready when every node reports `cluster_state:ok`. Stopped by pid; its directory removed.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Redis from 'ioredis';
import {
  freePort,
  redisServerUnavailableReason,
  spawnRedis,
  type SpawnedRedis,
} from './redis-server';

export interface SpawnedCluster {
  /** Startup nodes for `new Cluster(nodes)`. */
  nodes: { host: string; port: number }[];
  servers: SpawnedRedis[];
  stop(): Promise<void>;
}

const SLOTS = 16384;

/** Why a local cluster cannot be started here (no `redis-server`), or null when it can. */
export function redisClusterUnavailableReason(): string | null {
  const reason = redisServerUnavailableReason();
  return reason === null
    ? null
    : `${reason}; the Redis Cluster tests need it to start a local cluster`;
}

function redisMajorVersion(): number {
  const probe = spawnSync('redis-server', ['--version'], { encoding: 'utf8' });
  const match = /v=(\d+)\./.exec(probe.stdout ?? '');
  return match ? Number(match[1]) : 0;
}

/** A port for a node and one for its cluster bus, all distinct from `taken`. */
async function nodePorts(taken: Set<number>, explicitBus: boolean): Promise<[number, number]> {
  for (let attempt = 0; attempt < 50; attempt += 1) {
    const port = await freePort();
    if (taken.has(port)) continue;
    // Redis < 7 has no --cluster-port: the bus is always port + 10000
    const bus = explicitBus ? await freePort() : port + 10000;
    if (bus > 65535 || bus === port || taken.has(bus)) continue;
    taken.add(port);
    taken.add(bus);
    return [port, bus];
  }
  throw new Error('could not find free ports for a Redis Cluster node');
}

async function waitFor(
  check: () => Promise<boolean>,
  timeoutMs: number,
  what: string,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export async function spawnRedisCluster(
  options: { masters?: number } = {},
): Promise<SpawnedCluster> {
  const masters = options.masters ?? 3;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'relay-cluster-'));
  const explicitBus = redisMajorVersion() >= 7;
  const servers: SpawnedRedis[] = [];
  const admins: Redis[] = [];
  const stop = async (): Promise<void> => {
    for (const admin of admins) admin.disconnect();
    await Promise.all(servers.map((s) => s.stop()));
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const taken = new Set<number>();
    const buses: number[] = [];
    for (let i = 0; i < masters; i += 1) {
      const [port, bus] = await nodePorts(taken, explicitBus);
      buses.push(bus);
      servers.push(
        await spawnRedis({
          port,
          args: [
            '--cluster-enabled',
            'yes',
            '--cluster-config-file',
            path.join(dir, `nodes-${port}.conf`),
            '--cluster-node-timeout',
            '2000',
            '--dir',
            dir,
            ...(explicitBus ? ['--cluster-port', String(bus)] : []),
          ],
        }),
      );
    }
    for (const server of servers) {
      admins.push(
        new Redis(server.port, '127.0.0.1', { maxRetriesPerRequest: 1, lazyConnect: false }),
      );
    }
    for (let i = 0; i < masters; i += 1) {
      const first = Math.floor((i * SLOTS) / masters);
      const last = Math.floor(((i + 1) * SLOTS) / masters) - 1;
      const admin = admins[i] as Redis;
      if (explicitBus) {
        await admin.call('CLUSTER', 'ADDSLOTSRANGE', first, last);
      } else {
        const slots: number[] = [];
        for (let s = first; s <= last; s += 1) slots.push(s);
        await admin.call('CLUSTER', 'ADDSLOTS', ...slots);
      }
    }
    const seed = admins[0] as Redis;
    for (let i = 1; i < masters; i += 1) {
      const server = servers[i] as SpawnedRedis;
      await seed.call(
        'CLUSTER',
        'MEET',
        '127.0.0.1',
        server.port,
        ...(explicitBus ? [buses[i] as number] : []),
      );
    }
    await waitFor(
      async () => {
        for (const admin of admins) {
          const info = String(await admin.call('CLUSTER', 'INFO'));
          if (
            !info.includes('cluster_state:ok') ||
            !info.includes(`cluster_known_nodes:${masters}`)
          ) {
            return false;
          }
        }
        return true;
      },
      15_000,
      'the Redis Cluster to report cluster_state:ok',
    );
    for (const admin of admins) admin.disconnect();
    admins.length = 0;
    return {
      nodes: servers.map((s) => ({ host: '127.0.0.1', port: s.port })),
      servers,
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}
