/**
 * A Codex-like client of the Responses WebSocket: one `response.create` at a time, reading
 * messages until the turn's terminal event or a wrapped error, as codex-rs does.
 */
import WebSocket from 'ws';
import type { JsonObject, ResponseItem } from '../../../lib/protocol/types';

export interface WsTurn {
  /** Every message received for the turn, parsed. */
  frames: JsonObject[];
  /** The terminal event, when the turn ended with one. */
  terminal: JsonObject | undefined;
  /** The Response of the terminal event. */
  response: (JsonObject & { id: string; status: string; output: ResponseItem[] }) | undefined;
  /** The wrapped error message, when the turn ended with one. */
  error: JsonObject | undefined;
}

export interface Refusal {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

const TERMINALS = new Set(['response.completed', 'response.failed', 'response.incomplete']);

export class WsClient {
  readonly frames: JsonObject[] = [];
  readonly closed: Promise<{ code: number; reason: string }>;
  private waiters: Array<() => void> = [];
  private cursor = 0;
  private closeInfo: { code: number; reason: string } | undefined;

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data, isBinary) => {
      const text = isBinary ? '' : String(data);
      let parsed: JsonObject;
      try {
        parsed = JSON.parse(text) as JsonObject;
      } catch {
        parsed = { unparsed: text };
      }
      this.frames.push(parsed);
      this.wake();
    });
    this.closed = new Promise((resolve) => {
      ws.once('close', (code, reason) => {
        this.closeInfo = { code, reason: String(reason) };
        this.wake();
        resolve(this.closeInfo);
      });
    });
  }

  /** Opens a connection; rejects with a `Refusal` when the upgrade is answered otherwise. */
  static connect(
    url: string,
    headers: Record<string, string> = {},
    options: WebSocket.ClientOptions = {},
  ): Promise<WsClient> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url, { headers, ...options });
      ws.once('open', () => resolve(new WsClient(ws)));
      ws.once('unexpected-response', (_req, res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => {
          const refusal: Refusal = {
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks).toString('utf8'),
          };
          reject(Object.assign(new Error(`upgrade refused: ${res.statusCode}`), { refusal }));
        });
      });
      ws.once('error', reject);
    });
  }

  get isOpen(): boolean {
    return this.ws.readyState === WebSocket.OPEN;
  }

  send(data: string | Buffer, binary = false): void {
    this.ws.send(data, { binary });
  }

  /** The next message not read yet (waits for it). */
  async next(timeoutMs = 10_000): Promise<JsonObject> {
    const deadline = Date.now() + timeoutMs;
    while (this.cursor >= this.frames.length) {
      if (this.closeInfo) throw new Error(`connection closed (${this.closeInfo.code})`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error('timed out waiting for a message');
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    const frame = this.frames[this.cursor] as JsonObject;
    this.cursor += 1;
    return frame;
  }

  /** Sends `response.create` with `body` and reads until the terminal event or an error. */
  async turn(body: JsonObject, timeoutMs = 15_000): Promise<WsTurn> {
    this.send(JSON.stringify({ type: 'response.create', ...body }));
    return this.read(timeoutMs);
  }

  /** Reads one turn's messages (after a `response.create` was sent). */
  async read(timeoutMs = 15_000): Promise<WsTurn> {
    const frames: JsonObject[] = [];
    for (;;) {
      const frame = await this.next(timeoutMs);
      frames.push(frame);
      if (frame.type === 'error' && typeof frame.status === 'number') {
        return { frames, terminal: undefined, response: undefined, error: frame };
      }
      if (TERMINALS.has(String(frame.type))) {
        return {
          frames,
          terminal: frame,
          response: frame.response as WsTurn['response'],
          error: undefined,
        };
      }
    }
  }

  close(): Promise<{ code: number; reason: string }> {
    if (this.ws.readyState === WebSocket.OPEN || this.ws.readyState === WebSocket.CONNECTING) {
      this.ws.close();
    }
    return this.closed;
  }

  terminate(): void {
    this.ws.terminate();
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const wake of waiters) wake();
  }
}

/** The refusal of an upgrade expected to be refused. */
export async function refusalOf(
  url: string,
  headers: Record<string, string> = {},
): Promise<Refusal> {
  try {
    const client = await WsClient.connect(url, headers);
    await client.close();
  } catch (error) {
    const refusal = (error as { refusal?: Refusal }).refusal;
    if (refusal) return refusal;
    throw error;
  }
  throw new Error('the upgrade was accepted');
}

/** Output items of a turn as streamed in `response.output_item.done`. */
export function doneItems(turn: WsTurn): ResponseItem[] {
  return turn.frames
    .filter((frame) => frame.type === 'response.output_item.done')
    .map((frame) => frame.item as ResponseItem);
}

/** Checks what the Codex client relies on: created first, increasing sequence numbers. */
export function streamProblems(turn: WsTurn): string[] {
  const problems: string[] = [];
  if (turn.frames[0]?.type !== 'response.created')
    problems.push('first event is not response.created');
  let last = -1;
  for (const frame of turn.frames) {
    const sequence = frame.sequence_number;
    if (typeof sequence !== 'number') {
      problems.push(`${String(frame.type)} has no sequence_number`);
      continue;
    }
    if (sequence <= last) problems.push(`sequence ${sequence} after ${last}`);
    last = sequence;
  }
  const terminals = turn.frames.filter((frame) => TERMINALS.has(String(frame.type)));
  if (terminals.length !== 1) problems.push(`${terminals.length} terminal events`);
  return problems;
}
