/**
 * In-memory fakes of the services the branching order flow touches. Undo calls are safe to repeat, and every
 * effect (and its undo) is written to a {@link Ledger}.
 */
import { type Ledger, ServiceError } from '../ledger';

/** Hands out ids per service and records effects under the order they belong to. */
class Fake {
  private next = 0;
  constructor(
    protected readonly ledger: Ledger,
    private readonly service: string,
  ) {}

  protected async effect(orderId: string, what: string): Promise<string> {
    await Promise.resolve();
    this.next += 1;
    const ref = `${this.service}-${this.next}`;
    this.ledger.record(orderId, this.service, ref, what);
    return ref;
  }

  protected async undo(ref: string | undefined, how: string): Promise<void> {
    await Promise.resolve();
    if (ref !== undefined) this.ledger.undo(ref, how);
  }
}

export class Warehouse extends Fake {
  constructor(ledger: Ledger) {
    super(ledger, 'stock');
  }
  reserve = (orderId: string): Promise<string> => this.effect(orderId, 'reserved the items');
  release = (ref: string | undefined): Promise<void> => this.undo(ref, 'released');
  alert = (orderId: string): Promise<string> => this.effect(orderId, 'alerted the packing floor (rush)');
  standDown = (ref: string | undefined): Promise<void> => this.undo(ref, 'stood down');
}

export class Shipping extends Fake {
  constructor(ledger: Ledger) {
    super(ledger, 'ship');
  }
  courier = (orderId: string): Promise<string> => this.effect(orderId, 'booked a same-day courier');
  standard = (orderId: string): Promise<string> => this.effect(orderId, 'booked standard parcel post');
  cancel = (ref: string | undefined): Promise<void> => this.undo(ref, 'cancelled');
}

export class Cards extends Fake {
  constructor(ledger: Ledger) {
    super(ledger, 'card');
  }
  authorize = (orderId: string, cents: number): Promise<string> => this.effect(orderId, `authorized ${(cents / 100).toFixed(2)} EUR`);
  void = (ref: string | undefined): Promise<void> => this.undo(ref, 'voided');
  capture = (orderId: string, cents: number): Promise<string> => this.effect(orderId, `captured ${(cents / 100).toFixed(2)} EUR`);
  refund = (ref: string | undefined): Promise<void> => this.undo(ref, 'refunded');
}

export class Reviews {
  private readonly rejected = new Set<string>();
  /** Makes the fraud team reject this order. */
  reject(orderId: string): void {
    this.rejected.add(orderId);
  }
  async review(orderId: string): Promise<void> {
    await Promise.resolve();
    if (this.rejected.has(orderId)) throw new ServiceError('FRAUD_SUSPECTED', `the fraud team rejected ${orderId}`);
  }
}

export class Mailer extends Fake {
  constructor(ledger: Ledger) {
    super(ledger, 'mail');
  }
  confirm = (orderId: string): Promise<string> => this.effect(orderId, 'mailed the order confirmation');
  retract = (ref: string | undefined): Promise<void> => this.undo(ref, 'followed up with a cancellation');
}
