import type { StepClass } from '../steps/base-step';
import type { JumpOptions } from '../steps/jumps';
import type { ErrorResult, GotoResult, OkResult, ReturnedState } from '../steps/step-result';
import type { ParallelResults } from './parallel-results';
import { checkOptions } from '../input/known-keys';
import { quote } from '../errors/serialized-error';

/**
 * What `into` returns: the next state, a failure, or a jump forward. The state's optional properties may hold
 * `undefined` ({@link ReturnedState}).
 */
export type IntoResult<S> = OkResult<ReturnedState<S>> | ErrorResult<ReturnedState<S>> | GotoResult<ReturnedState<S>>;

/** Options of a parallel group. */
export interface ParallelOptions<S = any> extends JumpOptions { // eslint-disable-line @typescript-eslint/no-explicit-any
  /**
   * `failFast`: at the first branch failure, start no more branches, abort the running ones, wait for all to
   * settle, compensate every branch that started, then the steps before the group.
   * `completeAll`: every branch settles; failed branches undo their own steps and their errors become results.
   * @default 'failFast'
   */
  readonly onError?: 'failFast' | 'completeAll';
  /**
   * `all`: the group succeeds when the branches do. `any`: the first branch to succeed wins, the others are
   * aborted and compensated; when all fail, the group fails with every branch's error.
   * @default 'all'
   */
  readonly join?: 'all' | 'any';
  /** How many branches run at once; the others start as running ones finish. @default unlimited */
  readonly maxConcurrency?: number;
  /**
   * How the group's branches are undone: all at once, or one after another in reverse order of settling.
   * @default 'parallel'
   */
  readonly compensation?: 'parallel' | 'sequential';
  /**
   * Replaces the default merge of results into `state.__results__`: receives the state at the group's start
   * and the tagged results, returns `ok(state)`, `error(reason)` or `goto(stepName, state)` (a target listed in `goto`).
   */
  readonly into?: (state: S, results: ParallelResults) => IntoResult<S>;
}

/** A named branch: one step or a sequence of steps. */
export interface BranchSpec {
  readonly kind: 'branch';
  readonly name: string;
  readonly steps: readonly StepClass[];
  /** The key of this branch's outcome in the results. @default the branch name */
  readonly returns?: string;
}

/** A parallel group as written in a workflow's step list. */
export interface ParallelSpec<S = any> { // eslint-disable-line @typescript-eslint/no-explicit-any
  readonly kind: 'parallel';
  readonly name: string;
  readonly branches: readonly (StepClass | readonly StepClass[] | BranchSpec)[];
  readonly options: ParallelOptions<S>;
}

/**
 * A named branch of a parallel group.
 * @example
 * branch('billing', [CreateCustomer, StartSubscription], { returns: 'bill' })
 */
export function branch(
  name: string,
  steps: StepClass | readonly StepClass[],
  options: { readonly returns?: string } = {},
): BranchSpec {
  checkOptions(options, ['returns'], `branch ${quote(name)}`);
  const list = Array.isArray(steps) ? (steps as readonly StepClass[]) : [steps as StepClass];
  return options.returns === undefined
    ? { kind: 'branch', name, steps: list }
    : { kind: 'branch', name, steps: list, returns: options.returns };
}

/**
 * Runs branches concurrently, each on its own copy of the state. A branch is a step class, an array of step
 * classes (a sequence), or a {@link branch}.
 * @example
 * parallel('setup', [SendWelcomeEmail, ProvisionWorkspace, branch('billing', SetUpBilling)], { maxConcurrency: 2 })
 */
export function parallel<S = any>( // eslint-disable-line @typescript-eslint/no-explicit-any
  name: string,
  branches: readonly (StepClass | readonly StepClass[] | BranchSpec)[],
  options: ParallelOptions<S> = {},
): ParallelSpec<S> {
  return { kind: 'parallel', name, branches, options };
}
