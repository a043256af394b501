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
import { StorePart, type StoreSession } from './store-session';
import { stackDelta, type Stacks } from './stack-rows';
import type { StoreEvents } from './store-events';
import type { SagaEvent } from '../../bus/event';
import { isFinalStatus, type InstanceStatus } from '../../core/flow-fields';

/** History lines per INSERT, at most. */
const HISTORY_PER_INSERT = 50;

/** Instances whose last written rows this store remembers, at most (past it, it forgets them all). */
const REMEMBERED_WAITS = 10_000;

/** `(?, …), (?, …)`: `n` rows of `width` placeholders. */
function rowMarks(n: number, width: number): string {
  return new Array<string>(n).fill(`(${Dialect.marks(width)})`).join(', ');
}

/** The wait rows of a prepared record as one comparable key. */
function waitsKey(p: PreparedRecord): string {
  return p.waits.length === 0 ? '' : JSON.stringify(p.waits);
}

/**
 * The indexed columns a save may change as one comparable key: status, deadlines and parked in a transition, and the
 * definition's version and fingerprint when an instance is migrated to another version.
 */
function indexedKey(p: PreparedRecord): string {
  return JSON.stringify([p.status, p.nextDue, p.parked, p.deadlines, p.defVersion, p.fingerprint]);
}

/** What this store last wrote of an instance: the version, and the keys of its wait rows and indexed columns. */
interface Written {
  readonly version: number;
  readonly waits: string;
  readonly indexed: string;
}

/** Creates and saves instance records (with what their transitions write), one transaction each. */
export class StoreWrites extends StorePart {
  /**
   * What this store last wrote per instance, and the version it wrote it with: a save from that version whose record
   * waits for the same things leaves the wait rows alone (most transitions neither start nor end a wait), and one
   * whose status, deadlines, parked flag and definition version are the same leaves their columns (and SQLite's
   * indexes on them) alone.
   */
  private readonly written = new Map<string, Written>();

  /** SQLite's statements, by shape (each is prepared once). */
  private readonly insertSql = `INSERT INTO ${this.dialect.t('instances')} (id, workflow, status, version, record, next_due, deadlines, parked, lease_owner, lease_until, created_at, updated_at, def_version, fingerprint)
         VALUES (${Dialect.marks(14)}) ON CONFLICT (id) DO NOTHING`;
  /** The history INSERT and the stack upsert of n rows at [n]. */
  private readonly historySql: string[] = [];
  private readonly stackSql: string[] = [];
  private readonly waitSql = `INSERT INTO ${this.dialect.t('waits')} (instance_id, track, topic, match_keys, match_values) VALUES (?, ?, ?, ?, ?)`;
  private readonly updateShapes: string[] = [];

  constructor(
    session: StoreSession,
    private readonly events: StoreEvents,
  ) {
    super(session);
  }

  /**
   * SQLite's instance UPDATE: the record, its version and update time, and only when they changed (`indexed`) the
   * indexed columns derived from it — SQLite rewrites the index entries of every column in the SET list, changed or
   * not. The workflow never changes; its version and fingerprint only when the instance is migrated. With `lease`,
   * the lease too; with `free`, only when no other owner holds it.
   */
  private updateSql(indexed: boolean, lease: boolean, free: boolean): string {
    const shape = (indexed ? 1 : 0) + (lease ? 2 : 0) + (free ? 4 : 0);
    return (this.updateShapes[shape] ??= `UPDATE ${this.dialect.t('instances')} SET version = ?, record = ?, updated_at = ?${
      indexed ? ', status = ?, next_due = ?, deadlines = ?, parked = ?, def_version = ?, fingerprint = ?' : ''
    }${lease ? ', lease_owner = ?, lease_until = ?' : ''}
         WHERE id = ? AND version = ?${free ? ' AND (lease_owner IS NULL OR lease_owner = ? OR lease_until IS NULL OR lease_until <= ?)' : ''}`);
  }

  /** The history INSERT of `n` rows. */
  private historyInsert(n: number): string {
    return (this.historySql[n] ??= `INSERT INTO ${this.dialect.t('history')} (${HISTORY_COLUMNS.join(', ')}) VALUES ${rowMarks(n, HISTORY_COLUMNS.length)}`);
  }

  /** The stack-row upsert of `n` rows. */
  private stackInsert(n: number): string {
    return (this.stackSql[n] ??= `INSERT INTO ${this.dialect.t('stack')} (instance_id, track, pos, entry) VALUES ${rowMarks(n, 4)}
         ON CONFLICT (instance_id, track, pos) DO UPDATE SET entry = excluded.entry`);
  }

  /** What this store wrote of `p`'s instance at version `from`, if it remembers. */
  private writtenAt(p: PreparedRecord, from: number): Written | undefined {
    const written = this.written.get(p.id);
    return written?.version === from ? written : undefined;
  }

  /** Whether the stored wait rows of `p`'s instance, at `from`, are the ones `p` would write. */
  private waitsUnchanged(p: PreparedRecord, from: number): boolean {
    return this.writtenAt(p, from)?.waits === waitsKey(p);
  }

  /** Remembers (or, for a finished instance, forgets) what was just committed with `p`: its rows and `stacks`. */
  private remember(p: PreparedRecord, stacks: Stacks): void {
    if (isFinalStatus(p.status as InstanceStatus)) {
      this.written.delete(p.id);
      this.session.stacks.forget(p.id);
      return;
    }
    this.session.stacks.remember(p.id, p.version, stacks);
    if (this.written.size >= REMEMBERED_WAITS) this.written.clear();
    this.written.set(p.id, { version: p.version, waits: waitsKey(p), indexed: indexedKey(p) });
  }

  create(record: InstanceRecord, writes: TransitionWrites = {}): Promise<boolean> {
    let p: PreparedRecord;
    let stacks: Stacks;
    try {
      const delta = stackDelta(record, undefined);
      stacks = delta.stacks;
      p = prepareRecord(record, 1, delta.rows);
    } catch (e) {
      return Promise.reject(e instanceof Error ? e : new Error(String(e)));
    }
    if (this.setup.kind === 'postgres') {
      const { sql, params } = pgTransition(this.dialect, p, writes, null);
      return this.session.runStatement('create an instance', { sql, params, read: ({ rows }) => num(rows[0]?.changed) === 1 }).then((created) => {
        if (created) this.remember(p, stacks);
        return created;
      });
    }
    const lease = writes.lease;
    return this.run('create an instance', 'tx', async (x) => {
      const inserted = await x(this.insertSql, [
        ...[p.id, p.workflow, p.status, p.version, p.json, p.nextDue, p.deadlines, p.parked],
        ...[lease?.owner ?? null, lease?.until ?? null, p.createdAt, p.updatedAt, p.defVersion, p.fingerprint],
      ]);
      if (inserted.affected === 0) return false;
      await this.writeDerived(x, p, writes, 'insert');
      return true;
    }).then((created) => {
      if (created) this.remember(p, stacks);
      return created;
    });
  }

  save(record: InstanceRecord, writes: TransitionWrites = {}): Promise<number> {
    const version = record.version + 1;
    let p: PreparedRecord;
    let stacks: Stacks;
    try {
      // Only the stack entries pushed since the version this store knows are written.
      const delta = stackDelta(record, this.session.stacks.at(record.id, record.version));
      stacks = delta.stacks;
      p = prepareRecord(record, version, delta.rows);
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
      return this.remembered(p, stacks, this.session.runStatement('save an instance', { sql, params, read }));
    }
    const waits = this.waitsUnchanged(p, record.version) ? 'keep' : 'replace';
    const indexed = this.writtenAt(p, record.version)?.indexed !== indexedKey(p);
    const lease = writes.lease;
    const free = lease?.ifFreeAt === undefined ? undefined : { owner: lease.owner, at: lease.ifFreeAt };
    // A final transition removes what is still kept for its instance in its own write (see StoreEvents.dropEvents).
    const ending = isFinalStatus(p.status as InstanceStatus) && this.events.ending(p.id);
    let dropped: SagaEvent[] = [];
    const saved = this.run('save an instance', 'tx', async (x) => {
      const updated = await x(this.updateSql(indexed, lease !== undefined, free !== undefined), [
        p.version,
        p.json,
        p.updatedAt,
        ...(indexed ? [p.status, p.nextDue, p.deadlines, p.parked, p.defVersion, p.fingerprint] : []),
        ...(lease === undefined ? [] : [lease.owner, lease.until]),
        p.id,
        record.version,
        ...(free === undefined ? [] : [free.owner, free.at]),
      ]);
      if (updated.affected === 0) {
        const { rows } = await x(`SELECT version FROM ${this.dialect.t('instances')} WHERE id = ?`, [p.id]);
        const current = rows[0] === undefined ? undefined : num(rows[0].version);
        // The version matched, so only another owner's lease can have refused the write.
        if (current === record.version && free !== undefined) throw new LeasedElsewhereError(p.id);
        throw new VersionConflictError(p.id, record.version, current);
      }
      await this.writeDerived(x, p, writes, waits);
      if (ending) dropped = await this.events.deleteKept(x, p.id);
      return version;
    });
    if (!ending) return this.remembered(p, stacks, saved);
    return this.remembered(p, stacks, saved).then(
      (v) => {
        this.events.ended(p.id, dropped);
        return v;
      },
      (error: unknown) => {
        this.events.ended(p.id, undefined);
        throw error;
      },
    );
  }

  /** `saved`, remembering what was written with `p` once it committed and forgetting it when it failed. */
  private remembered(p: PreparedRecord, stacks: Stacks, saved: Promise<number>): Promise<number> {
    return saved.then(
      (version) => {
        this.remember(p, stacks);
        return version;
      },
      (error: unknown) => {
        this.written.delete(p.id);
        this.session.stacks.forget(p.id);
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
    // One prepared statement per row (a record waits on a few topics at most).
    for (const w of waits === 'keep' ? [] : p.waits) await x(this.waitSql, [p.id, w.track, w.topic, w.matchKeys, w.matchValues]);
    // The stack entries pushed since the last write, in one statement (one overwrites a row left by a pop).
    if (p.stack.length > 0) await x(this.stackInsert(p.stack.length), p.stack.flatMap((r) => [p.id, r.track, r.pos, r.entry]));
    // The history lines in one statement (a prepared one per number of lines).
    const history = writes.history ?? [];
    for (let i = 0; i < history.length; i += HISTORY_PER_INSERT) {
      const chunk = history.slice(i, i + HISTORY_PER_INSERT);
      const values: unknown[] = [];
      chunk.forEach((h, j) => values.push(...historyValues(p.id, p.version, i + j, h)));
      await x(this.historyInsert(chunk.length), values);
    }
    for (const c of writes.consumed ?? []) {
      await x(`DELETE FROM ${this.dialect.t('inbox')} WHERE event_id = ? AND instance_id = ? AND track = ?`, [c.eventId, p.id, trackColumn(c.track)]);
    }
    for (const id of writes.requestsDone ?? []) {
      await x(`UPDATE ${this.dialect.t('requests')} SET state = 'done', done_at = ? WHERE id = ? AND instance_id = ? AND state = 'pending'`, [p.updatedAt, id, p.id]);
    }
  }
}
