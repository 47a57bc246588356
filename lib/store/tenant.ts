/**
 * Tenant ids: a keyed hash of the client's credential, so session state is scoped per credential
 * without the credential ever being stored, logged or usable from a dump of the store.
 */
import { createHmac } from 'node:crypto';

/** What a tenant id passed to a store may look like: base64url characters, 1 to 128 of them. */
export const TENANT_PATTERN = /^[A-Za-z0-9_-]{1,128}$/;

/** Domain separation, so the same secret used elsewhere never yields the same digests. */
const TENANT_CONTEXT = 'responses-relay/tenant/v1\0';

/**
 * The tenant id of a credential: HMAC-SHA256 keyed with `secret` over the credential, truncated to
 * 128 bits and encoded as base64url (22 characters, `[A-Za-z0-9_-]`, safe inside Redis hash tags).
 *
 * Without the secret the id can neither be reversed nor confirmed by guessing credentials, so a
 * dump of the store reveals nothing; keep the secret stable across gateway instances (they must
 * agree on tenants) and rotate it knowing that rotation orphans existing sessions. 128 bits make a
 * collision between two credentials negligible (birthday bound ~2^64).
 *
 * @example
 * const tenant = tenantId(req.get('authorization') ?? '', process.env.RELAY_TENANT_SECRET!);
 */
export function tenantId(credential: string, secret: string | Buffer): string {
  if (typeof credential !== 'string') throw new TypeError('tenantId: credential must be a string');
  if (
    typeof secret === 'string'
      ? secret.length === 0
      : !Buffer.isBuffer(secret) || secret.length === 0
  ) {
    throw new TypeError('tenantId: secret must be a non-empty string or Buffer');
  }
  return createHmac('sha256', secret)
    .update(TENANT_CONTEXT)
    .update(credential, 'utf8')
    .digest()
    .subarray(0, 16)
    .toString('base64url');
}

/** True when `tenant` can be used as a store's tenant id. */
export function isValidTenant(tenant: unknown): tenant is string {
  return typeof tenant === 'string' && TENANT_PATTERN.test(tenant);
}
