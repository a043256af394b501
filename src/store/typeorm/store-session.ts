/**
 * The connections of a TypeormStore and how each of its operations runs on them (SQLite's reader and group-commit
 * writer, or PostgreSQL's pool), shared by the parts that write, read, keep events and coordinate workers.
 */
import type { DataSource } from 'typeorm';
import { SagaflowError } from '../../errors/sagaflow-error';
import type { Logger } from '../../core/logger';
import { Dialect, type DriverKind, type Exec, type ExecResult } from './dialect';
import type { DatabaseFile } from './database-file';
import { checkSagaflowMigrationsRan, runSagaflowMigrations } from './migrate';
import type { PgListenOptions } from './pg-listener';
import { WriteQueue, type Lane, type Statement, type WriteStats } from './write-queue';
import { openChecked } from './schema-check';
import { StackMemory } from './stack-rows';

/** What {@link pipeline} needs of a `pg` client: a simple query (several statements, no parameters). */
interface PgClient {
  query(text: string): Promise<PgResult | PgResult[]>;
}

interface PgResult {
  readonly rows: Record<string, unknown>[];
  readonly rowCount: number | null;
}

/** The statements prepared on each connection (session), by their text, and their names. */
const preparedOn = new WeakMap<PgClient, Map<string, string>>();
/** At most this many statements are prepared per connection; others are sent with their values inlined. */
const PREPARED_PER_CONNECTION = 200;
let preparedNames = 0;

/**
 * Sends `BEGIN`, the statements and `COMMIT` as one simple query: one round trip for a whole batch. Each statement's
 * text is prepared once per connection (`PREPARE`, so PostgreSQL parses and plans it once) and run with `EXECUTE`
 * and its values as literals. Answers each statement's result. A failure rolls the transaction back and forgets the
 * connection's prepared statements.
 */
async function pipeline(client: PgClient, dialect: Dialect, statements: readonly Statement<unknown>[]): Promise<ExecResult[]> {
  let names = preparedOn.get(client);
  if (names === undefined) preparedOn.set(client, (names = new Map<string, string>()));
  const fresh = new Map<string, string>();
  const parts = ['BEGIN'];
  const at: number[] = [];
  for (const s of statements) {
    let name = names.get(s.sql) ?? fresh.get(s.sql);
    if (name === undefined && names.size + fresh.size < PREPARED_PER_CONNECTION) {
      name = `sagaflow_s${++preparedNames}`;
      fresh.set(s.sql, name);
      parts.push(`PREPARE ${name} AS ${dialect.sql(s.sql)}`);
    }
    at.push(parts.length);
    parts.push(name === undefined ? Dialect.inline(s.sql, s.params) : `EXECUTE ${name}(${Dialect.literals(s.params)})`);
  }
  parts.push('COMMIT');
  let answer: PgResult | PgResult[];
  try {
    answer = await client.query(parts.join(';\n'));
  } catch (error) {
    names.clear();
    await client.query('ROLLBACK').catch(() => undefined);
    await client.query('DEALLOCATE ALL').catch(() => undefined);
    throw error;
  }
  for (const [sql, name] of fresh) names.set(sql, name);
  const results = Array.isArray(answer) ? answer : [answer];
  if (results.length !== parts.length) throw new Error(`a pipelined batch of ${parts.length} statements answered ${results.length} results`);
  return at.map((i) => {
    const r = results[i] as PgResult;
    return { rows: r.rows, affected: r.rowCount ?? 0 };
  });
}

/** The part of a better-sqlite3 database the store's writer and reader use. */
interface SqliteDatabase {
  prepare(sql: string): SqliteStatement;
}

interface SqliteStatement {
  readonly reader: boolean;
  all(...params: unknown[]): Record<string, unknown>[];
  run(...params: unknown[]): { readonly changes: number };
}

function isSqliteDatabase(db: unknown): db is SqliteDatabase {
  return typeof db === 'object' && db !== null && typeof (db as { prepare?: unknown }).prepare === 'function';
}

/** Prepared statements kept per connection (the store's statements are few; the cache is cleared past this). */
const STATEMENT_CACHE = 500;

/** An {@link Exec} running statements on a better-sqlite3 database synchronously, each prepared once. */
function preparedExec(db: SqliteDatabase): Exec {
  const cache = new Map<string, SqliteStatement>();
  return (sql, params = []) => {
    try {
      let statement = cache.get(sql);
      if (statement === undefined) {
        if (cache.size >= STATEMENT_CACHE) cache.clear();
        statement = db.prepare(sql);
        cache.set(sql, statement);
      }
      // better-sqlite3 binds no booleans.
      const values = params.map((p) => (typeof p === 'boolean' ? (p ? 1 : 0) : p));
      if (statement.reader) return Promise.resolve({ rows: statement.all(...values), affected: 0 });
      return Promise.resolve({ rows: [], affected: statement.run(...values).changes });
    } catch (error) {
      return Promise.reject(error instanceof Error ? error : new Error(String(error)));
    }
  };
}

/** The store was closed; it accepts no more calls. */
export class StoreClosedError extends SagaflowError {
  constructor(action: string) {
    super('STORE_CLOSED', `the store is closed and cannot ${action}; create a new store`);
  }
}

/** How a store is built (by its factories): the database, its connections and settings. */
export interface Setup {
  readonly kind: DriverKind;
  readonly dataSource: DataSource;
  readonly owns: boolean;
  readonly schema: string | undefined;
  readonly runMigrations: boolean;
  /** SQLite: a second connection that reads committed data while the writer's transaction is open. */
  readonly reader?: DataSource;
  /** SQLite on a file: its identity, checked at every commit. */
  readonly file?: DatabaseFile;
  readonly maxBatch: number;
  /** PostgreSQL: how many pooled connections commit batches at once. @default 1 */
  readonly lanes?: number;
  /** PostgreSQL: LISTEN/NOTIFY settings, or false. */
  readonly notifications?: false | PgListenOptions;
  readonly logger?: Pick<Logger, 'warn'>;
  /** SQLite opened read-only: the file (which must exist); its schema is checked, never migrated. */
  readonly readOnly?: string;
}

/**
 * How an operation runs: a read, one write, or several statements in one transaction — both of which share a
 * group commit with other writes — or (`alone`) a write that on PostgreSQL runs in a transaction of its own, outside
 * every batch: writes of instance rows other than a transition's own (leases, claims), which then never hold a row
 * lock while waiting for another and so cannot deadlock with a batch, and bookings under a lock that a batch would
 * hold until all its writes commit (rate-limiter slots).
 */
export type Mode = 'read' | 'write' | 'tx' | 'alone';

/** A store's connections, opened on first use, and the operations in progress on them. */
export class StoreSession {
  readonly dialect: Dialect;
  /** The compensation stacks this store last wrote or read per instance (its writes insert only what was pushed since). */
  readonly stacks = new StackMemory();
  private ready: Promise<void> | null = null;
  private queue: WriteQueue | null = null;
  private closing: Promise<void> | null = null;
  private readonly inflight = new Set<Promise<unknown>>();

  constructor(readonly setup: Setup) {
    this.dialect = new Dialect(setup.kind, setup.kind === 'postgres' ? setup.schema : undefined);
  }

  /** SQLite: how reads run on the reader connection. */
  private readExec: Exec | null = null;

  /**
   * An {@link Exec} on an SQLite data source's connection: its better-sqlite3 database directly, with cached
   * prepared statements (no query runner, no promise per step of it), unless TypeORM's query logging is on.
   */
  private sqliteExec(dataSource: DataSource): Exec {
    const db = (dataSource.driver as { databaseConnection?: unknown }).databaseConnection;
    if (dataSource.options.logging !== false || !isSqliteDatabase(db)) return this.dialect.exec(dataSource.createQueryRunner());
    return preparedExec(db);
  }

  /** True once {@link close} began: the store accepts no more calls. */
  get closed(): boolean {
    return this.closing !== null;
  }

  /** How many transactions committed how many writes. */
  get stats(): WriteStats {
    return { ...(this.queue?.stats ?? { transactions: 0, writes: 0, largestBatch: 0 }) };
  }

  /** Opens the connections and runs pending migrations, once. */
  init(): Promise<void> {
    if (this.closing !== null) return Promise.reject(new StoreClosedError('be initialised'));
    // A failed open (database unreachable, a migration failing) is tried again by the next call.
    this.ready ??= this.open().catch((error: unknown) => {
      this.ready = null;
      throw error;
    });
    return this.ready;
  }

  private async open(): Promise<void> {
    const { dataSource, reader } = this.setup;
    if (this.setup.readOnly !== undefined) {
      await openChecked(dataSource, this.setup.readOnly, 'TypeormStore.sqlite', undefined);
      const reading = { exec: this.dialect.exec(dataSource.createQueryRunner()), release: () => undefined };
      this.queue = new WriteQueue({ connect: () => Promise.resolve(reading), maxBatch: 1 });
      return;
    }
    if (!dataSource.isInitialized) await dataSource.initialize();
    if (this.setup.runMigrations) await runSagaflowMigrations(dataSource, this.setup.schema === undefined ? {} : { schema: this.setup.schema });
    else await checkSagaflowMigrationsRan(dataSource, this.setup.schema);
    const { maxBatch } = this.setup;
    if (this.setup.kind === 'sqlite') {
      const file = this.setup.file;
      file?.remember();
      const writer = { exec: this.sqliteExec(dataSource), release: () => undefined };
      this.queue = new WriteQueue({ connect: () => Promise.resolve(writer), maxBatch, begin: 'BEGIN IMMEDIATE', checkCommitted: () => file?.check() });
      if (reader !== undefined && !reader.isInitialized) await reader.initialize();
      if (reader !== undefined) this.readExec = this.sqliteExec(reader);
    } else {
      // Group commit across instances: each lane takes a pooled connection for one batch (one transaction).
      const connect = async (): Promise<Lane> => {
        const runner = dataSource.createQueryRunner();
        let client: PgClient;
        try {
          client = (await runner.connect()) as PgClient;
        } catch (error) {
          await runner.release().catch(() => undefined);
          throw error;
        }
        return { exec: this.dialect.exec(runner), pipeline: (statements) => pipeline(client, this.dialect, statements), release: () => runner.release() };
      };
      this.queue = new WriteQueue({ connect, maxBatch, lanes: this.setup.lanes ?? 1 });
    }
  }

  /**
   * Runs `stopListening` at once, then waits for the writes in progress and closes the connections the store
   * opened (never the application's). Every later call answers the first one's promise.
   */
  close(stopListening: () => Promise<void>): Promise<void> {
    this.closing ??= (async () => {
      await stopListening();
      await Promise.allSettled([...this.inflight]);
      await this.queue?.idle();
      if (this.ready !== null) await this.ready.catch(() => undefined);
      if (this.setup.owns) {
        for (const ds of [this.setup.reader, this.setup.dataSource]) if (ds?.isInitialized === true) await ds.destroy();
      }
    })();
    return this.closing;
  }

  /**
   * Runs `fn` once the store is open: reads on SQLite's reader connection (or PostgreSQL's pool), writes through
   * the group-commit queue (each write's statements inside the batch's one transaction).
   */
  run<T>(action: string, mode: Mode, fn: (x: Exec) => Promise<T>, statement?: Statement<T>): Promise<T> {
    if (this.closing !== null) return Promise.reject(new StoreClosedError(action));
    const work = this.init().then(() => this.execute(mode, fn, statement));
    this.inflight.add(work);
    const forget = (): void => {
      this.inflight.delete(work);
    };
    work.then(forget, forget);
    return work;
  }

  /**
   * Runs a write that is one statement through group commit; on PostgreSQL a batch of such writes goes in one
   * round trip.
   */
  runStatement<T>(action: string, statement: Statement<T>): Promise<T> {
    return this.run(action, 'write', (x) => x(statement.sql, statement.params).then(statement.read), statement);
  }

  private async execute<T>(mode: Mode, fn: (x: Exec) => Promise<T>, statement?: Statement<T>): Promise<T> {
    const queue = this.queue as WriteQueue;
    // Writes (one statement, or several that must commit together) go through group commit on both databases.
    if (mode === 'write' || mode === 'tx' || (mode === 'alone' && this.setup.kind === 'sqlite')) return queue.submit(fn, statement);
    if (this.setup.kind === 'sqlite') {
      if (this.setup.reader === undefined) return queue.submit(fn);
      // A read from a file deleted or replaced under the store would show what no reopen can find again.
      this.setup.file?.check();
      return fn(this.readExec ?? this.dialect.exec(this.setup.reader.createQueryRunner()));
    }
    const runner = this.setup.dataSource.createQueryRunner();
    try {
      await runner.connect();
      const x = this.dialect.exec(runner);
      if (mode === 'read') return await fn(x);
      // A write of its own: its transaction, on a connection of its own, outside every batch.
      await x('BEGIN');
      try {
        const result = await fn(x);
        await x('COMMIT');
        return result;
      } catch (error) {
        await x('ROLLBACK').catch(() => undefined);
        throw error;
      }
    } finally {
      await runner.release();
    }
  }
}

/** A part of a TypeormStore: runs its statements through the store's one {@link StoreSession}. */
export abstract class StorePart {
  protected readonly dialect: Dialect;
  protected readonly setup: Setup;

  constructor(protected readonly session: StoreSession) {
    this.dialect = session.dialect;
    this.setup = session.setup;
  }

  /** Runs `fn` once the store is open (see {@link StoreSession.run}). */
  protected run<T>(action: string, mode: Mode, fn: (x: Exec) => Promise<T>): Promise<T> {
    return this.session.run(action, mode, fn);
  }
}
