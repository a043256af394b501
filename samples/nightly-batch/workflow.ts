import 'reflect-metadata';
import { IsArray, IsOptional, IsString } from 'class-validator';
import { BaseStep, Step, Workflow, error, forEach, ok, type BranchOutcome, type StepContext, type StepResult } from '../../src';
import { type Ledger, ServiceError } from '../ledger';
import { TimelineObserver } from '../timeline-observer';

/** One invoice to collect tonight. */
export interface Invoice {
  /** The night whose batch collects it. */
  readonly night: string;
  readonly invoiceId: string;
  readonly customer: string;
  readonly cents: number;
  /** Set by `charge-invoice` in the item's own state. */
  paymentId?: string;
}

/** A night's batch. */
export class NightlyState {
  @IsString() night!: string;
  @IsOptional() @IsArray() invoices?: Invoice[];
  @IsOptional() @IsArray() collected?: string[];
  @IsOptional() @IsArray() declined?: string[];
  @IsOptional() @IsString() reportId?: string;
}

/** The billing system: due invoices per night, card charges (one card declines), reports. */
export class Billing {
  private charges = 0;
  private readonly declining = new Set<string>();
  constructor(
    private readonly ledger: Ledger,
    private readonly due: (night: string) => Omit<Invoice, 'night'>[],
  ) {}
  decline(customer: string): void {
    this.declining.add(customer);
  }
  async dueInvoices(night: string): Promise<Invoice[]> {
    await Promise.resolve();
    return this.due(night).map((invoice) => ({ ...invoice, night }));
  }
  async charge(invoice: Invoice, idempotencyKey: string): Promise<string> {
    await Promise.resolve();
    if (this.declining.has(invoice.customer)) throw new ServiceError('CARD_DECLINED', `the card of ${invoice.customer} was declined`);
    this.charges += 1;
    const ref = `pay-${this.charges}`;
    this.ledger.record(invoice.night, 'cards', ref, `charged ${invoice.invoiceId} (${(invoice.cents / 100).toFixed(2)} EUR), key ${idempotencyKey.split(':').slice(-3).join(':')}`);
    return ref;
  }
  async refund(ref: string | undefined): Promise<void> {
    await Promise.resolve();
    if (ref !== undefined) this.ledger.undo(ref, 'refunded');
  }
  async report(night: string, collected: number, declined: number): Promise<string> {
    await Promise.resolve();
    const ref = `report-${night}`;
    this.ledger.record(night, 'reports', ref, `mailed the report: ${collected} collected, ${declined} declined`);
    return ref;
  }
}

@Step({ name: 'load-invoices' })
export class LoadInvoices extends BaseStep<NightlyState> {
  constructor(private readonly billing: Billing) {
    super();
  }
  override async run(s: NightlyState): Promise<StepResult<NightlyState>> {
    return ok({ ...s, invoices: await this.billing.dueInvoices(s.night) });
  }
}

/** One forEach item: its state is the invoice. Charges go through the shared `card-network` rate limiter. */
@Step({ name: 'charge-invoice', rateLimit: 'card-network' })
export class ChargeInvoice extends BaseStep<Invoice> {
  constructor(private readonly billing: Billing) {
    super();
  }
  override async run(invoice: Invoice, ctx: StepContext): Promise<StepResult<Invoice>> {
    try {
      // The idempotency key names this item (`…:charge-invoice[3]:up:1`): the card network deduplicates on it.
      return ok({ ...invoice, paymentId: await this.billing.charge(invoice, ctx.idempotencyKey) });
    } catch (e) {
      if (e instanceof ServiceError) return error({ code: e.code, message: e.message });
      throw e;
    }
  }
  override async rollback(invoice: Invoice): Promise<StepResult<Invoice>> {
    await this.billing.refund(invoice.paymentId);
    return ok(invoice);
  }
}

@Step({ name: 'mail-report' })
export class MailReport extends BaseStep<NightlyState> {
  constructor(private readonly billing: Billing) {
    super();
  }
  override async run(s: NightlyState): Promise<StepResult<NightlyState>> {
    return ok({ ...s, reportId: await this.billing.report(s.night, s.collected?.length ?? 0, s.declined?.length ?? 0) });
  }
}

/** Sorts the items' outcomes (in invoice order) into collected and declined. */
function sortOutcomes(s: NightlyState, results: readonly BranchOutcome<Invoice>[]): ReturnType<typeof ok<NightlyState>> {
  const invoices = s.invoices ?? [];
  const collected = results.flatMap((r, i) => (r.ok ? [invoices[i]?.invoiceId ?? '?'] : []));
  const declined = results.flatMap((r, i) => (r.ok ? [] : [invoices[i]?.invoiceId ?? '?']));
  return ok({ ...s, collected, declined });
}

/**
 * Every night: load the due invoices, charge each one (a forEach, 3 at a time, a declined card does not stop
 * the others), then mail a report. Started by `runtime.schedule(NightlyInvoicing, { cron: '0 2 * * *', … })`.
 */
@Workflow({
  name: 'nightly-invoicing',
  steps: [
    LoadInvoices,
    forEach('charge-invoices', (s: NightlyState) => s.invoices ?? [], ChargeInvoice, { maxConcurrency: 3, onItemError: 'continue', into: sortOutcomes }),
    MailReport,
  ],
  observers: [TimelineObserver],
  state: NightlyState,
})
export class NightlyInvoicing {}
