import { DefinitionError } from '../errors/definition-error';
import { defineWorkflow, type WorkflowOptions } from './compile-workflow';
import type { WorkflowDefinition } from './workflow-definition';

const definitions = new WeakMap<object, WorkflowDefinition>();

/**
 * Declares a workflow on a class, the way WorkflowEx's `use WorkflowEx, steps:, observers:` does.
 * The definition is validated here, when the class is defined.
 *
 * @example
 * ‍@Workflow({ name: 'order-checkout', steps: [ReserveInventory, ChargePayment, Ship], state: OrderState })
 * class OrderCheckout {}
 */
export function Workflow<S = any>(options: WorkflowOptions<S>): <C extends abstract new (...args: any[]) => unknown>(target: C) => C { // eslint-disable-line @typescript-eslint/no-explicit-any
  const definition = defineWorkflow(options);
  return (target) => {
    definitions.set(target, definition);
    return target;
  };
}

/** A workflow as the runtime accepts it: a `@Workflow` class, or a definition from `defineWorkflow`. */
export type WorkflowRef<S = any> = WorkflowDefinition<S> | (abstract new (...args: any[]) => unknown); // eslint-disable-line @typescript-eslint/no-explicit-any

/** The definition behind a {@link WorkflowRef}. */
export function workflowDefinition<S>(ref: WorkflowRef<S>): WorkflowDefinition<S> {
  if (typeof ref === 'object' && ref !== null && (ref as { kind?: unknown }).kind === 'workflow') {
    return ref;
  }
  const found = typeof ref === 'function' ? definitions.get(ref) : undefined;
  if (found === undefined) {
    const label = typeof ref === 'function' ? `class ${ref.name}` : JSON.stringify(ref);
    throw new DefinitionError('NOT_A_WORKFLOW', `${label} is not a workflow; decorate it with @Workflow({...}) or use defineWorkflow`, {});
  }
  return found as WorkflowDefinition<S>;
}
