/**
 * The checks of a purge, the same on every store: only finished instances may go, in bounded batches.
 */
import { InvalidArgumentError } from '../errors/runtime-errors';
import { OperatingError } from '../errors/operating-errors';
import { quote } from '../errors/serialized-error';
import { checkOptions } from '../input/known-keys';
import { InstanceStatus, isFinalStatus } from '../core/flow-fields';
import type { PurgeOptions } from './instance-store';

const PURGE_KEYS: readonly string[] = ['before', 'statuses', 'limit', 'dryRun'];

/** The statuses a purge may delete: the finished ones. */
export const PURGEABLE_STATUSES: readonly InstanceStatus[] = Object.values(InstanceStatus).filter((s) => isFinalStatus(s));

/**
 * Checks the options of a purge and returns them.
 * @throws OperatingError `NOT_PURGEABLE` for an unfinished status; InvalidArgumentError `INVALID_ARGUMENT` otherwise
 */
export function checkPurge(options: PurgeOptions, where = 'purge'): PurgeOptions {
  if (typeof options !== 'object' || options === null) throw new InvalidArgumentError(where, 'the options', `must be { before, statuses, limit, dryRun? }, got ${quote(options, 80)}`);
  checkOptions(options, PURGE_KEYS, where);
  if (typeof options.before !== 'number' || !Number.isFinite(options.before)) throw new InvalidArgumentError(where, 'before', `must be a time in ms since the epoch, got ${quote(options.before, 80)}`);
  if (!Number.isSafeInteger(options.limit) || options.limit < 1) throw new InvalidArgumentError(where, 'limit', `must be a whole number of at least 1, got ${quote(options.limit, 80)}`);
  if (!Array.isArray(options.statuses) || options.statuses.length === 0) throw new InvalidArgumentError(where, 'statuses', `must be a non-empty list of statuses, got ${quote(options.statuses, 80)}`);
  for (const status of options.statuses as unknown[]) {
    if (typeof status !== 'string' || !PURGEABLE_STATUSES.includes(status as InstanceStatus)) {
      throw new OperatingError(
        'NOT_PURGEABLE',
        `${where}: ${quote(status, 80)} instances are never purged; only finished ones are (${PURGEABLE_STATUSES.join(', ')}): an unfinished instance still has work to do`,
        { where, status: quote(status, 80) },
      );
    }
  }
  return options;
}
