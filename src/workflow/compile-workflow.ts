// Defining a workflow: its options checked and compiled (steps, groups, forEach, when, observers) into a definition
// with its fingerprint.
import { DefinitionError } from '../errors/definition-error';
import { quote } from '../errors/serialized-error';
import { checkBoolean, checkKnownKeys, optionKeys, readingOptions } from '../input/known-keys';
import { fingerprintOf, outlineNodes } from './workflow-outline';
import type { ObserverSpec } from '../observers/observer';
import type { ParallelSpec } from '../parallel/parallel';
import { toMillis, type Duration } from '../time/duration';
import type { StepClass } from '../steps/base-step';
import { compileMainList } from './compile-main-list';
import { compileObservers } from './compile-observers';
import type { ForEachSpec, WhenSpec } from './control-flow';
import type { ExitOutcome, StateClass, WorkflowDefinition } from './workflow-definition';

// compileObservers moved to compile-observers.ts; it stays importable from here.
export { compileObservers } from './compile-observers';

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
