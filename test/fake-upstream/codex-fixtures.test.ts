/**
 * The fake accepts every request the real Codex CLI sent (the `http_request` bodies of the
 * codex-wire HTTP fixtures), in stateless mode as the Codex backend must, and in stateful mode,
 * and answers them with what Codex needs (`output_item.done` items and `response.completed`).
 */
import fs from 'node:fs';
import path from 'node:path';
import type { JsonObject } from '../../lib/protocol/types';
import { checkStream } from '../support/fake-upstream/stream-check';
import { eventsOf, lastResponse, stream, useFakes } from '../support/fake-upstream/testing';

const FIXTURES = path.resolve(__dirname, '../../../shared/fixtures/codex-wire');

interface Replay {
  file: string;
  seq: number;
  path: string;
  body: JsonObject;
}

function records(file: string): JsonObject[] {
  return fs
    .readFileSync(path.join(FIXTURES, file), 'utf8')
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line) as JsonObject);
}

const files = fs
  .readdirSync(FIXTURES)
  .filter((name) => name.startsWith('http-') && name.endsWith('.jsonl'))
  .sort();

// The sanitizer replaced most `tools` arrays by a one-line summary; http-tool-loop keeps the
// full array Codex sent (fixtures README), which the replay puts back.
const fullTools = (
  records('http-tool-loop.jsonl').find((r) => r.kind === 'http_request')?.body as JsonObject
).tools as unknown[];

const replays: Replay[] = files.flatMap((file) =>
  records(file)
    .filter((r) => r.kind === 'http_request' && r.method === 'POST')
    .map((r) => {
      const body = { ...(r.body as JsonObject) };
      if (typeof body.tools === 'string') body.tools = fullTools;
      return { file, seq: r.seq as number, path: r.path as string, body };
    }),
);

const start = useFakes();

it('finds the fixtures', () => {
  expect(files.length).toBeGreaterThanOrEqual(25);
  expect(replays.length).toBeGreaterThanOrEqual(90);
  expect(Array.isArray(fullTools) && fullTools.length).toBe(10);
  expect(new Set(fullTools.map((tool) => (tool as JsonObject).type))).toEqual(
    new Set(['function', 'custom', 'tool_search', 'web_search']),
  );
});

describe.each(['stateless', 'stateful'] as const)('in %s mode', (mode) => {
  it.each(files)('accepts every request of %s', async (file) => {
    const fake = await start({ mode, sparseCompletion: mode === 'stateless' });
    for (const replay of replays.filter((r) => r.file === file)) {
      const answer = await stream(fake, replay.body, {}, replay.path);
      const events = eventsOf(answer);
      expect({ seq: replay.seq, status: answer.status }).toEqual({ seq: replay.seq, status: 200 });
      expect(checkStream(events, { fullOutput: mode === 'stateful' })).toEqual([]);
      expect(events.filter((e) => e.type === 'response.output_item.done').length).toBeGreaterThan(
        0,
      );
      expect(lastResponse(answer)).toMatchObject({ status: 'completed', store: false });
    }
    expect(fake.responses.size).toBe(0);
  });
});

it('answers the Codex tool loop like the capture mock: exec_command, then a final message', async () => {
  const fake = await start({ mode: 'stateless' });
  const [first, second] = replays.filter((r) => r.file === 'http-tool-loop.jsonl');
  const call = eventsOf(await stream(fake, first?.body as JsonObject)).find(
    (e) => e.type === 'response.output_item.done',
  )?.item as JsonObject;
  expect(call).toMatchObject({
    type: 'function_call',
    name: 'exec_command',
    arguments: '{"cmd":"echo hi"}',
  });
  const final = eventsOf(await stream(fake, second?.body as JsonObject)).find(
    (e) => e.type === 'response.output_item.done',
  )?.item as JsonObject;
  expect(final.type).toBe('message');
});

it('also serves Codex on /backend-api/codex/responses', async () => {
  const fake = await start({ mode: 'stateless' });
  const replay = replays.find((r) => r.file === 'http-tool-loop.jsonl') as Replay;
  const answer = await stream(fake, replay.body, {}, '/backend-api/codex/responses');
  expect(answer.status).toBe(200);
});
