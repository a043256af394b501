export {
  TypeormStore,
  StoreClosedError,
  defaultSqliteFile,
  type SqliteStoreOptions,
  type PostgresStoreOptions,
  type PostgresUrlOptions,
  type PostgresDataSourceOptions,
  type TypeormStoreStats,
} from './typeorm-store';
export {
  sagaflowMigrations,
  SagaflowInitial1763700000000,
  SagaflowSchedule1763800000000,
  SagaflowAddressedEvents1763850000000,
  SagaflowVersions1763900000000,
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
  type SagaflowScheduleRow,
  type SagaflowWorkerRow,
} from './entities';
export type { DriverKind } from './dialect';
export { SagaFlowColumns, SagaFlowJsonbColumns, SagaFlowBaseColumns, type SagaFlowFields } from './saga-flow-columns';
export { EntityMirror, mirrorToEntity, type EntityMirrorOptions, type MirroredInstance } from './entity-mirror';
export { inboxChannel, LISTEN_APPLICATION_NAME, type PgListenOptions } from './pg-listener';
export { StoreFileChangedError } from './database-file';
