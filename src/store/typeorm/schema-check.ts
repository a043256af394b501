/**
 * Opening a database that sagaflow did not necessarily write, for tools that never migrate it (the `sagaflow` CLI,
 * the inspector, a read-only store): each way it can be wrong has its own code.
 */
import { existsSync, statSync } from 'node:fs';
import type { DataSource } from 'typeorm';
import { OperatingError } from '../../errors/operating-errors';
import { SagaflowError } from '../../errors/sagaflow-error';
import { sagaflowMigrations } from './migrations';
import { recordedMigrations } from './migrate';

/**
 * Checks that `dataSource` (initialised) holds the sagaflow schema this version knows: every sagaflow migration
 * recorded (in `sagaflow_migrations` or the application's migrations table), none unknown.
 * @throws OperatingError `NOT_SAGAFLOW_DATABASE` (no sagaflow migration recorded), `SCHEMA_OUTDATED` (some not run
 * yet: start the application, whose store runs them), `SCHEMA_TOO_NEW` (written by a newer sagaflow)
 * @example
 * await dataSource.initialize();
 * await checkSagaflowSchema(dataSource, 'my-report');
 */
export async function checkSagaflowSchema(dataSource: DataSource, where: string, schema?: string): Promise<void> {
  const done = await recordedMigrations(dataSource, schema);
  const known = sagaflowMigrations.map((M) => M.name);
  const ours = [...done].filter((name) => name.startsWith('Sagaflow'));
  if (ours.length === 0) {
    throw new OperatingError('NOT_SAGAFLOW_DATABASE', `${where}: the database has no sagaflow tables${schema === undefined ? '' : ` in schema "${schema}"`}; point at the database (and schema) your application's sagaflow store uses`, { where });
  }
  const newer = ours.filter((name) => !known.includes(name));
  if (newer.length > 0) {
    throw new OperatingError('SCHEMA_TOO_NEW', `${where}: the sagaflow schema was written by a newer sagaflow (it has ${newer.join(', ')}, which this version does not know); use the sagaflow version your application runs`, {
      where,
      unknown: newer,
    });
  }
  const pending = known.filter((name) => !done.has(name));
  if (pending.length > 0) {
    throw new OperatingError('SCHEMA_OUTDATED', `${where}: the sagaflow schema is older than this sagaflow (${pending.join(', ')} not run); start your application (its store migrates) or run the migrations, then try again`, {
      where,
      pending,
    });
  }
}

/**
 * Initialises `dataSource` (an SQLite `file` must exist first: it is never created) and checks its schema.
 * @throws OperatingError `NO_DATABASE`, `DATABASE_UNREACHABLE`, and those of {@link checkSagaflowSchema}
 */
export async function openChecked(dataSource: DataSource, file: string | undefined, where: string, schema: string | undefined): Promise<void> {
  if (file !== undefined && (!existsSync(file) || !statSync(file).isFile())) {
    throw new OperatingError('NO_DATABASE', `${where}: there is no database file at ${file}; give the file your application uses (--db), or start the application once to create it`, { where, file });
  }
  try {
    if (!dataSource.isInitialized) await dataSource.initialize();
    await checkSagaflowSchema(dataSource, where, schema);
  } catch (error) {
    if (dataSource.isInitialized) await dataSource.destroy().catch(() => undefined);
    if (error instanceof SagaflowError) throw error;
    const message = error instanceof Error ? error.message : String(error);
    if (/not a database|file is encrypted/i.test(message)) {
      throw new OperatingError('NOT_SAGAFLOW_DATABASE', `${where}: ${file ?? 'the database'} is not an SQLite database (${message})`, { where });
    }
    throw new OperatingError('DATABASE_UNREACHABLE', `${where}: the database could not be opened: ${message}`, { where });
  }
}
