/** Jest helpers for tests that talk to the fake upstream (uses jest globals: import from tests only). */
import type { JsonObject } from '../../../lib/protocol/types';
import { startFakeUpstream, type FakeUpstream, type FakeUpstreamOptions } from './index';
import {
  postStream,
  rawRequest,
  type RawAnswer,
  type StreamAnswer,
  type StreamOptions,
} from './client';

export const EXEC_COMMAND_TOOL = {
  type: 'function',
  name: 'exec_command',
  description: 'Runs a command.',
  strict: false,
  parameters: {
    type: 'object',
    properties: { cmd: { type: 'string' }, workdir: { type: 'string' } },
    required: ['cmd'],
    additionalProperties: false,
  },
};

/** Starts fakes and closes them after each test. */
export function useFakes(): (options?: FakeUpstreamOptions) => Promise<FakeUpstream> {
  const started: FakeUpstream[] = [];
  afterEach(async () => {
    await Promise.all(started.splice(0).map((fake) => fake.close()));
  });
  return async (options) => {
    const fake = await startFakeUpstream(options);
    started.push(fake);
    return fake;
  };
}

export function post(
  fake: FakeUpstream,
  body: unknown,
  headers: Record<string, string> = {},
  path = '/v1/responses',
): Promise<RawAnswer> {
  return rawRequest(fake.url + path, { body, headers });
}

export function stream(
  fake: FakeUpstream,
  body: JsonObject,
  options: Omit<StreamOptions, 'body'> = {},
  path = '/v1/responses',
): Promise<StreamAnswer> {
  return postStream(fake.url + path, { ...options, body: { stream: true, ...body } });
}

export function eventsOf(answer: StreamAnswer): JsonObject[] {
  return answer.events.map((event) => event.json ?? { unparsed: event.data });
}

export function typesOf(answer: StreamAnswer): string[] {
  return eventsOf(answer).map((event) => String(event.type));
}

export function errorOf(answer: RawAnswer): JsonObject {
  return (answer.json as { error: JsonObject }).error;
}

/** The `response` of the last event. */
export function lastResponse(answer: StreamAnswer): JsonObject {
  const events = eventsOf(answer);
  return events[events.length - 1]?.response as JsonObject;
}
