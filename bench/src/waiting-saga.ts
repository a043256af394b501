/**
 * The event variant of the workload, shared by P4, P5 and P6: the 5-step order saga of ./workload whose step 3
 * (discount) parks on `continueWith` until the driver publishes {@link PAID_TOPIC} for its order id
 * (`match: { orderId }`), then goes on. Step 4's `run` tells the driver (through {@link whenCharged}) that
 * step 3's result is committed: the runtime saves a step's result together with the next step's intent before it
 * calls the next step (intent before effect).
 *
 * Also: {@link chainWorkflow}, a workflow of n trivial steps (P6's growth in workflow length).
 */
import type { SagaRuntime, StepClass, StepResult, WorkflowDefinition } from '../../src';
import { BaseStep, continueWith, defineWorkflow, ok, Step } from '../../src';
import type { OrderState } from './workload';
import { applyOrderDiscount, chargePayment, initialState, refundPayment, revertDiscount } from './workload';
import { ConfirmOrder, ReserveStock, ValidateOrder } from './peers/sagaflow';

/** The topic step 3 waits for. */
export const PAID_TOPIC = 'bench.paid';

const charged = new Map<string, () => void>();

/** Resolves when step 4 of the saga of `orderId` starts: step 3's result (the event handled) is then committed. */
export function whenCharged(orderId: string): Promise<void> {
  return new Promise<void>((resolve) => charged.set(orderId, resolve));
}



/** Step 3: applies the discount, then waits for the payment event of its order. */
@Step({ name: 'discount' })
class DiscountThenWait extends BaseStep<OrderState> {
  override run(state: OrderState): StepResult<OrderState> {
    return continueWith(applyOrderDiscount(state), { topic: PAID_TOPIC, match: { orderId: state.orderId } });
  }
  override rollback(state: OrderState): StepResult<OrderState> {
    return ok(revertDiscount(state));
  }
}

@Step({ name: 'charge' })
class ChargeAndSignal extends BaseStep<OrderState> {
  override run(state: OrderState): StepResult<OrderState> {
    const signal = charged.get(state.orderId);
    if (signal !== undefined) {
      charged.delete(state.orderId);
      signal();
    }
    return ok(chargePayment(state));
  }
  override rollback(state: OrderState): StepResult<OrderState> {
    return ok(refundPayment(state));
  }
}


/** The event variant: step 3 waits for {@link PAID_TOPIC} with its order id. */
export const waitingWorkflow = defineWorkflow<OrderState>({
  name: 'order-event',
  steps: [ValidateOrder, ReserveStock, DiscountThenWait, ChargeAndSignal, ConfirmOrder],
});

/** The initial state of the saga of `orderId`. */
export function orderState(orderId: string): OrderState {
  return { ...initialState(), orderId };
}

/** Publishes the payment event of `orderId`; throws unless it reached exactly one waiting instance. */
export async function pay(runtime: SagaRuntime, orderId: string): Promise<void> {
  const receipt = await runtime.publish({ topic: PAID_TOPIC, payload: { orderId } });
  if (receipt.delivered !== 1) throw new Error(`event for ${orderId} delivered to ${receipt.delivered} instances, expected 1`);
}

/** Percentile `p` (0..100) of sorted values (nearest rank). */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) throw new RangeError('percentile of an empty list');
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank] as number;
}

/** Microseconds since `start` (a `process.hrtime.bigint()`). */
export function usSince(start: bigint): number {
  return Number(process.hrtime.bigint() - start) / 1_000;
}

/** A state for {@link chainWorkflow}: how many steps ran. */
export interface ChainState {
  count: number;
}

/** A workflow of `n` trivial steps (each counts itself), named `chain-<n>`. */
export function chainWorkflow(n: number): WorkflowDefinition<ChainState> {
  const steps: StepClass<ChainState>[] = [];
  for (let i = 0; i < n; i++) {
    @Step({ name: `s${i}` })
    class Counted extends BaseStep<ChainState> {
      override run(state: ChainState): StepResult<ChainState> {
        state.count += 1;
        return ok(state);
      }
    }
    steps.push(Counted);
  }
  return defineWorkflow<ChainState>({ name: `chain-${n}`, steps });
}
