import 'reflect-metadata';
import { BaseStep, Step, Workflow, continueWith, error, ok, type SagaEvent, type StepResult } from '../../src';

/** The state of one order's saga: what the shop asked for and what each step obtained. */
export interface OrderState {
  orderId: string;
  sku: string;
  quantity: number;
  amountCents: number;
  reservationId?: string;
  paymentId?: string;
  shipmentId?: string;
}

/** The topic of the payment provider's webhook. */
export const PAYMENT_CAPTURED = 'payment.captured';

/** What the sample's steps did to the outside world, in order (a stand-in for the shop's services). */
export class Effects {
  readonly lines: string[] = [];

  add(line: string): void {
    this.lines.push(line);
  }
}

/** Holds the stock; gives it back on rollback. */
@Step({ name: 'reserve-stock' })
export class ReserveStock extends BaseStep<OrderState> {
  constructor(private readonly effects: Effects) {
    super();
  }

  override run(state: OrderState): StepResult<OrderState> {
    this.effects.add(`reserve ${state.quantity} × ${state.sku} for ${state.orderId}`);
    return ok({ ...state, reservationId: `res-${state.orderId}` });
  }

  override rollback(state: OrderState): StepResult<OrderState> {
    this.effects.add(`release the stock of ${state.orderId}`);
    return ok({ ...state, reservationId: undefined });
  }
}

/** Asks for the payment, then parks until the provider's `payment.captured` webhook for this order arrives. */
@Step({ name: 'charge-payment' })
export class ChargePayment extends BaseStep<OrderState> {
  constructor(private readonly effects: Effects) {
    super();
  }

  override run(state: OrderState): StepResult<OrderState> {
    this.effects.add(`authorise ${state.amountCents} cents for ${state.orderId}`);
    return continueWith(state, { topic: PAYMENT_CAPTURED, match: { orderId: state.orderId }, timeout: '1h' });
  }

  override runHandleInfo(event: SagaEvent, state: OrderState): StepResult<OrderState> {
    const paymentId = event.payload.paymentId;
    if (typeof paymentId !== 'string') return error({ code: 'BAD_WEBHOOK', message: 'the webhook has no paymentId' }, state);
    return ok({ ...state, paymentId });
  }

  override rollback(state: OrderState): StepResult<OrderState> {
    this.effects.add(`refund the payment of ${state.orderId}`);
    return ok({ ...state, paymentId: undefined });
  }
}

/** Books a courier; pianos are too heavy for the carrier, which refuses them. */
@Step({ name: 'ship' })
export class Ship extends BaseStep<OrderState> {
  constructor(private readonly effects: Effects) {
    super();
  }

  override run(state: OrderState): StepResult<OrderState> {
    if (state.sku === 'SKU-PIANO') return error({ code: 'NO_CARRIER', message: 'no carrier takes a piano' }, state);
    this.effects.add(`ship ${state.orderId}`);
    return ok({ ...state, shipmentId: `shp-${state.orderId}` });
  }

  override rollback(state: OrderState): StepResult<OrderState> {
    return ok(state);
  }
}

/** Reserve the stock, take the payment (waiting for its webhook), ship; undo in reverse when a step fails. */
@Workflow({ name: 'embedded-order', steps: [ReserveStock, ChargePayment, Ship] })
export class EmbeddedOrder {}
