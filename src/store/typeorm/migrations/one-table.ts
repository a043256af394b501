/**
 * What the migrations that add one sagaflow table share: creating it (skipped when it exists) in the right schema
 * with the driver's column types, and dropping it.
 */
import { Table, type QueryRunner, type TableColumnOptions, type TableIndexOptions } from 'typeorm';
import { columnTypes, driverKindOf, schemaOf, TABLES, type TableKey } from '../dialect';

/** The driver's column types, as `columnTypes` gives them. */
type ColumnTypes = ReturnType<typeof columnTypes>;

/** Creates sagaflow table `key` unless it exists; `schema` is the migration's own, else the data source's. */
export async function createSagaflowTable(
  queryRunner: QueryRunner,
  schemaOption: string | undefined,
  key: TableKey,
  columns: (c: ColumnTypes) => TableColumnOptions[],
  indices: TableIndexOptions[] = [],
): Promise<void> {
  const schema = schemaOption ?? schemaOf(queryRunner.connection);
  const c = columnTypes(driverKindOf(queryRunner.connection));
  await queryRunner.createTable(new Table({ name: TABLES[key], ...(schema === undefined ? {} : { schema }), columns: columns(c), ...(indices.length === 0 ? {} : { indices }) }), true);
}

/** A table's name as the query runner takes it: prefixed with the schema when there is one. */
export function qualifiedTable(queryRunner: QueryRunner, schemaOption: string | undefined, table: string): string {
  const schema = schemaOption ?? schemaOf(queryRunner.connection);
  return schema === undefined ? table : `${schema}.${table}`;
}

/** Drops sagaflow table `key` if it exists. */
export async function dropSagaflowTable(queryRunner: QueryRunner, schemaOption: string | undefined, key: TableKey): Promise<void> {
  await queryRunner.dropTable(qualifiedTable(queryRunner, schemaOption, TABLES[key]), true);
}
