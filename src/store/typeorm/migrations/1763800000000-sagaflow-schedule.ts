import type { MigrationInterface, QueryRunner } from 'typeorm';
import { createSagaflowTable, dropSagaflowTable } from './one-table';

/**
 * Version 2 of the sagaflow schema: `sagaflow_schedule`, the last tick each cron schedule fired (so a restarted
 * process knows which ticks it missed, and several workers agree on each tick). Runs on SQLite and PostgreSQL;
 * creating the table when it exists is skipped, so running it twice is harmless.
 */
export class SagaflowSchedule1763800000000 implements MigrationInterface {
  readonly name = 'SagaflowSchedule1763800000000';

  /** @param schema PostgreSQL schema for the table; default: the data source's `schema` option. */
  constructor(private readonly schema?: string) {}

  async up(queryRunner: QueryRunner): Promise<void> {
    await createSagaflowTable(
      queryRunner,
      this.schema,
      'schedule',
      (c) => [
        { name: 'name', type: c.string, isPrimary: true },
        { name: 'last_tick', type: c.bigint },
        { name: 'updated_at', type: c.bigint },
      ],
    );
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await dropSagaflowTable(queryRunner, this.schema, 'schedule');
  }
}
