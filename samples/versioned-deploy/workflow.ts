import { BaseStep, Step, continueWith, defineWorkflow, ok, type SagaEvent, type StepContext, type StepResult } from '../../src';
import type { Ledger } from '../ledger';

/** A loan application: the applicant, the amount, and what the steps found. */
export interface Application {
  applicationId: string;
  applicant: string;
  amount: number;
  score?: number;
  fraudChecked?: boolean;
  approvedBy?: string;
}

/** The lender's systems: every effect and its undo go to the ledger. */
export class Lender {
  constructor(private readonly ledger: Ledger) {}
  creditScore(applicant: string): number {
    return 600 + (applicant.length * 37) % 200;
  }
  fraudCheck(id: string): void {
    this.ledger.record(id, 'fraud', `check-${id}`, 'checked for fraud');
  }
  disburse(id: string, amount: number): void {
    this.ledger.record(id, 'bank', `payout-${id}`, `paid out ${amount}`);
  }
  reclaim(id: string): void {
    this.ledger.undo(`payout-${id}`, 'reclaimed');
  }
}

@Step({ name: 'check-credit' })
export class CheckCredit extends BaseStep<Application> {
  constructor(private readonly lender: Lender) {
    super();
  }
  override run(state: Application): StepResult<Application> {
    return ok({ ...state, score: this.lender.creditScore(state.applicant) });
  }
}

/** New in version 2: a fraud check before a loan officer sees the application. */
@Step({ name: 'score-fraud' })
export class ScoreFraud extends BaseStep<Application> {
  constructor(private readonly lender: Lender) {
    super();
  }
  override run(state: Application): StepResult<Application> {
    this.lender.fraudCheck(state.applicationId);
    return ok({ ...state, fraudChecked: true });
  }
}

/** Parks until a loan officer approves the application (`loan.approved` for its id), for days if need be. */
@Step({ name: 'await-approval' })
export class AwaitApproval extends BaseStep<Application> {
  override run(state: Application): StepResult<Application> {
    return continueWith(state, { topic: 'loan.approved', match: { applicationId: state.applicationId }, timeout: '14d' });
  }
  override runHandleInfo(event: SagaEvent, state: Application): StepResult<Application> {
    return ok({ ...state, approvedBy: String(event.payload.officer) });
  }
}

@Step({ name: 'disburse' })
export class Disburse extends BaseStep<Application> {
  constructor(private readonly lender: Lender) {
    super();
  }
  override run(state: Application, ctx: StepContext): StepResult<Application> {
    this.lender.disburse(ctx.instanceId, state.amount);
    return ok(state);
  }
  override rollback(state: Application, ctx: StepContext): StepResult<Application> {
    this.lender.reclaim(ctx.instanceId);
    return ok(state);
  }
}

/** Monday's release. */
export const LoanV1 = defineWorkflow<Application>({ name: 'loan-application', steps: [CheckCredit, AwaitApproval, Disburse] });

/** Tuesday's release: the fraud check joins, as version 2, beside version 1 for the applications already waiting. */
export const LoanV2 = defineWorkflow<Application>({ name: 'loan-application', version: 2, steps: [CheckCredit, ScoreFraud, AwaitApproval, Disburse] });
