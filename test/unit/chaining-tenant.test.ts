/** Tenant and session resolution of the chaining middlewares. */
import type { IncomingMessage } from 'node:http';
import {
  createTenantResolver,
  requestCredential,
  resolveTenantSecret,
} from '../../lib/middleware/chaining-tenant';
import { sessionFromHeaders } from '../../lib/middleware/chaining-session';
import { isValidTenant, tenantId } from '../../lib/store/tenant';

const request = (headers: Record<string, string | string[]>): IncomingMessage =>
  ({ headers }) as unknown as IncomingMessage;

describe('requestCredential', () => {
  it('prefers the bearer token, then x-api-key, then api-key', () => {
    expect(
      requestCredential(
        request({ authorization: 'Bearer sk-a', 'x-api-key': 'k-b', 'api-key': 'k-c' }),
      ),
    ).toBe('sk-a');
    expect(requestCredential(request({ 'x-api-key': 'k-b', 'api-key': 'k-c' }))).toBe('k-b');
    expect(requestCredential(request({ 'api-key': 'k-c' }))).toBe('k-c');
  });

  it('accepts any case of the scheme and trims', () => {
    expect(requestCredential(request({ authorization: '  bearer   sk-x  ' }))).toBe('sk-x');
    expect(requestCredential(request({ authorization: 'BEARER sk-y' }))).toBe('sk-y');
  });

  it('ignores other schemes, empty values and missing headers', () => {
    expect(requestCredential(request({ authorization: 'Basic dXNlcjpwdw==' }))).toBeUndefined();
    expect(requestCredential(request({ authorization: 'Bearer ' }))).toBeUndefined();
    expect(requestCredential(request({ 'x-api-key': '  ' }))).toBeUndefined();
    expect(requestCredential(request({}))).toBeUndefined();
    expect(requestCredential(request({ authorization: 'Basic x', 'x-api-key': 'fallback' }))).toBe(
      'fallback',
    );
  });

  it('takes the first value of a repeated header', () => {
    expect(requestCredential(request({ 'x-api-key': ['one', 'two'] }))).toBe('one');
  });
});

describe('createTenantResolver', () => {
  const secret = 'test-secret';

  it('hashes the credential with the secret; the credential never shows', () => {
    const resolve = createTenantResolver('t', { tenantSecret: secret });
    const tenant = resolve(request({ authorization: 'Bearer sk-live-abc' }));
    expect(tenant).toBe(tenantId('sk-live-abc', secret));
    expect(isValidTenant(tenant)).toBe(true);
    expect(tenant).not.toContain('sk-live');
  });

  it('gives distinct credentials distinct tenants and the same credential the same one', () => {
    const resolve = createTenantResolver('t', { tenantSecret: secret });
    const a = resolve(request({ authorization: 'Bearer A' }));
    expect(resolve(request({ 'x-api-key': 'A' }))).toBe(a);
    expect(resolve(request({ authorization: 'Bearer B' }))).not.toBe(a);
    expect(
      createTenantResolver('t', { tenantSecret: 'other' })(request({ authorization: 'Bearer A' })),
    ).not.toBe(a);
  });

  it('answers the same tenants from its memory of recent credentials, long ones included', () => {
    const resolve = createTenantResolver('t', { tenantSecret: secret });
    const keys = Array.from({ length: 1100 }, (_, i) => `sk-${i}`);
    keys.push('k'.repeat(600)); // over the remembered length: hashed every time
    for (let round = 0; round < 2; round += 1) {
      for (const key of keys) {
        expect(resolve(request({ authorization: `Bearer ${key}` }))).toBe(tenantId(key, secret));
      }
    }
  });

  it('uses the tenant option as the only source when given', () => {
    const resolve = createTenantResolver('t', {
      tenantSecret: secret,
      tenant: (req) => req.headers['x-team'] as string | undefined,
    });
    expect(resolve(request({ 'x-team': 'blue', authorization: 'Bearer A' }))).toBe(
      tenantId('blue', secret),
    );
    expect(resolve(request({ authorization: 'Bearer A' }))).toBeUndefined();
  });

  it('has no tenant without a credential', () => {
    expect(createTenantResolver('t', { tenantSecret: secret })(request({}))).toBeUndefined();
  });

  it('requires a secret, from the options or RELAY_TENANT_SECRET', () => {
    const saved = process.env.RELAY_TENANT_SECRET;
    try {
      delete process.env.RELAY_TENANT_SECRET;
      expect(() => createTenantResolver('responseChaining', {})).toThrow(
        /responseChaining: options.tenantSecret/,
      );
      expect(() => resolveTenantSecret('x', '')).toThrow(TypeError);
      process.env.RELAY_TENANT_SECRET = 'from-env';
      const resolve = createTenantResolver('t', {});
      expect(resolve(request({ authorization: 'Bearer A' }))).toBe(tenantId('A', 'from-env'));
    } finally {
      if (saved === undefined) delete process.env.RELAY_TENANT_SECRET;
      else process.env.RELAY_TENANT_SECRET = saved;
    }
  });
});

describe('sessionFromHeaders', () => {
  it("reads Codex's session-id first, then the other spellings", () => {
    const session = sessionFromHeaders();
    expect(session(request({ 'session-id': 's1', 'thread-id': 't1' }))).toBe('s1');
    expect(session(request({ 'thread-id': 't1' }))).toBe('t1');
    expect(session(request({ 'x-codex-conversation-id': 'c1' }))).toBe('c1');
    expect(session(request({}))).toBeUndefined();
  });

  it('takes the names given, in any case, and ignores empty or oversized values', () => {
    const session = sessionFromHeaders(['X-Conversation']);
    expect(session(request({ 'x-conversation': ' abc ' }))).toBe('abc');
    expect(session(request({ 'x-conversation': '' }))).toBeUndefined();
    expect(session(request({ 'x-conversation': 'x'.repeat(600) }))).toBeUndefined();
  });
});
