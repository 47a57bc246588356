/**
 * Finds or starts the real Redis server the tests use: `REDIS_URL`, else 127.0.0.1:6379, else a
 * `redis-server` from PATH on a free loopback port (stopped at the end of the run), else a clear
 * failure. No mocks: every test that touches state talks to a real server.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import net from 'node:net';

export interface SpawnedRedis {
  url: string;
  port: number;
  process: ChildProcess;
  stop(): Promise<void>;
}

/** Sends `PING` over a raw socket; resolves true on `+PONG`. */
export function pingRedis(host: string, port: number, timeoutMs = 500): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('error', () => done(false));
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.once('data', (chunk) => done(chunk.toString('latin1').startsWith('+PONG')));
  });
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** Starts `redis-server` on the given (or a free) port and waits until it answers PING. */
export async function spawnRedis(
  options: { port?: number; args?: string[] } = {},
): Promise<SpawnedRedis> {
  const port = options.port ?? (await freePort());
  const child = spawn(
    'redis-server',
    [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--save',
      '',
      '--appendonly',
      'no',
      ...(options.args ?? []),
    ],
    { stdio: 'ignore' },
  );
  const spawnError = new Promise<never>((_, reject) => {
    child.once('error', (error) => reject(error));
  });
  const deadline = Date.now() + 5000;
  for (;;) {
    const ready = await Promise.race([pingRedis('127.0.0.1', port, 200), spawnError]);
    if (ready) break;
    if (Date.now() > deadline || child.exitCode !== null) {
      child.kill('SIGKILL');
      throw new Error(`redis-server on port ${port} did not become ready`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    process: child,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGKILL');
      }),
  };
}

export const NO_REDIS_MESSAGE =
  'No Redis server for the tests: set REDIS_URL, run one on 127.0.0.1:6379, or install redis-server ' +
  '(Debian: apt-get install redis-server) so the test harness can start one on a free port.';

/**
 * Why tests that must start their own `redis-server` (to kill it, or to build a cluster) cannot
 * run here, or null when they can.
 */
export function redisServerUnavailableReason(): string | null {
  const probe = spawnSync('redis-server', ['--version'], { encoding: 'utf8' });
  if (probe.error || probe.status !== 0) {
    return 'redis-server is not on PATH, so the test cannot start its own Redis server (Debian: apt-get install redis-server)';
  }
  return null;
}
