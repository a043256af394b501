/**
 * The vocabulary of an instance's position that every layer shares: directions, step functions, statuses, waits,
 * the compensation stack and the flow fields themselves.
 */
import type { SerializedError } from '../errors/serialized-error';

/** A JSON scalar: what a wait's `match` may compare against. */
export type MatchValue = string | number | boolean | null;

/** `null` is the main line; a string is a branch key of the current group. */
export type TrackRef = string | null;

/** `up` runs steps forward; `down` compensates them backward. */
export const Direction = { Up: 'up', Down: 'down' } as const;
export type Direction = (typeof Direction)[keyof typeof Direction];

/** Which handler of a step is (or was last) called. */
export const StepFunc = {
  Run: 'run',
  RunHandleInfo: 'runHandleInfo',
  Rollback: 'rollback',
  RollbackHandleInfo: 'rollbackHandleInfo',
} as const;
export type StepFunc = (typeof StepFunc)[keyof typeof StepFunc];

/** The direction a handler runs in: `run` and `runHandleInfo` go up, the rollbacks down. */
export function directionOf(func: StepFunc): Direction {
  return func === 'run' || func === 'runHandleInfo' ? 'up' : 'down';
}

/**
 * Where an instance is in its life. `completed`, `rolled_back` and `compensation_failed` are final; `blocked` means
 * its definition (its version, or that version's structure) is not the one it started on, so it is not run until
 * that definition is registered again or it is migrated.
 */
export const InstanceStatus = {
  Running: 'running',
  Waiting: 'waiting',
  Completed: 'completed',
  RollingBack: 'rolling_back',
  RolledBack: 'rolled_back',
  CompensationFailed: 'compensation_failed',
  Blocked: 'blocked',
} as const;
export type InstanceStatus = (typeof InstanceStatus)[keyof typeof InstanceStatus];

/** True for `completed`, `rolled_back` and `compensation_failed`. */
export function isFinalStatus(status: InstanceStatus): boolean {
  return status === 'completed' || status === 'rolled_back' || status === 'compensation_failed';
}

/** A persisted wait: what a continued step waits for, with an absolute deadline. */
export interface Wait {
  readonly topics: readonly string[];
  readonly match: Readonly<Record<string, MatchValue>>;
  /** Absolute time (ms since epoch) at which the wait fails with `TIMEOUT`, or null. */
  readonly deadline: number | null;
}

/** A short, persisted summary of the last result a handler produced. */
export interface ResultSummary {
  readonly kind: 'ok' | 'error' | 'continue' | 'goto' | 'retryForward' | 'recover' | 'abort';
  readonly step: string;
  readonly func: StepFunc;
  readonly code?: string;
}

/** One parallel branch as it is kept on the compensation stack after its group succeeded. */
export interface BranchStackEntry {
  readonly name: string;
  readonly key: string;
  /** The branch's own output state; its compensations see this state. */
  readonly state: unknown;
  /** The branch's own compensation stack (steps that started, in start order). */
  readonly stack: readonly StackEntry[];
  /** Order in which the branch settled (0 = first); sequential compensation goes in reverse of it. */
  readonly settledSeq: number;
}

/** What the compensation stack holds: steps that started and groups that ran. */
export type StackEntry =
  | { readonly kind: 'step'; readonly name: string; readonly index: number; readonly pass?: number }
  /** A `when` that ran, and which of its blocks. Going down it is passed over (its block's steps are on the stack after it). */
  | { readonly kind: 'when'; readonly name: string; readonly index: number; readonly branch: 'then' | 'else' }
  | { readonly kind: 'group'; readonly name: string; readonly index: number; readonly branches: readonly BranchStackEntry[] };

/**
 * The flow fields (DESIGN §5): persisted with the state, for the whole instance and for each parallel branch.
 */
export interface FlowFields {
  direction: Direction;
  errorReason: SerializedError | null;
  /** Index of the current node: in the workflow's step list, or in a branch's step sequence. */
  stepIndex: number;
  /** Name of the current step (or group), or null before the first and after the last. */
  stepName: string | null;
  stepFunc: StepFunc;
  lastResult: ResultSummary | null;
  status: InstanceStatus;
  /** Attempt number of the current handler, from 1. */
  attempt: number;
  /** What the current step waits for, when it continued. */
  wait: Wait | null;
  /** Steps and groups that started, in start order. Going down walks it in reverse. */
  stack: StackEntry[];
  /** When a failed call is to be tried again (ms since epoch), while the track is parked for a retry. */
  retryAt: number | null;
  /** The delay (ms) waited before the current attempt, when it is a retry. */
  retryDelay: number | null;
  /** True while a handler call is in flight (intent recorded, result not yet). */
  inFlight: boolean;
}
