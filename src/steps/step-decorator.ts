import { DefinitionError } from '../errors/definition-error';
import { resolveRateLimit, type RateLimit } from '../policies/rate-limiter';
import { resolveStepPolicy, STEP_POLICY_KEYS, type StepPolicyOptions } from '../policies/step-policy';
import { checkKnownKeys, optionKeys, readingOptions } from '../input/known-keys';
import { quote } from '../errors/serialized-error';
import type { JumpOptions } from './jumps';
import { isStepClass, type StepClass } from './base-step';

/** Options of the {@link Step} decorator: a stable name, and optionally retries, timeouts, goto targets and a rate limit. */
export interface StepOptions extends StepPolicyOptions, JumpOptions {
  /**
   * The step's stable name. It is persisted in every instance's compensation stack, so keep it
   * when you rename the class.
   */
  readonly name: string;
  /**
   * Throttles `run`: `{ limit, per }` (this step's own limiter, shared by all its instances in a runtime), or the
   * name of a limiter given to the runtime's `rateLimiters` (shared with every step that names it). A call with
   * no slot free is parked until its booked time, which is persisted. @default none
   */
  readonly rateLimit?: RateLimit;
  /**
   * The decisions this step's compensation may return besides ok/error/continue: `retryForward` (run the saga
   * forward again from this step) and `recover` (a substitute for this step's failure: go on forward). Returning one
   * it does not declare fails the compensation with `UNDECLARED_CONTROL`. (`abort` needs no declaring.) @default []
   */
  readonly rollbackControls?: readonly RollbackControl[];
}

/** A decision a compensation may take, declared on its step. */
export type RollbackControl = 'retryForward' | 'recover';

/** The names of {@link StepOptions}. */
const STEP_OPTION_KEYS = optionKeys<StepOptions>()(['name', 'rateLimit', 'goto', 'allowLoop', 'rollbackControls', ...STEP_POLICY_KEYS] as const);
/** A child step's options: a rate limit makes no sense for it. */
const CHILD_STEP_OPTION_KEYS = STEP_OPTION_KEYS.filter((k) => k !== 'rateLimit');

/** What the decorator registers for a class. */
export interface StepMetadata {
  readonly name: string;
  readonly options: StepOptions;
}

/** Checks the shape of `goto` / `allowLoop` (their targets are checked when a workflow is defined). */
export function checkJumpOptions(options: JumpOptions, where: string): void {
  const { goto: targets, allowLoop } = options;
  if (targets !== undefined && (!Array.isArray(targets) || targets.some((t) => typeof t !== 'string' || !t.trim()))) {
    throw new DefinitionError('BAD_OPTION', `${where}: goto must be an array of step or group names, got ${quote(targets)}`, { where, field: 'goto' });
  }
  if (allowLoop !== undefined) {
    const max = (allowLoop as { max?: unknown } | null)?.max;
    if (typeof max !== 'number' || !Number.isInteger(max) || max < 1) {
      throw new DefinitionError('BAD_OPTION', `${where}: allowLoop must be { max: a positive integer }, got ${quote(allowLoop)}`, { where, field: 'allowLoop' });
    }
  }
}

const registry = new WeakMap<object, StepMetadata>();

/**
 * Registers a class extending `BaseStep` as a step under a stable name.
 *
 * @example
 * ‍@Step({ name: 'charge-payment' })
 * class ChargePayment extends BaseStep<OrderState> {}
 */
export function Step(options: StepOptions): <C extends StepClass>(target: C) => C {
  return <C extends StepClass>(target: C): C => {
    registerStep(target, options);
    return target;
  };
}

/**
 * Checks a step's options and registers the class under its name; `child` marks a generated child-workflow step
 * (which takes no rate limit).
 * @internal
 */
export function registerStep(target: StepClass, options: StepOptions, child = false): void {
  readingOptions('@Step', () => checkStep(target, options, child));
}

function checkStep(target: StepClass, options: StepOptions, child: boolean): void {
  const className = (target as { name?: string }).name ?? 'anonymous class';
  if (!isStepClass(target)) {
    throw new DefinitionError('NOT_A_STEP', `@Step was put on ${className}, which does not extend BaseStep`, {
      className,
    });
  }
  if (typeof options !== 'object' || options === null || typeof options.name !== 'string' || !options.name.trim()) {
    throw new DefinitionError('BAD_OPTION', `@Step on ${className} needs a non-empty string name`, { className });
  }
  const where = `@Step ${JSON.stringify(options.name)} on ${className}`;
  checkKnownKeys(options, child ? CHILD_STEP_OPTION_KEYS : STEP_OPTION_KEYS, where);
  resolveStepPolicy(options, {}, where);
  checkJumpOptions(options, where);
  const controls = options.rollbackControls;
  if (controls !== undefined && (!Array.isArray(controls) || controls.some((c) => c !== 'retryForward' && c !== 'recover'))) {
    throw new DefinitionError('BAD_OPTION', `${where}: rollbackControls must list 'retryForward' and/or 'recover', got ${quote(controls)}`, { where, field: 'rollbackControls' });
  }
  if (options.rateLimit !== undefined && typeof options.rateLimit !== 'string') resolveRateLimit(options.rateLimit, `${where}: rateLimit`);
  if (typeof options.rateLimit === 'string' && !options.rateLimit.trim()) {
    throw new DefinitionError('BAD_OPTION', `${where}: rateLimit must name a limiter or be { limit, per }`, { where, field: 'rateLimit' });
  }
  registry.set(target, { name: options.name, options });
}

/** The metadata @Step registered for exactly this class, if any. */
export function stepMetadata(target: unknown): StepMetadata | undefined {
  return typeof target === 'function' ? registry.get(target) : undefined;
}
