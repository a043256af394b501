import type { DataSource, QueryRunner } from 'typeorm';
import { DefinitionError } from '../../errors/definition-error';
import { quote } from '../../errors/serialized-error';

/** The two databases the TypeORM store runs on. */
export type DriverKind = 'sqlite' | 'postgres';

/** The base names of the store's tables (each prefixed `sagaflow_`). */
export const TABLES = {
  instances: 'sagaflow_instances',
  waits: 'sagaflow_waits',
  inbox: 'sagaflow_inbox',
  retained: 'sagaflow_retained',
  history: 'sagaflow_history',
  migrations: 'sagaflow_migrations',
  schedule: 'sagaflow_schedule',
  workers: 'sagaflow_workers',
  definitions: 'sagaflow_definitions',
  requests: 'sagaflow_requests',
  rateSlots: 'sagaflow_rate_slots',
  stack: 'sagaflow_stack',
} as const;
export type TableKey = keyof typeof TABLES;

/** The store's driver kind for a TypeORM data source, or an error naming what is supported. */
export function driverKindOf(dataSource: Pick<DataSource, 'options'>): DriverKind {
  const type = dataSource.options.type;
  if (type === 'better-sqlite3') return 'sqlite';
  if (type === 'postgres') return 'postgres';
  throw new DefinitionError('BAD_OPTION', `the sagaflow TypeORM store runs on "better-sqlite3" and "postgres" data sources, not on ${quote(type)}`, { field: 'type' });
}

/** The schema a PostgreSQL data source keeps its tables in by default (undefined: the search path's). */
export function schemaOf(dataSource: Pick<DataSource, 'options'>): string | undefined {
  const options = dataSource.options as { schema?: unknown };
  return typeof options.schema === 'string' && options.schema.length > 0 ? options.schema : undefined;
}

/** Column types per driver: JSON is `jsonb` on PostgreSQL and text on SQLite. */
export function columnTypes(kind: DriverKind): { json: string; bigint: string; int: string; bool: string; string: string; text: string; serial: string } {
  return kind === 'postgres'
    ? { json: 'jsonb', bigint: 'bigint', int: 'integer', bool: 'boolean', string: 'varchar', text: 'text', serial: 'bigint' }
    : { json: 'text', bigint: 'bigint', int: 'integer', bool: 'boolean', string: 'varchar', text: 'text', serial: 'integer' };
}

/** An SQL boolean literal for the driver (SQLite keeps booleans as 0/1). */
export function boolLiteral(kind: DriverKind, value: boolean): string {
  return kind === 'postgres' ? String(value) : value ? '1' : '0';
}

/**
 * The predicate of the partial index of claimable instances (unfinished, not parked): the few rows with work
 * to do, whatever the number of waiting or finished ones. `claimStale` repeats it word for word, so that
 * SQLite (which matches partial-index predicates textually) uses the index too.
 */
export function claimablePredicate(kind: DriverKind, statuses: readonly string[]): string {
  return `parked = ${boolLiteral(kind, false)} AND status IN (${statuses.map((s) => `'${s.replace(/'/g, "''")}'`).join(', ')})`;
}

/**
 * An SQL condition on `sagaflow_instances` columns (with the table alias `alias`, if any) that holds for instances of
 * `runnable` definitions — their workflow and version, and their fingerprint when they recorded one — with its
 * parameters appended to `params`. An empty list matches nothing.
 */
export function runnablePredicate(runnable: readonly { workflow: string; version: number; fingerprint: string }[], params: unknown[], alias = ''): string {
  if (runnable.length === 0) return '1 = 0';
  const a = alias === '' ? '' : `${alias}.`;
  return `(${runnable
    .map((d) => {
      params.push(d.workflow, d.version, d.fingerprint);
      return `(${a}workflow = ? AND ${a}def_version = ? AND (${a}fingerprint IS NULL OR ${a}fingerprint = ?))`;
    })
    .join(' OR ')})`;
}

/** A double-quoted SQL identifier. */
export function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/** One statement's outcome, the same shape on both drivers. */
export interface ExecResult {
  readonly rows: Record<string, unknown>[];
  readonly affected: number;
}

/** Runs one SQL statement written with `?` placeholders. */
export type Exec = (sql: string, params?: readonly unknown[]) => Promise<ExecResult>;

/**
 * The SQL differences between SQLite and PostgreSQL that the store's hand-written statements need:
 * placeholders, qualified table names, JSON columns read back as text, and JSON parameters in a SELECT list.
 */
export class Dialect {
  private readonly tables: Record<TableKey, string>;
  private readonly converted = new Map<string, string>();

  constructor(
    readonly kind: DriverKind,
    readonly schema: string | undefined,
  ) {
    const qualify = (name: string): string => (kind === 'postgres' && schema !== undefined ? `${quoteIdent(schema)}.${quoteIdent(name)}` : quoteIdent(name));
    this.tables = {
      instances: qualify(TABLES.instances),
      waits: qualify(TABLES.waits),
      inbox: qualify(TABLES.inbox),
      retained: qualify(TABLES.retained),
      history: qualify(TABLES.history),
      migrations: qualify(TABLES.migrations),
      schedule: qualify(TABLES.schedule),
      workers: qualify(TABLES.workers),
      definitions: qualify(TABLES.definitions),
      requests: qualify(TABLES.requests),
      rateSlots: qualify(TABLES.rateSlots),
      stack: qualify(TABLES.stack),
    };
  }

  /** The quoted (and, on PostgreSQL with a schema, qualified) name of a table. */
  t(key: TableKey): string {
    return this.tables[key];
  }

  /** A JSON column read back as its text (PostgreSQL's `jsonb` would otherwise be parsed by the driver, unsafely). */
  jsonText(column: string): string {
    return this.kind === 'postgres' ? `${column}::text` : column;
  }

  /** A placeholder for a JSON value given as text, where its type cannot be inferred (a SELECT list). */
  jsonParam(): string {
    return this.kind === 'postgres' ? 'CAST(? AS jsonb)' : '?';
  }

  /** `sql` with `?` placeholders turned into the driver's own (`$1`, `$2`, … on PostgreSQL). */
  sql(sql: string): string {
    if (this.kind === 'sqlite') return sql;
    let out = this.converted.get(sql);
    if (out === undefined) {
      let n = 0;
      out = sql.replace(/\?/g, () => `$${++n}`);
      if (this.converted.size > 500) this.converted.clear();
      this.converted.set(sql, out);
    }
    return out;
  }

  /**
   * `sql` with its `?` placeholders replaced by the values as quoted literals, for statements sent several at a
   * time in one simple query (which takes no parameters). Every value is quoted (the column or a CAST gives its type,
   * as it does a parameter's); a string is escaped as PostgreSQL's `escapeLiteral` does.
   * @throws TypeError for a value that is not a string, a finite number, a boolean or null.
   */
  static inline(sql: string, params: readonly unknown[]): string {
    let i = 0;
    return sql.replace(/\?/g, () => literal(params[i++]));
  }

  /** The values as a list of literals (see {@link inline}), for `EXECUTE name(…)`. */
  static literals(params: readonly unknown[]): string {
    return params.map(literal).join(', ');
  }

  /** `?, ?, ?` for `n` values. */
  static marks(n: number): string {
    return new Array<string>(n).fill('?').join(', ');
  }

  /** An {@link Exec} on a query runner. */
  exec(runner: QueryRunner): Exec {
    return async (sql, params = []) => {
      const result = await runner.query(this.sql(sql), params as unknown[], true);
      return { rows: (result.records ?? []) as Record<string, unknown>[], affected: result.affected ?? 0 };
    };
  }
}

/** A value as an SQL literal (see {@link Dialect.inline}). */
function literal(value: unknown): string {
  if (value === null || value === undefined) return 'NULL';
  let text: string;
  if (typeof value === 'string') text = value;
  else if (typeof value === 'boolean') text = value ? 'true' : 'false';
  else if (typeof value === 'number' && Number.isFinite(value)) text = String(value);
  else throw new TypeError(`cannot write a ${typeof value} as an SQL literal`);
  const quoted = `'${text.replace(/'/g, "''")}'`;
  return text.includes('\\') ? ` E${quoted.replace(/\\/g, '\\\\')}` : quoted;
}
