/**
 * The parsed-record cache of RedisSessionStore: records are immutable and each one carries a
 * chain hash (a hash of its own content and its parent's chain hash, computed by the put script),
 * so a parsed record cached under `tenant + chain hash` stands for exactly one history. The expand
 * script is handed a few chain hashes this instance holds and stops sending JSON once the walk
 * reaches one of them: an expansion parses only the records this instance has not seen yet. The
 * cache also remembers when each chain was last walked in full (every record found and refreshed);
 * within a tenth of the TTL of that walk, the script may stop walking at it (see the expand
 * script), so a turn costs the same at any depth.
 *
 * Bounded by bytes (each record's stored size plus an overhead; parsed objects take more memory
 * than their JSON, about 2 to 3 times). Cached records are deeply frozen and shared between
 * expansions.
 */
import { LRUCache } from 'lru-cache';
import type { StoredResponse } from './session-store';

/** One cached record: the chain it ends is `parentHash`'s chain plus this record. */
export interface ChainNode {
  /** The record's chain hash. */
  readonly hash: string;
  /** The parent's chain hash, '' for a root. */
  readonly parentHash: string;
  /** The record, deeply frozen. */
  readonly record: StoredResponse;
  /** The record's stored size in bytes. */
  readonly bytes: number;
}

/**
 * A full walk of a chain: when it was made (before the walk was sent, in ms since the epoch) and
 * at which tenant delete generation. Until a tenth of the TTL later, the records below the chain
 * hash it is kept for are known to exist (see the expand script).
 */
export interface WalkStamp {
  readonly at: number;
  readonly generation: string;
}

/** Size charged per cached record on top of its stored bytes. */
const NODE_OVERHEAD_BYTES = 256;
/** Chain hashes offered to the expand script per call. */
const CANDIDATES = 12;

export class ChainCache {
  private readonly nodes: LRUCache<string, ChainNode>;
  /** Per tenant: the chain hashes of the latest leaves this instance stored or expanded. */
  private readonly recent: LRUCache<string, string[]>;
  /** Per tenant and response id: the chain hash this instance last saw for the id. */
  private readonly byId: LRUCache<string, string>;
  /** Per tenant and chain hash: the last full walk that vouches for the records below it. */
  private readonly walks: LRUCache<string, WalkStamp>;

  constructor(maxBytes: number) {
    this.nodes = new LRUCache<string, ChainNode>({
      maxSize: maxBytes,
      sizeCalculation: (node) => NODE_OVERHEAD_BYTES + node.bytes,
    });
    this.recent = new LRUCache<string, string[]>({ max: 10_000 });
    this.byId = new LRUCache<string, string>({ max: 100_000 });
    this.walks = new LRUCache<string, WalkStamp>({ max: 100_000 });
  }

  /** Records that the chain ending at `hash` was walked in full (or inherits such a walk). */
  stamp(tenant: string, hash: string, walk: WalkStamp): void {
    const key = `${tenant}\0${hash}`;
    const known = this.walks.get(key);
    if (known === undefined || known.at < walk.at) this.walks.set(key, walk);
  }

  /** The walk that vouches for the chain ending at `hash`, if any. */
  walkOf(tenant: string, hash: string): WalkStamp | undefined {
    return this.walks.get(`${tenant}\0${hash}`);
  }

  /**
   * The first of `candidates` (from {@link candidates}: records still cached) whose last full walk
   * is younger than `windowMs` at `now`, with that walk.
   */
  fresh(
    tenant: string,
    candidates: readonly string[],
    now: number,
    windowMs: number,
  ): { hash: string; walk: WalkStamp } | undefined {
    for (const hash of candidates) {
      const walk = this.walks.get(`${tenant}\0${hash}`);
      if (walk !== undefined && now - walk.at < windowMs) return { hash, walk };
    }
    return undefined;
  }

  /**
   * The chain hashes worth offering for an expansion of `id` (or of a session head when `id` is
   * undefined): the one last seen for `id`, then the tenant's latest leaves, each still cached.
   */
  candidates(tenant: string, id: string | undefined): string[] {
    const out: string[] = [];
    const own = id === undefined ? undefined : this.byId.get(`${tenant}\0${id}`);
    if (own !== undefined && this.nodes.has(`${tenant}\0${own}`)) out.push(own);
    for (const hash of this.recent.get(tenant) ?? []) {
      if (out.length >= CANDIDATES) break;
      if (!out.includes(hash) && this.nodes.has(`${tenant}\0${hash}`)) out.push(hash);
    }
    return out;
  }

  /** Caches a record (no-op when it is over the cache's size). */
  add(tenant: string, node: ChainNode): void {
    this.nodes.set(`${tenant}\0${node.hash}`, node);
  }

  /** Marks `hash` as the chain of `id` and as a recent leaf of the tenant. */
  remember(tenant: string, id: string, hash: string): void {
    this.byId.set(`${tenant}\0${id}`, hash);
    const list = this.recent.get(tenant) ?? [];
    const next = [hash, ...list.filter((h) => h !== hash)].slice(0, CANDIDATES);
    this.recent.set(tenant, next);
  }

  /**
   * The records of the chain ending at `hash`, root first, or null when one of them is no longer
   * cached (or the lineage is longer than `maxDepth`). Marks them recently used, the root last.
   */
  lineage(tenant: string, hash: string, maxDepth: number): StoredResponse[] | null {
    const records: StoredResponse[] = [];
    let at = hash;
    while (at !== '') {
      if (records.length >= maxDepth) return null;
      const node = this.nodes.get(`${tenant}\0${at}`);
      if (node === undefined) return null;
      records.push(node.record);
      at = node.parentHash;
    }
    return records.reverse();
  }

  clear(): void {
    this.nodes.clear();
    this.recent.clear();
    this.byId.clear();
    this.walks.clear();
  }
}
