// Where a group's run meets its compiled node: the node itself, a branch's steps, and a fresh branch run.
import type { CompiledGroup, CompiledStep } from '../../workflow/workflow-definition';
import { freshFlow, type BranchRun, type GroupRun } from '../instance-record';
import type { Ctx } from './context';

export function groupNode(c: Ctx, g: GroupRun): CompiledGroup {
  const node = c.env.def.nodes[g.index];
  if (node === undefined || node.kind !== 'group' || node.name !== g.name) {
    throw new Error(`record refers to group ${g.name} at ${g.index}, which the workflow does not have`);
  }
  return node;
}

export function branchSteps(c: Ctx, g: GroupRun, b: BranchRun): readonly CompiledStep[] {
  const node = groupNode(c, g);
  if (node.each !== undefined) return node.each.steps;
  const compiled = node.branches.find((x) => x.key === b.key);
  if (compiled === undefined) throw new Error(`record refers to branch ${b.key}, which group ${g.name} does not have`);
  return compiled.steps;
}

/** A fresh branch run. */
export function branchRun(name: string, key: string, state: unknown): BranchRun {
  return { name, key, state, flow: freshFlow(), phase: 'pending', settledSeq: null, outcome: null };
}
