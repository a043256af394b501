/**
 * Unknown keys in options objects are refused, never ignored: a misspelt `timeOut` would otherwise silently turn
 * a policy off. The message names the key and the nearest valid one.
 */
import { DefinitionError } from '../errors/definition-error';
import { SagaflowError } from '../errors/sagaflow-error';
import { quote, serializeThrown } from '../errors/serialized-error';

/** Edit distance between two short strings (case-insensitive). */
function distance(a: string, b: string): number {
  const x = a.toLowerCase();
  const y = b.toLowerCase();
  let previous = Array.from({ length: y.length + 1 }, (_, j) => j);
  for (let i = 1; i <= x.length; i += 1) {
    const current = [i];
    for (let j = 1; j <= y.length; j += 1) {
      current[j] = Math.min((previous[j] as number) + 1, (current[j - 1] as number) + 1, (previous[j - 1] as number) + (x[i - 1] === y[j - 1] ? 0 : 1));
    }
    previous = current;
  }
  return previous[y.length] as number;
}

/** The valid name closest to `name`, when one is close enough to be a likely misspelling. */
export function nearest(name: string, valid: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Number.POSITIVE_INFINITY;
  for (const candidate of valid) {
    const d = distance(name, candidate);
    if (d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  return best !== undefined && bestDistance <= Math.max(2, Math.floor(name.length / 3)) ? best : undefined;
}

/** The first key of `value` that is not in `valid`, with the nearest valid one; undefined when all are known. */
export function unknownKey(value: object, valid: readonly string[]): { key: string; suggestion: string | undefined } | undefined {
  const key = Object.keys(value).find((k) => !valid.includes(k));
  return key === undefined ? undefined : { key, suggestion: nearest(key, valid) };
}

/** `unknown option "timeOut" (did you mean "timeout"?)` */
export function unknownKeyText(found: { key: string; suggestion: string | undefined }, noun = 'option'): string {
  return `unknown ${noun} ${JSON.stringify(found.key)}${found.suggestion === undefined ? '' : ` (did you mean ${JSON.stringify(found.suggestion)}?)`}`;
}

/**
 * Throws `BAD_OPTION` naming the first key of `options` not in `valid` and the nearest valid one.
 * @throws DefinitionError `BAD_OPTION`
 */
export function checkKnownKeys(options: object, valid: readonly string[], where: string): void {
  const found = unknownKey(options, valid);
  if (found === undefined) return;
  throw new DefinitionError('BAD_OPTION', `${where}: ${unknownKeyText(found)}; the options are ${valid.join(', ')}`, {
    where,
    field: found.key,
    ...(found.suggestion === undefined ? {} : { suggestion: found.suggestion }),
  });
}

/**
 * Throws `BAD_OPTION` when `value` is neither undefined nor a boolean.
 * @throws DefinitionError `BAD_OPTION`
 */
export function checkBoolean(value: unknown, field: string, where: string): void {
  if (value !== undefined && typeof value !== 'boolean') {
    throw new DefinitionError('BAD_OPTION', `${where}: ${field} must be true or false, got ${typeof value === 'string' ? JSON.stringify(value) : typeof value}`, { where, field });
  }
}

/**
 * The option names of `T`, checked by the compiler to be complete: a key of `T` missing from the list is a type
 * error, so the list a runtime check uses cannot drift from the interface.
 * @example
 * const STOP_KEYS = optionKeys<StopOptions>()(['drainTimeout']);
 */
export function optionKeys<T>(): <const K extends readonly (keyof T & string)[]>(
  keys: K,
  ...complete: Exclude<keyof T, K[number]> extends never ? [] : [missing: Exclude<keyof T, K[number]>]
) => K {
  return <const K extends readonly (keyof T & string)[]>(keys: K, ..._complete: unknown[]) => keys;
}
/**
 * Checks that `value` is an options object (or undefined) with only known keys.
 * @throws DefinitionError `BAD_OPTION`
 */
export function checkOptions(value: unknown, valid: readonly string[], where: string): void {
  if (value === undefined) return;
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new DefinitionError('BAD_OPTION', `${where}: options must be an object, got ${quote(value)}`, { where });
  }
  checkKnownKeys(value, valid, where);
}

/**
 * Runs `read` — the checks of a public call's options — so that whatever the options hold (a revoked Proxy, a getter
 * that throws), the caller gets a typed error: sagaflow's own errors pass through, anything else is `BAD_OPTION`.
 * @throws DefinitionError `BAD_OPTION`
 */
export function readingOptions<T>(where: string, read: () => T): T {
  try {
    return read();
  } catch (error) {
    if (error instanceof SagaflowError) throw error;
    throw new DefinitionError('BAD_OPTION', `${where}: an option could not be read (${serializeThrown(error).message})`, { where });
  }
}
