/**
 * How the workers sharing a TypeormStore divide the instances: leases and claims, heartbeats (who runs which
 * definitions, and what no live worker runs), and the ticks of cron schedules they agree on.
 */
import type { RunnableDefinition } from '../instance-store';
import { claimablePredicate, runnablePredicate } from './dialect';
import { num } from './rows';
import { StorePart } from './store-session';
import { UNFINISHED_STATUSES } from './statuses';
import { parseJsonSafe } from '../../core/safe-json';

/** The unfinished statuses but `blocked`: instances that run, or would if a worker took them. */
const RUNNING_STATUSES = UNFINISHED_STATUSES.filter((s) => s !== 'blocked').map((s) => `'${s}'`).join(', ');

/** Leases, claims, worker heartbeats and schedule ticks. */
export class SharedWorkers extends StorePart {
  acquire(id: string, owner: string, until: number, now: number): Promise<boolean> {
    return this.run('acquire a lease', 'alone', async (x) => {
      const { affected } = await x(
        `UPDATE ${this.dialect.t('instances')} SET lease_owner = ?, lease_until = ?
         WHERE id = ? AND (lease_owner IS NULL OR lease_owner = ? OR lease_until IS NULL OR lease_until <= ?)`,
        [owner, until, id, owner, now],
      );
      return affected > 0;
    });
  }

  release(id: string, owner: string): Promise<void> {
    return this.run('release a lease', 'alone', async (x) => {
      await x(`UPDATE ${this.dialect.t('instances')} SET lease_owner = NULL, lease_until = NULL WHERE id = ? AND lease_owner = ?`, [id, owner]);
    });
  }

  claimStale(owner: string, until: number, now: number, limit: number, runnable?: readonly RunnableDefinition[]): Promise<string[]> {
    return this.run('claim stale instances', 'alone', async (x) => {
      const i = this.dialect.t('instances');
      // SQLite's planner would rather take the status index; the partial index holds only the claimable rows.
      const from = this.setup.kind === 'sqlite' ? `${i} INDEXED BY "IDX_sagaflow_instances_claimable"` : i;
      const only: unknown[] = [];
      const runs = runnable === undefined ? '' : ` AND ${runnablePredicate(runnable, only)}`;
      const candidates = `SELECT id FROM ${from} WHERE ${claimablePredicate(this.setup.kind, UNFINISHED_STATUSES)} AND (lease_until IS NULL OR lease_until <= ?)${runs} ORDER BY updated_at LIMIT ?`;
      const { rows } =
        this.setup.kind === 'postgres'
          ? // Rows another worker is claiming are skipped, not waited for; a row claimed meanwhile is re-checked.
            await x(`WITH c AS (${candidates} FOR UPDATE SKIP LOCKED) UPDATE ${i} AS i SET lease_owner = ?, lease_until = ? FROM c WHERE i.id = c.id RETURNING i.id`, [
              now,
              ...only,
              limit,
              owner,
              until,
            ])
          : await x(`UPDATE ${i} SET lease_owner = ?, lease_until = ? WHERE id IN (${candidates}) RETURNING id`, [owner, until, now, ...only, limit]);
      return rows.map((r) => String(r.id));
    });
  }

  heartbeat(workerId: string, runs: readonly RunnableDefinition[], now: number): Promise<void> {
    return this.run('record a heartbeat', 'write', async (x) => {
      await x(
        `INSERT INTO ${this.dialect.t('workers')} (worker_id, runs, seen_at) VALUES (?, ${this.dialect.jsonParam()}, ?)
         ON CONFLICT (worker_id) DO UPDATE SET runs = EXCLUDED.runs, seen_at = EXCLUDED.seen_at`,
        [workerId, JSON.stringify(runs.map((d) => [d.workflow, d.version, d.fingerprint])), now],
      );
    });
  }

  liveRunners(since: number): Promise<RunnableDefinition[]> {
    return this.run('list live workers', 'read', async (x) => {
      const { rows } = await x(`SELECT ${this.dialect.jsonText('runs')} AS runs FROM ${this.dialect.t('workers')} WHERE seen_at >= ?`, [since]);
      return rows.flatMap((row) => parseRuns(row.runs));
    });
  }

  orphans(runnable: readonly RunnableDefinition[], limit: number): Promise<string[]> {
    return this.run('list instances no worker runs', 'read', async (x) => {
      const params: unknown[] = [];
      const runs = runnablePredicate(runnable, params);
      const { rows } = await x(`SELECT id FROM ${this.dialect.t('instances')} WHERE status IN (${RUNNING_STATUSES}) AND NOT ${runs} ORDER BY updated_at LIMIT ?`, [
        ...params,
        Math.max(0, Math.floor(limit)),
      ]);
      return rows.map((r) => String(r.id));
    });
  }

  retire(workerId: string): Promise<void> {
    return this.run('forget a worker', 'write', async (x) => {
      await x(`DELETE FROM ${this.dialect.t('workers')} WHERE worker_id = ?`, [workerId]);
    });
  }

  scheduleTick(name: string): Promise<number | undefined> {
    return this.run('read a schedule tick', 'read', async (x) => {
      const { rows } = await x(`SELECT last_tick FROM ${this.dialect.t('schedule')} WHERE name = ?`, [name]);
      const row = rows[0];
      return row === undefined ? undefined : num(row.last_tick);
    });
  }

  advanceSchedule(name: string, expectedPrevious: number | undefined, tick: number, now: number): Promise<boolean> {
    return this.run('advance a schedule', 'write', async (x) => {
      const { affected } =
        expectedPrevious === undefined
          ? await x(`INSERT INTO ${this.dialect.t('schedule')} (name, last_tick, updated_at) VALUES (?, ?, ?) ON CONFLICT (name) DO NOTHING`, [name, tick, now])
          : await x(`UPDATE ${this.dialect.t('schedule')} SET last_tick = ?, updated_at = ? WHERE name = ? AND last_tick = ?`, [tick, now, name, expectedPrevious]);
      return affected > 0;
    });
  }
}

/** A worker's `runs` column back as definitions; anything unreadable in it is skipped. */
function parseRuns(column: unknown): RunnableDefinition[] {
  let value: unknown;
  try {
    value = typeof column === 'string' ? parseJsonSafe(column) : [];
  } catch {
    return [];
  }
  if (!Array.isArray(value)) return [];
  const out: RunnableDefinition[] = [];
  for (const item of value as unknown[]) {
    if (!Array.isArray(item)) continue;
    const [workflow, version, fingerprint] = item as unknown[];
    if (typeof workflow === 'string' && typeof version === 'number' && typeof fingerprint === 'string') out.push({ workflow, version, fingerprint });
  }
  return out;
}

