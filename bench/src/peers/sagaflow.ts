/**
 * sagaflow: the 5-step workload of ../workload written as a user would write it — one step class per step
 * (extending `BaseStep`, named with `@Step`), workflows declared with `defineWorkflow`, one `SagaRuntime`
 * built once (default in-memory store, silent logger) and reused by every run, with a small counting
 * observer registered so that every step pays for its before/after hooks.
 *
 * Also: a workflow made of one parallel group of {@link GROUP_BRANCHES} single-step branches, each step a
 * small pure computation ({@link runSagaflowGroupOnce}).
 *
 * The workload functions are synchronous, so the handlers are too (sagaflow accepts a result or a promise
 * of one); the failing step simply throws, which sagaflow turns into an error result.
 */
import type { FlowView, Observer, SagaResult, StepClass, StepResult } from '../../../src';
import { BaseStep, defineWorkflow, MemoryStore, ok, parallel, parallelResults, SagaRuntime, silentLogger, Step } from '../../../src';
import type { OrderState } from '../workload';
import {
  applyOrderDiscount,
  assertOutcome,
  cancelOrder,
  chargePayment,
  chargePaymentDeclined,
  confirmOrder,
  EXPECTED_HAPPY,
  expectedCompensated,
  FAILING_STEP,
  initialState,
  paymentReference,
  refundPayment,
  releaseStock,
  reserveStock,
  revertDiscount,
  STEP_COUNT,
  undoValidateOrder,
  validateOrder,
} from '../workload';

export const SAGAFLOW = 'sagaflow';

// ---------------------------------------------------------------------------------------------
// The 5-step saga.
// ---------------------------------------------------------------------------------------------

@Step({ name: 'validate' })
export class ValidateOrder extends BaseStep<OrderState> {
  override run(state: OrderState): StepResult<OrderState> {
    return ok(validateOrder(state));
  }
  override rollback(state: OrderState): StepResult<OrderState> {
    return ok(undoValidateOrder(state));
  }
}

@Step({ name: 'reserve' })
export class ReserveStock extends BaseStep<OrderState> {
  override run(state: OrderState): StepResult<OrderState> {
    return ok(reserveStock(state));
  }
  override rollback(state: OrderState): StepResult<OrderState> {
    return ok(releaseStock(state));
  }
}

@Step({ name: 'discount' })
class ApplyDiscount extends BaseStep<OrderState> {
  override run(state: OrderState): StepResult<OrderState> {
    return ok(applyOrderDiscount(state));
  }
  override rollback(state: OrderState): StepResult<OrderState> {
    return ok(revertDiscount(state));
  }
}

@Step({ name: 'charge' })
class ChargePayment extends BaseStep<OrderState> {
  override run(state: OrderState): StepResult<OrderState> {
    return ok(chargePayment(state));
  }
  override rollback(state: OrderState): StepResult<OrderState> {
    return ok(refundPayment(state));
  }
}

/** Step 4 of the failing variant: the payment is declined (throws `PaymentDeclinedError`). */
@Step({ name: 'charge' })
class ChargePaymentDeclined extends BaseStep<OrderState> {
  override run(state: OrderState): StepResult<OrderState> {
    return ok(chargePaymentDeclined(state));
  }
  override rollback(state: OrderState): StepResult<OrderState> {
    return ok(refundPayment(state));
  }
}

@Step({ name: 'confirm' })
export class ConfirmOrder extends BaseStep<OrderState> {
  override run(state: OrderState): StepResult<OrderState> {
    return ok(confirmOrder(state));
  }
  override rollback(state: OrderState): StepResult<OrderState> {
    return ok(cancelOrder(state));
  }
}

/** The happy 5-step saga (also run on durable stores by ./sagaflow-durable). */
export const happyWorkflow = defineWorkflow<OrderState>({
  name: 'order-happy',
  steps: [ValidateOrder, ReserveStock, ApplyDiscount, ChargePayment, ConfirmOrder],
});

const failingWorkflow = defineWorkflow<OrderState>({
  name: 'order-failing',
  steps: [ValidateOrder, ReserveStock, ApplyDiscount, ChargePaymentDeclined, ConfirmOrder],
});

// ---------------------------------------------------------------------------------------------
// One parallel group of GROUP_BRANCHES single-step branches.
// ---------------------------------------------------------------------------------------------

/** Number of branches of the parallel-group workflow. */
export const GROUP_BRANCHES = 200;

/** The state of the group workflow: an order id; each branch writes its reference into its own copy. */
export interface GroupState {
  orderId: string;
  ref: string;
}

const GROUP_ORDER_ID = initialState().orderId;

/** What branch `i` computes: a payment reference for amount `i` (a small pure computation). */
function branchReference(orderId: string, i: number): string {
  return paymentReference(orderId, i);
}

/** The step class of branch `i` (each branch step needs its own stable name). */
function branchStep(i: number): StepClass<GroupState> {
  @Step({ name: `price-${i}` })
  class PriceBranch extends BaseStep<GroupState> {
    override run(state: GroupState): StepResult<GroupState> {
      state.ref = branchReference(state.orderId, i);
      return ok(state);
    }
  }
  return PriceBranch;
}

const branchSteps = Array.from({ length: GROUP_BRANCHES }, (_, i) => branchStep(i));
/** Branch keys (default: the step name) and the reference each branch must produce, in declaration order. */
const EXPECTED_BRANCHES: readonly (readonly [string, string])[] = branchSteps.map((_, i) => [
  `price-${i}`,
  branchReference(GROUP_ORDER_ID, i),
]);

const groupWorkflow = defineWorkflow<GroupState>({
  name: `group-${GROUP_BRANCHES}`,
  steps: [parallel('price-all', branchSteps)],
});

// ---------------------------------------------------------------------------------------------
// The runtime, built once, with a counting observer.
// ---------------------------------------------------------------------------------------------

/** A near no-op observer: counts the before/after-step hook calls (and leaves the state alone). */
class CountingObserver implements Observer {
  before = 0;
  after = 0;
  handleBeforeStep(_state: unknown, _flow: FlowView): void {
    this.before++;
  }
  handleAfterStep(_state: unknown, _flow: FlowView): void {
    this.after++;
  }
}

const counter = new CountingObserver();

const runtime = new SagaRuntime({
  store: new MemoryStore(),
  workflows: [happyWorkflow, failingWorkflow, groupWorkflow],
  observers: [counter],
  logger: silentLogger,
});

/** Handler calls per run: 5 `run`s going up; 4 `run`s then 4 `rollback`s (the failing step first) going down. */
const HAPPY_CALLS = STEP_COUNT;
const FAILING_CALLS = 2 * FAILING_STEP;

/** sagaflow compensates the step that failed too (it started), so its refund runs. */
const EXPECTED_FAILED = expectedCompensated(true);

function fail(what: string, result: SagaResult<unknown>, detail = ''): never {
  throw new Error(`${SAGAFLOW}: ${what}: instance ended ${result.status} (error ${JSON.stringify(result.error)})${detail}`);
}

function checkHooks(what: string, before: number, after: number, calls: number): void {
  if (counter.before - before !== calls || counter.after - after !== calls) {
    throw new Error(
      `${SAGAFLOW}: ${what}: expected ${calls} before/after-step hook calls, got ${counter.before - before}/${counter.after - after}`,
    );
  }
}

/** Runs one saga (happy or failing variant) with sagaflow and checks its outcome; throws if it is wrong. */
export async function runSagaflowOnce(failing: boolean): Promise<void> {
  const before = counter.before;
  const after = counter.after;
  const handle = await runtime.start(failing ? failingWorkflow : happyWorkflow, initialState());
  const result = await handle.result();
  if (!failing) {
    if (result.status !== 'completed' || result.error !== null) fail('happy path', result);
    assertOutcome(SAGAFLOW, 'happy path', result.state, EXPECTED_HAPPY);
    checkHooks('happy path', before, after, HAPPY_CALLS);
    return;
  }
  if (result.status !== 'rolled_back' || result.error?.name !== 'PaymentDeclinedError') fail('failing path', result);
  assertOutcome(SAGAFLOW, 'failing path', result.state, EXPECTED_FAILED);
  checkHooks('failing path', before, after, FAILING_CALLS);
}

/** Runs the parallel-group workflow once and checks every branch's outcome; throws if one is wrong. */
export async function runSagaflowGroupOnce(): Promise<void> {
  const before = counter.before;
  const after = counter.after;
  const handle = await runtime.start(groupWorkflow, { orderId: GROUP_ORDER_ID, ref: '' });
  const result = await handle.result();
  if (result.status !== 'completed' || result.error !== null) fail('parallel group', result);
  const outcomes = parallelResults<GroupState>(result.state);
  for (const [key, ref] of EXPECTED_BRANCHES) {
    const outcome = outcomes[key];
    if (outcome?.ok !== true || outcome.value.ref !== ref) {
      fail('parallel group', result, `: branch ${key} gave ${JSON.stringify(outcome)}, expected ref ${ref}`);
    }
  }
  checkHooks('parallel group', before, after, GROUP_BRANCHES);
}
