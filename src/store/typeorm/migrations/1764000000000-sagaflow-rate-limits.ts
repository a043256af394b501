import type { MigrationInterface, QueryRunner } from 'typeorm';
import { TABLES } from '../dialect';
import { createOneTable, dropOneTable } from './one-table';

/**
 * Version 5 of the sagaflow schema: `sagaflow_rate_limits`, the call slots each rate limiter handed out lately (the
 * last `limit` of them, as JSON), so that the workers sharing a database share each limit. Creating the table when
 * it exists is skipped, so running it twice is harmless.
 */
export class SagaflowRateLimits1764000000000 implements MigrationInterface {
  readonly name = 'SagaflowRateLimits1764000000000';

  /** @param schema PostgreSQL schema for the table; default: the data source's `schema` option. */
  constructor(private readonly schema?: string) {}

  async up(queryRunner: QueryRunner): Promise<void> {
    await createOneTable(queryRunner, this.schema, TABLES.rateLimits, (c) => [
      { name: 'name', type: c.string, isPrimary: true },
      { name: 'slots', type: c.text },
      { name: 'version', type: c.int },
    ]);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await dropOneTable(queryRunner, this.schema, TABLES.rateLimits);
  }
}
