import { Table, type DataSource } from 'typeorm';
import { DefinitionError } from '../../errors/definition-error';
import { SagaflowError } from '../../errors/sagaflow-error';
import { columnTypes, Dialect, driverKindOf, quoteIdent, schemaOf, TABLES } from './dialect';
import { sagaflowMigrations, type SagaflowMigrationClass } from './migrations';

/**
 * The store runs with `runMigrations: false` and some sagaflow migrations were never run: they are recorded
 * neither in the application's migrations table nor in `sagaflow_migrations`.
 */
export class MigrationsPendingError extends SagaflowError {
  /** The names of the migrations still to run, oldest first. */
  readonly pending: readonly string[];
  constructor(pending: readonly string[], table: string) {
    super(
      'MIGRATIONS_PENDING',
      `the sagaflow schema is not up to date: ${pending.join(', ')} ${pending.length === 1 ? 'has' : 'have'} not run. The store was made with ` +
        `runMigrations: false, so it runs none itself: run them with your migrations (sagaflowMigrations in your data source's ` +
        `migrations, then \`npx typeorm migration:run -d <your data source>\`, recorded in ${table}), or drop runMigrations: false`,
      { pending, table },
    );
    this.pending = pending;
  }
}

/** The migrations table of a data source's own migrations (TypeORM's `migrationsTableName`, default `migrations`). */
function applicationMigrationsTable(dataSource: DataSource): string {
  const name = (dataSource.options as { migrationsTableName?: unknown }).migrationsTableName;
  return typeof name === 'string' && name.length > 0 ? name : 'migrations';
}

/** The sagaflow migration classes a data source lists in its own `migrations` option (classes; globs are not read). */
function listedByApplication(dataSource: DataSource): string[] {
  const listed = (dataSource.options as { migrations?: unknown }).migrations;
  const entries: unknown[] = Array.isArray(listed) ? listed : typeof listed === 'object' && listed !== null ? Object.values(listed) : [];
  const ours = new Set(sagaflowMigrations.map((M) => M.name));
  return entries.flatMap((m) => (typeof m === 'function' && ours.has(m.name) ? [m.name] : []));
}

/**
 * Refuses to run sagaflow's migrations itself on a data source that lists them in its own `migrations`: TypeORM
 * records those in the application's migrations table, and sagaflow would record them again in
 * `sagaflow_migrations`. One of the two must own them.
 * @throws DefinitionError `BAD_OPTION`
 */
export function checkMigrationsOwner(dataSource: DataSource, where: string): void {
  const listed = listedByApplication(dataSource);
  if (listed.length === 0) return;
  throw new DefinitionError(
    'BAD_OPTION',
    `${where}: the data source lists sagaflow's migrations (${listed.join(', ')}) in its own migrations, which TypeORM records in ` +
      `its "${applicationMigrationsTable(dataSource)}" table; sagaflow would run and record them again in ${TABLES.migrations}. ` +
      'Pass runMigrations: false to leave them to your migrations, or take them out of the data source\'s migrations',
    { where, field: 'runMigrations' },
  );
}

/** Options of {@link runSagaflowMigrations}. */
export interface RunMigrationsOptions {
  /** PostgreSQL schema of the sagaflow tables (created when missing). Default: the data source's `schema`. */
  readonly schema?: string;
  /** The migrations to run. Default: {@link sagaflowMigrations}. */
  readonly migrations?: readonly SagaflowMigrationClass[];
}

function timestampOf(name: string): number {
  const match = /(\d{13})$/.exec(name);
  return match === null ? 0 : Number(match[1]);
}

/**
 * Runs the pending sagaflow migrations on `dataSource` in one transaction and resolves the names it ran.
 * Executed migrations are recorded in `sagaflow_migrations` (TypeORM's layout), apart from any migrations
 * table the application keeps. Several processes may call it at once: PostgreSQL serialises them with an
 * advisory lock per schema, SQLite with `BEGIN IMMEDIATE`.
 *
 * A data source that lists sagaflow's migrations in its own `migrations` option is refused (`BAD_OPTION`): its
 * application runs them with the TypeORM CLI, and they would be recorded twice.
 *
 * @example
 * await runSagaflowMigrations(dataSource); // e.g. ['SagaflowInitial1763700000000', …] the first time, [] after
 */
export async function runSagaflowMigrations(dataSource: DataSource, options: RunMigrationsOptions = {}): Promise<string[]> {
  checkMigrationsOwner(dataSource, 'runSagaflowMigrations');
  const kind = driverKindOf(dataSource);
  const schema = kind === 'postgres' ? (options.schema ?? schemaOf(dataSource)) : undefined;
  const dialect = new Dialect(kind, schema);
  const runner = dataSource.createQueryRunner();
  const exec = dialect.exec(runner);
  const ran: string[] = [];
  try {
    await runner.connect();
    if (kind === 'postgres') {
      await exec('BEGIN');
      await exec('SELECT pg_advisory_xact_lock(hashtext(?))', [`sagaflow-migrations:${schema ?? ''}`]);
      if (schema !== undefined) await exec(`CREATE SCHEMA IF NOT EXISTS ${quoteIdent(schema)}`);
    } else {
      await exec('BEGIN IMMEDIATE');
    }
    try {
      const c = columnTypes(kind);
      await runner.createTable(
        new Table({
          name: TABLES.migrations,
          ...(schema === undefined ? {} : { schema }),
          columns: [
            { name: 'id', type: c.serial, isPrimary: true, isGenerated: true, generationStrategy: 'increment' },
            { name: 'timestamp', type: c.bigint },
            { name: 'name', type: c.string },
          ],
        }),
        true,
      );
      const done = new Set((await exec(`SELECT name FROM ${dialect.t('migrations')}`)).rows.map((r) => String(r.name)));
      for (const Migration of options.migrations ?? sagaflowMigrations) {
        const migration = new Migration(schema);
        if (done.has(migration.name)) continue;
        await migration.up(runner);
        await exec(`INSERT INTO ${dialect.t('migrations')} ("timestamp", "name") VALUES (?, ?)`, [timestampOf(migration.name), migration.name]);
        ran.push(migration.name);
      }
      await exec('COMMIT');
    } catch (error) {
      await exec('ROLLBACK').catch(() => undefined);
      throw error;
    }
  } finally {
    if (kind === 'postgres') await runner.release();
  }
  return ran;
}

/**
 * The sagaflow migrations recorded nowhere: neither in `sagaflow_migrations` (run by a store or by
 * {@link runSagaflowMigrations}) nor in the application's own migrations table (run by the TypeORM CLI).
 * A store with `runMigrations: false` checks this when it opens.
 * @throws MigrationsPendingError when some have not run
 */
export async function checkSagaflowMigrationsRan(dataSource: DataSource, schema: string | undefined): Promise<void> {
  const done = await recordedMigrations(dataSource, schema);
  const pending = sagaflowMigrations.map((M) => M.name).filter((name) => !done.has(name));
  if (pending.length > 0) throw new MigrationsPendingError(pending, `"${applicationMigrationsTable(dataSource)}"`);
}

/**
 * The names of the migrations recorded in `sagaflow_migrations` and in the application's own migrations table
 * (whichever exist) of an initialised data source.
 */
export async function recordedMigrations(dataSource: DataSource, schema: string | undefined): Promise<Set<string>> {
  const kind = driverKindOf(dataSource);
  const dialect = new Dialect(kind, kind === 'postgres' ? schema : undefined);
  const appTable = applicationMigrationsTable(dataSource);
  const appSchema = kind === 'postgres' ? schemaOf(dataSource) : undefined;
  const qualifiedApp = appSchema === undefined ? quoteIdent(appTable) : `${quoteIdent(appSchema)}.${quoteIdent(appTable)}`;
  const runner = dataSource.createQueryRunner();
  const exec = dialect.exec(runner);
  const done = new Set<string>();
  try {
    await runner.connect();
    const tables: [string, string][] = [
      [schema === undefined ? TABLES.migrations : `${schema}.${TABLES.migrations}`, dialect.t('migrations')],
      [appSchema === undefined ? appTable : `${appSchema}.${appTable}`, qualifiedApp],
    ];
    for (const [name, qualified] of tables) {
      if (!(await runner.hasTable(name))) continue;
      for (const row of (await exec(`SELECT name FROM ${qualified}`)).rows) done.add(String(row.name));
    }
  } finally {
    if (kind === 'postgres') await runner.release();
  }
  return done;
}
