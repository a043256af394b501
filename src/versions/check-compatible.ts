/**
 * A deploy-time answer to "can the instances of this version move to that one?": every position an instance of the
 * old definition can be in — at each step going up and coming down, in each group — is tried with the same planner
 * `runtime.migrate` uses, and checked for order: a step the new version runs before that position would be skipped,
 * a step it already ran that comes after it would run again.
 */
import { quote } from '../errors/serialized-error';
import type { StackEntry } from '../core/flow-fields';
import { freshFlow, newRecord, type BranchRun, type GroupRun, type InstanceRecord } from '../engine/instance-record';
import { workflowDefinition, type WorkflowRef } from '../workflow/workflow-decorator';
import type { CompiledGroup, CompiledNode, CompiledStep, WorkflowDefinition } from '../workflow/workflow-definition';
import { planMigration, type RenameMap } from './migrate-record';

/** One place an instance of the old definition can be, and whether it can move. */
export interface PositionReport {
  /** Where, in words: `running "charge"`, `compensating "charge"`, `in group "ship"`, `compensating group "ship"`. */
  readonly position: string;
  readonly direction: 'up' | 'down';
  /** The step or group it is at. */
  readonly node: string;
  /** `runtime.migrate` would move an instance here: its position and every step it may have to compensate exist. */
  readonly movable: boolean;
  /** Movable, and it would go on as on the old version: nothing it ran runs again, nothing before it is skipped. */
  readonly compatible: boolean;
  /** Why not, when it is not; empty otherwise. */
  readonly reasons: readonly string[];
}

/** What {@link checkCompatible} finds. */
export interface CompatibilityReport {
  /** True when every position is compatible. */
  readonly compatible: boolean;
  readonly from: { readonly version: number; readonly fingerprint: string };
  readonly to: { readonly version: number; readonly fingerprint: string };
  readonly positions: readonly PositionReport[];
}

type Placed = Exclude<CompiledNode, { kind: 'when' }>;

/** The segments of a block scope: `/3t/5e/` → `['3t', '5e']`. */
function segments(scope: string): string[] {
  return scope.split('/').filter((s) => s.length > 0);
}

/** True when `a` and `b` sit in the two different blocks of one `when` (one never runs when the other does). */
function exclusive(a: string, b: string): boolean {
  const x = segments(a);
  const y = segments(b);
  for (let i = 0; i < Math.min(x.length, y.length); i += 1) {
    if (x[i] === y[i]) continue;
    return (x[i] as string).slice(0, -1) === (y[i] as string).slice(0, -1);
  }
  return false;
}

/** The nodes an instance may have run before reaching `at` (both blocks of a finished `when` included). */
function before(def: WorkflowDefinition, at: CompiledNode): CompiledNode[] {
  return def.nodes.filter((n) => n.index < at.index && !exclusive(n.scope, at.scope));
}

function branchEntries(group: CompiledGroup): { key: string; name: string; steps: readonly CompiledStep[] }[] {
  return group.each === undefined ? group.branches.map((b) => ({ key: b.key, name: b.name, steps: b.steps })) : [{ key: '0', name: `${group.name}[0]`, steps: group.each.steps }];
}

function stepEntry(step: CompiledStep): StackEntry {
  return { kind: 'step', name: step.name, index: step.index };
}

/** The stack entry a node that ran leaves, with every step it may have run. */
function entryOf(node: CompiledNode): StackEntry {
  switch (node.kind) {
    case 'step':
      return stepEntry(node);
    case 'when':
      return { kind: 'when', name: node.name, index: node.index, branch: 'then' };
    case 'group':
      return {
        kind: 'group',
        name: node.name,
        index: node.index,
        branches: branchEntries(node).map((b, i) => ({ name: b.name, key: b.key, state: {}, stack: b.steps.map(stepEntry), settledSeq: i })),
      };
  }
}

/** A group in progress with every branch having run every one of its steps, so each must exist to move. */
function groupInProgress(group: CompiledGroup, down: boolean): GroupRun {
  const branches = branchEntries(group).map(
    (b, i): BranchRun => ({
      name: b.name,
      key: b.key,
      state: {},
      flow: { ...freshFlow(), direction: down ? 'down' : 'up', stepName: b.steps[b.steps.length - 1]?.name ?? null, stepIndex: b.steps.length - 1, stack: b.steps.map(stepEntry) },
      phase: down ? 'compensating' : 'running',
      settledSeq: down ? i : null,
      outcome: null,
    }),
  );
  return {
    name: group.name,
    index: group.index,
    mode: down ? 'down' : 'up',
    branches,
    failure: null,
    nextSeq: branches.length,
    winner: null,
    plan: down ? { kind: 'fail' } : null,
    ...(group.each === undefined ? {} : { items: [{}], nextItem: 1, done: [] }),
  };
}

/** A record of `def` at `node`, going up or down, with everything that may have run before it on its stack. */
function recordAt(def: WorkflowDefinition, node: Placed, down: boolean): InstanceRecord {
  const record = newRecord('check', def.name, {}, 0, null, def);
  record.flow.direction = down ? 'down' : 'up';
  record.flow.stepFunc = down ? 'rollback' : 'run';
  record.flow.stepName = node.name;
  record.flow.stepIndex = node.index;
  record.flow.stack = before(def, node).map(entryOf);
  if (node.kind === 'group') record.group = groupInProgress(node, down);
  else record.flow.stack.push(stepEntry(node));
  return record;
}

/** Order hazards of moving an instance that is going up at `node` of `from` to `to`. */
function orderHazards(from: WorkflowDefinition, to: WorkflowDefinition, node: Placed, map: RenameMap): string[] {
  const rename = (name: string): string => map[name] ?? name;
  const target = to.nodes[to.nodeIndex.get(rename(node.name)) ?? -1];
  if (target === undefined) return [];
  const ran = new Set(before(from, node).filter((n) => n.kind !== 'when').map((n) => rename(n.name)));
  const reasons: string[] = [];
  for (const n of before(to, target)) {
    if (n.kind !== 'when' && !ran.has(n.name)) reasons.push(`${quote(n.name)} comes before ${quote(target.name)} in version ${to.version} but never ran: it would be skipped`);
  }
  ran.add(target.name);
  for (const n of to.nodes) {
    if (n.index > target.index && n.kind !== 'when' && ran.has(n.name)) reasons.push(`${quote(n.name)} already ran but comes after ${quote(target.name)} in version ${to.version}: it would run again`);
  }
  if (node.kind === 'group' && target.kind === 'group') {
    const had = new Set(branchEntries(node).map((b) => b.key));
    for (const b of branchEntries(target)) if (!had.has(b.key)) reasons.push(`branch ${quote(b.key)} of group ${quote(target.name)} is new in version ${to.version}: a group in progress would never start it`);
  }
  return reasons;
}

/**
 * Says, for every position an instance of `from` can be in, whether it can move to `to` (`runtime.migrate` would
 * accept it) and whether it would then go on as it would have on `from`. Run it in CI before deploying a changed
 * definition: a position that is not compatible is one where in-flight instances need the old version kept
 * registered (or a `map`, or to be left to finish).
 * @example
 * const report = checkCompatible(OrderCheckoutV1, OrderCheckoutV2, { map: { 'charge-card': 'charge-payment' } });
 * expect(report.positions.filter((p) => !p.compatible)).toEqual([]);
 */
export function checkCompatible(from: WorkflowRef, to: WorkflowRef, options: { readonly map?: RenameMap } = {}): CompatibilityReport {
  const old = workflowDefinition(from);
  const next = workflowDefinition(to);
  const map = options.map ?? {};
  const positions: PositionReport[] = [];
  for (const node of old.nodes) {
    if (node.kind === 'when') continue;
    const what = node.kind === 'group' ? (node.each === undefined ? 'group' : 'forEach') : '';
    for (const down of [false, true]) {
      const plan = planMigration(recordAt(old, node, down), next, map);
      const missing = 'missing' in plan ? [...plan.missing] : [];
      const hazards = down || missing.length > 0 ? [] : orderHazards(old, next, node, map);
      const position = `${down ? 'compensating' : node.kind === 'group' ? 'in' : 'running'} ${what === '' ? '' : `${what} `}${quote(node.name)}`;
      positions.push({
        position,
        direction: down ? 'down' : 'up',
        node: node.name,
        movable: missing.length === 0,
        compatible: missing.length === 0 && hazards.length === 0,
        reasons: [...missing, ...hazards],
      });
    }
  }
  return {
    compatible: positions.every((p) => p.compatible),
    from: { version: old.version, fingerprint: old.fingerprint },
    to: { version: next.version, fingerprint: next.fingerprint },
    positions,
  };
}
