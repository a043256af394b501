import { instanceToPlain, plainToInstance } from 'class-transformer';
import { validate, type ValidationError } from 'class-validator';
import { serializeThrown } from '../errors/serialized-error';
import { BadStateError, StateNotSerializableError, StateValidationError, type InvalidProperty } from '../errors/state-errors';
import type { WorkflowDefinition } from '../workflow/workflow-definition';
import { copyJson, parseJsonSafe, sanitizeJson } from '../core/safe-json';

function flatten(errors: ValidationError[], prefix = ''): InvalidProperty[] {
  const out: InvalidProperty[] = [];
  for (const e of errors) {
    const path = prefix ? `${prefix}.${e.property}` : e.property;
    if (e.constraints !== undefined) out.push({ property: path, value: e.value as unknown, constraints: e.constraints });
    if (e.children !== undefined && e.children.length > 0) out.push(...flatten(e.children, path));
  }
  return out;
}

/** Keys that class-transformer cannot carry through a state class: it crashes on them, or drops them silently. */
const RESERVED_KEYS: ReadonlySet<string> = new Set(Object.getOwnPropertyNames(Object.prototype));
const MAYBE_RESERVED = new RegExp(`"(${[...RESERVED_KEYS].join('|')})":`);

/** The dot path of the first key in `value` that a state class cannot hold, if any (iterative: any depth, cycles skipped). */
function reservedKeyPath(value: unknown): string | undefined {
  const seen = new Set<object>();
  // Each visited node with the key it hangs from and its parent's place here, so a path is built only when found.
  const nodes: { readonly node: unknown; readonly key: string; readonly parent: number }[] = [{ node: value, key: '', parent: -1 }];
  const pathOf = (at: number, last: string): string => {
    const keys = [last];
    for (let i = at; i > 0; i = (nodes[i] as (typeof nodes)[number]).parent) keys.unshift((nodes[i] as (typeof nodes)[number]).key);
    return keys.join('.');
  };
  const todo = [0];
  for (let at = todo.pop(); at !== undefined; at = todo.pop()) {
    const { node } = nodes[at] as (typeof nodes)[number];
    if (typeof node !== 'object' || node === null || seen.has(node)) continue;
    seen.add(node);
    for (const key of Object.keys(node)) {
      if (RESERVED_KEYS.has(key)) return pathOf(at, key);
      todo.push(nodes.push({ node: (node as Record<string, unknown>)[key], key, parent: at }) - 1);
    }
  }
  return undefined;
}

/** What a state is, for a message: `an array`, `a Date`, `null`, `a number`… */
function kindOf(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'object') return `a ${Object.prototype.toString.call(value).slice(8, -1)}`;
  return `a ${typeof value}`;
}

/**
 * Moves a workflow's state between its stored form (plain JSON) and what steps see (an instance of the
 * state class, rehydrated with class-transformer), and validates it with class-validator.
 *
 * A workflow's state is checked in this order, each with its own code: its shape (`BAD_STATE`: an object — not an
 * array, a Date, a Map… — whose keys a state class can hold), then whether it can be stored as JSON
 * (`STATE_NOT_SERIALIZABLE`: cycles, BigInts, depth), then class-validator (`STATE_INVALID`). A forEach item's
 * state is any JSON value and has no class.
 */
export class StateCodec {
  /** @param item True for the codec of forEach item steps: any JSON value, no state class. */
  constructor(
    private readonly def: WorkflowDefinition,
    private readonly item = false,
  ) {}

  private get stateClass(): WorkflowDefinition['stateClass'] {
    return this.item ? undefined : this.def.stateClass;
  }

  /** Stored JSON → a fresh object for user code (a state class instance when the workflow has one). */
  hydrate(stored: unknown): unknown {
    const cls = this.stateClass;
    if (cls === undefined || typeof stored !== 'object' || stored === null) return copyJson(stored);
    return plainToInstance(cls, stored, { enableImplicitConversion: false });
  }

  /**
   * Checks the shape of a workflow state.
   * @throws BadStateError `BAD_STATE`
   */
  checkShape(state: unknown, where: string): void {
    if (this.item) return;
    if (typeof state !== 'object' || state === null || Object.prototype.toString.call(state) !== '[object Object]') {
      throw new BadStateError(where, `it must be an object of named fields, got ${kindOf(state)}`);
    }
  }

  /**
   * What user code returned → stored JSON.
   * @throws BadStateError `BAD_STATE`; StateNotSerializableError `STATE_NOT_SERIALIZABLE`
   */
  dehydrate(state: unknown, where = 'returned by a step'): unknown {
    this.checkShape(state, where);
    const cls = this.stateClass;
    if (cls === undefined) {
      try {
        return sanitizeJson(state);
      } catch (cause) {
        throw new StateNotSerializableError(where, serializeThrown(cause).message);
      }
    }
    let text: string;
    try {
      const plain: unknown = typeof state === 'object' && state !== null ? instanceToPlain(state) : state;
      const json = JSON.stringify(plain);
      if (json === undefined) throw new TypeError(`${typeof plain} is not representable as JSON`);
      text = json;
    } catch (cause) {
      const reserved = reservedKeyPath(state);
      if (reserved !== undefined) throw new BadStateError(where, reservedKeyMessage(reserved, cls.name));
      throw new StateNotSerializableError(where, serializeThrown(cause).message);
    }
    if (MAYBE_RESERVED.test(text)) {
      const parsed = parseJsonSafe(text);
      const reserved = reservedKeyPath(parsed);
      if (reserved !== undefined) throw new BadStateError(where, reservedKeyMessage(reserved, cls.name));
      return parsed;
    }
    return parseJsonSafe(text);
  }

  /** Validates the state (a stored or user form); resolves to the invalid properties, empty when valid. */
  async check(state: unknown): Promise<InvalidProperty[]> {
    const cls = this.stateClass;
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

function reservedKeyMessage(path: string, className: string | undefined): string {
  return `its key ${JSON.stringify(path)} cannot be kept in the state class ${className ?? ''} (class-transformer cannot carry keys named like Object's own members); rename the field`;
}
