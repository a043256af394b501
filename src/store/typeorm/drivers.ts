import type { Client } from 'pg';
import { MissingDependencyError } from '../../errors/missing-dependency-error';
import { requireDependency } from '../../core/optional-dependency';

/** The part of better-sqlite3's module that the check of its native addon uses. */
type BetterSqlite3 = new (filename: string) => { close(): void };

/** The part of pg's module that sagaflow uses directly (TypeORM uses the rest). */
export interface PgModule {
  readonly Client: typeof Client;
}

let sqliteChecked: BetterSqlite3 | undefined;

/**
 * The better-sqlite3 module, once its native addon was seen to load (by opening and closing an in-memory
 * database). A package that is not installed, or whose addon was never built (installed with `--ignore-scripts`,
 * or by pnpm without approving its build), or was built for another Node.js version, is a
 * {@link MissingDependencyError} naming the command that fixes it.
 */
export function betterSqlite3Driver(): unknown {
  if (sqliteChecked !== undefined) return sqliteChecked;
  const Database = requireDependency<BetterSqlite3>('better-sqlite3', 'the SQLite store (TypeormStore.sqlite(), and the default store of new SagaRuntime())');
  try {
    new Database(':memory:').close();
  } catch (cause) {
    const reason = cause instanceof Error ? cause.message.split('\n')[0] : String(cause);
    throw new MissingDependencyError(
      'better-sqlite3',
      'npm rebuild better-sqlite3',
      `better-sqlite3 is installed but its native addon does not load (${reason}): it was installed without running its ` +
        'build script (npm --ignore-scripts, or pnpm before its build was approved) or for another Node.js version. ' +
        'Run `npm rebuild better-sqlite3` (pnpm: `pnpm approve-builds`, then `pnpm rebuild better-sqlite3`)',
      cause,
    );
  }
  sqliteChecked = Database;
  return Database;
}

/** The pg module (PostgreSQL's client), or a {@link MissingDependencyError} naming `npm install pg`. */
export function pgDriver(neededFor = 'the PostgreSQL store (TypeormStore.postgres())'): PgModule {
  return requireDependency<PgModule>('pg', neededFor);
}
