/**
 * The command line of `responses-relay`: every flag, its environment variable and its default in
 * one table (which also prints the help and is checked against docs/operations.md and the
 * compose file by the tests). A flag wins over its environment variable, which wins over the
 * default.
 */
import { parseArgs } from 'node:util';

export type ProfileFlag = 'openai' | 'codex';
export type ModeFlag = 'stateful' | 'stateless';
export type StoreErrorFlag = 'fail-closed' | 'fail-open';

export interface CliOptions {
  port: number;
  host: string;
  upstream: string;
  profile: ProfileFlag;
  upstreamMode: ModeFlag | undefined;
  redis: string | undefined;
  redisCluster: string[] | undefined;
  redisKeyPrefix: string | undefined;
  tenantSecret: string | undefined;
  onStoreError: StoreErrorFlag;
  maxAttempts: number;
  logLevel: string;
  shutdownTimeoutMs: number;
  metrics: boolean;
}

/** One flag: its name, environment variable, default and help. */
export interface FlagSpec {
  flag: string;
  env: string;
  value: string;
  default: string;
  help: string;
}

export const FLAGS: readonly FlagSpec[] = Object.freeze([
  {
    flag: 'port',
    env: 'PORT',
    value: 'N',
    default: '8080',
    help: 'port to listen on (0: any free port)',
  },
  { flag: 'host', env: 'HOST', value: 'ADDR', default: '0.0.0.0', help: 'address to listen on' },
  {
    flag: 'upstream',
    env: 'RELAY_UPSTREAM',
    value: 'URL',
    default: '(required)',
    help: 'upstream base URL (https://api.openai.com)',
  },
  {
    flag: 'profile',
    env: 'RELAY_PROFILE',
    value: 'openai|codex',
    default: 'openai',
    help: 'upstream profile: request normalization, endpoint path',
  },
  {
    flag: 'upstream-mode',
    env: 'RELAY_UPSTREAM_MODE',
    value: 'stateful|stateless',
    default: 'per profile',
    help: 'stateless: the relay keeps the conversations',
  },
  {
    flag: 'redis',
    env: 'REDIS_URL',
    value: 'URL',
    default: '(memory store)',
    help: 'Redis for shared sessions (redis://redis:6379)',
  },
  {
    flag: 'redis-cluster',
    env: 'RELAY_REDIS_CLUSTER',
    value: 'HOST:PORT,…',
    default: '(none)',
    help: 'Redis Cluster seed nodes instead of --redis',
  },
  {
    flag: 'redis-key-prefix',
    env: 'RELAY_REDIS_KEY_PREFIX',
    value: 'P',
    default: 'relay',
    help: 'first part of every Redis key',
  },
  {
    flag: 'tenant-secret',
    env: 'RELAY_TENANT_SECRET',
    value: 'S',
    default: 'random (memory store)',
    help: 'HMAC key of tenant ids, the same on every instance',
  },
  {
    flag: 'on-store-error',
    env: 'RELAY_ON_STORE_ERROR',
    value: 'fail-closed|fail-open',
    default: 'fail-closed',
    help: 'what a store outage does to chained requests',
  },
  {
    flag: 'max-attempts',
    env: 'RELAY_MAX_ATTEMPTS',
    value: 'N',
    default: '4',
    help: 'upstream attempts per request (1: no retries)',
  },
  {
    flag: 'log-level',
    env: 'RELAY_LOG_LEVEL',
    value: 'L',
    default: 'info',
    help: 'fatal, error, warn, info, debug, trace or silent',
  },
  {
    flag: 'shutdown-timeout',
    env: 'RELAY_SHUTDOWN_TIMEOUT_MS',
    value: 'MS',
    default: '30000',
    help: 'how long in-flight streams may finish on SIGTERM',
  },
  {
    flag: 'metrics',
    env: 'RELAY_METRICS',
    value: 'true|false',
    default: 'true',
    help: 'serve Prometheus metrics on GET /metrics',
  },
]);

export class UsageError extends Error {
  override readonly name = 'UsageError';
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

/** The help text. */
export function usage(): string {
  const rows = FLAGS.map((spec) => {
    const left = `  --${spec.flag} ${spec.value}`;
    return `${left.padEnd(42)}${spec.help}\n${''.padEnd(42)}env ${spec.env}; default ${spec.default}`;
  });
  return [
    'usage: responses-relay --upstream URL [options]',
    '',
    'A gateway in front of the OpenAI Responses API or a stateless Responses backend (the ChatGPT',
    'Codex backend): previous_response_id chaining, well-formed streams, OpenAI error envelopes,',
    'safe retries, over HTTP and WebSocket. Every other /v1/* path is proxied untouched.',
    '',
    'options (a flag wins over its environment variable):',
    ...rows,
    `${'  --help'.padEnd(42)}print this and exit`,
    `${'  --version'.padEnd(42)}print the version and exit`,
    '',
    'endpoints: GET /healthz (liveness), GET /readyz (store and upstream), GET /metrics',
    'SIGTERM: stop accepting, let in-flight streams finish (--shutdown-timeout), exit 0',
    'secrets: prefer RELAY_TENANT_SECRET to --tenant-secret (flags are visible in ps)',
    '',
  ].join('\n');
}

function oneOf<T extends string>(name: string, value: string, allowed: readonly T[]): T {
  if ((allowed as readonly string[]).includes(value)) return value as T;
  throw new UsageError(
    `--${name} must be one of ${allowed.join(', ')} (got ${JSON.stringify(value)})`,
  );
}

function integer(name: string, value: string, min: number, max: number): number {
  const parsed = /^\d+$/.test(value.trim()) ? Number(value.trim()) : NaN;
  if (!Number.isSafeInteger(parsed) || parsed < min || parsed > max) {
    throw new UsageError(
      `--${name} must be an integer from ${min} to ${max} (got ${JSON.stringify(value)})`,
    );
  }
  return parsed;
}

function boolean(name: string, value: string): boolean {
  const normalized = value.trim().toLowerCase();
  if (['1', 'true', 'yes', 'on'].includes(normalized)) return true;
  if (['0', 'false', 'no', 'off'].includes(normalized)) return false;
  throw new UsageError(`--${name} must be true or false (got ${JSON.stringify(value)})`);
}

export type ParseResult =
  { kind: 'run'; options: CliOptions } | { kind: 'help' } | { kind: 'version' };

/**
 * Parses the arguments (without `node` and the script) and the environment. Throws a
 * `UsageError` for anything invalid.
 */
export function parseCli(
  argv: readonly string[],
  env: NodeJS.ProcessEnv = process.env,
): ParseResult {
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({
      args: [...argv],
      strict: true,
      allowPositionals: false,
      options: {
        ...Object.fromEntries(FLAGS.map((spec) => [spec.flag, { type: 'string' as const }])),
        'no-metrics': { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
        version: { type: 'boolean', short: 'v' },
      },
    });
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  const values = parsed.values as Record<string, string | boolean | undefined>;
  if (values.help === true) return { kind: 'help' };
  if (values.version === true) return { kind: 'version' };

  const read = (flag: string): string | undefined => {
    const spec = FLAGS.find((entry) => entry.flag === flag);
    const given = values[flag];
    if (typeof given === 'string') return given;
    const fromEnv = spec ? env[spec.env] : undefined;
    return fromEnv === undefined || fromEnv.trim() === '' ? undefined : fromEnv.trim();
  };

  const upstream = read('upstream');
  if (upstream === undefined) {
    throw new UsageError('--upstream (or RELAY_UPSTREAM) is required');
  }
  try {
    const url = new URL(upstream);
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error('scheme');
  } catch {
    throw new UsageError(`--upstream must be an http(s) URL (got ${JSON.stringify(upstream)})`);
  }
  const profile = oneOf<ProfileFlag>('profile', read('profile') ?? 'openai', ['openai', 'codex']);
  const modeText = read('upstream-mode');
  const upstreamMode =
    modeText === undefined
      ? undefined
      : oneOf<ModeFlag>('upstream-mode', modeText, ['stateful', 'stateless']);
  if (profile === 'codex' && upstreamMode === 'stateful') {
    throw new UsageError(
      '--profile codex needs --upstream-mode stateless (the backend stores nothing)',
    );
  }
  // Both flags: an error. One flag: it wins over both variables. Only variables: a cluster wins.
  if (typeof values.redis === 'string' && typeof values['redis-cluster'] === 'string') {
    throw new UsageError('give --redis or --redis-cluster, not both');
  }
  const clusterText = typeof values.redis === 'string' ? undefined : read('redis-cluster');
  const redisCluster = clusterText
    ?.split(',')
    .map((node) => node.trim())
    .filter((node) => node !== '');
  if (redisCluster !== undefined && redisCluster.length === 0) {
    throw new UsageError('--redis-cluster needs at least one HOST:PORT');
  }
  const redis = redisCluster === undefined ? read('redis') : undefined;
  const logLevel = read('log-level') ?? 'info';
  if (!LOG_LEVELS.includes(logLevel)) {
    throw new UsageError(
      `--log-level must be one of ${LOG_LEVELS.join(', ')} (got ${JSON.stringify(logLevel)})`,
    );
  }
  const metricsText = read('metrics');
  return {
    kind: 'run',
    options: {
      port: integer('port', read('port') ?? '8080', 0, 65535),
      host: read('host') ?? '0.0.0.0',
      upstream,
      profile,
      upstreamMode,
      redis,
      redisCluster,
      redisKeyPrefix: read('redis-key-prefix'),
      tenantSecret: read('tenant-secret'),
      onStoreError: oneOf<StoreErrorFlag>(
        'on-store-error',
        read('on-store-error') ?? 'fail-closed',
        ['fail-closed', 'fail-open'],
      ),
      maxAttempts: integer('max-attempts', read('max-attempts') ?? '4', 1, 10),
      logLevel,
      shutdownTimeoutMs: integer(
        'shutdown-timeout',
        read('shutdown-timeout') ?? '30000',
        0,
        3_600_000,
      ),
      metrics: values['no-metrics'] === true ? false : boolean('metrics', metricsText ?? 'true'),
    },
  };
}
