/**
 * Starts a gateway script in a child process (tsx) and stops it for sure: SIGTERM, then SIGKILL;
 * the child also exits by itself when its stdin closes (the parent died). The script prints one
 * JSON line `{"port":N}` on stdout once it listens.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import path from 'node:path';

const ROOT = path.resolve(__dirname, '../..');
const TSX = path.join(ROOT, 'node_modules/.bin/tsx');

export interface GatewayChild {
  url: string;
  port: number;
  pid: number;
  child: ChildProcessWithoutNullStreams;
  /** What the child wrote on stderr so far (for failure messages). */
  stderr(): string;
  stop(): Promise<void>;
}

export function startGatewayScript(
  script: string,
  env: Record<string, string | undefined>,
  timeoutMs = 20_000,
): Promise<GatewayChild> {
  const child = spawn(TSX, [script], {
    cwd: ROOT,
    env: { ...process.env, PORT: '0', ...env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stderr.on('data', (chunk: Buffer) => {
    err += chunk.toString('utf8');
    if (err.length > 64 * 1024) err = err.slice(-32 * 1024);
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async (): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
    await exited;
    clearTimeout(timer);
  };
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      void stop();
      reject(new Error(`gateway did not start within ${timeoutMs} ms: ${err}`));
    }, timeoutMs);
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString('utf8');
      const line = out.split('\n').find((l) => l.startsWith('{'));
      if (!line) return;
      clearTimeout(timer);
      const { port } = JSON.parse(line) as { port: number };
      resolve({
        url: `http://127.0.0.1:${port}`,
        port,
        pid: child.pid as number,
        child,
        stderr: () => err,
        stop,
      });
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`gateway exited with ${code} before listening: ${err}`));
    });
  });
}
