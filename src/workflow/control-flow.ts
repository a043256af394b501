import type { BranchOutcome } from '../parallel/parallel-results';
import type { IntoResult } from '../parallel/parallel';
import type { StepClass } from '../steps/base-step';
import type { JumpOptions } from '../steps/jumps';
import { checkOptions, optionKeys } from '../input/known-keys';

/** A `when` node as written in a workflow's step list. */
export interface WhenSpec<S = any> { // eslint-disable-line @typescript-eslint/no-explicit-any
  readonly kind: 'when';
  /** Picks the block: `steps` when it returns true, `elseSteps` otherwise. */
  readonly predicate: (state: S) => boolean;
  readonly steps: readonly unknown[];
  readonly elseSteps: readonly unknown[];
  /** Its name in the history and the compensation stack, and as a goto target. @default `when@<index>` */
  readonly name?: string;
}

/** Options of {@link when}. */
export interface WhenOptions {
  /** A stable name (history, compensation stack, goto target). @default `when@<its index in the flattened step list>` */
  readonly name?: string;
}

const WHEN_OPTION_KEYS = optionKeys<WhenOptions>()(['name']);

/**
 * Runs `steps` when `predicate(state)` is true, else `elseSteps` (if any), then goes on after both. Either block
 * may hold steps, parallel groups, forEach groups, child workflows and nested `when`s. Which block ran is recorded
 * on the compensation stack (and in the history), so a later failure compensates exactly the steps that ran.
 * The predicate must be synchronous and should only read the state; if it throws, the workflow rolls back.
 *
 * @example
 * when((s: Order) => s.express, [parallel('rush', [Expedite, NotifyWarehouse])], [StandardShipping])
 */
export function when<S = any>( // eslint-disable-line @typescript-eslint/no-explicit-any
  predicate: (state: S) => boolean,
  steps: unknown,
  elseSteps: unknown = [],
  options: WhenOptions = {},
): WhenSpec<S> {
  checkOptions(options, WHEN_OPTION_KEYS, 'when');
  const list = (x: unknown): readonly unknown[] => (Array.isArray(x) ? (x as readonly unknown[]) : [x]);
  const spec = { kind: 'when' as const, predicate, steps: list(steps), elseSteps: list(elseSteps) };
  return options.name === undefined ? spec : { ...spec, name: options.name };
}

/** Options of {@link forEach}. */
export interface ForEachOptions<S = any, I = any> extends JumpOptions { // eslint-disable-line @typescript-eslint/no-explicit-any
  /** How many items run (and, going down, are compensated) at once. @default 10 */
  readonly maxConcurrency?: number;
  /**
   * `failFast`: at the first item failure no more items start, running ones are aborted, and every item that
   * started is compensated, then the steps before. `continue`: every item runs; a failed item undoes its own
   * steps and its error becomes its result. @default 'failFast'
   */
  readonly onItemError?: 'failFast' | 'continue';
  /** Items compensated at once (up to maxConcurrency) or one after another in reverse order of settling. @default 'parallel' */
  readonly compensation?: 'parallel' | 'sequential';
  /**
   * Replaces the default merge (`state.__results__[name]` = the outcomes in item order): receives the state at the
   * group's start and the outcomes in item order; returns `ok(state)`, `error(reason)` or `goto(target, state)`.
   */
  readonly into?: (state: S, results: readonly BranchOutcome<I>[]) => IntoResult<S>;
}

/** A `forEach` group as written in a workflow's step list. */
export interface ForEachSpec<S = any, I = any> { // eslint-disable-line @typescript-eslint/no-explicit-any
  readonly kind: 'forEach';
  readonly name: string;
  /** Reads the items from the state when the group starts; each item becomes one branch. */
  readonly items: (state: S) => readonly I[];
  readonly steps: readonly StepClass<I>[];
  readonly options: ForEachOptions<S, I>;
}

/**
 * Runs `steps` once per item of `items(state)` — a dynamic parallel group with one branch per item. Each item's
 * steps see the item as their state (so write them as `BaseStep<Item>`); outcomes come back in item order.
 * Only `maxConcurrency` items are in flight at a time, and items not yet started are only indexes in the record,
 * so a list of ten thousand items holds ten calls, not ten thousand.
 *
 * @example
 * forEach('charge-invoices', (s: Batch) => s.invoices, ChargeInvoice, { maxConcurrency: 10, onItemError: 'continue' })
 */
export function forEach<S = any, I = any>( // eslint-disable-line @typescript-eslint/no-explicit-any
  name: string,
  items: (state: S) => readonly I[],
  steps: StepClass<I> | readonly StepClass<I>[],
  options: ForEachOptions<S, I> = {},
): ForEachSpec<S, I> {
  const list = Array.isArray(steps) ? (steps as readonly StepClass<I>[]) : [steps as StepClass<I>];
  return { kind: 'forEach', name, items, steps: list, options };
}
