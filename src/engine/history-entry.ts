import type { Direction, InstanceStatus, StepFunc } from '../core/flow-fields';
import type { StateChangeOp } from './state-change';

/** What a history line records. */
export type HistoryKind =
  | 'started'
  | 'step-started'
  | 'step-result'
  | 'event'
  | 'timeout'
  | 'retry-scheduled'
  | 'rollback-requested'
  | 'resumed'
  | 'finished'
  | 'operator'
  /** A rate-limited call was parked until its slot; the note says until when and which limiter. */
  | 'throttled'
  /** A `when` chose a block; the outcome is `then` or `else`, the step the when's name. */
  | 'branch-taken'
  /** A parent asked a (possibly completed) child to roll back. */
  | 'undo-requested'
  /** The instance's definition is not registered as it started (its version, or that version's structure): it waits. */
  | 'blocked'
  /** Its definition is registered again: it goes on where it was. */
  | 'unblocked'
  /** An operator moved it to another version of its workflow (`runtime.migrate`). */
  | 'migrated'
  /** A compensation decided what follows: the outcome is `retryForward`, `recover`, `abort` or `ignored`. */
  | 'control';

/** One line of an instance's history: appended with every transition, never rewritten. */
export interface HistoryEntry {
  /** When it happened (ms since epoch, from the runtime's clock). */
  readonly at: number;
  readonly kind: HistoryKind;
  /** The step (or group) it is about, if any. */
  readonly step: string | null;
  readonly group?: string;
  readonly branch?: string;
  readonly direction: Direction;
  readonly func: StepFunc | null;
  readonly attempt: number;
  /** The result kind (`ok`, `error`, `continue`, `goto`), the event topic, or the operator action. */
  readonly outcome?: string;
  /** The error code, when there is one. */
  readonly code?: string;
  /** The instance status after this transition. */
  readonly status: InstanceStatus;
  /** Free text: who did it and why (operator actions), or the delay of a scheduled retry. */
  readonly note?: string;
  /**
   * With a `HistoryObserver` registered: the JSON Patch (RFC 6902) from the state the step received to the one it
   * returned. Absent when nothing changed.
   */
  readonly stateChange?: readonly StateChangeOp[];
}
