import type { Clock, TimerHandle } from '../time/clock';

interface Entry<T> {
  readonly at: number;
  readonly item: T;
}

/**
 * Many deadlines, one clock timer: a binary min-heap of due times, with a single timer set for the earliest.
 * Stale entries are the caller's business (it checks them when they fire).
 */
export class TimerQueue<T> {
  private readonly heap: Entry<T>[] = [];
  private timer: TimerHandle | null = null;
  private timerAt = Number.POSITIVE_INFINITY;

  constructor(
    private readonly clock: Clock,
    private readonly fire: (item: T, at: number) => void,
  ) {}

  /** Calls `fire(item)` at (or soon after) `at`. */
  add(at: number, item: T): void {
    this.push({ at, item });
    this.arm();
  }

  /** Cancels everything. */
  clear(): void {
    this.heap.length = 0;
    if (this.timer !== null) this.clock.clearTimeout(this.timer);
    this.timer = null;
    this.timerAt = Number.POSITIVE_INFINITY;
  }

  get size(): number {
    return this.heap.length;
  }

  private arm(): void {
    const first = this.heap[0];
    if (first === undefined || first.at >= this.timerAt) return;
    if (this.timer !== null) this.clock.clearTimeout(this.timer);
    this.timerAt = first.at;
    this.timer = this.clock.setTimeout(() => this.run(), Math.max(0, first.at - this.clock.now()));
  }

  private run(): void {
    this.timer = null;
    this.timerAt = Number.POSITIVE_INFINITY;
    const now = this.clock.now();
    for (let first = this.heap[0]; first !== undefined && first.at <= now; first = this.heap[0]) {
      this.pop();
      this.fire(first.item, first.at);
    }
    this.arm();
  }

  private push(entry: Entry<T>): void {
    const h = this.heap;
    h.push(entry);
    let i = h.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if ((h[parent] as Entry<T>).at <= entry.at) break;
      h[i] = h[parent] as Entry<T>;
      i = parent;
    }
    h[i] = entry;
  }

  private pop(): void {
    const h = this.heap;
    const last = h.pop();
    if (last === undefined || h.length === 0) return;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      let mAt = last.at;
      if (l < h.length && (h[l] as Entry<T>).at < mAt) {
        m = l;
        mAt = (h[l] as Entry<T>).at;
      }
      if (r < h.length && (h[r] as Entry<T>).at < mAt) m = r;
      if (m === i) break;
      h[i] = h[m] as Entry<T>;
      i = m;
    }
    h[i] = last;
  }
}
