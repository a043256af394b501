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
 * The next call slot at or after `now` such that no window of `perMs` holds more than `limit` slots, given the last
 * slots handed out (ascending); and the last `limit` slots once it is taken. Pure: the in-process limiter and the
 * stores that share a limiter between workers both take slots with it.
 */
export function nextSlot(slots: readonly number[], limit: number, perMs: number, now: number): { readonly at: number; readonly slots: number[] } {
  const oldest = slots.length >= limit ? (slots[slots.length - limit] as number) : Number.NEGATIVE_INFINITY;
  const at = Math.max(now, oldest + perMs);
  const next = [...slots, at];
  return { at, slots: next.length > limit ? next.slice(next.length - limit) : next };
}

/**
 * Takes a slot of the limiter `name` from a store that shares it between workers (see `InstanceStore.reserveSlot`),
 * resolving to its time.
 */
export type SharedSlots = (name: string, limit: number, perMs: number, now: number) => Promise<number>;

/** Past this many open bookings, stale ones are looked for at each reservation. */
const PRUNE_ABOVE = 256;

/** What a step's call asks of its limiter: a slot now, or the time at which to ask again. */
export interface CallLimiter {
  readonly name: string;
  readonly spec: ResolvedRateLimit;
  /**
   * Asks for a slot at `now` for `key` (one caller). Resolves to `now` or earlier when the call may go at once
   * (the slot is taken), or to the booked time at which to ask again.
   */
  reserve(key: string, now: number): number | Promise<number>;
}

/** The bookings of waiting callers: a caller that asks again gets its booked slot, granted once its time came. */
abstract class Bookings {
  private readonly bookings = new Map<string, number>();

  constructor(
    readonly name: string,
    readonly spec: ResolvedRateLimit,
  ) {}

  /** The booking of `key`, taken when its time has come; undefined when it has none. */
  protected booked(key: string, now: number): number | undefined {
    if (this.bookings.size > PRUNE_ABOVE) this.prune(now);
    const at = this.bookings.get(key);
    if (at !== undefined && at <= now) this.bookings.delete(key);
    return at;
  }

  /** Remembers a slot later than `now` as `key`'s booking; answers its time. */
  protected book(key: string, at: number, now: number): number {
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

/**
 * Hands out call slots so that no window of `perMs` holds more than `limit` of them, in this process. A caller that
 * cannot go now books the earliest free slot and is told its time; asking again with the same key returns the
 * booking, and grants it once its time has come. Bookings are made in time order, so waiting callers go first come,
 * first served.
 */
export class RateLimiter extends Bookings implements CallLimiter {
  /** The times of the last `limit` slots handed out or booked, ascending. */
  private slots: number[] = [];

  reserve(key: string, now: number): number {
    const booked = this.booked(key, now);
    if (booked !== undefined) return booked;
    const next = nextSlot(this.slots, this.spec.limit, this.spec.perMs, now);
    this.slots = next.slots;
    return this.book(key, next.at, now);
  }
}

/**
 * A limiter whose slots are kept in a store several workers share (PostgreSQL), so that its limit holds across all
 * of them. A booking is remembered by the worker that made it: a worker that takes an instance over books anew (a
 * slot may go unused, never one too many).
 */
export class SharedRateLimiter extends Bookings implements CallLimiter {
  constructor(
    name: string,
    spec: ResolvedRateLimit,
    private readonly take: SharedSlots,
  ) {
    super(name, spec);
  }

  reserve(key: string, now: number): number | Promise<number> {
    const booked = this.booked(key, now);
    if (booked !== undefined) return booked;
    return this.take(this.name, this.spec.limit, this.spec.perMs, now).then((at) => this.book(key, at, now));
  }
}
