/**
 * Smoke tests of what a newcomer runs first: `npm run demo` on a clean environment (no Redis, no
 * network: any non-loopback connection throws in the child), each example as its own process,
 * the fake upstream server of the compose file, and the compose file itself (`docker compose
 * config` when docker and its compose plugin are present; a structural check always).
 */
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { FLAGS } from '../../lib/cli/options';
import { testRedisUrl } from '../support/redis';

jest.setTimeout(90_000);

const ROOT = path.join(__dirname, '..', '..');
const LOOPBACK_ONLY = path.join(__dirname, 'loopback-only.js');

/** Only what a fresh shell has: no REDIS_URL, no RELAY_*, no proxy settings. */
function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const name of ['PATH', 'HOME', 'TMPDIR', 'LANG', 'SYSTEMROOT']) {
    if (process.env[name] !== undefined) env[name] = process.env[name];
  }
  return { ...env, NODE_OPTIONS: `--require ${LOOPBACK_ONLY}`, ...extra };
}

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function run(command: string, args: string[], env: NodeJS.ProcessEnv): Promise<Run> {
  const child = spawn(command, args, { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
  const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
  return new Promise((resolve) => {
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? 1, stdout, stderr });
    });
  });
}

function example(file: string, env: Record<string, string> = {}): Promise<Run> {
  return run(process.execPath, ['--import', 'tsx', `examples/${file}`], cleanEnv(env));
}

describe('npm run demo', () => {
  it('prints the transcript and exits 0 with no Redis and no network', async () => {
    const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
    const result = await run(npm, ['run', '--silent', 'demo'], cleanEnv());
    if (result.code !== 0)
      throw new Error(`demo exited ${result.code}\n${result.stdout}\n${result.stderr}`);
    const out = result.stdout;
    expect(out).toContain('responses-relay demo');
    expect(out).toContain('1. HTTP: the official openai SDK');
    expect(out).toContain('2. WebSocket');
    // The turns and tool calls.
    expect(out).toMatch(/turn 1 {4}user: "What files are in this project\?"/);
    expect(out).toContain('function_call list_files({"dir":"."})');
    expect(out).toContain('function_call exec_command({"cmd":"npm test"})');
    // The retries that happened, the rebuilt completions, the expanded anchors.
    expect(out).toContain('retried (server_error)');
    expect(out).toContain('retried (stream_cut)');
    expect(out).toContain('rebuilt response.completed.output from the streamed items');
    expect(out).toContain('expanded previous_response_id into the stored history');
    expect(out).toMatch(/upstream {10}\d+ requests, 0 carrying previous_response_id/);
    expect(result.stderr).not.toContain('network access');
    for (const line of out.split('\n')) expect(line.length).toBeLessThanOrEqual(100);
  });
});

describe('examples', () => {
  it('existing-gateway: the relay on one route of an existing gateway', async () => {
    const result = await example('existing-gateway.ts');
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('alice  turn 1 → get_weather({"city":"Paris"})');
    expect(result.stdout).toContain('alice  turn 2 → "The tool returned: 18°C, clear"');
    expect(result.stdout).toContain('→ 400 previous_response_not_found');
    expect(result.stdout).toContain("GET /v1/responses/{id} (the gateway's own proxy) → completed");
    expect(result.stdout).toContain('→ 502: 502 Upstream (openai) error 502');
  });

  it('multi-instance: two relays sharing Redis behind a round-robin balancer', async () => {
    const result = await example('multi-instance.ts', { REDIS_URL: testRedisUrl() });
    if (result.code !== 0) throw new Error(`${result.stdout}\n${result.stderr}`);
    const servedBy = [...result.stdout.matchAll(/turn \d {2}served by (relay-[ab])/g)].map(
      (match) => match[1],
    );
    expect(servedBy).toEqual(['relay-a', 'relay-b', 'relay-a', 'relay-b']);
    expect(result.stdout).toContain('relay-a stopped (graceful)');
    expect(result.stdout).toContain('final   "The tool returned: ran {"cmd":"npm test"}"');
  });

  it('multi-instance: explains what is missing when there is no Redis', async () => {
    const result = await example('multi-instance.ts', { REDIS_URL: 'redis://127.0.0.1:9' });
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('It needs Redis');
  });

  it('codex-backend: the codex profile for any client', async () => {
    const result = await example('codex-backend.ts');
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('→ completed: "Hello from the fake upstream."');
    expect(result.stdout).toContain('no temperature/max_output_tokens: true');
    expect(result.stdout).toContain('the backend got 3 items and no anchor');
    expect(result.stdout).toContain('finalResponse() has 1 output item(s) (the backend sent none)');
  });

  it('fake-upstream-server: serves the fake on a port and stops on SIGTERM', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'examples/fake-upstream-server.ts'], {
      cwd: ROOT,
      env: cleanEnv({ PORT: '0', HOST: '127.0.0.1' }),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const url = await new Promise<string>((resolve, reject) => {
      let out = '';
      child.stdout.on('data', (chunk: Buffer) => {
        out += chunk.toString('utf8');
        const match = /listening on (http:\/\/\S+)/.exec(out);
        if (match?.[1]) resolve(match[1]);
      });
      child.once('exit', (code) => reject(new Error(`exited ${code}: ${out}`)));
    });
    const answer = await fetch(`${url}/backend-api/codex/responses`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'm', input: [], stream: true, store: false, instructions: '' }),
    });
    expect(answer.status).toBe(200);
    expect(await answer.text()).toContain('"output":[]');
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
  });
});

describe('docker-compose.yml', () => {
  const compose = readFileSync(path.join(ROOT, 'docker-compose.yml'), 'utf8');
  const nginx = readFileSync(path.join(ROOT, 'deploy', 'nginx.conf'), 'utf8');
  const probe = spawnSync('docker', ['compose', 'version'], { encoding: 'utf8' });
  const skipReason =
    probe.error !== undefined
      ? `docker is not installed (${probe.error.message})`
      : probe.status !== 0
        ? `the docker compose plugin is not available (${(probe.stderr || probe.stdout).trim().split('\n')[0]})`
        : undefined;

  if (skipReason === undefined) {
    it('validates with docker compose config', () => {
      const result = spawnSync(
        'docker',
        ['compose', '-f', 'docker-compose.yml', 'config', '--quiet'],
        {
          cwd: ROOT,
          encoding: 'utf8',
        },
      );
      expect(result.stderr).toBe('');
      expect(result.status).toBe(0);
    });
  } else {
    process.stdout.write(`docker compose config skipped: ${skipReason}\n`);
    it.skip(`validates with docker compose config (skipped: ${skipReason})`, () => undefined);
  }

  it('runs Redis, the fake upstream, two relays and a round-robin balancer', () => {
    for (const service of ['redis:', 'upstream:', 'relay-a:', 'relay-b:', 'lb:']) {
      expect(compose).toMatch(new RegExp(`^  ${service}`, 'm'));
    }
    expect(compose).toContain('image: redis:7');
    expect(compose).toContain('examples/fake-upstream-server.ts');
    expect(nginx).toMatch(/server relay-a:8080/);
    expect(nginx).toMatch(/server relay-b:8080/);
    // SSE and WebSocket pass through the balancer unbuffered.
    expect(nginx).toContain('proxy_buffering off;');
    expect(nginx).toContain('proxy_set_header Upgrade $http_upgrade;');
  });

  it('configures the relays only with variables the CLI reads', () => {
    const known = new Set(FLAGS.map((spec) => spec.env));
    const used = [...compose.matchAll(/^\s+(RELAY_[A-Z_]+|REDIS_URL|PORT|HOST):/gm)].map(
      (match) => match[1] as string,
    );
    expect(used).toEqual(
      expect.arrayContaining(['RELAY_UPSTREAM', 'REDIS_URL', 'RELAY_TENANT_SECRET']),
    );
    for (const name of used) expect(known.has(name) || name.startsWith('FAKE_')).toBe(true);
  });
});

describe('docs', () => {
  it('names the README commands and the metrics the relay exports', () => {
    const operations = readFileSync(path.join(ROOT, 'docs', 'operations.md'), 'utf8');
    for (const metric of [
      'relay_requests_total',
      'relay_retries_total',
      'relay_completions_rebuilt_total',
      'relay_terminations_synthesized_total',
      'relay_store_operation_duration_seconds',
      'relay_store_errors_total',
      'relay_active_streams',
      'relay_active_websockets',
    ]) {
      expect(operations).toContain(metric);
    }
    const sections = readFileSync(path.join(ROOT, 'README.md'), 'utf8');
    expect(sections).toContain('npm install && npm run demo');
  });
});
