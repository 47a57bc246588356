/**
 * What the chaining middlewares share: their logger and how a session-store failure becomes an
 * answer (the answers themselves are written by send-error.ts, like every middleware's).
 */
import type { IncomingMessage } from 'node:http';
import { relayError, type RelayError } from '../protocol/relay-errors';
import { isSessionStoreError } from '../store/session-store';

/** A pino-compatible logger (`logger.warn({ … }, 'message')`). Never handed a credential. */
export interface ChainingLogger {
  debug?(details: Record<string, unknown>, message: string): void;
  info?(details: Record<string, unknown>, message: string): void;
  warn(details: Record<string, unknown>, message: string): void;
  error(details: Record<string, unknown>, message: string): void;
}

type LogMethod = (details: Record<string, unknown>, message: string) => void;

/**
 * A user's logger made safe once: a method that throws is ignored. The relay logs from event
 * handlers and promise callbacks, where a throw would be uncaught or leave a client unanswered;
 * a failing logger never breaks a response, an upgrade or a connection.
 */
export function safeLogger(logger: ChainingLogger): ChainingLogger {
  const guard =
    (level: keyof ChainingLogger): LogMethod =>
    (details, message) => {
      try {
        logger[level]?.(details, message);
      } catch {
        // Ignored: see above.
      }
    };
  const optional = (level: keyof ChainingLogger) =>
    typeof logger[level] === 'function' ? { [level]: guard(level) } : {};
  return Object.freeze({
    warn: guard('warn'),
    error: guard('error'),
    ...optional('debug'),
    ...optional('info'),
  });
}

/** What the store does when it is down or too slow (DESIGN.md §4). */
export type StoreErrorPolicy = 'fail-closed' | 'fail-open';

function stderrLine(level: string, details: Record<string, unknown>, message: string): void {
  let line: string;
  try {
    line = JSON.stringify({ level, time: Date.now(), ...details, msg: message });
  } catch {
    line = JSON.stringify({ level, time: Date.now(), msg: message });
  }
  process.stderr.write(`${line}\n`);
}

/** Warnings and errors as JSON lines on stderr; debug and info are dropped. */
export const STDERR_LOGGER: ChainingLogger = Object.freeze({
  warn: (details: Record<string, unknown>, message: string) => stderrLine('warn', details, message),
  error: (details: Record<string, unknown>, message: string) =>
    stderrLine('error', details, message),
});

function isLogger(value: unknown): value is ChainingLogger {
  const candidate = value as Partial<ChainingLogger> | undefined;
  return typeof candidate?.warn === 'function' && typeof candidate.error === 'function';
}

const SILENT: ChainingLogger = Object.freeze({ warn: () => undefined, error: () => undefined });

/**
 * The logger given in the options (`false`: none), else pino-http's `req.log`, else
 * {@link STDERR_LOGGER}.
 */
export function loggerFor(
  option: ChainingLogger | false | undefined,
  req: IncomingMessage,
): ChainingLogger {
  if (option === false) return SILENT;
  if (option) return option;
  const attached = (req as IncomingMessage & { log?: unknown }).log;
  return isLogger(attached) ? attached : STDERR_LOGGER;
}

/**
 * What a failed store call means for the request: `unavailable` (the backend is down, slow, or
 * failed in a way the relay does not know: the `onStoreError` policy decides), or a definite
 * answer (a history over the store's caps is a 400 that retrying cannot fix).
 */
export type StoreFailure =
  { kind: 'unavailable'; code: string } | { kind: 'answer'; code: string; error: RelayError };

export function classifyStoreFailure(error: unknown, anchor: string): StoreFailure {
  if (isSessionStoreError(error)) {
    switch (error.code) {
      case 'chain_too_deep':
        return {
          kind: 'answer',
          code: error.code,
          error: relayError('chain_too_deep', { id: anchor, limit: error.limit ?? '(unknown)' }),
        };
      case 'chain_too_large':
        return {
          kind: 'answer',
          code: error.code,
          error: relayError('history_too_large', { id: anchor, limit: error.limit ?? '(unknown)' }),
        };
      default:
        return { kind: 'unavailable', code: error.code };
    }
  }
  return { kind: 'unavailable', code: error instanceof Error ? error.name : 'unknown' };
}

/** A short, secret-free description of a store error for the logs. */
export function describeStoreError(error: unknown): Record<string, unknown> {
  if (isSessionStoreError(error)) return { storeError: error.code, message: error.message };
  return { storeError: error instanceof Error ? error.name : typeof error };
}
