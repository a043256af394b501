import type { Effect, Happening } from './decide';
import { stateChange } from './state-change';
import type { StateChangeRecording } from '../observers/history-observer';
import type { HistoryEntry, HistoryKind } from './history-entry';
import { findBranch, trackOf, type InstanceRecord, type TrackRef } from './instance-record';

type Line = { -readonly [K in keyof HistoryEntry]?: HistoryEntry[K] };

/** Extra fields of a line; an undefined one is left out. */
type Extra = { readonly [K in keyof HistoryEntry]?: HistoryEntry[K] | undefined };

/**
 * A history line about `track` as the record is now: its step, direction, function and attempt (taken from `prior`
 * instead when given: the track as it was before the happening), the instance status, the group and branch, then
 * `extra`. Built as one object (a line is made for every transition), with the same keys in the same order whatever
 * the kind.
 */
function line(record: InstanceRecord, track: TrackRef, kind: HistoryKind, at: number, prior?: PriorTrack, extra?: Extra): HistoryEntry {
  const t = (track === null ? undefined : trackOf(record, track)) ?? record;
  const f = t.flow;
  const out: Line =
    prior === undefined
      ? { at, kind, step: f.stepName, direction: f.direction, func: f.stepFunc, attempt: f.attempt, status: record.flow.status }
      : { at, kind, step: prior.stepName, direction: prior.direction, func: prior.stepFunc, attempt: prior.attempt, status: record.flow.status };
  if (track !== null && record.group !== null) {
    const branch = findBranch(record.group, track);
    if (branch !== undefined) {
      out.group = record.group.name;
      out.branch = branch.name;
    }
  }
  if (extra !== undefined) {
    for (const key of Object.keys(extra) as (keyof Extra)[]) {
      const value = extra[key];
      if (value !== undefined) (out as Record<string, unknown>)[key] = value;
    }
  }
  return out as HistoryEntry;
}

/** The flow fields of the track a happening is about, as they were before it (see {@link priorTrack}). */
export interface PriorTrack {
  readonly stepName: string | null;
  readonly direction: HistoryEntry['direction'];
  readonly stepFunc: NonNullable<HistoryEntry['func']>;
  readonly attempt: number;
  /** The track's stored state (stored states are never changed in place, so a reference is enough). */
  readonly state: unknown;
}

/** What {@link transitionHistory} needs to know of the record before a happening (read before applying it). */
export function priorTrack(record: InstanceRecord, happening: Happening): PriorTrack | undefined {
  const ref = happening.type === 'settled' || happening.type === 'event' || happening.type === 'due' || happening.type === 'throttled' ? happening.track : null;
  const t = trackOf(record, ref) ?? record;
  const f = t.flow;
  return { stepName: f.stepName, direction: f.direction, stepFunc: f.stepFunc, attempt: f.attempt, state: t.state };
}

/**
 * The history lines of one transition: what happened (a result, an event, a deadline, a request), the handler
 * calls it started, retries it scheduled, and the end when it finished.
 */
export function transitionHistory(
  prior: PriorTrack | undefined,
  happening: Happening,
  after: InstanceRecord,
  effects: readonly Effect[],
  at: number,
  note?: string,
  stateChanges?: StateChangeRecording,
): HistoryEntry[] {
  const lines: HistoryEntry[] = [];
  switch (happening.type) {
    case 'begin':
      lines.push(line(after, null, 'started', at, undefined, { step: null, func: null }));
      break;
    case 'initVetoed':
      lines.push(line(after, null, 'started', at, undefined, { step: null, func: null, outcome: 'vetoed', code: happening.error.code }));
      break;
    case 'settled': {
      const { outcome } = happening;
      const now = trackOf(after, happening.track) ?? (happening.track === null ? after : undefined);
      const change = stateChanges === undefined || prior === undefined || now === undefined ? [] : stateChange(prior.state, now.state, stateChanges.redaction);
      const code = outcome.kind === 'error' ? outcome.error.code : undefined;
      lines.push(line(after, happening.track, 'step-result', at, prior, { outcome: outcome.kind, code, stateChange: change.length === 0 ? undefined : change }));
      break;
    }
    case 'event':
      lines.push(line(after, happening.track, 'event', at, prior, { outcome: happening.event.topic }));
      break;
    case 'due':
      lines.push(line(after, happening.track, 'timeout', at, prior));
      break;
    case 'rollback':
      lines.push(line(after, null, 'rollback-requested', at, undefined, { code: happening.reason.code, note: happening.reason.message }));
      break;
    case 'resume':
      lines.push(line(after, null, 'resumed', at, undefined, { note }));
      break;
    case 'throttled':
      lines.push(line(after, happening.track, 'throttled', at, prior, { note: `rate limiter ${happening.limiter}: waits ${happening.until - at} ms` }));
      break;
    case 'undo':
      lines.push(line(after, null, 'undo-requested', at, undefined, { code: happening.reason.code, note: happening.reason.message }));
      break;
    case 'retryCompensation':
    case 'skipCompensation':
      lines.push(line(after, null, 'operator', at, prior, { outcome: happening.type, note }));
      break;
  }
  for (const e of effects) {
    if (e.type === 'invoke' && happening.type !== 'resume') {
      lines.push(line(after, e.track, 'step-started', at, undefined, { step: e.step, func: e.func }));
    } else if (e.type === 'controlled') {
      const branch = e.track === null ? {} : { branch: (after.group === null ? undefined : findBranch(after.group, e.track)?.name) ?? e.track };
      lines.push(line(after, e.track, 'control', at, prior, { ...branch, outcome: e.decision, note: e.note }));
    } else if (e.type === 'unblocked') {
      lines.push(line(after, null, 'unblocked', at, undefined, { step: after.flow.stepName, func: null }));
    } else if (e.type === 'branched') {
      lines.push(line(after, null, 'branch-taken', at, undefined, { step: e.when, func: null, outcome: e.branch }));
    } else if (e.type === 'timer' && happening.type !== 'throttled') {
      const t = trackOf(after, e.track);
      if (t !== undefined && t.flow.retryAt === e.at) {
        lines.push(line(after, e.track, 'retry-scheduled', at, undefined, { note: `attempt ${t.flow.attempt} in ${t.flow.retryDelay ?? 0} ms` }));
      }
    } else if (e.type === 'finished') {
      lines.push(line(after, null, 'finished', at, undefined, { step: null, func: null, outcome: after.flow.status }));
    }
  }
  return lines;
}
