/**
 * sagaflow — a saga / rollback orchestrator with linear up/down steps.
 *
 * A workflow runs its steps forward ("up"); when a step fails it turns around ("down") and compensates every
 * step that started, in reverse, the failing one first — parallel groups included.
 *
 * - Write steps: extend {@link BaseStep}, decorate with {@link Step}, return {@link ok}, {@link error},
 *   {@link continueWith} (wait for an event) or {@link goto}.
 * - Declare workflows with {@link Workflow} (or {@link defineWorkflow}); group steps with {@link parallel}, branch with
 *   {@link when}, fan out over items with {@link forEach}, start child workflows with {@link child}.
 * - Observe with {@link Observer}s: hooks before and after each step and at lifecycle points.
 * - Run with {@link SagaRuntime}: `start`, `publish`, `rollback`, `get`, and `start()` to resume after a restart.
 * - Start instances on a cron schedule with `runtime.schedule(workflow, { cron, input })`.
 * - Test with `sagaflow/testing`: `SimulatedClock`, `RecordingObserver`.
 *
 * @module sagaflow
 */
import 'reflect-metadata';

// Steps and results
export { BaseStep, type StepClass } from './steps/base-step';
export { Step, type StepOptions, type RollbackControl } from './steps/step-decorator';
export type { StepContext } from './steps/step-context';
export {
  ok,
  error,
  continueWith,
  goto,
  retryForward,
  recover,
  abort,
  type StepResult,
  type RollbackResult,
  type RollbackReturn,
  type RetryForwardResult,
  type RecoverResult,
  type AbortResult,
  type StepReturn,
  type OkResult,
  type ErrorResult,
  type ContinueResult,
  type GotoResult,
  type WaitSpec,
  type ReturnedState,
} from './steps/step-result';

// Workflows and parallel groups
export { Workflow, type WorkflowRef } from './workflow/workflow-decorator';
export { defineWorkflow, type WorkflowOptions, type WorkflowNode } from './workflow/compile-workflow';
export type { WorkflowDefinition, StateClass, ExitOutcome } from './workflow/workflow-definition';
export { describe, describeOutline } from './workflow/describe';
export type { WorkflowOutline, OutlineNode, OutlineStep, OutlineBranch, OutlineParallel, OutlineForEach, OutlineWhen } from './workflow/workflow-outline';
export { parallel, branch, type ParallelOptions, type IntoResult, type BranchSpec, type ParallelSpec } from './parallel/parallel';
export { when, forEach, type WhenSpec, type WhenOptions, type ForEachSpec, type ForEachOptions } from './workflow/control-flow';
export { child, CHILD_ENDED_TOPIC, type ChildOptions, type ChildEnded } from './workflow/child';
export type { JumpOptions } from './steps/jumps';
export {
  parallelResults,
  parallelResult,
  parallelOk,
  PARALLEL_RESULTS_KEY,
  type BranchOutcome,
  type ParallelResults,
} from './parallel/parallel-results';

// Observers
export type { Observer, ObserverClass, ObserverRegistration, ObserverSpec, FlowView, HookResult, HookReturn, ObserverHook, FinishOutcome } from './observers/observer';

// Flow fields and records
export {
  Direction,
  StepFunc,
  InstanceStatus,
  isFinalStatus,
  type FlowFields,
  type Wait,
  type StackEntry,
  type BranchStackEntry,
  type ResultSummary,
  type MatchValue,
} from './core/flow-fields';
export type { InstanceRecord, GroupRun, BranchRun, BranchPhase, CompensationFailure, BlockedReason } from './engine/instance-record';
export type { HistoryEntry, HistoryKind } from './engine/history-entry';

export { HistoryObserver, type HistoryObserverOptions } from './observers/history-observer';
export {
  LoggingObserver,
  jsonLineLogger,
  DEFAULT_LOG_LEVELS,
  REDACTED,
  LoggedEvent,
  type LoggingObserverOptions,
  type JsonLineLoggerOptions,
  type LogLevel,
  type LoggedPoint,
} from './observers/logging-observer';
export type { StateChangeOp } from './engine/state-change';

// Step policies
export type { RetryPolicy } from './policies/retry-policy';
export type { StepPolicyOptions } from './policies/step-policy';
export { RateLimiter, type RateLimit, type RateLimitSpec, type SlotLimiter, type ResolvedRateLimit } from './policies/rate-limiter';
export { decide, type Happening, type Outcome, type Effect, type Transition, type DecideEnv } from './engine/decide';

// Runtime, bus, store, time
export {
  SagaRuntime,
  type SagaRuntimeOptions,
  type StartOptions,
  type WorkflowHandle,
  type SagaResult,
  type InstanceSnapshot,
  type RuntimeProblem,
  type Resolver,
  type OperatorNote,
  type StopOptions,
  type StopReport,
  type MigrateOptions,
  type MigrateAllOptions,
  type MigrateAllReport,
} from './runtime/saga-runtime';
export { stopOnSignals, type StopOnSignalsOptions } from './runtime/stop-on-signals';
export type { RetentionOptions } from './runtime/retention';
export type { PublishReceipt } from './core/publish-receipt';
export { consoleLogger, silentLogger, type Logger } from './core/logger';
export { EventBus, type BusProblem } from './bus/event-bus';
export type { SagaEvent, SagaEventInput } from './bus/event';
export type { InstanceStore, InstanceFilter, InstanceSummary, DueWait, PendingEvent, TransitionWrites, RunnableDefinition, StoredOutline, PurgeOptions, WaitingRecord } from './store/instance-store';
export { KEEP_FOR_INSTANCE } from './store/instance-store';
export { OperatorRequestKind, type OperatorRequest, type OperatorRequestInput } from './store/operator-request';
export { MemoryStore } from './store/memory-store';
export { SystemClock, type Clock, type TimerHandle } from './time/clock';
export { toMillis, type Duration } from './time/duration';

// Cron schedules
export { MissedTicks, type ScheduleOptions, type ScheduleHandle, type ScheduleInput } from './schedule/schedule-options';

// Errors
export { SagaflowError } from './errors/sagaflow-error';
export { DefinitionError, DefinitionErrorCode } from './errors/definition-error';
export {
  UnknownInstanceError,
  UnknownWorkflowError,
  InvalidEventError,
  InvalidOperationError,
  LeasedElsewhereError,
  InstanceBlockedError,
  MigrationRefusedError,
  InvalidArgumentError,
  VersionConflictError,
  CorruptRecordError,
  RuntimeClosedError,
} from './errors/runtime-errors';
export { StateValidationError, StateNotSerializableError, BadStateError, StateHydrationError, type InvalidProperty } from './errors/state-errors';
export { ScheduleError, ScheduleErrorCode } from './errors/schedule-errors';
export { MalformedResultError, TimeoutError, RollbackRequestedError } from './errors/step-errors';
export { MissingDependencyError } from './errors/missing-dependency-error';
export { OperatingError, OperatingErrorCode } from './errors/operating-errors';
export type { SerializedError } from './errors/serialized-error';
