import { DefinitionError } from '../errors/definition-error';
import { toMillis, type Duration } from '../time/duration';
import { quote } from '../errors/serialized-error';
import { checkKnownKeys } from '../input/known-keys';

/** At most `limit` calls in any window of length `per`. */
export interface RateLimitSpec {
  readonly limit: number;
  readonly per: Duration;
}

/**
 * A step's rate limit: its own (`{ limit, per }`, shared by every instance of the step in this runtime), or the
 * name of a limiter given to the runtime's `rateLimiters`, shared by every step that names it.
 */
export type RateLimit = RateLimitSpec | string;

/** A rate limit with its window in milliseconds. */
export interface ResolvedRateLimit {
  readonly limit: number;
  readonly perMs: number;
}

/**
 * Checks a `{ limit, per }` and converts its window to milliseconds.
 * @throws {@link DefinitionError} `BAD_OPTION` naming `where`.
 */
export function resolveRateLimit(spec: unknown, where: string): ResolvedRateLimit {
  const s = spec as Partial<RateLimitSpec> | null;
  if (typeof s !== 'object' || s === null || !Number.isInteger(s.limit) || (s.limit as number) < 1) {
    throw new DefinitionError('BAD_OPTION', `${where}: a rate limit is { limit: a positive integer, per: a duration }, got ${quote(spec)}`, { where });
  }
  checkKnownKeys(s, ['limit', 'per'], where);
  const perMs = toMillis(s.per as Duration, `${where}: per`);
  if (perMs <= 0) throw new DefinitionError('BAD_OPTION', `${where}: per must be longer than 0 ms`, { where });
  return { limit: s.limit as number, perMs };
}

/**
 * What hands out call slots to a rate-limited step: {@link RateLimiter} in this process, or one that books through the
 * store (PostgreSQL), shared by every worker. `reserve` resolves to `now` or earlier when the call may go at once,
 * or to the booked time at which to ask again with the same key.
 */
export interface SlotLimiter {
  /** The limiter's name (a step's own limiter is `step:<step name>`). */
  readonly name: string;
  /** The limit and its window. */
  readonly spec: ResolvedRateLimit;
  /** Asks for a slot at `now` for caller `key`: `now` or earlier to go at once, else the booked time. */
  reserve(key: string, now: number): number | Promise<number>;
}

/** Past this many open bookings, stale ones are looked for at each reservation. */
const PRUNE_ABOVE = 256;

/**
 * Hands out call slots so that no window of `perMs` holds more than `limit` of them. A caller that cannot go now
 * books the earliest free slot and is told its time; asking again with the same key returns the booking, and
 * grants it once its time has come. Bookings are made in time order, so waiting callers go first come, first served.
 */
export class RateLimiter implements SlotLimiter {
  /** The times of the last `limit` slots handed out or booked, ascending. */
  private readonly slots: number[] = [];
  private readonly bookings = new Map<string, number>();

  constructor(readonly name: string, readonly spec: ResolvedRateLimit) {}

  /**
   * Asks for a slot at `now` for `key` (one caller). Resolves to `now` or earlier when the call may go at once
   * (the slot is taken), or to the booked time at which to ask again.
   */
  reserve(key: string, now: number): number {
    if (this.bookings.size > PRUNE_ABOVE) this.prune(now);
    const booked = this.bookings.get(key);
    if (booked !== undefined && booked >= now - this.spec.perMs) {
      if (booked <= now) this.bookings.delete(key);
      return booked;
    }
    // A booking a window old is spent: its caller went away (rolled back while waiting) and, back that late, books anew.
    if (booked !== undefined) this.bookings.delete(key);
    const { limit, perMs } = this.spec;
    const oldest = this.slots.length >= limit ? (this.slots[this.slots.length - limit] as number) : Number.NEGATIVE_INFINITY;
    const at = Math.max(now, oldest + perMs);
    this.slots.push(at);
    if (this.slots.length > limit) this.slots.splice(0, this.slots.length - limit);
    if (at > now) this.bookings.set(key, at);
    return at;
  }

  /**
   * Forgets bookings whose time passed more than a window ago: their callers went away (rolled back while
   * waiting). A caller that comes back even later simply books again.
   */
  private prune(now: number): void {
    for (const [key, at] of this.bookings) if (at < now - this.spec.perMs) this.bookings.delete(key);
  }

  /** Bookings not yet taken (for tests and diagnostics). */
  get waiting(): number {
    return this.bookings.size;
  }
}
