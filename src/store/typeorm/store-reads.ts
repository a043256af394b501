/**
 * The read path of a TypeormStore: a record, its history, the waits an event matches, due waits, unfinished
 * instances and filtered lists — on SQLite's reader connection (committed data) or PostgreSQL's pool.
 */
import type { SagaEvent } from '../../bus/event';
import type { WaiterRef } from '../../bus/wait-index';
import type { InstanceStatus } from '../../core/flow-fields';
import type { HistoryEntry } from '../../engine/history-entry';
import type { InstanceRecord } from '../../engine/instance-record';
import { checkFilter } from '../instance-filter';
import type { DueWait, InstanceFilter, InstanceSummary, RunnableDefinition, WaitingRecord } from '../instance-store';
import { Dialect, runnablePredicate, type Exec } from './dialect';
import { historyEntry, lookupValues, num, parseDeadlines, parseMatchKeys, trackRef } from './rows';
import { StorePart } from './store-session';
import { stackRowsColumn, storedRecordOf } from './stack-rows';
import { UNFINISHED_STATUSES } from './statuses';

const NOT_FINAL = UNFINISHED_STATUSES.map((s) => `'${s.replace(/'/g, "''")}'`).join(', ');

/** Reads instances, histories and waits. */
export class StoreReads extends StorePart {
  load(id: string): Promise<InstanceRecord | undefined> {
    return this.run('load an instance', 'read', async (x) => {
      const { rows } = await x(`SELECT ${this.dialect.jsonText('record')} AS record, ${stackRowsColumn(this.dialect, 'id')} AS stack FROM ${this.dialect.t('instances')} WHERE id = ?`, [id]);
      return this.recordOf(rows[0], id);
    });
  }

  /** The record, or `'leased'` when another owner holds an unexpired lease on it: one read. */
  loadUnleased(id: string, owner: string, now: number): Promise<InstanceRecord | 'leased' | undefined> {
    return this.run('load an instance', 'read', async (x) => {
      const { rows } = await x(
        `SELECT CASE WHEN lease_owner IS NOT NULL AND lease_owner <> ? AND lease_until > ? THEN NULL ELSE ${this.dialect.jsonText('record')} END AS record,
         lease_owner AS owner, ${stackRowsColumn(this.dialect, 'id')} AS stack FROM ${this.dialect.t('instances')} WHERE id = ?`,
        [owner, now, id],
      );
      const row = rows[0];
      return leasedOr(row, owner) ?? this.recordOf(row, id);
    });
  }

  /**
   * A row's record (and stack rows) read back, undefined for no row; the stacks read are remembered for the next
   * save. @throws CorruptRecordError
   */
  private recordOf(row: Record<string, unknown> | undefined, id: string): InstanceRecord | undefined {
    const stored = storedRecordOf(row, id);
    if (stored !== undefined) this.session.stacks.read(id, stored.record.version, stored.stacks);
    return stored?.record;
  }

  history(id: string): Promise<HistoryEntry[]> {
    return this.run('read a history', 'read', async (x) => {
      const { rows } = await x(`SELECT * FROM ${this.dialect.t('history')} WHERE instance_id = ? ORDER BY version, seq, id`, [id]);
      return rows.map(historyEntry);
    });
  }

  findWaiting(event: SagaEvent): Promise<WaiterRef[]> {
    return this.run('find waiting instances', 'read', async (x) => {
      const rows = await this.waitRows(x, event, `w.instance_id, w.track FROM ${this.dialect.t('waits')} w`, []);
      return rows.map((r) => ({ instanceId: String(r.instance_id), track: trackRef(r.track) }));
    });
  }

  /**
   * Like {@link findWaiting}, with each waiting instance's record read by the same query (the wait rows joined to
   * their instance): as {@link load} reads it, or with `lease` as {@link loadUnleased} does.
   */
  findWaitingRecords(event: SagaEvent, lease?: { readonly owner: string; readonly now: number }): Promise<WaitingRecord[]> {
    return this.run('find waiting instances', 'read', async (x) => {
      const record = this.dialect.jsonText('i.record');
      const select =
        lease === undefined
          ? `w.instance_id, w.track, ${record} AS record, NULL AS owner`
          : `w.instance_id, w.track, CASE WHEN i.lease_owner IS NOT NULL AND i.lease_owner <> ? AND i.lease_until > ? THEN NULL ELSE ${record} END AS record, i.lease_owner AS owner`;
      const stack = `, ${stackRowsColumn(this.dialect, 'i.id')} AS stack`;
      const rows = await this.waitRows(x, event, `${select}${stack} FROM ${this.dialect.t('waits')} w JOIN ${this.dialect.t('instances')} i ON i.id = w.instance_id`, lease === undefined ? [] : [lease.owner, lease.now]);
      return rows.map((r) => {
        const ref = { instanceId: String(r.instance_id), track: trackRef(r.track) };
        try {
          return { ...ref, record: leasedOr(r, lease?.owner) ?? (this.recordOf(r, ref.instanceId) as InstanceRecord) };
        } catch {
          // Unreadable: whoever runs it loads it and meets the CorruptRecordError (for this instance only).
          return ref;
        }
      });
    });
  }

  /**
   * The wait rows that `event` matches (`SELECT <selected> … WHERE`, one part per key set of its topic, whose
   * own parameters come first).
   */
  private async waitRows(x: Exec, event: SagaEvent, selected: string, selectParams: readonly unknown[]): Promise<Record<string, unknown>[]> {
    const w = this.dialect.t('waits');
    // The distinct key sets of the topic, one index seek each (a loose index scan: never a scan of the waits).
    const keySets = await x(
      `WITH RECURSIVE k(mk) AS (
         SELECT MIN(match_keys) FROM ${w} WHERE topic = ?
         UNION ALL
         SELECT (SELECT MIN(w2.match_keys) FROM ${w} w2 WHERE w2.topic = ? AND w2.match_keys > k.mk) FROM k WHERE k.mk IS NOT NULL
       )
       SELECT mk FROM k WHERE mk IS NOT NULL`,
      [event.topic, event.topic],
    );
    const parts: string[] = [];
    const params: unknown[] = [];
    for (const row of keySets.rows) {
      const keys = parseMatchKeys(row.mk);
      if (keys === undefined) continue;
      const values = lookupValues(event, keys);
      if (values === undefined) continue;
      parts.push(`SELECT ${selected} WHERE w.topic = ? AND w.match_keys = ? AND w.match_values = ?${event.instanceId === undefined ? '' : ' AND w.instance_id = ?'}`);
      params.push(...selectParams, event.topic, row.mk, values);
      if (event.instanceId !== undefined) params.push(event.instanceId);
    }
    if (parts.length === 0) return [];
    return (await x(parts.join(' UNION ALL '), params)).rows;
  }

  dueWaits(now: number, limit: number, runnable?: readonly RunnableDefinition[]): Promise<DueWait[]> {
    return this.run('list due waits', 'read', async (x) => {
      const params: unknown[] = [now];
      const only = runnable === undefined ? '' : ` AND ${runnablePredicate(runnable, params)}`;
      const { rows } = await x(`SELECT id, deadlines FROM ${this.dialect.t('instances')} WHERE next_due <= ?${only} ORDER BY next_due, id LIMIT ?`, [...params, limit]);
      const due: DueWait[] = [];
      for (const row of rows) {
        for (const d of parseDeadlines(row.deadlines)) if (d.at <= now) due.push({ instanceId: String(row.id), track: d.track, deadline: d.at });
      }
      due.sort((a, b) => a.deadline - b.deadline);
      return due.slice(0, limit);
    });
  }

  unfinished(): Promise<string[]> {
    return this.run('list unfinished instances', 'read', async (x) => {
      const { rows } = await x(`SELECT id FROM ${this.dialect.t('instances')} WHERE status IN (${NOT_FINAL}) ORDER BY created_at, id`);
      return rows.map((r) => String(r.id));
    });
  }

  list(given?: InstanceFilter): Promise<InstanceSummary[]> {
    let filter: InstanceFilter & { readonly limit: number };
    try {
      filter = checkFilter(given);
    } catch (error) {
      return Promise.reject(error instanceof Error ? error : new Error(String(error)));
    }
    return this.run('list instances', 'read', async (x) => {
      const where: string[] = [];
      const params: unknown[] = [];
      if (filter.status !== undefined) {
        const statuses = typeof filter.status === 'string' ? [filter.status] : [...filter.status];
        if (statuses.length === 0) return [];
        where.push(`status IN (${Dialect.marks(statuses.length)})`);
        params.push(...statuses);
      }
      if (filter.workflow !== undefined) {
        where.push('workflow = ?');
        params.push(filter.workflow);
      }
      if (filter.version !== undefined) {
        where.push('def_version = ?');
        params.push(filter.version);
      }
      if (filter.since !== undefined) {
        where.push('updated_at >= ?');
        params.push(filter.since);
      }
      params.push(filter.limit);
      const { rows } = await x(
        `SELECT id, workflow, def_version, status, created_at, updated_at FROM ${this.dialect.t('instances')}${where.length === 0 ? '' : ` WHERE ${where.join(' AND ')}`}
         ORDER BY updated_at DESC, id LIMIT ?`,
        params,
      );
      return rows.map((r) => ({
        id: String(r.id),
        workflow: String(r.workflow),
        version: num(r.def_version),
        status: r.status as InstanceStatus,
        createdAt: num(r.created_at),
        updatedAt: num(r.updated_at),
      }));
    });
  }
}

/** `'leased'` when the row's record was withheld because an owner other than `owner` holds the lease. */
function leasedOr(row: Record<string, unknown> | undefined, owner: string | undefined): 'leased' | undefined {
  return owner !== undefined && row !== undefined && row.record === null && typeof row.owner === 'string' && row.owner !== owner ? 'leased' : undefined;
}


