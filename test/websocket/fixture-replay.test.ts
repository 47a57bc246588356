/**
 * The captured Codex WebSocket traffic, replayed through the bridge against the fake upstream:
 * every turn — prewarm, first turn anchored on the prewarm, tool-output deltas, second user turns,
 * reconnects with the full history — completes, in the shape the Codex client reads, and the
 * upstream receives each continuation expanded byte for byte (stateless relay).
 */
import type { JsonObject, ResponseItem } from '../../lib/protocol/types';
import { MemorySessionStore } from '../../lib/store/memory-session-store';
import type { FakeUpstream } from '../support/fake-upstream';
import { useFakes } from '../support/fake-upstream/testing';
import { fixtureNames } from '../support/fixtures';
import { AUTH_A, startGateway, type TestGateway } from './support/gateway';
import { capturedConnections, fullTools, IdMap, replayTranscript } from './support/replay';
import { doneItems, streamProblems, WsClient } from './support/ws-client';

const start = useFakes();
const gateways: TestGateway[] = [];
afterEach(async () => {
  await Promise.all(gateways.splice(0).map((gateway) => gateway.close()));
});

async function gatewayFor(
  fake: FakeUpstream,
  relayMode: 'stateless' | 'stateful',
): Promise<TestGateway> {
  const gateway = await startGateway({
    relayMode,
    store: new MemorySessionStore(),
    target: fake.url,
  });
  gateways.push(gateway);
  return gateway;
}

/** Every WebSocket transcript with client frames (the refused-upgrade ones have none). */
const TRANSCRIPTS = fixtureNames().filter(
  (name) => name.startsWith('ws-') && capturedConnections(name).length > 0,
);

const isToolOutputDelta = (input: unknown): boolean =>
  Array.isArray(input) &&
  input.length > 0 &&
  (input as JsonObject[]).every((item) => item.type === 'function_call_output');

it('finds the transcripts, with prewarms and tool-output deltas among them', () => {
  expect(TRANSCRIPTS.length).toBeGreaterThanOrEqual(18);
  expect(TRANSCRIPTS).toEqual(
    expect.arrayContaining(['ws-tool-loop', 'ws-two-rounds-turnstate', 'ws-appserver-two-turns']),
  );
  expect(fullTools()).toHaveLength(10);
});

describe.each([
  { relay: 'stateless' as const, upstream: 'stateless' as const },
  { relay: 'stateless' as const, upstream: 'stateful' as const },
])('relay $relay, upstream $upstream', ({ relay, upstream }) => {
  it.each(TRANSCRIPTS)('%s: every turn completes', async (name) => {
    const fake = await start({ mode: upstream, sparseCompletion: upstream === 'stateless' });
    const gateway = await gatewayFor(fake, relay);
    const turns = await replayTranscript(name, gateway.wsUrl, fake, AUTH_A);

    for (const { seq, turn, prewarm } of turns) {
      expect({ seq, error: turn.error }).toEqual({ seq, error: undefined });
      expect({ seq, status: turn.response?.status }).toEqual({ seq, status: 'completed' });
      expect({ seq, problems: streamProblems(turn) }).toEqual({ seq, problems: [] });
      if (prewarm) {
        expect(turn.response?.output).toEqual([]);
        expect(doneItems(turn)).toEqual([]);
      } else {
        expect(doneItems(turn).length).toBeGreaterThan(0);
        // Codex ignores `response.output`, the SDK does not: it is rebuilt when sparse.
        expect(turn.response?.output).toEqual(doneItems(turn));
      }
    }

    // Prewarms never reach the upstream; every other turn does, once, expanded, unanchored.
    const generating = turns.filter((t) => !t.prewarm);
    expect(fake.requests).toHaveLength(generating.length);
    generating.forEach((t, index) => {
      const body = fake.requests[index]?.body as JsonObject;
      expect(body.previous_response_id).toBeUndefined();
      expect(body.generate).toBeUndefined();
      expect(body.store).toBe(false);
      expect({ seq: t.seq, input: body.input }).toEqual({ seq: t.seq, input: t.expectedInput });
    });

    const stats = gateway.bridge.stats;
    expect(stats.prewarms).toBe(turns.length - generating.length);
    expect(stats.completed).toBe(turns.length);
    expect(stats.errorFrames).toBe(0);
  });
});

it('the tool-output deltas among the replayed turns all succeed (two rounds, two user turns)', async () => {
  for (const name of ['ws-two-rounds-turnstate', 'ws-appserver-two-turns']) {
    const fake = await start({ mode: 'stateless' });
    const gateway = await gatewayFor(fake, 'stateless');
    const turns = await replayTranscript(name, gateway.wsUrl, fake, AUTH_A);
    const deltas = turns.filter((t) => isToolOutputDelta(t.sent.input));
    expect(deltas.length).toBe(2);
    for (const delta of deltas) {
      expect(delta.turn.response?.status).toBe('completed');
      // The upstream saw the call each output answers, right before it.
      const input = delta.expectedInput as JsonObject[];
      const output = (delta.sent.input as JsonObject[])[0] as JsonObject;
      const call = input.find(
        (item) => item.type === 'function_call' && item.call_id === output.call_id,
      );
      expect(call).toBeDefined();
    }
    // The base instructions exist only in the prewarm: every generating request starts with them.
    const prewarm = turns.find((t) => t.prewarm)?.sent.input as ResponseItem[];
    for (const request of fake.requests) {
      expect(((request.body as JsonObject).input as ResponseItem[])[0]).toEqual(prewarm[0]);
    }
  }
});

describe('relay stateful, upstream stateful (a client that lets the upstream store)', () => {
  it('passes each anchor through; a delta that omits it continues the connection', async () => {
    const fake = await start({ mode: 'stateful' });
    const gateway = await gatewayFor(fake, 'stateful');
    const [connection] = capturedConnections('ws-tool-loop');
    const frames = (connection?.frames ?? []).map((frame) => frame.record.frame);
    const [prewarm, first, toolRound] = frames as unknown as [JsonObject, JsonObject, JsonObject];
    const ids = new IdMap();
    const client = await WsClient.connect(gateway.wsUrl, AUTH_A);
    // No prewarm: its anchor would exist only in the relay (see docs); the full first input.
    const opening = ids.frame(first, fullTools());
    delete opening.previous_response_id;
    opening.input = [...(prewarm.input as JsonObject[]), ...(first.input as JsonObject[])];
    opening.store = true;
    const call = await client.turn(opening);
    expect(call.response?.status).toBe('completed');
    const [item] = doneItems(call) as JsonObject[];
    expect(item?.type).toBe('function_call');

    const output = (toolRound.input as JsonObject[])[0] as JsonObject;
    const delta: JsonObject = { ...ids.frame(toolRound, fullTools()), store: true };
    delete delta.previous_response_id; // omitted: the connection's last response is the anchor
    delta.input = [{ ...output, call_id: item?.call_id }];
    const final = await client.turn(delta);
    expect(final.error).toBeUndefined();
    expect(final.response?.status).toBe('completed');
    expect((fake.requests[1]?.body as JsonObject).previous_response_id).toBe(call.response?.id);
    expect(gateway.bridge.stats.anchorsAdded).toBe(1);
    await client.close();
  });
});
