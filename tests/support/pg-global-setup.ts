import { readdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import type { Config } from '@jest/types';
import { PG_URL_ENV, startCluster, type PgCluster } from './postgres';

const GLOBAL_KEY = '__sagaflowPgCluster';

/** Test files that use PostgreSQL: the ones that import this support module. */
function postgresTestFiles(rootDir: string): string[] {
  const dir = path.join(rootDir, 'tests');
  return readdirSync(dir)
    .filter((f) => f.endsWith('.test.ts'))
    .map((f) => path.join(dir, f))
    .filter((f) => readFileSync(f, 'utf8').includes('support/postgres'));
}

/** Whether this jest run selects a test file that needs PostgreSQL (when unsure: yes). */
function runNeedsPostgres(globalConfig: Config.GlobalConfig, rootDir: string): boolean {
  try {
    if (!globalConfig.testPathPatterns.isSet()) return true;
    const executor = globalConfig.testPathPatterns.toExecutor({ rootDir });
    return postgresTestFiles(rootDir).some((f) => executor.isMatch(f));
  } catch {
    return true;
  }
}

/**
 * Jest global setup: starts a throwaway PostgreSQL cluster (tests/support/postgres.ts) and exposes its URL to
 * the test workers as SAGAFLOW_TEST_PG_URL — unless that is set already (a server you provide), or no selected
 * test file uses PostgreSQL.
 */
export default async function pgGlobalSetup(globalConfig: Config.GlobalConfig, projectConfig: Config.ProjectConfig): Promise<void> {
  if (process.env[PG_URL_ENV] !== undefined && process.env[PG_URL_ENV] !== '') return;
  if (!runNeedsPostgres(globalConfig, projectConfig.rootDir)) return;
  const cluster = await startCluster();
  (globalThis as Record<string, unknown>)[GLOBAL_KEY] = cluster;
  process.env[PG_URL_ENV] = cluster.url;
  // Should jest die before its global teardown runs, still stop the server and remove its files.
  process.once('exit', () => cluster.stop());
}

export function startedCluster(): PgCluster | undefined {
  return (globalThis as Record<string, unknown>)[GLOBAL_KEY] as PgCluster | undefined;
}
