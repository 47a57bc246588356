/** Shared helpers of the fault-injection tests: a relay under test and answer checks. */
import { createRelay, type Relay, type RelayOptions } from '../../lib/relay';
import type { StreamAnswer } from '../support/fake-upstream/client';

export const AUTH_A = { authorization: 'Bearer sk-faults-tenant-a' };
export const AUTH_B = { authorization: 'Bearer sk-faults-tenant-b' };
export const MODEL = 'gpt-test';

/** Fast retries so a fault exhausts them quickly; jest's timeout is the hang detector. */
export const FAST_RETRY = {
  baseDelayMs: 1,
  maxDelayMs: 5,
  preludeTimeoutMs: 2000,
  budget: false as const,
};

export function useRelays(): (options: RelayOptions) => Promise<{ relay: Relay; url: string }> {
  const started: Relay[] = [];
  afterEach(async () => {
    await Promise.all(started.splice(0).map((relay) => relay.close({ timeoutMs: 200 })));
  });
  return async (options) => {
    const relay = createRelay({ logger: false, metrics: false, ...options });
    started.push(relay);
    const url = await relay.listen(0, '127.0.0.1');
    return { relay, url };
  };
}

const TERMINALS = new Set(['response.completed', 'response.failed', 'response.incomplete']);

/** An OpenAI error envelope: exactly `{"error":{"message","type","param","code"}}`. */
export function expectEnvelope(json: unknown): void {
  expect(json).toEqual({ error: expect.any(Object) });
  const error = (json as { error: Record<string, unknown> }).error;
  expect(typeof error.message).toBe('string');
  expect(typeof error.type).toBe('string');
  expect(error.param === null || typeof error.param === 'string').toBe(true);
  expect(error.code === null || typeof error.code === 'string').toBe(true);
  expect(Object.keys(error).sort()).toEqual(['code', 'message', 'param', 'type']);
}

/** The types of the events of a stream. */
export function types(answer: StreamAnswer): string[] {
  return answer.events.map((event) => String(event.json?.type ?? `unparsed:${event.data}`));
}

/**
 * A clean end for a failed upstream: either a non-2xx JSON envelope (nothing was streamed yet), or
 * a 200 stream whose last event is the only terminal one and is `response.failed`, and whose body
 * ended normally (not reset).
 */
export function expectCleanFailure(answer: StreamAnswer): 'envelope' | 'failed' {
  if (answer.status >= 400) {
    expect(String(answer.headers['content-type'])).toMatch(/^application\/json/);
    expectEnvelope(JSON.parse(answer.text));
    return 'envelope';
  }
  expect(answer.status).toBe(200);
  const seen = types(answer);
  expect(seen.filter((type) => TERMINALS.has(type))).toEqual(['response.failed']);
  expect(seen[seen.length - 1]).toBe('response.failed');
  expect(answer.ending).toBe('end');
  return 'failed';
}

/** Waits until `check()` is true, polling; the jest timeout catches a never. */
export async function until(check: () => boolean | Promise<boolean>, stepMs = 20): Promise<void> {
  while (!(await check())) await new Promise((r) => setTimeout(r, stepMs));
}
