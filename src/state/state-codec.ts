import { instanceToPlain, plainToInstance } from 'class-transformer';
import { validate, type ValidationError } from 'class-validator';
import { StateNotSerializableError, StateValidationError, type InvalidProperty } from '../errors/state-errors';
import type { WorkflowDefinition } from '../workflow/workflow-definition';
import { sanitizeJson } from './safe-json';

function flatten(errors: ValidationError[], prefix = ''): InvalidProperty[] {
  const out: InvalidProperty[] = [];
  for (const e of errors) {
    const path = prefix ? `${prefix}.${e.property}` : e.property;
    if (e.constraints !== undefined) out.push({ property: path, value: e.value as unknown, constraints: e.constraints });
    if (e.children !== undefined && e.children.length > 0) out.push(...flatten(e.children, path));
  }
  return out;
}

/**
 * Moves a workflow's state between its stored form (plain JSON) and what steps see (an instance of the
 * state class, rehydrated with class-transformer), and validates it with class-validator.
 */
export class StateCodec {
  constructor(private readonly def: WorkflowDefinition) {}

  /** Stored JSON → a fresh object for user code (a state class instance when the workflow has one). */
  hydrate(stored: unknown): unknown {
    const cls = this.def.stateClass;
    if (cls === undefined || typeof stored !== 'object' || stored === null) return structuredClone(stored);
    return plainToInstance(cls, stored, { enableImplicitConversion: false });
  }

  /** What user code returned → stored JSON. @throws StateNotSerializableError */
  dehydrate(state: unknown, where = 'returned by a step'): unknown {
    try {
      const plain: unknown = this.def.stateClass !== undefined && typeof state === 'object' && state !== null ? instanceToPlain(state) : state;
      return sanitizeJson(plain);
    } catch (cause) {
      throw new StateNotSerializableError(where, (cause as Error).message);
    }
  }

  /** Validates the state (a stored or user form); resolves to the invalid properties, empty when valid. */
  async check(state: unknown): Promise<InvalidProperty[]> {
    const cls = this.def.stateClass;
    if (cls === undefined) return [];
    const instance: unknown = state instanceof cls ? state : plainToInstance(cls, state);
    if (typeof instance !== 'object' || instance === null) {
      return [{ property: '(state)', value: state, constraints: { isObject: 'the state must be an object' } }];
    }
    return flatten(await validate(instance, { forbidUnknownValues: false }));
  }

  /** Validates and throws {@link StateValidationError} listing the properties. */
  async assertValid(state: unknown, where: string): Promise<void> {
    const invalid = await this.check(state);
    if (invalid.length > 0) throw new StateValidationError(this.def.name, invalid, where);
  }
}
