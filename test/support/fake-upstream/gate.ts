/**
 * Lockstep: a stream bound to a gate writes event N+1 only once the test released it, so a test
 * can wait until a client saw event N before the fake sends the next one (no timing involved).
 */
import type { Gate, GateOptions } from './types';

export class GateController implements Gate {
  private allowance: number;
  private written = 0;
  private isBound = false;
  private finished = false;
  private waiters: Array<() => void> = [];

  constructor(
    readonly name: string | undefined,
    options: GateOptions = {},
  ) {
    this.allowance = options.initial ?? 1;
  }

  get sent(): number {
    return this.written;
  }

  get bound(): boolean {
    return this.isBound;
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const wake of waiters) wake();
  }

  release(n = 1): void {
    this.allowance += n;
    this.wake();
  }

  next(): void {
    this.release(1);
  }

  open(): void {
    this.allowance = Number.POSITIVE_INFINITY;
    this.wake();
  }

  waitForSent(n: number): Promise<void> {
    return this.until(() => this.written >= n || this.finished);
  }

  waitForBound(): Promise<void> {
    return this.until(() => this.isBound);
  }

  private until(condition: () => boolean): Promise<void> {
    return new Promise((resolve) => {
      const check = () => {
        if (condition()) resolve();
        else this.waiters.push(check);
      };
      check();
    });
  }

  // --- used by the stream writer ---------------------------------------------------------------

  bind(): void {
    this.isBound = true;
    this.wake();
  }

  /** Resolves when the next event may be written (or `abort` fired). */
  async permit(abort: Promise<void>): Promise<void> {
    let aborted = false;
    void abort.then(() => {
      aborted = true;
      this.wake();
    });
    await this.until(() => aborted || this.written < this.allowance);
  }

  wrote(): void {
    this.written += 1;
    this.wake();
  }

  /** The stream is over: nothing more will be written. */
  finish(): void {
    this.finished = true;
    this.wake();
  }
}
