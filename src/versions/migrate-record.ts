/**
 * Moving an instance in flight to another version of its workflow, by name: its current position and every step on
 * its compensation stack must exist in the target (renamed through `map`), or nothing moves and the answer lists what
 * is missing. Pure: it returns the rewritten record; the runtime saves it.
 */
import { quote } from '../errors/serialized-error';
import type { StackEntry } from '../core/flow-fields';
import type { BranchRun, GroupRun, InstanceRecord } from '../engine/instance-record';
import type { CompiledGroup, CompiledNode, CompiledStep, WorkflowDefinition } from '../workflow/workflow-definition';

/** Old name → new name, for the steps, groups and `when`s a target version renamed. */
export type RenameMap = Readonly<Record<string, string>>;

/** The rewritten record, or everything of the instance that the target lacks. */
export type MigrationPlan = { readonly record: InstanceRecord } | { readonly missing: readonly string[] };

function describeNode(node: CompiledNode): string {
  if (node.kind === 'group') return node.each === undefined ? 'parallel group' : 'forEach';
  return node.kind;
}

/** Looks names up in the target, renaming through the map, and collects what it cannot find. */
class Target {
  readonly missing: string[] = [];

  constructor(
    readonly def: WorkflowDefinition,
    private readonly map: RenameMap,
  ) {}

  name(old: string): string {
    return this.map[old] ?? old;
  }

  /** The main-list node `old` names, when it exists with the kind wanted. */
  node<K extends CompiledNode['kind']>(old: string, kind: K, what: string, each?: boolean): Extract<CompiledNode, { kind: K }> | undefined {
    const name = this.name(old);
    const index = this.def.nodeIndex.get(name);
    const node = index === undefined ? undefined : this.def.nodes[index];
    const renamed = name === old ? '' : ` (renamed ${quote(name)})`;
    if (node === undefined) {
      this.missing.push(`${what} ${quote(old)}${renamed}: version ${this.def.version} has no ${kind === 'group' ? 'group' : kind} by that name`);
      return undefined;
    }
    if (node.kind !== kind || (kind === 'group' && each !== undefined && ((node as CompiledGroup).each !== undefined) !== each)) {
      this.missing.push(`${what} ${quote(old)}${renamed}: in version ${this.def.version} it is a ${describeNode(node)}`);
      return undefined;
    }
    return node as Extract<CompiledNode, { kind: K }>;
  }

  /** The steps of a branch (`key`) of a target group, or of its forEach items. */
  branchSteps(group: CompiledGroup, key: string, groupName: string): readonly CompiledStep[] | undefined {
    if (group.each !== undefined) return group.each.steps;
    const branch = group.branches.find((b) => b.key === key);
    if (branch === undefined) this.missing.push(`branch ${quote(key)} of group ${quote(groupName)}: version ${this.def.version} has no branch with that key`);
    return branch?.steps;
  }

  /** The index of step `old` among `steps`, or undefined (noted as missing). */
  stepIn(steps: readonly CompiledStep[], old: string, where: string): number | undefined {
    const name = this.name(old);
    const found = steps.find((s) => s.name === name);
    if (found === undefined) this.missing.push(`step ${quote(old)}${name === old ? '' : ` (renamed ${quote(name)})`} ${where}: version ${this.def.version} does not have it there`);
    return found?.index;
  }
}

/** A branch's stack with its step names mapped, each checked against the target branch's steps. */
function branchStack(t: Target, steps: readonly CompiledStep[], stack: readonly StackEntry[], where: string): StackEntry[] {
  return stack.map((entry) => {
    if (entry.kind !== 'step') {
      t.missing.push(`a ${entry.kind} ${quote(entry.name)} ${where}, where only steps can be`);
      return entry;
    }
    const index = t.stepIn(steps, entry.name, where);
    return { ...entry, name: t.name(entry.name), index: index ?? entry.index };
  });
}

/** The main compensation stack, mapped entry by entry. */
function mainStack(t: Target, stack: readonly StackEntry[]): StackEntry[] {
  return stack.map((entry): StackEntry => {
    switch (entry.kind) {
      case 'step': {
        const node = t.node(entry.name, 'step', 'step on the compensation stack');
        return node === undefined ? entry : { ...entry, name: node.name, index: node.index };
      }
      case 'when': {
        const node = t.node(entry.name, 'when', 'when on the compensation stack');
        return node === undefined ? entry : { ...entry, name: node.name, index: node.index };
      }
      case 'group': {
        const node = t.node(entry.name, 'group', 'group on the compensation stack');
        if (node === undefined) return entry;
        const branches = entry.branches.map((b) => {
          const steps = t.branchSteps(node, b.key, entry.name);
          if (steps === undefined) return b;
          const name = node.each === undefined ? (node.branches.find((x) => x.key === b.key)?.name ?? b.name) : `${node.name}[${b.key}]`;
          return { ...b, name, stack: branchStack(t, steps, b.stack, `in branch ${quote(b.key)} of group ${quote(entry.name)}`) };
        });
        return { ...entry, name: node.name, index: node.index, branches };
      }
    }
  });
}

/** The group in progress, mapped: same kind of group, every branch and every branch position found. */
function groupRun(t: Target, g: GroupRun): GroupRun {
  const node = t.node(g.name, 'group', 'the group in progress', g.items !== undefined);
  if (node === undefined) return g;
  const mapBranch = (b: BranchRun): BranchRun => {
    const steps = t.branchSteps(node, b.key, g.name);
    if (steps === undefined) return b;
    const where = `in branch ${quote(b.key)} of group ${quote(g.name)}`;
    const flow = { ...b.flow, stack: branchStack(t, steps, b.flow.stack, where) };
    if (b.flow.stepName !== null) {
      const index = t.stepIn(steps, b.flow.stepName, where);
      flow.stepName = t.name(b.flow.stepName);
      if (index !== undefined) flow.stepIndex = index;
    }
    const name = node.each === undefined ? (node.branches.find((x) => x.key === b.key)?.name ?? b.name) : `${node.name}[${b.key}]`;
    return { ...b, name, flow };
  };
  const done = g.done?.map(([i, state, seq, stack]): [number, unknown, number, StackEntry[]] => {
    const steps = t.branchSteps(node, String(i), g.name) ?? [];
    return [i, state, seq, branchStack(t, steps, stack, `in item ${i} of forEach ${quote(g.name)}`)];
  });
  return { ...g, name: node.name, index: node.index, branches: g.branches.map(mapBranch), ...(done === undefined ? {} : { done }) };
}

/**
 * Plans the move of `record` to `target`: every name on its stack and its position must exist there (after `map`);
 * the record comes back rewritten — names, indexes, version, fingerprint — and unblocked, or the answer lists what is
 * missing.
 * @example
 * const plan = planMigration(record, OrderV2, { 'charge-card': 'charge-payment' });
 * if ('missing' in plan) console.log(plan.missing);
 */
export function planMigration(record: InstanceRecord, target: WorkflowDefinition, map: RenameMap = {}): MigrationPlan {
  const t = new Target(target, map);
  const next: InstanceRecord = structuredClone(record);
  next.flow.stack = mainStack(t, record.flow.stack);
  if (record.group !== null) {
    next.group = groupRun(t, record.group);
    next.flow.stepName = next.group.name;
    next.flow.stepIndex = next.group.index;
  } else if (record.flow.stepName !== null) {
    const name = record.flow.stepName;
    const index = target.nodeIndex.get(t.name(name));
    const node = index === undefined ? undefined : target.nodes[index];
    if (node === undefined) t.missing.push(`the current step ${quote(name)}: version ${target.version} has no node by that name`);
    else if (node.kind !== 'step') t.missing.push(`the current step ${quote(name)}: in version ${target.version} it is a ${describeNode(node)}`);
    else {
      next.flow.stepName = node.name;
      next.flow.stepIndex = node.index;
    }
  } else if (record.flow.stack.length > 0 && record.flow.direction === 'up') {
    next.flow.stepIndex = target.nodes.length;
  }
  if (record.loops !== undefined) next.loops = Object.fromEntries(Object.entries(record.loops).map(([k, v]) => [t.name(k), v]));
  if (t.missing.length > 0) return { missing: t.missing };
  next.workflowVersion = target.version;
  next.fingerprint = target.fingerprint;
  if (next.blocked !== undefined) {
    next.flow.status = next.blocked.status;
    delete next.blocked;
  }
  return { record: next };
}
