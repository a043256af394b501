import { BaseStep, HistoryObserver, SagaRuntime, Step, defineWorkflow, error, ok, silentLogger, type InstanceStore, type StepResult } from '../../src';
import { runBranchingOrder } from '../../samples/branching-order/run';
import { runOrderCheckout } from '../../samples/order-checkout/run';
import { runUserOnboarding } from '../../samples/user-onboarding/run';

/** Whether the bank refuses refunds: while it does, the debit's compensation fails. */
export const bank = { refusing: true };

interface RefundState {
  account: string;
  debited?: boolean;
  refunded?: boolean;
}

@Step({ name: 'debit-account' })
class DebitAccount extends BaseStep<RefundState> {
  override run(state: RefundState): StepResult<RefundState> {
    return ok({ ...state, debited: true });
  }
  override rollback(state: RefundState): StepResult<RefundState> {
    return bank.refusing ? error({ code: 'BANK_REFUSED', message: 'the bank refused the refund' }) : ok({ ...state, refunded: true });
  }
}

@Step({ name: 'send-receipt' })
class SendReceipt extends BaseStep<RefundState> {
  override run(): StepResult<RefundState> {
    return error({ code: 'MAIL_DOWN', message: 'the mail server is down' });
  }
}

/** Debit, then a receipt that always fails: going down, the debit's refund fails while the bank refuses. */
export const PaymentWithReceipt = defineWorkflow<RefundState>({ name: 'payment-with-receipt', steps: [DebitAccount, SendReceipt], observers: [new HistoryObserver()] });

/** A runtime with the fixture's workflow on `store` (the application's side, with the workflow's code). */
export function fixtureRuntime(store: InstanceStore, options: { pollInterval?: string } = {}): SagaRuntime {
  return new SagaRuntime({ store, logger: silentLogger, workflows: [PaymentWithReceipt], ...options });
}

/** Starts `id` and leaves it `compensation_failed`. */
export async function compensationFailedInstance(store: InstanceStore, id: string): Promise<void> {
  bank.refusing = true;
  const runtime = fixtureRuntime(store);
  try {
    const result = await (await runtime.start(PaymentWithReceipt, { account: 'acc-7' }, { id })).result();
    if (result.status !== 'compensation_failed') throw new Error(`the fixture expected compensation_failed, got ${result.status}`);
  } finally {
    await runtime.stop({ drainTimeout: '1s' }); // gives its leases back (on PostgreSQL) for the next runtime
  }
}

/**
 * Fills `store` as the samples do (order-checkout, user-onboarding, and on SQLite branching-order: completed and
 * rolled-back instances with state patches, parallel groups, when blocks, children) plus `refund-1`, left
 * `compensation_failed`. (branching-order is left out on PostgreSQL: run on a shared store, its runtime reports the
 * child-ended events its parents took from the retained events as dropped, which the sample counts as a failure.)
 */
export async function sampleDatabase(store: InstanceStore): Promise<void> {
  const quiet = (): void => undefined;
  await runOrderCheckout(quiet, { store });
  await runUserOnboarding(quiet, { store });
  if (store.shared !== true) await runBranchingOrder(quiet, { store });
  await compensationFailedInstance(store, 'refund-1');
}
