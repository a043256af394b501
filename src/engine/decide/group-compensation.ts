// Compensating a group: its branches queued last-settled first, undone within the group's concurrency, and the
// group finished (forward with its results, or on down the main line) when none is left.
import type { CompiledGroup } from '../../workflow/workflow-definition';
import { findBranch, type BranchRun, type GroupRun } from '../instance-record';
import type { Ctx } from './context';
import { branchSteps, groupNode } from './group-node';
import { advanceMain, compensateMain, finish } from './main-line';
import { undoStep } from './track';

export function compensateBranch(c: Ctx, g: GroupRun, b: BranchRun): void {
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

/** Orders the queued branches for compensation: the last to settle goes first. */
export function enqueueDown(g: GroupRun): void {
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

/**
 * Compensates the queued branches — at most `maxConcurrency` at once (one at a time when sequential), last settled
 * first — and finishes the group when none is left; halts in `compensation_failed` when one failed for good.
 */
export function progressGroupDown(c: Ctx, g: GroupRun, node: CompiledGroup): void {
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
