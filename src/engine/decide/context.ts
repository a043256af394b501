// What every part of `decide` works on: the environment, the record being advanced, the effects so far, and the
// entries of the families that call each other (filled in by index.ts, so the families never import in a cycle).
import type { SerializedError } from '../../errors/serialized-error';
import type { CompiledGroup, CompiledWhen } from '../../workflow/workflow-definition';
import type { StackEntry } from '../../core/flow-fields';
import type { BranchRun, GroupRun, InstanceRecord } from '../instance-record';
import type { ControlOutcome, DecideEnv, Effect } from './types';

/** One transition being decided: the environment, the draft record, the effects so far, the families' calls. */
export interface Ctx {
  readonly env: DecideEnv;
  readonly rec: InstanceRecord;
  readonly effects: Effect[];
  readonly ops: DecideOps;
}

/** The calls that go from the main line into groups, `when` and compensation control, and from there back into groups. */
export interface DecideOps {
  readonly startGroup: (c: Ctx, node: CompiledGroup) => void;
  readonly unwindGroup: (c: Ctx, entry: Extract<StackEntry, { kind: 'group' }>) => void;
  readonly enterWhen: (c: Ctx, node: CompiledWhen) => void;
  readonly controlMain: (c: Ctx, outcome: ControlOutcome) => void;
  readonly compensateBranch: (c: Ctx, g: GroupRun, b: BranchRun) => void;
  readonly branchFailed: (c: Ctx, g: GroupRun, b: BranchRun, error: SerializedError) => void;
  readonly startBranchStep: (c: Ctx, g: GroupRun, b: BranchRun, index: number) => void;
}
