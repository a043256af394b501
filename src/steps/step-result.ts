import { MalformedResultError } from '../errors/step-errors';
import type { MatchValue } from '../bus/event';
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

/** What a step handler may return. */
export type StepReturn<S> = StepResult<S> | Promise<StepResult<S>>;

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

function isTopic(topic: unknown): boolean {
  if (typeof topic === 'string') return topic.length > 0;
  return Array.isArray(topic) && topic.length > 0 && topic.every((t) => typeof t === 'string' && t.length > 0);
}

function isMatch(match: unknown): boolean {
  if (match === undefined) return true;
  if (typeof match !== 'object' || match === null || Array.isArray(match)) return false;
  return Object.values(match).every(
    (v) => v === null || typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean',
  );
}

/**
 * Checks that `value` is one of the step results; anything else becomes `MalformedResultError`.
 * `allowed` narrows the set (observer hooks accept only ok and error).
 */
export function checkResult<S>(
  value: unknown,
  where: string,
  allowed: ReadonlySet<StepResult<S>['kind']> = ALL_KINDS,
): StepResult<S> {
  if (typeof value === 'object' && value !== null) {
    const r = value as Record<string, unknown>;
    const kind = r.kind as StepResult<S>['kind'];
    if (allowed.has(kind)) {
      switch (kind) {
        case 'ok':
          if ('state' in r) return value as OkResult<S>;
          break;
        case 'error':
          if ('reason' in r) return value as ErrorResult<S>;
          break;
        case 'continue': {
          const wait = r.wait as Record<string, unknown> | undefined;
          if ('state' in r && typeof wait === 'object' && wait !== null && isTopic(wait.topic) && isMatch(wait.match))
            return value as ContinueResult<S>;
          break;
        }
        case 'goto':
          if ('state' in r && typeof r.target === 'string') return value as GotoResult<S>;
          break;
      }
    }
  }
  throw new MalformedResultError(where, value);
}

const ALL_KINDS: ReadonlySet<StepResult<unknown>['kind']> = new Set(['ok', 'error', 'continue', 'goto']);
