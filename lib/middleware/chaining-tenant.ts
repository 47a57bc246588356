/**
 * Who owns a conversation: the tenant of a request, as the keyed hash of the client's credential
 * (DESIGN.md §4). The credential itself is read, hashed and forgotten; it is never stored, logged
 * or annotated.
 */
import type { IncomingMessage } from 'node:http';
import { LRUCache } from 'lru-cache';
import { tenantId } from '../store/tenant';

/** Credentials whose tenant id a resolver remembers (an HMAC per request otherwise). */
const TENANT_CACHE_ENTRIES = 1024;
/** Longer tenant keys are hashed every time rather than kept. */
const TENANT_CACHE_MAX_KEY_LENGTH = 512;

/**
 * Returns the credential (or any tenant key: an account id, a team name…) of a request, or
 * `undefined` when the request has none. The value is hashed with the tenant secret before use.
 */
export type TenantKeyResolver = (req: IncomingMessage) => string | undefined;

/** What the tenant resolution needs. */
export interface TenantOptions {
  /**
   * The HMAC key of tenant ids. Every gateway instance sharing a store must use the same one.
   * @default process.env.RELAY_TENANT_SECRET (required when this option is absent)
   */
  tenantSecret?: string | Buffer;
  /**
   * The tenant key of a request. When given, it is the only source: `undefined` means "no
   * tenant" (401 `relay_missing_credentials`), the headers are not consulted.
   * @default the `Authorization: Bearer …` token, else `x-api-key`, else `api-key`
   */
  tenant?: TenantKeyResolver;
}

function headerValue(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  const first = Array.isArray(value) ? value[0] : value;
  if (typeof first !== 'string') return undefined;
  const trimmed = first.trim();
  return trimmed === '' ? undefined : trimmed;
}

const BEARER = /^bearer\s+(\S(?:.*\S)?)$/i;

/**
 * The client's credential: the `Authorization: Bearer …` token, else `x-api-key`, else
 * `api-key` (Azure style). An `Authorization` header of another scheme is not a credential here.
 */
export function requestCredential(req: IncomingMessage): string | undefined {
  const authorization = headerValue(req, 'authorization');
  if (authorization !== undefined) {
    const match = BEARER.exec(authorization);
    if (match?.[1] !== undefined) return match[1];
  }
  return headerValue(req, 'x-api-key') ?? headerValue(req, 'api-key');
}

/** The secret to key tenant ids with; throws a TypeError naming `owner` when there is none. */
export function resolveTenantSecret(
  owner: string,
  secret: string | Buffer | undefined,
): string | Buffer {
  const value = secret ?? process.env.RELAY_TENANT_SECRET;
  const empty =
    value === undefined || (typeof value === 'string' ? value.length === 0 : value.length === 0);
  if (empty) {
    throw new TypeError(
      `${owner}: options.tenantSecret (or the RELAY_TENANT_SECRET environment variable) is required: ` +
        'it keys the tenant hash of each credential; use the same value on every gateway instance',
    );
  }
  return value;
}

/** The tenant of a request, or `undefined` when it has no credential (or tenant key). */
export type TenantResolver = (req: IncomingMessage) => string | undefined;

/**
 * Builds the tenant resolver of a middleware: the tenant key (option `tenant`, else the
 * credential) hashed with the secret by {@link tenantId}. Throws at construction when no secret
 * is configured, so a misconfiguration never reaches a request. The ids of the last 1024 keys
 * (of up to 512 characters) are remembered in process memory (never stored, logged or exposed),
 * so a client's requests cost one HMAC, not one each.
 */
export function createTenantResolver(owner: string, options: TenantOptions): TenantResolver {
  const secret = resolveTenantSecret(owner, options.tenantSecret);
  const key = options.tenant ?? requestCredential;
  const known = new LRUCache<string, string>({ max: TENANT_CACHE_ENTRIES });
  return (req) => {
    const value = key(req);
    if (typeof value !== 'string' || value === '') return undefined;
    if (value.length > TENANT_CACHE_MAX_KEY_LENGTH) return tenantId(value, secret);
    let tenant = known.get(value);
    if (tenant === undefined) {
      tenant = tenantId(value, secret);
      known.set(value, tenant);
    }
    return tenant;
  };
}
