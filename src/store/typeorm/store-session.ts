/**
 * The connections of a TypeormStore and how each of its operations runs on them (SQLite's reader and group-commit
 * writer, or PostgreSQL's pool), shared by the parts that write, read, keep events and coordinate workers.
 */
import type { DataSource } from 'typeorm';
import { SagaflowError } from '../../errors/sagaflow-error';
import type { Logger } from '../../core/logger';
import { Dialect, type DriverKind, type Exec } from './dialect';
import type { DatabaseFile } from './database-file';
import { checkSagaflowMigrationsRan, runSagaflowMigrations } from './migrate';
import type { PgListenOptions } from './pg-listener';
import { WriteQueue, type WriteStats } from './write-queue';
import { openChecked } from './schema-check';

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
  /** PostgreSQL: LISTEN/NOTIFY settings, or false. */
  readonly notifications?: false | PgListenOptions;
  readonly logger?: Pick<Logger, 'warn'>;
  /** SQLite opened read-only: the file (which must exist); its schema is checked, never migrated. */
  readonly readOnly?: string;
}

/** How an operation runs: a read, one write, or several statements in one transaction. */
export type Mode = 'read' | 'write' | 'tx';

/** A store's connections, opened on first use, and the operations in progress on them. */
export class StoreSession {
  readonly dialect: Dialect;
  private ready: Promise<void> | null = null;
  private queue: WriteQueue | null = null;
  private closing: Promise<void> | null = null;
  private readonly inflight = new Set<Promise<unknown>>();
  private readonly pgStats: WriteStats = { transactions: 0, writes: 0, largestBatch: 0 };

  constructor(readonly setup: Setup) {
    this.dialect = new Dialect(setup.kind, setup.kind === 'postgres' ? setup.schema : undefined);
  }

  /** True once {@link close} began: the store accepts no more calls. */
  get closed(): boolean {
    return this.closing !== null;
  }

  /** How many transactions committed how many writes. */
  get stats(): WriteStats {
    return { ...(this.queue?.stats ?? this.pgStats) };
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
      this.queue = new WriteQueue(this.dialect.exec(dataSource.createQueryRunner()), 1, () => undefined);
      return;
    }
    if (!dataSource.isInitialized) await dataSource.initialize();
    if (this.setup.runMigrations) await runSagaflowMigrations(dataSource, this.setup.schema === undefined ? {} : { schema: this.setup.schema });
    else await checkSagaflowMigrationsRan(dataSource, this.setup.schema);
    if (this.setup.kind === 'sqlite') {
      const file = this.setup.file;
      file?.remember();
      this.queue = new WriteQueue(this.dialect.exec(dataSource.createQueryRunner()), this.setup.maxBatch, () => file?.check());
      if (reader !== undefined && !reader.isInitialized) await reader.initialize();
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
   * Runs `fn` once the store is open: reads on SQLite's reader connection (or PostgreSQL's pool), writes
   * through SQLite's group-commit queue (or a pooled PostgreSQL connection, in a transaction for `tx`).
   */
  run<T>(action: string, mode: Mode, fn: (x: Exec) => Promise<T>): Promise<T> {
    if (this.closing !== null) return Promise.reject(new StoreClosedError(action));
    const work = this.init().then(() => this.execute(mode, fn));
    this.inflight.add(work);
    const forget = (): void => {
      this.inflight.delete(work);
    };
    work.then(forget, forget);
    return work;
  }

  private async execute<T>(mode: Mode, fn: (x: Exec) => Promise<T>): Promise<T> {
    if (this.setup.kind === 'sqlite') {
      const queue = this.queue as WriteQueue;
      if (mode !== 'read' || this.setup.reader === undefined) return queue.submit(fn);
      // A read from a file deleted or replaced under the store would show what no reopen can find again.
      this.setup.file?.check();
      return fn(this.dialect.exec(this.setup.reader.createQueryRunner()));
    }
    const runner = this.setup.dataSource.createQueryRunner();
    const x = this.dialect.exec(runner);
    try {
      await runner.connect();
      if (mode !== 'read') {
        this.pgStats.transactions += 1;
        this.pgStats.writes += 1;
        this.pgStats.largestBatch = 1;
      }
      if (mode !== 'tx') return await fn(x);
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
