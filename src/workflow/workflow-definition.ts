import type { ObserverClass, Observer } from '../observers/observer';
import type { ParallelOptions } from '../parallel/parallel';
import type { StepClass } from '../steps/base-step';
import type { StepMetadata } from '../steps/step-decorator';

/** A step in a compiled workflow. `index` is its place in the main list or in its branch. */
export interface CompiledStep {
  readonly kind: 'step';
  readonly name: string;
  readonly index: number;
  readonly cls: StepClass;
  readonly meta: StepMetadata;
}

/** A branch in a compiled parallel group. */
export interface CompiledBranch {
  readonly name: string;
  readonly key: string;
  readonly steps: readonly CompiledStep[];
}

/** Group options with defaults applied. */
export interface ResolvedParallelOptions {
  readonly onError: 'failFast' | 'completeAll';
  readonly join: 'all' | 'any';
  readonly maxConcurrency: number;
  readonly compensation: 'parallel' | 'sequential';
  readonly into: ParallelOptions['into'] | undefined;
}

/** A parallel group in a compiled workflow. */
export interface CompiledGroup {
  readonly kind: 'group';
  readonly name: string;
  readonly index: number;
  readonly branches: readonly CompiledBranch[];
  readonly options: ResolvedParallelOptions;
}

export type CompiledNode = CompiledStep | CompiledGroup;

/** A registered observer. */
export interface ObserverEntry {
  readonly observer: Observer | ObserverClass;
  readonly critical: boolean;
  readonly label: string;
}

/** A state class: class-validator decorators on its properties, a no-argument constructor. */
export type StateClass<S = unknown> = new () => S;

/** A validated, compiled workflow. Made by `@Workflow` or `defineWorkflow`. */
export interface WorkflowDefinition<S = any> { // eslint-disable-line @typescript-eslint/no-explicit-any
  readonly kind: 'workflow';
  readonly name: string;
  readonly nodes: readonly CompiledNode[];
  readonly observers: readonly ObserverEntry[];
  readonly stateClass: StateClass<S> | undefined;
  readonly validateStateAfterEachStep: boolean;
  /** The whole-workflow deadline in ms from start, or null. */
  readonly deadlineMs: number | null;
  /** What a compensation that still fails after its retries does. */
  readonly onCompensationError: 'halt' | 'continue';
  /** Main-list nodes by name (goto targets). */
  readonly nodeIndex: ReadonlyMap<string, number>;
  /** Every step by name, branch steps included. */
  readonly steps: ReadonlyMap<string, CompiledStep>;
}
