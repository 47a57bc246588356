/**
 * Malformed WebSocket input through the bridge `createRelay` attaches (codex profile, memory
 * store): random text and binary messages, random `response.create` payloads, and raw garbage
 * bytes after a valid upgrade (bad opcodes, unmasked frames, absurd lengths). Each message gets
 * error frames (or, for a valid turn, a terminal event) or the connection is closed with a
 * protocol close code — never silence, never 1011 — and the relay keeps serving afterwards.
 */
import { createHash, randomBytes } from 'node:crypto';
import net from 'node:net';
import fc from 'fast-check';
import WebSocket from 'ws';
import { createRelay, type Relay } from '../../lib/relay';
import { startFakeUpstream, type FakeUpstream } from '../support/fake-upstream';
import { rawRequest } from '../support/fake-upstream/client';
import { AUTH_A, MODEL } from './support';

const TERMINALS = new Set(['response.completed', 'response.failed', 'response.incomplete']);
/**
 * Closes a peer may send for input it refuses: normal, protocol error, unsupported, invalid,
 * policy, too big. Not 1006 (the socket dropped without a close frame) nor 1011 (internal error).
 */
const PROTOCOL_CLOSES = new Set([1000, 1002, 1003, 1007, 1008, 1009]);

let fake: FakeUpstream;
let relay: Relay;
let httpUrl: string;
let wsUrl: string;

beforeAll(async () => {
  fake = await startFakeUpstream({ mode: 'stateless' });
  relay = createRelay({
    upstream: fake.url,
    profile: 'codex',
    logger: false,
    metrics: false,
    retry: false,
  });
  httpUrl = await relay.listen(0, '127.0.0.1');
  wsUrl = `${httpUrl.replace('http', 'ws')}/v1/responses`;
});

afterAll(async () => {
  await relay.close({ timeoutMs: 200 });
  await fake.close();
});

interface Outcome {
  frames: Array<Record<string, unknown>>;
  close: number | undefined;
}

/** Opens a connection, sends one message, and collects until an error, a terminal or a close. */
function exchange(message: string | Buffer, binary: boolean): Promise<Outcome> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(wsUrl, { headers: AUTH_A });
    const frames: Array<Record<string, unknown>> = [];
    let settled = false;
    const finish = (close: number | undefined): void => {
      if (settled) return;
      settled = true;
      ws.terminate();
      resolve({ frames, close });
    };
    ws.once('error', (error) => (settled ? undefined : reject(error)));
    ws.once('open', () => ws.send(message, { binary }));
    ws.on('message', (data, isBinary) => {
      const text = isBinary ? '' : String(data);
      let parsed: Record<string, unknown>;
      try {
        parsed = JSON.parse(text) as Record<string, unknown>;
      } catch {
        parsed = { unparsed: text };
      }
      frames.push(parsed);
      if (parsed.type === 'error' || TERMINALS.has(String(parsed.type))) finish(undefined);
    });
    ws.once('close', (code) => finish(code));
  });
}

function expectHandled(outcome: Outcome): void {
  for (const frame of outcome.frames) expect(typeof frame.type).toBe('string');
  if (outcome.close !== undefined) {
    expect(PROTOCOL_CLOSES.has(outcome.close)).toBe(true);
    return;
  }
  const last = outcome.frames[outcome.frames.length - 1] as Record<string, unknown>;
  if (last.type === 'error') {
    const error = last.error as Record<string, unknown>;
    expect(typeof error.message).toBe('string');
    expect(typeof error.type).toBe('string');
    expect(typeof last.status).toBe('number');
    expect(last.status).not.toBe(500);
  } else {
    expect(TERMINALS.has(String(last.type))).toBe(true);
  }
}

async function relayStillServes(): Promise<void> {
  const healthy = await rawRequest(`${httpUrl}/healthz`, { method: 'GET' });
  expect(healthy.status).toBe(200);
  const turn = await exchange(
    JSON.stringify({ type: 'response.create', model: MODEL, input: 'still there?' }),
    false,
  );
  expect(turn.frames.at(-1)?.type).toBe('response.completed');
}

describe('malformed WebSocket messages', () => {
  it('random text messages get an error frame', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.string({ unit: 'binary', maxLength: 300 }),
          fc.jsonValue({ maxDepth: 3 }).map((value) => JSON.stringify(value)),
          fc.constantFrom('', ' ', '{', '{"type":', '\u0000', 'null', '[]', '"response.create"'),
        ),
        async (text) => {
          const outcome = await exchange(text, false);
          expectHandled(outcome);
        },
      ),
      { numRuns: 100 },
    );
    await relayStillServes();
  });

  it('random binary messages get an error frame or a close', async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 300 }), async (bytes) => {
        expectHandled(await exchange(Buffer.from(bytes), true));
      }),
      { numRuns: 100 },
    );
    await relayStillServes();
  });

  it('response.create with random fields gets an error frame or a well-formed turn', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.dictionary(
          fc.constantFrom(
            'model',
            'input',
            'instructions',
            'tools',
            'previous_response_id',
            'stream',
            'store',
            'generate',
            'reasoning',
            'response',
          ),
          fc.jsonValue({ maxDepth: 3 }),
        ),
        async (fields) => {
          const message = JSON.stringify({ ...fields, type: 'response.create' });
          expectHandled(await exchange(message, false));
        },
      ),
      { numRuns: 100 },
    );
    await relayStillServes();
  });
});

/** A raw upgrade on a plain socket, then the caller's bytes instead of proper frames. */
function rawUpgrade(garbage: Buffer): Promise<'closed'> {
  return new Promise((resolve, reject) => {
    const { port } = new URL(httpUrl);
    const socket = net.connect({ host: '127.0.0.1', port: Number(port) });
    const key = randomBytes(16).toString('base64');
    const accept = createHash('sha1')
      .update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`)
      .digest('base64');
    let head = '';
    let upgraded = false;
    socket.on('error', () => undefined);
    socket.once('close', () => (upgraded ? resolve('closed') : reject(new Error(head))));
    socket.on('data', (chunk: Buffer) => {
      if (upgraded) return;
      head += chunk.toString('latin1');
      if (!head.includes('\r\n\r\n')) return;
      if (!head.startsWith('HTTP/1.1 101') || !head.includes(accept)) {
        socket.destroy();
        return;
      }
      upgraded = true;
      socket.write(garbage);
    });
    socket.write(
      'GET /v1/responses HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n' +
        `Connection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n` +
        `Authorization: ${AUTH_A.authorization}\r\n\r\n`,
    );
  });
}

describe('garbage at the frame level', () => {
  it('bad opcodes, unmasked frames, absurd lengths and noise close the connection', async () => {
    const crafted = [
      Buffer.from([0x83, 0x80, 1, 2, 3, 4]), // reserved opcode 3, masked, empty
      Buffer.from([0x81, 0x05, 0x68, 0x65, 0x6c, 0x6c, 0x6f]), // unmasked text from a client
      Buffer.from([0x81, 0xff, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 1, 2, 3, 4]), // 2^63 bytes
      Buffer.from([0xf1, 0x80, 1, 2, 3, 4]), // RSV bits set
      Buffer.from([0x89, 0xfe, 0x01, 0x00, 1, 2, 3, 4]), // control frame over 125 bytes
      Buffer.from([0x01, 0x80, 1, 2, 3, 4, 0x02, 0x80, 1, 2, 3, 4]), // new data frame mid-fragment
    ];
    for (const bytes of crafted) await expect(rawUpgrade(bytes)).resolves.toBe('closed');
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ minLength: 2, maxLength: 64 }), async (bytes) => {
        // a leading byte that is never a valid final, masked frame header: RSV bit set
        const noise = Buffer.from(bytes);
        noise[0] = (noise[0] as number) | 0x40;
        await expect(rawUpgrade(noise)).resolves.toBe('closed');
      }),
      { numRuns: 50 },
    );
    await relayStillServes();
  });
});
