/**
 * The nesting bound on request bodies: `exceedsJsonDepth` against a reference count, and
 * `readRequestBody` at the bound (a body needs one byte per level, so a short one is never walked).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import fc from 'fast-check';
import { getExchange } from '../../lib/middleware/exchange';
import { readRequestBody } from '../../lib/middleware/request-body';
import { exceedsJsonDepth, MAX_JSON_DEPTH } from '../../lib/protocol/json-depth';
import { isRelayError } from '../../lib/protocol/relay-errors';

/** `depth` levels of arrays/objects around a number, alternating from `startWithArray`. */
function nested(depth: number, startWithArray: boolean): unknown {
  let value: unknown = 1;
  for (let level = depth; level >= 1; level -= 1) {
    const array = (level % 2 === 1) === startWithArray;
    value = array ? [0, value] : { a: 'x', b: value };
  }
  return value;
}

/** The reference: the deepest nesting, counted recursively (fine for test-sized values). */
function depthOf(value: unknown): number {
  if (typeof value !== 'object' || value === null) return 0;
  const children = Array.isArray(value) ? value : Object.values(value);
  return 1 + Math.max(0, ...children.map(depthOf));
}

describe('exceedsJsonDepth', () => {
  it('is false at the limit and true one level past it', () => {
    for (const startWithArray of [true, false]) {
      expect(exceedsJsonDepth(nested(MAX_JSON_DEPTH, startWithArray), MAX_JSON_DEPTH)).toBe(false);
      expect(exceedsJsonDepth(nested(MAX_JSON_DEPTH + 1, startWithArray), MAX_JSON_DEPTH)).toBe(
        true,
      );
    }
    expect(exceedsJsonDepth('text', 0)).toBe(false);
    expect(exceedsJsonDepth(null, 0)).toBe(false);
    expect(exceedsJsonDepth({}, 0)).toBe(true);
  });

  it('agrees with a recursive count on any JSON value', () => {
    fc.assert(
      fc.property(
        fc.jsonValue({ maxDepth: 8 }),
        fc.integer({ min: 0, max: 10 }),
        (value, limit) => {
          expect(exceedsJsonDepth(value, limit)).toBe(depthOf(value) > limit);
        },
      ),
    );
  });
});

describe('readRequestBody and the nesting bound', () => {
  let server: http.Server;
  let url: string;

  beforeAll(async () => {
    server = http.createServer((req, res) => {
      readRequestBody(getExchange(req, res)).then(
        () => res.end('ok'),
        (error: unknown) => {
          res.statusCode = 400;
          res.end(
            isRelayError(error) && error.message.includes('nested too deeply')
              ? 'too_deep'
              : 'other',
          );
        },
      );
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  const post = async (body: string) => {
    const response = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body,
    });
    return { status: response.status, text: await response.text() };
  };

  it('accepts a body nested exactly to the bound and refuses one level more', async () => {
    const at = (depth: number) => `{"input":${'['.repeat(depth - 1)}1${']'.repeat(depth - 1)}}`;
    expect(await post(at(MAX_JSON_DEPTH))).toEqual({ status: 200, text: 'ok' });
    expect(await post(at(MAX_JSON_DEPTH + 1))).toEqual({ status: 400, text: 'too_deep' });
  });

  it('accepts the deepest body that fits in the bound’s byte count without walking it', async () => {
    // `{"i":` + levels of brackets around a digit + `}`: 2 × levels + 5 bytes.
    const levels = Math.floor((MAX_JSON_DEPTH - 5) / 2);
    const body = `{"i":${'['.repeat(levels - 1)}1${']'.repeat(levels - 1)}}`;
    expect(Buffer.byteLength(body)).toBeLessThanOrEqual(MAX_JSON_DEPTH);
    expect(await post(body)).toEqual({ status: 200, text: 'ok' });
  });
});
