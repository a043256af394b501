import 'reflect-metadata';
import { TripBooking } from './trip-booking/workflow';
import { LoanV1, LoanV2 } from './versioned-deploy/workflow';
import { SagaRuntime, isFinalStatus, silentLogger, type InstanceStore, type InstanceSummary } from '../src';
import { collectProblems, expectNoProblems, resolverOf } from './support';
import { TimelineObserver, type Print } from './timeline-observer';
import { Ledger } from './ledger';
import { Carrier, InventoryService, PaymentGateway } from './order-checkout/services';
import { ChargePayment, ReserveInventory, Ship } from './order-checkout/steps';
import { OrderCheckout } from './order-checkout/workflow';
import { Billing, Mailer, UserDirectory, Workspaces } from './user-onboarding/services';
import { CreateUser, ProvisionWorkspace, SendWelcomeEmail, SetUpBilling } from './user-onboarding/steps';
import { Cards, Mailer as OrderMailer, Reviews, Shipping, Warehouse } from './branching-order/services';
import {
  AlertPackingFloor,
  AuthorizeCard,
  BookCourier,
  BookStandardShipping,
  CapturePayment,
  ManualReview,
  ReserveStock,
  ScoreFraud,
  SendConfirmation,
} from './branching-order/steps';
import { BranchingOrder } from './branching-order/workflow';
import { Billing as NightlyBilling, ChargeInvoice, LoadInvoices, MailReport, NightlyInvoicing } from './nightly-batch/workflow';
import { UserOnboarding } from './user-onboarding/workflow';

/** How many of the earlier instances the demo lists one by one. */
const LAST = 5;

/** What the demo's first section found in the store. */
export interface EarlierRuns {
  /** Every instance in the store, newest update first. */
  readonly instances: readonly InstanceSummary[];
  /** The number of the demo run about to start: one more than the highest `-r<n>` suffix in the store. */
  readonly nextRun: number;
}

/** The run number an instance id of the demo carries (`order-1001-r3` → 3), or 0. */
export function runOf(id: string): number {
  const match = /-r(\d+)$/.exec(id);
  return match === null ? 0 : Number(match[1]);
}

function branchingOrderSteps(ledger: Ledger): object[] {
  const warehouse = new Warehouse(ledger);
  const shipping = new Shipping(ledger);
  const cards = new Cards(ledger);
  return [
    new ReserveStock(warehouse),
    new BookCourier(shipping),
    new AlertPackingFloor(warehouse),
    new BookStandardShipping(shipping),
    new AuthorizeCard(cards),
    new CapturePayment(cards),
    new ScoreFraud(),
    new ManualReview(new Reviews()),
    new SendConfirmation(new OrderMailer(ledger)),
  ];
}

function nightlyBatchSteps(ledger: Ledger): object[] {
  const billing = new NightlyBilling(ledger, () => []);
  return [new LoadInvoices(billing), new ChargeInvoice(billing), new MailReport(billing)];
}

/** A runtime for the demo's first sections, and the timeline its workflows print to. */
export interface Recovery {
  readonly runtime: SagaRuntime;
  readonly timeline: TimelineObserver;
}

/**
 * A runtime that knows both samples' workflows, for what the demo does before running them: list what the store
 * holds, and resume what an interrupted run left unfinished. Its fakes are fresh (the interrupted process's fakes
 * are gone with it), its timeline prints like the samples'.
 */
export function recoveryRuntime(print: Print, store: InstanceStore): Recovery {
  const ledger = new Ledger();
  const timeline = new TimelineObserver(print, { idWidth: 15 });
  const runtime = new SagaRuntime({
    store,
    logger: silentLogger,
    workflows: [OrderCheckout, UserOnboarding, BranchingOrder, NightlyInvoicing, LoanV1, LoanV2, TripBooking],
    rateLimiters: { mailer: { limit: 2, per: '1s' }, 'card-network': { limit: 5, per: '1s' } },
    resolver: resolverOf([
      new ReserveInventory(new InventoryService(ledger, { 'SKU-MUG': 10, 'SKU-LAMP': 3 })),
      new ChargePayment(new PaymentGateway(ledger)),
      new Ship(new Carrier(ledger)),
      new CreateUser(new UserDirectory(ledger)),
      new SendWelcomeEmail(new Mailer(ledger)),
      new ProvisionWorkspace(new Workspaces(ledger)),
      new SetUpBilling(new Billing(ledger)),
      ...branchingOrderSteps(ledger),
      ...nightlyBatchSteps(ledger),
      timeline,
    ]),
  });
  return { runtime, timeline };
}

/**
 * Prints what the store holds from earlier runs: the number of instances by workflow and status, and the last
 * few with their status. Resolves with every instance and the number of the run about to start.
 */
export async function showEarlierRuns(print: Print, runtime: SagaRuntime): Promise<EarlierRuns> {
  const instances = await runtime.list({ limit: Number.MAX_SAFE_INTEGER });
  const nextRun = 1 + Math.max(0, ...instances.map((i) => runOf(i.id)));
  if (instances.length === 0) {
    print('the database holds no instances yet: this is the first run.');
    return { instances, nextRun };
  }
  print(`the database holds ${instances.length} instance${instances.length === 1 ? '' : 's'} from earlier runs, by workflow and status:`);
  const statuses = [...new Set(instances.map((i) => i.status))].sort();
  const workflows = [...new Set(instances.map((i) => i.workflow))].sort();
  const rows = workflows.map((wf) => [wf, ...statuses.map((st) => String(instances.filter((i) => i.workflow === wf && i.status === st).length))]);
  for (const line of table(['workflow', ...statuses], rows, 1)) print(`  ${line}`);
  print(`the last ${Math.min(LAST, instances.length)}, newest first:`);
  const last = instances.slice(0, LAST).map((i) => [i.id, i.workflow, i.status, new Date(i.updatedAt).toISOString()]);
  for (const line of table(['instance', 'workflow', 'status', 'updated'], last)) print(`  ${line}`);
  return { instances, nextRun };
}

/**
 * Calls `runtime.start()`, which resumes every unfinished instance in the store (a running step is run again
 * with the same idempotency key, a rollback goes on compensating, a wait waits again), and reports the outcome.
 * An instance left parked on an event that only the interrupted run would have sent (the payment webhook of its
 * fake provider) is rolled back, as an operator would. Throws `SampleExpectationError` when the runtime reported
 * a problem.
 */
export async function resumeUnfinished(print: Print, { runtime, timeline }: Recovery, earlier: readonly InstanceSummary[]): Promise<void> {
  const problems = collectProblems(runtime);
  const unfinished = earlier.filter((i) => !isFinalStatus(i.status));
  print(
    unfinished.length === 0
      ? 'runtime.start(): nothing to resume, every earlier instance is finished.'
      : `runtime.start(): resuming ${unfinished.length} unfinished instance${unfinished.length === 1 ? '' : 's'} that an interrupted run left behind: ` +
          unfinished.map((i) => `${i.id} (${i.status})`).join(', '),
  );
  await runtime.start();
  if (unfinished.length === 0) return;
  await runtime.idle();
  for (const { id } of unfinished) {
    const snapshot = await runtime.get(id);
    if (!isFinalStatus(snapshot.status)) {
      const topics = (await runtime.store.load(id))?.flow.wait?.topics ?? [];
      if (snapshot.status === 'waiting') timeline.waiting(snapshot.flow, topics);
      const what = topics.length === 0 ? 'an event' : topics.join(' | ');
      print(`${id} is ${snapshot.status} for ${what}, which only the interrupted run's fakes would have sent: rolling it back`);
      await runtime.rollback(id, 'the demo run that started it was interrupted; the event it waits for will not come');
    }
    const result = await runtime.handle(id).result();
    print(`resumed ${id}: ${result.status}${result.error === null ? '' : ` (${result.error.code})`}`);
  }
  expectNoProblems(problems);
}

/** Columns two spaces apart: the first `textColumns` left-aligned, the rest (all of them by default) right-aligned. */
function table(headers: readonly string[], rows: readonly (readonly string[])[], textColumns = headers.length): string[] {
  const widths = headers.map((h, c) => Math.max(h.length, ...rows.map((r) => (r[c] ?? '').length)));
  const align = (cell: string, c: number): string => (c < textColumns ? cell.padEnd(widths[c] ?? 0) : cell.padStart(widths[c] ?? 0));
  return [headers, ...rows].map((cells) => cells.map(align).join('  ').trimEnd());
}
