/** One side effect a fake service had on the outside world, and how (if at all) it was undone. */
export interface LedgerEntry {
  /** Whose effect it is: an order id, a sign-up id. */
  readonly subject: string;
  /** The service that had it, e.g. `inventory`. */
  readonly service: string;
  /** The service's id for it: a reservation, a payment, a shipment. */
  readonly ref: string;
  /** What was done, e.g. `reserved 2 × SKU-MUG`. */
  readonly done: string;
  /** How it was undone (`released`, `refunded`, …), or null while it stands. */
  undone: string | null;
}

/**
 * Every effect the samples' fake services had, in order, so a sample can show that a rolled-back saga left
 * nothing standing.
 */
export class Ledger {
  private readonly entries: LedgerEntry[] = [];

  /** Notes an effect. */
  record(subject: string, service: string, ref: string, done: string): void {
    this.entries.push({ subject, service, ref, done, undone: null });
  }

  /** Notes that the effect `ref` was undone (the first undo counts; undoing twice changes nothing). */
  undo(ref: string, how: string): void {
    const entry = this.entries.find((e) => e.ref === ref);
    if (entry !== undefined && entry.undone === null) entry.undone = how;
  }

  /** The effects of one subject, in the order they happened. */
  of(subject: string): readonly Readonly<LedgerEntry>[] {
    return this.entries.filter((e) => e.subject === subject);
  }

  /** The effects of one subject that still stand. */
  standing(subject: string): readonly Readonly<LedgerEntry>[] {
    return this.of(subject).filter((e) => e.undone === null);
  }

  /** Aligned lines for a timeline: `  service  ref  what was done  → how it was undone` (or `stands`). */
  lines(subject: string): string[] {
    const entries = this.of(subject);
    const width = (pick: (e: LedgerEntry) => string): number => Math.max(0, ...entries.map((e) => pick(e).length));
    const [service, ref, done] = [width((e) => e.service), width((e) => e.ref), width((e) => e.done)];
    return entries.map(
      (e) => `  ${e.service.padEnd(service)}  ${e.ref.padEnd(ref)}  ${e.done.padEnd(done)}  ${e.undone === null ? 'stands' : `→ ${e.undone}`}`,
    );
  }
}

/** A failure a fake service reports; its `code` is what the saga's error reason carries. */
export class ServiceError extends Error {
  override readonly name = 'ServiceError';
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}
