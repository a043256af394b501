import { CorruptRecordError } from '../errors/runtime-errors';
import { RECORD_SCHEMA_VERSION, type InstanceRecord, type TrackRef } from '../engine/instance-record';
import { isFinalStatus, type Wait } from '../core/flow-fields';
import { parseJsonSafe } from '../core/safe-json';

/** The stored JSON text of a record. */
export function encodeRecord(record: InstanceRecord): string {
  return JSON.stringify(record);
}

/**
 * Reads a stored record, dropping `__proto__` keys, and checks that it is a record this version can run.
 * @throws CorruptRecordError for bad JSON, a missing field, or a newer schema version.
 */
export function decodeRecord(text: string, id: string): InstanceRecord {
  return checkRecord(parseRecord(text, id), id);
}

/** A stored record's JSON text parsed (`__proto__` keys dropped), not checked yet. @throws CorruptRecordError */
export function parseRecord(text: string, id: string): unknown {
  try {
    return parseJsonSafe(text);
  } catch (cause) {
    throw new CorruptRecordError(id, `its JSON does not parse (${(cause as Error).message})`);
  }
}

/** A parsed record, checked to be one this version can run (see {@link decodeRecord}). @throws CorruptRecordError */
export function checkRecord(value: unknown, id: string): InstanceRecord {
  if (typeof value !== 'object' || value === null) throw new CorruptRecordError(id, 'it is not a JSON object');
  const r = value as Partial<InstanceRecord>;
  if (typeof r.schemaVersion !== 'number') throw new CorruptRecordError(id, 'it has no schemaVersion');
  if (r.schemaVersion > RECORD_SCHEMA_VERSION) {
    throw new CorruptRecordError(
      id,
      `it was written by a newer sagaflow (record schema ${r.schemaVersion}, this version reads up to ${RECORD_SCHEMA_VERSION}); upgrade this process`,
    );
  }
  if (r.id !== id || typeof r.workflow !== 'string' || typeof r.flow !== 'object' || r.flow === null || !Array.isArray(r.flow.stack)) {
    throw new CorruptRecordError(id, 'it lacks id, workflow or flow fields');
  }
  return value as InstanceRecord;
}

/**
 * True when the record waits for something (an event or a time) with no call in flight: no worker needs to claim it.
 * A blocked record never is: a worker that can run its definition claims it.
 */
export function isParked(record: InstanceRecord): boolean {
  if (record.flow.status === 'blocked') return false;
  const waits = (f: InstanceRecord['flow']): boolean => f.wait !== null || (f.retryAt !== null && f.retryAt !== undefined);
  let waiting = waits(record.flow);
  if (record.flow.inFlight) return false;
  for (const b of record.group?.branches ?? []) {
    if (b.flow.inFlight) return false;
    waiting ||= waits(b.flow);
  }
  return waiting;
}

/** Every time a record is parked until (wait deadlines and retries), per track; none while it is blocked. */
export function deadlinesOf(record: InstanceRecord): { track: TrackRef; at: number }[] {
  const out: { track: TrackRef; at: number }[] = [];
  if (record.flow.status === 'blocked') return out;
  const add = (track: TrackRef, f: InstanceRecord['flow']): void => {
    if (f.wait?.deadline != null) out.push({ track, at: f.wait.deadline });
    if (f.retryAt !== null && f.retryAt !== undefined) out.push({ track, at: f.retryAt });
  };
  add(null, record.flow);
  for (const b of record.group?.branches ?? []) add(b.key, b.flow);
  if (record.deadline != null && record.flow.direction === 'up' && !isFinalStatus(record.flow.status)) out.push({ track: null, at: record.deadline });
  return out;
}

/** Every wait a record holds: the main line's and each branch's. */
export function waitsOf(record: InstanceRecord): { track: TrackRef; wait: Wait }[] {
  const waits: { track: TrackRef; wait: Wait }[] = [];
  if (record.flow.wait !== null) waits.push({ track: null, wait: record.flow.wait });
  for (const b of record.group?.branches ?? []) if (b.flow.wait !== null) waits.push({ track: b.key, wait: b.flow.wait });
  return waits;
}
