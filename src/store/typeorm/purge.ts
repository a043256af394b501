/** Deleting finished instances, with everything kept for them, in one transaction per batch. */
import type { PurgeOptions } from '../instance-store';
import { Dialect, type Exec } from './dialect';

/**
 * Deletes (or, with `dryRun`, lists) up to `limit` instances of `statuses` last updated before `before`, oldest
 * first, with their history, inbox deliveries, waits, stack rows and events kept for them; resolves their ids. The instances'
 * own conditions are checked again by the delete itself, so one that moved on meanwhile (an operator retried it)
 * stays, with all its rows. Run inside one transaction.
 */
export async function purgeInstances(x: Exec, dialect: Dialect, options: PurgeOptions): Promise<string[]> {
  const i = dialect.t('instances');
  const match = `status IN (${Dialect.marks(options.statuses.length)}) AND updated_at < ?`;
  const params = [...options.statuses, options.before];
  if (options.dryRun === true) {
    const { rows } = await x(`SELECT id FROM ${i} WHERE ${match} ORDER BY updated_at, id LIMIT ?`, [...params, options.limit]);
    return rows.map((r) => String(r.id));
  }
  const { rows } = await x(`DELETE FROM ${i} WHERE id IN (SELECT id FROM ${i} WHERE ${match} ORDER BY updated_at, id LIMIT ?) AND ${match} RETURNING id`, [
    ...params,
    options.limit,
    ...params,
  ]);
  const ids = rows.map((r) => String(r.id));
  if (ids.length === 0) return [];
  const marks = Dialect.marks(ids.length);
  for (const table of ['history', 'inbox', 'waits', 'retained', 'requests', 'stack'] as const) await x(`DELETE FROM ${dialect.t(table)} WHERE instance_id IN (${marks})`, ids);
  return ids;
}
