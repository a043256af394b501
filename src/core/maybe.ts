/**
 * A value now, or a promise of it: what a path gives that stays synchronous unless user code (a handler, a hook)
 * returns a promise. Keeping such paths synchronous saves a promise and an event-loop microtask per call.
 */
export type Maybe<T> = T | Promise<T>;

/** Applies `next` to `value` at once when it is not a promise, else once it resolves (a rejection passes through). */
export function andThen<T, U>(value: Maybe<T>, next: (value: T) => Maybe<U>): Maybe<U> {
  return value instanceof Promise ? value.then(next) : next(value);
}
