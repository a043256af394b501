import { Table, TableIndex, type MigrationInterface, type QueryRunner } from 'typeorm';
import { columnTypes, driverKindOf, schemaOf, TABLES } from '../dialect';

/**
 * Version 6 of the sagaflow schema: `sagaflow_rate_slots`, the call slots of rate limiters shared by every worker on
 * one database (PostgreSQL). A row is a slot handed out at `at`; a slot booked for a caller that must wait keeps the
 * caller's key until it is taken. Running it again is harmless.
 */
export class SagaflowRateSlots1764200000000 implements MigrationInterface {
  readonly name = 'SagaflowRateSlots1764200000000';

  /** @param schema PostgreSQL schema of the table; default: the data source's `schema` option. */
  constructor(private readonly schema?: string) {}

  async up(queryRunner: QueryRunner): Promise<void> {
    const schema = this.schema ?? schemaOf(queryRunner.connection);
    const c = columnTypes(driverKindOf(queryRunner.connection));
    await queryRunner.createTable(
      new Table({
        name: TABLES.rateSlots,
        ...(schema === undefined ? {} : { schema }),
        columns: [
          { name: 'id', type: c.serial, isPrimary: true, isGenerated: true, generationStrategy: 'increment' },
          { name: 'limiter', type: c.string },
          { name: 'at', type: c.bigint },
          { name: 'slot_key', type: c.string, isNullable: true },
        ],
        indices: [
          new TableIndex({ name: 'IDX_sagaflow_rate_slots_at', columnNames: ['limiter', 'at'] }),
          new TableIndex({ name: 'IDX_sagaflow_rate_slots_key', columnNames: ['limiter', 'slot_key'], isUnique: true }),
        ],
      }),
      true,
    );
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    const schema = this.schema ?? schemaOf(queryRunner.connection);
    await queryRunner.dropTable(schema === undefined ? TABLES.rateSlots : `${schema}.${TABLES.rateSlots}`, true);
  }
}
