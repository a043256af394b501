/**
 * The anchor of P3: the bare better-sqlite3 writes that the durable sagas of ./sagaflow-durable need, with no
 * engine — the same number of transactions and rows, in transactions the same size as sagaflow's group commits,
 * on the same settings (WAL journal, `synchronous = FULL`, a file in the same directory).
 *
 * Per saga: one INSERT of the instance row, then one UPDATE of it (record JSON, status, version) per further
 * write sagaflow made, and the history rows sagaflow wrote, spread over those writes. The writes of
 * `concurrency` sagas are interleaved as they are in sagaflow (each saga's first write, then each one's second,
 * …) and committed `writesPerTransaction` at a time (sagaflow's, measured over the window just run). The record
 * JSON is a finished saga's as sagaflow stored it. Instance ids are made as sagaflow makes them (time-ordered UUIDs),
 * so both place rows in their indexes alike.
 */
import { timeOrderedId } from '../../../src/core/time-ordered-id';
import type { SagaWrites } from './sagaflow-durable';

export const BARE_SQLITE = 'bare-sqlite';

/** The slice of better-sqlite3's API used here (the package ships no types; the library loads it the same way). */
interface Statement {
  run(...params: unknown[]): unknown;
}
interface Database {
  pragma(source: string): unknown;
  exec(source: string): unknown;
  prepare(source: string): Statement;
  transaction(fn: (from: number, to: number) => void): (from: number, to: number) => void;
  close(): void;
}
// eslint-disable-next-line @typescript-eslint/no-require-imports
const BetterSqlite3 = require('better-sqlite3') as new (file: string) => Database;

const SCHEMA = `
  CREATE TABLE instances (
    id TEXT PRIMARY KEY, workflow TEXT NOT NULL, status TEXT NOT NULL, version INTEGER NOT NULL, record TEXT NOT NULL,
    created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL);
  CREATE INDEX instances_status ON instances (status);
  CREATE TABLE history (
    id INTEGER PRIMARY KEY AUTOINCREMENT, instance_id TEXT NOT NULL, version INTEGER NOT NULL, seq INTEGER NOT NULL,
    at INTEGER NOT NULL, kind TEXT NOT NULL, step TEXT, direction TEXT NOT NULL, outcome TEXT);
  CREATE INDEX history_instance ON history (instance_id, version, seq);
`;

/** One write of one saga: its instance row (insert or update) and its share of the history rows. */
interface Write {
  readonly id: string;
  readonly version: number;
  readonly history: number;
}

/** Bare better-sqlite3 writes shaped like sagaflow's, on a file of its own. */
export class BareSqlite {
  private readonly db: Database;
  private readonly insert: Statement;
  private readonly update: Statement;
  private readonly addHistory: Statement;
  private readonly commit: (from: number, to: number) => void;
  private writes: Write[] = [];

  constructor(
    file: string,
    private readonly shape: SagaWrites,
  ) {
    this.db = new BetterSqlite3(file);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = FULL');
    this.db.exec(SCHEMA);
    this.insert = this.db.prepare(
      'INSERT INTO instances (id, workflow, status, version, record, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)',
    );
    this.update = this.db.prepare('UPDATE instances SET status = ?, version = ?, record = ?, updated_at = ? WHERE id = ? AND version = ?');
    this.addHistory = this.db.prepare(
      'INSERT INTO history (instance_id, version, seq, at, kind, step, direction, outcome) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
    );
    this.commit = this.db.transaction((from: number, to: number) => {
      const now = Date.now();
      for (let i = from; i < to; i++) {
        const w = this.writes[i] as Write;
        if (w.version === 1) this.insert.run(w.id, 'order-happy', 'running', 1, this.shape.recordJson, now, now);
        else this.update.run('running', w.version, this.shape.recordJson, now, w.id, w.version - 1);
        for (let seq = 0; seq < w.history; seq++) this.addHistory.run(w.id, w.version, seq, now, 'step', 'charge', 'up', 'ok');
      }
    });
  }

  /** Writes what `count` sagas with `concurrency` in flight wrote in sagaflow, `writesPerTransaction` per commit. */
  batch(concurrency: number, count: number, writesPerTransaction: number): void {
    const perSaga = Math.max(1, Math.round(this.shape.writesPerSaga));
    const history = this.shape.historyPerSaga;
    this.writes = [];
    for (let first = 0; first < count; first += concurrency) {
      const ids = Array.from({ length: Math.min(concurrency, count - first) }, () => timeOrderedId());
      for (let k = 0; k < perSaga; k++) {
        // Write k of a saga carries history rows floor((k+1)·H/W) − floor(k·H/W): H in all, spread evenly.
        const rows = Math.floor(((k + 1) * history) / perSaga) - Math.floor((k * history) / perSaga);
        for (const id of ids) this.writes.push({ id, version: k + 1, history: rows });
      }
    }
    const size = Math.max(1, writesPerTransaction);
    for (let t = 0; ; t++) {
      const from = Math.floor(t * size);
      if (from >= this.writes.length) break;
      this.commit(from, Math.min(this.writes.length, Math.floor((t + 1) * size)));
    }
  }

  close(): void {
    this.db.close();
  }
}
