// The main list: the step list flattened (a when becomes its node and its blocks), names checked unique, and every
// declared goto target resolved.
import { DefinitionError } from '../errors/definition-error';
import { quote } from '../errors/serialized-error';
import type { ParallelSpec } from '../parallel/parallel';
import { compileForEach, compileGroup, type Placed } from './compile-group';
import { compileStep } from './compile-step';
import type { ForEachSpec, WhenSpec } from './control-flow';
import { kindOf } from './definition-values';
import type { JumpOptions } from '../steps/jumps';
import type { CompiledJumps, CompiledNode, CompiledStep, WorkflowDefinition } from './workflow-definition';
import { childSpecOf } from './child-spec';

/** A main-list node while the list is being built: `next` is fixed up when its block ends. */
type DraftNode = CompiledNode & { next: number; jumps: CompiledJumps | null };

/**
 * Flattens the step list into the main list: a `when` becomes a node followed by its then-block and else-block,
 * with each block's last nodes pointing past both. Then resolves every declared goto target.
 */
export function compileMainList(workflow: string, list: readonly unknown[]): Pick<WorkflowDefinition, 'nodes' | 'nodeIndex' | 'steps' | 'children'> {
  const nodes: DraftNode[] = [];
  const declared: { index: number; options: JumpOptions; where: string }[] = [];
  const sequence = (items: readonly unknown[], where: string, scope: string): void => {
    items.forEach((item: unknown, i) => {
      const at = `${where} step ${i}`;
      const place: Placed = { index: nodes.length, next: nodes.length + 1, scope, jumps: null };
      switch (kindOf(item)) {
        case 'parallel': {
          const spec = item as ParallelSpec;
          nodes.push(compileGroup(spec, place, at));
          declared.push({ index: place.index, options: spec.options ?? {}, where: `${at} group ${quote(spec.name)}` });
          return;
        }
        case 'forEach': {
          const spec = item as ForEachSpec;
          nodes.push(compileForEach(spec, place, at));
          declared.push({ index: place.index, options: spec.options ?? {}, where: `${at} forEach ${quote(spec.name)}` });
          return;
        }
        case 'when': {
          const spec = item as WhenSpec;
          const whenName = spec.name ?? `when@${place.index}`;
          if (typeof spec.predicate !== 'function') {
            throw new DefinitionError('BAD_OPTION', `${at}: when needs a predicate function of the state`, { where: at });
          }
          if (typeof whenName !== 'string' || !whenName.trim()) throw new DefinitionError('BAD_OPTION', `${at}: a when's name must be a non-empty string`, { where: at });
          if (!Array.isArray(spec.steps) || spec.steps.length === 0) {
            throw new DefinitionError('NO_STEPS', `${at}: when ${quote(whenName)} has no steps for its true case; give it at least one`, { where: at });
          }
          const node = { kind: 'when' as const, name: whenName, predicate: spec.predicate, ...place, elseIndex: 0 };
          nodes.push(node);
          sequence(spec.steps, `${at} (when ${quote(whenName)}) then`, `${scope}${place.index}t/`);
          const elseIndex = nodes.length;
          sequence(Array.isArray(spec.elseSteps) ? spec.elseSteps : [], `${at} (when ${quote(whenName)}) else`, `${scope}${place.index}e/`);
          const after = nodes.length;
          for (let k = place.index + 1; k < elseIndex; k += 1) {
            const n = nodes[k] as DraftNode;
            if (n.next === elseIndex) n.next = after;
          }
          node.next = after;
          node.elseIndex = elseIndex;
          return;
        }
        default: {
          const step = compileStep(item, place.index, at);
          nodes.push({ ...step, ...place });
          if (step.meta.options.goto !== undefined || step.meta.options.allowLoop !== undefined) {
            declared.push({ index: place.index, options: step.meta.options, where: `${at} (${quote(step.name)})` });
          }
        }
      }
    });
  };
  sequence(list, `workflow ${quote(workflow)}`, '/');

  const steps = new Map<string, CompiledStep>();
  const children = new Set<WorkflowDefinition>();
  const seen = new Set<string>();
  const claim = (n: string, what: string): void => {
    if (seen.has(n)) {
      throw new DefinitionError('DUPLICATE_NAME', `workflow ${quote(workflow)} uses the name ${quote(n)} twice (${what}); names must be unique`, {
        workflow,
        name: n,
      });
    }
    seen.add(n);
  };
  const addStep = (step: CompiledStep, what: string): void => {
    claim(step.name, what);
    steps.set(step.name, step);
    const child = childSpecOf(step.cls);
    if (child !== undefined) children.add(child.workflow);
  };
  const nodeIndex = new Map<string, number>();
  for (const node of nodes) {
    nodeIndex.set(node.name, node.index);
    if (node.kind === 'step') addStep(node, 'a step');
    else if (node.kind === 'when') claim(node.name, 'a when');
    else {
      claim(node.name, node.each === undefined ? 'a group' : 'a forEach');
      for (const b of node.branches) for (const step of b.steps) addStep(step, `a step in group ${node.name}`);
      for (const step of node.each?.steps ?? []) addStep(step, `an item step of forEach ${node.name}`);
    }
  }
  for (const { index, options, where } of declared) {
    const node = nodes[index] as DraftNode;
    node.jumps = resolveJumps(node, options, where, nodeIndex, nodes);
  }
  return { nodes, nodeIndex, steps, children: [...children] };
}

/** Resolves a node's declared goto targets: each must exist, be in reach, and go forward unless loops are allowed. */
function resolveJumps(node: DraftNode, options: JumpOptions, where: string, nodeIndex: ReadonlyMap<string, number>, nodes: readonly DraftNode[]): CompiledJumps {
  const targets = new Map<string, number>();
  const loopMax = options.allowLoop?.max ?? 0;
  for (const target of options.goto ?? []) {
    const index = nodeIndex.get(target);
    if (index === undefined) {
      throw new DefinitionError('UNKNOWN_GOTO_TARGET', `${where}: goto target ${quote(target)} is not a step, group, forEach or named when of this workflow`, {
        where,
        target,
      });
    }
    const targetScope = (nodes[index] as DraftNode).scope;
    if (!node.scope.startsWith(targetScope)) {
      throw new DefinitionError('UNREACHABLE_GOTO_TARGET', `${where}: goto target ${quote(target)} sits inside another when block; a jump may only go to its own block or an enclosing one`, {
        where,
        target,
      });
    }
    if (index <= node.index && loopMax === 0) {
      throw new DefinitionError('GOTO_BACKWARD', `${where}: goto target ${quote(target)} is not ahead of it; a backward jump needs allowLoop: { max }`, {
        where,
        target,
      });
    }
    targets.set(target, index);
  }
  return { targets, loopMax };
}
