import type { SagaEvent } from '../bus/event';
import { WaitIndex, type WaiterRef } from '../bus/wait-index';
import { VersionConflictError } from '../errors/runtime-errors';
import { isFinalStatus } from '../engine/flow-fields';
import type { InstanceRecord, TrackRef } from '../engine/instance-record';
import { decodeRecord, encodeRecord, waitsOf } from './record-codec';
import type { DueWait, InstanceFilter, InstanceStore, InstanceSummary } from './instance-store';

interface Row {
  json: string;
  version: number;
  summary: InstanceSummary;
  tracks: TrackRef[];
  deadlines: DueWait[];
}

/**
 * Keeps instances in memory, as JSON text (so nothing a caller holds aliases a stored record), with the same
 * wait index a durable store keeps. For tests and embedded use where a restart may forget everything.
 *
 * @example
 * const store = new MemoryStore();
 * const runtime = new SagaRuntime({ store });
 */
export class MemoryStore implements InstanceStore {
  private readonly rows = new Map<string, Row>();
  private readonly waits = new WaitIndex();

  create(record: InstanceRecord): Promise<boolean> {
    if (this.rows.has(record.id)) return Promise.resolve(false);
    this.write({ ...record, version: 1 });
    return Promise.resolve(true);
  }

  load(id: string): Promise<InstanceRecord | undefined> {
    const row = this.rows.get(id);
    if (row === undefined) return Promise.resolve(undefined);
    try {
      return Promise.resolve(decodeRecord(row.json, id));
    } catch (e) {
      return Promise.reject(e instanceof Error ? e : new Error(String(e)));
    }
  }

  save(record: InstanceRecord): Promise<number> {
    const row = this.rows.get(record.id);
    if (row === undefined || row.version !== record.version) {
      return Promise.reject(new VersionConflictError(record.id, record.version, row?.version));
    }
    const version = record.version + 1;
    this.write({ ...record, version });
    return Promise.resolve(version);
  }

  findWaiting(event: SagaEvent): Promise<WaiterRef[]> {
    return Promise.resolve(this.waits.find(event));
  }

  dueWaits(now: number, limit: number): Promise<DueWait[]> {
    const due: DueWait[] = [];
    for (const row of this.rows.values()) for (const d of row.deadlines) if (d.deadline <= now) due.push(d);
    due.sort((a, b) => a.deadline - b.deadline);
    return Promise.resolve(due.slice(0, limit));
  }

  unfinished(): Promise<string[]> {
    return Promise.resolve([...this.rows.values()].filter((r) => !isFinalStatus(r.summary.status)).map((r) => r.summary.id));
  }

  list(filter: InstanceFilter = {}): Promise<InstanceSummary[]> {
    const statuses = filter.status === undefined ? undefined : new Set(typeof filter.status === 'string' ? [filter.status] : filter.status);
    const out = [...this.rows.values()]
      .map((r) => r.summary)
      .filter((s) => (statuses === undefined || statuses.has(s.status)) && (filter.workflow === undefined || s.workflow === filter.workflow) && (filter.since === undefined || s.updatedAt >= filter.since))
      .sort((a, b) => b.updatedAt - a.updatedAt);
    return Promise.resolve(out.slice(0, filter.limit ?? 1000));
  }

  close(): Promise<void> {
    this.rows.clear();
    return Promise.resolve();
  }

  /** The stored JSON of an instance, to round-trip it in tests. */
  exportJson(id: string): string | undefined {
    return this.rows.get(id)?.json;
  }

  /** Stores a record from its JSON (as {@link exportJson} gave it), replacing any with the same id. */
  importJson(json: string): InstanceRecord {
    const id = (JSON.parse(json) as { id?: unknown }).id;
    const record = decodeRecord(json, typeof id === 'string' ? id : '');
    this.write(record);
    return record;
  }

  private write(record: InstanceRecord): void {
    const previous = this.rows.get(record.id);
    if (previous !== undefined) this.waits.removeInstance(record.id, previous.tracks);
    const waits = waitsOf(record);
    for (const { track, wait } of waits) this.waits.add({ instanceId: record.id, track }, wait);
    this.rows.set(record.id, {
      json: encodeRecord(record),
      version: record.version,
      summary: { id: record.id, workflow: record.workflow, status: record.flow.status, createdAt: record.createdAt, updatedAt: record.updatedAt },
      tracks: waits.map((w) => w.track),
      deadlines: waits.filter((w) => w.wait.deadline !== null).map((w) => ({ instanceId: record.id, track: w.track, deadline: w.wait.deadline as number })),
    });
  }
}
