import 'reflect-metadata';
import { Workflow, HistoryObserver } from '../../src';
import { TimelineObserver } from '../timeline-observer';
import { OrderState } from './state';
import { ChargePayment, ReserveInventory, Ship } from './steps';

/**
 * Reserve the stock, take the payment (waiting for the provider's webhook), ship. When a step fails, every
 * step that started is undone in reverse: the failing one first, then the ones before it.
 *
 * Steps and the observer are classes; the runtime makes them through its `resolver`, which is where the
 * sample hands them their services and the timeline's output (see run.ts).
 */
@Workflow({
  name: 'order-checkout',
  steps: [ReserveInventory, ChargePayment, Ship],
  observers: [TimelineObserver, new HistoryObserver()],
  state: OrderState,
})
export class OrderCheckout {}
