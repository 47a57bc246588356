/**
 * Redis key layout. Every key of a tenant carries the tenant as its hash tag, so all of them (a
 * whole conversation, its index) live in one Cluster slot and one script may touch them together:
 *
 *   <prefix>:{<tenant>}:r:<segment>   a stored response (string)
 *   <prefix>:{<tenant>}:s:<segment>   a session head (string: the latest response id)
 *   <prefix>:{<tenant>}:i             the tenant's index (sorted set, score = expiry ms)
 *   <prefix>:{<tenant>}:g             the tenant's delete generation (integer, bumped by deletes)
 *
 * Client-supplied ids never reach a key verbatim unless they are plainly safe: anything else is
 * replaced by a digest, so no id can leave the tenant's namespace, change the hash tag or grow a key.
 */
import { createHash } from 'node:crypto';

/** Ids used verbatim as key segments: the characters API ids use, at most 200 of them. */
const SAFE_SEGMENT = /^[A-Za-z0-9_.-]{1,200}$/;

/**
 * The key segment for an id or session key: the id itself when it matches `[A-Za-z0-9_.-]{1,200}`,
 * else `~` + base64url(SHA-256(id)). `~` never occurs in a verbatim segment, so the two forms
 * cannot collide.
 */
export function keySegment(id: string): string {
  return SAFE_SEGMENT.test(id)
    ? id
    : `~${createHash('sha256').update(id, 'utf8').digest('base64url')}`;
}

/** Throws a TypeError unless `prefix` can start a key without breaking the hash tag. */
export function validateKeyPrefix(owner: string, prefix: unknown): string {
  if (
    typeof prefix !== 'string' ||
    prefix.length === 0 ||
    prefix.length > 200 ||
    /[{}\s]/.test(prefix)
  ) {
    throw new TypeError(
      `${owner} options.keyPrefix must be 1 to 200 characters without braces or whitespace`,
    );
  }
  return prefix;
}

export class KeyLayout {
  constructor(readonly prefix: string) {}

  /** `<prefix>:{<tenant>}:` — every key of the tenant starts with it. */
  tenantPrefix(tenant: string): string {
    return `${this.prefix}:{${tenant}}:`;
  }

  record(tenant: string, segment: string): string {
    return `${this.tenantPrefix(tenant)}r:${segment}`;
  }

  head(tenant: string, segment: string): string {
    return `${this.tenantPrefix(tenant)}s:${segment}`;
  }

  index(tenant: string): string {
    return `${this.tenantPrefix(tenant)}i`;
  }

  generation(tenant: string): string {
    return `${this.tenantPrefix(tenant)}g`;
  }
}
