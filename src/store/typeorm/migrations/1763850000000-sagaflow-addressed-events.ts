import { TableColumn, TableIndex, type MigrationInterface, type QueryRunner } from 'typeorm';
import { columnTypes, driverKindOf, schemaOf, TABLES } from '../dialect';

/**
 * Version 3 of the sagaflow schema: `sagaflow_retained.instance_id`. An event published to one instance that no
 * wait of it matches yet is kept for that instance (never expiring) until one of its waits takes it or the
 * instance ends; the column says whose it is. Adding the column when it exists is skipped.
 */
export class SagaflowAddressedEvents1763850000000 implements MigrationInterface {
  readonly name = 'SagaflowAddressedEvents1763850000000';

  /** @param schema PostgreSQL schema of the table; default: the data source's `schema` option. */
  constructor(private readonly schema?: string) {}

  private table(queryRunner: QueryRunner): string {
    const schema = this.schema ?? schemaOf(queryRunner.connection);
    return schema === undefined ? TABLES.retained : `${schema}.${TABLES.retained}`;
  }

  async up(queryRunner: QueryRunner): Promise<void> {
    const table = this.table(queryRunner);
    const c = columnTypes(driverKindOf(queryRunner.connection));
    if (!(await queryRunner.hasColumn(table, 'instance_id'))) {
      await queryRunner.addColumn(table, new TableColumn({ name: 'instance_id', type: c.string, isNullable: true }));
      await queryRunner.createIndex(table, new TableIndex({ name: 'IDX_sagaflow_retained_instance', columnNames: ['instance_id'] }));
    }
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    const table = this.table(queryRunner);
    if (await queryRunner.hasColumn(table, 'instance_id')) {
      await queryRunner.dropIndex(table, 'IDX_sagaflow_retained_instance');
      await queryRunner.dropColumn(table, 'instance_id');
    }
  }
}
