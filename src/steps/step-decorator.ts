import { DefinitionError } from '../errors/definition-error';
import { resolveStepPolicy, type StepPolicyOptions } from '../policies/step-policy';
import { isStepClass, type StepClass } from './base-step';

/** Options of the {@link Step} decorator: a stable name, and optionally retries and timeouts. */
export interface StepOptions extends StepPolicyOptions {
  /**
   * The step's stable name. It is persisted in every instance's compensation stack, so keep it
   * when you rename the class.
   */
  readonly name: string;
}

/** What the decorator registers for a class. */
export interface StepMetadata {
  readonly name: string;
  readonly options: StepOptions;
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
    const className = (target as { name?: string }).name ?? 'anonymous class';
    if (!isStepClass(target)) {
      throw new DefinitionError('NOT_A_STEP', `@Step was put on ${className}, which does not extend BaseStep`, {
        className,
      });
    }
    if (typeof options !== 'object' || options === null || typeof options.name !== 'string' || !options.name.trim()) {
      throw new DefinitionError('BAD_OPTION', `@Step on ${className} needs a non-empty string name`, { className });
    }
    resolveStepPolicy(options, {}, `@Step ${JSON.stringify(options.name)} on ${className}`);
    registry.set(target, { name: options.name, options });
    return target;
  };
}

/** The metadata @Step registered for exactly this class, if any. */
export function stepMetadata(target: unknown): StepMetadata | undefined {
  return typeof target === 'function' ? registry.get(target) : undefined;
}
