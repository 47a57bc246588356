/**
 * Per-operation deadlines for store backends. The user's client decides how long it queues and
 * retries (ioredis 6 defaults waited over 70 s on one command with Redis down), so the store races
 * every operation against its own timer and turns client failures into typed errors.
 */
import { SessionStoreError } from './session-store';

/**
 * Settles like `operation`, or rejects with `onTimeout()` after `timeoutMs`. The timer is unref'd
 * (it never keeps the process alive) and cleared as soon as the operation settles. The operation
 * itself is not cancelled: a late reply is ignored (writes are idempotent, so a late write is safe).
 */
export function withDeadline<T>(
  operation: Promise<T>,
  timeoutMs: number,
  onTimeout: () => Error,
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let settled = false;
    const timer = setTimeout(() => {
      if (settled) return;
      settled = true;
      reject(onTimeout());
    }, timeoutMs);
    timer.unref();
    operation.then(
      (value) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve(value);
      },
      (error: unknown) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        reject(error);
      },
    );
  });
}

/** A client's own timeout ("Command timed out"), as opposed to a connection failure. */
function isClientTimeout(error: unknown): boolean {
  return error instanceof Error && /timed? ?out/i.test(error.message);
}

/** Maps whatever a backend client threw to `store_timeout` or `store_unavailable`. */
export function backendError(operation: string, error: unknown): SessionStoreError {
  if (error instanceof SessionStoreError) return error;
  const message = error instanceof Error ? error.message : String(error);
  if (isClientTimeout(error)) {
    return new SessionStoreError(
      'store_timeout',
      `session store ${operation} timed out: ${message}`,
      {
        cause: error,
      },
    );
  }
  return new SessionStoreError(
    'store_unavailable',
    `session store ${operation} failed: ${message}`,
    {
      cause: error,
    },
  );
}
