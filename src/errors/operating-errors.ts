import { SagaflowError } from './sagaflow-error';

/** Codes of {@link OperatingError}: what the `sagaflow` command line, the inspector and retention refuse. */
export const OperatingErrorCode = {
  /** An argument or option of a command is not what it takes (an unknown status, a bad duration). */
  BadArgument: 'BAD_ARGUMENT',
  /** No database at the place given (an SQLite file that does not exist is never created by a read). */
  NoDatabase: 'NO_DATABASE',
  /** The database is there but has no sagaflow tables. */
  NotSagaflowDatabase: 'NOT_SAGAFLOW_DATABASE',
  /** The database could not be reached (PostgreSQL down, a wrong URL, a file that is not a database). */
  DatabaseUnreachable: 'DATABASE_UNREACHABLE',
  /** The sagaflow schema is older than this version of sagaflow: start the application (or run the migrations). */
  SchemaOutdated: 'SCHEMA_OUTDATED',
  /** The sagaflow schema was written by a newer version of sagaflow than this one. */
  SchemaTooNew: 'SCHEMA_TOO_NEW',
  /** A purge was asked for statuses that are never purged (unfinished instances). */
  NotPurgeable: 'NOT_PURGEABLE',
  /** `sagaflow describe` was given a module that cannot be loaded or exports no workflow. */
  BadModule: 'BAD_MODULE',
  /** A request written with `--wait` was still pending when the wait ended: no runtime running the instance took it yet. */
  RequestPending: 'REQUEST_PENDING',
} as const;
export type OperatingErrorCode = (typeof OperatingErrorCode)[keyof typeof OperatingErrorCode];

/** An operating command (the `sagaflow` CLI, the inspector, a purge) cannot do what it was asked. */
export class OperatingError extends SagaflowError {
  declare readonly code: OperatingErrorCode;
  constructor(code: OperatingErrorCode, message: string, details: Record<string, unknown> = {}) {
    super(code, message, details);
  }
}
