import type { SerializedError } from '../errors/serialized-error';
import type { Direction, InstanceStatus, ResultSummary, StepFunc, Wait } from '../core/flow-fields';
import type { ErrorResult, OkResult, ReturnedState } from '../steps/step-result';

/** A read-only view of the flow fields, handed to every hook. */
export interface FlowView {
  readonly instanceId: string;
  readonly workflow: string;
  readonly direction: Direction;
  readonly status: InstanceStatus;
  /** The step (or group) the hook is about; null for lifecycle hooks before the first or after the last. */
  readonly stepName: string | null;
  /** Index in the workflow's step list, or in the branch's sequence for a branch step. */
  readonly stepIndex: number;
  readonly stepFunc: StepFunc;
  /** Attempt number of the current handler, from 1. */
  readonly attempt: number;
  /** The delay (ms) waited before this attempt, when it is a retry; null otherwise. */
  readonly retryDelay: number | null;
  readonly errorReason: SerializedError | null;
  /** What the step waits for, while it is parked after `continue`. */
  readonly wait: Wait | null;
  /** For `handleAfterStep`: what the step returned (after hooks may still veto it). */
  readonly lastResult: ResultSummary | null;
  /** The parallel group, for steps inside one (and for group hooks). */
  readonly group?: string;
  /** The branch, for steps inside a parallel group. */
  readonly branch?: string;
}

/** How an instance ended: what `handleFinish` and a workflow's `onExit` receive. */
export interface FinishOutcome {
  readonly status: 'completed' | 'rolled_back' | 'compensation_failed';
  /** Why it rolled back, or null when it completed. */
  readonly error: SerializedError | null;
}

/** A hook returns nothing (no change), `ok(state)` (a changed state) or `error(reason)` (a veto). */
export type HookResult<S> = void | undefined | OkResult<ReturnedState<S>> | ErrorResult<ReturnedState<S>>;
/** What a hook may return: a {@link HookResult}, or a promise of one. */
export type HookReturn<S> = HookResult<S> | Promise<HookResult<S>>;

/**
 * An observer: optional hooks called around every step and at the lifecycle points, in both directions,
 * in registration order. A hook that throws is reported and ignored (unless the observer is critical).
 */
export interface Observer<S = any> { // eslint-disable-line @typescript-eslint/no-explicit-any
  /** Once, when an instance starts, before its first step. A veto ends it before any step runs. */
  handleInit?(state: S, flow: FlowView): HookReturn<S>;
  /** Before every `run` and `rollback` call. Going up, a veto skips the step and rolls back the ones before it. */
  handleBeforeStep?(state: S, flow: FlowView): HookReturn<S>;
  /** After a step resolves (not after `continue`). Going up, a veto fails the step (it is compensated). */
  handleAfterStep?(state: S, flow: FlowView): HookReturn<S>;
  /** When the direction turns down. */
  handleStartRollback?(state: S, flow: FlowView): HookReturn<S>;
  /** When the instance completed. */
  handleWorkflowSuccess?(state: S, flow: FlowView): HookReturn<S>;
  /** When the instance finished rolling back. */
  handleWorkflowFailure?(state: S, flow: FlowView): HookReturn<S>;
  /** When a compensation failed and the instance stopped in `compensation_failed`. */
  handleCompensationFailed?(state: S, flow: FlowView): HookReturn<S>;
  /**
   * Once, whatever the end — `completed`, `rolled_back` or `compensation_failed` — after the hook of that end, with
   * how it ended (the error as the workflow's `onExit` left it). Like the other lifecycle hooks it runs before the
   * end is stored, so a crash in between calls it again when the instance is resumed.
   */
  handleFinish?(state: S, flow: FlowView, outcome: FinishOutcome): HookReturn<S>;
  /** When a parallel group starts (report only). */
  handleGroupStart?(state: S, flow: FlowView): HookReturn<S>;
  /** When a parallel group ends, either way (report only). */
  handleGroupEnd?(state: S, flow: FlowView): HookReturn<S>;
  /**
   * Runs around every handler call (`run`, `rollback` and the `*HandleInfo` handlers), the first-registered
   * observer outermost, to set up a context for it — e.g. make a tracing span active so the user's own spans nest
   * under it. Call `call()` once and return what it returns; the handler's result is used whatever the wrapper
   * returns. A wrapper that throws before calling `call` is reported and the call is made unwrapped.
   */
  wrapStep?<T>(flow: FlowView, call: () => Promise<T>): Promise<T>;
}

/** The names of the hooks, in the order of the {@link Observer} interface. */
export const OBSERVER_HOOKS = [
  'handleInit',
  'handleBeforeStep',
  'handleAfterStep',
  'handleStartRollback',
  'handleWorkflowSuccess',
  'handleWorkflowFailure',
  'handleCompensationFailed',
  'handleFinish',
  'handleGroupStart',
  'handleGroupEnd',
] as const;
/** The name of an {@link Observer} hook, e.g. `'handleBeforeStep'`. */
export type ObserverHook = (typeof OBSERVER_HOOKS)[number];

/** Members that wrap handler calls rather than being called with the state. */
export const OBSERVER_WRAPPERS = ['wrapStep'] as const;

/** A class whose instances are observers (made through the runtime's resolver). */
export type ObserverClass<S = any> = new (...args: any[]) => Observer<S>; // eslint-disable-line @typescript-eslint/no-explicit-any

/** How an observer is registered: the observer (or its class), optionally marked critical. */
export interface ObserverRegistration<S = any> { // eslint-disable-line @typescript-eslint/no-explicit-any
  readonly observer: Observer<S> | ObserverClass<S>;
  /** A critical observer's throws become vetoes instead of being ignored. @default false */
  readonly critical?: boolean;
}

/** What `observers: [...]` accepts. */
export type ObserverSpec<S = any> = Observer<S> | ObserverClass<S> | ObserverRegistration<S>; // eslint-disable-line @typescript-eslint/no-explicit-any
