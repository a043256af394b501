import type { Effect, Happening, Outcome } from './decide';
import { stateChange } from './state-change';
import type { StateChangeRecording } from '../observers/history-observer';
import type { HistoryEntry, HistoryKind } from './history-entry';
import { findBranch, trackOf, type InstanceRecord, type TrackRef } from './instance-record';

function line(record: InstanceRecord, track: TrackRef, kind: HistoryKind, at: number, extra?: Partial<HistoryEntry>): HistoryEntry {
  const t = (track === null ? undefined : trackOf(record, track)) ?? record;
  // Built field by field (a line is made for every transition): the same keys, in the same order, as spreading
  // the base fields, then group and branch, then `extra` would give; an `outcome` left undefined is left out.
  const out: { -readonly [K in keyof HistoryEntry]?: HistoryEntry[K] } = {
    at,
    kind,
    step: t.flow.stepName,
    direction: t.flow.direction,
    func: t.flow.stepFunc,
    attempt: t.flow.attempt,
    status: record.flow.status,
  };
  const branch = track === null || record.group === null ? undefined : findBranch(record.group, track);
  if (branch !== undefined && record.group !== null) {
    out.group = record.group.name;
    out.branch = branch.name;
  }
  if (extra !== undefined) Object.assign(out, extra);
  if (out.outcome === undefined) delete out.outcome;
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

function fromPrior(prior: PriorTrack | undefined): Partial<HistoryEntry> {
  return prior === undefined ? {} : { step: prior.stepName, direction: prior.direction, func: prior.stepFunc, attempt: prior.attempt };
}

function outcomeLine(prior: PriorTrack | undefined, after: InstanceRecord, track: TrackRef, outcome: Outcome, at: number): HistoryEntry {
  const extra: { -readonly [K in keyof HistoryEntry]?: HistoryEntry[K] } = {
    ...fromPrior(prior),
    outcome: outcome.kind,
  };
  if (outcome.kind === 'error') extra.code = outcome.error.code;
  return line(after, track, 'step-result', at, extra);
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
      lines.push(line(after, null, 'started', at, { step: null, func: null }));
      break;
    case 'initVetoed':
      lines.push(line(after, null, 'started', at, { step: null, func: null, outcome: 'vetoed', code: happening.error.code }));
      break;
    case 'settled': {
      const line = outcomeLine(prior, after, happening.track, happening.outcome, at);
      const now = trackOf(after, happening.track) ?? (happening.track === null ? after : undefined);
      const change = stateChanges === undefined || prior === undefined || now === undefined ? [] : stateChange(prior.state, now.state, stateChanges.redaction);
      lines.push(change.length === 0 ? line : { ...line, stateChange: change });
      break;
    }
    case 'event':
      lines.push(line(after, happening.track, 'event', at, { ...fromPrior(prior), outcome: happening.event.topic }));
      break;
    case 'due':
      lines.push(line(after, happening.track, 'timeout', at, fromPrior(prior)));
      break;
    case 'rollback':
      lines.push(line(after, null, 'rollback-requested', at, { code: happening.reason.code, note: happening.reason.message }));
      break;
    case 'resume':
      lines.push(line(after, null, 'resumed', at, note === undefined ? {} : { note }));
      break;
    case 'throttled':
      lines.push(line(after, happening.track, 'throttled', at, { ...fromPrior(prior), note: `rate limiter ${happening.limiter}: waits ${happening.until - at} ms` }));
      break;
    case 'undo':
      lines.push(line(after, null, 'undo-requested', at, { code: happening.reason.code, note: happening.reason.message }));
      break;
    case 'retryCompensation':
    case 'skipCompensation':
      lines.push(line(after, null, 'operator', at, { ...fromPrior(prior), outcome: happening.type, ...(note === undefined ? {} : { note }) }));
      break;
  }
  for (const e of effects) {
    if (e.type === 'invoke' && happening.type !== 'resume') {
      lines.push(line(after, e.track, 'step-started', at, { step: e.step, func: e.func, outcome: undefined }));
    } else if (e.type === 'controlled') {
      const branch = e.track === null ? {} : { branch: (after.group === null ? undefined : findBranch(after.group, e.track)?.name) ?? e.track };
      lines.push(line(after, e.track, 'control', at, { ...fromPrior(prior), ...branch, outcome: e.decision, note: e.note }));
    } else if (e.type === 'unblocked') {
      lines.push(line(after, null, 'unblocked', at, { step: after.flow.stepName, func: null }));
    } else if (e.type === 'branched') {
      lines.push(line(after, null, 'branch-taken', at, { step: e.when, func: null, outcome: e.branch }));
    } else if (e.type === 'timer' && happening.type !== 'throttled') {
      const t = trackOf(after, e.track);
      if (t !== undefined && t.flow.retryAt === e.at) {
        lines.push(line(after, e.track, 'retry-scheduled', at, { note: `attempt ${t.flow.attempt} in ${t.flow.retryDelay ?? 0} ms` }));
      }
    } else if (e.type === 'finished') {
      lines.push(line(after, null, 'finished', at, { step: null, func: null, outcome: after.flow.status }));
    }
  }
  return lines;
}
