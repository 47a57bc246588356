/**
 * The real Codex CLI (`@openai/codex`, a dev dependency) runs `codex exec` through the relay in
 * WebSocket mode against the fake upstream: the prewarm, the turn (answered with an
 * `exec_command` call), the tool-output delta anchored on it (answered with a final message) all
 * go over one WebSocket, through the bridge, and the run completes with the command's output
 * round-tripped. Skipped, with the reason printed, where the platform has no Codex binary.
 */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { JsonObject } from '../../lib/protocol/types';
import { MemorySessionStore } from '../../lib/store/memory-session-store';
import { startFakeUpstream, type FakeUpstream } from '../support/fake-upstream';
import { KEY_A, startGateway, type TestGateway } from './support/gateway';

const CODEX = path.resolve(__dirname, '../../node_modules/.bin/codex');
const RUN_TIMEOUT_MS = 90_000;

function probeCodex(): string | undefined {
  if (!fs.existsSync(CODEX)) return `${CODEX} does not exist (is @openai/codex installed?)`;
  const probe = spawnSync(CODEX, ['--version'], { encoding: 'utf8', timeout: 20_000 });
  if (probe.error) return `${CODEX} cannot run here: ${probe.error.message}`;
  if (probe.status !== 0) {
    return `${CODEX} --version exited with ${probe.status}: ${(probe.stderr || probe.stdout).slice(0, 300)}`;
  }
  return undefined;
}

const skipReason = probeCodex();
if (skipReason !== undefined) {
  process.stdout.write(`[codex-cli.test] skipped: ${skipReason}\n`);
}
const maybe = skipReason === undefined ? it : it.skip;

interface CodexRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  events: JsonObject[];
  stdout: string;
  stderr: string;
}

function codexConfig(baseUrl: string, websockets = true): string {
  return [
    'model = "gpt-5.5"',
    'model_provider = "gw"',
    'approval_policy = "never"',
    'sandbox_mode = "danger-full-access"',
    'check_for_update_on_startup = false',
    '',
    '[model_providers.gw]',
    'name = "Relay gateway"',
    `base_url = "${baseUrl}"`,
    'env_key = "GW_API_KEY"',
    'wire_api = "responses"',
    `supports_websockets = ${websockets}`,
    'request_max_retries = 1',
    'stream_max_retries = 1',
    'stream_idle_timeout_ms = 20000',
    '',
  ].join('\n');
}

function runCodex(home: string, cwd: string, prompt: string): Promise<CodexRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(CODEX, ['exec', '--skip-git-repo-check', '--json', prompt], {
      cwd,
      env: {
        ...process.env,
        CODEX_HOME: home,
        GW_API_KEY: KEY_A,
        RUST_LOG: 'codex_core=info,codex_api=info',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString('utf8');
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString('utf8');
      if (stderr.length > 256 * 1024) stderr = stderr.slice(-128 * 1024);
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), RUN_TIMEOUT_MS);
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      const events = stdout
        .split('\n')
        .filter((line) => line.startsWith('{'))
        .map((line) => {
          try {
            return JSON.parse(line) as JsonObject;
          } catch {
            return { unparsed: line };
          }
        });
      resolve({ code, signal, events, stdout, stderr });
    });
  });
}

interface RelayedRun {
  run: CodexRun;
  fake: FakeUpstream;
  gateway: TestGateway;
}

const cleanups: Array<() => Promise<void>> = [];
afterAll(async () => {
  for (const cleanup of cleanups.splice(0)) await cleanup();
});

/** `codex exec` asked to run `echo hi`, through a relay in front of a stateless fake upstream. */
async function runCodexThroughRelay(websockets: boolean): Promise<RelayedRun> {
  const fake = await startFakeUpstream({ mode: 'stateless', sparseCompletion: true });
  const gateway = await startGateway({
    relayMode: 'stateless',
    store: new MemorySessionStore(),
    target: fake.url,
  });
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'relay-codex-'));
  cleanups.push(async () => {
    await gateway.close();
    await fake.close();
    fs.rmSync(scratch, { recursive: true, force: true });
  });
  const home = path.join(scratch, 'codex-home');
  const work = path.join(scratch, 'work');
  fs.mkdirSync(home);
  fs.mkdirSync(work);
  fs.writeFileSync(path.join(home, 'config.toml'), codexConfig(`${gateway.url}/v1`, websockets));
  const run = await runCodex(
    home,
    work,
    'Run the shell command echo hi and tell me what it printed.',
  );
  return { run, fake, gateway };
}

/**
 * The run exited 0 with a completed turn, the shell printed `hi`, and a request carrying the tool
 * output also carried its call (the upstream saw a consistent history). Returns that request's input.
 */
function expectShellRoundTrip({ run, fake, gateway }: RelayedRun): JsonObject[] {
  const explain = (): string =>
    `exit ${run.code} ${run.signal ?? ''}\nstdout:\n${run.stdout.slice(-4000)}\nstderr:\n${run.stderr.slice(-4000)}\nbridge: ${JSON.stringify(gateway.bridge.stats)}`;
  expect({ code: run.code, why: run.code === 0 ? '' : explain() }).toEqual({ code: 0, why: '' });
  const types = run.events.map((event) => event.type);
  expect(types).toContain('turn.completed');
  expect(types).not.toContain('turn.failed');
  const command = run.events
    .filter((event) => event.type === 'item.completed')
    .map((event) => event.item as JsonObject)
    .find((item) => item.type === 'command_execution');
  expect(command).toMatchObject({ exit_code: 0, aggregated_output: 'hi\n' });
  const withOutput = fake.requests.find((request) =>
    ((request.body as JsonObject).input as JsonObject[]).some(
      (item) => item.type === 'function_call_output' && JSON.stringify(item.output).includes('hi'),
    ),
  );
  expect(withOutput).toBeDefined();
  const input = (withOutput?.body as JsonObject).input as JsonObject[];
  const output = input.find((item) => item.type === 'function_call_output') as JsonObject;
  expect(
    input.some((item) => item.type === 'function_call' && item.call_id === output.call_id),
  ).toBe(true);
  for (const request of fake.requests) expect(request.status).toBe(200);
  return input;
}

describe('the real Codex CLI over WebSocket, through the bridge', () => {
  maybe(
    'codex exec runs a shell tool call and completes, the output round-tripped',
    async () => {
      const relayed = await runCodexThroughRelay(true);
      const { fake, gateway } = relayed;
      const input = expectShellRoundTrip(relayed);
      expect(input[0]).toMatchObject({ type: 'message', role: 'developer' });
      for (const request of fake.requests) {
        expect(request.body).not.toHaveProperty('previous_response_id');
        expect(request.body).not.toHaveProperty('generate');
      }

      // Every turn came through the bridge (no HTTP fallback), the prewarm answered locally.
      const stats = gateway.bridge.stats;
      expect(stats.connectionsOpened).toBeGreaterThanOrEqual(1);
      expect(stats.prewarms).toBeGreaterThanOrEqual(1);
      expect(stats.turns).toBeGreaterThanOrEqual(3);
      expect(stats.completed).toBe(stats.turns);
      expect(stats.errorFrames).toBe(0);
      expect(fake.requests).toHaveLength(stats.turns - stats.prewarms);
      const posts = gateway.hits.filter((hit) => hit.method === 'POST');
      expect(posts).toHaveLength(stats.turns);
      for (const post of posts) expect(post.headers['x-relay-session']).toBeDefined();
      // Over the socket: a prewarm, then turns anchored on the previous response, the tool round
      // carrying only the output (the bridge added no anchor of its own).
      const bodies = posts.map((post) => post.body as JsonObject);
      expect(bodies[0]?.generate).toBe(false);
      for (const body of bodies.slice(1)) expect(typeof body.previous_response_id).toBe('string');
      const delta = bodies.find((body) =>
        (body.input as JsonObject[]).every((item) => item.type === 'function_call_output'),
      );
      expect(delta).toBeDefined();
      expect(stats.anchorsAdded).toBe(0);
    },
    RUN_TIMEOUT_MS + 30_000,
  );
});

describe('the real Codex CLI over HTTP (SSE), through the relay', () => {
  maybe(
    'codex exec runs a shell tool call over HTTP and completes, the output round-tripped',
    async () => {
      const relayed = await runCodexThroughRelay(false);
      // Over HTTP Codex sends its full history every turn; nothing went through the bridge.
      expectShellRoundTrip(relayed);
      expect(relayed.gateway.bridge.stats.connectionsOpened).toBe(0);
    },
    RUN_TIMEOUT_MS + 30_000,
  );
});
