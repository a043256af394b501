import { MalformedResultError } from '../errors/step-errors';
import { quote } from '../errors/serialized-error';
import { unknownKey, unknownKeyText } from '../input/known-keys';
import { parseDuration } from '../time/duration';
import type { MatchValue } from '../core/flow-fields';
import type { Duration } from '../time/duration';

/** The step is done; go on in the current direction. */
export interface OkResult<S> {
  readonly kind: 'ok';
  readonly state: S;
}

/** The step failed. Going up, the workflow turns down; going down, the compensation failed. */
export interface ErrorResult<S> {
  readonly kind: 'error';
  readonly reason: unknown;
  readonly state?: S;
}

/** What a continued step waits for. Plain data, so it survives a restart. */
export interface WaitSpec {
  /** The topic, or topics, of the awaited event. */
  readonly topic: string | readonly string[];
  /** Payload fields the event must carry with these exact values, e.g. `{ orderId: state.orderId }`. */
  readonly match?: Readonly<Record<string, MatchValue>>;
  /** How long to wait before the step fails with `TIMEOUT`; none by default. */
  readonly timeout?: Duration;
}

/** The step started and now waits for an event; the instance parks until it arrives or the wait times out. */
export interface ContinueResult<S> {
  readonly kind: 'continue';
  readonly state: S;
  readonly wait: WaitSpec;
}

/** Jump forward to the named step (or group), skipping the ones between; skipped steps are never compensated. */
export interface GotoResult<S> {
  readonly kind: 'goto';
  readonly target: string;
  readonly state: S;
}

/** The closed set of step results. */
export type StepResult<S> = OkResult<S> | ErrorResult<S> | ContinueResult<S> | GotoResult<S>;

/** The keys of `S` whose properties are optional. */
type OptionalKeys<S> = { [K in keyof S]-?: object extends Pick<S, K> ? K : never }[keyof S];

/**
 * A state as a handler may hand it back: `S`, except that its optional properties may also hold `undefined`.
 * States are stored as JSON, where a property set to `undefined` and a missing one are the same, so
 * `ok({ ...state, paymentId: maybeId })` type-checks under `exactOptionalPropertyTypes` too. Without that
 * compiler option this is `S` itself.
 */
export type ReturnedState<S> =
  | S
  | (S extends object ? { [K in keyof S as K extends OptionalKeys<S> ? never : K]: S[K] } & { [K in OptionalKeys<S>]?: S[K] | undefined } : never);

/** What a step handler may return. */
export type StepReturn<S> = StepResult<ReturnedState<S>> | Promise<StepResult<ReturnedState<S>>>;

/**
 * A compensation's decision to stop compensating and run the saga forward again from this step: the steps after it
 * run again, with new run and idempotency keys. At most `maxRetries` times per step and instance; past that, or after
 * an `abort`, it counts as `ok` and the compensation goes on.
 */
export interface RetryForwardResult<S> {
  readonly kind: 'retryForward';
  readonly state: S;
  readonly maxRetries: number;
  /** A wait before the step runs again. @default none */
  readonly backoff?: Duration;
}

/**
 * The failed step's compensation supplies a substitute (a circuit breaker's fallback): its effect stands, as
 * compensated by the fallback, and the saga goes on forward from the next step.
 */
export interface RecoverResult<S> {
  readonly kind: 'recover';
  readonly state: S;
}

/** The compensation is done, and no `retryForward` of an earlier step may restart the saga any more. */
export interface AbortResult<S> {
  readonly kind: 'abort';
  readonly reason: unknown;
  readonly state?: S;
}

/** What a compensation (`rollback`, `rollbackHandleInfo`) may return: a step result or a decision on what follows. */
export type RollbackResult<S> = StepResult<S> | RetryForwardResult<S> | RecoverResult<S> | AbortResult<S>;

/** What a compensation handler may return. */
export type RollbackReturn<S> = RollbackResult<ReturnedState<S>> | Promise<RollbackResult<ReturnedState<S>>>;

/**
 * Done; go on.
 * @example
 * return ok({ ...state, reserved: true });
 */
export function ok<S>(state: S): OkResult<S> {
  return { kind: 'ok', state };
}

/**
 * Failed. `reason` may be an Error, a string, or `{ code, message }`.
 * @example
 * return error({ code: 'OUT_OF_STOCK', message: 'sku 42 is sold out' }, state);
 */
export function error<S = never>(reason: unknown, state?: S): ErrorResult<S> {
  return state === undefined ? { kind: 'error', reason } : { kind: 'error', reason, state };
}

/**
 * Started; wait for an event.
 * @example
 * return continueWith(state, { topic: 'payment.captured', match: { orderId: state.orderId }, timeout: '10m' });
 */
export function continueWith<S>(state: S, wait: WaitSpec): ContinueResult<S> {
  return { kind: 'continue', state, wait };
}

/**
 * Jump forward to a named step.
 * @example
 * return goto('notify-backorder', state);
 */
export function goto<S>(target: string, state: S): GotoResult<S> {
  return { kind: 'goto', target, state };
}

/**
 * From a compensation: stop compensating and run forward again from this step, at most `maxRetries` times per
 * instance (then the compensation goes on). The step must declare it: `@Step({ name, rollbackControls: ['retryForward'] })`.
 * @example
 * async rollback(state: Booking) {
 *   await hotels.cancel(state.hold);
 *   return retryForward(state, { maxRetries: 3, backoff: '30s' }); // the payment failure was transient
 * }
 */
export function retryForward<S>(state: S, options: { readonly maxRetries: number; readonly backoff?: Duration }): RetryForwardResult<S> {
  return options.backoff === undefined ? { kind: 'retryForward', state, maxRetries: options.maxRetries } : { kind: 'retryForward', state, maxRetries: options.maxRetries, backoff: options.backoff };
}

/**
 * From the failed step's compensation: use this substitute and go on forward from the next step (a circuit
 * breaker). The step must declare it: `@Step({ name, rollbackControls: ['recover'] })`.
 * @example
 * rollback(state: Quote) {
 *   return recover({ ...state, price: this.cache.lastPrice(state.sku) }); // the pricing service is down
 * }
 */
export function recover<S>(state: S): RecoverResult<S> {
  return { kind: 'recover', state };
}

/**
 * From a compensation: it is done, and no `retryForward` of an earlier step may restart the saga any more.
 * @example
 * return abort({ code: 'FRAUD', message: 'never retry this order' }, state);
 */
export function abort<S = never>(reason: unknown, state?: S): AbortResult<S> {
  return state === undefined ? { kind: 'abort', reason } : { kind: 'abort', reason, state };
}

const WAIT_KEYS: readonly string[] = ['topic', 'match', 'timeout'];

/** True for a JSON scalar a wait may match on: a string, a finite number, a boolean or null. */
export function isMatchValue(value: unknown): boolean {
  return value === null || typeof value === 'string' || typeof value === 'boolean' || (typeof value === 'number' && Number.isFinite(value));
}

/** What is wrong with a `continueWith` wait, or undefined when it is a valid {@link WaitSpec}. */
export function waitProblem(wait: unknown): string | undefined {
  if (typeof wait !== 'object' || wait === null || Array.isArray(wait)) return 'its wait must be an object { topic, match?, timeout? }';
  const found = unknownKey(wait, WAIT_KEYS);
  if (found !== undefined) return `its wait has an ${unknownKeyText(found, 'key')}`;
  const w = wait as Record<string, unknown>;
  const topic = w.topic;
  const topicOk = typeof topic === 'string' ? topic.length > 0 : Array.isArray(topic) && topic.length > 0 && topic.every((t) => typeof t === 'string' && t.length > 0);
  if (!topicOk) return `its wait's topic must be a non-empty string or a non-empty list of them, got ${quote(topic)}`;
  const match = w.match;
  if (match !== undefined) {
    if (typeof match !== 'object' || match === null || Array.isArray(match)) return `its wait's match must be an object of field → value, got ${quote(match)}`;
    const bad = Object.entries(match).find(([, v]) => !isMatchValue(v));
    if (bad !== undefined) return `its wait's match value for ${JSON.stringify(bad[0])} must be a string, a finite number, a boolean or null, got ${quote(bad[1])}`;
  }
  if (w.timeout !== undefined && parseDuration(w.timeout) === undefined) {
    return `its wait's timeout must be a non-negative number of milliseconds or a string like '10m', got ${quote(w.timeout)}`;
  }
  return undefined;
}

/**
 * Checks that `value` is one of the step results; anything else becomes `MalformedResultError` quoting it and
 * saying what is wrong. `allowed` narrows the set (observer hooks accept only ok and error).
 */
export function checkResult<S>(value: unknown, where: string, allowed?: ReadonlySet<StepResult<S>['kind']>): StepResult<S>;
export function checkResult<S>(value: unknown, where: string, allowed: ReadonlySet<RollbackResult<S>['kind']>): RollbackResult<S>;
export function checkResult<S>(value: unknown, where: string, allowed: ReadonlySet<RollbackResult<S>['kind']> = ALL_KINDS): RollbackResult<S> {
  if (typeof value !== 'object' || value === null) throw new MalformedResultError(where, value);
  const r = value as Record<string, unknown>;
  const kind = r.kind as RollbackResult<S>['kind'];
  if (!allowed.has(kind)) {
    throw new MalformedResultError(where, value, CONTROL_KINDS.has(kind) ? `${kind} is a result of a compensation (rollback), not of ${where}` : undefined);
  }
  let problem: string | undefined;
  switch (kind) {
    case 'ok':
      if (!('state' in r)) problem = 'ok needs a state';
      break;
    case 'error':
      if (!('reason' in r)) problem = 'error needs a reason';
      break;
    case 'continue':
      problem = 'state' in r ? waitProblem(r.wait) : 'continue needs a state';
      break;
    case 'goto':
      if (!('state' in r)) problem = 'goto needs a state';
      else if (typeof r.target !== 'string' || r.target.length === 0) problem = `goto needs a target step name, got ${quote(r.target)}`;
      break;
    case 'retryForward':
      if (!('state' in r)) problem = 'retryForward needs a state';
      else if (typeof r.maxRetries !== 'number' || !Number.isSafeInteger(r.maxRetries) || r.maxRetries < 1) problem = `retryForward needs maxRetries, a whole number of at least 1, got ${quote(r.maxRetries)}`;
      else if (r.backoff !== undefined && parseDuration(r.backoff) === undefined) problem = `retryForward's backoff must be a duration, got ${quote(r.backoff)}`;
      break;
    case 'recover':
      if (!('state' in r)) problem = 'recover needs a state';
      break;
    case 'abort':
      if (!('reason' in r)) problem = 'abort needs a reason';
      break;
  }
  if (problem !== undefined) throw new MalformedResultError(where, value, problem);
  return value as RollbackResult<S>;
}

const ALL_KINDS: ReadonlySet<StepResult<unknown>['kind']> = new Set(['ok', 'error', 'continue', 'goto']);
const CONTROL_KINDS: ReadonlySet<string> = new Set(['retryForward', 'recover', 'abort']);

/** What a compensation may return: the step results and the decisions on what follows. */
export const ROLLBACK_KINDS: ReadonlySet<RollbackResult<unknown>['kind']> = new Set(['ok', 'error', 'continue', 'goto', 'retryForward', 'recover', 'abort']);
