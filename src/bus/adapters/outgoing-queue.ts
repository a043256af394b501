/**
 * The bounded queue of events on their way out to a network bus: sent in order and in batches while the
 * connection is up, kept (up to a limit, oldest dropped first) while it is down.
 */
/** How a failed send is treated: `retry` keeps the event for the next connection, `drop` reports and drops it. */
export type SendVerdict = 'retry' | 'drop';

/** What an {@link OutgoingQueue} needs from its adapter. */
export interface OutgoingQueueHooks<T> {
  /**
   * Sends a batch, in order; resolves to what went wrong with each item (`undefined`: sent). Should not reject
   * (a rejection counts as the same error for every item).
   */
  send(items: readonly T[]): Promise<readonly unknown[]>;
  /** Whether the connection is up now. */
  isReady(): boolean;
  /** Whether a failure is worth retrying on the next connection. */
  classify(error: unknown): SendVerdict;
  /** Reports an item dropped because the queue was full (the oldest waiting one goes). */
  overflowed(item: T): void;
  /** Reports an item dropped because sending it failed for good. */
  failed(item: T, error: unknown): void;
}

/**
 * The bounded queue of accepted events waiting to go out to a network bus. Items are sent in order, a batch (up
 * to 64) at a time, while the connection is ready; a failure worth retrying keeps the item at the head until
 * {@link OutgoingQueue.kick} says the connection is back (or, while it still looks ready, after `retryDelay`).
 * While the connection is down at most `max` items wait; beyond that the oldest waiting one is dropped and
 * reported (a backlog left from a burst is cut to `max` when the connection drops under it).
 */
export class OutgoingQueue<T> {
  private readonly waiting: T[] = [];
  private inFlight = 0;
  private pumping: Promise<void> | null = null;
  private retryTimer: ReturnType<typeof setTimeout> | null = null;
  private closed = false;

  constructor(
    private readonly hooks: OutgoingQueueHooks<T>,
    private readonly max: number,
    private readonly retryDelay = 1000,
    private readonly batch = 64,
  ) {}

  /** Items waiting or being sent. */
  get size(): number {
    return this.waiting.length + this.inFlight;
  }

  push(item: T): void {
    if (this.closed) return;
    this.waiting.push(item);
    // The bound is for outages: while connected, a burst waits its turn (sending is only a round trip behind).
    if (!this.hooks.isReady()) this.trim();
    this.kick();
  }

  /** Sends what waits, if the connection is ready. Call it when the connection comes (back). */
  kick(): void {
    if (this.pumping !== null || this.closed || this.waiting.length === 0 || !this.hooks.isReady()) return;
    this.pumping = this.pump().finally(() => {
      this.pumping = null;
    });
  }

  /** Resolves when the current sending round is over. */
  async settled(): Promise<void> {
    while (this.pumping !== null) await this.pumping;
  }

  /** Stops sending; returns what still waits (the caller reports it). */
  close(): T[] {
    this.closed = true;
    if (this.retryTimer !== null) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    return this.waiting.splice(0);
  }

  private trim(): void {
    while (this.waiting.length > this.max) {
      const oldest = this.waiting.shift() as T;
      this.hooks.overflowed(oldest);
    }
  }

  private async pump(): Promise<void> {
    while (!this.closed && this.waiting.length > 0 && this.hooks.isReady()) {
      const items = this.waiting.splice(0, Math.min(this.batch, this.max));
      this.inFlight = items.length;
      let errors: readonly unknown[];
      try {
        errors = await this.hooks.send(items);
      } catch (error) {
        errors = items.map(() => error);
      }
      this.inFlight = 0;
      const again: T[] = [];
      items.forEach((item, i) => {
        const error = errors[i];
        if (error === undefined) return;
        if (this.hooks.classify(error) === 'retry' && !this.closed) again.push(item);
        else this.hooks.failed(item, error);
      });
      if (again.length > 0) {
        this.waiting.unshift(...again);
        this.trim();
        // Wait for the connection to come back (kick); if it still looks up, try again after a pause.
        if (this.hooks.isReady() && this.retryTimer === null && !this.closed) {
          this.retryTimer = setTimeout(() => {
            this.retryTimer = null;
            this.kick();
          }, this.retryDelay);
        }
        return;
      }
    }
  }
}
