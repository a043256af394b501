import { ScheduleError } from '../errors/schedule-errors';
import { quote } from '../errors/serialized-error';
import { optionKeys, unknownKey, unknownKeyText } from '../input/known-keys';
import { CronSchedule, DEFAULT_TIMEZONE } from './cron-schedule';
import { MissedTicks, type ScheduleInput, type ScheduleOptions } from './schedule-options';

/** A schedule's options, checked and with their defaults applied. */
export interface ResolvedSchedule {
  readonly name: string;
  /** The registered name of the workflow it starts. */
  readonly workflow: string;
  readonly cron: CronSchedule;
  /** The input of the instance of a tick. */
  readonly inputOf: (tick: Date) => unknown;
  readonly missed: MissedTicks;
}

const MISSED_VALUES: readonly string[] = Object.values(MissedTicks);
const SCHEDULE_OPTION_KEYS = optionKeys<ScheduleOptions<unknown>>()(['cron', 'input', 'timezone', 'name', 'missed']);

/**
 * Checks the options of `runtime.schedule` for `workflow` (a registered workflow's name) and applies the defaults.
 * Pure: nothing is stored or armed, so a bad option leaves no trace.
 * @throws ScheduleError `BAD_OPTION`, `BAD_TIMEZONE` or `BAD_CRON`.
 * @example
 * resolveSchedule('report', { cron: '0 6 * * *', input: {} }); // name 'report', timezone UTC, missed 'runOnce'
 */
export function resolveSchedule(workflow: string, options: ScheduleOptions<unknown>): ResolvedSchedule {
  if (typeof options !== 'object' || options === null) {
    throw new ScheduleError('BAD_OPTION', workflow, `schedule of ${quote(workflow)}: options must be an object with cron and input, got ${quote(options)}`);
  }
  const found = unknownKey(options, SCHEDULE_OPTION_KEYS);
  if (found !== undefined) {
    throw new ScheduleError('BAD_OPTION', workflow, `schedule of ${quote(workflow)}: ${unknownKeyText(found)}; the options are ${SCHEDULE_OPTION_KEYS.join(', ')}`, {
      option: found.key,
    });
  }
  const name = options.name ?? workflow;
  if (typeof name !== 'string' || name.trim().length === 0) {
    throw new ScheduleError('BAD_OPTION', String(name), `schedule of ${quote(workflow)}: name must be a non-empty string, got ${quote(name)}`, {
      option: 'name',
    });
  }
  const missed = options.missed ?? MissedTicks.RunOnce;
  if (!MISSED_VALUES.includes(missed)) {
    throw new ScheduleError(
      'BAD_OPTION',
      name,
      `schedule ${quote(name)}: missed must be ${MISSED_VALUES.map((v) => `'${v}'`).join(' or ')}, got ${quote(missed)}`,
      { option: 'missed', value: missed },
    );
  }
  if (options.input === undefined) {
    throw new ScheduleError('BAD_OPTION', name, `schedule ${quote(name)}: input is missing; give the input state, or a function of the tick that makes it`, {
      option: 'input',
    });
  }
  const cron = CronSchedule.parse(options.cron, options.timezone ?? DEFAULT_TIMEZONE, name);
  const input: ScheduleInput<unknown> = options.input;
  const inputOf = typeof input === 'function' ? (input as (tick: Date) => unknown) : () => input;
  return { name, workflow, cron, inputOf, missed };
}
