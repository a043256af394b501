/**
 * The anchor: the workload run with node-sagas 0.0.6.
 *
 * node-sagas API (as shipped): `new SagaBuilder<T>().step(name).invoke(fn).withCompensation(fn)...build()`
 * returns a `Saga<T>`; `saga.execute(params)` runs the steps in order, mutating `params`, and resolves to
 * `params`; on a throw it runs the compensations in reverse and rejects with `SagaExecutionFailed`
 * (or `SagaCompensationFailed` if a compensation throws). `saga.getState()` gives a `SagaStates` value.
 *
 * A built `Saga` is single-use: its `SagaFlow` appends every invoked step to a compensation list that
 * is never cleared, so re-executing the same `Saga` grows that list and, on failure, compensates the
 * steps of every earlier run too. The correct "define once, run many" usage is therefore to configure
 * the `SagaBuilder` once and call `build()` (two small allocations) per execution, which is what we do.
 */
import { SagaBuilder, SagaExecutionFailed, SagaStates } from 'node-sagas';
import type { OrderState, WorkloadStep } from '../workload';
import { assertOutcome, EXPECTED_HAPPY, expectedCompensated, initialState, workloadSteps } from '../workload';

export const NODE_SAGAS = 'node-sagas';

/** node-sagas compensates the step that threw as well (it is recorded before it is invoked). */
const EXPECTED_FAILED = expectedCompensated(true);

/** `Saga.getState()` is typed `string`; these are the `SagaStates` values it returns. */
const COMPLETE: string = SagaStates.Complete;
const COMPENSATION_COMPLETE: string = SagaStates.CompensationComplete;

function defineSaga(steps: readonly WorkloadStep[]): SagaBuilder<OrderState> {
  const builder = new SagaBuilder<OrderState>();
  for (const step of steps) builder.step(step.name).invoke(step.invoke).withCompensation(step.compensate);
  return builder;
}

const happyDefinition = defineSaga(workloadSteps(false));
const failingDefinition = defineSaga(workloadSteps(true));

/** Runs one saga (happy or failing variant) with node-sagas and checks its outcome; throws if it is wrong. */
export async function runNodeSagasOnce(fail: boolean): Promise<void> {
  const saga = (fail ? failingDefinition : happyDefinition).build();
  const state = initialState();
  if (!fail) {
    const result = await saga.execute(state);
    if (result !== state || saga.getState() !== COMPLETE) {
      throw new Error(`${NODE_SAGAS}: happy path: saga ended in state ${saga.getState()}`);
    }
    assertOutcome(NODE_SAGAS, 'happy path', state, EXPECTED_HAPPY);
    return;
  }
  try {
    await saga.execute(state);
  } catch (e) {
    if (!(e instanceof SagaExecutionFailed) || saga.getState() !== COMPENSATION_COMPLETE) {
      throw new Error(`${NODE_SAGAS}: failing path: saga ended in state ${saga.getState()}`, { cause: e });
    }
    assertOutcome(NODE_SAGAS, 'failing path', state, EXPECTED_FAILED);
    return;
  }
  throw new Error(`${NODE_SAGAS}: failing path: saga did not fail`);
}
