/**
 * A value now, or a promise of it: what a path gives that stays synchronous unless user code (a handler, a hook)
 * returns a promise. Keeping such paths synchronous saves a promise and an event-loop microtask per call.
 */
export type Maybe<T> = T | Promise<T>;
