import 'reflect-metadata';
import { BaseStep, Step, error, goto, ok, type StepContext, type StepResult } from '../../src';
import { ServiceError } from '../ledger';
import { Cards, Mailer, Reviews, Shipping, Warehouse } from './services';
import type { BranchingOrderState, PaymentState } from './state';

@Step({ name: 'reserve-stock' })
export class ReserveStock extends BaseStep<BranchingOrderState> {
  constructor(private readonly warehouse: Warehouse) {
    super();
  }
  override async run(s: BranchingOrderState): Promise<StepResult<BranchingOrderState>> {
    return ok({ ...s, reservationId: await this.warehouse.reserve(s.orderId) });
  }
  override async rollback(s: BranchingOrderState): Promise<StepResult<BranchingOrderState>> {
    await this.warehouse.release(s.reservationId);
    return ok(s);
  }
}

/** Rush branch 1 (express orders). */
@Step({ name: 'book-courier' })
export class BookCourier extends BaseStep<BranchingOrderState> {
  constructor(private readonly shipping: Shipping) {
    super();
  }
  override async run(s: BranchingOrderState): Promise<StepResult<BranchingOrderState>> {
    return ok({ ...s, shipmentId: await this.shipping.courier(s.orderId) });
  }
  override async rollback(s: BranchingOrderState): Promise<StepResult<BranchingOrderState>> {
    await this.shipping.cancel(s.shipmentId);
    return ok(s);
  }
}

/** Rush branch 2 (express orders). Its output lives in its own copy of the state. */
@Step({ name: 'alert-packing-floor' })
export class AlertPackingFloor extends BaseStep<BranchingOrderState & { alertId?: string }> {
  constructor(private readonly warehouse: Warehouse) {
    super();
  }
  override async run(s: BranchingOrderState): Promise<StepResult<BranchingOrderState & { alertId?: string }>> {
    return ok({ ...s, alertId: await this.warehouse.alert(s.orderId) });
  }
  override async rollback(s: BranchingOrderState & { alertId?: string }): Promise<StepResult<BranchingOrderState>> {
    await this.warehouse.standDown(s.alertId);
    return ok(s);
  }
}

/** The else-block (standard orders). */
@Step({ name: 'book-standard-shipping' })
export class BookStandardShipping extends BaseStep<BranchingOrderState> {
  constructor(private readonly shipping: Shipping) {
    super();
  }
  override async run(s: BranchingOrderState): Promise<StepResult<BranchingOrderState>> {
    return ok({ ...s, shipmentId: await this.shipping.standard(s.orderId) });
  }
  override async rollback(s: BranchingOrderState): Promise<StepResult<BranchingOrderState>> {
    await this.shipping.cancel(s.shipmentId);
    return ok(s);
  }
}

/** Child workflow step 1: authorize the card. */
@Step({ name: 'authorize-card' })
export class AuthorizeCard extends BaseStep<PaymentState> {
  constructor(private readonly cards: Cards) {
    super();
  }
  override async run(s: PaymentState): Promise<StepResult<PaymentState>> {
    return ok({ ...s, authorizationId: await this.cards.authorize(s.orderId, s.amountCents) });
  }
  override async rollback(s: PaymentState): Promise<StepResult<PaymentState>> {
    await this.cards.void(s.authorizationId);
    return ok(s);
  }
}

/** Child workflow step 2: capture the authorized amount. */
@Step({ name: 'capture-payment' })
export class CapturePayment extends BaseStep<PaymentState> {
  constructor(private readonly cards: Cards) {
    super();
  }
  override async run(s: PaymentState): Promise<StepResult<PaymentState>> {
    return ok({ ...s, paymentId: await this.cards.capture(s.orderId, s.amountCents) });
  }
  override async rollback(s: PaymentState): Promise<StepResult<PaymentState>> {
    await this.cards.refund(s.paymentId);
    return ok(s);
  }
}

/** Trusted customers jump over the manual review (a forward goto, declared so the definition checks it). */
@Step({ name: 'score-fraud', goto: ['send-confirmation'] })
export class ScoreFraud extends BaseStep<BranchingOrderState> {
  override run(s: BranchingOrderState): StepResult<BranchingOrderState> {
    return s.trusted ? goto('send-confirmation', s) : ok(s);
  }
}

@Step({ name: 'manual-review' })
export class ManualReview extends BaseStep<BranchingOrderState> {
  constructor(private readonly reviews: Reviews) {
    super();
  }
  override async run(s: BranchingOrderState): Promise<StepResult<BranchingOrderState>> {
    try {
      await this.reviews.review(s.orderId);
      return ok(s);
    } catch (e) {
      if (e instanceof ServiceError) return error({ code: e.code, message: e.message }, s);
      throw e;
    }
  }
}

/** Mail goes through the shared `mailer` rate limiter (the provider allows 2 mails a second). */
@Step({ name: 'send-confirmation', rateLimit: 'mailer' })
export class SendConfirmation extends BaseStep<BranchingOrderState> {
  constructor(private readonly mailer: Mailer) {
    super();
  }
  override async run(s: BranchingOrderState, _ctx: StepContext): Promise<StepResult<BranchingOrderState>> {
    return ok({ ...s, confirmationId: await this.mailer.confirm(s.orderId) });
  }
  override async rollback(s: BranchingOrderState): Promise<StepResult<BranchingOrderState>> {
    await this.mailer.retract(s.confirmationId);
    return ok(s);
  }
}
