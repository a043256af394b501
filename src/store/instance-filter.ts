/**
 * Checks the arguments of reads: instance ids and the filter of `list`, the same for every store, so a bad one is a
 * typed `INVALID_ARGUMENT` on memory, SQLite and PostgreSQL alike instead of a driver's error or a wrong count.
 */
import { InvalidArgumentError } from '../errors/runtime-errors';
import { quote } from '../errors/serialized-error';
import { unknownKey, unknownKeyText } from '../input/known-keys';
import { InstanceStatus } from '../core/flow-fields';
import type { InstanceFilter, RunnableDefinition } from './instance-store';

const STATUSES: ReadonlySet<string> = new Set(Object.values(InstanceStatus));
const FILTER_KEYS: readonly string[] = ['status', 'workflow', 'version', 'since', 'limit'];

/**
 * Checks that `id` is an instance id: a non-empty string.
 * @throws InvalidArgumentError `INVALID_ARGUMENT`
 */
export function checkInstanceId(id: unknown, where: string): asserts id is string {
  if (typeof id !== 'string' || id.length === 0) throw new InvalidArgumentError(where, 'the instance id', `must be a non-empty string, got ${quote(id, 80)}`);
}

/**
 * Checks a `list` filter and returns it with its defaults.
 * @throws InvalidArgumentError `INVALID_ARGUMENT`
 */
export function checkFilter(filter: unknown, where = 'list'): InstanceFilter & { readonly limit: number } {
  if (filter === undefined) return { limit: 1000 };
  const bad = (argument: string, problem: string): never => {
    throw new InvalidArgumentError(where, argument, problem);
  };
  if (typeof filter !== 'object' || filter === null || Array.isArray(filter)) return bad('the filter', `must be an object, got ${quote(filter, 80)}`);
  const found = unknownKey(filter, FILTER_KEYS);
  if (found !== undefined) bad('the filter', `has an ${unknownKeyText(found, 'field')}; the fields are ${FILTER_KEYS.join(', ')}`);
  const f = filter as Record<string, unknown>;
  const statuses = typeof f.status === 'string' ? [f.status] : f.status;
  if (statuses !== undefined && (!Array.isArray(statuses) || statuses.some((s) => typeof s !== 'string' || !STATUSES.has(s)))) {
    bad('status', `must be one of ${[...STATUSES].join(', ')} (or a list of them), got ${quote(f.status, 80)}`);
  }
  if (f.workflow !== undefined && (typeof f.workflow !== 'string' || f.workflow.length === 0)) bad('workflow', `must be a workflow name, got ${quote(f.workflow, 80)}`);
  if (f.version !== undefined && (typeof f.version !== 'number' || !Number.isSafeInteger(f.version) || f.version < 1)) {
    bad('version', `must be a positive whole number, got ${quote(f.version, 80)}`);
  }
  if (f.since !== undefined && (typeof f.since !== 'number' || !Number.isFinite(f.since))) bad('since', `must be a time in ms since the epoch, got ${quote(f.since, 80)}`);
  const limit = f.limit ?? 1000;
  if (typeof limit !== 'number' || !Number.isSafeInteger(limit) || limit < 1) bad('limit', `must be a whole number of at least 1, got ${quote(f.limit, 80)}`);
  return { ...(f as InstanceFilter), limit: limit as number };
}

/** True when an instance of `workflow` at `version` with `fingerprint` (null: written before versions) is one of `runnable`. */
export function isRunnable(runnable: readonly RunnableDefinition[], workflow: string, version: number, fingerprint: string | null): boolean {
  return runnable.some((d) => d.workflow === workflow && d.version === version && (fingerprint === null || d.fingerprint === fingerprint));
}
