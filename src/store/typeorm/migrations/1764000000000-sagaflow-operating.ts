import { TableIndex, type MigrationInterface, type QueryRunner } from 'typeorm';
import { TABLES } from '../dialect';
import { createSagaflowTable, dropSagaflowTable, qualifiedTable } from './one-table';

/**
 * Version 5 of the sagaflow schema: operating without the application's code. `sagaflow_definitions` keeps the
 * outline of every definition a runtime registered (by workflow, version and fingerprint), so the `sagaflow` command
 * line and the inspector can draw an instance's workflow; an index on instances by status and update time serves
 * listing by status and purging finished instances by age. Running it again is harmless.
 */
export class SagaflowOperating1764000000000 implements MigrationInterface {
  readonly name = 'SagaflowOperating1764000000000';

  /** @param schema PostgreSQL schema of the tables; default: the data source's `schema` option. */
  constructor(private readonly schema?: string) {}

  async up(queryRunner: QueryRunner): Promise<void> {
    await createSagaflowTable(queryRunner, this.schema, 'definitions', (c) => [
      { name: 'workflow', type: c.string, isPrimary: true },
      { name: 'version', type: c.int, isPrimary: true },
      { name: 'fingerprint', type: c.string, isPrimary: true },
      { name: 'outline', type: c.json },
      { name: 'registered_at', type: c.bigint },
    ]);
    const instances = qualifiedTable(queryRunner, this.schema, TABLES.instances);
    const table = await queryRunner.getTable(instances);
    if (table?.indices.some((i) => i.name === 'IDX_sagaflow_instances_status_updated') !== true) {
      await queryRunner.createIndex(instances, new TableIndex({ name: 'IDX_sagaflow_instances_status_updated', columnNames: ['status', 'updated_at'] }));
    }
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    const instances = qualifiedTable(queryRunner, this.schema, TABLES.instances);
    const table = await queryRunner.getTable(instances);
    if (table?.indices.some((i) => i.name === 'IDX_sagaflow_instances_status_updated') === true) await queryRunner.dropIndex(instances, 'IDX_sagaflow_instances_status_updated');
    await dropSagaflowTable(queryRunner, this.schema, 'definitions');
  }
}
