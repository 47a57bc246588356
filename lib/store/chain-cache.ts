/**
 * The parsed-record cache of RedisSessionStore: records are immutable and each one carries a
 * chain hash (a hash of its own content and its parent's chain hash, computed by the put script),
 * so a parsed record cached under `tenant + chain hash` stands for exactly one history. The expand
 * script is handed a few chain hashes this instance holds and stops sending JSON once the walk
 * reaches one of them (it still walks, checks and refreshes the whole chain): an expansion parses
 * only the records this instance has not seen yet.
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

  constructor(maxBytes: number) {
    this.nodes = new LRUCache<string, ChainNode>({
      maxSize: maxBytes,
      sizeCalculation: (node) => NODE_OVERHEAD_BYTES + node.bytes,
    });
    this.recent = new LRUCache<string, string[]>({ max: 10_000 });
    this.byId = new LRUCache<string, string>({ max: 100_000 });
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
  }
}
