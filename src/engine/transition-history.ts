import type { Effect, Happening } from './decide';
import { stateChange, type StateChangeOp } from './state-change';
import type { StateChangeRecording } from '../observers/history-observer';
import type { HistoryEntry, HistoryKind } from './history-entry';
import type { HistoryLog } from './history-log';
import type { StepFunc } from '../core/flow-fields';
import { findBranch, trackOf, type InstanceRecord, type TrackRef } from './instance-record';

/**
 * Appends a history line about `track` as the record is now: its step, direction, function and attempt (taken from
 * `prior` instead when given: the track as it was before the happening; `step` and `func` when given replace the
 * track's), the instance status, the group and branch (`otherBranch` names the branch when the group has none by
 * that key), then the optional fields (left out when undefined).
 */
function line(
  log: HistoryLog,
  record: InstanceRecord,
  track: TrackRef,
  kind: HistoryKind,
  at: number,
  prior: PriorTrack | undefined,
  step?: string | null,
  func?: StepFunc | null,
  outcome?: string,
  code?: string,
  note?: string,
  stateChange?: readonly StateChangeOp[],
  otherBranch?: string,
): void {
  const t = (track === null ? undefined : trackOf(record, track)) ?? record;
  const f = t.flow;
  const was = prior ?? f;
  let group: string | undefined;
  let branch: string | undefined;
  if (track !== null && record.group !== null) {
    const found = findBranch(record.group, track);
    if (found !== undefined) {
      group = record.group.name;
      branch = found.name;
    }
  }
  log.add(
    at,
    kind,
    step !== undefined ? step : was.stepName,
    was.direction,
    func !== undefined ? func : was.stepFunc,
    was.attempt,
    record.flow.status,
    group,
    branch ?? otherBranch,
    outcome,
    code,
    note,
    stateChange,
  );
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
 * Appends to `log` the history lines of one transition: what happened (a result, an event, a deadline, a request),
 * the handler calls it started, retries it scheduled, and the end when it finished.
 */
export function transitionHistory(
  log: HistoryLog,
  prior: PriorTrack | undefined,
  happening: Happening,
  after: InstanceRecord,
  effects: readonly Effect[],
  at: number,
  note?: string,
  stateChanges?: StateChangeRecording,
): void {
  switch (happening.type) {
    case 'begin':
      line(log, after, null, 'started', at, undefined, null, null);
      break;
    case 'initVetoed':
      line(log, after, null, 'started', at, undefined, null, null, 'vetoed', happening.error.code);
      break;
    case 'settled': {
      const { outcome } = happening;
      const now = trackOf(after, happening.track) ?? (happening.track === null ? after : undefined);
      const change = stateChanges === undefined || prior === undefined || now === undefined ? [] : stateChange(prior.state, now.state, stateChanges.redaction);
      const code = outcome.kind === 'error' ? outcome.error.code : undefined;
      line(log, after, happening.track, 'step-result', at, prior, undefined, undefined, outcome.kind, code, undefined, change.length === 0 ? undefined : change);
      break;
    }
    case 'event':
      line(log, after, happening.track, 'event', at, prior, undefined, undefined, happening.event.topic);
      break;
    case 'due':
      line(log, after, happening.track, 'timeout', at, prior);
      break;
    case 'rollback':
      line(log, after, null, 'rollback-requested', at, undefined, undefined, undefined, undefined, happening.reason.code, happening.reason.message);
      break;
    case 'resume':
      line(log, after, null, 'resumed', at, undefined, undefined, undefined, undefined, undefined, note);
      break;
    case 'throttled':
      line(log, after, happening.track, 'throttled', at, prior, undefined, undefined, undefined, undefined, `rate limiter ${happening.limiter}: waits ${happening.until - at} ms`);
      break;
    case 'undo':
      line(log, after, null, 'undo-requested', at, undefined, undefined, undefined, undefined, happening.reason.code, happening.reason.message);
      break;
    case 'retryCompensation':
    case 'skipCompensation':
      line(log, after, null, 'operator', at, prior, undefined, undefined, happening.type, undefined, note);
      break;
  }
  for (const e of effects) {
    if (e.type === 'invoke' && happening.type !== 'resume') {
      line(log, after, e.track, 'step-started', at, undefined, e.step, e.func);
    } else if (e.type === 'controlled') {
      line(log, after, e.track, 'control', at, prior, undefined, undefined, e.decision, undefined, e.note, undefined, e.track ?? undefined);
    } else if (e.type === 'unblocked') {
      line(log, after, null, 'unblocked', at, undefined, after.flow.stepName, null);
    } else if (e.type === 'branched') {
      line(log, after, null, 'branch-taken', at, undefined, e.when, null, e.branch);
    } else if (e.type === 'timer' && happening.type !== 'throttled') {
      const t = trackOf(after, e.track);
      if (t !== undefined && t.flow.retryAt === e.at) {
        line(log, after, e.track, 'retry-scheduled', at, undefined, undefined, undefined, undefined, undefined, `attempt ${t.flow.attempt} in ${t.flow.retryDelay ?? 0} ms`);
      }
    } else if (e.type === 'finished') {
      line(log, after, null, 'finished', at, undefined, null, null, after.flow.status);
    }
  }
}
