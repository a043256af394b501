import type { SerializedError } from '../errors/serialized-error';

/** A branch's tagged outcome. `value` is the branch's output state. */
export type BranchOutcome<V = unknown> =
  | { readonly ok: true; readonly value: V }
  | { readonly ok: false; readonly error: SerializedError };

/** The outcomes of a group's branches, keyed by branch name or `returns` key, in declaration order. */
export type ParallelResults<V = unknown> = Readonly<Record<string, BranchOutcome<V>>>;

/** The state key under which a group without `into` stores its results. */
export const PARALLEL_RESULTS_KEY = '__results__';

/** What an `into` (of a group, a forEach or a child step) may return. */
export const INTO_KINDS: ReadonlySet<'ok' | 'error' | 'goto'> = new Set(['ok', 'error', 'goto'] as const);

/**
 * The state with `results` merged under {@link PARALLEL_RESULTS_KEY}, next to the results merged there before
 * (the default when a group, forEach or child step has no `into`). A state that is not an object is left as is.
 */
export function withResults(state: unknown, results: Readonly<Record<string, unknown>>): unknown {
  if (typeof state !== 'object' || state === null) return state;
  const base = state as Record<string, unknown>;
  const previous = base[PARALLEL_RESULTS_KEY];
  return { ...base, [PARALLEL_RESULTS_KEY]: { ...(typeof previous === 'object' && previous !== null ? previous : {}), ...results } };
}

/**
 * Every branch outcome a group merged into the state (without `into`).
 * @example
 * const results = parallelResults(state); // { email: { ok: true, value: {...} }, billing: { ok: false, error } }
 */
export function parallelResults<V = unknown>(state: unknown): ParallelResults<V> {
  if (typeof state !== 'object' || state === null) return {};
  const results = (state as Record<string, unknown>)[PARALLEL_RESULTS_KEY];
  return typeof results === 'object' && results !== null ? (results as ParallelResults<V>) : {};
}

/**
 * One branch's outcome, or undefined when no such branch ran.
 * @example
 * const billing = parallelResult(state, 'billing');
 * if (billing && !billing.ok) console.log(billing.error.code);
 */
export function parallelResult<V = unknown>(state: unknown, key: string): BranchOutcome<V> | undefined {
  return Object.prototype.hasOwnProperty.call(parallelResults(state), key)
    ? parallelResults<V>(state)[key]
    : undefined;
}

/**
 * True when the branch ran and succeeded.
 * @example
 * if (parallelOk(state, 'email')) state.welcomed = true;
 */
export function parallelOk(state: unknown, key: string): boolean {
  return parallelResult(state, key)?.ok === true;
}
