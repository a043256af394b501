import type { TimerHandle } from '../time/clock';
import { quote } from '../errors/serialized-error';
import { planCatchUp } from './catch-up';
import type { ResolvedSchedule } from './resolve-schedule';
import { scheduledInstanceId, type ScheduleHandle } from './schedule-options';
import type { SchedulerHost } from './scheduler-host';

/**
 * One schedule in one runtime: ONE clock timer, for its next tick, and the work of each tick — start the tick's
 * instance (an idempotent id), then store the tick (a compare-and-set) — done one tick at a time. The next
 * timer is armed as soon as a tick is due, before that work, so a slow start never delays the next tick.
 */
export class ScheduleRun {
  /** The handle `runtime.schedule` returns. */
  readonly handle: ScheduleHandle;
  private timer: TimerHandle | null = null;
  private nextTick: number | null = null;
  private cancelled = false;
  private work: Promise<void> = Promise.resolve();
  /** True when the store keeps schedule ticks; else {@link localTick} stands in, known to this process only. */
  private readonly persisted: boolean;
  private localTick: number | undefined;

  constructor(
    private readonly host: SchedulerHost,
    private readonly spec: ResolvedSchedule,
    private readonly onCancel: () => void,
  ) {
    this.persisted = typeof host.store.scheduleTick === 'function' && typeof host.store.advanceSchedule === 'function';
    this.handle = {
      name: spec.name,
      nextRun: () => (this.nextTick === null ? null : new Date(this.nextTick)),
      cancel: () => this.cancel(),
    };
  }

  /** Arms the timer for the first tick after now, then catches up on missed ticks; resolves once that is done. */
  begin(): Promise<void> {
    const now = this.host.clock.now();
    if (!this.persisted) {
      this.host.logger.warn(
        { schedule: this.spec.name },
        `schedule ${quote(this.spec.name)}: the store keeps no schedule ticks (scheduleTick, advanceSchedule), so ticks missed before this process started are not caught up and each worker starts its own instances`,
      );
    }
    this.arm(now);
    return this.enqueue(() => this.catchUp(now));
  }

  /** Stops the schedule here: clears its timer; ticks not begun yet start nothing. Idempotent. */
  cancel(): void {
    if (this.cancelled) return;
    this.cancelled = true;
    if (this.timer !== null) this.host.clock.clearTimeout(this.timer);
    this.timer = null;
    this.nextTick = null;
    this.onCancel();
  }

  private arm(after: number): void {
    const tick = this.spec.cron.next(after);
    this.nextTick = tick;
    if (tick !== null) this.setTimer(tick);
  }

  private setTimer(tick: number): void {
    this.timer = this.host.clock.setTimeout(() => this.due(tick), Math.max(0, tick - this.host.clock.now()));
  }

  private due(tick: number): void {
    this.timer = null;
    if (this.cancelled) return;
    const now = this.host.clock.now();
    if (now < tick) {
      // Early: the clock caps long delays (SystemClock at about 24.8 days). Set it again for the rest.
      this.setTimer(tick);
      return;
    }
    // A timer that fires late (a suspended process) stands for the latest tick that is due, not for each one.
    const latest = Math.max(tick, this.spec.cron.latest(now) ?? tick);
    this.arm(latest);
    void this.enqueue(() => this.fire(latest));
  }

  /** Runs `task` after the ticks before it (tasks report their own failures; the chain never breaks). */
  private enqueue(task: () => Promise<void>): Promise<void> {
    const next = this.work.then(task);
    this.work = next.catch(() => undefined);
    return next;
  }

  private async catchUp(now: number): Promise<void> {
    let stored: number | undefined;
    try {
      await this.host.ready();
      stored = await this.lastTick();
    } catch (e) {
      this.host.report(`schedule ${quote(this.spec.name)} could not read its last tick, so missed ticks are not caught up; its next tick fires as usual`, e);
      return;
    }
    const plan = planCatchUp(stored, now, this.spec.cron.latest(now), this.spec.missed);
    if (plan.kind === 'none') return;
    if (plan.kind === 'baseline') {
      await this.record(stored, plan.record);
      return;
    }
    if (plan.start && !(await this.startFor(plan.tick))) return;
    await this.record(stored, plan.tick);
  }

  private async fire(tick: number): Promise<void> {
    if (this.cancelled || !this.host.isOpen()) return;
    let stored: number | undefined;
    let known = true;
    try {
      stored = await this.lastTick();
    } catch (e) {
      known = false; // start anyway: the tick's id keeps it to one instance whatever other workers do
      this.report(`could not read its last tick at ${iso(tick)}; starting the tick's instance anyway`, e);
    }
    // Another worker started this tick (or a later one) already.
    if (known && stored !== undefined && stored >= tick) return;
    if (!(await this.startFor(tick)) || !known) return;
    await this.record(stored, tick);
  }

  /** Starts the instance of `tick`; resolves false (after reporting why) when it could not. */
  private async startFor(tick: number): Promise<boolean> {
    if (this.cancelled || !this.host.isOpen()) return false;
    const id = scheduledInstanceId(this.spec.name, tick);
    try {
      await this.host.start(this.spec.workflow, this.spec.inputOf(new Date(tick)), id);
      this.host.logger.info({ schedule: this.spec.name, instanceId: id }, `schedule ${quote(this.spec.name)} started ${id}`);
      return true;
    } catch (e) {
      if (this.host.isOpen()) this.report(`could not start instance ${id} for its tick at ${iso(tick)}; it goes on with the next tick`, e, id);
      return false;
    }
  }

  private lastTick(): Promise<number | undefined> {
    const store = this.host.store;
    return this.persisted && store.scheduleTick !== undefined ? store.scheduleTick(this.spec.name) : Promise.resolve(this.localTick);
  }

  /** Stores `tick` as the last tick when the stored one is still `expected` (else another worker got there first). */
  private async record(expected: number | undefined, tick: number): Promise<void> {
    const store = this.host.store;
    if (!this.persisted || store.advanceSchedule === undefined) {
      this.localTick = tick;
      return;
    }
    try {
      await store.advanceSchedule(this.spec.name, expected, tick, this.host.clock.now());
    } catch (e) {
      this.report(`could not record its tick at ${iso(tick)}; a restart before its next tick may start that tick's instance again (the same id, so no duplicate)`, e);
    }
  }

  private report(what: string, error: unknown, instanceId?: string): void {
    this.host.report(`schedule ${quote(this.spec.name)} ${what}`, error, instanceId);
  }
}

function iso(tick: number): string {
  return new Date(tick).toISOString();
}
