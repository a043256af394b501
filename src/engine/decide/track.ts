// The mechanics every track shares, the main line and each parallel branch alike: calling a step, entering and
// undoing it, parking it on a wait, and dropping a step that never started.
import type { SagaEvent } from '../../bus/event';
import type { WaitSpec } from '../../steps/step-result';
import { NO_POLICY, type StepPolicy } from '../../policies/step-policy';
import { toMillis } from '../../time/duration';
import type { StackEntry, StepFunc, Wait } from '../../core/flow-fields';
import type { Track, TrackRef } from '../instance-record';
import type { Ctx } from './context';
import type { Outcome } from './types';

export function invoke(c: Ctx, ref: TrackRef, t: Track, func: StepFunc, event: SagaEvent | null = null): void {
  const f = t.flow;
  delete f.throttled;
  f.stepFunc = func;
  f.inFlight = true;
  f.wait = null;
  f.token += 1;
  f.handling = event;
  c.effects.push({ type: 'invoke', track: ref, step: f.stepName ?? '', func, token: f.token, event });
}

function enterStep(c: Ctx, ref: TrackRef, t: Track, step: { name: string; index: number }, func: 'run' | 'rollback', pass = 0): void {
  t.flow.stepIndex = step.index;
  t.flow.stepName = step.name;
  t.flow.attempt = 1;
  t.flow.retryAt = null;
  t.flow.retryDelay = null;
  if (pass > 0) t.flow.pass = pass;
  else delete t.flow.pass;
  invoke(c, ref, t, func);
}

/**
 * The stack entries of steps entered outside a loop pass, one per compiled step: every instance shares it (stack
 * entries are never changed in place, only pushed and popped), frozen to keep it so.
 */
const PLAIN_ENTRIES = new WeakMap<object, StackEntry>();

/** The stack entry of `step` entered in loop pass `pass` (0: outside a loop). */
function stepEntry(step: { name: string; index: number }, pass: number): StackEntry {
  if (pass > 0) return { kind: 'step', name: step.name, index: step.index, pass };
  let entry = PLAIN_ENTRIES.get(step);
  if (entry === undefined || entry.name !== step.name || entry.index !== step.index) {
    entry = Object.freeze({ kind: 'step', name: step.name, index: step.index });
    PLAIN_ENTRIES.set(step, entry);
  }
  return entry;
}

/** Pushes a started step on a track's stack (with the loop pass it belongs to) and calls its `run`. */
export function startStep(c: Ctx, ref: TrackRef, t: Track, step: { name: string; index: number }): void {
  const pass = c.rec.pass ?? 0;
  t.flow.stack.push(stepEntry(step, pass));
  enterStep(c, ref, t, step, 'run', pass);
}

/** Calls the `rollback` of the step on top of a track's stack. */
export function undoStep(c: Ctx, ref: TrackRef, t: Track, entry: Extract<StackEntry, { kind: 'step' }>, step: { name: string; index: number } = entry): void {
  enterStep(c, ref, t, step, 'rollback', entry.pass ?? 0);
}

export function policyOf(c: Ctx, t: Track): StepPolicy {
  return c.env.policy?.(t.flow.stepName ?? '', t.flow.direction) ?? NO_POLICY;
}

export function park(c: Ctx, ref: TrackRef, t: Track, spec: WaitSpec): void {
  const topics = typeof spec.topic === 'string' ? [spec.topic] : [...spec.topic];
  const timeout = spec.timeout === undefined ? policyOf(c, t).waitTimeoutMs : toMillis(spec.timeout, 'a wait timeout');
  const deadline = timeout === null ? null : c.env.now + timeout;
  const wait: Wait = { topics, match: { ...(spec.match ?? {}) }, deadline };
  t.flow.wait = wait;
  c.effects.push({ type: 'watch', track: ref, wait });
}

export function summarize(t: Track, outcome: Outcome): void {
  const base = { kind: outcome.kind, step: t.flow.stepName ?? '', func: t.flow.stepFunc };
  t.flow.lastResult = outcome.kind === 'error' ? { ...base, code: outcome.error.code } : base;
}

/** Calls `step`'s `run` at `at` (now when it is not later): it goes on the stack now, so a rollback meanwhile drops it. */
export function startStepAt(c: Ctx, ref: TrackRef, t: Track, step: { name: string; index: number }, at: number): void {
  if (at <= c.env.now) {
    startStep(c, ref, t, step);
    return;
  }
  const pass = c.rec.pass ?? 0;
  t.flow.stack.push(stepEntry(step, pass));
  t.flow.stepIndex = step.index;
  t.flow.stepName = step.name;
  t.flow.stepFunc = 'run';
  t.flow.attempt = 1;
  t.flow.retryDelay = null;
  if (pass > 0) t.flow.pass = pass;
  else delete t.flow.pass;
  t.flow.retryAt = at;
  t.flow.throttled = true;
  c.effects.push({ type: 'timer', track: ref, at });
}

/** True while a track's current call is its step's first `run` attempt: before it, the step has not started. */
function firstCall(t: Track): boolean {
  return t.flow.attempt === 1 && t.flow.stepFunc === 'run';
}

/**
 * A step whose first call failed without starting (a before-hook vetoed, its state could not be read, a child
 * could not be started) comes off the stack: it is not compensated. A later attempt that fails so leaves it on:
 * an earlier attempt ran.
 */
export function dropIfNeverStarted(t: Track, outcome: Outcome): void {
  if (outcome.kind === 'error' && !outcome.started && firstCall(t)) t.flow.stack.pop();
}

/** A track stops where it is (its group settles): no wait, no retry, no rate-limit slot pending. */
export function stopTrack(t: Track): void {
  dropUnstarted(t);
  t.flow.wait = null;
  t.flow.retryAt = null;
  t.flow.retryDelay = null;
}

/**
 * A track turned down while its first call waits for a rate-limiter slot: that step never started, so it comes
 * off the stack uncompensated.
 */
export function dropUnstarted(t: Track): void {
  const f = t.flow;
  if (f.throttled === true && firstCall(t)) {
    f.stack.pop();
    f.retryAt = null;
  }
  delete f.throttled;
}
