// Requests from outside the step calls: an operator retrying or skipping failed compensations, a rollback asked
// for, and a resume after a restart or an unblock.
import type { SerializedError } from '../../errors/serialized-error';
import { isFinalStatus } from '../../core/flow-fields';
import type { Track, TrackRef } from '../instance-record';
import type { Ctx } from './context';
import { compensateBranch } from './group-compensation';
import { progressGroup, resumeGroup, rollBackGroup } from './groups';
import { advanceMain, compensateMain, failMain } from './main-line';

/** Operator: call the failed compensations again, from attempt 1. */
export function retryCompensation(c: Ctx): boolean {
  const rec = c.rec;
  if (rec.flow.status !== 'compensation_failed') return false;
  rec.compensationFailures = [];
  const g = rec.group;
  if (g !== null && g.branches.some((b) => b.phase === 'compensation_failed')) {
    for (const b of g.branches) if (b.phase === 'compensation_failed') compensateBranch(c, g, b);
    progressGroup(c);
    return true;
  }
  compensateMain(c);
  return true;
}

/** Operator: drop the failed compensations and go on with the earlier ones. */
export function skipCompensation(c: Ctx): boolean {
  const rec = c.rec;
  if (rec.flow.status !== 'compensation_failed') return false;
  rec.compensationFailures = [];
  const g = rec.group;
  if (g !== null && g.branches.some((b) => b.phase === 'compensation_failed')) {
    for (const b of g.branches) {
      if (b.phase !== 'compensation_failed') continue;
      b.flow.stack.pop();
      compensateBranch(c, g, b);
    }
    progressGroup(c);
    return true;
  }
  rec.flow.stack.pop();
  compensateMain(c);
  return true;
}

export function requestRollback(c: Ctx, reason: SerializedError): boolean {
  const rec = c.rec;
  if (isFinalStatus(rec.flow.status) || rec.flow.direction === 'down') return false;
  if (rec.group !== null) {
    rollBackGroup(c, rec.group, reason);
    return true;
  }
  if (rec.flow.inFlight) {
    if (rec.rollbackRequested !== null) return false;
    rec.rollbackRequested = reason;
    c.effects.push({ type: 'abort', track: null, reason });
    return true;
  }
  failMain(c, reason, 'requested');
  return true;
}

export function resume(c: Ctx): boolean {
  const rec = c.rec;
  if (rec.blocked !== undefined) {
    // The runner resumes a blocked instance only once its definition is registered again: it goes on as it was.
    rec.flow.status = rec.blocked.status;
    delete rec.blocked;
    c.effects.push({ type: 'unblocked' });
  }
  if (isFinalStatus(rec.flow.status)) return c.effects.length > 0;
  const tracks: [TrackRef, Track][] = [[null, rec]];
  if (rec.group !== null) for (const b of rec.group.branches) tracks.push([b.key, b]);
  for (const [ref, t] of tracks) {
    const f = t.flow;
    if (f.inFlight) {
      c.effects.push({ type: 'invoke', track: ref, step: f.stepName ?? '', func: f.stepFunc, token: f.token, event: f.handling });
    } else if (f.wait !== null) {
      c.effects.push({ type: 'watch', track: ref, wait: f.wait });
    } else if (f.retryAt !== null) {
      c.effects.push({ type: 'timer', track: ref, at: f.retryAt });
    }
  }
  if (rec.deadline !== null && rec.flow.direction === 'up') c.effects.push({ type: 'timer', track: null, at: rec.deadline });
  if (rec.group !== null) resumeGroup(c, rec.group);
  if (rec.rollbackRequested !== null && rec.flow.inFlight) {
    c.effects.push({ type: 'abort', track: null, reason: rec.rollbackRequested });
  }
  if (rec.flow.stepName === null && rec.flow.stack.length === 0 && rec.flow.direction === 'up') {
    advanceMain(c, 0);
  }
  return c.effects.length > 0;
}
