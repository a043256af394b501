import type { MigrationInterface } from 'typeorm';
import { SagaflowInitial1763700000000 } from './1763700000000-sagaflow-initial';
import { SagaflowSchedule1763800000000 } from './1763800000000-sagaflow-schedule';
import { SagaflowAddressedEvents1763850000000 } from './1763850000000-sagaflow-addressed-events';
import { SagaflowVersions1763900000000 } from './1763900000000-sagaflow-versions';
import { SagaflowOperating1764000000000 } from './1764000000000-sagaflow-operating';
import { SagaflowOperatorRequests1764100000000 } from './1764100000000-sagaflow-operator-requests';
import { SagaflowRateSlots1764200000000 } from './1764200000000-sagaflow-rate-slots';
import { SagaflowStack1764300000000 } from './1764300000000-sagaflow-stack';

/** A sagaflow migration class: constructed with the PostgreSQL schema to use (default: the data source's). */
export type SagaflowMigrationClass = new (schema?: string) => MigrationInterface & { readonly name: string };

/**
 * The sagaflow schema's migrations, oldest first: one class per schema version. `TypeormStore.init()` runs the
 * pending ones itself (recorded in `sagaflow_migrations`). They are also ordinary TypeORM migrations that an
 * application may add to its own data source's `migrations` and run with the TypeORM CLI (recorded in its own
 * migrations table); its store then takes `runMigrations: false`, so each migration is recorded once.
 *
 * @example
 * export default new DataSource({ type: 'postgres', url, migrations: [...appMigrations, ...sagaflowMigrations] });
 * // npx typeorm migration:run -d ./data-source.js, then:
 * TypeormStore.postgres({ dataSource, runMigrations: false });
 */
export const sagaflowMigrations: readonly SagaflowMigrationClass[] = [
  SagaflowInitial1763700000000,
  SagaflowSchedule1763800000000,
  SagaflowAddressedEvents1763850000000,
  SagaflowVersions1763900000000,
  SagaflowOperating1764000000000,
  SagaflowOperatorRequests1764100000000,
  SagaflowRateSlots1764200000000,
  SagaflowStack1764300000000,
];

export {
  SagaflowInitial1763700000000,
  SagaflowSchedule1763800000000,
  SagaflowAddressedEvents1763850000000,
  SagaflowVersions1763900000000,
  SagaflowOperating1764000000000,
  SagaflowOperatorRequests1764100000000,
  SagaflowRateSlots1764200000000,
  SagaflowStack1764300000000,
};
