/** What a schedule does about ticks that passed while no runtime ran it (a deploy, a crash, a stopped worker). */
export const MissedTicks = {
  /** Start one instance for the latest missed tick, however many were missed. */
  RunOnce: 'runOnce',
  /** Start nothing for missed ticks; go on with the next one. */
  Skip: 'skip',
} as const;
export type MissedTicks = (typeof MissedTicks)[keyof typeof MissedTicks];

/** The input of every instance a schedule starts: a value, or a function of the tick. */
export type ScheduleInput<S> = S | Record<string, unknown> | ((tick: Date) => S | Record<string, unknown>);

/** Options of `runtime.schedule(workflow, options)`. */
export interface ScheduleOptions<S> {
  /**
   * When to start an instance: a 5-field (`minute hour day month weekday`) or 6-field (seconds first) cron
   * expression, as croner reads it; e.g. `'*\/15 * * * *'` (every quarter hour), `'0 9 * * 1-5'` (9:00 on weekdays).
   */
  readonly cron: string;
  /** The input state of each instance, or a function that makes it from the tick's time (called once per tick). */
  readonly input: ScheduleInput<S>;
  /** The IANA time zone the expression is read in (`'Europe/Paris'`); daylight saving time is followed. @default 'UTC' */
  readonly timezone?: string;
  /**
   * The schedule's stable name: its ticks are stored under it and its instances are named after it
   * (`schedule:<name>:<tick as ISO string>`). Give each schedule of one workflow its own name.
   * @default the workflow's name
   */
  readonly name?: string;
  /**
   * What to do about ticks that passed while no runtime ran this schedule: `'runOnce'` starts one instance for
   * the latest of them, `'skip'` starts none. A brand-new schedule never fires for ticks before it was created.
   * @default 'runOnce'
   */
  readonly missed?: MissedTicks;
}

/** What `runtime.schedule` returns. */
export interface ScheduleHandle {
  /** The schedule's name. */
  readonly name: string;
  /** When the next instance starts, or null once cancelled (or when the expression has no future tick). */
  nextRun(): Date | null;
  /** Stops the schedule in this runtime: no more instances start (those already started go on). */
  cancel(): void;
}

/** The id of the instance a schedule starts for a tick: the same in every worker, so a tick starts one instance. */
export function scheduledInstanceId(name: string, tick: number): string {
  return `schedule:${name}:${new Date(tick).toISOString()}`;
}
