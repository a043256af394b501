import type { SagaEvent } from '../bus/event';
import type { SerializedError } from '../errors/serialized-error';
import type { BranchOutcome } from '../parallel/parallel-results';
import type { FlowFields, InstanceStatus, StackEntry, TrackRef } from '../core/flow-fields';

/** The version of the persisted record layout. A record with a higher version is refused, not guessed at. */
export const RECORD_SCHEMA_VERSION = 1;

/** Where a parallel branch is in its life. */
export type BranchPhase =
  | 'pending'
  | 'running'
  | 'succeeded'
  | 'failed'
  | 'aborted'
  | 'queued'
  | 'compensating'
  | 'compensated'
  | 'compensation_failed';

/** The part of a record the step machinery works on: a state and its flow fields. */
export interface Track {
  /**
   * The stored (JSON) state. It is replaced, never changed in place: user code always gets a hydrated copy, so
   * one stored state may be shared (by the branches of a group, say).
   */
  state: unknown;
  flow: TrackFlow;
}

/** Flow fields plus the bookkeeping a track needs to be resumed exactly. */
export interface TrackFlow extends FlowFields {
  /** Incremented at every handler call; a result carrying an older token is stale and ignored. */
  token: number;
  /** True while the current call waits for a rate-limiter slot (it has not been made yet). */
  throttled?: boolean;
  /** Which pass of a loop the current step call belongs to (0, or absent, before any backward jump). */
  pass?: number;
  /** The event a `*HandleInfo` call in flight is handling, so a recovery can call it again. */
  handling: SagaEvent | null;
}

/** A parallel branch while its group runs or is compensated. */
export interface BranchRun extends Track {
  readonly name: string;
  readonly key: string;
  phase: BranchPhase;
  settledSeq: number | null;
  outcome: BranchOutcome | null;
  /**
   * Set while the compensation of the branch's failed step — one that declares rollback controls — decides what
   * follows (recover, retry forward, or let the branch fail with this error).
   */
  pendingFailure?: SerializedError;
}

/** A forEach item that succeeded: `[item index, output state, settle order, its compensation stack]`. */
export type DoneItem = [number, unknown, number, StackEntry[]];

/** What a group does once its branches have settled and the chosen ones are compensated. */
export type GroupPlan =
  | { readonly kind: 'succeed'; readonly state: unknown; readonly gotoIndex: number | null; readonly keep: readonly string[] }
  | { readonly kind: 'fail' }
  | { readonly kind: 'unwind' };

/** A parallel group in progress: every branch's position, state and stack. */
export interface GroupRun {
  readonly name: string;
  readonly index: number;
  /** `up`: branches run; `settling`: no new branch starts, running ones are aborted; `down`: branches are compensated. */
  mode: 'up' | 'settling' | 'down';
  branches: BranchRun[];
  /** Why the group fails, once it does. */
  failure: SerializedError | null;
  nextSeq: number;
  /** The winning branch of a `join: 'any'` group. */
  winner: string | null;
  plan: GroupPlan | null;
  /** A forEach's items, read from the state when it started; a branch (key `i`) is made for item `i` when it starts. */
  items?: unknown[];
  /** How many of a forEach's items have started. */
  nextItem?: number;
  /**
   * A forEach's items that succeeded while the group runs, kept compactly (a 10,000-item group is saved with every
   * transition): `[item index, output state, settle order, stack]`. They become branches again when the group resolves.
   */
  done?: DoneItem[];
  /** Branch keys in the order they are to be compensated (reverse settle order), and how far that went. */
  queue?: string[];
  queueAt?: number;
}

/** Why an instance is blocked: its version is not registered, or that version's structure changed. */
export interface BlockedReason {
  readonly code: 'UNKNOWN_VERSION' | 'DEFINITION_CHANGED';
  readonly message: string;
  /** The fingerprint the instance started with (absent for records written before versions). */
  readonly fingerprint: string | null;
  /** The fingerprint of the registered definition of its version, or null when that version is not registered. */
  readonly registered: string | null;
  /** The status it had when it was blocked. */
  readonly status: InstanceStatus;
  /** When it was blocked (ms since epoch). */
  readonly since: number;
}

/** The version a record runs on: 1 for records written before versions. */
export function versionOf(record: Pick<InstanceRecord, 'workflowVersion'>): number {
  return record.workflowVersion ?? 1;
}

/** A compensation that failed. */
export interface CompensationFailure {
  readonly step: string;
  readonly branch?: string;
  readonly error: SerializedError;
}

/** One instance, as the store keeps it: plain, versioned JSON. */
export interface InstanceRecord extends Track {
  readonly schemaVersion: number;
  readonly id: string;
  readonly workflow: string;
  group: GroupRun | null;
  /** A rollback asked for while a handler was in flight; applied when it settles. */
  rollbackRequested: SerializedError | null;
  /** Compensations that failed and were neither retried successfully nor skipped. */
  compensationFailures: CompensationFailure[];
  /** The whole-workflow deadline (ms since epoch), or null. */
  deadline: number | null;
  /** Backward jumps taken per node (goto with `allowLoop`). */
  loops?: Record<string, number>;
  /** Backward jumps taken in all: the loop pass the steps now starting belong to. */
  pass?: number;
  /** The instance that started this one as a child, if any. */
  parent?: string;
  /** The version of the definition it runs on; absent in records written before versions (read as 1). */
  workflowVersion?: number;
  /** That definition's structural fingerprint when it started; absent in records written before versions. */
  fingerprint?: string;
  /** Set while the instance is `blocked`: why, and the status it had (restored when it is unblocked). */
  blocked?: BlockedReason;
  /**
   * Set while it goes down because something failed (not because a rollback was asked from outside): the main-line
   * step that failed, if one did. Only then may compensations send it forward again (`retryForward`, `recover`).
   */
  failure?: { readonly step: string | null; readonly pass?: number };
  /** The `retryForward`s taken, per step. */
  forwardRetries?: Record<string, number>;
  /** True once a compensation returned `abort`: no `retryForward` restarts it any more. */
  forwardAborted?: boolean;
  /** Optimistic-concurrency version, incremented by every save. */
  version: number;
  readonly createdAt: number;
  updatedAt: number;
}

/** Flow fields of a track that has not started. */
export function freshFlow(): TrackFlow {
  return {
    direction: 'up',
    errorReason: null,
    stepIndex: 0,
    stepName: null,
    stepFunc: 'run',
    lastResult: null,
    status: 'running',
    attempt: 1,
    wait: null,
    retryAt: null,
    retryDelay: null,
    stack: [],
    inFlight: false,
    token: 0,
    handling: null,
  };
}

/** A new record for an instance that has not run its first step yet. */
export function newRecord(
  id: string,
  workflow: string,
  state: unknown,
  now: number,
  deadline: number | null = null,
  definition?: { readonly version: number; readonly fingerprint: string },
): InstanceRecord {
  return {
    schemaVersion: RECORD_SCHEMA_VERSION,
    id,
    workflow,
    ...(definition === undefined ? {} : { workflowVersion: definition.version, fingerprint: definition.fingerprint }),
    state,
    flow: freshFlow(),
    group: null,
    rollbackRequested: null,
    compensationFailures: [],
    deadline,
    version: 0,
    createdAt: now,
    updatedAt: now,
  };
}

export type { TrackRef };

/** The branch of a group with this key. A forEach's keys are item indexes, so `branches[key]` is tried first. */
export function findBranch(g: GroupRun, key: string): BranchRun | undefined {
  const hit = g.branches[Number(key)];
  return hit?.key === key ? hit : g.branches.find((b) => b.key === key);
}

/** The track a ref points at, if it exists now. */
export function trackOf(record: InstanceRecord, ref: TrackRef): Track | undefined {
  if (ref === null) return record;
  return record.group === null ? undefined : findBranch(record.group, ref);
}
