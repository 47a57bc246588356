/**
 * The command line: flags, their environment variables and defaults, precedence, validation, and
 * the documentation of every flag in docs/operations.md.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { FLAGS, parseCli, usage, UsageError, type CliOptions } from '../../lib/cli/options';

function run(argv: string[], env: NodeJS.ProcessEnv = {}): CliOptions {
  const result = parseCli(argv, env);
  if (result.kind !== 'run') throw new Error(`expected run, got ${result.kind}`);
  return result.options;
}

describe('parseCli', () => {
  it('has defaults for everything but the upstream', () => {
    expect(run(['--upstream', 'https://api.openai.com'])).toEqual({
      port: 8080,
      host: '0.0.0.0',
      upstream: 'https://api.openai.com',
      profile: 'openai',
      upstreamMode: undefined,
      redis: undefined,
      redisCluster: undefined,
      redisKeyPrefix: undefined,
      tenantSecret: undefined,
      onStoreError: 'fail-closed',
      maxAttempts: 4,
      logLevel: 'info',
      shutdownTimeoutMs: 30000,
      metrics: true,
    });
  });

  it('reads every flag from its environment variable', () => {
    const options = run([], {
      PORT: '9090',
      HOST: '127.0.0.1',
      RELAY_UPSTREAM: 'https://chatgpt.com',
      RELAY_PROFILE: 'codex',
      RELAY_UPSTREAM_MODE: 'stateless',
      REDIS_URL: 'redis://redis:6379',
      RELAY_REDIS_KEY_PREFIX: 'gw',
      RELAY_TENANT_SECRET: 's3cret',
      RELAY_ON_STORE_ERROR: 'fail-open',
      RELAY_MAX_ATTEMPTS: '2',
      RELAY_LOG_LEVEL: 'debug',
      RELAY_SHUTDOWN_TIMEOUT_MS: '5000',
      RELAY_METRICS: 'false',
    });
    expect(options).toMatchObject({
      port: 9090,
      host: '127.0.0.1',
      upstream: 'https://chatgpt.com',
      profile: 'codex',
      upstreamMode: 'stateless',
      redis: 'redis://redis:6379',
      redisKeyPrefix: 'gw',
      tenantSecret: 's3cret',
      onStoreError: 'fail-open',
      maxAttempts: 2,
      logLevel: 'debug',
      shutdownTimeoutMs: 5000,
      metrics: false,
    });
  });

  it('lets a flag win over its environment variable', () => {
    const options = run(['--port', '0', '--log-level', 'warn', '--profile', 'openai'], {
      PORT: '9090',
      RELAY_LOG_LEVEL: 'debug',
      RELAY_UPSTREAM: 'http://127.0.0.1:9000',
      RELAY_PROFILE: 'codex',
    });
    expect(options).toMatchObject({ port: 0, logLevel: 'warn', profile: 'openai' });
  });

  it('takes Redis Cluster seed nodes, preferring an explicit flag over the other variable', () => {
    expect(
      run(['--upstream', 'http://u', '--redis-cluster', 'a:7000, b:7001'], {
        REDIS_URL: 'redis://x',
      }),
    ).toMatchObject({ redis: undefined, redisCluster: ['a:7000', 'b:7001'] });
    expect(
      run(['--upstream', 'http://u', '--redis', 'redis://x'], { RELAY_REDIS_CLUSTER: 'a:7000' }),
    ).toMatchObject({ redis: 'redis://x', redisCluster: undefined });
    expect(() =>
      parseCli(['--upstream', 'http://u', '--redis', 'redis://x', '--redis-cluster', 'a:1']),
    ).toThrow(UsageError);
  });

  it('answers --help and --version', () => {
    expect(parseCli(['--help'])).toEqual({ kind: 'help' });
    expect(parseCli(['-v'])).toEqual({ kind: 'version' });
    expect(usage()).toContain('--upstream URL');
    for (const line of usage().split('\n')) expect(line.length).toBeLessThanOrEqual(100);
  });

  it.each([
    [[], 'required'],
    [['--upstream', 'ftp://x'], 'http(s) URL'],
    [['--upstream', 'http://u', '--port', '70000'], '--port'],
    [['--upstream', 'http://u', '--profile', 'azure'], '--profile'],
    [['--upstream', 'http://u', '--profile', 'codex', '--upstream-mode', 'stateful'], 'stateless'],
    [['--upstream', 'http://u', '--log-level', 'loud'], '--log-level'],
    [['--upstream', 'http://u', '--max-attempts', '0'], '--max-attempts'],
    [['--upstream', 'http://u', '--metrics', 'maybe'], '--metrics'],
    [['--upstream', 'http://u', '--nope'], 'nope'],
  ])('rejects %j with a usage error', (argv, message) => {
    expect(() => parseCli(argv, {})).toThrow(UsageError);
    expect(() => parseCli(argv, {})).toThrow(message);
  });

  it('documents every flag and variable in docs/operations.md', () => {
    const doc = readFileSync(path.join(__dirname, '../../docs/operations.md'), 'utf8');
    for (const spec of FLAGS) {
      expect(doc).toContain(`--${spec.flag}`);
      expect(doc).toContain(spec.env);
    }
  });
});
