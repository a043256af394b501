/**
 * The shared benchmark workload: a 5-step order saga whose steps each do a small, deterministic
 * computation on a small state object.
 *
 * Every contender (node-sagas, sagaflow, ...) must call the functions exported here, and only these,
 * so that the measured difference is the orchestration overhead and nothing else.
 *
 * Step functions mutate the state they are given *and* return that same object, so they fit both
 * a "mutate the params object" framework (node-sagas) and a "return the next state" one
 * (e.g. `up: (s) => ok(validateOrder(s))`). They are synchronous; wrap them if a framework needs promises.
 */

/** The state carried through the saga. Kept small on purpose. */
export interface OrderState {
  orderId: string;
  /** Order total in cents; 0 until the order is priced. */
  total: number;
  /** Item quantities. */
  items: number[];
  /** One short entry per step or compensation run, in order. */
  log: string[];
}

/** A step of the workload: its forward action and its compensation. */
export interface WorkloadStep {
  readonly name: string;
  readonly invoke: (state: OrderState) => OrderState;
  readonly compensate: (state: OrderState) => OrderState;
}

export const STEP_COUNT = 5;
/** 1-based position of the step that fails in the failing variant. */
export const FAILING_STEP = 4;

const ITEMS: readonly number[] = [3, 1, 4, 1, 5, 9, 2, 6];
const UNIT_PRICE_CENTS = 1_299;
const ORDER_ID = 'order-0001';

// ---------------------------------------------------------------------------------------------
// Pure computations (no side effects). Exported so every contender uses exactly the same ones.
// ---------------------------------------------------------------------------------------------

/** FNV-1a over the item quantities, as an unsigned 32-bit integer. */
export function itemsChecksum(items: readonly number[]): number {
  let hash = 0x811c9dc5;
  for (const item of items) {
    hash ^= item & 0xff;
    hash = Math.imul(hash, 0x01000193);
  }
  return hash >>> 0;
}

/** Sum of the quantities times the unit price, in cents. */
export function subtotalCents(items: readonly number[]): number {
  let units = 0;
  for (const item of items) units += item;
  return units * UNIT_PRICE_CENTS;
}

/** 10 % off, rounded down to whole cents. */
export function applyDiscount(totalCents: number): number {
  return totalCents - Math.floor(totalCents / 10);
}

/** A payment reference derived from the order id and amount (a small string hash). */
export function paymentReference(orderId: string, totalCents: number): string {
  let hash = totalCents | 0;
  for (let i = 0; i < orderId.length; i++) hash = (Math.imul(hash, 31) + orderId.charCodeAt(i)) | 0;
  return (hash >>> 0).toString(36);
}

// ---------------------------------------------------------------------------------------------
// Steps (forward actions). Each mutates and returns `state`.
// ---------------------------------------------------------------------------------------------

/** Step 1: validate the items (checksum). */
export function validateOrder(state: OrderState): OrderState {
  state.log.push(`validated:${itemsChecksum(state.items).toString(16)}`);
  return state;
}

/** Step 2: reserve the stock and price the order. */
export function reserveStock(state: OrderState): OrderState {
  state.total = subtotalCents(state.items);
  state.log.push(`reserved:${state.total}`);
  return state;
}

/** Step 3: apply the discount. */
export function applyOrderDiscount(state: OrderState): OrderState {
  state.total = applyDiscount(state.total);
  state.log.push(`discounted:${state.total}`);
  return state;
}

/** Step 4 (happy variant): charge the payment. */
export function chargePayment(state: OrderState): OrderState {
  state.log.push(`charged:${paymentReference(state.orderId, state.total)}`);
  return state;
}

/** The error thrown by step 4 in the failing variant. */
export class PaymentDeclinedError extends Error {
  constructor(orderId: string) {
    super(`payment declined for ${orderId}`);
    this.name = 'PaymentDeclinedError';
  }
}

/** Step 4 (failing variant): computes the reference, then the payment is declined. Leaves `state` untouched. */
export function chargePaymentDeclined(state: OrderState): OrderState {
  paymentReference(state.orderId, state.total);
  throw new PaymentDeclinedError(state.orderId);
}

/** Step 5: confirm the order. */
export function confirmOrder(state: OrderState): OrderState {
  state.log.push(`confirmed:${state.orderId}:${state.total}`);
  return state;
}

// ---------------------------------------------------------------------------------------------
// Compensations. Each mutates and returns `state`.
// ---------------------------------------------------------------------------------------------

export function undoValidateOrder(state: OrderState): OrderState {
  state.log.push('undo:validate');
  return state;
}

export function releaseStock(state: OrderState): OrderState {
  state.total = 0;
  state.log.push('undo:reserve');
  return state;
}

export function revertDiscount(state: OrderState): OrderState {
  state.total = subtotalCents(state.items);
  state.log.push('undo:discount');
  return state;
}

/** Compensation of step 4. Runs in the failing variant only if the framework compensates the failed step itself. */
export function refundPayment(state: OrderState): OrderState {
  state.log.push('undo:charge');
  return state;
}

export function cancelOrder(state: OrderState): OrderState {
  state.log.push('undo:confirm');
  return state;
}

// ---------------------------------------------------------------------------------------------
// The two variants.
// ---------------------------------------------------------------------------------------------

/** The happy 5-step saga. */
export const HAPPY_STEPS: readonly WorkloadStep[] = [
  { name: 'validate', invoke: validateOrder, compensate: undoValidateOrder },
  { name: 'reserve', invoke: reserveStock, compensate: releaseStock },
  { name: 'discount', invoke: applyOrderDiscount, compensate: revertDiscount },
  { name: 'charge', invoke: chargePayment, compensate: refundPayment },
  { name: 'confirm', invoke: confirmOrder, compensate: cancelOrder },
];

/** The failing 5-step saga: step {@link FAILING_STEP} (charge) throws {@link PaymentDeclinedError}. */
export const FAILING_STEPS: readonly WorkloadStep[] = HAPPY_STEPS.map((step, index) =>
  index === FAILING_STEP - 1 ? { ...step, invoke: chargePaymentDeclined } : step,
);

export function workloadSteps(fail: boolean): readonly WorkloadStep[] {
  return fail ? FAILING_STEPS : HAPPY_STEPS;
}

/** A fresh initial state; call once per saga execution. */
export function initialState(): OrderState {
  return { orderId: ORDER_ID, total: 0, items: ITEMS.slice(), log: [] };
}

// ---------------------------------------------------------------------------------------------
// Expected outcomes and cheap checks.
// ---------------------------------------------------------------------------------------------

function simulate(steps: readonly WorkloadStep[], compensateFailedStep: boolean): OrderState {
  const state = initialState();
  const done: WorkloadStep[] = [];
  try {
    for (const step of steps) {
      if (compensateFailedStep) done.push(step);
      step.invoke(state);
      if (!compensateFailedStep) done.push(step);
    }
  } catch (e) {
    if (!(e instanceof PaymentDeclinedError)) throw e;
    for (let i = done.length - 1; i >= 0; i--) done[i]?.compensate(state);
  }
  return state;
}

export interface ExpectedOutcome {
  readonly total: number;
  readonly log: readonly string[];
}

/** What the state must look like after a successful run. */
export const EXPECTED_HAPPY: ExpectedOutcome = simulate(HAPPY_STEPS, false);

const EXPECTED_FAILED_WITH_FAILED_STEP: ExpectedOutcome = simulate(FAILING_STEPS, true);
const EXPECTED_FAILED_WITHOUT_FAILED_STEP: ExpectedOutcome = simulate(FAILING_STEPS, false);

/**
 * What the state must look like after the failing run, once compensated.
 * `compensatesFailedStep`: whether the framework also runs the compensation of the step that threw
 * (node-sagas does: it records a step as "to compensate" before invoking it).
 */
export function expectedCompensated(compensatesFailedStep: boolean): ExpectedOutcome {
  return compensatesFailedStep ? EXPECTED_FAILED_WITH_FAILED_STEP : EXPECTED_FAILED_WITHOUT_FAILED_STEP;
}

/** Throws unless `state` matches `expected` (total and every log entry). Cheap: a handful of comparisons. */
export function assertOutcome(contender: string, what: string, state: OrderState, expected: ExpectedOutcome): void {
  let ok = state.total === expected.total && state.log.length === expected.log.length;
  for (let i = 0; ok && i < expected.log.length; i++) ok = state.log[i] === expected.log[i];
  if (!ok) {
    throw new Error(
      `${contender}: ${what}: expected total=${expected.total} log=${JSON.stringify(expected.log)}, ` +
        `got total=${state.total} log=${JSON.stringify(state.log)}`,
    );
  }
}
