import type { Clock, TimerHandle } from '../time/clock';
import { toMillis, type Duration } from '../time/duration';

interface Timer {
  readonly id: number;
  readonly at: number;
  readonly callback: () => void;
}

/** Lets pending promise callbacks run (several rounds, so chains of awaits settle). */
export async function flushMicrotasks(rounds = 20): Promise<void> {
  for (let i = 0; i < rounds; i += 1) await new Promise<void>((resolve) => setImmediate(resolve));
}

/**
 * A clock that moves only when told to. `advance` fires due timers in time order and lets the work they
 * start settle between them, so deadlines can be tested without sleeping.
 *
 * @example
 * const clock = new SimulatedClock();
 * const runtime = new SagaRuntime({ clock });
 * await clock.advance('5m'); // every wait that was due fails with TIMEOUT
 */
export class SimulatedClock implements Clock {
  private current: number;
  private timers: Timer[] = [];
  private nextId = 1;

  constructor(start: number | Date = Date.UTC(2026, 0, 1)) {
    this.current = typeof start === 'number' ? start : start.getTime();
  }

  now(): number {
    return this.current;
  }

  setTimeout(callback: () => void, delayMs: number): TimerHandle {
    const timer: Timer = { id: this.nextId++, at: this.current + Math.max(0, delayMs), callback };
    this.timers.push(timer);
    return { id: timer.id };
  }

  clearTimeout(handle: TimerHandle): void {
    const id = (handle as { id?: number }).id;
    this.timers = this.timers.filter((t) => t.id !== id);
  }

  /** How many timers are set. */
  get pendingTimers(): number {
    return this.timers.length;
  }

  /** Moves time forward by `duration`, firing every timer that falls due, in order. */
  async advance(duration: Duration): Promise<void> {
    const until = this.current + toMillis(duration, 'advance');
    await flushMicrotasks();
    for (;;) {
      const due = this.timers.filter((t) => t.at <= until).sort((a, b) => a.at - b.at || a.id - b.id)[0];
      if (due === undefined) break;
      this.timers = this.timers.filter((t) => t !== due);
      this.current = Math.max(this.current, due.at);
      due.callback();
      await flushMicrotasks();
    }
    this.current = until;
    await flushMicrotasks();
  }

  /** Moves time to an absolute moment (never backwards). */
  async advanceTo(at: number | Date): Promise<void> {
    const target = typeof at === 'number' ? at : at.getTime();
    await this.advance(Math.max(0, target - this.current));
  }
}
