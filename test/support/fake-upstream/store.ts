/** What the stateful fake persists: responses by id, and every persisted item by id. */
import type { ResponseItem } from '../../../lib/protocol/types';
import type { StoredFakeResponse } from './types';

export class FakeResponseStore {
  readonly responses = new Map<string, StoredFakeResponse>();
  private readonly items = new Map<string, ResponseItem>();

  save(stored: StoredFakeResponse): void {
    this.responses.set(stored.id, stored);
    this.index(stored);
  }

  /** Re-indexes a stored response after its output grew (streams store as they go). */
  index(stored: StoredFakeResponse): void {
    for (const item of [...stored.input, ...stored.output]) {
      if (typeof item.id === 'string') this.items.set(item.id, item);
    }
  }

  get(id: string): StoredFakeResponse | undefined {
    return this.responses.get(id);
  }

  /** Deleting a response forgets it; its items stay resolvable only through other responses. */
  delete(id: string): boolean {
    const stored = this.responses.get(id);
    if (stored === undefined) return false;
    this.responses.delete(id);
    this.items.clear();
    for (const other of this.responses.values()) this.index(other);
    return true;
  }

  item(id: string): ResponseItem | undefined {
    return this.items.get(id);
  }
}
