import type { SagaEvent } from '../bus/event';
import type { StepContext } from './step-context';
import { ok, type RollbackReturn, type StepReturn } from './step-result';

/**
 * The base class of every step. Override what the step needs; the defaults (as WorkflowEx's) return
 * `ok(state)` unchanged, so a step without a rollback compensates as a no-op and a `*HandleInfo` handler
 * treats the awaited event as the end of the wait.
 *
 * @example
 * ‍@Step({ name: 'reserve-inventory' })
 * class ReserveInventory extends BaseStep<OrderState> {
 *   async run(state: OrderState, ctx: StepContext) {
 *     state.reservationId = await inventory.reserve(state.sku, { idempotencyKey: ctx.idempotencyKey });
 *     return ok(state);
 *   }
 *   async rollback(state: OrderState) {
 *     await inventory.release(state.reservationId);
 *     return ok(state);
 *   }
 * }
 */
export abstract class BaseStep<S = unknown> {
  /** Does the step's work going up. */
  run(state: S, _ctx: StepContext): StepReturn<S> {
    return ok(state);
  }

  /**
   * Undoes the step going down. Called for every step that started, the failing one first. Besides the step results
   * it may decide what follows: `retryForward`, `recover` (the failed step only) or `abort`.
   */
  rollback(state: S, _ctx: StepContext): RollbackReturn<S> {
    return ok(state);
  }

  /** Receives an awaited event after `run` returned `continue`. */
  runHandleInfo(_event: SagaEvent, state: S, _ctx: StepContext): StepReturn<S> {
    return ok(state);
  }

  /** Receives an awaited event after `rollback` returned `continue`. */
  rollbackHandleInfo(_event: SagaEvent, state: S, _ctx: StepContext): RollbackReturn<S> {
    return ok(state);
  }
}

/** A class that extends {@link BaseStep}. */
export type StepClass<S = any> = abstract new (...args: any[]) => BaseStep<S>; // eslint-disable-line @typescript-eslint/no-explicit-any

/** True when `value` is a class extending {@link BaseStep}. */
export function isStepClass(value: unknown): value is StepClass {
  return typeof value === 'function' && value.prototype instanceof BaseStep;
}
