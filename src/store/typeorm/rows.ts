import { createHash } from 'node:crypto';
import type { SagaEvent } from '../../bus/event';
import { payloadValue } from '../../bus/wait-match';
import type { Wait } from '../../core/flow-fields';
import type { HistoryEntry } from '../../engine/history-entry';
import { versionOf, type InstanceRecord, type TrackRef } from '../../engine/instance-record';
import { CorruptRecordError } from '../../errors/runtime-errors';
import { parseJsonSafe } from '../../core/safe-json';
import { deadlinesOf, isParked, waitsOf } from '../record-codec';
import { storedForm, type StackRow } from './stack-rows';

/** A track as a column value: `''` is the main line. */
export function trackColumn(track: TrackRef): string {
  return track ?? '';
}

/** A track column back as a {@link TrackRef}. */
export function trackRef(column: unknown): TrackRef {
  return typeof column === 'string' && column !== '' ? column : null;
}

/** A bigint column (a string from `pg`, a number from SQLite) as a number. */
export function num(value: unknown): number {
  return typeof value === 'number' ? value : Number(value);
}

/** A nullable bigint column as a number or null. */
export function numOrNull(value: unknown): number | null {
  return value === null || value === undefined ? null : num(value);
}

/** Match values longer than this are stored as a digest (PostgreSQL's b-tree keys are limited to ~2.7 kB). */
const MAX_INLINE_MATCH = 256;

/** The stored key set of a wait: its match keys, sorted, as JSON. */
export function matchKeysColumn(keys: readonly string[]): string {
  return JSON.stringify(keys);
}

/** The stored match values, in the order of the sorted keys: canonical JSON, or a digest of it when long. */
export function matchValuesColumn(values: readonly unknown[]): string {
  const json = JSON.stringify(values);
  return json.length <= MAX_INLINE_MATCH ? json : `#sha256:${createHash('sha256').update(json).digest('hex')}`;
}

/** One wait row to write: a waiting track and one of its topics. */
export interface WaitRow {
  readonly track: string;
  readonly topic: string;
  readonly matchKeys: string;
  readonly matchValues: string;
}

function waitRows(track: TrackRef, wait: Wait): WaitRow[] {
  const keys = Object.keys(wait.match).sort();
  const matchKeys = matchKeysColumn(keys);
  const matchValues = matchValuesColumn(keys.map((k) => wait.match[k]));
  return [...new Set(wait.topics)].map((topic) => ({ track: trackColumn(track), topic, matchKeys, matchValues }));
}

/** The columns of a record as written: its JSON and the indexes derived from it. */
export interface PreparedRecord {
  readonly id: string;
  readonly workflow: string;
  readonly status: string;
  readonly version: number;
  readonly json: string;
  readonly nextDue: number | null;
  readonly deadlines: string | null;
  readonly parked: boolean;
  readonly defVersion: number;
  readonly fingerprint: string | null;
  readonly createdAt: number;
  readonly updatedAt: number;
  readonly waits: readonly WaitRow[];
  /** The stack entries to write (pushed since the stacks this store knows were stored). */
  readonly stack: readonly StackRow[];
}

/**
 * Encodes `record` at `version` (its stacks as depths: their entries are `stack` rows) and derives its index columns
 * (status, earliest deadline, parked, wait rows). Throws (TypeError) when the record is not representable as JSON,
 * before anything is written.
 */
export function prepareRecord(record: InstanceRecord, version: number, stack: readonly StackRow[]): PreparedRecord {
  const stored: InstanceRecord = { ...record, version };
  const json = JSON.stringify(storedForm(stored));
  const deadlines = deadlinesOf(stored);
  return {
    id: stored.id,
    workflow: stored.workflow,
    status: stored.flow.status,
    version,
    json,
    nextDue: deadlines.length === 0 ? null : Math.min(...deadlines.map((d) => d.at)),
    deadlines: deadlines.length === 0 ? null : JSON.stringify(deadlines.map((d) => [d.track, d.at])),
    parked: isParked(stored),
    defVersion: versionOf(stored),
    fingerprint: stored.fingerprint ?? null,
    createdAt: stored.createdAt,
    updatedAt: stored.updatedAt,
    waits: waitsOf(stored).flatMap(({ track, wait }) => waitRows(track, wait)),
    stack,
  };
}

/** The `deadlines` column back as per-track deadlines; a malformed value gives none. */
export function parseDeadlines(column: unknown): { track: TrackRef; at: number }[] {
  if (typeof column !== 'string') return [];
  let value: unknown;
  try {
    value = parseJsonSafe(column);
  } catch {
    return [];
  }
  if (!Array.isArray(value)) return [];
  const out: { track: TrackRef; at: number }[] = [];
  for (const item of value as unknown[]) {
    if (!Array.isArray(item)) continue;
    const [track, at] = item as unknown[];
    if ((track === null || typeof track === 'string') && typeof at === 'number') out.push({ track, at });
  }
  return out;
}

/** The values an event has for a stored key set, as the match-values column, or undefined when one is missing. */
export function lookupValues(event: SagaEvent, keys: readonly string[]): string | undefined {
  const values = keys.map((k) => payloadValue(event.payload, k));
  return values.some((v) => v === undefined) ? undefined : matchValuesColumn(values);
}

/** A stored key-set column back as keys, or undefined when it is not a JSON array of strings. */
export function parseMatchKeys(column: unknown): string[] | undefined {
  if (typeof column !== 'string') return undefined;
  try {
    const value = parseJsonSafe(column);
    return Array.isArray(value) && value.every((k) => typeof k === 'string') ? value : undefined;
  } catch {
    return undefined;
  }
}

/** The stored JSON of an event. */
export function encodeEvent(event: SagaEvent): string {
  return JSON.stringify(event);
}

/**
 * Reads a stored event with the same safe parse as records (`__proto__` keys dropped) and checks its shape.
 * @throws CorruptRecordError naming the instance (or the retained event) when it cannot be read.
 */
export function decodeEvent(text: unknown, owner: string, eventId: string): SagaEvent {
  let value: unknown;
  try {
    if (typeof text !== 'string') throw new TypeError('it is not text');
    value = parseJsonSafe(text);
  } catch (cause) {
    throw new CorruptRecordError(owner, `its stored event ${JSON.stringify(eventId)} does not parse (${(cause as Error).message})`);
  }
  const e = value as Partial<Record<keyof SagaEvent, unknown>> | null;
  if (
    typeof e !== 'object' ||
    e === null ||
    Array.isArray(e) ||
    typeof e.topic !== 'string' ||
    typeof e.id !== 'string' ||
    typeof e.publishedAt !== 'number' ||
    typeof e.payload !== 'object' ||
    e.payload === null ||
    Array.isArray(e.payload) ||
    (e.instanceId !== undefined && typeof e.instanceId !== 'string')
  ) {
    throw new CorruptRecordError(owner, `its stored event ${JSON.stringify(eventId)} is not an event`);
  }
  const event: { -readonly [K in keyof SagaEvent]: SagaEvent[K] } = {
    topic: e.topic,
    payload: e.payload as Record<string, unknown>,
    id: e.id,
    publishedAt: e.publishedAt,
  };
  if (typeof e.instanceId === 'string') event.instanceId = e.instanceId;
  return event;
}

/** The history columns, in insert order. */
export const HISTORY_COLUMNS = [
  'instance_id',
  'version',
  'seq',
  'at',
  'kind',
  'step',
  'group_name',
  'branch',
  'direction',
  'func',
  'attempt',
  'outcome',
  'code',
  'status',
  'note',
  'extra',
] as const;

const KNOWN_HISTORY_FIELDS = new Set(['at', 'kind', 'step', 'group', 'branch', 'direction', 'func', 'attempt', 'outcome', 'code', 'status', 'note']);

/** The column values of one history line (in {@link HISTORY_COLUMNS} order); unknown fields go to `extra`. */
export function historyValues(instanceId: string, version: number, seq: number, h: HistoryEntry): unknown[] {
  const extra: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(h)) if (!KNOWN_HISTORY_FIELDS.has(k) && v !== undefined) extra[k] = v;
  return [
    instanceId,
    version,
    seq,
    h.at,
    h.kind,
    h.step ?? null,
    h.group ?? null,
    h.branch ?? null,
    h.direction,
    h.func ?? null,
    h.attempt,
    h.outcome ?? null,
    h.code ?? null,
    h.status,
    h.note ?? null,
    Object.keys(extra).length === 0 ? null : JSON.stringify(extra),
  ];
}

/** A history row back as a line (optional fields only when set). */
export function historyEntry(row: Record<string, unknown>): HistoryEntry {
  const h: Record<string, unknown> = {};
  if (typeof row.extra === 'string') {
    try {
      const extra = parseJsonSafe(row.extra);
      if (typeof extra === 'object' && extra !== null && !Array.isArray(extra)) Object.assign(h, extra);
    } catch {
      // an unreadable extra loses only the extra fields, never the line
    }
  }
  h.at = num(row.at);
  h.kind = row.kind;
  h.step = row.step ?? null;
  if (row.group_name !== null && row.group_name !== undefined) h.group = row.group_name;
  if (row.branch !== null && row.branch !== undefined) h.branch = row.branch;
  h.direction = row.direction;
  h.func = row.func ?? null;
  h.attempt = num(row.attempt);
  if (row.outcome !== null && row.outcome !== undefined) h.outcome = row.outcome;
  if (row.code !== null && row.code !== undefined) h.code = row.code;
  h.status = row.status;
  if (row.note !== null && row.note !== undefined) h.note = row.note;
  return h as unknown as HistoryEntry;
}
