import type { Config } from '@jest/types';
import pgGlobalSetup from './pg-global-setup';
import { provisionTestServices } from './test-services';

/**
 * Jest global setup: installs the test services a fresh machine lacks (scripts/setup-test-services.sh), then
 * starts the throwaway PostgreSQL cluster (tests/support/pg-global-setup.ts). `npm test` needs nothing done by hand.
 */
export default async function globalSetup(globalConfig: Config.GlobalConfig, projectConfig: Config.ProjectConfig): Promise<void> {
  provisionTestServices(globalConfig, projectConfig.rootDir);
  await pgGlobalSetup(globalConfig, projectConfig);
}
