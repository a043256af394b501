/**
 * Opening the database an application's sagaflow store uses, for the `sagaflow` CLI and the inspector: never
 * migrating it, never creating a file, and telling what is wrong with a typed code.
 */
import * as path from 'node:path';
import { OperatingError } from '../errors/operating-errors';
import { TypeormStore } from '../store/typeorm/typeorm-store';
import { openChecked } from '../store/typeorm/schema-check';

/** Where the database is: an SQLite file or a PostgreSQL URL. */
export interface DatabaseLocation {
  /** SQLite file. @default `.sagaflow/sagaflow.db` in `cwd` */
  readonly db?: string;
  /** PostgreSQL URL. @default the environment's `SAGAFLOW_DB_URL` */
  readonly url?: string;
  /** PostgreSQL schema of the sagaflow tables. */
  readonly schema?: string;
}

/** The default SQLite file of the CLI, relative to the working directory. */
export const DEFAULT_DB = path.join('.sagaflow', 'sagaflow.db');

/** A human name of the database: the file, or the URL without its password. */
export function databaseName(location: DatabaseLocation, env: Readonly<Record<string, string | undefined>>, cwd: string): string {
  const url = location.url ?? env.SAGAFLOW_DB_URL;
  if (url !== undefined && url !== '') {
    try {
      const u = new URL(url);
      if (u.password !== '') u.password = '***';
      return u.toString();
    } catch {
      return url;
    }
  }
  return path.resolve(cwd, location.db ?? DEFAULT_DB);
}

/**
 * Opens the store at `location`: `read` opens SQLite read-only; `write` opens it for writing, still without
 * migrating. Either way the schema must be the one this sagaflow knows.
 * @throws OperatingError `BAD_ARGUMENT`, `NO_DATABASE`, `NOT_SAGAFLOW_DATABASE`, `DATABASE_UNREACHABLE`, `SCHEMA_OUTDATED`, `SCHEMA_TOO_NEW`
 */
export async function openDatabase(location: DatabaseLocation, mode: 'read' | 'write', env: Readonly<Record<string, string | undefined>>, cwd: string): Promise<TypeormStore> {
  const url = location.url ?? (env.SAGAFLOW_DB_URL === '' ? undefined : env.SAGAFLOW_DB_URL);
  const where = 'sagaflow';
  if (url !== undefined) {
    if (location.db !== undefined && location.url !== undefined) throw new OperatingError('BAD_ARGUMENT', 'give either --db (an SQLite file) or --url (PostgreSQL), not both', { where });
    if (!/^postgres(ql)?:\/\//.test(url)) throw new OperatingError('BAD_ARGUMENT', `--url must be a postgres:// URL, got ${JSON.stringify(url.slice(0, 80))}`, { where });
    const store = TypeormStore.postgres({ url, poolSize: 2, runMigrations: false, notifications: false, ...(location.schema === undefined ? {} : { schema: location.schema }) });
    await openChecked(store.dataSource, undefined, where, location.schema);
    await store.init();
    return store;
  }
  if (location.schema !== undefined) throw new OperatingError('BAD_ARGUMENT', '--schema applies to PostgreSQL (--url) only', { where });
  const file = path.resolve(cwd, location.db ?? DEFAULT_DB);
  if (mode === 'read') {
    const store = TypeormStore.sqlite({ file, readOnly: true });
    await store.init();
    return store;
  }
  const store = TypeormStore.sqlite({ file, runMigrations: false });
  // The file is checked before the connection opens (which would create it).
  await openChecked(store.dataSource, file, where, undefined);
  await store.init();
  return store;
}
