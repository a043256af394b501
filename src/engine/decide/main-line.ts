// The main line: going up node by node, turning down on a failure or a request, compensating its stack in reverse,
// and finishing the instance.
import { serializeError, serializeThrown, quote, type SerializedError } from '../../errors/serialized-error';
import type { FinishOutcome } from '../../observers/observer';
import type { InstanceStatus } from '../../core/flow-fields';
import type { BranchRun, InstanceRecord, Track } from '../instance-record';
import type { Ctx } from './context';
import { gotoNotAllowed, takeJump } from './jumps';
import { dropIfNeverStarted, dropUnstarted, park, startStep, undoStep } from './track';
import type { LifecycleHook, Outcome } from './types';

export function resolveMain(c: Ctx, outcome: Outcome): void {
  const rec = c.rec;
  const f = rec.flow;
  if (f.direction === 'up') {
    if (rec.rollbackRequested !== null) {
      const reason = rec.rollbackRequested;
      rec.rollbackRequested = null;
      dropIfNeverStarted(rec, outcome);
      failMain(c, reason, 'requested');
      return;
    }
    const node = c.env.def.nodes[f.stepIndex];
    switch (outcome.kind) {
      case 'ok':
        advanceMain(c, node?.next ?? f.stepIndex + 1);
        return;
      case 'continue':
        park(c, null, rec, outcome.wait);
        return;
      case 'goto': {
        const target = takeJump(c, node, outcome.target);
        if (typeof target === 'number') advanceMain(c, target);
        else failMain(c, target, failedHere(rec));
        return;
      }
      case 'error':
        dropIfNeverStarted(rec, outcome);
        failMain(c, outcome.error, outcome.started ? failedHere(rec) : FAILED);
        return;
      default:
        return;
    }
  }
  switch (outcome.kind) {
    case 'ok':
      f.stack.pop();
      compensateMain(c);
      return;
    case 'continue':
      park(c, null, rec, outcome.wait);
      return;
    case 'goto':
      compensationFailed(c, null, gotoNotAllowed(outcome.target, 'while compensating'));
      return;
    case 'error':
      compensationFailed(c, null, outcome.error);
      return;
    case 'retryForward':
    case 'recover':
    case 'abort':
      c.ops.controlMain(c, outcome);
      return;
  }
}

export function finish(c: Ctx, status: InstanceStatus, hook: LifecycleHook): void {
  const rec = c.rec;
  rec.flow.status = status;
  const onExit = c.env.def.onExit;
  if (onExit !== undefined && rec.flow.errorReason !== null) {
    // The workflow may put the final error another way (hide an internal code) before it is stored and returned.
    try {
      const mapped: unknown = onExit({ status: status as FinishOutcome['status'], error: rec.flow.errorReason, workflow: rec.workflow, instanceId: rec.id });
      if (mapped !== undefined) rec.flow.errorReason = serializeError(mapped);
    } catch (thrown) {
      c.effects.push({ type: 'problem', message: `onExit of workflow ${quote(rec.workflow)} threw; the error is kept as it was`, error: serializeThrown(thrown) });
    }
  }
  c.effects.push({ type: 'hook', hook, group: null }, { type: 'finished' });
}

export function advanceMain(c: Ctx, index: number): void {
  const rec = c.rec;
  const node = c.env.def.nodes[index];
  if (node === undefined) {
    rec.flow.stepIndex = c.env.def.nodes.length;
    rec.flow.stepName = null;
    finish(c, 'completed', 'handleWorkflowSuccess');
    return;
  }
  if (node.kind === 'group') {
    c.ops.startGroup(c, node);
    return;
  }
  if (node.kind === 'when') {
    c.ops.enterWhen(c, node);
    return;
  }
  startStep(c, null, rec, node);
}

/** Why the direction turns down: a failure (of a main-line step, or of something else: `step: null`), or a request. */
export type Cause = NonNullable<InstanceRecord['failure']> | 'requested';

/** Something failed in the workflow, not in a main-line step (a group, a `when`, a forEach's items). */
export const FAILED: Cause = { step: null };

/** A main-line track failed at its current step. */
export function failedHere(t: Track): Cause {
  const pass = t.flow.pass ?? 0;
  return pass > 0 ? { step: t.flow.stepName, pass } : { step: t.flow.stepName };
}

export function turnDown(c: Ctx, reason: SerializedError, cause: Cause): void {
  const f = c.rec.flow;
  dropUnstarted(c.rec);
  f.errorReason = reason;
  f.direction = 'down';
  f.wait = null;
  if (cause === 'requested') delete c.rec.failure;
  else c.rec.failure = cause;
  c.effects.push({ type: 'hook', hook: 'handleStartRollback', group: null });
}

export function failMain(c: Ctx, reason: SerializedError, cause: Cause): void {
  turnDown(c, reason, cause);
  compensateMain(c);
}

export function compensateMain(c: Ctx): void {
  const rec = c.rec;
  while (rec.flow.stack[rec.flow.stack.length - 1]?.kind === 'when') rec.flow.stack.pop();
  const top = rec.flow.stack[rec.flow.stack.length - 1];
  if (top === undefined) {
    rec.flow.stepName = null;
    if (rec.compensationFailures.length > 0) finish(c, 'compensation_failed', 'handleCompensationFailed');
    else finish(c, 'rolled_back', 'handleWorkflowFailure');
    return;
  }
  if (top.kind === 'group') c.ops.unwindGroup(c, top);
  else if (top.kind === 'step') undoStep(c, null, rec, top);
}

/**
 * A compensation failed for good (its retries, if any, are spent). `halt`: stop there, keeping it on the stack;
 * `continue`: record it, drop it, and go on with the earlier ones.
 */
export function compensationFailed(c: Ctx, branch: BranchRun | null, error: SerializedError): void {
  const t: Track = branch ?? c.rec;
  const step = t.flow.stepName ?? '';
  c.rec.compensationFailures.push(branch === null ? { step, error } : { step, branch: branch.name, error });
  const goOn = c.env.def.onCompensationError === 'continue';
  if (branch === null) {
    if (!goOn) {
      finish(c, 'compensation_failed', 'handleCompensationFailed');
      return;
    }
    c.rec.flow.stack.pop();
    compensateMain(c);
    return;
  }
  const g = c.rec.group;
  if (!goOn || g === null) {
    branch.phase = 'compensation_failed';
    return;
  }
  branch.flow.stack.pop();
  c.ops.compensateBranch(c, g, branch);
}
