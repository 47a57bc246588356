/** The upstream router helper: pins continuations, spreads new conversations, records choices. */
import type { IncomingMessage } from 'node:http';
import {
  chainingRouter,
  pinUpstream,
  pinnedUpstream,
  routedUpstream,
} from '../../lib/middleware/chaining-router';

const request = (): IncomingMessage => ({ headers: {} }) as unknown as IncomingMessage;

describe('chainingRouter', () => {
  it('round-robins requests that are not pinned, and records each choice', () => {
    const router = chainingRouter({ upstreams: { a: 'http://a', b: 'http://b', c: 'http://c' } });
    const requests = [request(), request(), request(), request()];
    expect(requests.map((req) => router(req))).toEqual([
      'http://a',
      'http://b',
      'http://c',
      'http://a',
    ]);
    expect(requests.map((req) => routedUpstream(req))).toEqual(['a', 'b', 'c', 'a']);
    expect(router.chosen(requests[1] as IncomingMessage)).toBe('b');
    expect(router.names).toEqual(['a', 'b', 'c']);
    expect(router.urlOf('c')).toBe('http://c');
  });

  it('sends a pinned request to its upstream without moving the rotation', () => {
    const router = chainingRouter({
      upstreams: [
        { name: 'a', url: 'http://a' },
        { name: 'b', url: 'http://b' },
      ],
    });
    const pinned = request();
    pinUpstream(pinned, 'b');
    expect(pinnedUpstream(pinned)).toBe('b');
    expect(router(pinned)).toBe('http://b');
    expect(router(pinned)).toBe('http://b');
    expect(router(request())).toBe('http://a');
    expect(routedUpstream(pinned)).toBe('b');
  });

  it('spreads a request pinned to an unknown upstream, and says so', () => {
    const warnings: unknown[] = [];
    const router = chainingRouter({
      upstreams: { a: 'http://a' },
      logger: { warn: (details) => warnings.push(details) },
    });
    const req = request();
    pinUpstream(req, 'gone');
    expect(router(req)).toBe('http://a');
    expect(routedUpstream(req)).toBe('a');
    expect(warnings).toEqual([{ upstream: 'gone' }]);
  });

  it('uses a custom pick, falling back to round-robin for an unknown name', () => {
    const router = chainingRouter({ upstreams: { a: 'http://a', b: 'http://b' }, pick: () => 'b' });
    expect(router(request())).toBe('http://b');
    const odd = chainingRouter({ upstreams: { a: 'http://a' }, pick: () => 'nope' });
    expect(odd(request())).toBe('http://a');
  });

  it('refuses a bad configuration at once', () => {
    expect(() => chainingRouter({ upstreams: {} })).toThrow(/empty/);
    expect(() => chainingRouter({ upstreams: { a: '' } })).toThrow(/non-empty/);
    expect(() =>
      chainingRouter({
        upstreams: [
          { name: 'a', url: 'http://a' },
          { name: 'a', url: 'http://b' },
        ],
      }),
    ).toThrow(/twice/);
  });
});
