import type { ObserverClass, Observer } from '../observers/observer';
import type { StepClass } from '../steps/base-step';
import type { StepMetadata } from '../steps/step-decorator';
import type { SerializedError } from '../errors/serialized-error';
import type { WorkflowOutline } from './workflow-outline';

/** Where a main-list node may jump with `goto`: its declared targets, resolved when the workflow is defined. */
export interface CompiledJumps {
  /** Declared target name → its index in the main list. */
  readonly targets: ReadonlyMap<string, number>;
  /** How many backward jumps this node may take per instance (`allowLoop.max`); 0 when it may not loop. */
  readonly loopMax: number;
}

/** What every main-list node has: where it sits, what follows it, and where it may jump. */
export interface MainListPlace {
  readonly index: number;
  /** The index of the node that follows when this one succeeds (the end of a `when` block jumps past the other block). */
  readonly next: number;
  /** The block the node sits in: `/` at the top, `/3t/` in the then-block of the `when` at index 3, and so on. */
  readonly scope: string;
  /** Its declared goto targets, or null when it declares none. */
  readonly jumps: CompiledJumps | null;
}

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
  /** `into` of the group (results keyed by branch) or of a forEach (results in item order). */
  readonly into: ((state: any, results: any) => unknown) | undefined; // eslint-disable-line @typescript-eslint/no-explicit-any
}

/** The per-item part of a `forEach` group: the items, read from the state when the group starts, and the item steps. */
export interface CompiledEach {
  readonly items: (state: any) => unknown; // eslint-disable-line @typescript-eslint/no-explicit-any
  readonly steps: readonly CompiledStep[];
}

/** A parallel group (or a `forEach`, whose branches are made per item when it starts) in a compiled workflow. */
export interface CompiledGroup extends MainListPlace {
  readonly kind: 'group';
  readonly name: string;
  readonly branches: readonly CompiledBranch[];
  readonly options: ResolvedParallelOptions;
  /** Set for a `forEach`: the branches are one per item. */
  readonly each?: CompiledEach;
}

/** A `when` node: the predicate picks the then-block (which starts right after it) or the else-block. */
export interface CompiledWhen extends MainListPlace {
  readonly kind: 'when';
  readonly name: string;
  readonly predicate: (state: any) => unknown; // eslint-disable-line @typescript-eslint/no-explicit-any
  /** Where the else-block starts (equal to `next` when there is none). */
  readonly elseIndex: number;
}

/** A main-list step: a step with its place. */
export type MainStep = CompiledStep & MainListPlace;

export type CompiledNode = MainStep | CompiledGroup | CompiledWhen;

/** What a workflow's `onExit` receives: how an instance ended. */
export interface ExitOutcome {
  readonly workflow: string;
  readonly instanceId: string;
  readonly status: 'rolled_back' | 'compensation_failed' | 'completed';
  readonly error: SerializedError;
}

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
  /** The definition's version (default 1): instances run on the version they started with. */
  readonly version: number;
  /** A hash of the structure (steps, groups, when blocks, forEach, children, goto targets); see {@link WorkflowOutline}. */
  readonly fingerprint: string;
  /** The structure as plain JSON, nested as written. */
  readonly outline: WorkflowOutline;
  readonly nodes: readonly CompiledNode[];
  readonly observers: readonly ObserverEntry[];
  readonly stateClass: StateClass<S> | undefined;
  readonly validateStateAfterEachStep: boolean;
  /** The whole-workflow deadline in ms from start, or null. */
  readonly deadlineMs: number | null;
  /** What a compensation that still fails after its retries does. */
  readonly onCompensationError: 'halt' | 'continue';
  /** Maps the final error of an instance that rolled back before it is stored and returned. */
  readonly onExit: ((outcome: ExitOutcome) => unknown) | undefined;
  /** Main-list nodes by name (goto targets): steps, groups, forEach groups and named `when` nodes. */
  readonly nodeIndex: ReadonlyMap<string, number>;
  /** Every step by name, branch and forEach item steps included. */
  readonly steps: ReadonlyMap<string, CompiledStep>;
  /** The workflows its `child(...)` steps start; registering this workflow registers them too. */
  readonly children: readonly WorkflowDefinition[];
}
