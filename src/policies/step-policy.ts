import type { Direction } from '../core/flow-fields';
import { toMillis, type Duration } from '../time/duration';
import { optionKeys } from '../input/known-keys';
import { resolveRetryPolicy, type ResolvedRetryPolicy, type RetryPolicy } from './retry-policy';

/** Retry and timeout settings of a step; on `@Step({...})` per step, or on the runtime as defaults. */
export interface StepPolicyOptions {
  /** Retries of `run` and `runHandleInfo`. @default no retry */
  readonly retry?: RetryPolicy;
  /** Retries of `rollback` and `rollbackHandleInfo`. @default no retry */
  readonly rollbackRetry?: RetryPolicy;
  /** A `run` (or `runHandleInfo`) call that outlives this is aborted and fails with `TIMEOUT`. @default none */
  readonly timeout?: Duration;
  /** The same for `rollback` (and `rollbackHandleInfo`). @default none */
  readonly rollbackTimeout?: Duration;
  /** How long a `continueWith` wait lasts when it names no timeout itself. @default none (waits forever) */
  readonly waitTimeout?: Duration;
}

/** What applies to one call of a step in one direction. */
export interface StepPolicy {
  readonly retry: ResolvedRetryPolicy | null;
  readonly timeoutMs: number | null;
  readonly waitTimeoutMs: number | null;
}

/** The policy of every step: its own settings, else the runtime's defaults. */
export type PolicyLookup = (step: string, direction: Direction) => StepPolicy;

/** A step without any settings. */
export const NO_POLICY: StepPolicy = Object.freeze({ retry: null, timeoutMs: null, waitTimeoutMs: null });

/** The names of {@link StepPolicyOptions}. */
export const STEP_POLICY_KEYS = optionKeys<StepPolicyOptions>()(['retry', 'rollbackRetry', 'timeout', 'rollbackTimeout', 'waitTimeout']);

/** Resolves both directions of a step's policy, its own settings over the defaults. */
export function resolveStepPolicy(own: StepPolicyOptions, defaults: StepPolicyOptions, where: string): Record<Direction, StepPolicy> {
  const pick = <K extends keyof StepPolicyOptions>(key: K): StepPolicyOptions[K] => own[key] ?? defaults[key];
  const retry = pick('retry');
  const rollbackRetry = pick('rollbackRetry');
  const timeout = pick('timeout');
  const rollbackTimeout = pick('rollbackTimeout');
  const waitTimeout = pick('waitTimeout');
  const waitTimeoutMs = waitTimeout === undefined ? null : toMillis(waitTimeout, `${where}: waitTimeout`);
  return {
    up: {
      retry: retry === undefined ? null : resolveRetryPolicy(retry, `${where}: retry`),
      timeoutMs: timeout === undefined ? null : toMillis(timeout, `${where}: timeout`),
      waitTimeoutMs,
    },
    down: {
      retry: rollbackRetry === undefined ? null : resolveRetryPolicy(rollbackRetry, `${where}: rollbackRetry`),
      timeoutMs: rollbackTimeout === undefined ? null : toMillis(rollbackTimeout, `${where}: rollbackTimeout`),
      waitTimeoutMs,
    },
  };
}
