import { Table, type QueryRunner, type TableColumnOptions } from 'typeorm';
import { columnTypes, driverKindOf, schemaOf } from '../dialect';

/**
 * Creates one sagaflow table (skipped when it exists), in `schema` or the data source's; `columns` gets the column
 * types of the connection's database.
 */
export async function createOneTable(
  queryRunner: QueryRunner,
  schema: string | undefined,
  name: string,
  columns: (c: ReturnType<typeof columnTypes>) => TableColumnOptions[],
): Promise<void> {
  const where = schema ?? schemaOf(queryRunner.connection);
  const c = columnTypes(driverKindOf(queryRunner.connection));
  await queryRunner.createTable(new Table({ name, ...(where === undefined ? {} : { schema: where }), columns: columns(c) }), true);
}

/** Drops one sagaflow table when it exists. */
export async function dropOneTable(queryRunner: QueryRunner, schema: string | undefined, name: string): Promise<void> {
  const where = schema ?? schemaOf(queryRunner.connection);
  await queryRunner.dropTable(where === undefined ? name : `${where}.${name}`, true);
}
