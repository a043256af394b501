import type { SagaEvent } from '../bus/event';
import type { WaiterRef } from '../bus/wait-index';
import type { InstanceStatus } from '../engine/flow-fields';
import type { InstanceRecord, TrackRef } from '../engine/instance-record';

/** Which instances {@link InstanceStore.list} returns. */
export interface InstanceFilter {
  /** Only these statuses. */
  readonly status?: InstanceStatus | readonly InstanceStatus[];
  /** Only this workflow. */
  readonly workflow?: string;
  /** Only instances updated at or after this time (ms since epoch). */
  readonly since?: number;
  /** At most this many, newest update first. @default 1000 */
  readonly limit?: number;
}

/** A line of {@link InstanceStore.list}. */
export interface InstanceSummary {
  readonly id: string;
  readonly workflow: string;
  readonly status: InstanceStatus;
  readonly createdAt: number;
  readonly updatedAt: number;
}

/** A wait whose deadline has passed. */
export interface DueWait {
  readonly instanceId: string;
  readonly track: TrackRef;
  readonly deadline: number;
}

/**
 * Where instances live. Every implementation passes the same contract suite (tests/store-contract.ts).
 * Records are plain JSON; a store never hands out an object it keeps (callers may mutate what they get).
 */
export interface InstanceStore {
  /** Stores a new record (its `version` must be 0; it is stored as 1). Resolves false when the id exists. */
  create(record: InstanceRecord): Promise<boolean>;
  /** A copy of the stored record, or undefined. @throws CorruptRecordError when it cannot be read. */
  load(id: string): Promise<InstanceRecord | undefined>;
  /**
   * Saves a transition atomically when the stored version still equals `record.version`, and resolves to the
   * new version (stored version + 1). @throws VersionConflictError otherwise.
   */
  save(record: InstanceRecord): Promise<number>;
  /** The waiting tracks whose waits match `event`, found through an index (never a scan of all waits). */
  findWaiting(event: SagaEvent): Promise<WaiterRef[]>;
  /** Waits whose deadline is at or before `now`, earliest first. */
  dueWaits(now: number, limit: number): Promise<DueWait[]>;
  /** Ids of instances that are not final: what a restarted runtime must resume. */
  unfinished(): Promise<string[]>;
  /** Summaries matching `filter`. */
  list(filter?: InstanceFilter): Promise<InstanceSummary[]>;
  /** Releases resources; the store is unusable afterwards. */
  close(): Promise<void>;
}
