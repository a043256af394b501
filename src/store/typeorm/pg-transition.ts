import type { TransitionWrites } from '../instance-store';
import type { Dialect } from './dialect';
import { HISTORY_COLUMNS, historyValues, trackColumn, type PreparedRecord } from './rows';

/** PostgreSQL types of the history columns after `instance_id`, for the casts a VALUES list needs. */
const HISTORY_CASTS: readonly string[] = ['integer', 'integer', 'bigint', 'text', 'text', 'text', 'text', 'text', 'text', 'integer', 'text', 'text', 'text', 'text', 'text'];

/**
 * One PostgreSQL statement that writes a whole transition: the instance row (inserted, or updated when its
 * version is still `expected`, with the writer's lease when the transition carries one), its wait rows, the stack
 * entries pushed since the last write, its history lines and the inbox deliveries it consumed (with
 * `waitsUnchanged`, the wait rows are left as they are). The other parts hang off the `u` CTE, so they write nothing
 * when the instance row was not written. One statement is one transaction and one round trip.
 *
 * It answers one row: `changed` (1 when written, 0 when the id existed / the version was stale / another owner
 * holds the lease the write asked to take only if free) and, for an update, `current` (the stored version as the
 * statement found it: the version expected, when only the lease refused the write).
 */
export function pgTransition(
  d: Dialect,
  p: PreparedRecord,
  writes: TransitionWrites,
  expected: number | null,
  waitsUnchanged = false,
): { sql: string; params: unknown[] } {
  const params: unknown[] = [];
  const v = (value: unknown, cast?: string): string => {
    params.push(value);
    return cast === undefined ? '?' : `CAST(? AS ${cast})`;
  };
  const ctes: string[] = [];
  // The lease (shared stores) is taken or renewed by the same statement.
  const lease = writes.lease;
  if (expected === null) {
    ctes.push(
      `u AS (INSERT INTO ${d.t('instances')} (id, workflow, status, version, record, next_due, deadlines, parked, lease_owner, lease_until, created_at, updated_at, def_version, fingerprint)
       VALUES (${[p.id, p.workflow, p.status, p.version, p.json, p.nextDue, p.deadlines, p.parked].map((x) => v(x)).join(', ')}, ${v(lease?.owner ?? null, 'varchar')}, ${v(lease?.until ?? null, 'bigint')}, ${v(p.createdAt)}, ${v(p.updatedAt)}, ${v(p.defVersion, 'integer')}, ${v(p.fingerprint, 'varchar')})
       ON CONFLICT (id) DO NOTHING RETURNING id)`,
    );
  } else {
    ctes.push(
      `u AS (UPDATE ${d.t('instances')} SET workflow = ${v(p.workflow)}, status = ${v(p.status)}, version = ${v(p.version)}, record = ${v(p.json)},
       next_due = ${v(p.nextDue)}, deadlines = ${v(p.deadlines)}, parked = ${v(p.parked)}, updated_at = ${v(p.updatedAt)},
       def_version = ${v(p.defVersion, 'integer')}, fingerprint = ${v(p.fingerprint, 'varchar')}${
         lease === undefined ? '' : `, lease_owner = ${v(lease.owner)}, lease_until = ${v(lease.until)}`
       }
       WHERE id = ${v(p.id)} AND version = ${v(expected)}${
         lease?.ifFreeAt === undefined
           ? ''
           : ` AND (lease_owner IS NULL OR lease_owner = ${v(lease.owner)} OR lease_until IS NULL OR lease_until <= ${v(lease.ifFreeAt)})`
       } RETURNING id)`,
    );
    // Waits the record no longer has go; the ones it keeps are upserted below (never touched twice). When the
    // stored rows are known to be the record's already, neither happens.
    if (!waitsUnchanged) {
      const keep = p.waits.length === 0 ? '' : ` AND (track, topic) NOT IN (VALUES ${p.waits.map((w) => `(${v(w.track, 'text')}, ${v(w.topic, 'text')})`).join(', ')})`;
      ctes.push(`dw AS (DELETE FROM ${d.t('waits')} WHERE instance_id IN (SELECT id FROM u)${keep})`);
    }
  }
  if (p.waits.length > 0 && !(waitsUnchanged && expected !== null)) {
    const rows = p.waits.map((w) => `(${v(w.track, 'text')}, ${v(w.topic, 'text')}, ${v(w.matchKeys, 'text')}, ${v(w.matchValues, 'text')})`);
    ctes.push(
      `iw AS (INSERT INTO ${d.t('waits')} (instance_id, track, topic, match_keys, match_values)
       SELECT u.id, w.track, w.topic, w.mk, w.mv FROM u CROSS JOIN (VALUES ${rows.join(', ')}) AS w(track, topic, mk, mv)
       ON CONFLICT (instance_id, track, topic) DO UPDATE SET match_keys = EXCLUDED.match_keys, match_values = EXCLUDED.match_values)`,
    );
  }
  if (p.stack.length > 0) {
    // The stack entries pushed since the last write (one overwrites a row that a pop left past the depth).
    const rows = p.stack.map((r) => `(${v(r.track, 'varchar')}, ${v(r.pos, 'integer')}, ${v(r.entry, 'jsonb')})`);
    ctes.push(
      `st AS (INSERT INTO ${d.t('stack')} (instance_id, track, pos, entry)
       SELECT u.id, s.track, s.pos, s.entry FROM u CROSS JOIN (VALUES ${rows.join(', ')}) AS s(track, pos, entry)
       ON CONFLICT (instance_id, track, pos) DO UPDATE SET entry = EXCLUDED.entry)`,
    );
  }
  const history = writes.history ?? [];
  if (history.length > 0) {
    const rows = history.map((h, i) => `(${historyValues(p.id, p.version, i, h).slice(1).map((x, j) => v(x, HISTORY_CASTS[j])).join(', ')})`);
    const columns = HISTORY_COLUMNS.slice(1);
    ctes.push(
      `ih AS (INSERT INTO ${d.t('history')} (${HISTORY_COLUMNS.join(', ')})
       SELECT u.id, ${columns.map((c) => `h.${c}`).join(', ')} FROM u CROSS JOIN (VALUES ${rows.join(', ')}) AS h(${columns.join(', ')}))`,
    );
  }
  const consumed = writes.consumed ?? [];
  if (consumed.length > 0) {
    ctes.push(
      `di AS (DELETE FROM ${d.t('inbox')} WHERE instance_id IN (SELECT id FROM u)
       AND (event_id, track) IN (VALUES ${consumed.map((c) => `(${v(c.eventId, 'text')}, ${v(trackColumn(c.track), 'text')})`).join(', ')}))`,
    );
  }
  const done = writes.requestsDone ?? [];
  if (done.length > 0) {
    ctes.push(
      `rq AS (UPDATE ${d.t('requests')} SET state = 'done', done_at = ${v(p.updatedAt, 'bigint')} WHERE instance_id IN (SELECT id FROM u)
       AND state = 'pending' AND id IN (${done.map((id) => v(id, 'text')).join(', ')}))`,
    );
  }
  const current = expected === null ? '' : `, (SELECT version FROM ${d.t('instances')} WHERE id = ${v(p.id)}) AS current`;
  return { sql: `WITH ${ctes.join(',\n')}\nSELECT (SELECT count(*) FROM u) AS changed${current}`, params };
}
