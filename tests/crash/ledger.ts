import { Pool } from 'pg';

/**
 * The durable record of what the crash tests' fake services did to "the outside world", kept apart from the
 * saga store (another SQLite file, or other tables of the PostgreSQL database), so it survives the kills and
 * shows what really happened:
 * - `effects`: one row per step effect, keyed by the step's `idempotencyKeyBase` (a re-run after a crash
 *   inserts nothing new, as an idempotent service would do);
 * - `compensations`: one row per undone effect, keyed by the rollback's `idempotencyKeyBase`;
 * - `handled`: which event each saga's waiting step received;
 * - `acks`: which events `publish` acknowledged (the publisher never publishes again for a saga it has an ack
 *   for, so an accepted event that went missing would leave the saga waiting for ever);
 * - `runs`: every handler call, with the worker and when it started and ended (ended is null when the worker
 *   died in it) — re-runs after a crash, and whether two workers ever ran one saga at the same time;
 * - `problems`: what the runtimes reported on `errors$`.
 */
export interface Ledger {
  /** Records the effect of a step's `run` (idempotent). */
  effect(key: string, saga: string, step: string, worker: string): Promise<void>;
  /** Records that the effect `effectKey` was undone by a rollback (idempotent). */
  compensate(key: string, effectKey: string, saga: string, step: string, worker: string): Promise<void>;
  /** Records that `saga`'s waiting step received event `eventId` (idempotent). */
  handled(saga: string, eventId: string, worker: string): Promise<void>;
  /** Records that `publish` acknowledged event `eventId` for `saga`. */
  ack(saga: string, eventId: string, delivered: number, retained: boolean, worker: string): Promise<void>;
  /** The sagas some publisher has an acknowledged event for. */
  ackedSagas(): Promise<Set<string>>;
  /** The sagas that have the effect of `step`. */
  sagasWithEffect(step: string): Promise<Set<string>>;
  /** Records the start of a handler call with its `idempotencyKey`; resolves its id for {@link Ledger.runEnded}. */
  runStarted(saga: string, step: string, func: string, key: string, worker: string): Promise<number>;
  /** Records the end of a handler call. */
  runEnded(id: number): Promise<void>;
  /** How many handler calls `worker` started. */
  callsBy(worker: string): Promise<number>;
  /** Records a problem a runtime reported. */
  problem(worker: string, kind: string, message: string, code: string, instanceId: string | null): Promise<void>;
  /** Everything recorded, for the assertions. */
  snapshot(): Promise<LedgerSnapshot>;
  close(): Promise<void>;
}

/** Where a ledger lives. */
export type LedgerTarget = { readonly kind: 'sqlite'; readonly file: string } | { readonly kind: 'postgres'; readonly url: string };

export interface EffectRow {
  readonly key: string;
  readonly saga: string;
  readonly step: string;
  readonly worker: string;
}

export interface CompensationRow extends EffectRow {
  readonly effectKey: string;
}

export interface HandledRow {
  readonly saga: string;
  readonly eventId: string;
  readonly worker: string;
}

export interface AckRow extends HandledRow {
  readonly delivered: number;
  readonly retained: boolean;
}

export interface RunRow {
  readonly id: number;
  readonly saga: string;
  readonly step: string;
  readonly func: string;
  /** The call's `idempotencyKey`. */
  readonly key: string;
  readonly worker: string;
  readonly startedAt: number;
  /** Null when the worker died during the call. */
  readonly endedAt: number | null;
}

export interface ProblemRow {
  readonly worker: string;
  readonly kind: string;
  readonly message: string;
  readonly code: string;
  readonly instanceId: string | null;
}

export interface LedgerSnapshot {
  readonly effects: readonly EffectRow[];
  readonly compensations: readonly CompensationRow[];
  readonly handled: readonly HandledRow[];
  readonly acks: readonly AckRow[];
  readonly runs: readonly RunRow[];
  readonly problems: readonly ProblemRow[];
}

/** The little SQL a ledger needs: `?` placeholders, rows back (empty for statements without RETURNING). */
interface Sql {
  query(sql: string, params?: readonly unknown[]): Promise<Record<string, unknown>[]>;
  close(): Promise<void>;
}

interface SqliteStatement {
  readonly reader: boolean;
  all(...params: unknown[]): unknown[];
  run(...params: unknown[]): unknown;
}

interface SqliteDatabase {
  prepare(sql: string): SqliteStatement;
  pragma(source: string): unknown;
  close(): void;
}

// better-sqlite3 ships no type declarations and @types/better-sqlite3 is not a dependency: type the little used here.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const BetterSqlite3 = require('better-sqlite3') as new (file: string, options?: { timeout?: number }) => SqliteDatabase;

function sqliteSql(file: string): Sql {
  const db = new BetterSqlite3(file, { timeout: 10_000 });
  db.pragma('journal_mode = WAL');
  // NORMAL: a commit survives the process being killed (the WAL is in the OS's hands), which is what is tested.
  db.pragma('synchronous = NORMAL');
  const statements = new Map<string, SqliteStatement>();
  return {
    query: (sql, params = []) => {
      let statement = statements.get(sql);
      if (statement === undefined) statements.set(sql, (statement = db.prepare(sql)));
      if (statement.reader) return Promise.resolve(statement.all(...params) as Record<string, unknown>[]);
      statement.run(...params);
      return Promise.resolve([]);
    },
    close: () => {
      db.close();
      return Promise.resolve();
    },
  };
}

function postgresSql(url: string): Sql {
  const pool = new Pool({ connectionString: url, max: 4 });
  // A connection the server drops (a database dropped under it) must not crash the process.
  pool.on('error', () => undefined);
  return {
    query: async (sql, params = []) => {
      let n = 0;
      const result = await pool.query(sql.replace(/\?/g, () => `$${++n}`), [...params]);
      return result.rows as Record<string, unknown>[];
    },
    close: () => pool.end(),
  };
}

function schema(kind: LedgerTarget['kind']): string[] {
  const serial = kind === 'sqlite' ? 'INTEGER PRIMARY KEY AUTOINCREMENT' : 'BIGSERIAL PRIMARY KEY';
  return [
    'CREATE TABLE IF NOT EXISTS crash_effects (key TEXT PRIMARY KEY, saga TEXT NOT NULL, step TEXT NOT NULL, worker TEXT NOT NULL)',
    'CREATE TABLE IF NOT EXISTS crash_compensations (key TEXT PRIMARY KEY, effect_key TEXT NOT NULL, saga TEXT NOT NULL, step TEXT NOT NULL, worker TEXT NOT NULL)',
    'CREATE TABLE IF NOT EXISTS crash_handled (saga TEXT NOT NULL, event_id TEXT NOT NULL, worker TEXT NOT NULL, PRIMARY KEY (saga, event_id))',
    'CREATE TABLE IF NOT EXISTS crash_acks (saga TEXT NOT NULL, event_id TEXT NOT NULL, delivered INTEGER NOT NULL, retained INTEGER NOT NULL, worker TEXT NOT NULL, PRIMARY KEY (saga, event_id))',
    `CREATE TABLE IF NOT EXISTS crash_runs (id ${serial}, saga TEXT NOT NULL, step TEXT NOT NULL, func TEXT NOT NULL, key TEXT NOT NULL, worker TEXT NOT NULL, started_at BIGINT NOT NULL, ended_at BIGINT)`,
    `CREATE TABLE IF NOT EXISTS crash_problems (id ${serial}, worker TEXT NOT NULL, kind TEXT NOT NULL, message TEXT NOT NULL, code TEXT NOT NULL, instance_id TEXT)`,
  ];
}

const text = (value: unknown): string => String(value);
const int = (value: unknown): number => Number(value);

/**
 * Opens (and creates when missing) the ledger at `target`. With several processes on one PostgreSQL ledger,
 * open it once before starting them: concurrent `CREATE TABLE IF NOT EXISTS` may collide.
 */
export async function openLedger(target: LedgerTarget): Promise<Ledger> {
  const sql = target.kind === 'sqlite' ? sqliteSql(target.file) : postgresSql(target.url);
  for (const ddl of schema(target.kind)) await sql.query(ddl);
  const ignore = 'ON CONFLICT DO NOTHING';
  return {
    effect: async (key, saga, step, worker) => {
      await sql.query(`INSERT INTO crash_effects (key, saga, step, worker) VALUES (?, ?, ?, ?) ${ignore}`, [key, saga, step, worker]);
    },
    compensate: async (key, effectKey, saga, step, worker) => {
      await sql.query(`INSERT INTO crash_compensations (key, effect_key, saga, step, worker) VALUES (?, ?, ?, ?, ?) ${ignore}`, [key, effectKey, saga, step, worker]);
    },
    handled: async (saga, eventId, worker) => {
      await sql.query(`INSERT INTO crash_handled (saga, event_id, worker) VALUES (?, ?, ?) ${ignore}`, [saga, eventId, worker]);
    },
    ack: async (saga, eventId, delivered, retained, worker) => {
      await sql.query(`INSERT INTO crash_acks (saga, event_id, delivered, retained, worker) VALUES (?, ?, ?, ?, ?) ${ignore}`, [saga, eventId, delivered, retained ? 1 : 0, worker]);
    },
    ackedSagas: async () => new Set((await sql.query('SELECT DISTINCT saga FROM crash_acks')).map((r) => text(r.saga))),
    sagasWithEffect: async (step) => new Set((await sql.query('SELECT saga FROM crash_effects WHERE step = ?', [step])).map((r) => text(r.saga))),
    runStarted: async (saga, step, func, key, worker) => {
      const rows = await sql.query('INSERT INTO crash_runs (saga, step, func, key, worker, started_at) VALUES (?, ?, ?, ?, ?, ?) RETURNING id', [saga, step, func, key, worker, Date.now()]);
      return int(rows[0]?.id);
    },
    runEnded: async (id) => {
      await sql.query('UPDATE crash_runs SET ended_at = ? WHERE id = ?', [Date.now(), id]);
    },
    callsBy: async (worker) => int((await sql.query('SELECT count(*) AS n FROM crash_runs WHERE worker = ?', [worker]))[0]?.n),
    problem: async (worker, kind, message, code, instanceId) => {
      await sql.query('INSERT INTO crash_problems (worker, kind, message, code, instance_id) VALUES (?, ?, ?, ?, ?)', [worker, kind, message, code, instanceId]);
    },
    snapshot: async () => ({
      effects: (await sql.query('SELECT key, saga, step, worker FROM crash_effects ORDER BY key')).map((r) => ({
        key: text(r.key),
        saga: text(r.saga),
        step: text(r.step),
        worker: text(r.worker),
      })),
      compensations: (await sql.query('SELECT key, effect_key, saga, step, worker FROM crash_compensations ORDER BY key')).map((r) => ({
        key: text(r.key),
        effectKey: text(r.effect_key),
        saga: text(r.saga),
        step: text(r.step),
        worker: text(r.worker),
      })),
      handled: (await sql.query('SELECT saga, event_id, worker FROM crash_handled ORDER BY saga, event_id')).map((r) => ({
        saga: text(r.saga),
        eventId: text(r.event_id),
        worker: text(r.worker),
      })),
      acks: (await sql.query('SELECT saga, event_id, delivered, retained, worker FROM crash_acks ORDER BY saga, event_id')).map((r) => ({
        saga: text(r.saga),
        eventId: text(r.event_id),
        delivered: int(r.delivered),
        retained: int(r.retained) === 1,
        worker: text(r.worker),
      })),
      runs: (await sql.query('SELECT id, saga, step, func, key, worker, started_at, ended_at FROM crash_runs ORDER BY id')).map((r) => ({
        id: int(r.id),
        saga: text(r.saga),
        step: text(r.step),
        func: text(r.func),
        key: text(r.key),
        worker: text(r.worker),
        startedAt: int(r.started_at),
        endedAt: r.ended_at === null ? null : int(r.ended_at),
      })),
      problems: (await sql.query('SELECT worker, kind, message, code, instance_id FROM crash_problems ORDER BY id')).map((r) => ({
        worker: text(r.worker),
        kind: text(r.kind),
        message: text(r.message),
        code: text(r.code),
        instanceId: r.instance_id === null ? null : text(r.instance_id),
      })),
    }),
    close: () => sql.close(),
  };
}
