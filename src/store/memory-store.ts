import type { SagaEvent } from '../bus/event';
import { RetainedEvents } from '../bus/retained-events';
import { WaitIndex, type WaiterRef } from '../bus/wait-index';
import { LeasedElsewhereError, VersionConflictError } from '../errors/runtime-errors';
import { isFinalStatus, type Wait } from '../core/flow-fields';
import type { HistoryEntry } from '../engine/history-entry';
import { HistoryLog, historyLogOf, TAKES_HISTORY_LOG } from '../engine/history-log';
import { versionOf, type InstanceRecord, type TrackRef } from '../engine/instance-record';
import { deadlinesOf, decodeRecord, encodeRecord, isParked, waitsOf } from './record-codec';
import { snapshotRecord } from './record-copy';
import { copyJson } from '../core/safe-json';
import { checkFilter, isRunnable } from './instance-filter';
import { checkPurge } from './purge-options';
import { checkRequestApplies, checkRequestInput, type OperatorRequest, type OperatorRequestInput } from './operator-request';
import type { SerializedError } from '../errors/serialized-error';
import type { WorkflowOutline } from '../workflow/workflow-outline';
import { RateLimiter, type ResolvedRateLimit } from '../policies/rate-limiter';
import { KEEP_FOR_INSTANCE, type PurgeOptions, type StoredOutline, type RunnableDefinition, type DueWait, type InstanceFilter, type InstanceStore, type InstanceSummary, type PendingEvent, type TransitionWrites } from './instance-store';

interface Row {
  /**
   * The record as saved: a snapshot no caller holds (see {@link snapshotRecord}), handed out as copies. (Keeping an
   * ended instance's record as JSON text instead measured no smaller and slower: 200,000 sagas held 729 MB either way.)
   */
  record: InstanceRecord;
  version: number;
  summary: InstanceSummary;
  /** The fingerprint the record carries (null: written before versions). */
  fingerprint: string | null;
  tracks: readonly TrackRef[];
  deadlines: readonly DueWait[];
  parked: boolean;
  /** Kept packed; built into lines when someone reads it. */
  history: HistoryLog;
  inbox: PendingEvent[];
  lease: { owner: string; until: number } | null;
}

/** The empty tracks and deadlines of a row (most rows: every finished one), shared; rows replace these lists, never change them. */
const NONE: readonly never[] = Object.freeze([]);

/** Whether an owner other than `owner` holds a lease on the row unexpired at `now`. */
function leasedByOther(row: Row, owner: string, now: number): boolean {
  return row.lease !== null && row.lease.owner !== owner && row.lease.until > now;
}

/**
 * Keeps instances in memory, as record objects copied when they are saved and again when they are read (so nothing
 * a caller holds aliases a stored record, and no JSON text is made on the way), with the same
 * wait index, history, inbox and leases a durable store keeps. For tests and embedded use where a restart may
 * forget everything.
 *
 * @example
 * const store = new MemoryStore();
 * const runtime = new SagaRuntime({ store });
 */
export class MemoryStore implements InstanceStore {
  /** True when created with `{ shared: true }`: several runtimes in one process share it as workers share a database. */
  readonly shared: boolean;
  /** History lines come packed from the engine and are built only when {@link history} reads them. */
  readonly [TAKES_HISTORY_LOG]: boolean = true;
  private readonly rows = new Map<string, Row>();
  private readonly inboxListeners = new Set<(instanceId: string) => void>();

  constructor(options: { readonly shared?: boolean } = {}) {
    this.shared = options.shared ?? false;
  }
  private readonly waits = new WaitIndex();
  private readonly retained = new RetainedEvents(Number.POSITIVE_INFINITY);
  private readonly retainedUntil = new Map<string, number>();
  private readonly scheduleTicks = new Map<string, { tick: number; updatedAt: number }>();
  /** The rate limiters its workers share, by name. */
  private readonly limiters = new Map<string, RateLimiter>();
  private readonly workers = new Map<string, { runs: RunnableDefinition[]; seenAt: number }>();
  private readonly storedOutlines = new Map<string, StoredOutline>();
  private readonly requests = new Map<string, OperatorRequest>();

  create(record: InstanceRecord, writes: TransitionWrites = {}): Promise<boolean> {
    if (this.rows.has(record.id)) return Promise.resolve(false);
    this.write(record, writes, 1);
    return Promise.resolve(true);
  }

  load(id: string): Promise<InstanceRecord | undefined> {
    const row = this.rows.get(id);
    return Promise.resolve(row === undefined ? undefined : copyJson(row.record));
  }

  loadUnleased(id: string, owner: string, now: number): Promise<InstanceRecord | 'leased' | undefined> {
    const row = this.rows.get(id);
    if (row !== undefined && leasedByOther(row, owner, now)) return Promise.resolve('leased');
    return this.load(id);
  }

  save(record: InstanceRecord, writes: TransitionWrites = {}): Promise<number> {
    const row = this.rows.get(record.id);
    if (row === undefined || row.version !== record.version) {
      return Promise.reject(new VersionConflictError(record.id, record.version, row?.version));
    }
    const lease = writes.lease;
    if (lease?.ifFreeAt !== undefined && leasedByOther(row, lease.owner, lease.ifFreeAt)) return Promise.reject(new LeasedElsewhereError(record.id));
    const version = record.version + 1;
    this.write(record, writes, version);
    return Promise.resolve(version);
  }

  history(id: string): Promise<HistoryEntry[]> {
    return Promise.resolve(this.rows.get(id)?.history.entries() ?? []);
  }

  findWaiting(event: SagaEvent): Promise<WaiterRef[]> {
    return Promise.resolve(this.waits.find(event));
  }

  acceptEvent(event: SagaEvent, deliveries: readonly WaiterRef[], retainUntil: number | null): Promise<void> {
    for (const d of deliveries) this.rows.get(d.instanceId)?.inbox.push({ event: structuredClone(event), track: d.track });
    for (const d of deliveries) for (const listener of this.inboxListeners) listener(d.instanceId);
    if (deliveries.length === 0 && retainUntil !== null) {
      this.retained.add(structuredClone(event), event.publishedAt);
      this.retainedUntil.set(event.id, retainUntil);
    }
    return Promise.resolve();
  }

  inboxInstances(limit: number, runnable?: readonly RunnableDefinition[]): Promise<string[]> {
    const ids: string[] = [];
    for (const row of this.rows.values()) if (row.inbox.length > 0 && ids.length < limit && this.runs(row, runnable)) ids.push(row.summary.id);
    return Promise.resolve(ids);
  }

  onInbox(listener: (instanceId: string) => void): () => void {
    this.inboxListeners.add(listener);
    return () => this.inboxListeners.delete(listener);
  }

  pendingEvents(instanceId: string): Promise<PendingEvent[]> {
    return Promise.resolve(structuredClone(this.rows.get(instanceId)?.inbox ?? []));
  }

  takeRetained(instanceId: string, wait: Wait, now: number): Promise<SagaEvent | undefined> {
    for (;;) {
      const event = this.retained.take(instanceId, wait, now);
      if (event === undefined) return Promise.resolve(undefined);
      const until = this.retainedUntil.get(event.id);
      this.retainedUntil.delete(event.id);
      if (until !== undefined && until >= now) return Promise.resolve(event);
    }
  }

  async moveRetainedToInbox(instanceId: string, track: TrackRef, wait: Wait, now: number): Promise<SagaEvent | undefined> {
    const row = this.rows.get(instanceId);
    if (row === undefined) return undefined;
    const event = await this.takeRetained(instanceId, wait, now);
    if (event !== undefined) {
      row.inbox.push({ event: structuredClone(event), track });
      for (const listener of this.inboxListeners) listener(instanceId);
    }
    return event;
  }

  retainedEvents(now: number, limit: number): Promise<SagaEvent[]> {
    const live = this.retained.all().filter((e) => (this.retainedUntil.get(e.id) ?? -1) >= now);
    return Promise.resolve(structuredClone(live.reverse().slice(0, limit)));
  }

  expireRetained(now: number, limit: number): Promise<SagaEvent[]> {
    let left = Math.max(0, Math.floor(limit));
    const expired = this.retained.removeWhere((e) => left > 0 && (this.retainedUntil.get(e.id) ?? -1) < now && left-- > 0);
    for (const e of expired) this.retainedUntil.delete(e.id);
    return Promise.resolve(expired.sort((a, b) => a.publishedAt - b.publishedAt));
  }

  dropEvents(instanceId: string): Promise<SagaEvent[]> {
    const kept = this.retained.removeWhere((e) => e.instanceId === instanceId && this.retainedUntil.get(e.id) === KEEP_FOR_INSTANCE);
    for (const e of kept) this.retainedUntil.delete(e.id);
    const row = this.rows.get(instanceId);
    const pending = row?.inbox.map((p) => p.event) ?? [];
    if (row !== undefined && row.inbox.length > 0) row.inbox = [];
    return Promise.resolve([...kept, ...pending]);
  }

  dueWaits(now: number, limit: number, runnable?: readonly RunnableDefinition[]): Promise<DueWait[]> {
    const due: DueWait[] = [];
    for (const row of this.rows.values()) if (this.runs(row, runnable)) for (const d of row.deadlines) if (d.deadline <= now) due.push(d);
    due.sort((a, b) => a.deadline - b.deadline);
    return Promise.resolve(due.slice(0, limit));
  }

  unfinished(): Promise<string[]> {
    return Promise.resolve([...this.rows.values()].filter((r) => !isFinalStatus(r.summary.status)).map((r) => r.summary.id));
  }

  list(filter?: InstanceFilter): Promise<InstanceSummary[]> {
    try {
      filter = checkFilter(filter);
    } catch (error) {
      return Promise.reject(error instanceof Error ? error : new Error(String(error)));
    }
    const statuses = filter.status === undefined ? undefined : new Set(typeof filter.status === 'string' ? [filter.status] : filter.status);
    const out = [...this.rows.values()]
      .map((r) => r.summary)
      .filter(
        (s) =>
          (statuses === undefined || statuses.has(s.status)) &&
          (filter.workflow === undefined || s.workflow === filter.workflow) &&
          (filter.version === undefined || s.version === filter.version) &&
          (filter.since === undefined || s.updatedAt >= filter.since),
      )
      .sort((a, b) => b.updatedAt - a.updatedAt);
    return Promise.resolve(out.slice(0, filter.limit));
  }

  acquire(id: string, owner: string, until: number, now: number): Promise<boolean> {
    const row = this.rows.get(id);
    if (row === undefined) return Promise.resolve(false);
    if (leasedByOther(row, owner, now)) return Promise.resolve(false);
    row.lease = { owner, until };
    return Promise.resolve(true);
  }

  release(id: string, owner: string): Promise<void> {
    const row = this.rows.get(id);
    if (row?.lease?.owner === owner) row.lease = null;
    return Promise.resolve();
  }

  claimStale(owner: string, until: number, now: number, limit: number, runnable?: readonly RunnableDefinition[]): Promise<string[]> {
    const claimed: string[] = [];
    for (const row of this.rows.values()) {
      if (claimed.length >= limit) break;
      if (isFinalStatus(row.summary.status) || row.parked || !this.runs(row, runnable)) continue;
      if (row.lease !== null && row.lease.until > now) continue;
      row.lease = { owner, until };
      claimed.push(row.summary.id);
    }
    return Promise.resolve(claimed);
  }

  heartbeat(workerId: string, runs: readonly RunnableDefinition[], now: number): Promise<void> {
    this.workers.set(workerId, { runs: structuredClone([...runs]), seenAt: now });
    return Promise.resolve();
  }

  reserveSlot(limiter: string, spec: ResolvedRateLimit, key: string, now: number): Promise<number> {
    let shared = this.limiters.get(limiter);
    if (shared === undefined) this.limiters.set(limiter, (shared = new RateLimiter(limiter, spec)));
    return Promise.resolve(shared.reserve(key, now));
  }

  liveRunners(since: number): Promise<RunnableDefinition[]> {
    return Promise.resolve([...this.workers.values()].filter((w) => w.seenAt >= since).flatMap((w) => structuredClone(w.runs)));
  }

  orphans(runnable: readonly RunnableDefinition[], limit: number): Promise<string[]> {
    const ids: string[] = [];
    for (const row of this.rows.values()) {
      if (ids.length >= limit) break;
      const s = row.summary.status;
      if (!isFinalStatus(s) && s !== 'blocked' && !this.runs(row, runnable)) ids.push(row.summary.id);
    }
    return Promise.resolve(ids);
  }

  retire(workerId: string): Promise<void> {
    this.workers.delete(workerId);
    return Promise.resolve();
  }

  /** Whether the row's instance is one of `runnable` (any when not given). */
  private runs(row: Row, runnable: readonly RunnableDefinition[] | undefined): boolean {
    return runnable === undefined || isRunnable(runnable, row.summary.workflow, row.summary.version, row.fingerprint);
  }

  scheduleTick(name: string): Promise<number | undefined> {
    return Promise.resolve(this.scheduleTicks.get(name)?.tick);
  }

  advanceSchedule(name: string, expectedPrevious: number | undefined, tick: number, now: number): Promise<boolean> {
    if (this.scheduleTicks.get(name)?.tick !== expectedPrevious) return Promise.resolve(false);
    this.scheduleTicks.set(name, { tick, updatedAt: now });
    return Promise.resolve(true);
  }

  saveOutline(outline: WorkflowOutline, registeredAt: number): Promise<boolean> {
    const key = JSON.stringify([outline.name, outline.version, outline.fingerprint]);
    if (this.storedOutlines.has(key)) return Promise.resolve(false);
    this.storedOutlines.set(key, { outline: structuredClone(outline), registeredAt });
    return Promise.resolve(true);
  }

  outlines(workflow?: string): Promise<StoredOutline[]> {
    const all = [...this.storedOutlines.values()].filter((o) => workflow === undefined || o.outline.name === workflow);
    return Promise.resolve(structuredClone(all.reverse().sort((a, b) => b.registeredAt - a.registeredAt)));
  }

  purge(options: PurgeOptions): Promise<string[]> {
    try {
      checkPurge(options);
    } catch (error) {
      return Promise.reject(error instanceof Error ? error : new Error(String(error)));
    }
    const ids = [...this.rows.values()]
      .map((r) => r.summary)
      .filter((s) => options.statuses.includes(s.status) && s.updatedAt < options.before)
      .sort((a, b) => a.updatedAt - b.updatedAt || (a.id < b.id ? -1 : 1))
      .slice(0, options.limit)
      .map((s) => s.id);
    if (options.dryRun !== true) {
      for (const id of ids) {
        const row = this.rows.get(id) as Row;
        this.waits.removeInstance(id, row.tracks);
        this.rows.delete(id);
        for (const [key, r] of this.requests) if (r.instanceId === id) this.requests.delete(key);
        for (const e of this.retained.removeWhere((event) => event.instanceId === id)) this.retainedUntil.delete(e.id);
      }
    }
    return Promise.resolve(ids);
  }

  async request(input: OperatorRequestInput, id: string, now: number): Promise<OperatorRequest> {
    checkRequestInput(input);
    checkRequestApplies(input, await this.load(input.instanceId));
    const request: OperatorRequest = { id, ...input, requestedAt: now, state: 'pending' };
    this.requests.set(id, request);
    return structuredClone(request);
  }

  requestById(id: string): Promise<OperatorRequest | undefined> {
    const found = this.requests.get(id);
    return Promise.resolve(found === undefined ? undefined : structuredClone(found));
  }

  pendingRequests(instanceId: string): Promise<OperatorRequest[]> {
    return Promise.resolve(structuredClone([...this.requests.values()].filter((r) => r.instanceId === instanceId && r.state === 'pending')));
  }

  requestInstances(limit: number, runnable?: readonly RunnableDefinition[]): Promise<string[]> {
    const ids = new Set<string>();
    for (const r of this.requests.values()) {
      const row = this.rows.get(r.instanceId);
      if (r.state === 'pending' && row !== undefined && ids.size < limit && this.runs(row, runnable)) ids.add(r.instanceId);
    }
    return Promise.resolve([...ids]);
  }

  finishRequest(id: string, error: SerializedError | null, now: number): Promise<void> {
    const found = this.requests.get(id);
    if (found?.state === 'pending') this.requests.set(id, { ...found, state: error === null ? 'done' : 'failed', ...(error === null ? {} : { error }), doneAt: now });
    return Promise.resolve();
  }

  close(): Promise<void> {
    this.rows.clear();
    this.scheduleTicks.clear();
    this.workers.clear();
    return Promise.resolve();
  }

  /** The stored JSON of an instance, to round-trip it in tests. */
  exportJson(id: string): string | undefined {
    const row = this.rows.get(id);
    if (row === undefined) return undefined;
    return encodeRecord(row.record);
  }

  /** Stores a record from its JSON (as {@link exportJson} gave it), replacing any with the same id. */
  importJson(json: string): InstanceRecord {
    const id = (JSON.parse(json) as { id?: unknown }).id;
    const record = decodeRecord(json, typeof id === 'string' ? id : '');
    this.write(record, {});
    return record;
  }

  /** Stores a snapshot of `record` as `version` (its own by default), with its index entries and history. */
  private write(record: InstanceRecord, writes: TransitionWrites, version = record.version): void {
    const previous = this.rows.get(record.id);
    if (previous !== undefined) this.waits.removeInstance(record.id, previous.tracks);
    const waits = waitsOf(record);
    for (const { track, wait } of waits) this.waits.add({ instanceId: record.id, track }, wait);
    let inbox = previous?.inbox ?? [];
    for (const c of writes.consumed ?? []) inbox = inbox.filter((p) => !(p.event.id === c.eventId && p.track === c.track));
    for (const id of writes.requestsDone ?? []) {
      const request = this.requests.get(id);
      if (request?.state === 'pending' && request.instanceId === record.id) this.requests.set(id, { ...request, state: 'done', doneAt: record.updatedAt });
    }
    const deadlines = deadlinesOf(record);
    const history = previous?.history ?? new HistoryLog(record.createdAt);
    // The engine's writes carry their lines packed: they are appended as they are, and built only by history().
    const log = historyLogOf(writes);
    if (log !== undefined) history.addAll(log);
    else for (const line of writes.history ?? []) history.addEntry(line);
    if (isFinalStatus(record.flow.status)) history.trim();
    this.rows.set(record.id, {
      record: snapshotRecord(record, version),
      version,
      summary: { id: record.id, workflow: record.workflow, version: versionOf(record), status: record.flow.status, createdAt: record.createdAt, updatedAt: record.updatedAt },
      fingerprint: record.fingerprint ?? null,
      tracks: waits.length === 0 ? NONE : waits.map((w) => w.track),
      deadlines: deadlines.length === 0 ? NONE : deadlines.map((d) => ({ instanceId: record.id, track: d.track, deadline: d.at })),
      parked: isParked(record),
      history,
      inbox,
      lease: writes.lease === undefined ? (previous?.lease ?? null) : { owner: writes.lease.owner, until: writes.lease.until },
    });
  }
}
