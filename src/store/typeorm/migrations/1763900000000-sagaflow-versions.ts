import { Table, TableColumn, TableIndex, type MigrationInterface, type QueryRunner } from 'typeorm';
import { claimablePredicate, columnTypes, driverKindOf, schemaOf, TABLES } from '../dialect';

/** The unfinished statuses of schema version 4: `blocked` joins them (frozen here, as migrations must be). */
const UNFINISHED_V4 = ['running', 'waiting', 'rolling_back', 'blocked'];

/**
 * Version 4 of the sagaflow schema: workflow versions. `sagaflow_instances` gains `def_version` (1 for the rows
 * already there, which were written before versions) and `fingerprint` (null for those rows); the claimable index
 * is rebuilt to take `blocked` instances (a worker that can run one claims it); `sagaflow_workers` lists each live
 * worker and the definitions it runs, so a worker can tell whether any worker can run an instance. Running it again
 * is harmless.
 */
export class SagaflowVersions1763900000000 implements MigrationInterface {
  readonly name = 'SagaflowVersions1763900000000';

  /** @param schema PostgreSQL schema of the tables; default: the data source's `schema` option. */
  constructor(private readonly schema?: string) {}

  async up(queryRunner: QueryRunner): Promise<void> {
    const schema = this.schema ?? schemaOf(queryRunner.connection);
    const kind = driverKindOf(queryRunner.connection);
    const c = columnTypes(kind);
    const instances = schema === undefined ? TABLES.instances : `${schema}.${TABLES.instances}`;
    if (!(await queryRunner.hasColumn(instances, 'def_version'))) {
      await queryRunner.addColumn(instances, new TableColumn({ name: 'def_version', type: c.int, isNullable: false, default: 1 }));
      await queryRunner.addColumn(instances, new TableColumn({ name: 'fingerprint', type: c.string, isNullable: true }));
      await queryRunner.createIndex(instances, new TableIndex({ name: 'IDX_sagaflow_instances_definition', columnNames: ['workflow', 'def_version'] }));
      await queryRunner.dropIndex(instances, 'IDX_sagaflow_instances_claimable');
      await queryRunner.createIndex(
        instances,
        new TableIndex({ name: 'IDX_sagaflow_instances_claimable', columnNames: ['updated_at'], where: claimablePredicate(kind, UNFINISHED_V4) }),
      );
    }
    await queryRunner.createTable(
      new Table({
        name: TABLES.workers,
        ...(schema === undefined ? {} : { schema }),
        columns: [
          { name: 'worker_id', type: c.string, isPrimary: true },
          { name: 'runs', type: c.json },
          { name: 'seen_at', type: c.bigint },
        ],
      }),
      true,
    );
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    const schema = this.schema ?? schemaOf(queryRunner.connection);
    const kind = driverKindOf(queryRunner.connection);
    const instances = schema === undefined ? TABLES.instances : `${schema}.${TABLES.instances}`;
    await queryRunner.dropTable(schema === undefined ? TABLES.workers : `${schema}.${TABLES.workers}`, true);
    if (await queryRunner.hasColumn(instances, 'def_version')) {
      await queryRunner.dropIndex(instances, 'IDX_sagaflow_instances_claimable');
      await queryRunner.createIndex(
        instances,
        new TableIndex({ name: 'IDX_sagaflow_instances_claimable', columnNames: ['updated_at'], where: claimablePredicate(kind, ['running', 'waiting', 'rolling_back']) }),
      );
      await queryRunner.dropIndex(instances, 'IDX_sagaflow_instances_definition');
      await queryRunner.dropColumn(instances, 'fingerprint');
      await queryRunner.dropColumn(instances, 'def_version');
    }
  }
}
