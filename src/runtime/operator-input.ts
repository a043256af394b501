/** Checks of what operator calls are given: notes (who and why), versions, and the options of `migrate`. */
import { InvalidArgumentError } from '../errors/runtime-errors';
import { quote } from '../errors/serialized-error';
import { checkOptions } from '../input/known-keys';
import type { MigrateOptions, OperatorNote } from './runtime-options';

/**
 * Checks a version argument: a positive whole number.
 * @throws InvalidArgumentError `INVALID_ARGUMENT`
 */
export function checkVersionArgument(value: unknown, argument: string, where: string): void {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1) throw new InvalidArgumentError(where, argument, `must be a positive whole number, got ${quote(value, 80)}`);
}

/**
 * Checks the options of `migrate`: `to`, `map` (names to names), and the operator note.
 * @throws InvalidArgumentError `INVALID_ARGUMENT`; DefinitionError `BAD_OPTION` for an unknown key
 */
export function checkMigrateOptions(options: MigrateOptions): { to: number; map: Readonly<Record<string, string>> } {
  checkOptions(options, ['to', 'map', 'by', 'reason'], 'migrate');
  if (typeof options !== 'object' || options === null) throw new InvalidArgumentError('migrate', 'the options', 'must be { to, map?, by?, reason? }');
  checkVersionArgument(options.to, 'to', 'migrate');
  const map = options.map ?? {};
  if (typeof map !== 'object' || map === null || Array.isArray(map) || Object.entries(map).some(([k, v]) => k.length === 0 || typeof v !== 'string' || v.length === 0)) {
    throw new InvalidArgumentError('migrate', 'map', `must map old names to new names (strings), got ${quote(options.map, 80)}`);
  }
  checkNote({ ...(options.by === undefined ? {} : { by: options.by }), ...(options.reason === undefined ? {} : { reason: options.reason }) }, 'migrate');
  return { to: options.to, map };
}

/**
 * Checks that `value` is a string.
 * @throws InvalidArgumentError `INVALID_ARGUMENT`
 */
export function checkText(value: unknown, argument: string, where: string): void {
  if (typeof value !== 'string') throw new InvalidArgumentError(where, argument, `must be a string, got ${quote(value, 80)}`);
}

/**
 * Checks an operator note: `{ by?, reason? }`, both strings.
 * @throws InvalidArgumentError `INVALID_ARGUMENT`; DefinitionError `BAD_OPTION` for an unknown key
 */
export function checkNote(note: OperatorNote, where: string): void {
  checkOptions(note, ['by', 'reason'], where);
  if (note.by !== undefined) checkText(note.by, 'note.by', where);
  if (note.reason !== undefined) checkText(note.reason, 'note.reason', where);
}

/** An operator note as one line of history text: `by <who>: <why>`, or '' when neither is given. */
export function noteText(note: OperatorNote): string {
  return [note.by === undefined ? undefined : `by ${note.by}`, note.reason].filter((x) => x !== undefined).join(': ');
}
