/** Id minting in the shapes the API uses: `<prefix>_<48 hex>`, and `call_<24 alphanumerics>`. */
import { randomBytes, randomInt } from 'node:crypto';

const ALPHANUMERIC = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

/** `resp_`, `msg_`, `fc_`, `ctc_`, `rs_`, … followed by 48 random hex digits (unique across fakes). */
export function mintId(prefix: string): string {
  return `${prefix}_${randomBytes(24).toString('hex')}`;
}

/** A model-side call id: `call_` and 24 random alphanumerics. */
export function mintCallId(): string {
  let id = 'call_';
  for (let i = 0; i < 24; i += 1) id += ALPHANUMERIC[randomInt(ALPHANUMERIC.length)];
  return id;
}

/** `req_` and 32 hex digits, for `x-request-id`. */
export function mintRequestId(): string {
  return `req_${randomBytes(16).toString('hex')}`;
}

/** Random padding for the `obfuscation` field of delta events. */
export function obfuscation(): string {
  const length = 4 + randomInt(12);
  let pad = '';
  for (let i = 0; i < length; i += 1) pad += ALPHANUMERIC[randomInt(ALPHANUMERIC.length)];
  return pad;
}
