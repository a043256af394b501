import type { MigrationInterface, QueryRunner } from 'typeorm';
import { createSagaflowTable, dropSagaflowTable } from './one-table';

/**
 * Version 7 of the sagaflow schema: `sagaflow_rate_slots`, the call slots of rate limiters shared by every worker on
 * one database (PostgreSQL). A row is a slot handed out at `at`; a slot booked for a caller that must wait keeps the
 * caller's key until it is taken. Running it again is harmless.
 */
export class SagaflowRateSlots1764200000000 implements MigrationInterface {
  readonly name = 'SagaflowRateSlots1764200000000';

  /** @param schema PostgreSQL schema of the table; default: the data source's `schema` option. */
  constructor(private readonly schema?: string) {}

  async up(queryRunner: QueryRunner): Promise<void> {
    await createSagaflowTable(
      queryRunner,
      this.schema,
      'rateSlots',
      (c) => [
        { name: 'id', type: c.serial, isPrimary: true, isGenerated: true, generationStrategy: 'increment' },
        { name: 'limiter', type: c.string },
        { name: 'at', type: c.bigint },
        { name: 'slot_key', type: c.string, isNullable: true },
      ],
      [
        { name: 'IDX_sagaflow_rate_slots_at', columnNames: ['limiter', 'at'] },
        { name: 'IDX_sagaflow_rate_slots_key', columnNames: ['limiter', 'slot_key'], isUnique: true },
      ],
    );
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await dropSagaflowTable(queryRunner, this.schema, 'rateSlots');
  }
}
