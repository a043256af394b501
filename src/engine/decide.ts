import type { SagaEvent } from '../bus/event';
import { eventMatchesWait } from '../bus/wait-match';
import { serializeError, type SerializedError } from '../errors/serialized-error';
import { PARALLEL_RESULTS_KEY, type BranchOutcome } from '../parallel/parallel-results';
import { checkResult, type WaitSpec } from '../steps/step-result';
import { backoffDelay, unitHash } from '../policies/backoff';
import { isRetryable } from '../policies/retry-policy';
import { NO_POLICY, type PolicyLookup, type StepPolicy } from '../policies/step-policy';
import { toMillis } from '../time/duration';
import type { CompiledGroup, CompiledStep, WorkflowDefinition } from '../workflow/workflow-definition';
import { isFinalStatus, type InstanceStatus, type StackEntry, type StepFunc, type Wait } from './flow-fields';
import {
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
  | { readonly type: 'skipCompensation' };

/** A handler's result, with the state already in its stored (JSON) form. */
export type Outcome =
  | { readonly kind: 'ok'; readonly state: unknown }
  | { readonly kind: 'continue'; readonly state: unknown; readonly wait: WaitSpec }
  | { readonly kind: 'goto'; readonly target: string; readonly state: unknown }
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
      failMain(c, h.error);
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
  }
}

// ---------------------------------------------------------------------------------------------------------
// Shared track mechanics (main line and branches alike)

function invoke(c: Ctx, ref: TrackRef, t: Track, func: StepFunc, event: SagaEvent | null = null): void {
  const f = t.flow;
  f.stepFunc = func;
  f.inFlight = true;
  f.wait = null;
  f.token += 1;
  f.handling = event;
  c.effects.push({ type: 'invoke', track: ref, step: f.stepName ?? '', func, token: f.token, event });
}

function enterStep(c: Ctx, ref: TrackRef, t: Track, step: { name: string; index: number }, func: 'run' | 'rollback'): void {
  t.flow.stepIndex = step.index;
  t.flow.stepName = step.name;
  t.flow.attempt = 1;
  t.flow.retryAt = null;
  t.flow.retryDelay = null;
  invoke(c, ref, t, func);
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
  return { code: 'GOTO_NOT_ALLOWED', name: 'GotoError', message: `goto ${JSON.stringify(target)} is not allowed ${why}`, details: { target } };
}

/** Index of a forward goto target on the main line, or the error explaining why it cannot be taken. */
function resolveGoto(c: Ctx, target: string, from: number): number | SerializedError {
  const index = c.env.def.nodeIndex.get(target);
  if (index === undefined) {
    return {
      code: 'UNKNOWN_GOTO_TARGET',
      name: 'GotoError',
      message: `goto ${JSON.stringify(target)}: workflow ${JSON.stringify(c.env.def.name)} has no step or group by that name`,
      details: { target },
    };
  }
  if (index <= from) {
    return {
      code: 'GOTO_BACKWARD',
      name: 'GotoError',
      message: `goto ${JSON.stringify(target)} jumps backwards from step ${from}; only forward jumps are allowed`,
      details: { target },
    };
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
  const b = g?.branches.find((x) => x.key === ref);
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
      message: `workflow ${JSON.stringify(rec.workflow)} passed its deadline before it completed`,
      details: { deadline: at, scope: 'workflow' },
    });
  }
  const t = trackOf(rec, ref);
  if (t === undefined) return false;
  const f = t.flow;
  if (f.retryAt === at && !f.inFlight) {
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
      message: `step ${JSON.stringify(f.stepName)} waited for ${topics} until its deadline and timed out`,
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
      if (outcome.kind === 'error' && !outcome.started) f.stack.pop();
      failMain(c, reason);
      return;
    }
    switch (outcome.kind) {
      case 'ok':
        advanceMain(c, f.stepIndex + 1);
        return;
      case 'continue':
        park(c, null, rec, outcome.wait);
        return;
      case 'goto': {
        const target = resolveGoto(c, outcome.target, f.stepIndex);
        if (typeof target === 'number') advanceMain(c, target);
        else failMain(c, target);
        return;
      }
      case 'error':
        if (!outcome.started) f.stack.pop();
        failMain(c, outcome.error);
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
  }
}

function finish(c: Ctx, status: InstanceStatus, hook: LifecycleHook): void {
  c.rec.flow.status = status;
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
  rec.flow.stack.push({ kind: 'step', name: node.name, index: node.index });
  enterStep(c, null, rec, node, 'run');
}

function turnDown(c: Ctx, reason: SerializedError): void {
  const f = c.rec.flow;
  f.errorReason = reason;
  f.direction = 'down';
  f.wait = null;
  c.effects.push({ type: 'hook', hook: 'handleStartRollback', group: null });
}

function failMain(c: Ctx, reason: SerializedError): void {
  turnDown(c, reason);
  compensateMain(c);
}

function compensateMain(c: Ctx): void {
  const rec = c.rec;
  const top = rec.flow.stack[rec.flow.stack.length - 1];
  if (top === undefined) {
    rec.flow.stepName = null;
    if (rec.compensationFailures.length > 0) finish(c, 'compensation_failed', 'handleCompensationFailed');
    else finish(c, 'rolled_back', 'handleWorkflowFailure');
    return;
  }
  if (top.kind === 'group') unwindGroup(c, top);
  else enterStep(c, null, rec, top, 'rollback');
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
  failMain(c, reason);
  return true;
}

function resume(c: Ctx): boolean {
  const rec = c.rec;
  if (isFinalStatus(rec.flow.status)) return false;
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
  const compiled = groupNode(c, g).branches.find((x) => x.key === b.key);
  if (compiled === undefined) throw new Error(`record refers to branch ${b.key}, which group ${g.name} does not have`);
  return compiled.steps;
}

function startGroup(c: Ctx, node: CompiledGroup): void {
  const rec = c.rec;
  rec.flow.stepIndex = node.index;
  rec.flow.stepName = node.name;
  rec.flow.stepFunc = 'run';
  rec.flow.attempt = 1;
  rec.group = {
    name: node.name,
    index: node.index,
    mode: 'up',
    branches: node.branches.map((b) => ({
      name: b.name,
      key: b.key,
      // Stored states are never changed in place (user code gets a hydrated copy), so branches may share one.
      state: rec.state,
      flow: freshFlow(),
      phase: 'pending',
      settledSeq: null,
      outcome: null,
    })),
    failure: null,
    nextSeq: 0,
    winner: null,
    plan: null,
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
  c.effects.push({ type: 'hook', hook: 'handleGroupStart', group: entry.name });
  progressGroup(c);
}

function startBranchStep(c: Ctx, g: GroupRun, b: BranchRun, index: number): void {
  const step = branchSteps(c, g, b)[index];
  if (step === undefined) {
    b.phase = 'succeeded';
    settle(g, b, { ok: true, value: b.state });
    if (c.env.def.nodes[g.index]?.kind === 'group' && groupNode(c, g).options.join === 'any' && g.mode === 'up') {
      g.winner = b.key;
      beginSettling(c, g);
    }
    return;
  }
  b.flow.stack.push({ kind: 'step', name: step.name, index: step.index });
  enterStep(c, b.key, b, step, 'run');
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
      b.flow.wait = null;
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
  }
  turnDown(c, reason);
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
    turnDown(c, error);
  }
}

function resolveBranch(c: Ctx, key: string, outcome: Outcome): void {
  const g = c.rec.group;
  const b = g?.branches.find((x) => x.key === key);
  if (g === null || b === undefined) return;
  if (b.phase === 'running') {
    if (outcome.kind === 'error' && !outcome.started) b.flow.stack.pop();
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
          branchFailed(c, g, b, outcome.error);
          break;
      }
    }
  } else if (b.phase === 'compensating') {
    switch (outcome.kind) {
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
  const step = branchSteps(c, g, b).find((s) => s.name === top.name) ?? { name: top.name, index: top.index };
  enterStep(c, b.key, b, step, 'rollback');
}

/** Moves a group on after any change: start branches, resolve once all settle, compensate, finish. */
function progressGroup(c: Ctx): void {
  const g = c.rec.group;
  if (g === null) return;
  const node = groupNode(c, g);
  if (g.mode === 'up') {
    let running = g.branches.filter((b) => b.phase === 'running').length;
    for (const b of g.branches) {
      if (g.mode !== 'up' || running >= node.options.maxConcurrency) break;
      if (b.phase !== 'pending') continue;
      b.phase = 'running';
      running += 1;
      startBranchStep(c, g, b, 0);
      if (b.phase === 'running') continue;
      running -= 1;
    }
  }
  if (g.mode !== 'down') {
    if (g.branches.some((b) => b.phase === 'running')) return;
    if (g.mode === 'up' && g.branches.some((b) => b.phase === 'pending')) return;
    planGroup(c, g, node);
  }
  progressGroupDown(c, g, node);
}

function tagged(g: GroupRun): Record<string, BranchOutcome> {
  const results: Record<string, BranchOutcome> = {};
  for (const b of g.branches) if (b.outcome !== null) results[b.key] = b.outcome;
  return results;
}

/** Every branch has settled: decide the group's outcome and which branches to compensate. */
function planGroup(c: Ctx, g: GroupRun, node: CompiledGroup): void {
  g.mode = 'down';
  const started = (b: BranchRun): boolean => b.phase === 'succeeded' || b.phase === 'failed' || b.phase === 'aborted';
  const fail = (): void => {
    g.plan = { kind: 'fail' };
    for (const b of g.branches) if (started(b)) b.phase = 'queued';
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
      message: `every branch of group ${JSON.stringify(g.name)} failed: ${errors.map((e) => `${e.branch}: ${e.error.message}`).join('; ')}`,
      details: { errors },
    };
    turnDown(c, g.failure);
    fail();
    return;
  }
  const results = tagged(g);
  let state: unknown;
  let gotoIndex: number | null = null;
  const into = node.options.into;
  if (into === undefined) {
    const base = c.rec.state;
    const previous = typeof base === 'object' && base !== null ? (base as Record<string, unknown>)[PARALLEL_RESULTS_KEY] : undefined;
    state = typeof base === 'object' && base !== null
      ? { ...(base as Record<string, unknown>), [PARALLEL_RESULTS_KEY]: { ...(typeof previous === 'object' && previous !== null ? previous : {}), ...results } }
      : base;
  } else {
    let failure: SerializedError | null = null;
    try {
      const result = checkResult(into(c.env.hydrate(c.rec.state), results), `the into of group ${JSON.stringify(g.name)}`, INTO_KINDS);
      if (result.kind === 'error') {
        failure = serializeError(result.reason);
      } else {
        state = c.env.dehydrate(result.state);
        if (result.kind === 'goto') {
          const target = resolveGoto(c, result.target, node.index);
          if (typeof target === 'number') gotoIndex = target;
          else failure = target;
        }
      }
    } catch (thrown) {
      failure = serializeError(thrown);
    }
    if (failure !== null) {
      g.failure = failure;
      turnDown(c, failure);
      fail();
      return;
    }
  }
  const keep = g.branches.filter((b) => b.phase === 'succeeded' && (g.winner === null || b.key === g.winner)).map((b) => b.key);
  g.plan = { kind: 'succeed', state, gotoIndex, keep };
  for (const b of g.branches) if (started(b) && !keep.includes(b.key)) b.phase = 'queued';
}

const INTO_KINDS = new Set(['ok', 'error', 'goto'] as const);

function progressGroupDown(c: Ctx, g: GroupRun, node: CompiledGroup): void {
  for (;;) {
    const compensating = g.branches.filter((b) => b.phase === 'compensating');
    if (g.branches.some((b) => b.phase === 'compensation_failed')) {
      if (compensating.length === 0) finish(c, 'compensation_failed', 'handleCompensationFailed');
      return;
    }
    const queued = g.branches
      .filter((b) => b.phase === 'queued')
      .sort((x, y) => (y.settledSeq ?? -1) - (x.settledSeq ?? -1));
    if (queued.length === 0 && compensating.length === 0) {
      finishGroup(c, g);
      return;
    }
    const toStart = node.options.compensation === 'parallel' ? queued : compensating.length === 0 ? queued.slice(0, 1) : [];
    if (toStart.length === 0) return;
    for (const b of toStart) compensateBranch(c, g, b);
    if (g.branches.some((b) => b.phase === 'compensating')) {
      if (node.options.compensation === 'parallel' || !toStart.every((b) => b.phase === 'compensated')) return;
    }
  }
}

function finishGroup(c: Ctx, g: GroupRun): void {
  const rec = c.rec;
  const plan = g.plan;
  rec.group = null;
  c.effects.push({ type: 'hook', hook: 'handleGroupEnd', group: g.name });
  if (plan?.kind === 'succeed') {
    const kept = g.branches.filter((b) => plan.keep.includes(b.key));
    rec.flow.stack.push({
      kind: 'group',
      name: g.name,
      index: g.index,
      branches: kept.map((b) => ({ name: b.name, key: b.key, state: b.state, stack: b.flow.stack, settledSeq: b.settledSeq ?? 0 })),
    });
    rec.state = plan.state;
    advanceMain(c, plan.gotoIndex ?? g.index + 1);
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
