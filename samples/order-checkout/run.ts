import 'reflect-metadata';
import { MemoryStore, SagaRuntime, StateValidationError, UnknownInstanceError, silentLogger, type SagaResult } from '../../src';
import { collectProblems, expectNoProblems, expectThat, resolverOf, untilParked, type SampleOptions, runWhenMain } from '../support';
import { TimelineObserver, type Print } from '../timeline-observer';
import { Ledger } from '../ledger';
import { Carrier, InventoryService, PaymentGateway, euros } from './services';
import type { OrderState } from './state';
import { ChargePayment, PAYMENT_CAPTURED, ReserveInventory, Ship } from './steps';
import { OrderCheckout } from './workflow';

type Order = Pick<OrderState, 'orderId' | 'sku' | 'quantity' | 'amountCents'>;

/** What one run of the sample works with: fresh fakes, a runtime wired to them, the timeline. */
interface Shop {
  readonly runtime: SagaRuntime;
  readonly ledger: Ledger;
  readonly inventory: InventoryService;
  readonly payments: PaymentGateway;
  readonly carrier: Carrier;
  readonly timeline: TimelineObserver;
  readonly print: Print;
  /** Appended to the order ids (and so to the instance ids), see {@link SampleOptions.idSuffix}. */
  readonly suffix: string;
}

/**
 * Runs the order-checkout sample and prints its timeline:
 * 1. an order that goes through (reserve → charge, wait for the webhook → ship → completed);
 * 2. an order the carrier refuses (… → ship fails → ship, charge-payment, reserve-inventory undone), and the
 *    ledger showing that each of its effects was undone;
 * 3. an order that fails validation at `start` and is never stored.
 *
 * Deterministic: fixed ids (order-1001 … order-1003, plus `options.idSuffix`), fresh fakes per call, no real
 * time. Throws `SampleExpectationError` when an outcome is not the expected one.
 */
export async function runOrderCheckout(print: Print, options: SampleOptions = {}): Promise<void> {
  const ledger = new Ledger();
  const inventory = new InventoryService(ledger, { 'SKU-MUG': 10, 'SKU-LAMP': 3 });
  const payments = new PaymentGateway(ledger);
  const carrier = new Carrier(ledger);
  const suffix = options.idSuffix ?? '';
  const timeline = new TimelineObserver(print, { idWidth: 11 + suffix.length });
  const runtime = new SagaRuntime({
    ...(options.store === undefined ? {} : { store: options.store }),
    logger: silentLogger,
    workflows: [OrderCheckout],
    resolver: resolverOf([new ReserveInventory(inventory), new ChargePayment(payments), new Ship(carrier), timeline]),
  });
  const problems = collectProblems(runtime);
  const shop: Shop = { runtime, ledger, inventory, payments, carrier, timeline, print, suffix };
  try {
    await orderThatGoesThrough(shop);
    print('');
    await orderTheCarrierRefuses(shop);
    print('');
    await orderThatIsInvalid(shop);
    expectNoProblems(problems);
  } finally {
    await runtime.close();
  }
}

async function orderThatGoesThrough(shop: Shop): Promise<void> {
  const order: Order = { orderId: `order-1001${shop.suffix}`, sku: 'SKU-MUG', quantity: 2, amountCents: 2598 };
  const id = order.orderId;
  shop.print(`${id}: ${order.quantity} × ${order.sku} for ${euros(order.amountCents)} (goes through)`);
  const result = await checkout(shop, order);
  expectThat(result.status === 'completed', `${id} to complete, got ${result.status}`);
  const { reservationId, paymentId, shipmentId } = result.state;
  expectThat(reservationId === 'res-1' && paymentId === 'pay-1' && shipmentId === 'shp-1', `${id} to hold res-1, pay-1 and shp-1, got ${reservationId}, ${paymentId}, ${shipmentId}`);
  shop.print(`final state: reservation ${reservationId}, payment ${paymentId}, shipment ${shipmentId}`);
  printLedger(shop, id);
  expectThat(shop.ledger.standing(id).length === 3, `the three effects of ${id} to stand`);
}

async function orderTheCarrierRefuses(shop: Shop): Promise<void> {
  const order: Order = { orderId: `order-1002${shop.suffix}`, sku: 'SKU-LAMP', quantity: 1, amountCents: 4500 };
  const id = order.orderId;
  shop.carrier.refuse(id, 'NO_CARRIER_CAPACITY', 'no courier can collect in this area today');
  const stockBefore = shop.inventory.available(order.sku);
  shop.print(`${id}: ${order.quantity} × ${order.sku} for ${euros(order.amountCents)} (the carrier refuses it)`);
  const result = await checkout(shop, order);
  expectThat(result.status === 'rolled_back', `${id} to roll back, got ${result.status}`);
  expectThat(result.error?.code === 'NO_CARRIER_CAPACITY', `${id} to fail with NO_CARRIER_CAPACITY, got ${result.error?.code}`);
  printLedger(shop, id);
  const effects = shop.ledger.of(id);
  const standing = shop.ledger.standing(id);
  expectThat(effects.length === 2, `${id} to have had 2 effects (reservation, payment), got ${effects.length}`);
  expectThat(standing.length === 0, `every effect of ${id} to be undone, still standing: ${standing.map((e) => e.ref).join(', ')}`);
  expectThat(shop.inventory.available(order.sku) === stockBefore, `the ${order.sku} stock to be back to ${stockBefore}`);
  shop.print(`every effect of ${id} was undone (${effects.length} of ${effects.length}); ${order.sku} stock is back to ${stockBefore}`);
}

async function orderThatIsInvalid(shop: Shop): Promise<void> {
  const id = `order-1003${shop.suffix}`;
  shop.print(`${id}: 0 × SKU-MUG (invalid: refused at start)`);
  try {
    await shop.runtime.start(OrderCheckout, { orderId: id, sku: 'SKU-MUG', quantity: 0, amountCents: 0 }, { id });
  } catch (e) {
    expectThat(e instanceof StateValidationError, `a StateValidationError, got ${String(e)}`);
    const properties = (e as StateValidationError).properties.map((p) => p.property);
    expectThat(properties.join(',') === 'quantity,amountCents', `quantity and amountCents to be reported, got ${properties.join(', ')}`);
    shop.print(`start refused it: ${(e as StateValidationError).code} — ${properties.join(', ')}`);
    expectThat(await isUnknown(shop.runtime, id), `${id} not to be stored`);
    shop.print(`nothing was stored for ${id}`);
    return;
  }
  expectThat(false, `start to refuse ${id}`);
}

/**
 * Starts a checkout, waits until it parks on the payment webhook, plays the payment provider (captures the
 * payment, publishes `payment.captured` as its webhook would), and resolves with how the checkout ended.
 */
async function checkout(shop: Shop, order: Order): Promise<SagaResult<OrderState>> {
  const handle = await shop.runtime.start<OrderState>(OrderCheckout, order, { id: order.orderId });
  const { snapshot, topics } = await untilParked(shop.runtime, handle.id);
  shop.timeline.waiting(snapshot.flow, topics);
  const webhook = shop.payments.capture(order.orderId);
  shop.timeline.note(order.orderId, `webhook ${PAYMENT_CAPTURED} { orderId: ${webhook.orderId}, paymentId: ${webhook.paymentId} }`);
  const receipt = await shop.runtime.publish({ topic: PAYMENT_CAPTURED, payload: webhook });
  expectThat(receipt.delivered === 1, `the ${PAYMENT_CAPTURED} webhook of ${order.orderId} to be delivered to its checkout`);
  return handle.result();
}

/** True when the runtime (and so its store) knows no instance `id`. */
async function isUnknown(runtime: SagaRuntime, id: string): Promise<boolean> {
  try {
    await runtime.get(id);
    return false;
  } catch (e) {
    if (e instanceof UnknownInstanceError) return true;
    throw e;
  }
}

function printLedger(shop: Shop, orderId: string): void {
  shop.print(`ledger of ${orderId}:`);
  for (const line of shop.ledger.lines(orderId)) shop.print(line);
}

// `node dist/samples/order-checkout/run.js` runs it on its own, on a MemoryStore.
runWhenMain(module, (print) => runOrderCheckout(print, { store: new MemoryStore() }));
