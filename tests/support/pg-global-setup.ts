import type { Config } from '@jest/types';
import { PG_URL_ENV, startCluster, type PgCluster } from './postgres';
import { runUses } from './test-services';

const GLOBAL_KEY = '__sagaflowPgCluster';

/**
 * Jest global setup: starts a throwaway PostgreSQL cluster (tests/support/postgres.ts) and exposes its URL to
 * the test workers as SAGAFLOW_TEST_PG_URL — unless that is set already (a server you provide), or no selected
 * test file uses PostgreSQL.
 */
export default async function pgGlobalSetup(globalConfig: Config.GlobalConfig, projectConfig: Config.ProjectConfig): Promise<void> {
  if (process.env[PG_URL_ENV] !== undefined && process.env[PG_URL_ENV] !== '') return;
  if (!runUses(globalConfig, projectConfig.rootDir, 'support/postgres')) return;
  const cluster = await startCluster();
  (globalThis as Record<string, unknown>)[GLOBAL_KEY] = cluster;
  process.env[PG_URL_ENV] = cluster.url;
  // Should jest die before its global teardown runs, still stop the server and remove its files.
  process.once('exit', () => cluster.stop());
}

export function startedCluster(): PgCluster | undefined {
  return (globalThis as Record<string, unknown>)[GLOBAL_KEY] as PgCluster | undefined;
}
