import type { SagaEvent } from '../bus/event';
import type { InstanceStatus } from '../core/flow-fields';
import { DefinitionError } from '../errors/definition-error';
import { SagaflowError } from '../errors/sagaflow-error';
import { quote, serializeThrown, type SerializedError } from '../errors/serialized-error';
import { NotStartedError } from '../errors/step-errors';
import type { IntoResult } from '../parallel/parallel';
import { INTO_KINDS, withResults } from '../parallel/parallel-results';
import { STEP_POLICY_KEYS, type StepPolicyOptions } from '../policies/step-policy';
import { checkOptions, optionKeys } from '../input/known-keys';
import { BaseStep, type StepClass } from '../steps/base-step';
import type { StepContext } from '../steps/step-context';
import { registerStep } from '../steps/step-decorator';
import { checkResult, continueWith, error, ok, type StepResult } from '../steps/step-result';
import type { JumpOptions } from '../steps/jumps';
import { workflowDefinition, type WorkflowRef } from './workflow-decorator';
import { registerChildSpec, type ChildSpec } from './child-spec';
import type { WorkflowDefinition } from './workflow-definition';

/** The topic of the event the runtime publishes to a parent when one of its child instances ends (either way). */
export const CHILD_ENDED_TOPIC = 'sagaflow.child.ended';

/** The payload of a {@link CHILD_ENDED_TOPIC} event (and what a child's status check returns). */
export interface ChildEnded {
  readonly childId: string;
  readonly status: InstanceStatus;
  /** `up` when it completed, `down` when it rolled back (or its compensation failed). */
  readonly direction: 'up' | 'down';
  /** The child's final state (its output when it completed). */
  readonly output: unknown;
  readonly error: SerializedError | null;
}

/** What a child step needs from the runtime. */
export interface ChildHost {
  /** Starts the child with this id, linked to its parent; starting an existing id does nothing. */
  start(workflow: WorkflowDefinition, input: unknown, id: string, parentId: string): Promise<void>;
  /** Where the child is, or undefined when it was never started. */
  status(id: string): Promise<ChildEnded | undefined>;
  /** Rolls the child back: a running one as `rollback` does, a completed one by compensating all its steps. */
  undo(id: string, reason: SerializedError): Promise<void>;
}

/**
 * Options of {@link child}: `S` is the parent's state, `C` the child workflow's state (what `into` receives when the
 * child completed), `I` the input the parent hands the child.
 */
export interface ChildOptions<S = any, C = unknown, I = unknown> extends JumpOptions, StepPolicyOptions { // eslint-disable-line @typescript-eslint/no-explicit-any
  /** The step's stable name. @default `child:<workflow name>` */
  readonly name?: string;
  /** The child's input, made from the parent's state when the step runs (validated by the child's state class). */
  readonly input: (state: S) => I;
  /**
   * Folds the child's final state into the parent's state: `ok(state)`, `error(reason)` or `goto(target, state)`.
   * @default the output is kept as `state.__results__[name]` = `{ ok: true, value: output }` (read it with `parallelResult`)
   */
  readonly into?: (state: S, output: C) => IntoResult<S>;
}

const CHILD_OPTION_KEYS = optionKeys<ChildOptions>()(['name', 'input', 'into', 'goto', 'allowLoop', ...STEP_POLICY_KEYS] as const);


/** The status of a child that ended, or undefined while it runs. */
function ended(e: ChildEnded | undefined): e is ChildEnded {
  return e !== undefined && (e.status === 'completed' || e.status === 'rolled_back' || e.status === 'compensation_failed');
}

/**
 * The step a {@link child} node runs: starts the child instance and parks until it ends; going down, rolls back a
 * running child or compensates a completed one as a unit, and parks until that ends.
 * @internal
 */
export class ChildStep extends BaseStep<unknown> {
  constructor(
    private readonly spec: ChildSpec,
    private readonly host: ChildHost,
    private readonly stepName: string,
  ) {
    super();
  }

  /** The child's instance id: the parent's run key of this step, so a re-run after a crash finds the same child. */
  static childId(ctx: StepContext): string {
    return ctx.runKey;
  }

  override async run(state: unknown, ctx: StepContext): Promise<StepResult<unknown>> {
    const id = ChildStep.childId(ctx);
    try {
      await this.host.start(this.spec.workflow, this.spec.input(state), id, ctx.instanceId);
    } catch (cause) {
      // No child exists (its input could not be made or was refused): the step did not start, nothing to undo.
      const reason = serializeThrown(cause);
      return error(new NotStartedError(reason.code, `child workflow ${JSON.stringify(this.spec.workflow.name)} (${id}) could not be started: ${reason.message}`, { ...reason.details, childId: id }));
    }
    const now = await this.host.status(id);
    if (ended(now)) return this.settleUp(state, now);
    return continueWith(state, { topic: CHILD_ENDED_TOPIC, match: { childId: id } });
  }

  override runHandleInfo(event: SagaEvent, state: unknown): StepResult<unknown> {
    return this.settleUp(state, event.payload as unknown as ChildEnded);
  }

  override async rollback(state: unknown, ctx: StepContext): Promise<StepResult<unknown>> {
    const id = ChildStep.childId(ctx);
    const now = await this.host.status(id);
    if (now === undefined) {
      // The run started the child (a failed start never reaches a rollback), so a child that cannot be found is a
      // wrong id or a lost record: never pretend it was undone.
      return error(
        new SagaflowError('CHILD_NOT_FOUND', `child ${id} of step ${JSON.stringify(this.stepName)} (workflow ${JSON.stringify(this.spec.workflow.name)}) cannot be found, so it cannot be compensated`, {
          childId: id,
          step: this.stepName,
        }),
      );
    }
    if (now.status === 'rolled_back') return ok(state);
    if (now.status === 'compensation_failed') return this.settleDown(state, now);
    if (now.direction === 'up') {
      await this.host.undo(id, {
        code: 'PARENT_ROLLED_BACK',
        name: 'ChildRollbackError',
        message: `parent ${ctx.instanceId} is rolling back step ${JSON.stringify(this.stepName)}`,
        details: { parentId: ctx.instanceId, step: this.stepName },
      });
    }
    return continueWith(state, { topic: CHILD_ENDED_TOPIC, match: { childId: id, direction: 'down' } });
  }

  override rollbackHandleInfo(event: SagaEvent, state: unknown): StepResult<unknown> {
    return this.settleDown(state, event.payload as unknown as ChildEnded);
  }

  private settleUp(state: unknown, end: ChildEnded): StepResult<unknown> {
    if (end.status !== 'completed') {
      return error(
        new SagaflowError('CHILD_ROLLED_BACK', `child workflow ${JSON.stringify(this.spec.workflow.name)} (${end.childId}) ended ${end.status}${end.error === null ? '' : `: ${end.error.message}`}`, {
          childId: end.childId,
          status: end.status,
          cause: end.error,
        }),
      );
    }
    if (this.spec.into !== undefined) {
      return checkResult(this.spec.into(state, end.output), `the into of child step ${JSON.stringify(this.stepName)}`, INTO_KINDS);
    }
    return ok(withResults(state, { [this.stepName]: { ok: true, value: end.output } }));
  }

  private settleDown(state: unknown, end: ChildEnded): StepResult<unknown> {
    if (end.status === 'rolled_back') return ok(state);
    return error(
      new SagaflowError('CHILD_COMPENSATION_FAILED', `child workflow ${JSON.stringify(this.spec.workflow.name)} (${end.childId}) could not be compensated: it ended ${end.status}`, {
        childId: end.childId,
        status: end.status,
        cause: end.error,
      }),
    );
  }
}

/**
 * A step node that starts another registered workflow as a child and parks until it ends, durably. The child's
 * output goes into the parent's state through `into`. If the child rolls back, this step fails (`CHILD_ROLLED_BACK`)
 * and the parent rolls back. If the parent rolls back after the child completed, the child is compensated as a
 * unit (its steps in reverse), and only then the parent's earlier steps. Works on the main line, inside `when`
 * blocks, parallel branches and forEach items. The child workflow is registered with the parent.
 *
 * `into` receives the child's final state, typed `C`: inferred from a `defineWorkflow<C>` definition, or written on
 * `into`'s second parameter for a `@Workflow` class.
 *
 * @example
 * child(TakePayment, {
 *   input: (s: Order) => ({ orderId: s.id, amountCents: s.total }),
 *   into: (s: Order, paid: PaymentState) => ok({ ...s, paymentId: paid.paymentId }),
 * })
 */
export function child<S = any, C = unknown, I = unknown>(workflow: WorkflowRef<C>, options: ChildOptions<S, C, I>): StepClass<S> { // eslint-disable-line @typescript-eslint/no-explicit-any
  const def = workflowDefinition(workflow);
  const name = options.name ?? `child:${def.name}`;
  const where = `child step ${quote(name)}`;
  checkOptions(options, CHILD_OPTION_KEYS, where);
  if (typeof options.input !== 'function') {
    throw new DefinitionError('BAD_OPTION', `${where}: input must be a function of the parent's state`, { step: name });
  }
  if (options.into !== undefined && typeof options.into !== 'function') {
    throw new DefinitionError('BAD_OPTION', `${where}: into must be a function`, { step: name });
  }
  const spec: ChildSpec = {
    workflow: def,
    input: options.input as (state: unknown) => unknown,
    into: options.into as ChildSpec['into'],
  };
  const Generated = class extends BaseStep<S> {};
  Object.defineProperty(Generated, 'name', { value: `Child(${def.name})` });
  const { input: _input, into: _into, name: _name, ...stepOptions } = options;
  registerStep(Generated, { ...stepOptions, name }, true);
  registerChildSpec(Generated, spec);
  return Generated;
}
