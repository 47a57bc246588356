/**
 * Redis client settings for the relay's session store. ioredis's defaults queue a command for
 * about 74 s while Redis is down (20 reconnection attempts); a relay should fail a request fast
 * and let its `onStoreError` policy answer. The store bounds every operation itself (1 s by
 * default) either way; these settings keep commands that outlived that deadline from piling up.
 */
import type { ClusterOptions, RedisOptions } from 'ioredis';

/** For `new Redis(url, recommendedRedisOptions())`. */
export function recommendedRedisOptions(): RedisOptions {
  return {
    // Fail a command after one reconnection attempt instead of queueing it.
    maxRetriesPerRequest: 1,
    // Close to RedisSessionStore's own operationTimeoutMs (1000).
    commandTimeout: 1000,
    connectTimeout: 5000,
    enableAutoPipelining: true,
  };
}

/** For `new Cluster(nodes, recommendedClusterOptions())`. */
export function recommendedClusterOptions(): ClusterOptions {
  return {
    redisOptions: recommendedRedisOptions(),
    enableAutoPipelining: true,
  };
}
