// The vocabulary of the pure engine: what happens to an instance, what a handler returned, and what the runner
// must do next.
import type { SagaEvent } from '../../bus/event';
import type { SerializedError } from '../../errors/serialized-error';
import type { WaitSpec } from '../../steps/step-result';
import type { PolicyLookup } from '../../policies/step-policy';
import type { WorkflowDefinition } from '../../workflow/workflow-definition';
import type { StepFunc, Wait } from '../../core/flow-fields';
import type { InstanceRecord, TrackRef } from '../instance-record';

/** Something that happened to an instance. The runner turns results, events, timers and requests into these. */
export type Happening =
  | { readonly type: 'begin' }
  | { readonly type: 'initVetoed'; readonly error: SerializedError }
  | { readonly type: 'settled'; readonly track: TrackRef; readonly token: number; readonly outcome: Outcome }
  | { readonly type: 'event'; readonly track: TrackRef; readonly event: SagaEvent }
  /** A time the record asked to be woken at has come: a wait deadline, a retry, or the workflow deadline. */
  | { readonly type: 'due'; readonly track: TrackRef; readonly at: number }
  | { readonly type: 'rollback'; readonly reason: SerializedError }
  | { readonly type: 'resume' }
  /** Operator: call the failed compensations again (the instance is `compensation_failed`). */
  | { readonly type: 'retryCompensation' }
  /** Operator: give up on the failed compensations and go on with the earlier ones. */
  | { readonly type: 'skipCompensation' }
  /** A rate limiter had no slot for the call in flight: park the track until `until`, when the call is made again. */
  | { readonly type: 'throttled'; readonly track: TrackRef; readonly token: number; readonly until: number; readonly limiter: string }
  /**
   * Roll back, even a completed instance: its steps are compensated in reverse (a parent undoing a completed child).
   * On a running instance it is `rollback`.
   */
  | { readonly type: 'undo'; readonly reason: SerializedError };

/** A handler's result, with the state already in its stored (JSON) form. */
export type Outcome =
  | { readonly kind: 'ok'; readonly state: unknown }
  | { readonly kind: 'continue'; readonly state: unknown; readonly wait: WaitSpec }
  | { readonly kind: 'goto'; readonly target: string; readonly state: unknown }
  /** From a compensation: run forward again from this step (at most `maxRetries` times), after `backoffMs`. */
  | { readonly kind: 'retryForward'; readonly state: unknown; readonly maxRetries: number; readonly backoffMs: number }
  /** From the failed step's compensation: its substitute stands; go on forward from the next step. */
  | { readonly kind: 'recover'; readonly state: unknown }
  /** From a compensation: it is done, and no later `retryForward` may restart the saga. */
  | { readonly kind: 'abort'; readonly state?: unknown; readonly reason: SerializedError }
  /** `started: false` when a before-hook vetoed, so the step never ran and is not compensated. */
  | {
      readonly kind: 'error';
      readonly error: SerializedError;
      readonly state?: unknown;
      readonly started: boolean;
      /** False for failures no retry policy applies to (a wait deadline). */
      readonly retryable?: boolean;
    };

/** Lifecycle hooks a transition asks the runner to call (before it persists the transition). */
export type LifecycleHook =
  | 'handleStartRollback'
  | 'handleWorkflowSuccess'
  | 'handleWorkflowFailure'
  | 'handleCompensationFailed'
  | 'handleFinish'
  | 'handleGroupStart'
  | 'handleGroupEnd';

/** What the runner must do after a transition is persisted. */
export type Effect =
  | {
      readonly type: 'invoke';
      readonly track: TrackRef;
      readonly step: string;
      readonly func: StepFunc;
      readonly token: number;
      readonly event: SagaEvent | null;
    }
  | { readonly type: 'abort'; readonly track: TrackRef; readonly reason: SerializedError }
  | { readonly type: 'watch'; readonly track: TrackRef; readonly wait: Wait }
  /** Deliver a `due` happening at `at` (a retry, or the workflow deadline). */
  | { readonly type: 'timer'; readonly track: TrackRef; readonly at: number }
  | { readonly type: 'hook'; readonly hook: LifecycleHook; readonly group: string | null }
  /** A `when` chose a block (for the history; the runner has nothing to do). */
  | { readonly type: 'branched'; readonly when: string; readonly branch: 'then' | 'else' }
  /** A blocked instance goes on: its definition is registered again (for the history). */
  | { readonly type: 'unblocked' }
  /** Something the runner reports (a workflow's `onExit` that threw, say); nothing else to do. */
  | { readonly type: 'problem'; readonly message: string; readonly error: SerializedError }
  /** A compensation decided what follows (for the history). */
  | { readonly type: 'controlled'; readonly track: TrackRef; readonly decision: 'retryForward' | 'recover' | 'abort' | 'ignored'; readonly note: string }
  | { readonly type: 'finished' };

/** What the pure part needs besides the record: the definition, the time, and the state codec for `into`. */
export interface DecideEnv {
  readonly def: WorkflowDefinition;
  readonly now: number;
  /** Turns stored state into what user code sees (the state class instance). */
  readonly hydrate: (state: unknown) => unknown;
  /** Turns what user code returned into stored state; throws when it is not JSON. */
  readonly dehydrate: (state: unknown) => unknown;
  /** The retry and timeout policy of a step in a direction. @default no retries, no timeouts */
  readonly policy?: PolicyLookup;
}

/** The result of {@link decide}: the next record and the effects to perform, in order. */
export interface Transition {
  readonly record: InstanceRecord;
  readonly effects: Effect[];
  /** False when the happening was stale (a late result, an event for a wait that ended) and changed nothing. */
  readonly changed: boolean;
}

/** What a compensation may decide besides ok, error and continue (see compensation-control). */
export type ControlOutcome = Extract<Outcome, { kind: 'retryForward' | 'recover' | 'abort' }>;
