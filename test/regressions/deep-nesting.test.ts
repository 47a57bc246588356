/**
 * Regression: one ~10 KB request nested 5,000 levels deep used to crash the whole relay (a stack
 * overflow while serialising the rewritten body upstream). It must get a JSON error envelope and
 * the relay must keep serving.
 */
import { createRelay, type Relay } from '../../lib/relay';
import { startFakeUpstream, type FakeUpstream } from '../support/fake-upstream';

describe('a deeply nested request body', () => {
  let upstream: FakeUpstream;
  let relay: Relay;

  beforeAll(async () => {
    upstream = await startFakeUpstream({ mode: 'stateless' });
    relay = createRelay({ upstream: upstream.url, profile: 'codex', logger: false, retry: false });
    await relay.listen(0, '127.0.0.1');
  });

  afterAll(async () => {
    await relay.close({ timeoutMs: 1000 });
    await upstream.close();
  });

  it('gets a 400 invalid_json envelope and the relay keeps serving', async () => {
    const deep = '['.repeat(5000) + '1' + ']'.repeat(5000);
    const body = `{"model":"m","input":[{"type":"message","role":"user","content":${deep}}]}`;
    const response = await fetch(`${relay.url}/v1/responses`, {
      method: 'POST',
      headers: { authorization: 'Bearer x', 'content-type': 'application/json' },
      body,
    });
    expect(response.status).toBe(400);
    const envelope = (await response.json()) as { error: Record<string, unknown> };
    expect(envelope.error).toEqual({
      message: 'We could not parse the JSON body of your request. The body is nested too deeply.',
      type: 'invalid_request_error',
      param: null,
      code: 'invalid_json',
    });
    expect(upstream.requests).toHaveLength(0);
    const health = await fetch(`${relay.url}/healthz`);
    expect(health.status).toBe(200);
  });
});
