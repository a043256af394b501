/**
 * The options of {@link TypeormStore.sqlite} and {@link TypeormStore.postgres}, and their checks when a store is
 * built (a bad one is a `BAD_OPTION`).
 */
import * as path from 'node:path';
import type { DataSource } from 'typeorm';
import { DefinitionError } from '../../errors/definition-error';
import { quote } from '../../errors/serialized-error';
import { checkBoolean, checkOptions, optionKeys } from '../../input/known-keys';
import type { Logger } from '../../core/logger';
import type { PgListenOptions } from './pg-listener';

/** Options of {@link TypeormStore.sqlite}. */
export interface SqliteStoreOptions {
  /**
   * The database file (its directory is created). `':memory:'` keeps everything in memory (one connection).
   * @default `.sagaflow/sagaflow.db` in the working directory
   */
  readonly file?: string;
  /**
   * SQLite's `synchronous` setting (the journal is always WAL). `FULL` syncs the WAL to disk at every commit:
   * a committed transition survives a power cut. `NORMAL` syncs only at checkpoints: a committed transition
   * survives the process being killed, but the last commits before a power cut or OS crash may be lost (the
   * file stays consistent). Group commit makes `FULL` cost one sync per batch, not per write.
   * @default 'FULL'
   */
  readonly synchronous?: 'FULL' | 'NORMAL';
  /** The most writes one transaction carries. `1` turns group commit off. @default 500 */
  readonly maxBatch?: number;
  /** How long a write waits for another process holding the database's write lock. @default 5000 */
  readonly busyTimeoutMs?: number;
  /**
   * Run pending migrations on {@link TypeormStore.init}, recorded in `sagaflow_migrations`. With `false` the store
   * runs none and {@link TypeormStore.init} fails with `MIGRATIONS_PENDING` when some never ran (see
   * {@link PostgresCommonOptions.runMigrations}).
   * @default true
   */
  readonly runMigrations?: boolean;
  /** TypeORM query logging. @default false */
  readonly logging?: boolean;
  /**
   * Open the file read-only (for tools such as the `sagaflow` CLI): it must exist (a missing file is never
   * created: `NO_DATABASE`), no migration runs, and its schema must be the one this sagaflow knows
   * (`NOT_SAGAFLOW_DATABASE`, `SCHEMA_OUTDATED`, `SCHEMA_TOO_NEW`). Writes fail.
   * @default false
   */
  readonly readOnly?: boolean;
}

interface PostgresCommonOptions {
  /** The schema of the sagaflow tables (created by the migrations when missing). @default the data source's */
  readonly schema?: string;
  /**
   * Run pending migrations on {@link TypeormStore.init}, recorded in `sagaflow_migrations`. Each migration is
   * recorded in one table only: pass `false` when the application runs them itself — `sagaflowMigrations` in its
   * data source's `migrations`, run by the TypeORM CLI and recorded in its own migrations table. The store then
   * runs none, and {@link TypeormStore.init} fails with `MIGRATIONS_PENDING` when some were recorded nowhere.
   * A data source that lists them with `runMigrations` left on is refused (`BAD_OPTION`).
   * @default true
   */
  readonly runMigrations?: boolean;
  /**
   * Wake workers with `LISTEN/NOTIFY` when an inbox delivery for one of their instances is stored: each store
   * with an inbox listener (every runtime started on it) keeps one extra connection that LISTENs, reconnecting
   * with backoff when it drops. `false` leaves waking to the runtime's poll (e.g. behind a transaction-pooling
   * proxy such as PgBouncer, where LISTEN does not work).
   * @default true
   */
  readonly notifications?: boolean | PgListenOptions;
  /** Where the store reports problems it survives (a dropped LISTEN connection). @default the console (warnings) */
  readonly logger?: Pick<Logger, 'warn'>;
  /**
   * Group commit: the most writes (transitions of any instances, lease and inbox writes) one transaction carries.
   * Writes queued while the write connections are busy share the next transaction and its one commit; each is
   * still checked against its own row's version, and a write that fails fails alone. `1` turns group commit off.
   * @default 100
   */
  readonly maxBatch?: number;
  /**
   * How many pooled connections write at once, each committing one batch at a time; the rest of the pool reads.
   * @default half the pool (5 of the default 10), at least 1
   */
  readonly writeConnections?: number;
}

/** {@link TypeormStore.postgres} with a connection URL: the store owns its data source and pool. */
export interface PostgresUrlOptions extends PostgresCommonOptions {
  /** e.g. `postgres://user:password@host:5432/db`. */
  readonly url: string;
  /** Pooled connections. @default 10 */
  readonly poolSize?: number;
  /** TypeORM query logging. @default false */
  readonly logging?: boolean;
}

/** {@link TypeormStore.postgres} on the application's own data source, which `close()` leaves open. */
export interface PostgresDataSourceOptions extends PostgresCommonOptions {
  /** A `postgres` TypeORM data source (initialised by the store when it is not yet). */
  readonly dataSource: DataSource;
}

/** Options of {@link TypeormStore.postgres}. */
export type PostgresStoreOptions = PostgresUrlOptions | PostgresDataSourceOptions;

const SQLITE_KEYS = optionKeys<SqliteStoreOptions>()(['file', 'synchronous', 'maxBatch', 'busyTimeoutMs', 'runMigrations', 'logging', 'readOnly']);
const POSTGRES_URL_KEYS = optionKeys<PostgresUrlOptions>()(['url', 'poolSize', 'logging', 'schema', 'runMigrations', 'notifications', 'logger', 'maxBatch', 'writeConnections']);
const POSTGRES_DATA_SOURCE_KEYS = optionKeys<PostgresDataSourceOptions>()(['dataSource', 'schema', 'runMigrations', 'notifications', 'logger', 'maxBatch', 'writeConnections']);

/** A whole number within bounds, when given. @throws DefinitionError `BAD_OPTION` */
function checkCount(value: unknown, field: string, where: string, min: number): void {
  if (value !== undefined && (typeof value !== 'number' || !Number.isInteger(value) || value < min)) {
    throw new DefinitionError('BAD_OPTION', `${where}: ${field} must be a whole number of at least ${min}, got ${quote(value)}`, { where, field });
  }
}

/** @throws DefinitionError `BAD_OPTION` */
export function checkSqliteOptions(options: SqliteStoreOptions): void {
  const where = 'TypeormStore.sqlite';
  checkOptions(options, SQLITE_KEYS, where);
  if (options.file !== undefined && (typeof options.file !== 'string' || options.file.length === 0)) {
    throw new DefinitionError('BAD_OPTION', `${where}: file must be a path (or ':memory:'), got ${quote(options.file)}`, { where, field: 'file' });
  }
  if (options.synchronous !== undefined && options.synchronous !== 'FULL' && options.synchronous !== 'NORMAL') {
    throw new DefinitionError('BAD_OPTION', `${where}: synchronous must be 'FULL' or 'NORMAL', got ${quote(options.synchronous)}`, { where, field: 'synchronous' });
  }
  checkCount(options.maxBatch, 'maxBatch', where, 1);
  checkCount(options.busyTimeoutMs, 'busyTimeoutMs', where, 0);
  checkBoolean(options.runMigrations, 'runMigrations', where);
  checkBoolean(options.logging, 'logging', where);
  checkBoolean(options.readOnly, 'readOnly', where);
  if (options.readOnly === true && (options.runMigrations === true || options.file === ':memory:')) {
    throw new DefinitionError('BAD_OPTION', `${where}: a readOnly store runs no migrations and needs a file`, { where, field: 'readOnly' });
  }
}

/** @throws DefinitionError `BAD_OPTION` */
export function checkPostgresOptions(options: PostgresStoreOptions): void {
  const where = 'TypeormStore.postgres';
  if (typeof options !== 'object' || options === null) throw new DefinitionError('BAD_OPTION', `${where} needs { url } or { dataSource }, got ${quote(options)}`, { where });
  checkOptions(options, 'dataSource' in options ? POSTGRES_DATA_SOURCE_KEYS : POSTGRES_URL_KEYS, where);
  if ('poolSize' in options) checkCount(options.poolSize, 'poolSize', where, 1);
  checkCount(options.maxBatch, 'maxBatch', where, 1);
  checkCount(options.writeConnections, 'writeConnections', where, 1);
  if ('logging' in options) checkBoolean(options.logging, 'logging', where);
  checkBoolean(options.runMigrations, 'runMigrations', where);
  if (options.schema !== undefined && (typeof options.schema !== 'string' || options.schema.length === 0)) {
    throw new DefinitionError('BAD_OPTION', `${where}: schema must be a schema name, got ${quote(options.schema)}`, { where, field: 'schema' });
  }
  const n = options.notifications;
  if (n !== undefined && typeof n !== 'boolean' && (typeof n !== 'object' || n === null)) {
    throw new DefinitionError('BAD_OPTION', `${where}: notifications must be true, false or LISTEN options, got ${quote(n)}`, { where, field: 'notifications' });
  }
}

/** How many connections of a pool of `poolSize` write at once: `writeConnections`, or half the pool (at least 1). */
export function writeLanes(options: PostgresStoreOptions, poolSize: number): number {
  return options.writeConnections ?? Math.max(1, Math.floor(poolSize / 2));
}

/** The default embedded database: `.sagaflow/sagaflow.db` in the working directory. */
export function defaultSqliteFile(): string {
  return path.resolve(process.cwd(), '.sagaflow', 'sagaflow.db');
}

/** The `notifications` option as the store keeps it: LISTEN options, or false. */
export function notificationsOption(option: boolean | PgListenOptions | undefined): false | PgListenOptions {
  if (option === false) return false;
  return option === true || option === undefined ? {} : option;
}
