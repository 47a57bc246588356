/**
 * Id helpers: fresh response, item and call ids in the API's own formats, and the id prefix
 * each item type uses (DESIGN §7: an item id keeps its type prefix — `fc_` for a function call,
 * whose `call_id` stays the upstream's `call_…` — across every event of the item).
 *
 * Random ids come from `node:crypto` (no I/O, no state).
 */
import { randomBytes } from 'node:crypto';

/**
 * Id prefixes by item type, as the API mints them (responses-contract.md §2.1, from the spec's
 * examples and observed payloads). Types whose prefix is not documented are absent.
 */
export const ITEM_ID_PREFIXES: Readonly<Record<string, string>> = Object.freeze({
  message: 'msg_',
  function_call: 'fc_',
  function_call_output: 'fco_',
  custom_tool_call: 'ctc_',
  reasoning: 'rs_',
  web_search_call: 'ws_',
  file_search_call: 'fs_',
  computer_call_output: 'cuo_',
  shell_call: 'sh_',
  shell_call_output: 'sho_',
  apply_patch_call: 'apc_',
  apply_patch_call_output: 'apco_',
  mcp_call: 'mcp_',
  tool_search_call: 'tsc_',
  tool_search_output: 'tso_',
  additional_tools: 'at_',
  program: 'cm_',
  program_output: 'cmo_',
  compaction: 'cmp_',
});

/** The prefix of a response id. */
export const RESPONSE_ID_PREFIX = 'resp_';
/** The prefix of a model-generated tool `call_id`. */
export const CALL_ID_PREFIX = 'call_';

const ALPHANUMERIC = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

/** `length` random characters from `[A-Za-z0-9]` (unbiased: bytes ≥ 248 are redrawn). */
export function randomAlphanumeric(length: number): string {
  let out = '';
  while (out.length < length) {
    for (const byte of randomBytes(length)) {
      if (byte < 248 && out.length < length) out += ALPHANUMERIC[byte % 62];
    }
  }
  return out;
}

/** A fresh response id: `resp_` followed by 48 hex digits (the API's own shape). */
export function newResponseId(): string {
  return RESPONSE_ID_PREFIX + randomBytes(24).toString('hex');
}

/** A fresh `call_id`: `call_` followed by 24 alphanumerics (the API's own shape). */
export function newCallId(): string {
  return CALL_ID_PREFIX + randomAlphanumeric(24);
}

/** The id prefix of an item type, or `undefined` when it is not documented. */
export function itemIdPrefix(type: string): string | undefined {
  return Object.prototype.hasOwnProperty.call(ITEM_ID_PREFIXES, type)
    ? ITEM_ID_PREFIXES[type]
    : undefined;
}

/**
 * A fresh item id for an item type: its documented prefix (`item_` when there is none) followed
 * by 48 hex digits.
 */
export function newItemId(type: string): string {
  return (itemIdPrefix(type) ?? 'item_') + randomBytes(24).toString('hex');
}

/** Whether a value looks like a response id (`resp_…`). */
export function isResponseId(value: unknown): value is string {
  return (
    typeof value === 'string' &&
    value.length > RESPONSE_ID_PREFIX.length &&
    value.startsWith(RESPONSE_ID_PREFIX)
  );
}

/**
 * Whether `id` carries the prefix documented for `type`. `true` for types whose prefix is not
 * documented (there is nothing to check).
 */
export function hasItemIdPrefix(type: string, id: string): boolean {
  const prefix = itemIdPrefix(type);
  return prefix === undefined || id.startsWith(prefix);
}
