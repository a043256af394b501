/**
 * sagaflow/typeorm — durable stores on TypeORM: {@link TypeormStore.sqlite} (an embedded file, the default store of
 * `new SagaRuntime()`) and {@link TypeormStore.postgres} (several workers on one database), the schema's
 * migrations ({@link sagaflowMigrations}, {@link runSagaflowMigrations}), its entities, and the saga's flow columns
 * for an application's own entity ({@link SagaFlowColumns}, {@link mirrorToEntity}).
 *
 * typeorm is a peer dependency; better-sqlite3 (SQLite) and pg (PostgreSQL) are optional ones: install the driver
 * of the database you use.
 *
 * @module sagaflow/typeorm
 */
export { TypeormStore, type TypeormStoreStats } from './typeorm-store';
export { StoreClosedError } from './store-session';
export {
  defaultSqliteFile,
  type SqliteStoreOptions,
  type PostgresStoreOptions,
  type PostgresUrlOptions,
  type PostgresDataSourceOptions,
} from './store-options';
export {
  sagaflowMigrations,
  SagaflowInitial1763700000000,
  SagaflowSchedule1763800000000,
  SagaflowAddressedEvents1763850000000,
  SagaflowVersions1763900000000,
  SagaflowOperating1764000000000,
  SagaflowOperatorRequests1764100000000,
  SagaflowRateSlots1764200000000,
  SagaflowStack1764300000000,
  type SagaflowMigrationClass,
} from './migrations';
export { runSagaflowMigrations, MigrationsPendingError, type RunMigrationsOptions } from './migrate';
export {
  sagaflowEntities,
  type SagaflowInstanceRow,
  type SagaflowWaitRow,
  type SagaflowInboxRow,
  type SagaflowRetainedRow,
  type SagaflowHistoryRow,
  type SagaflowStackRow,
  type SagaflowScheduleRow,
  type SagaflowWorkerRow,
  type SagaflowDefinitionRow,
  type SagaflowRequestRow,
} from './entities';
export type { DriverKind } from './dialect';
export { SagaFlowColumns, SagaFlowJsonbColumns, SagaFlowBaseColumns, type SagaFlowFields } from './saga-flow-columns';
export { EntityMirror, mirrorToEntity, type EntityMirrorOptions, type MirroredInstance } from './entity-mirror';
export { inboxChannel, LISTEN_APPLICATION_NAME, type PgListenOptions } from './pg-listener';
export { StoreFileChangedError } from './database-file';
export { checkSagaflowSchema } from './schema-check';
