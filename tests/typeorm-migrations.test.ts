import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { DataSource } from 'typeorm';
import { newRecord } from '../src/engine/instance-record';
import { runSagaflowMigrations, sagaflowMigrations, TypeormStore } from '../src/store/typeorm';
import { createTestDatabase, dropTestDatabase } from './support/postgres';

/**
 * Each sagaflow migration is recorded in one migrations table: `sagaflow_migrations` when sagaflow runs them
 * (the default), or the application's own when it runs them with the TypeORM CLI (`runMigrations: false`).
 */

const NAMES = sagaflowMigrations.map((M) => new M().name);

async function tableNames(dataSource: DataSource): Promise<string[]> {
  const rows = await dataSource.query<{ table_name: string }[]>(`SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY table_name`);
  return rows.map((r) => r.table_name);
}

async function recorded(dataSource: DataSource, table: string): Promise<string[]> {
  const rows = await dataSource.query<{ name: string }[]>(`SELECT name FROM "${table}" ORDER BY id`);
  return rows.map((r) => r.name);
}

describe('the migrations of a store on an application data source (PostgreSQL)', () => {
  const databases: string[] = [];
  const opened: DataSource[] = [];
  afterEach(async () => {
    for (const d of opened.splice(0)) if (d.isInitialized) await d.destroy();
  });
  afterAll(async () => {
    for (const url of databases) await dropTestDatabase(url);
  });

  /** An application's data source on a database of its own (its tables in the default schema, as the CLI makes them). */
  async function appDataSource(migrations: readonly (new () => unknown)[] = []): Promise<DataSource> {
    const url = await createTestDatabase('app_migrations');
    databases.push(url);
    const dataSource = new DataSource({ type: 'postgres', url, migrations: [...migrations] });
    opened.push(dataSource);
    await dataSource.initialize();
    return dataSource;
  }

  it('records them in sagaflow_migrations only when the store runs them, and makes no application migrations table', async () => {
    const dataSource = await appDataSource();
    const store = TypeormStore.postgres({ dataSource, notifications: false });
    await store.init();
    await store.close();
    expect(await recorded(dataSource, 'sagaflow_migrations')).toEqual(NAMES);
    expect(await tableNames(dataSource)).not.toContain('migrations');
  });

  it('records them in the application migrations table only when the TypeORM CLI runs them, and the store (runMigrations: false) runs on them', async () => {
    const dataSource = await appDataSource(sagaflowMigrations);
    await dataSource.runMigrations(); // what `npx typeorm migration:run -d data-source.js` does
    const store = TypeormStore.postgres({ dataSource, runMigrations: false, notifications: false });
    await store.init();
    expect(await store.create(newRecord('kept', 'wf', { n: 1 }, 0))).toBe(true);
    expect((await store.load('kept'))?.state).toEqual({ n: 1 });
    await store.close();
    expect(await recorded(dataSource, 'migrations')).toEqual(NAMES);
    expect(await tableNames(dataSource)).not.toContain('sagaflow_migrations');
  });

  it('refuses a data source that lists sagaflow migrations when the store would run them too (BAD_OPTION)', async () => {
    const dataSource = await appDataSource(sagaflowMigrations);
    expect(() => TypeormStore.postgres({ dataSource })).toThrow(expect.objectContaining({ code: 'BAD_OPTION', details: expect.objectContaining({ field: 'runMigrations' }) }));
    await expect(runSagaflowMigrations(dataSource)).rejects.toMatchObject({ code: 'BAD_OPTION' });
    expect(await tableNames(dataSource)).toEqual([]);
  });

  it('fails init with MIGRATIONS_PENDING, listing them, when runMigrations is false and the application has not run them', async () => {
    const dataSource = await appDataSource(sagaflowMigrations);
    await dataSource.runMigrations({ transaction: 'each' });
    await dataSource.query(`DELETE FROM "migrations" WHERE name = $1`, [NAMES[NAMES.length - 1]]);
    const store = TypeormStore.postgres({ dataSource, runMigrations: false, notifications: false });
    await expect(store.init()).rejects.toMatchObject({ code: 'MIGRATIONS_PENDING', details: { pending: [NAMES[NAMES.length - 1]], table: '"migrations"' } });
    await store.close();
  });
});

describe('the migrations of an SQLite store with runMigrations: false', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'sagaflow-migrations-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('fail init with MIGRATIONS_PENDING on a new file, and pass once runSagaflowMigrations ran them', async () => {
    const file = path.join(dir, 'pending.db');
    const early = TypeormStore.sqlite({ file, runMigrations: false });
    await expect(early.init()).rejects.toMatchObject({ code: 'MIGRATIONS_PENDING', pending: NAMES });
    expect(await runSagaflowMigrations(early.dataSource)).toEqual(NAMES);
    await early.init();
    expect(await early.load('nothing')).toBeUndefined();
    await early.close();
  });
});
