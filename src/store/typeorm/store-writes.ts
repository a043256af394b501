/**
 * The write path of a TypeormStore: a transition (a created or saved record with its wait rows, history lines and
 * consumed inbox deliveries) in one transaction, checked against the stored version.
 */
import type { InstanceRecord } from '../../engine/instance-record';
import { LeasedElsewhereError, VersionConflictError } from '../../errors/runtime-errors';
import type { TransitionWrites } from '../instance-store';
import { Dialect, type Exec, type ExecResult } from './dialect';
import { pgTransition } from './pg-transition';
import { HISTORY_COLUMNS, historyValues, num, prepareRecord, trackColumn, type PreparedRecord } from './rows';
import { StorePart } from './store-session';
import { isFinalStatus, type InstanceStatus } from '../../core/flow-fields';

/** Multi-row inserts carry at most this many rows per statement. */
const ROWS_PER_INSERT = 100;

/** Instances whose last written wait rows this store remembers, at most (past it, it forgets them all). */
const REMEMBERED_WAITS = 10_000;

/** The wait rows of a prepared record as one comparable key. */
function waitsKey(p: PreparedRecord): string {
  return p.waits.length === 0 ? '' : JSON.stringify(p.waits);
}

/** Creates and saves instance records (with what their transitions write), one transaction each. */
export class StoreWrites extends StorePart {
  /**
   * The wait rows this store last wrote per instance and the version it wrote them with: a save from that version
   * whose record waits for the same things leaves the rows alone (most transitions neither start nor end a wait).
   */
  private readonly writtenWaits = new Map<string, { readonly version: number; readonly key: string }>();

  /** Whether the stored wait rows of `p`'s instance, at `from`, are the ones `p` would write. */
  private waitsUnchanged(p: PreparedRecord, from: number): boolean {
    const written = this.writtenWaits.get(p.id);
    return written !== undefined && written.version === from && written.key === waitsKey(p);
  }

  /** Remembers (or, for a finished instance, forgets) the wait rows just committed with `p`. */
  private remember(p: PreparedRecord): void {
    if (isFinalStatus(p.status as InstanceStatus)) {
      this.writtenWaits.delete(p.id);
      return;
    }
    if (this.writtenWaits.size >= REMEMBERED_WAITS) this.writtenWaits.clear();
    this.writtenWaits.set(p.id, { version: p.version, key: waitsKey(p) });
  }

  create(record: InstanceRecord, writes: TransitionWrites = {}): Promise<boolean> {
    let p: PreparedRecord;
    try {
      p = prepareRecord(record, 1);
    } catch (e) {
      return Promise.reject(e instanceof Error ? e : new Error(String(e)));
    }
    if (this.setup.kind === 'postgres') {
      const { sql, params } = pgTransition(this.dialect, p, writes, null);
      return this.session.runStatement('create an instance', { sql, params, read: ({ rows }) => num(rows[0]?.changed) === 1 }).then((created) => {
        if (created) this.remember(p);
        return created;
      });
    }
    const lease = writes.lease;
    return this.run('create an instance', 'tx', async (x) => {
      const inserted = await x(
        `INSERT INTO ${this.dialect.t('instances')} (id, workflow, status, version, record, next_due, deadlines, parked, lease_owner, lease_until, created_at, updated_at, def_version, fingerprint)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`,
        [p.id, p.workflow, p.status, p.version, p.json, p.nextDue, p.deadlines, p.parked, lease?.owner ?? null, lease?.until ?? null, p.createdAt, p.updatedAt, p.defVersion, p.fingerprint],
      );
      if (inserted.affected === 0) return false;
      await this.writeDerived(x, p, writes, 'insert');
      return true;
    }).then((created) => {
      if (created) this.remember(p);
      return created;
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
      const { sql, params } = pgTransition(this.dialect, p, writes, record.version, this.waitsUnchanged(p, record.version));
      const read = ({ rows }: ExecResult): number => {
        const row = rows[0];
        if (num(row?.changed) === 1) return version;
        const current = row?.current === null || row?.current === undefined ? undefined : num(row.current);
        // The version matched, so only another owner's lease can have refused the write.
        if (current === record.version && writes.lease?.ifFreeAt !== undefined) throw new LeasedElsewhereError(p.id);
        throw new VersionConflictError(p.id, record.version, current);
      };
      return this.remembered(p, this.session.runStatement('save an instance', { sql, params, read }));
    }
    const waits = this.waitsUnchanged(p, record.version) ? 'keep' : 'replace';
    const lease = writes.lease;
    const free = lease?.ifFreeAt === undefined ? undefined : { owner: lease.owner, at: lease.ifFreeAt };
    const saved = this.run('save an instance', 'tx', async (x) => {
      const updated = await x(
        `UPDATE ${this.dialect.t('instances')} SET workflow = ?, status = ?, version = ?, record = ?, next_due = ?, deadlines = ?, parked = ?, updated_at = ?, def_version = ?, fingerprint = ?${
          lease === undefined ? '' : ', lease_owner = ?, lease_until = ?'
        }
         WHERE id = ? AND version = ?${free === undefined ? '' : ' AND (lease_owner IS NULL OR lease_owner = ? OR lease_until IS NULL OR lease_until <= ?)'}`,
        [
          ...[p.workflow, p.status, p.version, p.json, p.nextDue, p.deadlines, p.parked, p.updatedAt, p.defVersion, p.fingerprint],
          ...(lease === undefined ? [] : [lease.owner, lease.until]),
          p.id,
          record.version,
          ...(free === undefined ? [] : [free.owner, free.at]),
        ],
      );
      if (updated.affected === 0) {
        const { rows } = await x(`SELECT version FROM ${this.dialect.t('instances')} WHERE id = ?`, [p.id]);
        const current = rows[0] === undefined ? undefined : num(rows[0].version);
        // The version matched, so only another owner's lease can have refused the write.
        if (current === record.version && free !== undefined) throw new LeasedElsewhereError(p.id);
        throw new VersionConflictError(p.id, record.version, current);
      }
      await this.writeDerived(x, p, writes, waits);
      return version;
    });
    return this.remembered(p, saved);
  }

  /** `saved`, remembering the wait rows of `p` once it committed and forgetting them when it failed. */
  private remembered(p: PreparedRecord, saved: Promise<number>): Promise<number> {
    return saved.then(
      (version) => {
        this.remember(p);
        return version;
      },
      (error: unknown) => {
        this.writtenWaits.delete(p.id);
        throw error;
      },
    );
  }

  /**
   * Writes what a record's save derives (wait rows: inserted for a new record, replaced, or kept when they are
   * the ones stored) and what the transition carries (history, consumed inbox).
   */
  private async writeDerived(x: Exec, p: PreparedRecord, writes: TransitionWrites, waits: 'insert' | 'replace' | 'keep'): Promise<void> {
    if (waits === 'replace') await x(`DELETE FROM ${this.dialect.t('waits')} WHERE instance_id = ?`, [p.id]);
    for (let i = 0; waits !== 'keep' && i < p.waits.length; i += ROWS_PER_INSERT) {
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
