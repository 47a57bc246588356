/**
 * The contract suite on a local 3-master Redis Cluster started by the harness: every script must
 * run without CROSSSLOT / undeclared-key trouble, with tenants spread over several masters.
 */
import { Cluster } from 'ioredis';
import { RedisSessionStore } from '../../lib/store/redis-session-store';
import { tenantId } from '../../lib/store/tenant';
import { testKeyPrefix } from '../support/redis';
import {
  redisClusterUnavailableReason,
  spawnRedisCluster,
  type SpawnedCluster,
} from '../support/redis-cluster';
import { describeSessionStoreContract, turn } from './contract';
import { deleteKeysUnder, keysUnder, redisContractFactory } from './redis-harness';

const unavailable = redisClusterUnavailableReason();
if (unavailable !== null) {
  process.stdout.write(`\nSkipping the Redis Cluster store tests: ${unavailable}\n`);
}

let cluster: SpawnedCluster | undefined;
let client: Cluster;

beforeAll(async () => {
  if (unavailable !== null) return;
  cluster = await spawnRedisCluster({ masters: 3 });
  client = new Cluster(cluster.nodes, { redisOptions: { maxRetriesPerRequest: 1 } });
  await new Promise<void>((resolve, reject) => {
    client.once('ready', resolve);
    client.once('error', reject);
  });
}, 20_000);

afterAll(async () => {
  if (unavailable !== null) return;
  client?.disconnect();
  await cluster?.stop();
});

const skip = unavailable === null ? {} : { skip: unavailable };

describeSessionStoreContract(
  'RedisSessionStore (Redis Cluster, 3 masters)',
  redisContractFactory(() => client),
  skip,
);

(unavailable === null ? describe : describe.skip)('RedisSessionStore on Redis Cluster', () => {
  it('keeps each tenant in one slot while tenants spread over the masters', async () => {
    const prefix = testKeyPrefix('cluster');
    const store = new RedisSessionStore({ redis: client, keyPrefix: prefix });
    const tenants = Array.from({ length: 12 }, (_, i) => tenantId(`sk-${i}`, 'cluster-secret'));
    for (const tenant of tenants) {
      await store.putResponse(turn(tenant, 'resp_1', null));
      for (let i = 2; i <= 30; i += 1) {
        await store.putResponse(turn(tenant, `resp_${i}`, `resp_${i - 1}`));
      }
      await store.setSessionHead(tenant, 'ws', 'resp_30');
      expect((await store.expandChain(tenant, 'resp_30'))?.depth).toBe(30);
    }
    const mastersUsed = new Set<number>();
    for (const [index, node] of client.nodes('master').entries()) {
      for (const tenant of tenants) {
        const [, keys] = await node.scan('0', 'MATCH', `${prefix}:{${tenant}}:*`, 'COUNT', 10_000);
        if (keys.length > 0) {
          // all 32 keys of the tenant (30 records, a head, the index) on this one master
          expect(keys).toHaveLength(32);
          mastersUsed.add(index);
        }
      }
    }
    expect(mastersUsed.size).toBeGreaterThanOrEqual(2);
    expect(await keysUnder(client, prefix)).toHaveLength(12 * 32);
    await deleteKeysUnder(client, prefix);
  });
});
