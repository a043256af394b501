import { DefinitionError } from '../errors/definition-error';
import type { SerializedError } from '../errors/serialized-error';
import { toMillis, type Duration } from '../time/duration';
import { quote } from '../errors/serialized-error';
import { checkKnownKeys, optionKeys } from '../input/known-keys';

/** How a failing handler is tried again. */
export interface RetryPolicy {
  /** Attempts in all, the first included; 1 means no retry. @default 1 */
  readonly maxAttempts?: number;
  /** `fixed`: always `initialDelay`; `exponential`: `initialDelay × coefficient^(attempt−1)`. @default 'exponential' */
  readonly backoff?: 'fixed' | 'exponential';
  /** The delay before the second attempt. @default '1s' */
  readonly initialDelay?: Duration;
  /** No delay is longer than this. @default '5m', or `initialDelay` when that is longer */
  readonly maxDelay?: Duration;
  /** Growth factor of exponential backoff. @default 2 */
  readonly coefficient?: number;
  /**
   * Fraction of each delay that is randomised downwards (0 = exact delays, 0.2 = between 80% and 100%).
   * The randomness is a hash of the instance, step and attempt, so it is the same when replayed. @default 0
   */
  readonly jitter?: number;
  /** Error codes that are never retried, or a predicate that says whether an error may be retried. @default none */
  readonly nonRetryable?: readonly string[] | ((error: SerializedError) => boolean);
}

/** A retry policy with its defaults applied and durations in milliseconds. */
export interface ResolvedRetryPolicy {
  readonly maxAttempts: number;
  readonly backoff: 'fixed' | 'exponential';
  readonly initialDelay: number;
  readonly maxDelay: number;
  readonly coefficient: number;
  readonly jitter: number;
  readonly nonRetryable: ReadonlySet<string> | ((error: SerializedError) => boolean);
}

/** The names of {@link RetryPolicy}'s options. */
const RETRY_POLICY_KEYS = optionKeys<RetryPolicy>()(['maxAttempts', 'backoff', 'initialDelay', 'maxDelay', 'coefficient', 'jitter', 'nonRetryable']);

/** The default `maxDelay`: 5 minutes. */
const DEFAULT_MAX_DELAY_MS = 300_000;

/** Codes that mean "stop", never retried whatever the policy says. */
const NEVER_RETRIED: ReadonlySet<string> = new Set(['ROLLBACK_REQUESTED', 'ABORTED', 'OBSERVER_VETO', 'MALFORMED_RESULT', 'STATE_NOT_SERIALIZABLE']);

/** Applies defaults and checks a retry policy. @throws DefinitionError `BAD_OPTION` */
export function resolveRetryPolicy(policy: RetryPolicy, where: string): ResolvedRetryPolicy {
  const bad = (field: string, value: unknown, expected: string): never => {
    throw new DefinitionError('BAD_OPTION', `${where}: ${field} must be ${expected}, got ${quote(value)}`, { where, field });
  };
  if (typeof policy !== 'object' || policy === null || Array.isArray(policy)) bad('retry', policy, 'an object');
  checkKnownKeys(policy, RETRY_POLICY_KEYS, where);
  const maxAttempts = policy.maxAttempts ?? 1;
  if (!Number.isInteger(maxAttempts) || maxAttempts < 1) bad('maxAttempts', maxAttempts, 'an integer ≥ 1');
  const backoff = policy.backoff ?? 'exponential';
  if (backoff !== 'fixed' && backoff !== 'exponential') bad('backoff', backoff, "'fixed' or 'exponential'");
  const coefficient = policy.coefficient ?? 2;
  if (typeof coefficient !== 'number' || !Number.isFinite(coefficient) || coefficient < 1) bad('coefficient', coefficient, 'a number ≥ 1');
  const jitter = policy.jitter ?? 0;
  if (typeof jitter !== 'number' || !(jitter >= 0 && jitter <= 1)) bad('jitter', jitter, 'a number from 0 to 1');
  const nonRetryable = policy.nonRetryable ?? [];
  if (typeof nonRetryable !== 'function' && !(Array.isArray(nonRetryable) && nonRetryable.every((c) => typeof c === 'string' && c.length > 0))) {
    bad('nonRetryable', nonRetryable, 'a list of error codes (strings) or a function');
  }
  const initialDelay = toMillis(policy.initialDelay ?? '1s', `${where}: initialDelay`);
  // The default ceiling never contradicts the user's own initial delay: it is at least that delay.
  const maxDelay = policy.maxDelay === undefined ? Math.max(DEFAULT_MAX_DELAY_MS, initialDelay) : toMillis(policy.maxDelay, `${where}: maxDelay`);
  if (maxDelay < initialDelay) bad('maxDelay', policy.maxDelay, `at least initialDelay (${initialDelay} ms)`);
  return {
    maxAttempts,
    backoff,
    initialDelay,
    maxDelay,
    coefficient,
    jitter,
    nonRetryable: typeof nonRetryable === 'function' ? nonRetryable : new Set(nonRetryable as readonly string[]),
  };
}

/** True when `policy` allows another attempt after `error`. */
export function isRetryable(policy: ResolvedRetryPolicy, error: SerializedError): boolean {
  if (NEVER_RETRIED.has(error.code)) return false;
  const nr = policy.nonRetryable;
  return typeof nr === 'function' ? !nr(error) : !nr.has(error.code);
}
