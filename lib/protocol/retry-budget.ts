/**
 * A retry budget shared by every request of a process (Envoy-style): over a sliding window,
 * retries may be at most `ratio` of the requests started, and never fewer than `minRetries`.
 * Under a sustained upstream outage this turns retry storms into fast, honest errors. Pure: the
 * clock is injected.
 */

export interface RetryBudgetOptions {
  /** Share of the window's requests that may be retries. @default 0.2 */
  ratio?: number;
  /** Retries always allowed per window, however few requests there were. @default 3 */
  minRetries?: number;
  /** The window, in ms. @default 10_000 */
  windowMs?: number;
  /** The clock. @default Date.now */
  now?: () => number;
}

const BUCKETS = 10;

/** Counts in `BUCKETS` slices of the window, so old traffic leaves the window gradually. */
class SlidingCounter {
  private readonly counts = new Array<number>(BUCKETS).fill(0);
  private readonly stamps = new Array<number>(BUCKETS).fill(-1);

  constructor(private readonly sliceMs: number) {}

  add(at: number): void {
    const slice = Math.floor(at / this.sliceMs);
    const index = slice % BUCKETS;
    if (this.stamps[index] !== slice) {
      this.stamps[index] = slice;
      this.counts[index] = 0;
    }
    this.counts[index] = (this.counts[index] ?? 0) + 1;
  }

  total(at: number): number {
    const current = Math.floor(at / this.sliceMs);
    let sum = 0;
    for (let index = 0; index < BUCKETS; index += 1) {
      const stamp = this.stamps[index] ?? -1;
      if (stamp > current - BUCKETS && stamp <= current) sum += this.counts[index] ?? 0;
    }
    return sum;
  }
}

export class RetryBudget {
  private readonly ratio: number;
  private readonly minRetries: number;
  private readonly now: () => number;
  private readonly requests: SlidingCounter;
  private readonly retries: SlidingCounter;

  constructor(options: RetryBudgetOptions = {}) {
    this.ratio = options.ratio ?? 0.2;
    this.minRetries = options.minRetries ?? 3;
    const windowMs = options.windowMs ?? 10_000;
    if (!(this.ratio >= 0 && this.ratio <= 1))
      throw new TypeError('RetryBudget ratio must be between 0 and 1');
    if (!(Number.isInteger(this.minRetries) && this.minRetries >= 0)) {
      throw new TypeError('RetryBudget minRetries must be a non-negative integer');
    }
    if (!(windowMs >= BUCKETS))
      throw new TypeError(`RetryBudget windowMs must be at least ${BUCKETS}`);
    this.now = options.now ?? Date.now;
    this.requests = new SlidingCounter(windowMs / BUCKETS);
    this.retries = new SlidingCounter(windowMs / BUCKETS);
  }

  /** Counts a new request (its first attempt). */
  recordRequest(): void {
    this.requests.add(this.now());
  }

  /** Takes one retry from the budget; false when the budget is spent (then do not retry). */
  tryAcquire(): boolean {
    const at = this.now();
    const allowed = Math.max(this.minRetries, Math.floor(this.ratio * this.requests.total(at)));
    if (this.retries.total(at) >= allowed) return false;
    this.retries.add(at);
    return true;
  }

  /** Retries taken in the current window (diagnostics). */
  retriesInWindow(): number {
    return this.retries.total(this.now());
  }
}
