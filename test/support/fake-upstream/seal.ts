/**
 * `encrypted_content` for reasoning items: an opaque token bound to the fake's "account" (its
 * `name`), so a reasoning item replayed to another account is refused as the API refuses it
 * (`The encrypted content gAAA...Rg== could not be verified.`).
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

const PREFIX = 'gAAAAAB';

export class ReasoningSeal {
  private readonly key: Buffer;

  constructor(accountName?: string) {
    this.key =
      accountName === undefined
        ? randomBytes(32)
        : createHash('sha256').update(`fake-upstream-account:${accountName}`).digest();
  }

  private mac(itemId: string, summary: string): string {
    return createHmac('sha256', this.key).update(`${itemId}\n${summary}`).digest('base64url');
  }

  /** The token carried by a reasoning item minted by this account. */
  seal(itemId: string, summary: string): string {
    const payload = JSON.stringify({ i: itemId, s: summary, m: this.mac(itemId, summary) });
    return PREFIX + Buffer.from(payload).toString('base64');
  }

  /** Whether `content` was minted by this account (and not altered). */
  verify(content: string): boolean {
    if (!content.startsWith(PREFIX)) return false;
    let payload: unknown;
    try {
      payload = JSON.parse(Buffer.from(content.slice(PREFIX.length), 'base64').toString('utf8'));
    } catch {
      return false;
    }
    if (typeof payload !== 'object' || payload === null) return false;
    const { i, s, m } = payload as Record<string, unknown>;
    if (typeof i !== 'string' || typeof s !== 'string' || typeof m !== 'string') return false;
    const expected = Buffer.from(this.mac(i, s));
    const given = Buffer.from(m);
    return expected.length === given.length && timingSafeEqual(expected, given);
  }
}
