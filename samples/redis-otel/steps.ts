import 'reflect-metadata';
import { BaseStep, Step, Workflow, continueWith, error, ok, type SagaEvent, type StepContext, type StepResult } from '../../src';

/** The payment provider's message (on Redis) that confirms a capture. */
export const PAYMENT_CAPTURED = 'payment.captured';

/** The state of one order. Ids are derived from the order id, so the output is the same on every run. */
export interface OrderState {
  orderId: string;
  sku: string;
  quantity: number;
  amountCents: number;
  /** Where the parcel goes; the carrier does not deliver to `Atlantis`. */
  shipTo: string;
  reservationId?: string;
  paymentId?: string;
  shipmentId?: string;
}

/** Holds the stock; releases it on rollback. Each effect is announced on the saga bus (and so on Redis). */
@Step({ name: 'reserve-stock' })
export class ReserveStock extends BaseStep<OrderState> {
  override async run(state: OrderState, ctx: StepContext): Promise<StepResult<OrderState>> {
    state.reservationId = `res-${state.orderId}`;
    await ctx.publish({ topic: 'stock.reserved', payload: { orderId: state.orderId, reservationId: state.reservationId, sku: state.sku, quantity: state.quantity } });
    return ok(state);
  }

  override async rollback(state: OrderState, ctx: StepContext): Promise<StepResult<OrderState>> {
    if (state.reservationId !== undefined) await ctx.publish({ topic: 'stock.released', payload: { orderId: state.orderId, reservationId: state.reservationId } });
    return ok(state);
  }
}

/** Asks for the payment, then waits for the provider's `payment.captured` for this order (it comes in over Redis). */
@Step({ name: 'charge' })
export class Charge extends BaseStep<OrderState> {
  override async run(state: OrderState, ctx: StepContext): Promise<StepResult<OrderState>> {
    await ctx.publish({ topic: 'payment.requested', payload: { orderId: state.orderId, amountCents: state.amountCents } });
    return continueWith(state, { topic: PAYMENT_CAPTURED, match: { orderId: state.orderId }, timeout: '1m' });
  }

  override runHandleInfo(event: SagaEvent, state: OrderState): StepResult<OrderState> {
    const paymentId = event.payload.paymentId;
    if (typeof paymentId !== 'string') return error({ code: 'BAD_WEBHOOK', message: `${event.topic} without a paymentId` }, state);
    state.paymentId = paymentId;
    return ok(state);
  }

  override async rollback(state: OrderState, ctx: StepContext): Promise<StepResult<OrderState>> {
    const payload = state.paymentId === undefined ? { orderId: state.orderId } : { orderId: state.orderId, paymentId: state.paymentId };
    await ctx.publish({ topic: state.paymentId === undefined ? 'payment.voided' : 'payment.refunded', payload });
    return ok(state);
  }
}

/** Books the parcel; the carrier refuses `Atlantis`. Rollback cancels whatever was booked for the order. */
@Step({ name: 'ship' })
export class Ship extends BaseStep<OrderState> {
  override async run(state: OrderState, ctx: StepContext): Promise<StepResult<OrderState>> {
    if (state.shipTo === 'Atlantis') return error({ code: 'NO_CARRIER', message: `no carrier delivers to ${state.shipTo}` }, state);
    state.shipmentId = `shp-${state.orderId}`;
    await ctx.publish({ topic: 'order.shipped', payload: { orderId: state.orderId, shipmentId: state.shipmentId, shipTo: state.shipTo } });
    return ok(state);
  }

  override async rollback(state: OrderState, ctx: StepContext): Promise<StepResult<OrderState>> {
    if (state.shipmentId !== undefined) await ctx.publish({ topic: 'shipment.cancelled', payload: { orderId: state.orderId, shipmentId: state.shipmentId } });
    return ok(state);
  }
}

/** reserve-stock → charge (waits for `payment.captured`) → ship; a failure undoes them in reverse. */
@Workflow({ name: 'order', steps: [ReserveStock, Charge, Ship] })
export class OrderSaga {}
