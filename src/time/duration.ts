import ms from 'ms';
import { DefinitionError } from '../errors/definition-error';
import { quote } from '../errors/serialized-error';

/** A duration: milliseconds as a number, or a string such as `'30s'`, `'5m'`, `'1.5h'`. */
export type Duration = number | string;

/**
 * Converts a {@link Duration} to milliseconds.
 *
 * @example
 * toMillis('30s'); // 30000
 * toMillis(250);   // 250
 */
export function toMillis(duration: Duration, where = 'a duration'): number {
  const value = parseDuration(duration);
  if (value === undefined) {
    throw new DefinitionError('BAD_OPTION', `${where} must be a non-negative number of milliseconds or a string like '30s', got ${quote(duration)}`, {
      duration: quote(duration),
    });
  }
  return value;
}

/** Milliseconds of a {@link Duration}, or undefined when `duration` is not one (never throws). */
export function parseDuration(duration: unknown): number | undefined {
  let value: unknown = Number.NaN;
  if (typeof duration === 'number') value = duration;
  else if (typeof duration === 'string' && duration.trim() !== '' && duration.length <= 100) value = ms(duration as ms.StringValue);
  return typeof value === 'number' && Number.isFinite(value) && value >= 0 ? value : undefined;
}
