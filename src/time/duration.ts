import ms from 'ms';
import { DefinitionError } from '../errors/definition-error';

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
  const value = typeof duration === 'number' ? duration : typeof duration === 'string' && duration.trim() !== '' ? ms(duration as ms.StringValue) : Number.NaN;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    throw new DefinitionError(
      'BAD_OPTION',
      `${where} must be a non-negative number of milliseconds or a string like '30s', got ${JSON.stringify(duration)}`,
      { duration },
    );
  }
  return value;
}
