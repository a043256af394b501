// Controlling compensation: a compensation may send the saga forward again (retryForward), supply a substitute for
// the failed step (recover), or forbid later restarts (abort).
import { quote, type SerializedError } from '../../errors/serialized-error';
import type { BranchRun, GroupRun, TrackRef } from '../instance-record';
import type { Ctx } from './context';
import { branchSteps } from './group-node';
import { gotoNotAllowed } from './jumps';
import { advanceMain, compensateMain, compensationFailed } from './main-line';
import { park, startStepAt, undoStep } from './track';
import type { ControlOutcome, Outcome } from './types';

/** True when the step declares that its compensation may return this control. */
function declares(c: Ctx, step: string | null, control: 'retryForward' | 'recover'): boolean {
  return (c.env.def.steps.get(step ?? '')?.meta.options.rollbackControls ?? []).includes(control);
}

function undeclared(step: string | null, control: string): SerializedError {
  return {
    code: 'UNDECLARED_CONTROL',
    name: 'ControlError',
    message: `the compensation of ${quote(step)} returned ${control}, which the step does not declare; add it to @Step({ rollbackControls: [...] })`,
    details: { step, control },
  };
}

/** Why a saga going down may not turn forward again now, or null when it may. */
function forwardRefused(c: Ctx, step: string | null, maxRetries: number): string | null {
  const rec = c.rec;
  if (rec.failure === undefined) return 'the rollback was asked for from outside';
  if (rec.forwardAborted === true) return 'a compensation aborted';
  const taken = rec.forwardRetries?.[step ?? ''] ?? 0;
  return taken >= maxRetries ? `${quote(step)} already ran forward again ${taken} times, its maxRetries` : null;
}

export function controlled(c: Ctx, track: TrackRef, decision: 'retryForward' | 'recover' | 'abort' | 'ignored', note: string): void {
  c.effects.push({ type: 'controlled', track, decision, note });
}

/** The saga goes forward again: up, its failure forgotten (it is in the history). */
function turnUp(c: Ctx): void {
  const rec = c.rec;
  rec.flow.direction = 'up';
  rec.flow.errorReason = null;
  delete rec.failure;
}

/** A main-line compensation's decision. */
export function controlMain(c: Ctx, outcome: ControlOutcome): void {
  const rec = c.rec;
  const f = rec.flow;
  const step = f.stepName;
  if (outcome.kind === 'abort') {
    rec.forwardAborted = true;
    controlled(c, null, 'abort', `no retryForward restarts the saga any more: ${outcome.reason.message}`);
    f.stack.pop();
    compensateMain(c);
    return;
  }
  if (!declares(c, step, outcome.kind)) {
    compensationFailed(c, null, undeclared(step, outcome.kind));
    return;
  }
  const top = f.stack[f.stack.length - 1];
  if (outcome.kind === 'recover') {
    const failed = rec.failure;
    if (top?.kind !== 'step' || failed?.step !== step || (failed.pass ?? 0) !== (top.pass ?? 0)) {
      compensationFailed(c, null, {
        code: 'RECOVER_NOT_ALLOWED',
        name: 'ControlError',
        message: `the compensation of ${quote(step)} returned recover, but only the compensation of the step whose failure started the rollback may (${failed?.step === undefined || failed.step === null ? 'no step failed' : `${quote(failed.step)} failed`})`,
        details: { step },
      });
      return;
    }
    // Its substitute stands: the step stays on the stack (a later failure compensates it), and the saga goes on.
    turnUp(c);
    controlled(c, null, 'recover', `${quote(step)} recovered with a substitute; the saga goes on forward`);
    advanceMain(c, c.env.def.nodes[f.stepIndex]?.next ?? f.stepIndex + 1);
    return;
  }
  const refused = forwardRefused(c, step, outcome.maxRetries);
  if (refused !== null || top?.kind !== 'step') {
    controlled(c, null, 'ignored', `retryForward of ${quote(step)} not taken: ${refused ?? 'it is not a step'}; the compensation goes on`);
    f.stack.pop();
    compensateMain(c);
    return;
  }
  const taken = (rec.forwardRetries?.[step ?? ''] ?? 0) + 1;
  rec.forwardRetries = { ...rec.forwardRetries, [step ?? '']: taken };
  f.stack.pop();
  // A new pass: the steps that run again get new run and idempotency keys.
  rec.pass = (rec.pass ?? 0) + 1;
  turnUp(c);
  controlled(c, null, 'retryForward', `run forward again from ${quote(step)} (retry ${taken} of ${outcome.maxRetries})`);
  const node = c.env.def.nodes[top.index];
  if (node?.kind === 'step') startStepAt(c, null, rec, node, c.env.now + outcome.backoffMs);
  else advanceMain(c, top.index);
}

/**
 * A branch step failed going up and declares rollback controls: its own compensation runs first and decides — while
 * the group still runs — whether the branch recovers, runs forward again, or fails as it would have.
 */
export function tryBranchControls(c: Ctx, g: GroupRun, b: BranchRun, error: SerializedError): boolean {
  const step = b.flow.stepName;
  if (!declares(c, step, 'recover') && !declares(c, step, 'retryForward')) return false;
  const top = b.flow.stack[b.flow.stack.length - 1];
  if (top?.kind !== 'step') return false;
  b.pendingFailure = error;
  b.phase = 'compensating';
  b.flow.direction = 'down';
  undoStep(c, b.key, b, top, branchSteps(c, g, b).find((s) => s.name === top.name) ?? top);
  return true;
}

/** What a branch's failed step's compensation decided (see {@link tryBranchControls}). */
export function resolveBranchTrial(c: Ctx, g: GroupRun, b: BranchRun, outcome: Outcome): void {
  const failure = b.pendingFailure as SerializedError;
  const step = b.flow.stepName;
  const letFail = (note: string | null): void => {
    if (note !== null) controlled(c, b.key, 'ignored', note);
    delete b.pendingFailure;
    b.flow.stack.pop();
    b.flow.direction = 'up';
    c.ops.branchFailed(c, g, b, failure);
  };
  const goOn = (): void => {
    delete b.pendingFailure;
    b.phase = 'running';
    b.flow.direction = 'up';
  };
  switch (outcome.kind) {
    case 'continue':
      park(c, b.key, b, outcome.wait);
      return;
    case 'error':
    case 'goto':
      delete b.pendingFailure;
      compensationFailed(c, b, outcome.kind === 'error' ? outcome.error : gotoNotAllowed(outcome.target, 'while compensating'));
      return;
    case 'ok':
      letFail(null);
      return;
    case 'abort':
      c.rec.forwardAborted = true;
      controlled(c, b.key, 'abort', `no retryForward restarts the saga any more: ${outcome.reason.message}`);
      letFail(null);
      return;
    case 'recover':
    case 'retryForward': {
      if (!declares(c, step, outcome.kind)) {
        delete b.pendingFailure;
        compensationFailed(c, b, undeclared(step, outcome.kind));
        return;
      }
      if (g.mode !== 'up') {
        letFail(`${outcome.kind} of ${quote(step)} not taken: the group is already settling; the branch fails`);
        return;
      }
      if (outcome.kind === 'recover') {
        goOn();
        controlled(c, b.key, 'recover', `${quote(step)} recovered with a substitute; the branch goes on`);
        c.ops.startBranchStep(c, g, b, b.flow.stepIndex + 1);
        return;
      }
      const refused = c.rec.forwardAborted === true ? 'a compensation aborted' : (c.rec.forwardRetries?.[step ?? ''] ?? 0) >= outcome.maxRetries ? `${quote(step)} already ran forward again ${outcome.maxRetries} times, its maxRetries` : null;
      if (refused !== null) {
        letFail(`retryForward of ${quote(step)} not taken: ${refused}; the branch fails`);
        return;
      }
      const taken = (c.rec.forwardRetries?.[step ?? ''] ?? 0) + 1;
      c.rec.forwardRetries = { ...c.rec.forwardRetries, [step ?? '']: taken };
      const index = b.flow.stepIndex;
      b.flow.stack.pop();
      c.rec.pass = (c.rec.pass ?? 0) + 1;
      goOn();
      controlled(c, b.key, 'retryForward', `the branch runs forward again from ${quote(step)} (retry ${taken} of ${outcome.maxRetries})`);
      const again = branchSteps(c, g, b)[index];
      if (again === undefined) c.ops.startBranchStep(c, g, b, index);
      else startStepAt(c, b.key, b, again, c.env.now + outcome.backoffMs);
      return;
    }
  }
}
