// Parallel groups (and forEach, which runs as one) going up: starting branches within the group's concurrency,
// settling them, aborting on failFast or a request, and planning the group's outcome once every branch settled.
import { serializeError, serializeThrown, quote, type SerializedError } from '../../errors/serialized-error';
import { INTO_KINDS, withResults, type BranchOutcome } from '../../parallel/parallel-results';
import { checkResult } from '../../steps/step-result';
import type { CompiledGroup } from '../../workflow/workflow-definition';
import type { StackEntry } from '../../core/flow-fields';
import { findBranch, freshFlow, type BranchRun, type GroupRun } from '../instance-record';
import { controlled, resolveBranchTrial, tryBranchControls } from './compensation-control';
import type { Ctx } from './context';
import { itemRun, readItems, restoreDone } from './for-each';
import { compensateBranch, enqueueDown, progressGroupDown } from './group-compensation';
import { branchRun, branchSteps, groupNode } from './group-node';
import { gotoNotAllowed, takeJump } from './jumps';
import { compensationFailed, failMain, FAILED, turnDown } from './main-line';
import { dropIfNeverStarted, park, startStep, stopTrack } from './track';
import type { Outcome } from './types';

export function startGroup(c: Ctx, node: CompiledGroup): void {
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

export function unwindGroup(c: Ctx, entry: Extract<StackEntry, { kind: 'group' }>): void {
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

export function startBranchStep(c: Ctx, g: GroupRun, b: BranchRun, index: number): void {
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
  c.effects.push({ type: 'abort', track: b.key, reason: branchAbortReason(g) });
}

/** Why the running branches of a group that is not going up any more are aborted: its failure, when it has one. */
export function branchAbortReason(g: GroupRun): SerializedError {
  return g.failure ?? ABORTED;
}

/** After a restart, the handlers of a settling group are called again: abort them again, after their invoke effects. */
export function resumeGroup(c: Ctx, g: GroupRun): void {
  if (g.mode !== 'settling') return;
  for (const b of g.branches) if (b.phase === 'running' && b.flow.inFlight) abortBranch(c, g, b);
}

/**
 * A rollback requested from outside while a group is in progress: start no more branches, abort the running
 * ones with the request as the reason, and undo every branch that started (those a completeAll or join-any group
 * was keeping included), then the steps before the group.
 */
export function rollBackGroup(c: Ctx, g: GroupRun, reason: SerializedError): void {
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

export function branchFailed(c: Ctx, g: GroupRun, b: BranchRun, error: SerializedError): void {
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

export function resolveBranch(c: Ctx, key: string, outcome: Outcome): void {
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

/** Moves a group on after any change: start branches, resolve once all settle, compensate, finish. */
export function progressGroup(c: Ctx): void {
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
