import type { SagaEvent } from '../bus/event';
import { eventMatchesWait } from '../bus/wait-match';
import { serializeError, serializeThrown, type SerializedError, quote } from '../errors/serialized-error';
import { INTO_KINDS, withResults, type BranchOutcome } from '../parallel/parallel-results';
import { checkResult, type WaitSpec } from '../steps/step-result';
import { backoffDelay, unitHash } from '../policies/backoff';
import { isRetryable } from '../policies/retry-policy';
import { NO_POLICY, type PolicyLookup, type StepPolicy } from '../policies/step-policy';
import { sanitizeJson } from '../state/safe-json';
import { toMillis } from '../time/duration';
import type { CompiledGroup, CompiledNode, CompiledStep, CompiledWhen, WorkflowDefinition } from '../workflow/workflow-definition';
import type { FinishOutcome } from '../observers/observer';
import { isFinalStatus, type InstanceStatus, type StackEntry, type StepFunc, type Wait } from './flow-fields';
import {
  findBranch,
  freshFlow,
  trackOf,
  type BranchRun,
  type GroupRun,
  type InstanceRecord,
  type Track,
  type TrackRef,
} from './instance-record';

/** Something that happened to an instance. The runner turns results, events, timers and requests into these. */
export type Happening =
  | { readonly type: 'begin' }
  | { readonly type: 'initVetoed'; readonly error: SerializedError }
  | { readonly type: 'settled'; readonly track: TrackRef; readonly token: number; readonly outcome: Outcome }
  | { readonly type: 'event'; readonly track: TrackRef; readonly event: SagaEvent }
  /** A time the record asked to be woken at has come: a wait deadline, a retry, or the workflow deadline. */
  | { readonly type: 'due'; readonly track: TrackRef; readonly at: number }
  | { readonly type: 'rollback'; readonly reason: SerializedError }
  | { readonly type: 'resume' }
  /** Operator: call the failed compensations again (the instance is `compensation_failed`). */
  | { readonly type: 'retryCompensation' }
  /** Operator: give up on the failed compensations and go on with the earlier ones. */
  | { readonly type: 'skipCompensation' }
  /** A rate limiter had no slot for the call in flight: park the track until `until`, when the call is made again. */
  | { readonly type: 'throttled'; readonly track: TrackRef; readonly token: number; readonly until: number; readonly limiter: string }
  /**
   * Roll back, even a completed instance: its steps are compensated in reverse (a parent undoing a completed child).
   * On a running instance it is `rollback`.
   */
  | { readonly type: 'undo'; readonly reason: SerializedError };

/** A handler's result, with the state already in its stored (JSON) form. */
export type Outcome =
  | { readonly kind: 'ok'; readonly state: unknown }
  | { readonly kind: 'continue'; readonly state: unknown; readonly wait: WaitSpec }
  | { readonly kind: 'goto'; readonly target: string; readonly state: unknown }
  /** From a compensation: run forward again from this step (at most `maxRetries` times), after `backoffMs`. */
  | { readonly kind: 'retryForward'; readonly state: unknown; readonly maxRetries: number; readonly backoffMs: number }
  /** From the failed step's compensation: its substitute stands; go on forward from the next step. */
  | { readonly kind: 'recover'; readonly state: unknown }
  /** From a compensation: it is done, and no later `retryForward` may restart the saga. */
  | { readonly kind: 'abort'; readonly state?: unknown; readonly reason: SerializedError }
  /** `started: false` when a before-hook vetoed, so the step never ran and is not compensated. */
  | {
      readonly kind: 'error';
      readonly error: SerializedError;
      readonly state?: unknown;
      readonly started: boolean;
      /** False for failures no retry policy applies to (a wait deadline). */
      readonly retryable?: boolean;
    };

/** Lifecycle hooks a transition asks the runner to call (before it persists the transition). */
export type LifecycleHook =
  | 'handleStartRollback'
  | 'handleWorkflowSuccess'
  | 'handleWorkflowFailure'
  | 'handleCompensationFailed'
  | 'handleFinish'
  | 'handleGroupStart'
  | 'handleGroupEnd';

/** What the runner must do after a transition is persisted. */
export type Effect =
  | {
      readonly type: 'invoke';
      readonly track: TrackRef;
      readonly step: string;
      readonly func: StepFunc;
      readonly token: number;
      readonly event: SagaEvent | null;
    }
  | { readonly type: 'abort'; readonly track: TrackRef; readonly reason: SerializedError }
  | { readonly type: 'watch'; readonly track: TrackRef; readonly wait: Wait }
  /** Deliver a `due` happening at `at` (a retry, or the workflow deadline). */
  | { readonly type: 'timer'; readonly track: TrackRef; readonly at: number }
  | { readonly type: 'hook'; readonly hook: LifecycleHook; readonly group: string | null }
  /** A `when` chose a block (for the history; the runner has nothing to do). */
  | { readonly type: 'branched'; readonly when: string; readonly branch: 'then' | 'else' }
  /** A blocked instance goes on: its definition is registered again (for the history). */
  | { readonly type: 'unblocked' }
  /** Something the runner reports (a workflow's `onExit` that threw, say); nothing else to do. */
  | { readonly type: 'problem'; readonly message: string; readonly error: SerializedError }
  /** A compensation decided what follows (for the history). */
  | { readonly type: 'controlled'; readonly track: TrackRef; readonly decision: 'retryForward' | 'recover' | 'abort' | 'ignored'; readonly note: string }
  | { readonly type: 'finished' };

/** What the pure part needs besides the record: the definition, the time, and the state codec for `into`. */
export interface DecideEnv {
  readonly def: WorkflowDefinition;
  readonly now: number;
  /** Turns stored state into what user code sees (the state class instance). */
  readonly hydrate: (state: unknown) => unknown;
  /** Turns what user code returned into stored state; throws when it is not JSON. */
  readonly dehydrate: (state: unknown) => unknown;
  /** The retry and timeout policy of a step in a direction. @default no retries, no timeouts */
  readonly policy?: PolicyLookup;
}

/** The result of {@link decide}: the next record and the effects to perform, in order. */
export interface Transition {
  readonly record: InstanceRecord;
  readonly effects: Effect[];
  /** False when the happening was stale (a late result, an event for a wait that ended) and changed nothing. */
  readonly changed: boolean;
}

interface Ctx {
  readonly env: DecideEnv;
  readonly rec: InstanceRecord;
  readonly effects: Effect[];
}

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
  const c: Ctx = { env, rec: draft, effects: [] };
  const changed = dispatch(c, happening);
  if (changed) {
    refreshStatuses(draft);
    draft.updatedAt = env.now;
  }
  return { record: draft, effects: c.effects, changed };
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

// ---------------------------------------------------------------------------------------------------------
// Shared track mechanics (main line and branches alike)

function invoke(c: Ctx, ref: TrackRef, t: Track, func: StepFunc, event: SagaEvent | null = null): void {
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

/** Pushes a started step on a track's stack (with the loop pass it belongs to) and calls its `run`. */
function startStep(c: Ctx, ref: TrackRef, t: Track, step: { name: string; index: number }): void {
  const pass = c.rec.pass ?? 0;
  t.flow.stack.push(pass > 0 ? { kind: 'step', name: step.name, index: step.index, pass } : { kind: 'step', name: step.name, index: step.index });
  enterStep(c, ref, t, step, 'run', pass);
}

/** Calls the `rollback` of the step on top of a track's stack. */
function undoStep(c: Ctx, ref: TrackRef, t: Track, entry: Extract<StackEntry, { kind: 'step' }>, step: { name: string; index: number } = entry): void {
  enterStep(c, ref, t, step, 'rollback', entry.pass ?? 0);
}

function policyOf(c: Ctx, t: Track): StepPolicy {
  return c.env.policy?.(t.flow.stepName ?? '', t.flow.direction) ?? NO_POLICY;
}

function park(c: Ctx, ref: TrackRef, t: Track, spec: WaitSpec): void {
  const topics = typeof spec.topic === 'string' ? [spec.topic] : [...spec.topic];
  const timeout = spec.timeout === undefined ? policyOf(c, t).waitTimeoutMs : toMillis(spec.timeout, 'a wait timeout');
  const deadline = timeout === null ? null : c.env.now + timeout;
  const wait: Wait = { topics, match: { ...(spec.match ?? {}) }, deadline };
  t.flow.wait = wait;
  c.effects.push({ type: 'watch', track: ref, wait });
}

function summarize(t: Track, outcome: Outcome): void {
  const base = { kind: outcome.kind, step: t.flow.stepName ?? '', func: t.flow.stepFunc };
  t.flow.lastResult = outcome.kind === 'error' ? { ...base, code: outcome.error.code } : base;
}

function gotoNotAllowed(target: string, why: string): SerializedError {
  return { code: 'GOTO_NOT_ALLOWED', name: 'GotoError', message: `goto ${quote(target)} is not allowed ${why}`, details: { target } };
}

function gotoError(code: string, message: string, details: Record<string, unknown>): SerializedError {
  return { code, name: 'GotoError', message, details };
}

/**
 * Where a goto from `node` to `target` lands: a target it declared (loops counted against `allowLoop.max`), or
 * the error explaining why the jump cannot be taken.
 */
function takeJump(c: Ctx, node: CompiledNode | undefined, target: string): number | SerializedError {
  const from = node?.name ?? c.rec.flow.stepName ?? '';
  const index = node === undefined || node.kind === 'when' ? undefined : node.jumps?.targets.get(target);
  if (node === undefined || index === undefined) {
    const declared = node === undefined || node.kind === 'when' ? [] : [...(node.jumps?.targets.keys() ?? [])];
    const known = c.env.def.nodeIndex.has(target);
    return gotoError(
      known ? 'UNDECLARED_GOTO_TARGET' : 'UNKNOWN_GOTO_TARGET',
      `${quote(from)} returned goto ${quote(target)}, ${known ? 'which it does not declare' : `but workflow ${quote(c.env.def.name)} has no step or group by that name`}; declared targets: ${declared.length === 0 ? 'none' : declared.join(', ')} (list them in goto: [...])`,
      { target, from, declared },
    );
  }
  if (index <= node.index) {
    const loops = c.rec.loops ?? {};
    const taken = loops[node.name] ?? 0;
    const max = node.jumps?.loopMax ?? 0;
    if (taken >= max) {
      return gotoError('LOOP_LIMIT_EXCEEDED', `${quote(from)} jumped back to ${quote(target)} ${taken} times, the most its allowLoop.max allows`, { target, from, max });
    }
    c.rec.loops = { ...loops, [node.name]: taken + 1 };
    c.rec.pass = (c.rec.pass ?? 0) + 1;
  }
  return index;
}

function resolve(c: Ctx, ref: TrackRef, t: Track, outcome: Outcome, event: SagaEvent | null = null): void {
  if (outcome.state !== undefined) t.state = outcome.state;
  summarize(t, outcome);
  if (outcome.kind === 'error' && scheduleRetry(c, ref, t, outcome, event)) return;
  if (ref === null) resolveMain(c, outcome);
  else resolveBranch(c, ref, outcome);
}

/** True when the track is still meant to go on where it is (a retry would not be thrown away at once). */
function stillWanted(c: Ctx, ref: TrackRef): boolean {
  if (ref === null) return c.rec.rollbackRequested === null;
  const g = c.rec.group;
  const b = g === null ? undefined : findBranch(g, ref);
  if (g === null || b === undefined) return false;
  return b.phase === 'compensating' || (b.phase === 'running' && g.mode === 'up');
}

/**
 * When the step's policy allows another attempt, parks the track until the backoff delay has passed, with the
 * attempt number and the retry time in the record (so a restart keeps both), and says so.
 */
function scheduleRetry(c: Ctx, ref: TrackRef, t: Track, outcome: Extract<Outcome, { kind: 'error' }>, event: SagaEvent | null): boolean {
  if (!outcome.started || outcome.retryable === false || !stillWanted(c, ref)) return false;
  const retry = policyOf(c, t).retry;
  const f = t.flow;
  if (retry === null || f.attempt >= retry.maxAttempts || !isRetryable(retry, outcome.error)) return false;
  const delay = backoffDelay(retry, f.attempt, unitHash(`${c.rec.id}:${f.stepName ?? ''}:${f.direction}:${f.attempt}`));
  f.attempt += 1;
  f.retryAt = c.env.now + delay;
  f.retryDelay = delay;
  f.handling = event;
  c.effects.push({ type: 'timer', track: ref, at: f.retryAt });
  return true;
}

/** A wait deadline, a retry time or the workflow deadline has come. */
function due(c: Ctx, ref: TrackRef, at: number): boolean {
  const rec = c.rec;
  if (ref === null && rec.deadline === at) {
    if (isFinalStatus(rec.flow.status) || rec.flow.direction === 'down') return false;
    return requestRollback(c, {
      code: 'TIMEOUT',
      name: 'TimeoutError',
      message: `workflow ${quote(rec.workflow)} passed its deadline before it completed`,
      details: { deadline: at, scope: 'workflow' },
    });
  }
  const t = trackOf(rec, ref);
  if (t === undefined) return false;
  const f = t.flow;
  if (f.retryAt === at && !f.inFlight) {
    // A branch that stopped (its group settles, it was aborted or queued) is never called again.
    if (!stillWanted(c, ref)) return false;
    f.retryAt = null;
    invoke(c, ref, t, f.stepFunc, f.handling);
    return true;
  }
  if (f.wait === null || f.wait.deadline !== at) return false;
  const topics = f.wait.topics.join(', ');
  f.wait = null;
  resolve(c, ref, t, {
    kind: 'error',
    error: {
      code: 'TIMEOUT',
      name: 'TimeoutError',
      message: `step ${quote(f.stepName)} waited for ${topics} until its deadline and timed out`,
      details: { step: f.stepName, topics, deadline: at, scope: 'wait' },
    },
    started: true,
    retryable: false,
  });
  return true;
}

// ---------------------------------------------------------------------------------------------------------
// The main line

function resolveMain(c: Ctx, outcome: Outcome): void {
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
      controlMain(c, outcome);
      return;
  }
}

// ---------------------------------------------------------------------------------------------------------
// Controlling compensation: a compensation may send the saga forward again (retryForward), supply a substitute for
// the failed step (recover), or forbid later restarts (abort).

type ControlOutcome = Extract<Outcome, { kind: 'retryForward' | 'recover' | 'abort' }>;

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

function controlled(c: Ctx, track: TrackRef, decision: 'retryForward' | 'recover' | 'abort' | 'ignored', note: string): void {
  c.effects.push({ type: 'controlled', track, decision, note });
}

/** The saga goes forward again: up, its failure forgotten (it is in the history). */
function turnUp(c: Ctx): void {
  const rec = c.rec;
  rec.flow.direction = 'up';
  rec.flow.errorReason = null;
  delete rec.failure;
}

/** Calls `step`'s `run` at `at` (now when it is not later): it goes on the stack now, so a rollback meanwhile drops it. */
function startStepAt(c: Ctx, ref: TrackRef, t: Track, step: { name: string; index: number }, at: number): void {
  if (at <= c.env.now) {
    startStep(c, ref, t, step);
    return;
  }
  const pass = c.rec.pass ?? 0;
  t.flow.stack.push(pass > 0 ? { kind: 'step', name: step.name, index: step.index, pass } : { kind: 'step', name: step.name, index: step.index });
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

/** A main-line compensation's decision. */
function controlMain(c: Ctx, outcome: ControlOutcome): void {
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
function tryBranchControls(c: Ctx, g: GroupRun, b: BranchRun, error: SerializedError): boolean {
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
function resolveBranchTrial(c: Ctx, g: GroupRun, b: BranchRun, outcome: Outcome): void {
  const failure = b.pendingFailure as SerializedError;
  const step = b.flow.stepName;
  const letFail = (note: string | null): void => {
    if (note !== null) controlled(c, b.key, 'ignored', note);
    delete b.pendingFailure;
    b.flow.stack.pop();
    b.flow.direction = 'up';
    branchFailed(c, g, b, failure);
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
        startBranchStep(c, g, b, b.flow.stepIndex + 1);
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
      if (again === undefined) startBranchStep(c, g, b, index);
      else startStepAt(c, b.key, b, again, c.env.now + outcome.backoffMs);
      return;
    }
  }
}

function finish(c: Ctx, status: InstanceStatus, hook: LifecycleHook): void {
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

function advanceMain(c: Ctx, index: number): void {
  const rec = c.rec;
  const node = c.env.def.nodes[index];
  if (node === undefined) {
    rec.flow.stepIndex = c.env.def.nodes.length;
    rec.flow.stepName = null;
    finish(c, 'completed', 'handleWorkflowSuccess');
    return;
  }
  if (node.kind === 'group') {
    startGroup(c, node);
    return;
  }
  if (node.kind === 'when') {
    enterWhen(c, node);
    return;
  }
  startStep(c, null, rec, node);
}

/** Evaluates a `when` on the state, records the block it chose, and goes into that block. */
function enterWhen(c: Ctx, node: CompiledWhen): void {
  const rec = c.rec;
  const fail = (why: string, details: Record<string, unknown> = {}): void => {
    rec.flow.stepIndex = node.index;
    rec.flow.stepName = node.name;
    failMain(c, { code: 'WHEN_FAILED', name: 'WhenError', message: `the predicate of ${quote(node.name)} ${why}`, details: { when: node.name, ...details } }, FAILED);
  };
  let chosen: unknown;
  try {
    chosen = node.predicate(c.env.hydrate(rec.state));
  } catch (thrown) {
    const cause = serializeThrown(thrown);
    fail(`threw: ${cause.message}`, { cause });
    return;
  }
  if (typeof chosen !== 'boolean') {
    const got = typeof chosen === 'object' && chosen !== null && 'then' in chosen ? 'a promise' : quote(chosen);
    fail(`returned ${got}; it must return true or false, synchronously`);
    return;
  }
  const branch = chosen ? 'then' : 'else';
  rec.flow.stack.push({ kind: 'when', name: node.name, index: node.index, branch });
  c.effects.push({ type: 'branched', when: node.name, branch });
  advanceMain(c, chosen ? node.index + 1 : node.elseIndex);
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
function dropIfNeverStarted(t: Track, outcome: Outcome): void {
  if (outcome.kind === 'error' && !outcome.started && firstCall(t)) t.flow.stack.pop();
}

/** A track stops where it is (its group settles): no wait, no retry, no rate-limit slot pending. */
function stopTrack(t: Track): void {
  dropUnstarted(t);
  t.flow.wait = null;
  t.flow.retryAt = null;
  t.flow.retryDelay = null;
}

/**
 * A track turned down while its first call waits for a rate-limiter slot: that step never started, so it comes
 * off the stack uncompensated.
 */
function dropUnstarted(t: Track): void {
  const f = t.flow;
  if (f.throttled === true && firstCall(t)) {
    f.stack.pop();
    f.retryAt = null;
  }
  delete f.throttled;
}

/** Why the direction turns down: a failure (of a main-line step, or of something else: `step: null`), or a request. */
type Cause = NonNullable<InstanceRecord['failure']> | 'requested';

/** Something failed in the workflow, not in a main-line step (a group, a `when`, a forEach's items). */
const FAILED: Cause = { step: null };

/** A main-line track failed at its current step. */
function failedHere(t: Track): Cause {
  const pass = t.flow.pass ?? 0;
  return pass > 0 ? { step: t.flow.stepName, pass } : { step: t.flow.stepName };
}

function turnDown(c: Ctx, reason: SerializedError, cause: Cause): void {
  const f = c.rec.flow;
  dropUnstarted(c.rec);
  f.errorReason = reason;
  f.direction = 'down';
  f.wait = null;
  if (cause === 'requested') delete c.rec.failure;
  else c.rec.failure = cause;
  c.effects.push({ type: 'hook', hook: 'handleStartRollback', group: null });
}

function failMain(c: Ctx, reason: SerializedError, cause: Cause): void {
  turnDown(c, reason, cause);
  compensateMain(c);
}

function compensateMain(c: Ctx): void {
  const rec = c.rec;
  while (rec.flow.stack[rec.flow.stack.length - 1]?.kind === 'when') rec.flow.stack.pop();
  const top = rec.flow.stack[rec.flow.stack.length - 1];
  if (top === undefined) {
    rec.flow.stepName = null;
    if (rec.compensationFailures.length > 0) finish(c, 'compensation_failed', 'handleCompensationFailed');
    else finish(c, 'rolled_back', 'handleWorkflowFailure');
    return;
  }
  if (top.kind === 'group') unwindGroup(c, top);
  else if (top.kind === 'step') undoStep(c, null, rec, top);
}

/**
 * A compensation failed for good (its retries, if any, are spent). `halt`: stop there, keeping it on the stack;
 * `continue`: record it, drop it, and go on with the earlier ones.
 */
function compensationFailed(c: Ctx, branch: BranchRun | null, error: SerializedError): void {
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
  compensateBranch(c, g, branch);
}

/** Operator: call the failed compensations again, from attempt 1. */
function retryCompensation(c: Ctx): boolean {
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
function skipCompensation(c: Ctx): boolean {
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

function requestRollback(c: Ctx, reason: SerializedError): boolean {
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

function resume(c: Ctx): boolean {
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

// ---------------------------------------------------------------------------------------------------------
// Parallel groups

function groupNode(c: Ctx, g: GroupRun): CompiledGroup {
  const node = c.env.def.nodes[g.index];
  if (node === undefined || node.kind !== 'group' || node.name !== g.name) {
    throw new Error(`record refers to group ${g.name} at ${g.index}, which the workflow does not have`);
  }
  return node;
}

function branchSteps(c: Ctx, g: GroupRun, b: BranchRun): readonly CompiledStep[] {
  const node = groupNode(c, g);
  if (node.each !== undefined) return node.each.steps;
  const compiled = node.branches.find((x) => x.key === b.key);
  if (compiled === undefined) throw new Error(`record refers to branch ${b.key}, which group ${g.name} does not have`);
  return compiled.steps;
}

/** A fresh branch run. */
function branchRun(name: string, key: string, state: unknown): BranchRun {
  return { name, key, state, flow: freshFlow(), phase: 'pending', settledSeq: null, outcome: null };
}

/** The branch run of forEach item `i`: named `group[i]`, keyed by its index. */
function itemRun(g: GroupRun, i: number, state: unknown): BranchRun {
  return branchRun(`${g.name}[${i}]`, String(i), state);
}

/** The items of a forEach, read from the state and stored, or the error saying why they could not be. */
function readItems(c: Ctx, node: CompiledGroup): unknown[] | SerializedError {
  const fail = (message: string, details: Record<string, unknown> = {}): SerializedError => ({
    code: 'FOR_EACH_ITEMS_FAILED',
    name: 'ForEachError',
    message: `the items of forEach ${quote(node.name)} ${message}`,
    details: { group: node.name, ...details },
  });
  try {
    const items: unknown = node.each?.items(c.env.hydrate(c.rec.state));
    if (!Array.isArray(items)) return fail(`must be an array, got ${items === null ? 'null' : typeof items}`);
    const stored = sanitizeJson(items);
    return Array.isArray(stored) ? stored : fail('could not be stored');
  } catch (thrown) {
    const cause = serializeThrown(thrown);
    return fail(`could not be read: ${cause.message}`, { cause });
  }
}

function startGroup(c: Ctx, node: CompiledGroup): void {
  const rec = c.rec;
  rec.flow.stepIndex = node.index;
  rec.flow.stepName = node.name;
  rec.flow.stepFunc = 'run';
  rec.flow.attempt = 1;
  let items: unknown[] | undefined;
  if (node.each !== undefined) {
    const read = readItems(c, node);
    if (!Array.isArray(read)) {
      failMain(c, read, FAILED);
      return;
    }
    items = read;
  }
  rec.group = {
    name: node.name,
    index: node.index,
    mode: 'up',
    // Stored states are never changed in place (user code gets a hydrated copy), so branches may share one.
    branches: items === undefined ? node.branches.map((b) => branchRun(b.name, b.key, rec.state)) : [],
    failure: null,
    nextSeq: 0,
    winner: null,
    plan: null,
    ...(items === undefined ? {} : { items, nextItem: 0, done: [] }),
  };
  c.effects.push({ type: 'hook', hook: 'handleGroupStart', group: node.name });
  progressGroup(c);
}

function unwindGroup(c: Ctx, entry: Extract<StackEntry, { kind: 'group' }>): void {
  const rec = c.rec;
  rec.flow.stepIndex = entry.index;
  rec.flow.stepName = entry.name;
  rec.flow.stepFunc = 'rollback';
  rec.group = {
    name: entry.name,
    index: entry.index,
    mode: 'down',
    branches: entry.branches.map((b) => ({
      name: b.name,
      key: b.key,
      state: b.state,
      flow: { ...freshFlow(), direction: 'down', stack: [...b.stack] },
      phase: 'queued',
      settledSeq: b.settledSeq,
      outcome: null,
    })),
    failure: null,
    nextSeq: 0,
    winner: null,
    plan: { kind: 'unwind' },
  };
  enqueueDown(rec.group);
  c.effects.push({ type: 'hook', hook: 'handleGroupStart', group: entry.name });
  progressGroup(c);
}

function startBranchStep(c: Ctx, g: GroupRun, b: BranchRun, index: number): void {
  const step = branchSteps(c, g, b)[index];
  if (step === undefined) {
    b.phase = 'succeeded';
    settle(g, b, { ok: true, value: b.state });
    if (g.done !== undefined && g.mode === 'up') {
      g.branches.splice(g.branches.indexOf(b), 1);
      g.done.push([Number(b.key), b.state, b.settledSeq ?? 0, b.flow.stack]);
      return;
    }
    if (groupNode(c, g).options.join === 'any' && g.mode === 'up') {
      g.winner = b.key;
      beginSettling(c, g);
    }
    return;
  }
  startStep(c, b.key, b, step);
}

function settle(g: GroupRun, b: BranchRun, outcome: BranchOutcome): void {
  b.outcome = outcome;
  b.settledSeq = g.nextSeq;
  g.nextSeq += 1;
}

const ABORTED: SerializedError = { code: 'ABORTED', name: 'AbortedError', message: 'the branch was aborted before it finished' };

/** Start no more branches; abort the running ones (a waiting branch is settled at once). Set `g.failure` first: it is the abort reason. */
function beginSettling(c: Ctx, g: GroupRun): void {
  g.mode = 'settling';
  for (const b of g.branches) {
    if (b.phase !== 'running') continue;
    if (b.flow.inFlight) {
      abortBranch(c, g, b);
    } else {
      stopTrack(b);
      b.phase = 'aborted';
      settle(g, b, { ok: false, error: ABORTED });
    }
  }
}

function abortBranch(c: Ctx, g: GroupRun, b: BranchRun): void {
  c.effects.push({ type: 'abort', track: b.key, reason: g.failure ?? ABORTED });
}

/** After a restart, the handlers of a settling group are called again: abort them again, after their invoke effects. */
function resumeGroup(c: Ctx, g: GroupRun): void {
  if (g.mode !== 'settling') return;
  for (const b of g.branches) if (b.phase === 'running' && b.flow.inFlight) abortBranch(c, g, b);
}

/**
 * A rollback requested from outside while a group is in progress: start no more branches, abort the running
 * ones with the request as the reason, and undo every branch that started (those a completeAll or join-any group
 * was keeping included), then the steps before the group.
 */
function rollBackGroup(c: Ctx, g: GroupRun, reason: SerializedError): void {
  g.failure = reason;
  if (g.mode === 'up') {
    beginSettling(c, g);
  } else if (g.mode === 'down' && g.plan?.kind === 'succeed') {
    for (const b of g.branches) if (b.phase === 'succeeded') b.phase = 'queued';
    g.plan = { kind: 'fail' };
    enqueueDown(g);
  }
  turnDown(c, reason, 'requested');
  progressGroup(c);
}

function branchFailed(c: Ctx, g: GroupRun, b: BranchRun, error: SerializedError): void {
  b.phase = 'failed';
  b.flow.errorReason = error;
  settle(g, b, { ok: false, error });
  const options = groupNode(c, g).options;
  if (g.mode === 'up' && options.join === 'all' && options.onError === 'failFast') {
    g.failure = error;
    beginSettling(c, g);
    turnDown(c, error, FAILED);
  }
}

function resolveBranch(c: Ctx, key: string, outcome: Outcome): void {
  const g = c.rec.group;
  const b = g === null ? undefined : findBranch(g, key);
  if (g === null || b === undefined) return;
  if (b.phase === 'running') {
    dropIfNeverStarted(b, outcome);
    if (g.mode !== 'up') {
      // Settling: whatever the step returned, this branch goes no further.
      if (outcome.kind === 'error') {
        b.phase = 'failed';
        b.flow.errorReason = outcome.error;
        settle(g, b, { ok: false, error: outcome.error });
      } else {
        b.phase = 'aborted';
        settle(g, b, { ok: false, error: ABORTED });
      }
    } else {
      switch (outcome.kind) {
        case 'ok':
          startBranchStep(c, g, b, b.flow.stepIndex + 1);
          break;
        case 'continue':
          park(c, key, b, outcome.wait);
          break;
        case 'goto':
          branchFailed(c, g, b, gotoNotAllowed(outcome.target, 'inside a parallel branch'));
          break;
        case 'error':
          if (!(outcome.started && tryBranchControls(c, g, b, outcome.error))) branchFailed(c, g, b, outcome.error);
          break;
        default:
          break;
      }
    }
  } else if (b.phase === 'compensating' && b.pendingFailure !== undefined) {
    resolveBranchTrial(c, g, b, outcome);
  } else if (b.phase === 'compensating') {
    switch (outcome.kind) {
      case 'abort':
        c.rec.forwardAborted = true;
        controlled(c, key, 'abort', `no retryForward restarts the saga any more: ${outcome.reason.message}`);
        b.flow.stack.pop();
        compensateBranch(c, g, b);
        break;
      case 'recover':
      case 'retryForward':
        // Inside a group that is being undone, a branch cannot send the saga forward: the compensation counts.
        controlled(c, key, 'ignored', `${outcome.kind} of ${quote(b.flow.stepName)} not taken: its group is being compensated; the compensation goes on`);
        b.flow.stack.pop();
        compensateBranch(c, g, b);
        break;
      case 'ok':
        b.flow.stack.pop();
        compensateBranch(c, g, b);
        break;
      case 'continue':
        park(c, key, b, outcome.wait);
        break;
      case 'goto':
        compensationFailed(c, b, gotoNotAllowed(outcome.target, 'while compensating'));
        break;
      case 'error':
        compensationFailed(c, b, outcome.error);
        break;
    }
  }
  progressGroup(c);
}

function compensateBranch(c: Ctx, g: GroupRun, b: BranchRun): void {
  b.phase = 'compensating';
  b.flow.direction = 'down';
  const top = b.flow.stack[b.flow.stack.length - 1];
  if (top === undefined) {
    b.phase = 'compensated';
    b.flow.stepName = null;
    return;
  }
  if (top.kind !== 'step') throw new Error(`branch ${b.key} of group ${g.name} has a ${top.kind} on its stack`);
  undoStep(c, b.key, b, top, branchSteps(c, g, b).find((s) => s.name === top.name) ?? top);
}

/** Moves a group on after any change: start branches, resolve once all settle, compensate, finish. */
function progressGroup(c: Ctx): void {
  const g = c.rec.group;
  if (g === null) return;
  const node = groupNode(c, g);
  if (g.mode === 'up') {
    let running = 0;
    for (const b of g.branches) if (busy(b)) running += 1;
    const cap = node.options.maxConcurrency;
    for (const b of g.branches) {
      if (g.mode !== 'up' || running >= cap) break;
      if (b.phase !== 'pending') continue;
      running += startBranch(c, g, b);
    }
    // A forEach makes its branches as items start, so only the running ones exist beyond those that finished.
    const items = g.items;
    while (items !== undefined && g.mode === 'up' && running < cap && (g.nextItem ?? 0) < items.length) {
      const i = g.nextItem ?? 0;
      g.nextItem = i + 1;
      const b = itemRun(g, i, items[i]);
      g.branches.push(b);
      running += startBranch(c, g, b);
    }
  }
  if (g.mode !== 'down') {
    if (g.branches.some(busy)) return;
    if (g.mode === 'up' && (g.branches.some((b) => b.phase === 'pending') || (g.nextItem ?? 0) < (g.items?.length ?? 0))) return;
    restoreDone(g);
    planGroup(c, g, node);
  }
  progressGroupDown(c, g, node);
}

/** True while a branch still runs: going up, or its failed step's compensation deciding what follows. */
function busy(b: BranchRun): boolean {
  return b.phase === 'running' || (b.phase === 'compensating' && b.pendingFailure !== undefined);
}

/** Turns a forEach's compactly kept items back into branches, all in item order, for the group's resolution. */
function restoreDone(g: GroupRun): void {
  if (g.done === undefined) return;
  const restored = g.done.map(([i, state, seq, stack]): BranchRun => ({
    ...itemRun(g, i, state),
    flow: { ...freshFlow(), stack, status: 'completed' },
    phase: 'succeeded',
    settledSeq: seq,
    outcome: { ok: true, value: state },
  }));
  g.branches = [...restored, ...g.branches].sort((x, y) => Number(x.key) - Number(y.key));
  delete g.done;
}

/** Starts a pending branch; 1 when it is running afterwards, 0 when it finished at once. */
function startBranch(c: Ctx, g: GroupRun, b: BranchRun): number {
  b.phase = 'running';
  startBranchStep(c, g, b, 0);
  return busy(b) ? 1 : 0;
}

/** The outcomes: by key for a parallel group, in item order for a forEach. */
function tagged(g: GroupRun): Record<string, BranchOutcome> | BranchOutcome[] {
  if (g.items !== undefined) return g.branches.map((b) => b.outcome ?? { ok: false, error: ABORTED });
  const results: Record<string, BranchOutcome> = {};
  for (const b of g.branches) if (b.outcome !== null) results[b.key] = b.outcome;
  return results;
}

/** Orders the queued branches for compensation: the last to settle goes first. */
function enqueueDown(g: GroupRun): void {
  g.queue = g.branches
    .filter((b) => b.phase === 'queued')
    .sort((x, y) => (y.settledSeq ?? -1) - (x.settledSeq ?? -1))
    .map((b) => b.key);
  g.queueAt = 0;
}

/** The next queued branch to compensate, if any. */
function nextQueued(g: GroupRun): BranchRun | undefined {
  if (g.queue === undefined) enqueueDown(g);
  const queue = g.queue ?? [];
  while ((g.queueAt ?? 0) < queue.length) {
    const key = queue[g.queueAt ?? 0] as string;
    g.queueAt = (g.queueAt ?? 0) + 1;
    const b = findBranch(g, key);
    if (b?.phase === 'queued') return b;
  }
  return undefined;
}

/** Every branch has settled: decide the group's outcome and which branches to compensate. */
function planGroup(c: Ctx, g: GroupRun, node: CompiledGroup): void {
  g.mode = 'down';
  const started = (b: BranchRun): boolean => b.phase === 'succeeded' || b.phase === 'failed' || b.phase === 'aborted';
  const fail = (): void => {
    g.plan = { kind: 'fail' };
    for (const b of g.branches) if (started(b)) b.phase = 'queued';
    enqueueDown(g);
  };
  if (g.failure !== null) {
    fail();
    return;
  }
  if (node.options.join === 'any' && g.winner === null) {
    const errors = g.branches.filter((b) => b.outcome !== null && !b.outcome.ok).map((b) => ({ branch: b.key, error: (b.outcome as { error: SerializedError }).error }));
    g.failure = {
      code: 'ALL_BRANCHES_FAILED',
      name: 'ParallelGroupError',
      message: `every branch of group ${quote(g.name)} failed: ${errors.map((e) => `${e.branch}: ${e.error.message}`).join('; ')}`,
      details: { errors },
    };
    turnDown(c, g.failure, FAILED);
    fail();
    return;
  }
  const results = tagged(g);
  let state: unknown;
  let gotoIndex: number | null = null;
  const into = node.options.into;
  if (into === undefined) {
    state = withResults(c.rec.state, Array.isArray(results) ? { [g.name]: results } : results);
  } else {
    let failure: SerializedError | null = null;
    try {
      const result = checkResult(into(c.env.hydrate(c.rec.state), results), `the into of group ${quote(g.name)}`, INTO_KINDS);
      if (result.kind === 'error') {
        failure = serializeError(result.reason);
      } else {
        state = c.env.dehydrate(result.state);
        if (result.kind === 'goto') {
          const target = takeJump(c, node, result.target);
          if (typeof target === 'number') gotoIndex = target;
          else failure = target;
        }
      }
    } catch (thrown) {
      failure = serializeThrown(thrown);
    }
    if (failure !== null) {
      g.failure = failure;
      turnDown(c, failure, FAILED);
      fail();
      return;
    }
  }
  const keep = g.branches.filter((b) => b.phase === 'succeeded' && (g.winner === null || b.key === g.winner)).map((b) => b.key);
  g.plan = { kind: 'succeed', state, gotoIndex, keep };
  const kept = new Set(keep);
  for (const b of g.branches) if (started(b) && !kept.has(b.key)) b.phase = 'queued';
  enqueueDown(g);
}

/**
 * Compensates the queued branches — at most `maxConcurrency` at once (one at a time when sequential), last settled
 * first — and finishes the group when none is left; halts in `compensation_failed` when one failed for good.
 */
function progressGroupDown(c: Ctx, g: GroupRun, node: CompiledGroup): void {
  let compensating = 0;
  let failed = false;
  for (const b of g.branches) {
    if (b.phase === 'compensating') compensating += 1;
    else if (b.phase === 'compensation_failed') failed = true;
  }
  if (failed) {
    if (compensating === 0) finish(c, 'compensation_failed', 'handleCompensationFailed');
    return;
  }
  const cap = node.options.compensation === 'sequential' ? 1 : node.options.maxConcurrency;
  while (compensating < cap) {
    const b = nextQueued(g);
    if (b === undefined) break;
    compensateBranch(c, g, b);
    if (b.phase === 'compensating') compensating += 1;
  }
  if (compensating === 0) finishGroup(c, g);
}

function finishGroup(c: Ctx, g: GroupRun): void {
  const rec = c.rec;
  const plan = g.plan;
  const next = groupNode(c, g).next;
  rec.group = null;
  c.effects.push({ type: 'hook', hook: 'handleGroupEnd', group: g.name });
  if (plan?.kind === 'succeed') {
    const keep = new Set(plan.keep);
    const kept = g.branches.filter((b) => keep.has(b.key));
    rec.flow.stack.push({
      kind: 'group',
      name: g.name,
      index: g.index,
      branches: kept.map((b) => ({ name: b.name, key: b.key, state: b.state, stack: b.flow.stack, settledSeq: b.settledSeq ?? 0 })),
    });
    rec.state = plan.state;
    advanceMain(c, plan.gotoIndex ?? next);
    return;
  }
  if (plan?.kind === 'unwind') rec.flow.stack.pop();
  compensateMain(c);
}

// ---------------------------------------------------------------------------------------------------------
// Statuses

function trackStatus(t: Track, up: InstanceStatus, down: InstanceStatus): InstanceStatus {
  if (t.flow.wait !== null || t.flow.retryAt !== null) return 'waiting';
  return t.flow.direction === 'up' ? up : down;
}

function branchStatus(b: BranchRun): InstanceStatus {
  switch (b.phase) {
    case 'succeeded':
      return 'completed';
    case 'compensated':
      return 'rolled_back';
    case 'compensation_failed':
      return 'compensation_failed';
    case 'failed':
    case 'aborted':
    case 'queued':
      return 'rolling_back';
    default:
      return trackStatus(b, 'running', 'rolling_back');
  }
}

/** Derives the instance status (and each branch's) from the tracks; final statuses are set where they happen. */
function refreshStatuses(rec: InstanceRecord): void {
  const g = rec.group;
  if (g !== null) for (const b of g.branches) b.flow.status = branchStatus(b);
  if (isFinalStatus(rec.flow.status) && (rec.flow.status !== 'compensation_failed' || !anyActive(rec))) return;
  if (g === null) {
    rec.flow.status = trackStatus(rec, 'running', 'rolling_back');
    return;
  }
  const parked = (b: BranchRun): boolean => b.flow.wait !== null || b.flow.retryAt !== null;
  const active = g.branches.filter((b) => b.flow.inFlight || parked(b));
  const allWaiting = active.length > 0 && active.every(parked);
  rec.flow.status = allWaiting ? 'waiting' : rec.flow.direction === 'up' ? 'running' : 'rolling_back';
}

function anyActive(rec: InstanceRecord): boolean {
  return rec.group?.branches.some((b) => b.flow.inFlight) ?? rec.flow.inFlight;
}
