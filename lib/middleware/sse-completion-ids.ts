/**
 * Item ids for the SSE completion middleware (DESIGN §7): an item id keeps the prefix its type
 * uses (`fc_` for a function call, `msg_` for a message, …) across every event of the item. When
 * an upstream gives an item no id, or one with the wrong prefix (a function call whose id is its
 * `call_…`), the relay shows the client a derived id instead and remembers which upstream id it
 * stands for, so an input item that later refers back to it can be mapped to the upstream's
 * original before the request is sent. `call_id` is never touched.
 *
 * Pure except for {@link MemoryItemIdAliases}, a bounded in-process map.
 */
import { createHash } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import { itemIdPrefix } from '../protocol/ids';
import { isJsonObject, type ResponseItem } from '../protocol/types';

/** Where the item sits in the response, for a deterministic derived id. */
export interface ItemIdContext {
  /** The response id (the upstream's, or the one the client was shown). */
  responseId: string | undefined;
  /** The item's `output_index`. */
  outputIndex: number;
}

/**
 * The item types whose ids are normalized by default: those whose id prefix the API checks on
 * input items (`Invalid 'input[2].id': … Expected an ID that begins with 'fc'` — and `msg`,
 * `rs`, `ctc`, `ws`; responses-contract.md §2.1), i.e. the ids that break a replayed history.
 * Other types keep whatever id the upstream gave.
 */
export const DEFAULT_NORMALIZED_ITEM_TYPES: readonly string[] = Object.freeze([
  'message',
  'function_call',
  'custom_tool_call',
  'reasoning',
  'web_search_call',
]);

const DEFAULT_TYPES: ReadonlySet<string> = new Set(DEFAULT_NORMALIZED_ITEM_TYPES);

/** Hex digits of a derived id after its prefix (the length of the API's own random ids). */
const DERIVED_HEX_LENGTH = 48;

function nonEmptyString(value: unknown): string | undefined {
  return typeof value === 'string' && value.length > 0 ? value : undefined;
}

/**
 * A derived item id: `prefix` + 48 hex digits of a SHA-256 of the response id, the output index,
 * the call id and the upstream's own id. The same upstream item always gets the same id.
 */
export function deriveItemId(
  prefix: string,
  context: ItemIdContext,
  callId: string | undefined,
  original: string | undefined,
): string {
  const digest = createHash('sha256')
    .update(
      `${context.responseId ?? ''}\u0000${context.outputIndex}\u0000${callId ?? ''}\u0000${original ?? ''}`,
    )
    .digest('hex');
  return prefix + digest.slice(0, DERIVED_HEX_LENGTH);
}

/** The prefix ids of `type` must have, when `type` is one of `types` and has a documented one. */
function prefixFor(type: string | undefined, types: ReadonlySet<string>): string | undefined {
  return type === undefined || !types.has(type) ? undefined : itemIdPrefix(type);
}

/**
 * The id the client should see for an output item: its own id when that id carries the prefix
 * documented for its type (or the type is not one of `types`), otherwise a derived id with the
 * right prefix. `undefined` when the item has no id and gets none.
 */
export function normalizeItemId(
  item: unknown,
  context: ItemIdContext,
  types: ReadonlySet<string> = DEFAULT_TYPES,
): string | undefined {
  if (!isJsonObject(item)) return undefined;
  const id = nonEmptyString(item.id);
  const type = nonEmptyString(item.type);
  const prefix = prefixFor(type, types);
  if (prefix === undefined) return id;
  if (id !== undefined && id.startsWith(prefix) && id.length > prefix.length) return id;
  return deriveItemId(prefix, context, nonEmptyString(item.call_id), id);
}

/** `item` with `id` set to `id` (the same object when it already has that id). */
export function withItemId<T extends ResponseItem>(item: T, id: string | undefined): T {
  if (id === undefined || item.id === id) return item;
  return { ...item, id };
}

/**
 * Remembers, for each id the relay showed a client in place of the upstream's, what the upstream
 * called the item (`null`: the upstream gave it no id). Implementations may be asynchronous
 * (a shared store); the middleware awaits `get` before dispatching a request and never waits for
 * `set` (a failed `set` only means the id is not mapped back later).
 */
export interface ItemIdAliases {
  set(shownId: string, upstreamId: string | null): void | Promise<void>;
  /** The upstream's id for `shownId`: a string, `null` (it had none), `undefined` (not a rewritten id). */
  get(shownId: string): string | null | undefined | Promise<string | null | undefined>;
}

export interface MemoryItemIdAliasesOptions {
  /** Most aliases kept; the least recently used go first. @default 20,000 */
  max?: number;
  /** How long an alias is kept, in milliseconds (0: until evicted). @default 0 */
  ttlMs?: number;
}

/** An in-process, bounded (LRU) {@link ItemIdAliases}. */
export class MemoryItemIdAliases implements ItemIdAliases {
  /** `''` stands for "the upstream gave no id" (the cache does not hold `null`). */
  private readonly cache: LRUCache<string, string>;

  constructor(options: MemoryItemIdAliasesOptions = {}) {
    this.cache = new LRUCache<string, string>({
      max: options.max ?? 20_000,
      ...(options.ttlMs ? { ttl: options.ttlMs } : {}),
    });
  }

  /** The number of aliases held. */
  get size(): number {
    return this.cache.size;
  }

  set(shownId: string, upstreamId: string | null): void {
    this.cache.set(shownId, upstreamId ?? '');
  }

  get(shownId: string): string | null | undefined {
    const value = this.cache.get(shownId);
    if (value === undefined) return undefined;
    return value === '' ? null : value;
  }

  clear(): void {
    this.cache.clear();
  }
}

/** What to do with an input item that refers to an id the relay rewrote. */
export type RestoreItemIds = 'original' | 'omit';

/**
 * The ids in a request's `input` that may have been rewritten by the relay: the ids of items
 * whose type has a documented prefix and that carry it (a derived id always does), and the ids
 * of item references.
 */
export function rewritableInputIds(
  input: unknown,
  types: ReadonlySet<string> = DEFAULT_TYPES,
): string[] {
  if (!Array.isArray(input)) return [];
  const ids: string[] = [];
  for (const item of input) {
    if (!isJsonObject(item)) continue;
    const id = nonEmptyString(item.id);
    if (id === undefined) continue;
    const type = nonEmptyString(item.type);
    if (type === 'item_reference' || type === undefined) {
      ids.push(id);
      continue;
    }
    const prefix = prefixFor(type, types);
    if (prefix !== undefined && id.startsWith(prefix)) ids.push(id);
  }
  return ids;
}

/**
 * `input` with every item whose id the relay rewrote given back the upstream's id
 * (`restore: 'original'`; an item the upstream gave no id loses its `id`), or stripped of the
 * id (`'omit'`). An item reference keeps its id unless the upstream's original is known. Returns
 * `undefined` when nothing changes. The input and its items are never mutated.
 */
export function restoreInputIds(
  input: unknown,
  upstreamIds: ReadonlyMap<string, string | null>,
  restore: RestoreItemIds = 'original',
): ResponseItem[] | undefined {
  if (!Array.isArray(input) || upstreamIds.size === 0) return undefined;
  let out: ResponseItem[] | undefined;
  input.forEach((item: unknown, index) => {
    if (!isJsonObject(item) || typeof item.id !== 'string') return;
    const original = upstreamIds.get(item.id);
    if (original === undefined) return;
    let next: ResponseItem | undefined;
    const isReference = item.type === 'item_reference' || item.type == null;
    if (isReference) {
      if (typeof original === 'string') next = { ...item, id: original } as ResponseItem;
    } else if (restore === 'original' && typeof original === 'string') {
      next = { ...item, id: original } as ResponseItem;
    } else {
      const { id: _dropped, ...rest } = item;
      next = rest as ResponseItem;
    }
    if (next === undefined) return;
    out ??= input.slice() as ResponseItem[];
    out[index] = next;
  });
  return out;
}
