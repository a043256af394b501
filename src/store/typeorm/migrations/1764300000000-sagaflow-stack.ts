import type { MigrationInterface, QueryRunner } from 'typeorm';
import { Dialect, driverKindOf, schemaOf, TABLES } from '../dialect';
import { decodeStored, stackRowsColumn } from '../stack-rows';
import { createSagaflowTable, dropSagaflowTable, qualifiedTable } from './one-table';

/**
 * Version 8 of the sagaflow schema: `sagaflow_stack`, the compensation stacks of instances as append-only rows (one
 * per entry, by instance, track and position). Records written from now on carry each stack's depth instead of the
 * stack, and a transition inserts only the entries pushed since the last one; records written before keep their
 * stacks inline until their next save. Running it again is harmless; undoing it puts every stack back inline.
 */
export class SagaflowStack1764300000000 implements MigrationInterface {
  readonly name = 'SagaflowStack1764300000000';

  /** @param schema PostgreSQL schema of the table; default: the data source's `schema` option. */
  constructor(private readonly schema?: string) {}

  async up(queryRunner: QueryRunner): Promise<void> {
    await createSagaflowTable(queryRunner, this.schema, 'stack', (c) => [
      { name: 'instance_id', type: c.string, isPrimary: true },
      { name: 'track', type: c.string, isPrimary: true },
      { name: 'pos', type: c.int, isPrimary: true },
      { name: 'entry', type: c.json },
    ]);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    const schema = this.schema ?? schemaOf(queryRunner.connection);
    const d = new Dialect(driverKindOf(queryRunner.connection), schema);
    if (await queryRunner.hasTable(qualifiedTable(queryRunner, this.schema, TABLES.stack))) {
      // Every record whose stacks are rows gets them back inline, as records were before this version.
      const rows = (await queryRunner.query(
        `SELECT i.id, ${d.jsonText('i.record')} AS record, ${stackRowsColumn(d, 'i.id')} AS stack
         FROM ${d.t('instances')} i WHERE i.id IN (SELECT instance_id FROM ${d.t('stack')})`,
      )) as { id: string; record: string; stack: string | null }[];
      for (const row of rows) {
        const { record } = decodeStored(row.record, row.stack, row.id);
        await queryRunner.query(d.sql(`UPDATE ${d.t('instances')} SET record = ? WHERE id = ?`), [JSON.stringify(record), row.id]);
      }
    }
    await dropSagaflowTable(queryRunner, this.schema, 'stack');
  }
}
