import 'reflect-metadata';
import { Workflow, child, ok, parallel, when, HistoryObserver } from '../../src';
import { TimelineObserver } from '../timeline-observer';
import { BranchingOrderState, PaymentState } from './state';
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

/** The payment, as a workflow of its own: the order flow runs it as a child and compensates it as a unit. */
@Workflow({ name: 'take-payment', steps: [AuthorizeCard, CapturePayment], observers: [TimelineObserver, new HistoryObserver()], state: PaymentState })
export class TakePayment {}

/**
 * reserve-stock → when express: parallel rush (courier + packing floor), else standard shipping → the payment
 * child workflow → score-fraud, which jumps over manual-review for trusted customers → send-confirmation
 * (rate-limited). Whatever path ran is what a failure compensates.
 */
@Workflow({
  name: 'branching-order',
  steps: [
    ReserveStock,
    when((s: BranchingOrderState) => s.express, [parallel('rush', [BookCourier, AlertPackingFloor])], [BookStandardShipping], { name: 'express?' }),
    child(TakePayment, {
      name: 'payment',
      input: (s: BranchingOrderState) => ({ orderId: s.orderId, amountCents: s.amountCents }),
      into: (s: BranchingOrderState, paid: PaymentState) => ok({ ...s, paymentId: paid.paymentId }),
    }),
    ScoreFraud,
    ManualReview,
    SendConfirmation,
  ],
  observers: [TimelineObserver, new HistoryObserver()],
  state: BranchingOrderState,
})
export class BranchingOrder {}
