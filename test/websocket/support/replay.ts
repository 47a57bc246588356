/**
 * Replays the captured Codex WebSocket traffic (`shared/fixtures/codex-wire/ws-*.jsonl`) through
 * the bridge: each captured connection becomes a connection to the gateway with the captured
 * handshake headers, each captured `response.create` is sent as Codex sent it, with the ids the
 * capture mock minted (responses, items, call ids) replaced by the ones this run produced, and
 * the fake upstream is scripted to answer as the capture mock did (a call to the same tool, or a
 * final message).
 */
import type { Behaviour, FakeUpstream } from '../../support/fake-upstream';
import {
  loadFixture,
  type FixtureRecord,
  type WsInRecord,
  type WsOutRecord,
  type WsReplyPlanRecord,
} from '../../support/fixtures';
import type { JsonObject, ResponseItem } from '../../../lib/protocol/types';
import { doneItems, WsClient, type WsTurn } from './ws-client';

export interface CapturedFrame {
  record: WsInRecord;
  plan: WsReplyPlanRecord | undefined;
  outs: WsOutRecord[];
}

export interface CapturedConnection {
  conn: number;
  headers: Record<string, string>;
  frames: CapturedFrame[];
}

/** The captured connections of a transcript, in order, each with its frames. */
export function capturedConnections(name: string): CapturedConnection[] {
  const records: FixtureRecord[] = loadFixture(name);
  const connections: CapturedConnection[] = [];
  let pendingHeaders: Record<string, string> | undefined;
  const byConn = new Map<number, CapturedConnection>();
  const lastFrame = new Map<number, CapturedFrame>();
  for (const record of records) {
    switch (record.kind) {
      case 'ws_upgrade_request':
        pendingHeaders = record.headers;
        break;
      case 'ws_open': {
        const connection = { conn: record.conn, headers: pendingHeaders ?? {}, frames: [] };
        connections.push(connection);
        byConn.set(record.conn, connection);
        pendingHeaders = undefined;
        break;
      }
      case 'ws_in': {
        const frame: CapturedFrame = { record, plan: undefined, outs: [] };
        byConn.get(record.conn)?.frames.push(frame);
        lastFrame.set(record.conn, frame);
        break;
      }
      case 'ws_reply_plan': {
        const frame = lastFrame.get(record.conn);
        if (frame && frame.plan === undefined) frame.plan = record;
        break;
      }
      case 'ws_out':
        lastFrame.get(record.conn)?.outs.push(record);
        break;
      default:
        break;
    }
  }
  return connections.filter((connection) => connection.frames.length > 0);
}

/** The full `tools` array Codex 0.169.0 sent (kept in ws-tool-loop; elsewhere summarized). */
export function fullTools(): unknown[] {
  const first = capturedConnections('ws-tool-loop')[0]?.frames[0]?.record.frame;
  const tools = first?.tools;
  if (!Array.isArray(tools)) throw new Error('ws-tool-loop has no tools array');
  return tools;
}

/** The captured handshake headers a test client can send (its own credential instead). */
export function clientHeaders(
  captured: Record<string, string>,
  auth: Record<string, string>,
): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(captured)) {
    const lower = name.toLowerCase();
    if (
      lower === 'host' ||
      lower === 'connection' ||
      lower === 'upgrade' ||
      lower === 'authorization' ||
      lower.startsWith('sec-websocket-')
    ) {
      continue;
    }
    headers[lower] = value;
  }
  return { ...headers, ...auth };
}

/** What the fake should answer to a captured frame, as the capture mock did. */
export function behaviourFor(frame: CapturedFrame): Behaviour {
  const done = frame.outs
    .map((out) => out.frame)
    .filter((event) => event.type === 'response.output_item.done')
    .map((event) => event.item as JsonObject);
  const kind = frame.plan?.reply_kind;
  if (kind === 'function_call') {
    const calls = done
      .filter((item) => item.type === 'function_call')
      .map((item) => ({ name: String(item.name), arguments: String(item.arguments) }));
    if (calls.length > 0) return { kind: 'tool_calls', calls };
  }
  if (kind === 'final_message') {
    const message = done.find((item) => item.type === 'message');
    const content = (message?.content as JsonObject[] | undefined)?.[0];
    if (typeof content?.text === 'string') return { kind: 'text', text: content.text };
  }
  return { kind: 'auto' };
}

/** Captured ids → the ids of this run. */
export class IdMap {
  private readonly map = new Map<string, string>();

  set(captured: unknown, actual: unknown): void {
    if (typeof captured === 'string' && typeof actual === 'string') this.map.set(captured, actual);
  }

  get(captured: string): string {
    return this.map.get(captured) ?? captured;
  }

  has(captured: string): boolean {
    return this.map.has(captured);
  }

  /** A captured frame with its ids mapped (`previous_response_id`, input `id`s and `call_id`s). */
  frame(frame: JsonObject, tools: unknown[]): JsonObject {
    const copy = JSON.parse(JSON.stringify(frame)) as JsonObject;
    delete copy.type;
    if (typeof copy.tools === 'string') copy.tools = tools as JsonObject[];
    if (typeof copy.previous_response_id === 'string') {
      copy.previous_response_id = this.get(copy.previous_response_id);
    }
    if (Array.isArray(copy.input)) {
      copy.input = (copy.input as JsonObject[]).map((item) => {
        const mapped = { ...item };
        if (typeof mapped.id === 'string') mapped.id = this.get(mapped.id);
        if (typeof mapped.call_id === 'string') mapped.call_id = this.get(mapped.call_id);
        return mapped;
      });
    }
    return copy;
  }

  /** Maps the captured answer's ids (response, output items, calls) onto the actual turn's. */
  learn(captured: CapturedFrame, turn: WsTurn): void {
    if (captured.plan) this.set(captured.plan.response_id, turn.response?.id);
    const capturedItems = captured.outs
      .map((out) => out.frame)
      .filter((event) => event.type === 'response.output_item.done')
      .map((event) => event.item as JsonObject);
    const actual = doneItems(turn) as JsonObject[];
    capturedItems.forEach((item, index) => {
      const mine = actual[index];
      if (!mine) return;
      this.set(item.id, mine.id);
      this.set(item.call_id, mine.call_id);
    });
  }
}

export interface ReplayedTurn {
  conn: number;
  seq: number;
  prewarm: boolean;
  /** The frame as sent (ids mapped). */
  sent: JsonObject;
  turn: WsTurn;
  /** The full history the upstream must have received for it (stateless expansion rule). */
  expectedInput: ResponseItem[];
}

/**
 * Replays a transcript through the gateway at `wsUrl`, scripting `fake` per frame. Each turn's
 * expected upstream input follows codex-wire.md §0.4: anchor's input ++ anchor's output (as sent
 * in `output_item.done`) ++ the delta.
 */
export async function replayTranscript(
  name: string,
  wsUrl: string,
  fake: FakeUpstream,
  auth: Record<string, string>,
): Promise<ReplayedTurn[]> {
  const tools = fullTools();
  const ids = new IdMap();
  const history = new Map<string, ResponseItem[]>();
  const replayed: ReplayedTurn[] = [];
  for (const connection of capturedConnections(name)) {
    const client = await WsClient.connect(wsUrl, clientHeaders(connection.headers, auth));
    try {
      for (const captured of connection.frames) {
        const sent = ids.frame(captured.record.frame, tools);
        const prewarm = sent.generate === false;
        if (!prewarm) fake.script(behaviourFor(captured));
        const turn = await client.turn(sent);
        const delta = (sent.input as ResponseItem[] | undefined) ?? [];
        const anchor = sent.previous_response_id;
        const base = typeof anchor === 'string' ? (history.get(anchor) ?? []) : [];
        const expectedInput = [...base, ...delta];
        if (turn.response?.status === 'completed') {
          history.set(turn.response.id, [...expectedInput, ...doneItems(turn)]);
        }
        ids.learn(captured, turn);
        replayed.push({
          conn: connection.conn,
          seq: captured.record.seq,
          prewarm,
          sent,
          turn,
          expectedInput,
        });
      }
    } finally {
      await client.close();
    }
  }
  return replayed;
}
