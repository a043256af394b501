// The pure engine: `decide` takes an instance record and a happening and returns the next record and the effects
// to perform. Each family of the workflow language has its own module here; this one dispatches to them.
import { eventMatchesWait } from '../../bus/wait-match';
import { isFinalStatus, type StepFunc } from '../../core/flow-fields';
import { trackOf, type InstanceRecord, type TrackRef } from '../instance-record';
import type { SerializedError } from '../../errors/serialized-error';
import { controlMain } from './compensation-control';
import type { Ctx, DecideOps } from './context';
import { due, resolve } from './due';
import { compensateBranch } from './group-compensation';
import { branchAbortReason, branchFailed, startBranchStep, startGroup, unwindGroup } from './groups';
import { advanceMain, failMain } from './main-line';
import { requestRollback, resume, retryCompensation, skipCompensation } from './requests';
import { refreshStatuses } from './statuses';
import { invoke } from './track';
import type { DecideEnv, Happening, Transition } from './types';
import { enterWhen } from './when';

export type { DecideEnv, Effect, Happening, LifecycleHook, Outcome, Transition } from './types';

/** The families' calls into each other, given to every transition on its context. */
const OPS: DecideOps = { startGroup, unwindGroup, enterWhen, controlMain, compensateBranch, branchFailed, startBranchStep };

/**
 * What happens next: a pure function of (record, happening) returning the next record and the effects.
 * The input record is not modified.
 *
 * @example
 * const { record, effects } = decide(env, record, { type: 'begin' });
 */
export function decide(env: DecideEnv, record: InstanceRecord, happening: Happening): Transition {
  return applyHappening(env, structuredClone(record), happening);
}

/**
 * Like {@link decide}, but advances `draft` in place (the runner owns its copy and saves it afterwards).
 * @internal
 */
export function applyHappening(env: DecideEnv, draft: InstanceRecord, happening: Happening): Transition {
  const c: Ctx = { env, rec: draft, effects: [], ops: OPS };
  const changed = dispatch(c, happening);
  if (changed) {
    refreshStatuses(draft);
    draft.updatedAt = env.now;
  }
  return { record: draft, effects: c.effects, changed };
}

/**
 * Why a track whose call is in flight was told to abort, as the abort effect gave it (its group settles or unwinds,
 * or a rollback was asked for); null if it was not.
 */
function abortReason(rec: InstanceRecord, ref: TrackRef): SerializedError | null {
  if (ref === null) return rec.group === null ? rec.rollbackRequested : null;
  const g = rec.group;
  return g === null || g.mode === 'up' ? null : branchAbortReason(g);
}

function dispatch(c: Ctx, h: Happening): boolean {
  const rec = c.rec;
  switch (h.type) {
    case 'begin':
      if (rec.flow.stepName !== null || rec.flow.stack.length > 0 || isFinalStatus(rec.flow.status)) return false;
      if (rec.deadline !== null) c.effects.push({ type: 'timer', track: null, at: rec.deadline });
      advanceMain(c, 0);
      return true;
    case 'initVetoed':
      failMain(c, h.error, 'requested');
      return true;
    case 'settled': {
      const t = trackOf(rec, h.track);
      if (t === undefined || !t.flow.inFlight || t.flow.token !== h.token) return false;
      const event = t.flow.handling;
      t.flow.inFlight = false;
      t.flow.handling = null;
      resolve(c, h.track, t, h.outcome, event);
      return true;
    }
    case 'event': {
      const t = trackOf(rec, h.track);
      if (t === undefined || t.flow.wait === null || !eventMatchesWait(h.event, t.flow.wait, rec.id)) return false;
      const func: StepFunc = t.flow.direction === 'up' ? 'runHandleInfo' : 'rollbackHandleInfo';
      invoke(c, h.track, t, func, h.event);
      return true;
    }
    case 'due':
      return due(c, h.track, h.at);
    case 'rollback':
      return requestRollback(c, h.reason);
    case 'resume':
      return resume(c);
    case 'retryCompensation':
      return retryCompensation(c);
    case 'skipCompensation':
      return skipCompensation(c);
    case 'throttled': {
      const t = trackOf(rec, h.track);
      if (t === undefined || !t.flow.inFlight || t.flow.token !== h.token) return false;
      const abortedBy = abortReason(rec, h.track);
      if (abortedBy !== null) {
        // The track was told to stop (a sibling failed, a rollback was asked for) before its rate limiter answered:
        // its call is not made, and it settles as a step that never started (it is not compensated).
        return dispatch(c, { type: 'settled', track: h.track, token: h.token, outcome: { kind: 'error', error: abortedBy, started: false } });
      }
      t.flow.inFlight = false;
      t.flow.retryAt = h.until;
      t.flow.throttled = true;
      c.effects.push({ type: 'timer', track: h.track, at: h.until });
      return true;
    }
    case 'undo':
      if (rec.flow.status !== 'completed') return requestRollback(c, h.reason);
      rec.flow.status = 'rolling_back';
      failMain(c, h.reason, 'requested');
      return true;
  }
}
