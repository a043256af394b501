import { Table, type MigrationInterface, type QueryRunner, type TableOptions } from 'typeorm';
import { claimablePredicate, columnTypes, driverKindOf, schemaOf, TABLES } from '../dialect';

/** The unfinished statuses of schema version 1 (a new one needs a migration that rebuilds the claimable index). */
const UNFINISHED_V1 = ['running', 'waiting', 'rolling_back'];

/**
 * Version 1 of the sagaflow schema: instances, waits, inbox, retained events and history. Runs on SQLite
 * (better-sqlite3) and PostgreSQL, choosing column types for the driver it runs on; creating a table that
 * exists is skipped, so running it twice is harmless.
 *
 * The store runs it itself (`store.init()`); an application may also list it in its own data source's
 * `migrations` and run it with the TypeORM CLI (then give the store `runMigrations: false`).
 */
export class SagaflowInitial1763700000000 implements MigrationInterface {
  readonly name = 'SagaflowInitial1763700000000';

  /** @param schema PostgreSQL schema for the tables; default: the data source's `schema` option. */
  constructor(private readonly schema?: string) {}

  async up(queryRunner: QueryRunner): Promise<void> {
    const schema = this.schema ?? schemaOf(queryRunner.connection);
    const kind = driverKindOf(queryRunner.connection);
    const c = columnTypes(kind);
    const table = (name: string, rest: Omit<TableOptions, 'name' | 'schema'>): Table =>
      new Table({ name, ...(schema === undefined ? {} : { schema }), ...rest });

    await queryRunner.createTable(
      table(TABLES.instances, {
        columns: [
          { name: 'id', type: c.string, isPrimary: true },
          { name: 'workflow', type: c.string },
          { name: 'status', type: c.string },
          { name: 'version', type: c.int },
          { name: 'record', type: c.json },
          { name: 'next_due', type: c.bigint, isNullable: true },
          { name: 'deadlines', type: c.text, isNullable: true },
          { name: 'parked', type: c.bool },
          { name: 'lease_owner', type: c.string, isNullable: true },
          { name: 'lease_until', type: c.bigint, isNullable: true },
          { name: 'created_at', type: c.bigint },
          { name: 'updated_at', type: c.bigint },
        ],
        indices: [
          { name: 'IDX_sagaflow_instances_status', columnNames: ['status'] },
          { name: 'IDX_sagaflow_instances_next_due', columnNames: ['next_due'] },
          { name: 'IDX_sagaflow_instances_claimable', columnNames: ['updated_at'], where: claimablePredicate(kind, UNFINISHED_V1) },
        ],
      }),
      true,
    );
    await queryRunner.createTable(
      table(TABLES.waits, {
        columns: [
          { name: 'instance_id', type: c.string, isPrimary: true },
          { name: 'track', type: c.string, isPrimary: true },
          { name: 'topic', type: c.string, isPrimary: true },
          { name: 'match_keys', type: c.text },
          { name: 'match_values', type: c.text },
        ],
        indices: [{ name: 'IDX_sagaflow_waits_match', columnNames: ['topic', 'match_keys', 'match_values'] }],
      }),
      true,
    );
    await queryRunner.createTable(
      table(TABLES.inbox, {
        columns: [
          { name: 'event_id', type: c.string, isPrimary: true },
          { name: 'instance_id', type: c.string, isPrimary: true },
          { name: 'track', type: c.string, isPrimary: true },
          { name: 'event', type: c.json },
          { name: 'accepted_at', type: c.bigint },
        ],
        indices: [{ name: 'IDX_sagaflow_inbox_instance', columnNames: ['instance_id', 'accepted_at'] }],
      }),
      true,
    );
    await queryRunner.createTable(
      table(TABLES.retained, {
        columns: [
          { name: 'event_id', type: c.string, isPrimary: true },
          { name: 'topic', type: c.string },
          { name: 'event', type: c.json },
          { name: 'published_at', type: c.bigint },
          { name: 'retain_until', type: c.bigint },
        ],
        indices: [
          { name: 'IDX_sagaflow_retained_topic', columnNames: ['topic', 'published_at'] },
          { name: 'IDX_sagaflow_retained_until', columnNames: ['retain_until'] },
        ],
      }),
      true,
    );
    await queryRunner.createTable(
      table(TABLES.history, {
        columns: [
          { name: 'id', type: c.serial, isPrimary: true, isGenerated: true, generationStrategy: 'increment' },
          { name: 'instance_id', type: c.string },
          { name: 'version', type: c.int },
          { name: 'seq', type: c.int },
          { name: 'at', type: c.bigint },
          { name: 'kind', type: c.string },
          { name: 'step', type: c.string, isNullable: true },
          { name: 'group_name', type: c.string, isNullable: true },
          { name: 'branch', type: c.string, isNullable: true },
          { name: 'direction', type: c.string },
          { name: 'func', type: c.string, isNullable: true },
          { name: 'attempt', type: c.int },
          { name: 'outcome', type: c.string, isNullable: true },
          { name: 'code', type: c.string, isNullable: true },
          { name: 'status', type: c.string },
          { name: 'note', type: c.text, isNullable: true },
          { name: 'extra', type: c.text, isNullable: true },
        ],
        indices: [{ name: 'IDX_sagaflow_history_instance', columnNames: ['instance_id', 'version', 'seq'] }],
      }),
      true,
    );
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    const schema = this.schema ?? schemaOf(queryRunner.connection);
    for (const name of [TABLES.history, TABLES.retained, TABLES.inbox, TABLES.waits, TABLES.instances]) {
      await queryRunner.dropTable(schema === undefined ? name : `${schema}.${name}`, true);
    }
  }
}
