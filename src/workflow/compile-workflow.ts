import { DefinitionError } from '../errors/definition-error';
import { OBSERVER_HOOKS, OBSERVER_WRAPPERS, type ObserverSpec } from '../observers/observer';

const OBSERVER_MEMBERS: readonly string[] = [...OBSERVER_HOOKS, ...OBSERVER_WRAPPERS];
import type { BranchSpec, ParallelSpec } from '../parallel/parallel';
import { toMillis, type Duration } from '../time/duration';
import { isStepClass, type StepClass } from '../steps/base-step';
import { stepMetadata } from '../steps/step-decorator';
import type {
  CompiledBranch,
  CompiledGroup,
  CompiledNode,
  CompiledStep,
  ObserverEntry,
  ResolvedParallelOptions,
  StateClass,
  WorkflowDefinition,
} from './workflow-definition';

/** A node in a workflow's step list: a step class or a parallel group. */
export type WorkflowNode = StepClass | ParallelSpec;

/** What defines a workflow. */
export interface WorkflowOptions<S = any> { // eslint-disable-line @typescript-eslint/no-explicit-any
  /** The workflow's stable name; it is persisted with every instance. */
  readonly name: string;
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
}

function describe(value: unknown): string {
  if (typeof value === 'function') return `class ${value.name || '(anonymous)'}`;
  if (Array.isArray(value)) return 'an array';
  if (value === null) return 'null';
  if (typeof value === 'object') return `an object ${JSON.stringify(Object.keys(value))}`;
  return `${typeof value} ${JSON.stringify(value)}`;
}

function compileStep(value: unknown, index: number, where: string): CompiledStep {
  if (!isStepClass(value)) {
    const nested = typeof value === 'object' && value !== null && (value as { kind?: unknown }).kind === 'parallel';
    throw new DefinitionError('NOT_A_STEP', nested ? `${where}: a parallel group cannot sit inside a branch; a branch is one step or a sequence of steps` : `${where}: ${describe(value)} is not a step; steps extend BaseStep`, {
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
  return typeof value === 'object' && value !== null && (value as { kind?: unknown }).kind === 'branch';
}

const PARALLEL_OPTION_KEYS: ReadonlySet<string> = new Set(['onError', 'join', 'maxConcurrency', 'compensation', 'into']);

function resolveParallelOptions(spec: ParallelSpec, where: string): ResolvedParallelOptions {
  const o = spec.options ?? {};
  const bad = (field: string, value: unknown, expected: string): never => {
    throw new DefinitionError('BAD_OPTION', `${where}: option ${field} must be ${expected}, got ${JSON.stringify(value)}`, {
      where,
      field,
    });
  };
  if (typeof o !== 'object' || o === null || Array.isArray(o)) bad('options', o, 'an object');
  const unknown = Object.keys(o).filter((k) => !PARALLEL_OPTION_KEYS.has(k));
  if (unknown.length > 0) {
    throw new DefinitionError('BAD_OPTION', `${where}: unknown option ${unknown.map((k) => JSON.stringify(k)).join(', ')}; the options are ${[...PARALLEL_OPTION_KEYS].join(', ')}`, {
      where,
      field: unknown[0],
    });
  }
  if (o.onError !== undefined && o.onError !== 'failFast' && o.onError !== 'completeAll')
    bad('onError', o.onError, "'failFast' or 'completeAll'");
  if (o.join !== undefined && o.join !== 'all' && o.join !== 'any') bad('join', o.join, "'all' or 'any'");
  if (o.compensation !== undefined && o.compensation !== 'parallel' && o.compensation !== 'sequential')
    bad('compensation', o.compensation, "'parallel' or 'sequential'");
  if (o.maxConcurrency !== undefined && o.maxConcurrency !== Number.POSITIVE_INFINITY && (!Number.isInteger(o.maxConcurrency) || o.maxConcurrency < 1))
    bad('maxConcurrency', o.maxConcurrency, 'a positive integer (or Infinity)');
  if (o.into !== undefined && typeof o.into !== 'function') bad('into', o.into, 'a function');
  return {
    onError: o.onError ?? 'failFast',
    join: o.join ?? 'all',
    maxConcurrency: o.maxConcurrency ?? Number.POSITIVE_INFINITY,
    compensation: o.compensation ?? 'parallel',
    into: o.into,
  };
}

function compileGroup(spec: ParallelSpec, index: number, where: string): CompiledGroup {
  if (typeof spec.name !== 'string' || !spec.name.trim()) {
    throw new DefinitionError('BAD_OPTION', `${where}: a parallel group needs a non-empty name`, { where });
  }
  const groupWhere = `${where} group ${JSON.stringify(spec.name)}`;
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
        throw new DefinitionError('BAD_OPTION', `${branchWhere}: returns must be a non-empty string, got ${JSON.stringify(returns)}`, { group: spec.name });
    } else {
      stepList = Array.isArray(raw) ? (raw as readonly unknown[]) : [raw];
    }
    if (stepList.length === 0) {
      throw new DefinitionError('EMPTY_GROUP', `${branchWhere} is an empty sequence; give it at least one step`, {
        group: spec.name,
      });
    }
    const steps = stepList.map((s, i) => compileStep(s, i, `${branchWhere} step ${i}`));
    const branchName = name ?? steps.map((s) => s.name).join('+');
    const key = returns ?? branchName;
    if (names.has(branchName)) {
      throw new DefinitionError('DUPLICATE_BRANCH_KEY', `${groupWhere} has two branches named ${JSON.stringify(branchName)}`, {
        group: spec.name,
        branch: branchName,
      });
    }
    if (keys.has(key)) {
      throw new DefinitionError('DUPLICATE_BRANCH_KEY', `${groupWhere} has two branches with the result key ${JSON.stringify(key)}`, {
        group: spec.name,
        key,
      });
    }
    names.add(branchName);
    keys.add(key);
    return { name: branchName, key, steps };
  });
  return { kind: 'group', name: spec.name, index, branches, options };
}

/**
 * Validates observer registrations; `owner` names where they were given (a workflow, or the runtime).
 * @throws {@link DefinitionError} `BAD_OBSERVER`
 */
export function compileObservers(specs: readonly unknown[], owner: string): ObserverEntry[] {
  if (!Array.isArray(specs)) throw new DefinitionError('BAD_OBSERVER', `${owner}: observers must be an array`, {});
  return specs.map((o, i) => compileObserver(o, `${owner} observer ${i}`, i));
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
  if (typeof options !== 'object' || options === null || typeof options.name !== 'string' || !options.name.trim()) {
    throw new DefinitionError('BAD_OPTION', 'a workflow needs a non-empty string name');
  }
  const name = options.name;
  if (!Array.isArray(options.steps) || options.steps.length === 0) {
    throw new DefinitionError('NO_STEPS', `workflow ${JSON.stringify(name)} has no steps; list at least one step class`, {
      workflow: name,
    });
  }
  if (options.state !== undefined && typeof options.state !== 'function') {
    throw new DefinitionError('BAD_STATE_CLASS', `workflow ${JSON.stringify(name)}: state must be a class`, { workflow: name });
  }
  const nodes: CompiledNode[] = options.steps.map((node: unknown, i) => {
    const where = `workflow ${JSON.stringify(name)} step ${i}`;
    if (typeof node === 'object' && node !== null && (node as { kind?: unknown }).kind === 'parallel')
      return compileGroup(node as ParallelSpec, i, where);
    return compileStep(node, i, where);
  });
  const steps = new Map<string, CompiledStep>();
  const seen = new Set<string>();
  const claim = (n: string, what: string): void => {
    if (seen.has(n)) {
      throw new DefinitionError('DUPLICATE_NAME', `workflow ${JSON.stringify(name)} uses the name ${JSON.stringify(n)} twice (${what}); names must be unique`, {
        workflow: name,
        name: n,
      });
    }
    seen.add(n);
  };
  const nodeIndex = new Map<string, number>();
  for (const node of nodes) {
    claim(node.name, node.kind === 'group' ? 'a group' : 'a step');
    nodeIndex.set(node.name, node.index);
    if (node.kind === 'step') steps.set(node.name, node);
    else
      for (const b of node.branches)
        for (const s of b.steps) {
          claim(s.name, `a step in group ${node.name}`);
          steps.set(s.name, s);
        }
  }
  const observers = compileObservers(options.observers ?? [], `workflow ${JSON.stringify(name)}`);
  const onCompensationError = options.onCompensationError ?? 'halt';
  if (onCompensationError !== 'halt' && onCompensationError !== 'continue') {
    throw new DefinitionError('BAD_OPTION', `workflow ${JSON.stringify(name)}: onCompensationError must be 'halt' or 'continue', got ${JSON.stringify(onCompensationError)}`, {
      workflow: name,
    });
  }
  const deadlineMs = options.deadline === undefined ? null : toMillis(options.deadline, `workflow ${JSON.stringify(name)}: deadline`);
  return {
    kind: 'workflow',
    name,
    nodes,
    observers,
    stateClass: options.state,
    validateStateAfterEachStep: options.validateStateAfterEachStep ?? false,
    deadlineMs,
    onCompensationError,
    nodeIndex,
    steps,
  };
}
