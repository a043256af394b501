import { SagaflowError } from './sagaflow-error';

/** Codes of {@link ScheduleError}: mistakes in the options of `runtime.schedule`, caught before anything is stored. */
export const ScheduleErrorCode = {
  /** The cron expression cannot be parsed (croner's reason is in the message). */
  BadCron: 'BAD_CRON',
  /** The time zone is not an IANA zone the platform knows. */
  BadTimezone: 'BAD_TIMEZONE',
  /** This runtime already runs a schedule of that name. */
  DuplicateSchedule: 'DUPLICATE_SCHEDULE',
  /** Another option has a value it cannot have (`missed`, `name`, `input`). */
  BadOption: 'BAD_OPTION',
} as const;
export type ScheduleErrorCode = (typeof ScheduleErrorCode)[keyof typeof ScheduleErrorCode];

/** The options of a cron schedule are invalid. Thrown by `runtime.schedule` before anything is persisted. */
export class ScheduleError extends SagaflowError {
  declare readonly code: ScheduleErrorCode;
  /** The schedule's name (the workflow's when none was given). */
  readonly schedule: string;

  constructor(code: ScheduleErrorCode, schedule: string, message: string, details: Record<string, unknown> = {}) {
    super(code, message, { schedule, ...details });
    this.schedule = schedule;
  }
}
