import { SagaflowError } from './sagaflow-error';
import { quote } from './serialized-error';

/** One property that failed validation. */
export interface InvalidProperty {
  readonly property: string;
  readonly value: unknown;
  readonly constraints: Readonly<Record<string, string>>;
}

/** The state failed class-validator's checks. At `start`, nothing is persisted. */
export class StateValidationError extends SagaflowError {
  readonly properties: readonly InvalidProperty[];
  constructor(workflow: string, properties: InvalidProperty[], where: string) {
    const list = properties
      .map((p) => `${p.property} (${Object.values(p.constraints).join('; ') || 'invalid'})`)
      .join(', ');
    super('STATE_INVALID', `the state of workflow ${quote(workflow)} is invalid ${where}: ${list}`, {
      workflow,
      properties: properties.map((p) => ({ property: p.property, constraints: p.constraints })),
    });
    this.properties = properties;
  }
}

/** The state does not have the shape of a workflow state: not an object of fields, or a key a state class cannot hold. */
export class BadStateError extends SagaflowError {
  constructor(where: string, problem: string) {
    super('BAD_STATE', `the state ${where} is not a workflow state: ${problem}`, { where, problem });
  }
}

/** The state cannot be stored as JSON (a BigInt, a cycle, …). */
export class StateNotSerializableError extends SagaflowError {
  constructor(where: string, cause: string) {
    super('STATE_NOT_SERIALIZABLE', `the state ${where} cannot be stored as JSON: ${cause}`, { cause });
  }
}

/** A stored state could not be turned back into the workflow's state class (a class-transformer transform threw). */
export class StateHydrationError extends SagaflowError {
  constructor(where: string, cause: string) {
    super('STATE_HYDRATION_FAILED', `the stored state could not be turned into the workflow's state class ${where}: ${cause}`, { cause });
  }
}
