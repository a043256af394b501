import type { ResolvedRetryPolicy } from './retry-policy';

/** A number in [0, 1) from a string, the same every time (FNV-1a). */
export function unitHash(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i += 1) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h / 0x1_0000_0000;
}

/**
 * The delay (ms) before the attempt after `failedAttempt` (1 = the first attempt failed). Pure: the jitter comes
 * from `random` in [0, 1), which callers derive from the instance, step and attempt.
 *
 * @example
 * backoffDelay({ backoff: 'exponential', initialDelay: 100, coefficient: 2, maxDelay: 1000, jitter: 0, … }, 3, 0); // 400
 */
export function backoffDelay(policy: ResolvedRetryPolicy, failedAttempt: number, random: number): number {
  const base =
    policy.backoff === 'fixed' ? policy.initialDelay : policy.initialDelay * Math.pow(policy.coefficient, Math.max(0, failedAttempt - 1));
  const capped = Math.min(base, policy.maxDelay);
  return Math.round(capped - capped * policy.jitter * random);
}
