import { startedCluster } from './pg-global-setup';
import { PG_URL_ENV } from './postgres';

/** Jest global teardown: stops the cluster the global setup started and removes its files. */
export default function pgGlobalTeardown(): void {
  const cluster = startedCluster();
  if (cluster === undefined) return;
  cluster.stop();
  delete process.env[PG_URL_ENV];
}
