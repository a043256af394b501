import { Table, type DataSource } from 'typeorm';
import { columnTypes, Dialect, driverKindOf, quoteIdent, schemaOf, TABLES } from './dialect';
import { sagaflowMigrations, type SagaflowMigrationClass } from './migrations';

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
 */
export async function runSagaflowMigrations(dataSource: DataSource, options: RunMigrationsOptions = {}): Promise<string[]> {
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
