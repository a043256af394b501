import { quote } from '../errors/serialized-error';
import { Cron } from 'croner';
import { ScheduleError } from '../errors/schedule-errors';

/** The time zone a schedule reads its expression in when it names none. */
export const DEFAULT_TIMEZONE = 'UTC';

/**
 * A cron expression read by croner in one time zone, as pure time arithmetic: which tick comes after a moment,
 * which one was the latest at a moment. No timers run here (the croner job is created paused, without a function).
 */
export class CronSchedule {
  private constructor(
    private readonly cron: Cron,
    /** The expression, as given. */
    readonly expression: string,
    /** The IANA time zone it is read in. */
    readonly timezone: string,
  ) {}

  /**
   * Parses `expression` (5 fields, or 6 with seconds first) in `timezone`.
   * @throws ScheduleError `BAD_TIMEZONE` for a zone the platform does not know, `BAD_CRON` for an expression croner
   * cannot read (its reason quoted).
   * @example
   * CronSchedule.parse('0 9 * * *', 'Europe/Paris', 'daily').next(Date.UTC(2026, 0, 1)); // 2026-01-01T08:00:00Z
   */
  static parse(expression: unknown, timezone: unknown, schedule: string): CronSchedule {
    if (typeof timezone !== 'string' || !isKnownTimezone(timezone)) {
      throw new ScheduleError(
        'BAD_TIMEZONE',
        schedule,
        `schedule ${quote(schedule)}: timezone ${quote(timezone)} is not an IANA time zone; use a name such as 'Europe/Paris' or 'UTC'`,
        { timezone },
      );
    }
    if (typeof expression !== 'string') {
      throw new ScheduleError('BAD_CRON', schedule, `schedule ${quote(schedule)}: the cron expression must be a string, got ${quote(expression)}`, {
        cron: expression,
      });
    }
    let cron: Cron;
    try {
      cron = new Cron(expression, { paused: true, timezone, mode: '5-or-6-parts' });
    } catch (e) {
      const reason = e instanceof Error ? e.message : String(e);
      throw new ScheduleError(
        'BAD_CRON',
        schedule,
        `schedule ${quote(schedule)}: cron expression ${quote(expression)} is invalid (${reason}); write 5 fields (minute hour day-of-month month day-of-week) or 6 (seconds first)`,
        { cron: expression, reason },
      );
    }
    return new CronSchedule(cron, expression, timezone);
  }

  /** The first tick strictly after `after` (ms since epoch), or null when there is none. */
  next(after: number): number | null {
    return this.cron.nextRun(new Date(after))?.getTime() ?? null;
  }

  /** The latest tick at or before `at` (ms since epoch), or null when there is none. */
  latest(at: number): number | null {
    // croner's previous runs are those before the reference (ticks are whole seconds): 1 ms past `at` includes `at`.
    return this.cron.previousRuns(1, new Date(at + 1))[0]?.getTime() ?? null;
  }
}

function isKnownTimezone(timezone: string): boolean {
  if (timezone.length === 0) return false;
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: timezone });
    return true;
  } catch {
    return false;
  }
}
