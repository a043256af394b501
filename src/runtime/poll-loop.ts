/**
 * A round of work repeated on the runtime's clock every poll interval while the runtime is open: rounds never
 * overlap, and a round that throws is reported and the next one tries again.
 */
import type { TimerHandle } from '../time/clock';
import type { RuntimeContext } from './runtime-context';

export class PollLoop {
  private running: Promise<void> | null = null;
  private timer: TimerHandle | null = null;

  constructor(
    private readonly ctx: RuntimeContext,
    private readonly round: () => Promise<void>,
    /** The message reported when a round throws. */
    private readonly failure: string,
  ) {}

  /** Runs a round now (or joins the one running), then schedules the next one. */
  run(): Promise<void> {
    const ctx = this.ctx;
    this.running ??= (async () => {
      try {
        await this.round();
      } catch (e) {
        ctx.report('instance-failed', this.failure, e);
      } finally {
        this.running = null;
        if (ctx.open) this.timer = ctx.clock.setTimeout(() => void this.run(), ctx.pollMs);
      }
    })();
    return this.running;
  }

  /** Cancels the next round. */
  stop(): void {
    if (this.timer !== null) this.ctx.clock.clearTimeout(this.timer);
    this.timer = null;
  }
}
