/**
 * The write path of a TypeormStore: a transition (a created or saved record with its wait rows, history lines and
 * consumed inbox deliveries) in one transaction, checked against the stored version.
 */
import type { InstanceRecord } from '../../engine/instance-record';
import { VersionConflictError } from '../../errors/runtime-errors';
import type { TransitionWrites } from '../instance-store';
import { Dialect, type Exec } from './dialect';
import { pgTransition } from './pg-transition';
import { HISTORY_COLUMNS, historyValues, num, prepareRecord, trackColumn, type PreparedRecord } from './rows';
import { StorePart } from './store-session';

/** Multi-row inserts carry at most this many rows per statement. */
const ROWS_PER_INSERT = 100;

/** Creates and saves instance records (with what their transitions write), one transaction each. */
export class StoreWrites extends StorePart {
  create(record: InstanceRecord, writes: TransitionWrites = {}): Promise<boolean> {
    let p: PreparedRecord;
    try {
      p = prepareRecord(record, 1);
    } catch (e) {
      return Promise.reject(e instanceof Error ? e : new Error(String(e)));
    }
    if (this.setup.kind === 'postgres') {
      const { sql, params } = pgTransition(this.dialect, p, writes, null);
      return this.run('create an instance', 'write', async (x) => num((await x(sql, params)).rows[0]?.changed) === 1);
    }
    const lease = writes.lease;
    return this.run('create an instance', 'tx', async (x) => {
      const inserted = await x(
        `INSERT INTO ${this.dialect.t('instances')} (id, workflow, status, version, record, next_due, deadlines, parked, lease_owner, lease_until, created_at, updated_at, def_version, fingerprint)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`,
        [p.id, p.workflow, p.status, p.version, p.json, p.nextDue, p.deadlines, p.parked, lease?.owner ?? null, lease?.until ?? null, p.createdAt, p.updatedAt, p.defVersion, p.fingerprint],
      );
      if (inserted.affected === 0) return false;
      await this.writeDerived(x, p, writes, false);
      return true;
    });
  }

  save(record: InstanceRecord, writes: TransitionWrites = {}): Promise<number> {
    const version = record.version + 1;
    let p: PreparedRecord;
    try {
      p = prepareRecord(record, version);
    } catch (e) {
      return Promise.reject(e instanceof Error ? e : new Error(String(e)));
    }
    if (this.setup.kind === 'postgres') {
      const { sql, params } = pgTransition(this.dialect, p, writes, record.version);
      return this.run('save an instance', 'write', async (x) => {
        const row = (await x(sql, params)).rows[0];
        if (num(row?.changed) === 1) return version;
        throw new VersionConflictError(p.id, record.version, row?.current === null || row?.current === undefined ? undefined : num(row.current));
      });
    }
    const lease = writes.lease;
    return this.run('save an instance', 'tx', async (x) => {
      const updated = await x(
        `UPDATE ${this.dialect.t('instances')} SET workflow = ?, status = ?, version = ?, record = ?, next_due = ?, deadlines = ?, parked = ?, updated_at = ?, def_version = ?, fingerprint = ?${
          lease === undefined ? '' : ', lease_owner = ?, lease_until = ?'
        }
         WHERE id = ? AND version = ?`,
        [p.workflow, p.status, p.version, p.json, p.nextDue, p.deadlines, p.parked, p.updatedAt, p.defVersion, p.fingerprint, ...(lease === undefined ? [] : [lease.owner, lease.until]), p.id, record.version],
      );
      if (updated.affected === 0) {
        const { rows } = await x(`SELECT version FROM ${this.dialect.t('instances')} WHERE id = ?`, [p.id]);
        throw new VersionConflictError(p.id, record.version, rows[0] === undefined ? undefined : num(rows[0].version));
      }
      await this.writeDerived(x, p, writes, true);
      return version;
    });
  }

  /** Writes what a record's save derives (wait rows) and what the transition carries (history, consumed inbox). */
  private async writeDerived(x: Exec, p: PreparedRecord, writes: TransitionWrites, replaceWaits: boolean): Promise<void> {
    if (replaceWaits) await x(`DELETE FROM ${this.dialect.t('waits')} WHERE instance_id = ?`, [p.id]);
    for (let i = 0; i < p.waits.length; i += ROWS_PER_INSERT) {
      const chunk = p.waits.slice(i, i + ROWS_PER_INSERT);
      await x(
        `INSERT INTO ${this.dialect.t('waits')} (instance_id, track, topic, match_keys, match_values) VALUES ${chunk.map(() => '(?, ?, ?, ?, ?)').join(', ')}`,
        chunk.flatMap((w) => [p.id, w.track, w.topic, w.matchKeys, w.matchValues]),
      );
    }
    const history = writes.history ?? [];
    const row = `(${Dialect.marks(HISTORY_COLUMNS.length)})`;
    for (let i = 0; i < history.length; i += ROWS_PER_INSERT) {
      const chunk = history.slice(i, i + ROWS_PER_INSERT);
      await x(
        `INSERT INTO ${this.dialect.t('history')} (${HISTORY_COLUMNS.join(', ')}) VALUES ${chunk.map(() => row).join(', ')}`,
        chunk.flatMap((h, j) => historyValues(p.id, p.version, i + j, h)),
      );
    }
    for (const c of writes.consumed ?? []) {
      await x(`DELETE FROM ${this.dialect.t('inbox')} WHERE event_id = ? AND instance_id = ? AND track = ?`, [c.eventId, p.id, trackColumn(c.track)]);
    }
    for (const id of writes.requestsDone ?? []) {
      await x(`UPDATE ${this.dialect.t('requests')} SET state = 'done', done_at = ? WHERE id = ? AND instance_id = ? AND state = 'pending'`, [p.updatedAt, id, p.id]);
    }
  }
}
