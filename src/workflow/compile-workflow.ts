import { DefinitionError } from '../errors/definition-error';
import { quote } from '../errors/serialized-error';
import { checkBoolean, checkKnownKeys, optionKeys, readingOptions } from '../input/known-keys';
import { fingerprintOf, outlineNodes } from './workflow-outline';
import { OBSERVER_HOOKS, OBSERVER_WRAPPERS, type ObserverSpec } from '../observers/observer';

const OBSERVER_MEMBERS: readonly string[] = [...OBSERVER_HOOKS, ...OBSERVER_WRAPPERS];
import type { BranchSpec, ParallelSpec } from '../parallel/parallel';
import { toMillis, type Duration } from '../time/duration';
import { isStepClass, type StepClass } from '../steps/base-step';
import { stepMetadata } from '../steps/step-decorator';
import { checkJumpOptions } from '../steps/step-decorator';
import type { ForEachSpec, WhenSpec } from './control-flow';
import { JUMP_OPTION_KEYS, type JumpOptions } from './jumps';
import type {
  CompiledBranch,
  CompiledJumps,
  CompiledGroup,
  CompiledNode,
  CompiledStep,
  ExitOutcome,
  ObserverEntry,
  ResolvedParallelOptions,
  StateClass,
  WorkflowDefinition,
} from './workflow-definition';

/** A node in a workflow's step list: a step class (a `child(...)` node is one), a parallel group, a forEach or a when. */
export type WorkflowNode = StepClass | ParallelSpec | ForEachSpec | WhenSpec;

/** What defines a workflow. */
export interface WorkflowOptions<S = any> { // eslint-disable-line @typescript-eslint/no-explicit-any
  /** The workflow's stable name; it is persisted with every instance. */
  readonly name: string;
  /**
   * The definition's version, a positive integer. A runtime may register several versions of one name: `start`
   * uses the newest, and an instance always runs on the version it started with. @default 1
   */
  readonly version?: number;
  /** The steps, in order: step classes and `parallel(...)` groups. */
  readonly steps: readonly WorkflowNode[];
  /** Observers called around every step, in this order. @default [] */
  readonly observers?: readonly ObserverSpec<S>[];
  /** A class-validator class for the state; validated at `start`. @default no validation */
  readonly state?: StateClass<S>;
  /** Also validate the state after every step that returns ok; a failure fails the step. @default false */
  readonly validateStateAfterEachStep?: boolean;
  /** A whole-workflow deadline, counted from `start`: still going up then, the instance rolls back with `TIMEOUT`. @default none */
  readonly deadline?: Duration;
  /**
   * What a compensation that still fails after its retries does: `halt` stops the rollback there
   * (`compensation_failed`, the remaining compensations kept for `retryCompensation`/`skipCompensation`);
   * `continue` records the failure and runs the earlier compensations, ending `compensation_failed` with every
   * failure listed. @default 'halt'
   */
  readonly onCompensationError?: 'halt' | 'continue';
  /**
   * Called once when an instance that rolled back (or stopped in `compensation_failed`) ends, with its final error;
   * what it returns — an error reason, as for `error(reason)` — replaces that error before it is stored and returned
   * (hide an internal code, say). `undefined` keeps it. Synchronous; a throw keeps the error and is reported.
   * @default none
   */
  readonly onExit?: (outcome: ExitOutcome) => unknown;
}

/** The names of {@link WorkflowOptions}. */
const WORKFLOW_OPTION_KEYS = optionKeys<WorkflowOptions>()(['name', 'version', 'steps', 'observers', 'state', 'validateStateAfterEachStep', 'deadline', 'onCompensationError', 'onExit']);

function describe(value: unknown): string {
  if (typeof value === 'function') return `class ${value.name || '(anonymous)'}`;
  if (Array.isArray(value)) return 'an array';
  if (value === null) return 'null';
  if (typeof value === 'object') return `an object ${quote(Object.keys(value))}`;
  return `${typeof value} ${quote(value)}`;
}

function compileStep(value: unknown, index: number, where: string): CompiledStep {
  if (!isStepClass(value)) {
    const nested = ['parallel', 'forEach', 'when'].includes(kindOf(value) as string);
    throw new DefinitionError('NOT_A_STEP', nested ? `${where}: a ${kindOf(value) === 'parallel' ? 'parallel group' : (kindOf(value) as string)} cannot sit inside a branch or a forEach item; those are one step or a sequence of steps` : `${where}: ${describe(value)} is not a step; steps extend BaseStep`, {
      where,
    });
  }
  const meta = stepMetadata(value);
  if (meta === undefined) {
    throw new DefinitionError(
      'UNDECORATED_STEP',
      `${where}: class ${value.name} extends BaseStep but has no @Step({ name }) decorator; a stable name is required`,
      { where, className: value.name },
    );
  }
  return { kind: 'step', name: meta.name, index, cls: value, meta };
}

function isBranchSpec(value: unknown): value is BranchSpec {
  return kindOf(value) === 'branch';
}

const PARALLEL_OPTION_KEYS: readonly string[] = ['onError', 'join', 'maxConcurrency', 'compensation', 'into', ...JUMP_OPTION_KEYS];
const FOR_EACH_OPTION_KEYS: readonly string[] = ['onItemError', 'maxConcurrency', 'compensation', 'into', ...JUMP_OPTION_KEYS];

/** Checks a group's (or forEach's) options object against its known keys and value sets. */
function checkGroupOptions(o: Record<string, unknown>, keys: readonly string[], where: string): void {
  const bad = (field: string, value: unknown, expected: string): never => {
    throw new DefinitionError('BAD_OPTION', `${where}: option ${field} must be ${expected}, got ${quote(value)}`, {
      where,
      field,
    });
  };
  if (typeof o !== 'object' || o === null || Array.isArray(o)) bad('options', o, 'an object');
  checkKnownKeys(o, keys, where);
  const oneOf = (field: string, allowed: readonly string[]): void => {
    if (o[field] !== undefined && !allowed.includes(o[field] as string)) bad(field, o[field], allowed.map((a) => `'${a}'`).join(' or '));
  };
  oneOf('onError', ['failFast', 'completeAll']);
  oneOf('onItemError', ['failFast', 'continue']);
  oneOf('join', ['all', 'any']);
  oneOf('compensation', ['parallel', 'sequential']);
  const max = o.maxConcurrency;
  if (max !== undefined && max !== Number.POSITIVE_INFINITY && (typeof max !== 'number' || !Number.isInteger(max) || max < 1))
    bad('maxConcurrency', max, 'a positive integer (or Infinity)');
  if (o.into !== undefined && typeof o.into !== 'function') bad('into', o.into, 'a function');
  checkJumpOptions(o, where);
}

function resolveParallelOptions(spec: ParallelSpec, where: string): ResolvedParallelOptions {
  const o = spec.options ?? {};
  checkGroupOptions(o as Record<string, unknown>, PARALLEL_OPTION_KEYS, where);
  return {
    onError: o.onError ?? 'failFast',
    join: o.join ?? 'all',
    maxConcurrency: o.maxConcurrency ?? Number.POSITIVE_INFINITY,
    compensation: o.compensation ?? 'parallel',
    into: o.into,
  };
}

/** Where a node sits before its goto targets are resolved. */
type Placed = { index: number; next: number; scope: string; jumps: CompiledJumps | null };

function compileForEach(spec: ForEachSpec, place: Placed, where: string): CompiledGroup {
  if (typeof spec.name !== 'string' || !spec.name.trim()) {
    throw new DefinitionError('BAD_OPTION', `${where}: a forEach needs a non-empty name`, { where });
  }
  const at = `${where} forEach ${quote(spec.name)}`;
  if (typeof spec.items !== 'function') {
    throw new DefinitionError('BAD_OPTION', `${at}: items must be a function of the state returning an array`, { where: at, field: 'items' });
  }
  if (!Array.isArray(spec.steps) || spec.steps.length === 0) {
    throw new DefinitionError('EMPTY_GROUP', `${at} has no item steps; give it at least one`, { group: spec.name });
  }
  const o = spec.options ?? {};
  checkGroupOptions(o as Record<string, unknown>, FOR_EACH_OPTION_KEYS, at);
  const steps = spec.steps.map((s, i) => compileBranchStep(s, i, `${at} item step ${i}`));
  return {
    kind: 'group',
    name: spec.name,
    ...place,
    branches: [],
    options: {
      onError: o.onItemError === 'continue' ? 'completeAll' : 'failFast',
      join: 'all',
      maxConcurrency: o.maxConcurrency ?? 10,
      compensation: o.compensation ?? 'parallel',
      into: o.into,
    },
    each: { items: spec.items, steps },
  };
}

/** A step inside a branch or a forEach: it may not jump. */
function compileBranchStep(value: unknown, index: number, where: string): CompiledStep {
  const step = compileStep(value, index, where);
  if (step.meta.options.goto !== undefined) {
    throw new DefinitionError('GOTO_NOT_ALLOWED', `${where}: step ${quote(step.name)} declares goto targets, but a step inside a parallel branch or a forEach cannot jump`, {
      where,
      step: step.name,
    });
  }
  return step;
}

function compileGroup(spec: ParallelSpec, place: Placed, where: string): CompiledGroup {
  if (typeof spec.name !== 'string' || !spec.name.trim()) {
    throw new DefinitionError('BAD_OPTION', `${where}: a parallel group needs a non-empty name`, { where });
  }
  const groupWhere = `${where} group ${quote(spec.name)}`;
  if (!Array.isArray(spec.branches) || spec.branches.length === 0) {
    throw new DefinitionError('EMPTY_GROUP', `${groupWhere} has no branches; give it at least one`, {
      group: spec.name,
    });
  }
  const options = resolveParallelOptions(spec, groupWhere);
  const keys = new Set<string>();
  const names = new Set<string>();
  const branches: CompiledBranch[] = spec.branches.map((raw: unknown, b) => {
    const branchWhere = `${groupWhere} branch ${b}`;
    let name: string | undefined;
    let returns: string | undefined;
    let stepList: readonly unknown[];
    if (isBranchSpec(raw)) {
      name = raw.name;
      returns = raw.returns;
      stepList = raw.steps;
      if (typeof name !== 'string' || !name.trim())
        throw new DefinitionError('BAD_OPTION', `${branchWhere} needs a non-empty name`, { group: spec.name });
      if (returns !== undefined && (typeof returns !== 'string' || !returns.trim()))
        throw new DefinitionError('BAD_OPTION', `${branchWhere}: returns must be a non-empty string, got ${quote(returns)}`, { group: spec.name });
    } else {
      stepList = Array.isArray(raw) ? (raw as readonly unknown[]) : [raw];
    }
    if (stepList.length === 0) {
      throw new DefinitionError('EMPTY_GROUP', `${branchWhere} is an empty sequence; give it at least one step`, {
        group: spec.name,
      });
    }
    const steps = stepList.map((s, i) => compileBranchStep(s, i, `${branchWhere} step ${i}`));
    const branchName = name ?? steps.map((s) => s.name).join('+');
    const key = returns ?? branchName;
    if (names.has(branchName)) {
      throw new DefinitionError('DUPLICATE_BRANCH_KEY', `${groupWhere} has two branches named ${quote(branchName)}`, {
        group: spec.name,
        branch: branchName,
      });
    }
    if (keys.has(key)) {
      throw new DefinitionError('DUPLICATE_BRANCH_KEY', `${groupWhere} has two branches with the result key ${quote(key)}`, {
        group: spec.name,
        key,
      });
    }
    names.add(branchName);
    keys.add(key);
    return { name: branchName, key, steps };
  });
  return { kind: 'group', name: spec.name, ...place, branches, options };
}

/**
 * Validates observer registrations; `owner` names where they were given (a workflow, or the runtime).
 * @throws {@link DefinitionError} `BAD_OBSERVER`
 */
export function compileObservers(specs: readonly unknown[], owner: string, alongside: readonly ObserverEntry[] = []): ObserverEntry[] {
  if (!Array.isArray(specs)) throw new DefinitionError('BAD_OBSERVER', `${owner}: observers must be an array`, {});
  const entries = specs.map((o, i) => compileObserver(o, `${owner} observer ${i}`, i));
  const seen = new Set<unknown>(alongside.map((e) => e.observer));
  for (const [i, entry] of entries.entries()) {
    if (seen.has(entry.observer)) {
      throw new DefinitionError(
        'DUPLICATE_OBSERVER',
        `${owner} observer ${i} (${entry.label}) is registered ${alongside.some((e) => e.observer === entry.observer) ? 'by the workflow and the runtime both' : 'twice'}: each hook would run twice for every step; register it once`,
        { where: owner, observer: entry.label },
      );
    }
    seen.add(entry.observer);
  }
  return entries;
}

function compileObserver(spec: unknown, where: string, i: number): ObserverEntry {
  let target: unknown = spec;
  let critical = false;
  if (typeof spec === 'object' && spec !== null && 'observer' in spec) {
    target = (spec).observer;
    const c = (spec as { critical?: unknown }).critical;
    if (c !== undefined && typeof c !== 'boolean')
      throw new DefinitionError('BAD_OBSERVER', `${where}: critical must be a boolean`, { where });
    critical = c === true;
  }
  if (typeof target === 'function') {
    const proto = (target as { prototype?: Record<string, unknown> }).prototype ?? {};
    if (!OBSERVER_MEMBERS.some((h) => typeof proto[h] === 'function')) {
      throw new DefinitionError('BAD_OBSERVER', `${where}: ${describe(target)} has none of the hooks ${OBSERVER_MEMBERS.join(', ')}`, {
        where,
      });
    }
    return { observer: target as ObserverEntry['observer'], critical, label: (target as { name: string }).name };
  }
  if (typeof target !== 'object' || target === null) {
    throw new DefinitionError('BAD_OBSERVER', `${where}: ${describe(target)} is not an observer`, { where });
  }
  const hooks = target as Record<string, unknown>;
  const present = OBSERVER_MEMBERS.filter((h) => hooks[h] !== undefined);
  const notFunctions = present.filter((h) => typeof hooks[h] !== 'function');
  if (present.length === 0 || notFunctions.length > 0) {
    throw new DefinitionError(
      'BAD_OBSERVER',
      notFunctions.length > 0
        ? `${where}: ${notFunctions.join(', ')} must be functions`
        : `${where}: ${describe(target)} has none of the hooks ${OBSERVER_MEMBERS.join(', ')}`,
      { where },
    );
  }
  const ctorName = (target as { constructor?: { name?: string } }).constructor?.name;
  return {
    observer: target as ObserverEntry['observer'],
    critical,
    label: ctorName && ctorName !== 'Object' ? ctorName : `observer#${i}`,
  };
}

/**
 * Validates and compiles a workflow definition.
 * @throws {@link DefinitionError} for no steps, duplicate names, non-step classes, bad observers, empty groups.
 * @example
 * const checkout = defineWorkflow({ name: 'checkout', steps: [Reserve, Charge, Ship], state: OrderState });
 */
export function defineWorkflow<S = any>(options: WorkflowOptions<S>): WorkflowDefinition<S> { // eslint-disable-line @typescript-eslint/no-explicit-any
  return readingOptions('defineWorkflow', () => compileWorkflow(options));
}

function compileWorkflow<S>(options: WorkflowOptions<S>): WorkflowDefinition<S> {
  if (typeof options !== 'object' || options === null || typeof options.name !== 'string' || !options.name.trim()) {
    throw new DefinitionError('BAD_OPTION', `a workflow needs a non-empty string name, got ${quote((options as { name?: unknown } | null)?.name)}`);
  }
  const name = options.name;
  checkKnownKeys(options, WORKFLOW_OPTION_KEYS, `workflow ${quote(name)}`);
  checkBoolean(options.validateStateAfterEachStep, 'validateStateAfterEachStep', `workflow ${quote(name)}`);
  if (!Array.isArray(options.steps) || options.steps.length === 0) {
    throw new DefinitionError('NO_STEPS', `workflow ${quote(name)} has no steps; list at least one step class`, {
      workflow: name,
    });
  }
  if (options.state !== undefined && typeof options.state !== 'function') {
    throw new DefinitionError('BAD_STATE_CLASS', `workflow ${quote(name)}: state must be a class`, { workflow: name });
  }
  const compiled = compileMainList(name, options.steps);
  const { nodes, nodeIndex, steps } = compiled;
  const observers = compileObservers(options.observers ?? [], `workflow ${quote(name)}`);
  const onCompensationError = options.onCompensationError ?? 'halt';
  if (onCompensationError !== 'halt' && onCompensationError !== 'continue') {
    throw new DefinitionError('BAD_OPTION', `workflow ${quote(name)}: onCompensationError must be 'halt' or 'continue', got ${quote(onCompensationError)}`, {
      workflow: name,
    });
  }
  const deadlineMs = options.deadline === undefined ? null : toMillis(options.deadline, `workflow ${quote(name)}: deadline`);
  if (options.onExit !== undefined && typeof options.onExit !== 'function') {
    throw new DefinitionError('BAD_OPTION', `workflow ${quote(name)}: onExit must be a function, got ${quote(options.onExit)}`, { workflow: name, field: 'onExit' });
  }
  const version = options.version ?? 1;
  if (typeof version !== 'number' || !Number.isSafeInteger(version) || version < 1) {
    throw new DefinitionError('BAD_OPTION', `workflow ${quote(name)}: version must be a positive integer, got ${quote(version)}`, { workflow: name, field: 'version' });
  }
  const outlined = outlineNodes(nodes);
  const fingerprint = fingerprintOf(outlined);
  return {
    kind: 'workflow',
    name,
    version,
    fingerprint,
    outline: { name, version, fingerprint, nodes: outlined },
    nodes,
    observers,
    stateClass: options.state,
    validateStateAfterEachStep: options.validateStateAfterEachStep ?? false,
    deadlineMs,
    onCompensationError,
    onExit: options.onExit,
    nodeIndex,
    steps,
    children: compiled.children,
  };
}

function kindOf(node: unknown): unknown {
  return typeof node === 'object' && node !== null ? (node as { kind?: unknown }).kind : undefined;
}

/** A main-list node while the list is being built: `next` is fixed up when its block ends. */
type DraftNode = CompiledNode & { next: number; jumps: CompiledJumps | null };

/**
 * Flattens the step list into the main list: a `when` becomes a node followed by its then-block and else-block,
 * with each block's last nodes pointing past both. Then resolves every declared goto target.
 */
function compileMainList(workflow: string, list: readonly unknown[]): Pick<WorkflowDefinition, 'nodes' | 'nodeIndex' | 'steps' | 'children'> {
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
    if (step.meta.child !== undefined) children.add(step.meta.child.workflow);
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
