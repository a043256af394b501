/**
 * The structure of a workflow definition as plain JSON, nested as it was written: what the fingerprint hashes,
 * what `describe()` prints and what an inspector draws without loading the workflow's code.
 */
import { createHash } from 'node:crypto';
import type { CompiledNode, CompiledStep, MainListPlace } from './workflow-definition';
import { childSpecOf } from './child-spec';

/** A step: on the main line, in a branch or a forEach item. `child` names the workflow a `child(...)` step starts. */
export interface OutlineStep {
  readonly kind: 'step';
  readonly name: string;
  readonly child?: string;
  /** Declared goto targets (main-line steps only). */
  readonly goto?: readonly string[];
  /** `allowLoop.max`, when the node may jump back. */
  readonly loop?: number;
}

/** A branch of a parallel group. */
export interface OutlineBranch {
  readonly name: string;
  /** Its key in the group's results. */
  readonly key: string;
  readonly steps: readonly OutlineStep[];
}

/** A parallel group. */
export interface OutlineParallel {
  readonly kind: 'parallel';
  readonly name: string;
  readonly branches: readonly OutlineBranch[];
  readonly onError: 'failFast' | 'completeAll';
  readonly join: 'all' | 'any';
  readonly compensation: 'parallel' | 'sequential';
  /** null: unlimited. */
  readonly maxConcurrency: number | null;
  readonly goto?: readonly string[];
  readonly loop?: number;
}

/** A forEach: its item steps run once per item. */
export interface OutlineForEach {
  readonly kind: 'forEach';
  readonly name: string;
  readonly steps: readonly OutlineStep[];
  readonly onItemError: 'failFast' | 'continue';
  readonly compensation: 'parallel' | 'sequential';
  readonly maxConcurrency: number | null;
  readonly goto?: readonly string[];
  readonly loop?: number;
}

/** A `when`: the then-block, and the else-block (empty when there is none). */
export interface OutlineWhen {
  readonly kind: 'when';
  readonly name: string;
  readonly then: readonly OutlineNode[];
  readonly else: readonly OutlineNode[];
}

/** One node of a {@link WorkflowOutline}, as written in the workflow: a step, a parallel group, a forEach or a `when`. */
export type OutlineNode = OutlineStep | OutlineParallel | OutlineForEach | OutlineWhen;

/** A whole definition: its name, version, structural fingerprint and nodes. */
export interface WorkflowOutline {
  readonly name: string;
  readonly version: number;
  /** A hash of the structure: its node kinds, step names, groups, blocks, children and goto targets. */
  readonly fingerprint: string;
  readonly nodes: readonly OutlineNode[];
}

function jumpsOf(place: MainListPlace): { goto?: readonly string[]; loop?: number } {
  const out: { goto?: readonly string[]; loop?: number } = {};
  if (place.jumps === null) return out;
  if (place.jumps.targets.size > 0) out.goto = [...place.jumps.targets.keys()];
  if (place.jumps.loopMax > 0) out.loop = place.jumps.loopMax;
  return out;
}

function stepOutline(step: CompiledStep, place?: MainListPlace): OutlineStep {
  const child = childSpecOf(step.cls)?.workflow.name;
  return { kind: 'step', name: step.name, ...(child === undefined ? {} : { child }), ...(place === undefined ? {} : jumpsOf(place)) };
}

function finite(n: number): number | null {
  return Number.isFinite(n) ? n : null;
}

/** The nested outline of the flattened main list between `from` and `to` (a `when` owns the nodes of its blocks). */
function outlineRange(nodes: readonly CompiledNode[], from: number, to: number): OutlineNode[] {
  const out: OutlineNode[] = [];
  let i = from;
  while (i < to) {
    const node = nodes[i] as CompiledNode;
    switch (node.kind) {
      case 'step':
        out.push(stepOutline(node, node));
        i += 1;
        break;
      case 'when':
        out.push({ kind: 'when', name: node.name, then: outlineRange(nodes, i + 1, node.elseIndex), else: outlineRange(nodes, node.elseIndex, node.next) });
        i = node.next;
        break;
      case 'group': {
        const o = node.options;
        if (node.each !== undefined) {
          out.push({
            kind: 'forEach',
            name: node.name,
            steps: node.each.steps.map((s) => stepOutline(s)),
            onItemError: o.onError === 'completeAll' ? 'continue' : 'failFast',
            compensation: o.compensation,
            maxConcurrency: finite(o.maxConcurrency),
            ...jumpsOf(node),
          });
        } else {
          out.push({
            kind: 'parallel',
            name: node.name,
            branches: node.branches.map((b) => ({ name: b.name, key: b.key, steps: b.steps.map((s) => stepOutline(s)) })),
            onError: o.onError,
            join: o.join,
            compensation: o.compensation,
            maxConcurrency: finite(o.maxConcurrency),
            ...jumpsOf(node),
          });
        }
        i += 1;
        break;
      }
    }
  }
  return out;
}

/** The nested outline of a compiled main list. */
export function outlineNodes(nodes: readonly CompiledNode[]): OutlineNode[] {
  return outlineRange(nodes, 0, nodes.length);
}

/**
 * What the fingerprint covers: node kinds, names, branch keys, the steps of branches and items, the workflows
 * children start, `when` blocks and goto targets. Policies (retries, timeouts, concurrency, join and error modes)
 * and the code inside handlers are left out: changing them never strands an instance in flight.
 */
function structural(node: OutlineNode): unknown {
  const targets = (goto: readonly string[] | undefined): unknown => (goto === undefined ? [] : [...goto].sort());
  switch (node.kind) {
    case 'step':
      return ['step', node.name, node.child ?? null, targets(node.goto)];
    case 'parallel':
      return ['parallel', node.name, node.branches.map((b) => [b.name, b.key, b.steps.map(structural)]), targets(node.goto)];
    case 'forEach':
      return ['forEach', node.name, node.steps.map(structural), targets(node.goto)];
    case 'when':
      return ['when', node.name, node.then.map(structural), node.else.map(structural)];
  }
}

/**
 * A stable hash of a definition's structure (16 hex digits of a SHA-256): the same for the same structure in
 * every process and release, different when a step is added, removed, renamed or moved.
 */
export function fingerprintOf(nodes: readonly OutlineNode[]): string {
  return createHash('sha256').update(JSON.stringify(nodes.map(structural))).digest('hex').slice(0, 16);
}
