/**
 * One redaction for every observer that copies state out (logs, the history's state changes): dot paths into the
 * state, a `*` segment matching every key of an object or every item of an array, checked once when given.
 */
import { DefinitionError } from '../errors/definition-error';
import { quote } from '../errors/serialized-error';

/** What replaces a redacted value. */
export const REDACTED = '[redacted]';

/** What stands for a state that cannot be turned into JSON. */
const UNSERIALIZABLE = '[unserializable]';

function redactPath(node: unknown, segments: readonly string[]): void {
  const [head, ...rest] = segments;
  if (head === undefined || typeof node !== 'object' || node === null) return;
  const holder = node as Record<string, unknown>;
  const keys = head === '*' ? Object.keys(holder) : Object.prototype.hasOwnProperty.call(holder, head) ? [head] : [];
  for (const key of keys) {
    if (rest.length === 0) holder[key] = REDACTED;
    else redactPath(holder[key], rest);
  }
}

/**
 * Dot paths whose values never leave the state: `['customer.email', 'cards.*.number']`. Paths that do not exist in
 * a given state are ignored.
 */
export class Redaction {
  /** No paths: copies are plain JSON copies. */
  static readonly none = new Redaction([]);

  private constructor(readonly paths: readonly string[]) {}

  /**
   * Checks the `redact` option of an observer.
   * @throws DefinitionError `BAD_OPTION` when it is not a list of dot paths.
   */
  static of(paths: unknown, where: string): Redaction {
    if (paths === undefined) return Redaction.none;
    if (!Array.isArray(paths) || paths.some((p) => typeof p !== 'string' || p.split('.').some((segment) => segment.length === 0))) {
      throw new DefinitionError('BAD_OPTION', `${where}: redact must be a list of dot paths such as 'card.number' or 'cards.*.number', got ${quote(paths)}`, {
        where,
        field: 'redact',
      });
    }
    return paths.length === 0 ? Redaction.none : new Redaction([...(paths as string[])]);
  }

  /** True when there is nothing to redact. */
  get empty(): boolean {
    return this.paths.length === 0;
  }

  /**
   * A JSON copy of `value` with the values at the paths replaced by `'[redacted]'`; `value` itself is not touched.
   * A value that cannot be turned into JSON becomes `'[unserializable]'`.
   */
  copy(value: unknown): unknown {
    let copy: unknown;
    try {
      const text = JSON.stringify(value);
      copy = text === undefined ? null : (JSON.parse(text) as unknown);
    } catch {
      return UNSERIALIZABLE;
    }
    for (const path of this.paths) redactPath(copy, path.split('.'));
    return copy;
  }
}
