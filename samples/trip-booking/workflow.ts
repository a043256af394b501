import { BaseStep, Step, abort, defineWorkflow, error, ok, recover, retryForward, type RollbackReturn, type StepContext, type StepResult } from '../../src';
import type { Ledger } from '../ledger';

/** A trip: where to, what it costs, and what was booked. */
export interface Trip {
  tripId: string;
  city: string;
  fare?: number;
  fareSource?: 'live' | 'cached';
  hotel?: string;
  paid?: boolean;
}

/** The outside world of the sample: a fare service that is down, a hotel, a card network that is sometimes busy. */
export class Travel {
  /** How many charge attempts fail with a busy network before one goes through (per trip). */
  private readonly busy = new Map<string, number>();
  constructor(
    private readonly ledger: Ledger,
    readonly cachedFares: Readonly<Record<string, number>>,
  ) {}
  failChargesOf(tripId: string, times: number): void {
    this.busy.set(tripId, times);
  }
  holdRoom(tripId: string, city: string, key: string): string {
    const ref = `room-${key}`;
    this.ledger.record(tripId, 'hotel', ref, `held a room in ${city}`);
    return ref;
  }
  releaseRoom(ref: string): void {
    this.ledger.undo(ref, 'released');
  }
  charge(tripId: string, amount: number, key: string): boolean {
    const left = this.busy.get(tripId) ?? 0;
    if (left > 0) {
      this.busy.set(tripId, left - 1);
      return false;
    }
    this.ledger.record(tripId, 'cards', `charge-${key}`, `charged ${amount}`);
    return true;
  }
}

/**
 * Looks the fare up; the live fare service is down in this sample, so the step fails — and its compensation, a
 * circuit breaker, supplies the cached fare instead: the trip goes on (`recover`). A city with no cached fare
 * cannot be priced: the compensation gives up for good (`abort`), so nothing retries the trip.
 */
@Step({ name: 'quote-fare', rollbackControls: ['recover'] })
export class QuoteFare extends BaseStep<Trip> {
  constructor(private readonly travel: Travel) {
    super();
  }
  override run(state: Trip): StepResult<Trip> {
    return error({ code: 'FARES_DOWN', message: 'the live fare service does not answer' }, state);
  }
  override rollback(state: Trip): RollbackReturn<Trip> {
    if (state.fare !== undefined) return ok(state); // compensated later, after a fare stood: nothing to undo
    const cached = this.travel.cachedFares[state.city];
    if (cached === undefined) return abort({ code: 'NO_FARE', message: `no fare for ${state.city}, live or cached` }, state);
    return recover({ ...state, fare: cached, fareSource: 'cached' });
  }
}

/**
 * Holds a room. Its compensation releases it — and when the card network was only busy, it asks for the trip to be
 * tried again from here (`retryForward`, at most twice, 5 seconds apart).
 */
@Step({ name: 'hold-room', rollbackControls: ['retryForward'] })
export class HoldRoom extends BaseStep<Trip> {
  constructor(private readonly travel: Travel) {
    super();
  }
  override run(state: Trip, ctx: StepContext): StepResult<Trip> {
    return ok({ ...state, hotel: this.travel.holdRoom(state.tripId, state.city, ctx.runKey) });
  }
  override rollback(state: Trip): RollbackReturn<Trip> {
    if (state.hotel !== undefined) this.travel.releaseRoom(state.hotel);
    // The card network was only busy (the charge left `paid: false`): try the trip again from here.
    const { hotel: _released, ...rest } = state;
    return state.paid === false ? retryForward(rest, { maxRetries: 2, backoff: '5s' }) : ok(rest);
  }
}

/** Charges the card; a busy card network fails the step (and the room is released, then tried again). */
@Step({ name: 'charge-card' })
export class ChargeCard extends BaseStep<Trip> {
  constructor(private readonly travel: Travel) {
    super();
  }
  override run(state: Trip, ctx: StepContext): StepResult<Trip> {
    const paid = this.travel.charge(state.tripId, state.fare ?? 0, ctx.runKey);
    return paid ? ok({ ...state, paid: true }) : error({ code: 'NETWORK_BUSY', message: 'the card network is busy' }, { ...state, paid: false });
  }
}

export const TripBooking = defineWorkflow<Trip>({
  name: 'trip-booking',
  steps: [QuoteFare, HoldRoom, ChargeCard],
  // What a customer sees when the trip could not be booked: not the internal codes.
  onExit: ({ error: e }) => ({ code: 'TRIP_NOT_BOOKED', message: `the trip could not be booked (${e.code})` }),
});
