import 'reflect-metadata';
import { MemoryStore, SagaRuntime, silentLogger, type SagaResult } from '../../src';
import { SimulatedClock } from '../../src/testing';
import { Ledger } from '../ledger';
import { collectProblems, expectNoProblems, expectThat, resolverOf, type SampleOptions, runWhenMain } from '../support';
import { TimelineObserver, type Print } from '../timeline-observer';
import { Cards, Mailer, Reviews, Shipping, Warehouse } from './services';
import type { BranchingOrderState } from './state';
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
} from './steps';
import { BranchingOrder } from './workflow';

type Order = Pick<BranchingOrderState, 'orderId' | 'amountCents' | 'express' | 'trusted'>;

/**
 * Runs the branching order flow and prints its timeline:
 * 1. an express order from a trusted customer: the `rush` group runs (not standard shipping), the payment child
 *    workflow completes, and `score-fraud` jumps over `manual-review`;
 * 2. a standard order the fraud team rejects: `manual-review` fails, so the completed payment child is compensated
 *    as a unit (capture refunded, then the authorization voided), then standard shipping and the reservation —
 *    the express branch never ran, so it is not compensated;
 * 3. three trusted orders at once: the `mailer` limiter (2 mails a second) parks the third confirmation until
 *    the clock has moved a second on.
 *
 * Deterministic: fixed ids (plus `options.idSuffix`), fresh fakes, a simulated clock.
 */
export async function runBranchingOrder(print: Print, options: SampleOptions = {}): Promise<void> {
  const suffix = options.idSuffix ?? '';
  const ledger = new Ledger();
  const warehouse = new Warehouse(ledger);
  const shipping = new Shipping(ledger);
  const cards = new Cards(ledger);
  const reviews = new Reviews();
  const clock = new SimulatedClock(Date.UTC(2026, 10, 21, 9, 0, 0));
  const runtime = new SagaRuntime({
    ...(options.store === undefined ? {} : { store: options.store }),
    logger: silentLogger,
    clock,
    workflows: [BranchingOrder],
    rateLimiters: { mailer: { limit: 2, per: '1s' } },
    resolver: resolverOf([
      new ReserveStock(warehouse),
      new BookCourier(shipping),
      new AlertPackingFloor(warehouse),
      new BookStandardShipping(shipping),
      new AuthorizeCard(cards),
      new CapturePayment(cards),
      new ScoreFraud(),
      new ManualReview(reviews),
      new SendConfirmation(new Mailer(ledger)),
      new TimelineObserver(print, { idWidth: 9 + suffix.length }),
    ]),
  });
  const problems = collectProblems(runtime);
  const place = async (order: Order): Promise<SagaResult<BranchingOrderState>> => (await runtime.start<BranchingOrderState>(BranchingOrder, order, { id: order.orderId })).result();
  try {
    const express: Order = { orderId: `ord-3001${suffix}`, amountCents: 4_900, express: true, trusted: true };
    print(`${express.orderId}: express, trusted customer (rush group, payment child, review skipped)`);
    const done = await place(express);
    expectThat(done.status === 'completed', `${express.orderId} to complete, got ${done.status}`);
    const history = await runtime.history(express.orderId);
    const taken = history.find((h) => h.kind === 'branch-taken');
    expectThat(taken?.outcome === 'then', `the express? when of ${express.orderId} to take its then-block`);
    expectThat(!history.some((h) => h.step === 'manual-review'), `${express.orderId} to skip manual-review`);
    print(`history: when ${taken?.step ?? '?'} took ${taken?.outcome ?? '?'}; manual-review never ran; payment ${done.state.paymentId ?? '?'}`);
    for (const line of ledger.lines(express.orderId)) print(line);

    print('');
    const rejected: Order = { orderId: `ord-3002${suffix}`, amountCents: 12_000, express: false, trusted: false };
    reviews.reject(rejected.orderId);
    print(`${rejected.orderId}: standard, new customer, rejected in manual review`);
    const failed = await place(rejected);
    expectThat(failed.status === 'rolled_back', `${rejected.orderId} to roll back, got ${failed.status}`);
    expectThat(failed.error?.code === 'FRAUD_SUSPECTED', `${rejected.orderId} to fail with FRAUD_SUSPECTED, got ${failed.error?.code}`);
    const payment = await runtime.get(`${rejected.orderId}:payment`);
    expectThat(payment.status === 'rolled_back', `the payment child of ${rejected.orderId} to be compensated, got ${payment.status}`);
    for (const line of ledger.lines(rejected.orderId)) print(line);
    const standing = ledger.standing(rejected.orderId);
    expectThat(standing.length === 0, `every effect of ${rejected.orderId} to be undone, still standing: ${standing.map((e) => e.ref).join(', ')}`);
    print(`every effect of ${rejected.orderId} was undone, the child's in reverse before the parent's earlier steps`);

    print('');
    await clock.advance('1s'); // a fresh second: the mailer's window holds only the burst below
    const burst: Order[] = ['3003', '3004', '3005'].map((n) => ({ orderId: `ord-${n}${suffix}`, amountCents: 1_500, express: false, trusted: true }));
    print(`${burst.map((o) => o.orderId).join(', ')}: three orders at once; the mailer allows 2 confirmations a second`);
    const handles = await Promise.all(burst.map((o) => runtime.start<BranchingOrderState>(BranchingOrder, o, { id: o.orderId })));
    await runtime.idle();
    const parked = [];
    for (const o of burst) if ((await runtime.get(o.orderId)).status === 'waiting') parked.push(o.orderId);
    expectThat(parked.length === 1, `one confirmation to be parked by the rate limiter, got ${parked.length}`);
    print(`${parked.join(', ')} waits for a mailer slot (its step is parked until ${new Date(clock.now() + 1000).toISOString()}, persisted)`);
    await clock.advance('1s');
    const results = await Promise.all(handles.map((h) => h.result()));
    expectThat(results.every((r) => r.status === 'completed'), 'the three orders to complete once the clock moved on');
    print(`all three completed; the parked one mailed at +1 s`);
    expectNoProblems(problems);
  } finally {
    await runtime.close();
  }
}

// `node dist/samples/branching-order/run.js` runs it on its own, on a MemoryStore.
runWhenMain(module, (print) => runBranchingOrder(print, { store: new MemoryStore() }));
