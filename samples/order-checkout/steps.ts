import 'reflect-metadata';
import { BaseStep, Step, continueWith, error, ok, type SagaEvent, type StepContext, type StepResult } from '../../src';
import { ServiceError } from '../ledger';
import { Carrier, InventoryService, PaymentGateway } from './services';
import type { OrderState } from './state';

/** The topic of the payment provider's webhook that confirms a capture. */
export const PAYMENT_CAPTURED = 'payment.captured';

/** Holds the units for the order; gives them back when the checkout rolls back. */
@Step({ name: 'reserve-inventory' })
export class ReserveInventory extends BaseStep<OrderState> {
  constructor(private readonly inventory: InventoryService) {
    super();
  }

  override async run(state: OrderState, ctx: StepContext): Promise<StepResult<OrderState>> {
    try {
      state.reservationId = await this.inventory.reserve(state.orderId, state.sku, state.quantity, ctx.idempotencyKey);
      return ok(state);
    } catch (e) {
      // A business failure becomes an explicit error result; anything else is rethrown (and becomes one too).
      if (e instanceof ServiceError) return error({ code: e.code, message: e.message }, state);
      throw e;
    }
  }

  override async rollback(state: OrderState): Promise<StepResult<OrderState>> {
    if (state.reservationId !== undefined) await this.inventory.release(state.reservationId);
    return ok(state);
  }
}

/**
 * Asks the payment provider to charge the order, then parks the saga until the provider's `payment.captured`
 * webhook for this order arrives (or 10 minutes pass: a `TIMEOUT` error, which rolls the order back).
 */
@Step({ name: 'charge-payment' })
export class ChargePayment extends BaseStep<OrderState> {
  constructor(private readonly payments: PaymentGateway) {
    super();
  }

  override async run(state: OrderState, ctx: StepContext): Promise<StepResult<OrderState>> {
    await this.payments.authorise(state.orderId, state.amountCents, ctx.idempotencyKey);
    return continueWith(state, { topic: PAYMENT_CAPTURED, match: { orderId: state.orderId }, timeout: '10m' });
  }

  /** Only a `payment.captured` event whose payload has this order's `orderId` is delivered here. */
  override runHandleInfo(event: SagaEvent, state: OrderState): StepResult<OrderState> {
    const paymentId = event.payload.paymentId;
    if (typeof paymentId !== 'string' || paymentId.length === 0) {
      return error({ code: 'BAD_WEBHOOK', message: `${event.topic} for ${state.orderId} has no paymentId` }, state);
    }
    state.paymentId = paymentId;
    return ok(state);
  }

  /** Refunds a captured payment; an authorisation whose capture never arrived is voided instead. */
  override async rollback(state: OrderState): Promise<StepResult<OrderState>> {
    if (state.paymentId !== undefined) await this.payments.refund(state.paymentId);
    else await this.payments.voidAuthorisation(state.orderId);
    return ok(state);
  }
}

/** Books the parcel with the carrier; cancels it when the checkout rolls back. */
@Step({ name: 'ship' })
export class Ship extends BaseStep<OrderState> {
  constructor(private readonly carrier: Carrier) {
    super();
  }

  /** A refusal from the carrier is thrown as a `ServiceError`; the runtime turns it into `error` with its code. */
  override async run(state: OrderState, ctx: StepContext): Promise<StepResult<OrderState>> {
    state.shipmentId = await this.carrier.book(state.orderId, state.sku, state.quantity, ctx.idempotencyKey);
    return ok(state);
  }

  /**
   * Called for a booked shipment, and also when `run` itself failed (the failing step is compensated first,
   * since it may have half-happened): cancelling by order covers both.
   */
  override async rollback(state: OrderState): Promise<StepResult<OrderState>> {
    await this.carrier.cancelFor(state.orderId);
    return ok(state);
  }
}
