/**
 * The `responses-relay` command as a child process (run with tsx, no build step) in front of the
 * fake upstream: the official openai client completes a tool loop through it over HTTP, a planted
 * secret never reaches its log, SIGTERM drains in-flight streams and exits 0, readiness follows
 * the upstream, conversations survive a restart on Redis, and bad usage exits 2.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import OpenAI from 'openai';
import type { JsonObject } from '../../lib/protocol/types';
import { rawRequest, startFakeUpstream, type FakeUpstream } from '../support/fake-upstream';
import { EXEC_COMMAND_TOOL } from '../support/fake-upstream/testing';
import { testKeyPrefix, testRedisUrl } from '../support/redis';
import { postSse } from '../support/sse-client';

jest.setTimeout(60_000);

const ROOT = path.join(__dirname, '..', '..');
const SECRET = 'sk-test-PLANTED-SECRET-1234567890';
const TOOLS = [EXEC_COMMAND_TOOL as OpenAI.Responses.Tool];

/** The environment of a child: nothing of the test run's own (REDIS_URL, RELAY_*, PORT). */
function childEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const name of ['PATH', 'HOME', 'TMPDIR', 'LANG', 'SYSTEMROOT']) {
    if (process.env[name] !== undefined) env[name] = process.env[name];
  }
  return { ...env, ...extra };
}

interface Cli {
  child: ChildProcess;
  url: string;
  /** Everything written to stdout and stderr so far. */
  output(): string;
  lines(): JsonObject[];
  exited: Promise<number>;
  stop(signal?: NodeJS.Signals): Promise<number>;
}

function runCli(args: string[], env: Record<string, string> = {}): Promise<Cli> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'lib/cli/main.ts', ...args], {
    cwd: ROOT,
    env: childEnv(env),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const exited = new Promise<number>((resolve) => {
    child.once('exit', (code, signal) => resolve(code ?? (signal ? 128 : 1)));
  });
  const lines = (): JsonObject[] =>
    output
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as JsonObject);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`the relay did not start:\n${output}`));
    }, 20_000);
    const onData = (chunk: Buffer): void => {
      output += chunk.toString('utf8');
      const ready = lines().find((line) => line.msg === 'relay listening');
      if (ready) {
        clearTimeout(timer);
        resolve({
          child,
          url: String(ready.url).replace('0.0.0.0', '127.0.0.1'),
          output: () => output,
          lines,
          exited,
          stop: (signal = 'SIGTERM') => {
            child.kill(signal);
            return exited;
          },
        });
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`the relay exited with ${code} before listening:\n${output}`));
    });
  });
}

/** Runs the command to completion (for usage and configuration errors). */
function runToExit(
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number; output: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'lib/cli/main.ts', ...args], {
    cwd: ROOT,
    env: childEnv(env),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
  return new Promise((resolve) =>
    child.once('exit', (code) => resolve({ code: code ?? 1, output })),
  );
}

const running: Cli[] = [];
const fakes: FakeUpstream[] = [];

afterEach(async () => {
  for (const cli of running.splice(0)) {
    if (cli.child.exitCode === null) await cli.stop('SIGKILL');
  }
  await Promise.all(fakes.splice(0).map((fake) => fake.close()));
});

async function start(args: string[], env: Record<string, string> = {}): Promise<Cli> {
  const cli = await runCli(['--port', '0', '--host', '127.0.0.1', ...args], env);
  running.push(cli);
  return cli;
}

async function fake(options: Parameters<typeof startFakeUpstream>[0]): Promise<FakeUpstream> {
  const upstream = await startFakeUpstream(options);
  fakes.push(upstream);
  return upstream;
}

function functionCall(
  response: OpenAI.Responses.Response,
): OpenAI.Responses.ResponseFunctionToolCall | undefined {
  return response.output.find(
    (item): item is OpenAI.Responses.ResponseFunctionToolCall => item.type === 'function_call',
  );
}

describe('responses-relay (child process)', () => {
  it('carries a tool loop of the official openai client, and never logs a planted secret', async () => {
    const upstream = await fake({ mode: 'stateless', sparseCompletion: true });
    const cli = await start([
      '--upstream',
      upstream.url,
      '--profile',
      'codex',
      '--log-level',
      'debug',
    ]);
    const client = new OpenAI({ apiKey: SECRET, baseURL: `${cli.url}/v1`, maxRetries: 0 });
    upstream.script(
      { kind: 'http_error', status: 503 },
      { kind: 'tool_calls', calls: [{ name: 'exec_command', arguments: '{"cmd":"ls"}' }] },
      { kind: 'tool_calls', calls: [{ name: 'exec_command', arguments: '{"cmd":"cat a"}' }] },
    );
    let response: OpenAI.Responses.Response = await client.responses
      .stream({ model: 'gpt-test', instructions: 'Be brief.', input: 'List files.', tools: TOOLS })
      .finalResponse();
    const ids = [response.id];
    for (let call = functionCall(response); call !== undefined; call = functionCall(response)) {
      response = await client.responses.create({
        model: 'gpt-test',
        instructions: 'Be brief.',
        previous_response_id: response.id,
        input: [
          { type: 'function_call_output', call_id: call.call_id, output: `ran ${call.arguments}` },
        ],
        tools: TOOLS,
      });
      ids.push(response.id);
    }
    expect(ids).toHaveLength(3);
    expect(response.output_text).toBe('The tool returned: ran {"cmd":"cat a"}');
    const last = upstream.requests.at(-1)?.body as JsonObject;
    expect(last).not.toHaveProperty('previous_response_id');
    expect((last.input as unknown[]).length).toBe(5);

    // The secret planted everywhere else a gateway sees one.
    await rawRequest(`${cli.url}/v1/models?api_key=${SECRET}`, {
      method: 'GET',
      headers: { 'x-api-key': SECRET, cookie: `session=${SECRET}`, 'api-key': SECRET },
    });
    const leaked = await rawRequest(`${cli.url}/v1/responses`, {
      body: { model: 'gpt-test', input: 'hi', stream: true },
      headers: {
        authorization: `Bearer ${SECRET}`,
        'x-fake-script': JSON.stringify({
          kind: 'detail_error',
          status: 400,
          detail: `Invalid token ${SECRET} for this account`,
        }),
      },
    });
    expect(leaked.status).toBe(400);
    expect(leaked.text).not.toContain(SECRET);
    expect(await cli.stop()).toBe(0);

    const output = cli.output();
    expect(output).not.toContain(SECRET);
    expect(output).not.toContain('PLANTED');
    const exchanges = cli.lines().filter((line) => line.route === 'responses');
    expect(exchanges.length).toBeGreaterThanOrEqual(4);
    const first = exchanges[0] as JsonObject;
    expect(first).toMatchObject({
      msg: 'request completed',
      status: 200,
      attempts: 2,
      retries: ['server_error'],
      responseId: ids[0],
      profile: 'codex',
      completionRebuilt: true,
    });
    expect(first.reqId).toMatch(/^req_/);
    expect(first.tenant).toMatch(/^[\w-]{22}$/);
    expect(typeof first.durationMs).toBe('number');
    expect(exchanges[1]).toMatchObject({ previousResponseId: ids[0], chainDepth: 1 });
    expect(output).toContain('"msg":"stopped"');
  });

  it('drains an in-flight stream on SIGTERM, then exits 0', async () => {
    const upstream = await fake({ mode: 'stateless' });
    const cli = await start(['--upstream', upstream.url, '--profile', 'codex']);
    upstream.script({ kind: 'slow', delayMs: 60 });
    const stream = await postSse(
      `${cli.url}/v1/responses`,
      { model: 'gpt-test', input: 'take your time', stream: true },
      { headers: { authorization: 'Bearer sk-drain-test-0000' } },
    );
    expect(stream.status).toBe(200);
    cli.child.kill('SIGTERM');
    await new Promise((resolve) => setTimeout(resolve, 150));
    await expect(rawRequest(`${cli.url}/healthz`, { method: 'GET' })).rejects.toThrow();
    const events = await stream.done;
    expect(events.at(-1)?.json?.type).toBe('response.completed');
    expect(await cli.exited).toBe(0);
    const messages = cli.lines().map((line) => line.msg);
    expect(messages.indexOf('stopped')).toBeGreaterThan(
      messages.findIndex((msg) => String(msg).startsWith('shutting down')),
    );
  });

  it('is not ready while the upstream is unreachable, and alive all the same', async () => {
    const upstream = await fake({ mode: 'stateful' });
    const address = upstream.url;
    await upstream.close();
    const cli = await start(['--upstream', address]);
    const ready = await rawRequest(`${cli.url}/readyz`, { method: 'GET' });
    expect(ready.status).toBe(503);
    expect(ready.json).toMatchObject({
      status: 'not_ready',
      checks: { store: { status: 'ok' }, upstream: { status: 'fail' } },
    });
    expect((await rawRequest(`${cli.url}/healthz`, { method: 'GET' })).status).toBe(200);
    const metrics = await rawRequest(`${cli.url}/metrics`, { method: 'GET' });
    expect(metrics.text).toContain('relay_requests_total');
    expect(await cli.stop()).toBe(0);
  });

  it('keeps conversations in Redis across a restart', async () => {
    const upstream = await fake({ mode: 'stateless', sparseCompletion: true });
    const args = ['--upstream', upstream.url, '--profile', 'codex', '--redis', testRedisUrl()];
    const env = {
      RELAY_TENANT_SECRET: 'cli-test-tenant-secret',
      RELAY_REDIS_KEY_PREFIX: testKeyPrefix('cli').replace(/[{}\s]/g, ''),
    };
    const first = await start(args, env);
    const readyz = await rawRequest(`${first.url}/readyz`, { method: 'GET' });
    expect(readyz.status).toBe(200);
    const key = 'sk-redis-restart-000000000';
    const before = await new OpenAI({
      apiKey: key,
      baseURL: `${first.url}/v1`,
      maxRetries: 0,
    }).responses.create({ model: 'gpt-test', input: 'Remember the number 7.' });
    expect(await first.stop()).toBe(0);
    expect(first.lines().find((line) => line.msg === 'relay listening')).toMatchObject({
      store: 'redis',
    });

    const second = await start(args, env);
    const after = await new OpenAI({
      apiKey: key,
      baseURL: `${second.url}/v1`,
      maxRetries: 0,
    }).responses.create({
      model: 'gpt-test',
      previous_response_id: before.id,
      input: 'Which number?',
    });
    expect(after.status).toBe('completed');
    const sent = upstream.requests.at(-1)?.body as JsonObject;
    expect((sent.input as unknown[]).length).toBe(3);
    expect(await second.stop()).toBe(0);
  });

  it('exits 2 on a usage error and 1 when it cannot be configured', async () => {
    const usage = await runToExit(['--upstream', 'http://127.0.0.1:9', '--port', 'eighty']);
    expect(usage.code).toBe(2);
    expect(usage.output).toContain('--port must be an integer');
    const help = await runToExit(['--help']);
    expect(help.code).toBe(0);
    expect(help.output).toContain('usage: responses-relay');
    const noSecret = await runToExit([
      '--upstream',
      'http://127.0.0.1:9',
      '--redis',
      'redis://127.0.0.1:9',
      '--port',
      '0',
    ]);
    expect(noSecret.code).toBe(1);
    expect(noSecret.output).toContain('RELAY_TENANT_SECRET');
  });
});
