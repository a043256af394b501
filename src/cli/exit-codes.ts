import { SagaflowError } from '../errors/sagaflow-error';

/** The exit codes of the `sagaflow` command. */
export const ExitCode = {
  Ok: 0,
  /** Anything not listed below. */
  Failed: 1,
  /** A bad argument or option (`BAD_ARGUMENT`, `INVALID_ARGUMENT`, `NOT_PURGEABLE`, a usage error). */
  BadArgument: 2,
  /** No instance with that id (`UNKNOWN_INSTANCE`). */
  UnknownInstance: 3,
  /** No database there, not a sagaflow database, or unreachable. */
  NoDatabase: 4,
  /** The sagaflow schema is older or newer than this sagaflow. */
  Schema: 5,
  /** `describe`: the module cannot be loaded or exports no workflow. */
  BadModule: 6,
  /** An operator request the instance refuses as it is (`INVALID_OPERATION`, `INSTANCE_FINISHED`). */
  Refused: 7,
  /** A request written with `--wait` is still pending when the wait ends (`REQUEST_PENDING`). */
  Pending: 8,
} as const;

const BY_CODE: Readonly<Record<string, number>> = {
  BAD_ARGUMENT: ExitCode.BadArgument,
  INVALID_ARGUMENT: ExitCode.BadArgument,
  NOT_PURGEABLE: ExitCode.BadArgument,
  BAD_OPTION: ExitCode.BadArgument,
  UNKNOWN_INSTANCE: ExitCode.UnknownInstance,
  NO_DATABASE: ExitCode.NoDatabase,
  NOT_SAGAFLOW_DATABASE: ExitCode.NoDatabase,
  DATABASE_UNREACHABLE: ExitCode.NoDatabase,
  MISSING_DEPENDENCY: ExitCode.NoDatabase,
  SCHEMA_OUTDATED: ExitCode.Schema,
  SCHEMA_TOO_NEW: ExitCode.Schema,
  MIGRATIONS_PENDING: ExitCode.Schema,
  BAD_MODULE: ExitCode.BadModule,
  INVALID_OPERATION: ExitCode.Refused,
  INSTANCE_FINISHED: ExitCode.Refused,
  REQUEST_PENDING: ExitCode.Pending,
};

/** The exit code for an error a command ended with. */
export function exitCodeOf(error: unknown): number {
  return error instanceof SagaflowError ? (BY_CODE[error.code] ?? ExitCode.Failed) : ExitCode.Failed;
}
