import { ScheduleError } from '../errors/schedule-errors';
import { quote } from '../errors/serialized-error';
import { resolveSchedule } from './resolve-schedule';
import type { ScheduleHandle, ScheduleOptions } from './schedule-options';
import { ScheduleRun } from './schedule-run';
import type { SchedulerHost } from './scheduler-host';

/**
 * The cron schedules of one runtime, by name. `runtime.schedule` adds one; `runtime.close()` cancels them all.
 *
 * @example
 * const scheduler = new Scheduler(host);
 * const handle = await scheduler.add('nightly-report', { cron: '0 2 * * *', input: {} });
 * scheduler.cancelAll();
 */
export class Scheduler {
  private readonly runs = new Map<string, ScheduleRun>();

  constructor(private readonly host: SchedulerHost) {}

  /**
   * Checks `options` (nothing is stored when they are bad), then starts the schedule of `workflow` (a registered
   * workflow's name): catches up on missed ticks and arms the timer for the next one.
   * @throws ScheduleError `BAD_CRON`, `BAD_TIMEZONE`, `BAD_OPTION`, or `DUPLICATE_SCHEDULE` when this runtime
   * already runs a schedule of that name.
   */
  async add<S>(workflow: string, options: ScheduleOptions<S>): Promise<ScheduleHandle> {
    const spec = resolveSchedule(workflow, options);
    if (this.runs.has(spec.name)) {
      throw new ScheduleError(
        'DUPLICATE_SCHEDULE',
        spec.name,
        `a schedule named ${quote(spec.name)} already runs on this runtime; give the second one another name (option name), or cancel the first`,
      );
    }
    const run = new ScheduleRun(this.host, spec, () => {
      if (this.runs.get(spec.name) === run) this.runs.delete(spec.name);
    });
    this.runs.set(spec.name, run);
    await run.begin();
    return run.handle;
  }

  /** Cancels every schedule (their timers go; instances already started go on). */
  cancelAll(): void {
    for (const run of [...this.runs.values()]) run.cancel();
  }
}
