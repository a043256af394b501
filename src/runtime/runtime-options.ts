/**
 * The public shapes around {@link SagaRuntime}: its options, what `start`, `get` and `stop` return, and the
 * problems it reports. Kept apart so the runtime's collaborators can use them without importing the facade.
 */
import type { RetentionOptions } from './retention';
import type { ObserverSpec, FlowView } from '../observers/observer';
import type { InstanceStatus } from '../core/flow-fields';
import type { BlockedReason } from '../engine/instance-record';
import type { EventBus } from '../bus/event-bus';
import type { SerializedError } from '../errors/serialized-error';
import { optionKeys } from '../input/known-keys';
import type { RateLimitSpec } from '../policies/rate-limiter';
import type { StepPolicyOptions } from '../policies/step-policy';
import type { InstanceStore } from '../store/instance-store';
import type { Clock } from '../time/clock';
import type { Duration } from '../time/duration';
import type { WorkflowRef } from '../workflow/workflow-decorator';
import type { Logger } from '../core/logger';


/** Makes step and observer instances; plug a DI container in here. The default calls `new Cls()` once per class. */
export type Resolver = <T>(cls: new (...args: never[]) => T) => T;

/** Options of {@link SagaRuntime}. */
export interface SagaRuntimeOptions {
  /**
   * Where instances live. `TypeormStore.postgres({ url })` (from `sagaflow/typeorm`) for production,
   * `new MemoryStore()` for tests. The default needs the optional peer dependency better-sqlite3; without it,
   * `new SagaRuntime()` throws a `MissingDependencyError` (`MISSING_DEPENDENCY`) naming the install command.
   * @default the embedded SQLite database `.sagaflow/sagaflow.db` (`TypeormStore.sqlite()`)
   */
  readonly store?: InstanceStore;
  /** The event bus. @default new EventBus() */
  readonly bus?: EventBus;
  /** The clock for deadlines; use `SimulatedClock` from `sagaflow/testing` in tests. @default new SystemClock() */
  readonly clock?: Clock;
  /** Where the runtime logs (pino's method shape). @default warnings and errors to the console */
  readonly logger?: Logger;
  /** Makes step and observer instances. @default one `new Cls()` per class */
  readonly resolver?: Resolver;
  /** Observers for every workflow, called after each workflow's own. @default [] */
  readonly observers?: readonly ObserverSpec[];
  /** How long an event no wait matched is kept for a wait that begins just after it. @default '30s' */
  readonly eventRetention?: Duration;
  /** Workflows to register right away. @default [] */
  readonly workflows?: readonly WorkflowRef[];
  /** Retry and timeout settings for every step that does not set its own. @default no retries, no timeouts */
  readonly defaults?: StepPolicyOptions;
  /** This worker's name in leases (shared stores). @default host name, process id and a random suffix */
  readonly workerId?: string;
  /** How long a worker's lease on an instance lasts without renewal (shared stores). @default '30s' */
  readonly leaseDuration?: Duration;
  /** How often a worker looks for due timers, stale instances and inbox deliveries (shared stores). @default '1s' */
  readonly pollInterval?: Duration;
  /**
   * Named rate limiters that steps share: `@Step({ name, rateLimit: 'jira' })` on any workflow draws on
   * `rateLimiters.jira`. On a shared store (PostgreSQL) the limit holds across every worker on the database (slots
   * are booked in the store); otherwise it is kept in this process. @default {}
   */
  readonly rateLimiters?: Readonly<Record<string, RateLimitSpec>>;
  /**
   * How long finished instances are kept: `{ completed: '7d', rolledBack: '30d' }` deletes them (with their history
   * and inbox rows) once older, in bounded batches, a round every `interval` (the first when the store opens).
   * `compensation_failed` and `blocked` instances are never purged automatically. The store must support `purge`.
   * @default nothing is ever purged
   */
  readonly retention?: RetentionOptions;
}

/** Who performs an operator action, and why; recorded in the instance's history. */
export interface OperatorNote {
  /** Who (a person or a system). */
  readonly by?: string;
  /** Why. */
  readonly reason?: string;
}

/** Options of {@link SagaRuntime.stop}. */
export interface StopOptions {
  /** How long handler calls in flight may take to finish before they are aborted. @default '30s' */
  readonly drainTimeout?: Duration;
}

/** What {@link SagaRuntime.stop} did. */
export interface StopReport {
  /** True when every call in flight finished before the deadline. */
  readonly drained: boolean;
  /** Calls still in flight at the deadline, aborted; they run again when their instances are resumed. */
  readonly abandoned: number;
}

/** Options of {@link SagaRuntime.migrate}. */
export interface MigrateOptions extends OperatorNote {
  /** The version to move to; it must be registered. */
  readonly to: number;
  /** Old name → new name for the steps, groups and `when`s the target version renamed. @default {} */
  readonly map?: Readonly<Record<string, string>>;
}

/** Options of {@link SagaRuntime.migrateAll}. */
export interface MigrateAllOptions extends MigrateOptions {
  /** The workflow whose instances move. */
  readonly workflow: string;
  /** The version they move from. */
  readonly from: number;
}

/** What {@link SagaRuntime.migrateAll} did. */
export interface MigrateAllReport {
  /** The instances moved. */
  readonly migrated: readonly string[];
  /** The instances that could not move, and why (`MIGRATION_REFUSED` lists what the target lacks). */
  readonly refused: readonly { readonly id: string; readonly error: SerializedError }[];
}

/** Options of `start(workflow, input, options)`. */
export interface StartOptions {
  /**
   * The instance id; starting again with an existing id returns that instance. @default a new UUID of version 7:
   * time-ordered, so new instances and their rows go next to the last ones in the database's indexes
   */
  readonly id?: string;
  /**
   * The version of the workflow to start. @default the version of the definition given, or, given a workflow's
   * name, the newest version registered
   */
  readonly version?: number;
}

/** How an instance ended (or where it is). */
export interface SagaResult<S> {
  readonly id: string;
  readonly status: InstanceStatus;
  /** The state, as an instance of the workflow's state class when it has one. */
  readonly state: S;
  /** Why it rolled back, or null. */
  readonly error: SerializedError | null;
}

/** A snapshot of an instance, from {@link SagaRuntime.get}. */
export interface InstanceSnapshot<S> extends SagaResult<S> {
  readonly workflow: string;
  /** The version of the workflow it runs on. */
  readonly version: number;
  /** Why it is `blocked` (its definition is not registered as it started), or null. */
  readonly blocked: BlockedReason | null;
  /** The flow fields of the main line. */
  readonly flow: FlowView;
  readonly createdAt: number;
  readonly updatedAt: number;
  /** Compensations that failed, when the status is `compensation_failed`. */
  readonly compensationFailures: readonly { readonly step: string; readonly branch?: string; readonly error: SerializedError }[];
}

/** What `start` returns. */
export interface WorkflowHandle<S> {
  readonly id: string;
  /** Resolves when the instance completes, rolls back or stops in `compensation_failed`. */
  result(): Promise<SagaResult<S>>;
}

/** A problem the runtime reported and survived (a throwing observer, a dropped event, a failed save). */
export interface RuntimeProblem {
  readonly kind: 'observer-failed' | 'event-dropped' | 'instance-failed' | 'instance-blocked' | 'bus-problem' | 'maintenance-failed';
  readonly message: string;
  readonly error: SerializedError;
  readonly instanceId?: string;
}

/** The names of {@link SagaRuntimeOptions}. */
export const RUNTIME_OPTION_KEYS = optionKeys<SagaRuntimeOptions>()([
  'store',
  'bus',
  'clock',
  'logger',
  'resolver',
  'observers',
  'eventRetention',
  'workflows',
  'defaults',
  'workerId',
  'leaseDuration',
  'pollInterval',
  'rateLimiters',
  'retention',
]);

/** The names of {@link StartOptions}. */
export const START_OPTION_KEYS = optionKeys<StartOptions>()(['id', 'version']);
