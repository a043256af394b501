/**
 * In-memory fakes of the services an order checkout talks to. They behave like the real ones where it
 * matters to a saga: calls are asynchronous, repeated calls with the same idempotency key do nothing new,
 * undo calls are safe to repeat, and every effect (and its undo) is written to a {@link Ledger}, so the
 * sample can show that a rolled-back order left nothing behind.
 */
import { type Ledger, ServiceError } from '../ledger';

/** Stock levels and reservations. */
export class InventoryService {
  private readonly stock: Map<string, number>;
  private readonly reservations = new Map<string, { sku: string; quantity: number; released: boolean }>();
  private readonly byKey = new Map<string, string>();

  constructor(
    private readonly ledger: Ledger,
    stock: Readonly<Record<string, number>>,
  ) {
    this.stock = new Map(Object.entries(stock));
  }

  /** How many units of `sku` are free. */
  available(sku: string): number {
    return this.stock.get(sku) ?? 0;
  }

  /** Holds `quantity` units for an order and returns the reservation id. */
  async reserve(orderId: string, sku: string, quantity: number, idempotencyKey: string): Promise<string> {
    await Promise.resolve();
    const earlier = this.byKey.get(idempotencyKey);
    if (earlier !== undefined) return earlier;
    const free = this.available(sku);
    if (free < quantity) throw new ServiceError('OUT_OF_STOCK', `${sku}: ${quantity} wanted, ${free} free`);
    const id = `res-${this.reservations.size + 1}`;
    this.stock.set(sku, free - quantity);
    this.reservations.set(id, { sku, quantity, released: false });
    this.byKey.set(idempotencyKey, id);
    this.ledger.record(orderId, 'inventory', id, `reserved ${quantity} × ${sku}`);
    return id;
  }

  /** Gives the units back. Releasing twice is harmless. */
  async release(reservationId: string): Promise<void> {
    await Promise.resolve();
    const reservation = this.reservations.get(reservationId);
    if (reservation === undefined || reservation.released) return;
    reservation.released = true;
    this.stock.set(reservation.sku, this.available(reservation.sku) + reservation.quantity);
    this.ledger.undo(reservationId, 'released');
  }
}

type PaymentStatus = 'authorised' | 'captured' | 'refunded' | 'voided';

/**
 * A card payment provider: `authorise` is accepted at once, the capture is confirmed later by a webhook
 * (`payment.captured`) carrying the payment id.
 */
export class PaymentGateway {
  private readonly payments = new Map<string, { orderId: string; amountCents: number; status: PaymentStatus }>();
  private readonly byKey = new Set<string>();

  constructor(private readonly ledger: Ledger) {}

  /** Asks the provider to take `amountCents` for the order; the outcome arrives as a webhook. */
  async authorise(orderId: string, amountCents: number, idempotencyKey: string): Promise<void> {
    await Promise.resolve();
    if (this.byKey.has(idempotencyKey)) return;
    this.byKey.add(idempotencyKey);
    const id = `pay-${this.payments.size + 1}`;
    this.payments.set(id, { orderId, amountCents, status: 'authorised' });
    this.ledger.record(orderId, 'payments', id, `charged ${euros(amountCents)}`);
  }

  /**
   * The provider's side: captures the order's authorised payment and returns the webhook payload it would
   * send. (In production the provider calls your webhook endpoint, which publishes it on the saga bus.)
   */
  capture(orderId: string): { orderId: string; paymentId: string } {
    for (const [paymentId, payment] of this.payments) {
      if (payment.orderId === orderId && payment.status === 'authorised') {
        payment.status = 'captured';
        return { orderId, paymentId };
      }
    }
    throw new ServiceError('NO_AUTHORISATION', `no authorised payment for ${orderId}`);
  }

  /** Gives a captured payment back. Refunding twice is harmless. */
  async refund(paymentId: string): Promise<void> {
    await Promise.resolve();
    const payment = this.payments.get(paymentId);
    if (payment === undefined || payment.status === 'refunded' || payment.status === 'voided') return;
    payment.status = 'refunded';
    this.ledger.undo(paymentId, 'refunded');
  }

  /** Cancels an authorisation that was never captured (the saga rolled back while waiting for the webhook). */
  async voidAuthorisation(orderId: string): Promise<void> {
    await Promise.resolve();
    for (const [paymentId, payment] of this.payments) {
      if (payment.orderId === orderId && payment.status === 'authorised') {
        payment.status = 'voided';
        this.ledger.undo(paymentId, 'voided');
      }
    }
  }
}

/** A parcel carrier. Tell it to refuse an order with {@link Carrier.refuse}. */
export class Carrier {
  private readonly shipments = new Map<string, { orderId: string; cancelled: boolean }>();
  private readonly refusals = new Map<string, ServiceError>();
  private readonly byKey = new Map<string, string>();

  constructor(private readonly ledger: Ledger) {}

  /** From now on, booking a shipment for `orderId` fails with `code`. */
  refuse(orderId: string, code: string, message: string): void {
    this.refusals.set(orderId, new ServiceError(code, message));
  }

  /** Books a shipment and returns its id. */
  async book(orderId: string, sku: string, quantity: number, idempotencyKey: string): Promise<string> {
    await Promise.resolve();
    const refusal = this.refusals.get(orderId);
    if (refusal !== undefined) throw refusal;
    const earlier = this.byKey.get(idempotencyKey);
    if (earlier !== undefined) return earlier;
    const id = `shp-${this.shipments.size + 1}`;
    this.shipments.set(id, { orderId, cancelled: false });
    this.byKey.set(idempotencyKey, id);
    this.ledger.record(orderId, 'carrier', id, `booked a shipment of ${quantity} × ${sku}`);
    return id;
  }

  /**
   * Cancels every shipment booked for the order. It goes by order, not by shipment id, so it also cancels a
   * booking whose confirmation was lost; with nothing booked it does nothing.
   */
  async cancelFor(orderId: string): Promise<number> {
    await Promise.resolve();
    let cancelled = 0;
    for (const [id, shipment] of this.shipments) {
      if (shipment.orderId === orderId && !shipment.cancelled) {
        shipment.cancelled = true;
        this.ledger.undo(id, 'cancelled');
        cancelled += 1;
      }
    }
    return cancelled;
  }
}

/** `2599` → `€25.99`. */
export function euros(cents: number): string {
  return `€${(cents / 100).toFixed(2)}`;
}
