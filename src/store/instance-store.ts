import type { SagaEvent } from '../bus/event';
import type { WaiterRef } from '../bus/wait-index';
import type { InstanceStatus, Wait } from '../core/flow-fields';
import type { HistoryEntry } from '../engine/history-entry';
import type { InstanceRecord, TrackRef } from '../engine/instance-record';
import type { WorkflowOutline } from '../workflow/workflow-outline';
import type { OperatorRequest, OperatorRequestInput } from './operator-request';
import type { SerializedError } from '../errors/serialized-error';
import type { ResolvedRateLimit } from '../policies/rate-limiter';

/** The `retainUntil` of an event kept for the instance it was published to: it does not expire. */
export const KEEP_FOR_INSTANCE = Number.MAX_SAFE_INTEGER;

/** Which instances {@link InstanceStore.list} returns. */
export interface InstanceFilter {
  /** Only these statuses. */
  readonly status?: InstanceStatus | readonly InstanceStatus[];
  /** Only this workflow. */
  readonly workflow?: string;
  /** Only instances running on this version of their workflow. */
  readonly version?: number;
  /** Only instances updated at or after this time (ms since epoch). */
  readonly since?: number;
  /** At most this many, newest update first. @default 1000 */
  readonly limit?: number;
}

/** A line of {@link InstanceStore.list}. */
export interface InstanceSummary {
  readonly id: string;
  readonly workflow: string;
  /** The version of the definition it runs on. */
  readonly version: number;
  readonly status: InstanceStatus;
  readonly createdAt: number;
  readonly updatedAt: number;
}

/**
 * A definition a worker can run: instances of that workflow and version — whose recorded fingerprint is this one, or
 * who have none (written before versions) — are the worker's to take.
 */
export interface RunnableDefinition {
  readonly workflow: string;
  readonly version: number;
  readonly fingerprint: string;
}

/** A wait (or a retry) whose deadline has passed. */
export interface DueWait {
  readonly instanceId: string;
  readonly track: TrackRef;
  readonly deadline: number;
}

/** An event accepted for a waiting track and not yet consumed by it. */
export interface PendingEvent {
  readonly event: SagaEvent;
  readonly track: TrackRef;
}

/** A definition's outline as a runtime stored it ({@link InstanceStore.saveOutline}). */
export interface StoredOutline {
  readonly outline: WorkflowOutline;
  /** When a runtime first registered it (ms since epoch). */
  readonly registeredAt: number;
}

/** Which finished instances {@link InstanceStore.purge} deletes. */
export interface PurgeOptions {
  /** Only instances last updated before this time (ms since epoch). */
  readonly before: number;
  /** Only these statuses: finished ones (`completed`, `rolled_back`, `compensation_failed`). */
  readonly statuses: readonly InstanceStatus[];
  /** At most this many, oldest update first. */
  readonly limit: number;
  /** Only say which would go. @default false */
  readonly dryRun?: boolean;
}

/** A waiting track that an event matches, with its instance's stored record ({@link InstanceStore.findWaitingRecords}). */
export interface WaitingRecord extends WaiterRef {
  /**
   * The record as {@link InstanceStore.load} reads it, or `'leased'` as {@link InstanceStore.loadUnleased} answers;
   * absent when it could not be read (loading it gives the error).
   */
  readonly record?: InstanceRecord | 'leased';
}

/** What a transition writes besides the record, in the same transaction. */
export interface TransitionWrites {
  /** History lines to append. */
  readonly history?: readonly HistoryEntry[];
  /** Inbox deliveries this transition consumed (so they are handled exactly once). */
  readonly consumed?: readonly { readonly eventId: string; readonly track: TrackRef }[];
  /** Operator requests this transition applied: marked done in the same write (at the record's `updatedAt`). */
  readonly requestsDone?: readonly string[];
  /**
   * Take (or renew) the instance's lease in the same write (shared stores). With `ifFreeAt`, only when no other
   * owner holds a lease unexpired at that time: otherwise nothing is written and the save or create fails with
   * `LeasedElsewhereError`. A worker that read an instance without leasing it takes the lease so, with its first
   * transition: one commit where a lease and then a transition took two.
   */
  readonly lease?: { readonly owner: string; readonly until: number; readonly ifFreeAt?: number };
}

/**
 * Where instances live. Every implementation passes the same contract suite (tests/support/store-contract.ts).
 * Records are plain JSON; a store never hands out an object it keeps (callers may mutate what they get).
 */
export interface InstanceStore {
  /**
   * True when several runtime processes may use the store at once (PostgreSQL): runtimes then lease instances
   * before running them, poll for due timers and stale instances, and hand events to each other through the inbox.
   * @default false
   */
  readonly shared?: boolean;
  /**
   * True when other processes may open the store too (an SQLite file): the runtime then polls it for the operator
   * requests they write (the `sagaflow` CLI, the inspector). A shared store is polled anyway. @default false
   */
  readonly multiProcess?: boolean;
  /** Prepares the store (connects, runs migrations); the runtime awaits it before first use. */
  init?(): Promise<void>;
  /** Ids of instances with inbox deliveries not yet consumed (at most `limit`), only of `runnable` ones when given. */
  inboxInstances?(limit: number, runnable?: readonly RunnableDefinition[]): Promise<string[]>;
  /** Calls `listener` when an inbox delivery for some instance is stored (LISTEN/NOTIFY); returns an unsubscribe. */
  onInbox?(listener: (instanceId: string) => void): () => void;
  /** Stores a new record (its `version` must be 0; it is stored as 1). Resolves false when the id exists. */
  create(record: InstanceRecord, writes?: TransitionWrites): Promise<boolean>;
  /** A copy of the stored record, or undefined. @throws CorruptRecordError when it cannot be read. */
  load(id: string): Promise<InstanceRecord | undefined>;
  /**
   * Like {@link load}, in the same read: `'leased'` instead of the record when an owner other than `owner` holds a
   * lease on it unexpired at `now` (shared stores). A worker then runs it without taking the lease first: its first
   * save takes it (see {@link TransitionWrites.lease}).
   */
  loadUnleased?(id: string, owner: string, now: number): Promise<InstanceRecord | 'leased' | undefined>;
  /**
   * Saves a transition atomically (the record, its history lines, the inbox deliveries it consumed) when the
   * stored version still equals `record.version`, and resolves to the new version.
   * @throws VersionConflictError otherwise.
   */
  save(record: InstanceRecord, writes?: TransitionWrites): Promise<number>;
  /** The history of an instance, oldest first. */
  history(id: string): Promise<HistoryEntry[]>;
  /** The waiting tracks whose waits match `event`, found through an index (never a scan of all waits). */
  findWaiting(event: SagaEvent): Promise<WaiterRef[]>;
  /**
   * Like {@link findWaiting}, with each waiting instance's record read in the same query: as {@link load} reads it,
   * or, with `lease`, as {@link loadUnleased} does for that owner at that time. A runtime then applies the event to
   * an instance it does not hold in memory without reading it again.
   */
  findWaitingRecords?(event: SagaEvent, lease?: { readonly owner: string; readonly now: number }): Promise<WaitingRecord[]>;
  /**
   * Stores an accepted event: one inbox delivery per waiting track it matched, or, when it matched none and
   * `retainUntil` is set, a retained event that a wait beginning before then may take. An event published to one
   * instance (`event.instanceId`) is kept for it with `retainUntil` {@link KEEP_FOR_INSTANCE}: it never expires, and
   * {@link InstanceStore.dropEvents} removes it when the instance ends.
   */
  acceptEvent(event: SagaEvent, deliveries: readonly WaiterRef[], retainUntil: number | null): Promise<void>;
  /**
   * Removes up to `limit` retained events whose `retainUntil` passed before `now` (never ones kept for an instance)
   * and returns them, oldest first: the runtime reports each as dropped.
   */
  expireRetained(now: number, limit: number): Promise<SagaEvent[]>;
  /**
   * Removes what is still kept for an instance that ended — events published to it that no wait took, and inbox
   * deliveries not consumed — and returns those events: the runtime reports them as never consumed.
   */
  dropEvents(instanceId: string): Promise<SagaEvent[]>;
  /** Deliveries accepted for an instance and not yet consumed, oldest first (for recovery). */
  pendingEvents(instanceId: string): Promise<PendingEvent[]>;
  /** Removes and returns the oldest retained event (not expired at `now`) that `wait` of `instanceId` matches. */
  takeRetained(instanceId: string, wait: Wait, now: number): Promise<SagaEvent | undefined>;
  /**
   * Like {@link takeRetained}, but moves the event into the instance's inbox (as a delivery to `track`) in the same
   * transaction, so a crash before it is applied cannot lose it: the inbox keeps it until a transition consumes it.
   */
  moveRetainedToInbox(instanceId: string, track: TrackRef, wait: Wait, now: number): Promise<SagaEvent | undefined>;
  /**
   * Retained events not expired at `now` (those kept for an instance included), newest first (at most `limit`):
   * a worker checks them against waits whose own check may never have run.
   */
  retainedEvents(now: number, limit: number): Promise<SagaEvent[]>;
  /** Waits and retries whose time is at or before `now`, earliest first; only of `runnable` instances when given. */
  dueWaits(now: number, limit: number, runnable?: readonly RunnableDefinition[]): Promise<DueWait[]>;
  /** Ids of instances that are not final: what a restarted runtime must resume. */
  unfinished(): Promise<string[]>;
  /** Summaries matching `filter`. */
  list(filter?: InstanceFilter): Promise<InstanceSummary[]>;
  /**
   * Takes (or renews) the lease of an instance for `owner` until `until`, when no other owner holds an
   * unexpired one. Resolves whether `owner` holds it now.
   */
  acquire(id: string, owner: string, until: number, now: number): Promise<boolean>;
  /** Gives a lease back (no-op when `owner` does not hold it). */
  release(id: string, owner: string): Promise<void>;
  /**
   * Claims up to `limit` unfinished instances that have work to do (not parked on a wait or retry; a `blocked` one
   * always has) and whose lease is free or expired, for `owner` until `until` — only `runnable` ones when given —
   * and resolves their ids. Two workers never claim the same one.
   */
  claimStale(owner: string, until: number, now: number, limit: number, runnable?: readonly RunnableDefinition[]): Promise<string[]>;
  /** Records that worker `workerId` is alive at `now` and runs these definitions (shared stores). */
  heartbeat?(workerId: string, runs: readonly RunnableDefinition[], now: number): Promise<void>;
  /**
   * Books a call slot of a rate limiter shared by every worker on the store (shared stores): resolves to `now` when
   * the call may go at once, or to the booked time at which caller `key` asks again (and then takes its booking).
   */
  reserveSlot?(limiter: string, spec: ResolvedRateLimit, key: string, now: number): Promise<number>;
  /** The definitions that some worker whose last heartbeat was at or after `since` runs. */
  liveRunners?(since: number): Promise<RunnableDefinition[]>;
  /** Forgets a worker's heartbeat (it is stopping). */
  retire?(workerId: string): Promise<void>;
  /** Up to `limit` ids of unfinished instances, not yet blocked, of definitions none of `runnable` is. */
  orphans?(runnable: readonly RunnableDefinition[], limit: number): Promise<string[]>;
  /**
   * The last tick (ms since epoch) the cron schedule `name` fired, or undefined when it never ran. Runtimes use it
   * to know which ticks passed while no process ran the schedule. A store without it keeps no schedule ticks:
   * a schedule then starts afresh in every process, without catching up missed ticks.
   */
  scheduleTick?(name: string): Promise<number | undefined>;
  /**
   * Records `tick` as the last tick of schedule `name` when the stored one still equals `expectedPrevious`
   * (undefined: no tick is stored yet), at clock time `now`; resolves whether it did. A compare-and-set, so
   * that several workers agree on each tick.
   */
  advanceSchedule?(name: string, expectedPrevious: number | undefined, tick: number, now: number): Promise<boolean>;
  /**
   * Stores the outline of a registered definition (once per workflow, version and fingerprint) so that tools without
   * the workflow's code (the `sagaflow` CLI, the inspector) can draw it. Resolves true when it was not stored yet.
   */
  saveOutline?(outline: WorkflowOutline, registeredAt: number): Promise<boolean>;
  /** The stored outlines (of one workflow when given), newest registration first. */
  outlines?(workflow?: string): Promise<StoredOutline[]>;
  /**
   * Deletes finished instances matching `options` with their history, inbox, waits and kept events, in one
   * transaction, and resolves their ids (with `dryRun`, deletes nothing and resolves the ids that would go).
   * @throws OperatingError `NOT_PURGEABLE` for a status that is not finished; InvalidArgumentError for a bad limit or time
   */
  purge?(options: PurgeOptions): Promise<string[]>;
  /**
   * Writes an operator request in one transaction, after checking that it applies to the instance as stored.
   * @throws UnknownInstanceError; SagaflowError `INSTANCE_FINISHED`; InvalidOperationError `INVALID_OPERATION`; InvalidArgumentError
   */
  request?(input: OperatorRequestInput, id: string, now: number): Promise<OperatorRequest>;
  /** A stored request, or undefined. */
  requestById?(id: string): Promise<OperatorRequest | undefined>;
  /** The pending requests of an instance, oldest first. */
  pendingRequests?(instanceId: string): Promise<OperatorRequest[]>;
  /** Ids of instances with pending requests (at most `limit`, oldest request first), only of `runnable` ones when given. */
  requestInstances?(limit: number, runnable?: readonly RunnableDefinition[]): Promise<string[]>;
  /** Marks a pending request done, or failed with `error`. */
  finishRequest?(id: string, error: SerializedError | null, now: number): Promise<void>;
  /** Releases resources; the store is unusable afterwards. */
  close(): Promise<void>;
}
