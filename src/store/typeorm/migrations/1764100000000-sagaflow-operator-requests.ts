import type { MigrationInterface, QueryRunner } from 'typeorm';
import { createSagaflowTable, dropSagaflowTable } from './one-table';

/**
 * Version 6 of the sagaflow schema: `sagaflow_requests`, operator requests written by any process (the `sagaflow`
 * CLI, the inspector, a runtime) and applied by the worker that runs the instance. Running it again is harmless.
 */
export class SagaflowOperatorRequests1764100000000 implements MigrationInterface {
  readonly name = 'SagaflowOperatorRequests1764100000000';

  /** @param schema PostgreSQL schema of the table; default: the data source's `schema` option. */
  constructor(private readonly schema?: string) {}

  async up(queryRunner: QueryRunner): Promise<void> {
    await createSagaflowTable(
      queryRunner,
      this.schema,
      'requests',
      (c) => [
        { name: 'id', type: c.string, isPrimary: true },
        { name: 'instance_id', type: c.string },
        { name: 'kind', type: c.string },
        { name: 'requested_by', type: c.string, isNullable: true },
        { name: 'reason', type: c.text, isNullable: true },
        { name: 'requested_at', type: c.bigint },
        { name: 'state', type: c.string },
        { name: 'error', type: c.text, isNullable: true },
        { name: 'done_at', type: c.bigint, isNullable: true },
      ],
      [
        { name: 'IDX_sagaflow_requests_state', columnNames: ['state', 'requested_at'] },
        { name: 'IDX_sagaflow_requests_instance', columnNames: ['instance_id', 'requested_at'] },
      ],
    );
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await dropSagaflowTable(queryRunner, this.schema, 'requests');
  }
}
