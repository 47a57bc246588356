export default async function globalTeardown(): Promise<void> {
  const redis = (globalThis as { __relayRedis?: { stop(): Promise<void> } }).__relayRedis;
  if (redis) await redis.stop();
}
