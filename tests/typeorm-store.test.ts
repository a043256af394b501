import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { DataSource } from 'typeorm';
import { defineWorkflow, SagaRuntime, silentLogger } from '../src';
import { freshFlow, newRecord, type InstanceRecord } from '../src/engine/instance-record';
import type { StackEntry } from '../src/core/flow-fields';
import type { HistoryEntry } from '../src/engine/history-entry';
import { KEEP_FOR_INSTANCE } from '../src/store/instance-store';
import { defaultSqliteFile, runSagaflowMigrations, SagaflowStack1764300000000, sagaflowMigrations, TypeormStore, type PostgresUrlOptions } from '../src/store/typeorm';
import { INLINE_STACK } from '../src/store/typeorm/stack-rows';
import { Dialect, type TableKey } from '../src/store/typeorm/dialect';
import { LISTEN_APPLICATION_NAME } from '../src/store/typeorm/pg-listener';
import { fails, recordingStep, waitsFor, type TestState } from './support/steps';
import { createDatabase, createTestDatabase, dropTestDatabase, withDatabase } from './support/postgres';
import { storeContract } from './support/store-contract';

function waiting(id: string, topic: string, match: Record<string, string | number>, deadline: number | null, updatedAt = 0): InstanceRecord {
  const r = newRecord(id, 'wf', { id }, updatedAt);
  r.flow.wait = { topics: [topic], match, deadline };
  r.flow.status = 'waiting';
  return r;
}

function running(id: string): InstanceRecord {
  const r = newRecord(id, 'wf', { id }, 0);
  r.flow.inFlight = true;
  return r;
}

/** Resolves once `condition` holds (checked every 5 ms of real time), or fails after `timeoutMs`. */
async function until(condition: () => boolean | Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

const line = (outcome: string): HistoryEntry => ({ at: 1, kind: 'step-result', step: 'A', direction: 'up', func: 'run', attempt: 1, outcome, status: 'running' });

/** What a test needs of one database: fresh stores, a second store on the same tables, and raw SQL. */
interface Harness {
  readonly kind: 'sqlite' | 'postgres';
  /** A store on fresh, migrated tables. */
  open(): Promise<TypeormStore>;
  /** Another store on the same tables as `store`. */
  reopen(store: TypeormStore, options?: { runMigrations?: boolean }): Promise<TypeormStore>;
  /** Runs SQL written with `?` placeholders and `{instances}`-style table names on the tables of `store`. */
  sql(store: TypeormStore, sql: string, params?: unknown[]): Promise<Record<string, unknown>[]>;
}

function sqliteHarness(): Harness {
  let dir = '';
  let n = 0;
  const files = new WeakMap<TypeormStore, string>();
  beforeAll(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'sagaflow-sqlite-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const make = async (file: string, runMigrations = true): Promise<TypeormStore> => {
    const store = TypeormStore.sqlite({ file, runMigrations });
    files.set(store, file);
    await store.init();
    return store;
  };
  return {
    kind: 'sqlite',
    open: () => make(path.join(dir, `t${++n}.db`)),
    reopen: (store, options = {}) => make(files.get(store) as string, options.runMigrations),
    sql: (store, sql, params = []) => store.dataSource.query<Record<string, unknown>[]>(expand(new Dialect('sqlite', undefined), sql), params),
  };
}

function postgresHarness(): Harness {
  let url = '';
  let n = 0;
  const schemas = new WeakMap<TypeormStore, string>();
  beforeAll(async () => {
    url = await createTestDatabase('typeorm_store');
  });
  afterAll(async () => dropTestDatabase(url));
  const make = async (schema: string, runMigrations = true): Promise<TypeormStore> => {
    const store = TypeormStore.postgres({ url, schema, poolSize: 4, runMigrations });
    schemas.set(store, schema);
    await store.init();
    return store;
  };
  return {
    kind: 'postgres',
    open: () => make(`s${++n}`),
    reopen: (store, options = {}) => make(schemas.get(store) as string, options.runMigrations),
    sql: async (store, sql, params = []) => {
      const d = new Dialect('postgres', schemas.get(store));
      const result = (await store.dataSource.query(d.sql(expand(d, sql)), params)) as unknown;
      // pg answers UPDATE/DELETE with [rows, count]
      return (Array.isArray(result) && result.length === 2 && typeof result[1] === 'number' ? result[0] : result) as Record<string, unknown>[];
    },
  };
}

function expand(d: Dialect, sql: string): string {
  return sql.replace(/\{(\w+)\}/g, (_, key: string) => d.t(key as TableKey));
}

/** Tests every driver must pass beyond the contract. */
function durableStoreTests(h: Harness): void {
  const stores: TypeormStore[] = [];
  const open = async (): Promise<TypeormStore> => {
    const s = await h.open();
    stores.push(s);
    return s;
  };
  const reopen = async (s: TypeormStore, options?: { runMigrations?: boolean }): Promise<TypeormStore> => {
    const r = await h.reopen(s, options);
    stores.push(r);
    return r;
  };
  afterEach(async () => {
    await Promise.all(stores.splice(0).map((s) => s.close()));
  });

  describe('migrations', () => {
    it('create the schema from scratch, are recorded, and run once', async () => {
      const store = await open();
      const recorded = await h.sql(store, 'SELECT name FROM {migrations}');
      expect(recorded.map((r) => r.name)).toEqual(sagaflowMigrations.map((M) => new M().name));
      await store.create(newRecord('kept', 'wf', { n: 1 }, 0), { history: [line('first')] });
      const again = await reopen(store);
      expect(await runSagaflowMigrations(again.dataSource, h.kind === 'postgres' ? { schema: schemaOf(h, again) } : {})).toEqual([]);
      expect((await again.load('kept'))?.state).toEqual({ n: 1 });
      expect(await h.sql(again, 'SELECT name FROM {migrations}')).toHaveLength(sagaflowMigrations.length);
    });

    it('are idempotent: running a migration on tables that exist changes nothing', async () => {
      const store = await open();
      await store.create(newRecord('kept', 'wf', {}, 0));
      const runner = store.dataSource.createQueryRunner();
      try {
        for (const M of sagaflowMigrations) await new M(schemaOf(h, store)).up(runner);
      } finally {
        if (h.kind === 'postgres') await runner.release();
      }
      expect(await store.load('kept')).toBeDefined();
    });

    it('make exactly the tables the entities describe (synchronize would change nothing)', async () => {
      const store = await open();
      const pending = await store.dataSource.driver.createSchemaBuilder().log();
      expect(pending.upQueries.map((q) => q.query)).toEqual([]);
    });

    it('can be left to the application (runMigrations: false) and run by several stores at once', async () => {
      const first = await open();
      const others = await Promise.all([reopen(first), reopen(first), reopen(first, { runMigrations: false })]);
      for (const s of others) expect(await s.load('nothing')).toBeUndefined();
    });

    it('can be undone', async () => {
      const store = await open();
      const runner = store.dataSource.createQueryRunner();
      try {
        for (const M of [...sagaflowMigrations].reverse()) await new M(schemaOf(h, store)).down(runner);
        expect(await runner.hasTable(h.kind === 'postgres' ? `${schemaOf(h, store)}.sagaflow_instances` : 'sagaflow_instances')).toBe(false);
      } finally {
        if (h.kind === 'postgres') await runner.release();
      }
    });
  });

  it('keeps everything across a restart (a new store on the same database)', async () => {
    const store = await open();
    await store.create(waiting('w', 'paid', { orderId: '7' }, 5_000), { history: [line('first')] });
    await store.acceptEvent({ topic: 'paid', payload: { orderId: '7' }, id: 'e1', publishedAt: 3 }, [{ instanceId: 'w', track: null }], null);
    await store.acceptEvent({ topic: 'early', payload: {}, id: 'e2', publishedAt: 4 }, [], 9_000);
    await store.close();
    const again = await reopen(store);
    expect((await again.load('w'))?.version).toBe(1);
    expect(await again.history('w')).toEqual([line('first')]);
    expect(await again.findWaiting({ topic: 'paid', payload: { orderId: '7' }, id: 'x', publishedAt: 0 })).toEqual([{ instanceId: 'w', track: null }]);
    expect((await again.pendingEvents('w')).map((p) => p.event.id)).toEqual(['e1']);
    expect(await again.dueWaits(6_000, 10)).toEqual([{ instanceId: 'w', track: null, deadline: 5_000 }]);
    expect((await again.takeRetained('w', { topics: ['early'], match: {}, deadline: null }, 5))?.id).toBe('e2');
  });

  it('finds waits through several key sets of one topic, dot paths, addressed events, branches and long values', async () => {
    const store = await open();
    const long = 'x'.repeat(5_000);
    await store.create(waiting('by-order', 'paid', { orderId: '1' }, null));
    await store.create(waiting('by-order-2', 'paid', { orderId: '1' }, null));
    await store.create(waiting('by-customer', 'paid', { 'customer.id': 'c1', region: 'eu' }, null));
    await store.create(waiting('by-number', 'paid', { orderId: 1 }, null));
    await store.create(waiting('long', 'paid', { note: long }, null));
    const branched = newRecord('branched', 'wf', {}, 0);
    branched.group = {
      name: 'g',
      index: 0,
      mode: 'up',
      failure: null,
      nextSeq: 0,
      winner: null,
      plan: null,
      branches: [{ name: 'b', key: 'b#0', state: {}, flow: { ...freshFlow(), status: 'waiting', wait: { topics: ['paid', 'refunded'], match: { orderId: '1' }, deadline: null } }, phase: 'running', settledSeq: null, outcome: null }],
    };
    await store.create(branched);
    const find = async (payload: Record<string, unknown>, instanceId?: string): Promise<string[]> =>
      (await store.findWaiting({ topic: 'paid', payload, id: 'e', publishedAt: 0, ...(instanceId === undefined ? {} : { instanceId }) }))
        .map((w) => `${w.instanceId}${w.track === null ? '' : `/${w.track}`}`)
        .sort();
    expect(await find({ orderId: '1' })).toEqual(['branched/b#0', 'by-order', 'by-order-2']);
    expect(await find({ orderId: '1' }, 'by-order-2')).toEqual(['by-order-2']);
    expect(await find({ orderId: 1 })).toEqual(['by-number']);
    expect(await find({ customer: { id: 'c1' }, region: 'eu' })).toEqual(['by-customer']);
    expect(await find({ 'customer.id': 'c1', region: 'eu' })).toEqual(['by-customer']);
    expect(await find({ customer: { id: 'c1' } })).toEqual([]);
    expect(await find({ note: long })).toEqual(['long']);
    expect(await find({ note: `${long}y` })).toEqual([]);
    expect((await store.findWaiting({ topic: 'refunded', payload: { orderId: '1' }, id: 'e', publishedAt: 0 })).map((w) => w.track)).toEqual(['b#0']);
  });

  it('replaces the waits of a record on every save: changed, kept, moved and added ones', async () => {
    const store = await open();
    await store.create(waiting('w', 'paid', { orderId: '1' }, null));
    await store.create(waiting('other', 'paid', { orderId: '1' }, null));
    const find = async (topic: string, payload: Record<string, unknown>): Promise<string[]> =>
      (await store.findWaiting({ topic, payload, id: 'e', publishedAt: 0 })).map((w) => w.instanceId).sort();
    let r = (await store.load('w'))!;
    r.flow.wait = { topics: ['paid'], match: { orderId: '2' }, deadline: null };
    r.version = await store.save(r);
    expect(await find('paid', { orderId: '1' })).toEqual(['other']);
    expect(await find('paid', { orderId: '2' })).toEqual(['w']);
    r.updatedAt = 5;
    r.version = await store.save(r);
    expect(await find('paid', { orderId: '2' })).toEqual(['w']);
    r.flow.wait = { topics: ['shipped', 'paid', 'shipped'], match: { orderId: '3' }, deadline: null };
    r.version = await store.save(r);
    expect(await find('paid', { orderId: '2' })).toEqual([]);
    expect(await find('paid', { orderId: '3' })).toEqual(['w']);
    expect(await find('shipped', { orderId: '3' })).toEqual(['w']);
    r.flow.wait = { topics: ['shipped'], match: { orderId: '3' }, deadline: null };
    r = { ...r, version: await store.save(r) };
    expect(await find('paid', { orderId: '3' })).toEqual([]);
    expect(await find('shipped', { orderId: '3' })).toEqual(['w']);
    expect(await find('paid', { orderId: '1' })).toEqual(['other']);
  });

  it('lists due deadlines of branches and retries, earliest first, up to the limit', async () => {
    const store = await open();
    const r = newRecord('r', 'wf', {}, 0);
    r.flow.retryAt = 400;
    r.group = {
      name: 'g',
      index: 0,
      mode: 'up',
      failure: null,
      nextSeq: 0,
      winner: null,
      plan: null,
      branches: [{ name: 'b', key: 'b#0', state: {}, flow: { ...freshFlow(), status: 'waiting', wait: { topics: ['t'], match: {}, deadline: 100 } }, phase: 'running', settledSeq: null, outcome: null }],
    };
    await store.create(r);
    await store.create(waiting('w', 't', {}, 200));
    expect(await store.dueWaits(1_000, 10)).toEqual([
      { instanceId: 'r', track: 'b#0', deadline: 100 },
      { instanceId: 'w', track: null, deadline: 200 },
      { instanceId: 'r', track: null, deadline: 400 },
    ]);
    expect(await store.dueWaits(1_000, 2)).toEqual([
      { instanceId: 'r', track: 'b#0', deadline: 100 },
      { instanceId: 'w', track: null, deadline: 200 },
    ]);
    expect(await store.dueWaits(150, 10)).toEqual([{ instanceId: 'r', track: 'b#0', deadline: 100 }]);
  });

  it('keeps history lines with every field and appends, never rewrites', async () => {
    const store = await open();
    const full: HistoryEntry = { at: 5, kind: 'step-result', step: 'S', group: 'G', branch: 'b#1', direction: 'down', func: 'rollback', attempt: 3, outcome: 'error', code: 'BOOM', status: 'rolling_back', note: 'why' };
    const bare: HistoryEntry = { at: 6, kind: 'started', step: null, direction: 'up', func: null, attempt: 1, status: 'running' };
    await store.create(newRecord('h', 'wf', {}, 0), { history: [full] });
    const loaded = (await store.load('h'))!;
    await store.save(loaded, { history: [bare, { ...bare, at: 7, future: 'kept' } as HistoryEntry] });
    await expect(store.save(loaded, { history: [line('lost')] })).rejects.toMatchObject({ code: 'VERSION_CONFLICT' });
    expect(await store.history('h')).toEqual([full, bare, { ...bare, at: 7, future: 'kept' }]);
  });

  it('refuses a state that is not JSON before writing anything', async () => {
    const store = await open();
    const bad = newRecord('bad', 'wf', { n: BigInt(1) }, 0);
    await expect(store.create(bad)).rejects.toThrow(TypeError);
    expect(await store.load('bad')).toBeUndefined();
  });

  it('gives CorruptRecordError for a corrupted or newer-version row, and reads every other row', async () => {
    const store = await open();
    for (const id of ['good', 'garbled', 'shapeless', 'newer']) await store.create(waiting(id, 'paid', { orderId: id }, 100));
    const garbled = h.kind === 'sqlite' ? '{"schemaVersion":1,"id":"garbled",' : '"just a string"';
    await h.sql(store, 'UPDATE {instances} SET record = ? WHERE id = ?', [garbled, 'garbled']);
    await h.sql(store, 'UPDATE {instances} SET record = ? WHERE id = ?', [JSON.stringify({ schemaVersion: 1, id: 'shapeless' }), 'shapeless']);
    const newer = { ...(await store.load('newer'))!, schemaVersion: 99 };
    await h.sql(store, 'UPDATE {instances} SET record = ? WHERE id = ?', [JSON.stringify(newer), 'newer']);
    await expect(store.load('garbled')).rejects.toMatchObject({ code: 'CORRUPT_RECORD', details: { instanceId: 'garbled' } });
    await expect(store.load('shapeless')).rejects.toMatchObject({ code: 'CORRUPT_RECORD' });
    await expect(store.load('newer')).rejects.toMatchObject({ code: 'CORRUPT_RECORD', message: expect.stringContaining('newer sagaflow') });
    expect((await store.load('good'))?.state).toEqual({ id: 'good' });
    expect((await store.unfinished()).sort()).toEqual(['garbled', 'good', 'newer', 'shapeless']);
    expect(await store.dueWaits(1_000, 10)).toHaveLength(4);
    expect(await store.findWaiting({ topic: 'paid', payload: { orderId: 'good' }, id: 'e', publishedAt: 0 })).toEqual([{ instanceId: 'good', track: null }]);
    expect((await store.list()).map((s) => s.id).sort()).toEqual(['garbled', 'good', 'newer', 'shapeless']);
  });

  it('reads the records of the instances an event finds waiting in the same query, as load and loadUnleased read them', async () => {
    const store = await open();
    await store.create(waiting('free', 'paid', { orderId: '7' }, null));
    await store.create(waiting('held', 'paid', { orderId: '7' }, null), { lease: { owner: 'other', until: 10_000 } });
    await store.create(waiting('broken', 'paid', { orderId: '7' }, null));
    await store.create(waiting('elsewhere', 'paid', { orderId: '8' }, null));
    await h.sql(store, 'UPDATE {instances} SET record = ? WHERE id = ?', [JSON.stringify({ schemaVersion: 1, id: 'broken' }), 'broken']);
    const event = { topic: 'paid', payload: { orderId: '7' }, id: 'e', publishedAt: 0 };
    const byId = (found: readonly { instanceId: string }[]): unknown[] => [...found].sort((a, b) => a.instanceId.localeCompare(b.instanceId));
    expect(byId(await store.findWaitingRecords(event))).toEqual([
      { instanceId: 'broken', track: null },
      { instanceId: 'free', track: null, record: await store.load('free') },
      { instanceId: 'held', track: null, record: await store.load('held') },
    ]);
    expect(byId(await store.findWaitingRecords(event, { owner: 'me', now: 5_000 }))).toEqual([
      { instanceId: 'broken', track: null },
      { instanceId: 'free', track: null, record: await store.load('free') },
      { instanceId: 'held', track: null, record: 'leased' },
    ]);
    expect(byId(await store.findWaitingRecords(event, { owner: 'other', now: 5_000 }))[2]).toEqual({ instanceId: 'held', track: null, record: await store.load('held') });
    expect(byId(await store.findWaitingRecords(event, { owner: 'me', now: 10_000 }))[2]).toEqual({ instanceId: 'held', track: null, record: await store.load('held') });
  });

  it('applies a published event to a waiting instance it reads with the lookup, without loading it again', async () => {
    const store = await open();
    const wf = defineWorkflow<TestState>({ name: 'pays', steps: [recordingStep('Pay', [], { run: waitsFor('paid', { orderId: 'o-1' }) }), recordingStep('Ship', [])] });
    const runtime = new SagaRuntime({ store, logger: silentLogger, workflows: [wf] });
    try {
      await runtime.start(wf, {}, { id: 'p' });
      await until(async () => (await store.load('p'))?.flow.status === 'waiting', 'the saga to wait');
      const reads = [jest.spyOn(store, 'load'), jest.spyOn(store, 'loadUnleased')];
      expect(await runtime.publish({ topic: 'paid', payload: { orderId: 'o-1' } })).toMatchObject({ delivered: 1 });
      for (const read of reads) expect(read).not.toHaveBeenCalled();
      for (const read of reads) read.mockRestore();
      await until(async () => (await store.load('p'))?.flow.status === 'completed', 'the saga to complete');
    } finally {
      await runtime.close();
    }
  });

  describe('compensation stacks as rows', () => {
    const step = (name: string, index: number): StackEntry => ({ kind: 'step', name, index });
    /** `count` entries named prefix0, prefix1, … from position `from`. */
    const entries = (prefix: string, count: number, from = 0): StackEntry[] => Array.from({ length: count }, (_, i) => step(`${prefix}${from + i}`, from + i));
    const names = (prefix: string, count: number, from = 0): string[] => entries(prefix, count, from).map((e) => e.name);
    const N = INLINE_STACK;
    const positions = (track: string, count: number): [string, number][] => Array.from({ length: count }, (_, i): [string, number] => [track, i]);
    /** A running record whose main line has pushed `main`, with a group whose branches have pushed `branches`. */
    function stacked(id: string, main: StackEntry[], branches: Record<string, StackEntry[]> = {}): InstanceRecord {
      const r = running(id);
      r.flow.stack = main;
      if (Object.keys(branches).length > 0) {
        r.group = {
          name: 'G',
          index: main.length,
          mode: 'up',
          branches: Object.entries(branches).map(([key, stack]) => ({ name: key, key, state: { key }, flow: { ...freshFlow(), stack }, phase: 'running', settledSeq: null, outcome: null })),
          failure: null,
          nextSeq: 0,
          winner: null,
          plan: null,
        };
      }
      return r;
    }
    const stored = async (store: TypeormStore, id: string): Promise<{ record: { flow: { stack: unknown } }; rows: unknown[] }> => {
      const [row] = await h.sql(store, `SELECT ${h.kind === 'postgres' ? 'record::text' : 'record'} AS record FROM {instances} WHERE id = ?`, [id]);
      const rows = await h.sql(store, 'SELECT track, pos FROM {stack} WHERE instance_id = ? ORDER BY track, pos', [id]);
      return { record: JSON.parse(String(row?.record)) as { flow: { stack: unknown } }, rows: rows.map((r) => [r.track, r.pos]) };
    };

    it('keeps each stack longer than INLINE_STACK as rows and the record with its depth, a shorter one inline, and reads the record back whole', async () => {
      const store = await open();
      const record = stacked('s', entries('A', N + 2), { left: entries('L', N + 1), right: [step('R0', 0)], empty: [] });
      await store.create(record);
      const { record: json, rows } = await stored(store, 's');
      expect(json.flow.stack).toBe(N + 2);
      expect(rows).toEqual([...positions('', N + 2), ...positions('left', N + 1)]);
      expect(await store.load('s')).toEqual({ ...record, version: 1 });
      expect(await (await reopen(store)).load('s')).toEqual({ ...record, version: 1 });
    });

    it('writes only the entries pushed since the last write; a pop only lowers the depth, and a push after it overwrites', async () => {
      const store = await open();
      await store.create(stacked('s', entries('A', N + 1)));
      let r = (await store.load('s'))!;
      r.flow.stack.push(step('B', N + 1), step('C', N + 2));
      r.version = await store.save(r);
      await h.sql(store, 'UPDATE {stack} SET entry = ? WHERE instance_id = ? AND pos = 0', [JSON.stringify(step('untouched', 0)), 's']);
      r.flow.stack.push(step('D', N + 3));
      r.version = await store.save(r);
      expect((await store.load('s'))!.flow.stack.map((e) => e.name)).toEqual(['untouched', ...names('A', N, 1), 'B', 'C', 'D']);
      r = (await store.load('s'))!;
      r.flow.stack = r.flow.stack.slice(0, N + 2);
      r.version = await store.save(r);
      expect((await stored(store, 's')).rows).toHaveLength(N + 4);
      expect((await store.load('s'))!.flow.stack.map((e) => e.name)).toEqual(['untouched', ...names('A', N, 1), 'B']);
      r.flow.stack = [...r.flow.stack, step('E', N + 2)];
      await store.save(r);
      expect((await store.load('s'))!.flow.stack.map((e) => e.name)).toEqual(['untouched', ...names('A', N, 1), 'B', 'E']);
    });

    it('writes every entry again when it does not know what is stored (another store wrote the instance)', async () => {
      const store = await open();
      const other = await reopen(store);
      await store.create(stacked('s', entries('A', N + 1)));
      const r = (await other.load('s'))!;
      r.flow.stack.push(step('B', N + 1));
      await other.save(r);
      const back = (await store.load('s'))!;
      back.flow.stack.push(step('C', N + 2));
      await store.save(back);
      expect((await other.load('s'))!.flow.stack.map((e) => e.name)).toEqual([...names('A', N + 1), 'B', 'C']);
    });

    it('reads and continues a record written before the stack rows, with its stacks inline', async () => {
      const store = await open();
      await store.create(running('old'));
      const inline = stacked('old', [step('A', 0), step('B', 1)], { left: [step('L1', 0)] });
      await h.sql(store, 'UPDATE {instances} SET record = ? WHERE id = ?', [JSON.stringify({ ...inline, version: 1 }), 'old']);
      const again = await reopen(store);
      const loaded = (await again.load('old'))!;
      expect(loaded).toEqual({ ...inline, version: 1 });
      loaded.flow.stack.push(...entries('C', N, 2));
      await again.save(loaded);
      const { record: json, rows } = await stored(again, 'old');
      expect(json.flow.stack).toBe(N + 2);
      expect(rows).toEqual(positions('', N + 2));
      expect((await (await reopen(store)).load('old'))!.flow.stack.map((e) => e.name)).toEqual(['A', 'B', ...names('C', N, 2)]);
    });

    it('runs a saga on from a record written before the stack rows: its inline stack is compensated in reverse', async () => {
      const store = await open();
      const log: string[] = [];
      const wf = defineWorkflow<TestState>({
        name: 'old-stack',
        steps: [recordingStep('A', log), recordingStep('B', log), recordingStep('W', log, { run: waitsFor('go', { n: 1 }) }), recordingStep('C', log, { run: fails() })],
      });
      // One worker name: on PostgreSQL the second runtime holds the lease the first one took.
      const first = new SagaRuntime({ store, logger: silentLogger, workflows: [wf], workerId: 'w' });
      await first.start(wf, {}, { id: 'o' });
      await until(async () => (await store.load('o'))?.flow.status === 'waiting', 'the saga to wait');
      await first.close();
      // As a sagaflow before the stack rows wrote it: the stack inline, no rows.
      const inline = (await store.load('o'))!;
      expect(inline.flow.stack.map((e) => e.name)).toEqual(['A', 'B', 'W']);
      await h.sql(store, 'UPDATE {instances} SET record = ? WHERE id = ?', [JSON.stringify(inline), 'o']);
      await h.sql(store, 'DELETE FROM {stack} WHERE instance_id = ?', ['o']);
      const again = await reopen(store);
      const second = new SagaRuntime({ store: again, logger: silentLogger, workflows: [wf], workerId: 'w' });
      try {
        log.length = 0;
        expect(await second.publish({ topic: 'go', payload: { n: 1 } })).toMatchObject({ delivered: 1 });
        await until(async () => (await again.load('o'))?.flow.status === 'rolled_back', 'the saga to roll back');
        expect(log).toEqual(['W.runHandleInfo', 'C.run', 'C.rollback', 'W.rollback', 'B.rollback', 'A.rollback']);
      } finally {
        await second.close();
      }
    });

    it('gives CorruptRecordError when an entry below a depth is missing', async () => {
      const store = await open();
      await store.create(stacked('s', entries('A', N + 1)));
      await h.sql(store, 'DELETE FROM {stack} WHERE instance_id = ? AND pos = 0', ['s']);
      await expect((await reopen(store)).load('s')).rejects.toMatchObject({ code: 'CORRUPT_RECORD', details: { instanceId: 's' } });
    });

    it('are put back inline in the records when their migration is undone', async () => {
      const store = await open();
      const record = stacked('s', entries('A', N + 1), { left: entries('L', N + 1) });
      await store.create(record);
      const runner = store.dataSource.createQueryRunner();
      try {
        await new SagaflowStack1764300000000(schemaOf(h, store)).down(runner);
        const [row] = await h.sql(store, `SELECT ${h.kind === 'postgres' ? 'record::text' : 'record'} AS record FROM {instances} WHERE id = ?`, ['s']);
        expect(JSON.parse(String(row?.record))).toEqual({ ...record, version: 1 });
        await new SagaflowStack1764300000000(schemaOf(h, store)).up(runner);
      } finally {
        if (h.kind === 'postgres') await runner.release();
      }
      expect(await (await reopen(store)).load('s')).toEqual({ ...record, version: 1 });
    });

    it('are purged with their instance', async () => {
      const store = await open();
      const done = stacked('s', entries('A', N + 1));
      done.flow.status = 'completed';
      done.flow.inFlight = false;
      await store.create(done);
      expect(await store.purge({ before: 1, statuses: ['completed'], limit: 10 })).toEqual(['s']);
      expect(await h.sql(store, 'SELECT pos FROM {stack}')).toEqual([]);
    });

    it('moves a stack to rows when it grows past INLINE_STACK and back inline when it shrinks, reading it whole each time', async () => {
      const store = await open();
      await store.create(stacked('s', entries('A', N)));
      expect(await stored(store, 's')).toMatchObject({ rows: [] });
      expect(Array.isArray((await stored(store, 's')).record.flow.stack)).toBe(true);
      let r = (await store.load('s'))!;
      r.flow.stack.push(step('B', N));
      r.version = await store.save(r);
      expect(await stored(store, 's')).toMatchObject({ record: { flow: { stack: N + 1 } }, rows: positions('', N + 1) });
      r.flow.stack = r.flow.stack.slice(0, N - 1);
      r.version = await store.save(r);
      expect(Array.isArray((await stored(store, 's')).record.flow.stack)).toBe(true);
      expect((await store.load('s'))!.flow.stack.map((e) => e.name)).toEqual(names('A', N - 1));
      r = (await store.load('s'))!;
      r.flow.stack.push(step('C', N - 1), step('D', N));
      r.version = await store.save(r);
      expect((await stored(store, 's')).record.flow.stack).toBe(N + 1);
      expect((await (await reopen(store)).load('s'))!.flow.stack.map((e) => e.name)).toEqual([...names('A', N - 1), 'C', 'D']);
    });
  });

  it('gives CorruptRecordError for a corrupted inbox event of one instance only, and skips a corrupted retained event', async () => {
    const store = await open();
    await store.create(waiting('a', 'paid', {}, null));
    await store.create(waiting('b', 'paid', {}, null));
    await store.acceptEvent({ topic: 'paid', payload: {}, id: 'e1', publishedAt: 1 }, [{ instanceId: 'a', track: null }, { instanceId: 'b', track: null }], null);
    await h.sql(store, 'UPDATE {inbox} SET event = ? WHERE instance_id = ?', [JSON.stringify({ topic: 5 }), 'a']);
    await expect(store.pendingEvents('a')).rejects.toMatchObject({ code: 'CORRUPT_RECORD', details: { instanceId: 'a' } });
    expect((await store.pendingEvents('b')).map((p) => p.event.id)).toEqual(['e1']);
    await store.acceptEvent({ topic: 'reply', payload: {}, id: 'r1', publishedAt: 1 }, [], 100);
    await store.acceptEvent({ topic: 'reply', payload: {}, id: 'r2', publishedAt: 2 }, [], 100);
    await h.sql(store, 'UPDATE {retained} SET event = ? WHERE event_id = ?', [JSON.stringify([1, 2]), 'r1']);
    expect((await store.takeRetained('a', { topics: ['reply'], match: {}, deadline: null }, 10))?.id).toBe('r2');
  });

  it('drops __proto__ keys from stored records, inbox and retained events', async () => {
    const store = await open();
    await store.create(waiting('p', 'paid', {}, null));
    const record = (await store.load('p'))!;
    const json = JSON.stringify(record).replace('"state":{', '"state":{"__proto__":{"polluted":true},');
    await h.sql(store, 'UPDATE {instances} SET record = ? WHERE id = ?', [json, 'p']);
    const evil = '{"topic":"paid","id":"e1","publishedAt":1,"payload":{"__proto__":{"polluted":true},"ok":1}}';
    await store.acceptEvent({ topic: 'paid', payload: { ok: 1 }, id: 'e1', publishedAt: 1 }, [{ instanceId: 'p', track: null }], null);
    await store.acceptEvent({ topic: 'paid', payload: { ok: 1 }, id: 'e1', publishedAt: 1 }, [], 100);
    await h.sql(store, 'UPDATE {inbox} SET event = ?', [evil]);
    await h.sql(store, 'UPDATE {retained} SET event = ?', [evil]);
    const [stored] = await h.sql(store, `SELECT ${h.kind === 'postgres' ? 'record::text' : 'record'} AS record FROM {instances} WHERE id = ?`, ['p']);
    expect(String(stored?.record)).toContain('__proto__');

    const state = (await store.load('p'))!.state as Record<string, unknown>;
    const [pending] = await store.pendingEvents('p');
    const retained = await store.takeRetained('p', { topics: ['paid'], match: {}, deadline: null }, 10);
    for (const value of [state, pending!.event.payload, retained!.payload]) {
      expect(Object.prototype.hasOwnProperty.call(value, '__proto__')).toBe(false);
      expect(Object.getPrototypeOf(value)).toBe(Object.prototype);
      expect((value as { polluted?: unknown }).polluted).toBeUndefined();
    }
    expect(pending!.event.payload).toEqual({ ok: 1 });
    expect(({} as { polluted?: unknown }).polluted).toBeUndefined();
  });

  describe('leases written with transitions', () => {
    const lease = async (store: TypeormStore, id: string): Promise<{ owner: unknown; until: unknown }> => {
      const [row] = await h.sql(store, 'SELECT lease_owner, lease_until FROM {instances} WHERE id = ?', [id]);
      return { owner: row?.lease_owner ?? null, until: row?.lease_until === null || row?.lease_until === undefined ? null : Number(row.lease_until) };
    };

    it('takes the lease with create and renews it with save, in the same write', async () => {
      const store = await open();
      expect(await store.create(running('r'), { history: [line('created')], lease: { owner: 'A', until: 1_000 } })).toBe(true);
      expect(await lease(store, 'r')).toEqual({ owner: 'A', until: 1_000 });
      expect(await store.acquire('r', 'B', 2_000, 999)).toBe(false);
      const loaded = (await store.load('r'))!;
      expect(await store.save(loaded, { history: [line('saved')], lease: { owner: 'A', until: 5_000 } })).toBe(2);
      expect(await lease(store, 'r')).toEqual({ owner: 'A', until: 5_000 });
      expect(await store.acquire('r', 'B', 6_000, 4_999)).toBe(false);
      expect(await store.claimStale('B', 6_000, 4_999, 10)).toEqual([]);
      expect(await store.claimStale('B', 6_000, 5_000, 10)).toEqual(['r']);
    });

    it('keeps the lease when a save carries none, and changes nothing when a save is refused', async () => {
      const store = await open();
      await store.create(running('r'), { lease: { owner: 'A', until: 1_000 } });
      const loaded = (await store.load('r'))!;
      await store.save(loaded);
      expect(await lease(store, 'r')).toEqual({ owner: 'A', until: 1_000 });
      await expect(store.save(loaded, { lease: { owner: 'B', until: 9_000 } })).rejects.toMatchObject({ code: 'VERSION_CONFLICT' });
      expect(await lease(store, 'r')).toEqual({ owner: 'A', until: 1_000 });
      expect(await store.create(running('r'), { lease: { owner: 'B', until: 9_000 } })).toBe(false);
      expect(await lease(store, 'r')).toEqual({ owner: 'A', until: 1_000 });
      await store.create(running('free'));
      expect(await lease(store, 'free')).toEqual({ owner: null, until: null });
    });

    it("compares lease, due and retention times with the caller's clock, never the database's", async () => {
      const store = await open();
      const past = 1_000; // 1970: long expired by the database's clock
      const future = Date.UTC(3000, 0, 1); // far ahead of it
      await store.create(running('old'), { lease: { owner: 'A', until: past } });
      expect(await store.acquire('old', 'B', past + 10, past - 1)).toBe(false);
      expect(await store.claimStale('B', past + 10, past - 1, 10)).toEqual([]);
      await store.create(waiting('later', 't', {}, future));
      expect(await store.dueWaits(future - 1, 10)).toEqual([]);
      expect(await store.dueWaits(future, 10)).toEqual([{ instanceId: 'later', track: null, deadline: future }]);
      await store.acceptEvent({ topic: 'late', payload: {}, id: 'e', publishedAt: past }, [], past + 5);
      expect(await store.takeRetained('x', { topics: ['late'], match: {}, deadline: null }, past + 5)).toMatchObject({ id: 'e' });
    });
  });

  describe('the inbox', () => {
    it('lists the instances with pending deliveries, oldest delivery first, up to the limit', async () => {
      const store = await open();
      for (const id of ['a', 'b', 'c']) await store.create(waiting(id, 'paid', {}, null));
      expect(await store.inboxInstances(10)).toEqual([]);
      const paid = (id: string, at: number) => ({ topic: 'paid', payload: {}, id, publishedAt: at });
      await store.acceptEvent(paid('e1', 20), [{ instanceId: 'b', track: null }], null);
      await store.acceptEvent(paid('e2', 10), [{ instanceId: 'c', track: null }, { instanceId: 'b', track: 'x#0' }, { instanceId: 'gone', track: null }], null);
      await store.acceptEvent(paid('e3', 30), [{ instanceId: 'a', track: null }], null);
      expect(await store.inboxInstances(10)).toEqual(['b', 'c', 'a']);
      expect(await store.inboxInstances(2)).toEqual(['b', 'c']);
      const b = (await store.load('b'))!;
      await store.save(b, { consumed: [{ eventId: 'e2', track: 'x#0' }] });
      expect(await store.inboxInstances(10)).toEqual(['c', 'b', 'a']);
      await store.save({ ...b, version: 2 }, { consumed: [{ eventId: 'e1', track: null }] });
      expect(await store.inboxInstances(10)).toEqual(['c', 'a']);
    });
  });

  it('refuses calls once closed', async () => {
    const store = await open();
    await store.close();
    await expect(store.load('x')).rejects.toMatchObject({ code: 'STORE_CLOSED' });
    await store.close();
  });
}

function schemaOf(h: Harness, store: TypeormStore): string | undefined {
  return h.kind === 'postgres' ? ((store.dataSource.options as { schema?: string }).schema ?? undefined) : undefined;
}

/** Group commit: concurrent writes of many instances share transactions; a failing one fails alone. */
function groupCommitTests(h: Harness): void {
  let store: TypeormStore;
  beforeEach(async () => {
    store = await h.open();
  });
  afterEach(async () => store.close());

  async function seed(count: number): Promise<InstanceRecord[]> {
    await Promise.all(Array.from({ length: count }, (_, i) => store.create(newRecord(`i${i}`, 'wf', { i }, 0))));
    return Promise.all(Array.from({ length: count }, async (_, i) => (await store.load(`i${i}`))!));
  }

  it('commits 100 concurrent saves in far fewer transactions', async () => {
    const records = await seed(100);
    const before = store.stats;
    const versions = await Promise.all(records.map((r) => store.save({ ...r, state: { saved: true } }, { history: [line('saved')] })));
    const after = store.stats;
    expect(versions).toEqual(records.map(() => 2));
    expect(after.writes - before.writes).toBe(100);
    expect(after.transactions - before.transactions).toBeLessThanOrEqual(10);
    expect(after.largestBatch).toBeGreaterThanOrEqual(20);
    for (const r of records) expect((await store.load(r.id))?.state).toEqual({ saved: true });
  });

  it('fails only the stale save of a batch with VERSION_CONFLICT', async () => {
    const records = await seed(10);
    const stale = records[3]!;
    await store.save(stale);
    const before = store.stats.transactions;
    const results = await Promise.allSettled(records.map((r) => store.save({ ...r, state: { again: true } }, { history: [line('again')] })));
    // One transaction per write connection at most (SQLite has one): the conflict re-ran nothing.
    expect(store.stats.transactions - before).toBeLessThanOrEqual(h.kind === 'sqlite' ? 1 : 2);
    expect(results.map((r) => r.status)).toEqual(records.map((r) => (r === stale ? 'rejected' : 'fulfilled')));
    expect((results[3] as PromiseRejectedResult).reason).toMatchObject({ code: 'VERSION_CONFLICT' });
    expect((await store.load(stale.id))?.state).toEqual({ i: 3 });
    expect(await store.history(stale.id)).toEqual([]);
    expect((await store.load('i4'))?.state).toEqual({ again: true });
  });

  it('rolls back a write that fails part-way without failing the rest of its batch', async () => {
    const records = await seed(6);
    await h.sql(store, 'DROP TABLE {history}');
    // Saves with history lines fail after their instance row was updated; the others must commit.
    const results = await Promise.allSettled(records.map((r, i) => store.save({ ...r, state: { n: i } }, i % 2 === 0 ? { history: [line('x')] } : {})));
    expect(results.map((r) => r.status)).toEqual(['rejected', 'fulfilled', 'rejected', 'fulfilled', 'rejected', 'fulfilled']);
    const loaded = await Promise.all(records.map(async (r) => (await store.load(r.id))!));
    expect(loaded.map((r) => r.version)).toEqual([1, 2, 1, 2, 1, 2]);
    expect(loaded.map((r) => r.state)).toEqual([{ i: 0 }, { n: 1 }, { i: 2 }, { n: 3 }, { i: 4 }, { n: 5 }]);
  });


  it('writes again once a failing table is back: nothing of a failed batch (prepared statements included) lingers', async () => {
    const records = await seed(4);
    await Promise.all(records.map((r) => store.save({ ...r, state: { n: 1 } }, { history: [line('one')] })));
    const schema = schemaOf(h, store);
    const away = schema === undefined ? '"sagaflow_history_away"' : `"${schema}"."sagaflow_history_away"`;
    await h.sql(store, 'ALTER TABLE {history} RENAME TO sagaflow_history_away');
    const failed = await Promise.allSettled(records.map((r) => store.save({ ...r, version: 2, state: { n: 2 } }, { history: [line('two')] })));
    expect(failed.map((r) => r.status)).toEqual(['rejected', 'rejected', 'rejected', 'rejected']);
    await h.sql(store, `ALTER TABLE ${away} RENAME TO sagaflow_history`);
    expect(await Promise.all(records.map((r) => store.save({ ...r, version: 2, state: { n: 3 } }, { history: [line('three')] })))).toEqual([3, 3, 3, 3]);
    for (const r of records) expect((await store.history(r.id)).map((l) => l.outcome)).toEqual(['one', 'three']);
  });

  it('keeps states with quotes, backslashes, unicode and question marks intact through a batch', async () => {
    const records = await seed(5);
    const tricky = { text: "it's a \\ back\\slash, a 'quote', \"double\", ?, $1, \u00e9\u4e2d\ud83d\ude00", nested: { n: -1.5, big: 2 ** 52, yes: true, none: null } };
    await Promise.all(records.map((r) => store.save({ ...r, state: tricky }, { history: [{ ...line("o'k"), note: 'a \\ note?' }] })));
    for (const r of records) {
      expect((await store.load(r.id))?.state).toEqual(tricky);
      expect((await store.history(r.id)).map((h) => [h.outcome, h.note])).toEqual([["o'k", 'a \\ note?']]);
    }
  });

  it('leaves the wait rows alone when a save keeps the same waits, and replaces them when they change', async () => {
    const id = h.kind === 'sqlite' ? 'rowid' : 'ctid::text';
    const rows = async (): Promise<unknown[]> => (await h.sql(store, `SELECT ${id} AS row, topic FROM {waits} WHERE instance_id = ? ORDER BY topic`, ['w'])).map((r) => [r.row, r.topic]);
    await store.create(waiting('w', 'paid', { order: 1 }, null));
    const first = await rows();
    const loaded = (await store.load('w'))!;
    await store.save({ ...loaded, state: { again: true } });
    expect(await rows()).toEqual(first);
    expect(await store.findWaiting({ id: 'e', topic: 'paid', payload: { order: 1 }, publishedAt: 0 })).toEqual([{ instanceId: 'w', track: null }]);
    const again = (await store.load('w'))!;
    again.flow.wait = { topics: ['shipped'], match: { order: 1 }, deadline: null };
    await store.save(again);
    expect((await rows()).map((r) => (r as unknown[])[1])).toEqual(['shipped']);
    expect(await store.findWaiting({ id: 'e', topic: 'paid', payload: { order: 1 }, publishedAt: 0 })).toEqual([]);
  });
}

describe('SQL literals for statements sent several at a time', () => {
  it('quotes every value, doubles quotes, escapes backslashes and writes null as NULL', () => {
    expect(Dialect.inline('SELECT ?, ?, ?, ?, ?, ?', ["it's", 'a\\b', 42, true, null, -1.5])).toBe("SELECT 'it''s',  E'a\\\\b', '42', 'true', NULL, '-1.5'");
  });

  it('refuses a value that has no literal (an object, NaN) with a TypeError', () => {
    expect(() => Dialect.inline('SELECT ?', [{}])).toThrow(TypeError);
    expect(() => Dialect.inline('SELECT ?', [Number.NaN])).toThrow(TypeError);
  });
});

describe('the TypeORM store on SQLite', () => {
  const h = sqliteHarness();
  let n = 0;
  let dir = '';
  beforeAll(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'sagaflow-sqlite-contract-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  describe('passes the store contract', () => {
    storeContract(async () => {
      const store = TypeormStore.sqlite({ file: path.join(dir, `contract-${++n}.db`) });
      await store.init();
      return store;
    });
  });

  describe('passes the durable-store tests', () => durableStoreTests(h));

  describe('group commit', () => {
    groupCommitTests(h);

    it('runs one write per transaction with maxBatch 1', async () => {
      const strict = TypeormStore.sqlite({ file: path.join(dir, 'strict.db'), maxBatch: 1 });
      try {
        await Promise.all(Array.from({ length: 20 }, (_, i) => strict.create(newRecord(`s${i}`, 'wf', {}, 0))));
        expect(strict.stats).toEqual({ transactions: 20, writes: 20, largestBatch: 1 });
      } finally {
        await strict.close();
      }
    });
  });

  it('defaults to .sagaflow/sagaflow.db in the working directory', async () => {
    const cwd = process.cwd();
    const work = mkdtempSync(path.join(tmpdir(), 'sagaflow-cwd-'));
    process.chdir(work);
    try {
      expect(defaultSqliteFile()).toBe(path.join(work, '.sagaflow', 'sagaflow.db'));
      const store = TypeormStore.sqlite();
      await store.create(newRecord('d', 'wf', {}, 0));
      await store.close();
      expect(existsSync(path.join(work, '.sagaflow', 'sagaflow.db'))).toBe(true);
    } finally {
      process.chdir(cwd);
      rmSync(work, { recursive: true, force: true });
    }
  });

  it('uses WAL with the chosen synchronous level', async () => {
    const store = TypeormStore.sqlite({ file: path.join(dir, 'pragmas.db'), synchronous: 'NORMAL' });
    try {
      await store.init();
      expect(await store.dataSource.query('PRAGMA journal_mode')).toEqual([{ journal_mode: 'wal' }]);
      expect(await store.dataSource.query('PRAGMA synchronous')).toEqual([{ synchronous: 1 }]);
    } finally {
      await store.close();
    }
  });

  it('is not shared: one embedded process owns the file', async () => {
    const store = await h.open();
    try {
      expect(store.shared).toBe(false);
    } finally {
      await store.close();
    }
  });

  it('calls inbox listeners in this process once a stored delivery is committed, and only for stored ones', async () => {
    const store = await h.open();
    try {
      await store.create(waiting('a', 'paid', {}, null));
      await store.create(waiting('b', 'paid', {}, null));
      const heard: string[] = [];
      const stop = store.onInbox((id) => heard.push(id));
      store.onInbox(() => {
        throw new Error('a throwing listener changes nothing');
      });
      const event = { topic: 'paid', payload: {}, id: 'e1', publishedAt: 1 };
      const accepted = store.acceptEvent(event, [{ instanceId: 'a', track: null }, { instanceId: 'b', track: null }, { instanceId: 'gone', track: null }], null);
      expect(heard).toEqual([]);
      await accepted;
      expect(heard).toEqual(['a', 'b']);
      // Already stored, retained, or for nobody: nothing new to hear.
      await store.acceptEvent(event, [{ instanceId: 'a', track: null }], null);
      await store.acceptEvent({ ...event, id: 'e2' }, [], 100);
      expect(heard).toEqual(['a', 'b']);
      stop();
      await store.acceptEvent({ ...event, id: 'e3' }, [{ instanceId: 'a', track: null }], null);
      expect(heard).toEqual(['a', 'b']);
      expect((await store.pendingEvents('a')).map((p) => p.event.id)).toEqual(['e1', 'e3']);
    } finally {
      await store.close();
    }
  });

  it('is opened by the runtime: init() is what it awaits before its first use', async () => {
    const store = TypeormStore.sqlite({ file: path.join(dir, 'runtime-init.db') });
    const init = jest.spyOn(store, 'init');
    const wf = defineWorkflow<{ trail: string[] }>({ name: 'init-check', steps: [recordingStep('A', [])] });
    const runtime = new SagaRuntime({ store, logger: silentLogger, workflows: [wf] });
    try {
      const handle = await runtime.start(wf, { trail: [] }, { id: 'first' });
      expect(init).toHaveBeenCalled();
      expect((await handle.result()).status).toBe('completed');
      expect((await store.load('first'))?.flow.status).toBe('completed');
    } finally {
      await runtime.close();
      await store.close();
    }
  });

  it('works in memory on one connection', async () => {
    const store = TypeormStore.sqlite({ file: ':memory:' });
    try {
      await store.create(waiting('m', 't', { k: 'v' }, null));
      expect(await store.findWaiting({ topic: 't', payload: { k: 'v' }, id: 'e', publishedAt: 0 })).toEqual([{ instanceId: 'm', track: null }]);
    } finally {
      await store.close();
    }
  });

  describe('writing only what a transition changed', () => {
    /** Counts the UPDATEs that name the indexed columns of an instance (a trigger on `UPDATE OF status` fires then). */
    async function indexedUpdates(store: TypeormStore): Promise<() => Promise<number>> {
      await h.sql(store, 'CREATE TABLE indexed_updates (id TEXT)');
      await h.sql(store, 'CREATE TRIGGER indexed_updates_log AFTER UPDATE OF status, next_due, parked ON {instances} BEGIN INSERT INTO indexed_updates VALUES (new.id); END');
      return async () => (await h.sql(store, 'SELECT count(*) AS n FROM indexed_updates'))[0]?.n as number;
    }

    it('updates the indexed columns of an instance only when its status, deadlines or parked flag change', async () => {
      const store = await h.open();
      try {
        const count = await indexedUpdates(store);
        await store.create(running('u'));
        let r = (await store.load('u'))!;
        r.version = await store.save({ ...r, state: { step: 1 } });
        r = (await store.load('u'))!;
        r.version = await store.save({ ...r, state: { step: 2 } });
        expect(await count()).toBe(0);
        r = (await store.load('u'))!;
        r.flow.status = 'waiting';
        r.flow.inFlight = false;
        r.flow.wait = { topics: ['paid'], match: {}, deadline: 5_000 };
        await store.save(r);
        expect(await count()).toBe(1);
        const stored = (await h.sql(store, 'SELECT status, next_due, parked, version FROM {instances} WHERE id = ?', ['u']))[0];
        expect(stored).toEqual({ status: 'waiting', next_due: 5_000, parked: 1, version: 4 });
        expect(await store.dueWaits(5_000, 10)).toEqual([{ instanceId: 'u', track: null, deadline: 5_000 }]);
      } finally {
        await store.close();
      }
    });

    it('writes the definition version and fingerprint when a save moves the instance to another version', async () => {
      const store = await h.open();
      try {
        await store.create({ ...running('u'), workflowVersion: 1, fingerprint: 'f1' });
        let r = (await store.load('u'))!;
        r.version = await store.save({ ...r, state: { step: 1 } });
        r = (await store.load('u'))!;
        await store.save({ ...r, workflowVersion: 2, fingerprint: 'f2' });
        expect((await h.sql(store, 'SELECT def_version, fingerprint FROM {instances} WHERE id = ?', ['u']))[0]).toEqual({ def_version: 2, fingerprint: 'f2' });
        expect((await store.list({ version: 2 })).map((s) => s.id)).toEqual(['u']);
      } finally {
        await store.close();
      }
    });

    it('writes the indexed columns when another store saved the instance since this one last wrote it', async () => {
      const store = await h.open();
      const other = await h.reopen(store);
      try {
        await store.create(running('u'));
        const r = (await other.load('u'))!;
        r.flow.status = 'waiting';
        r.flow.inFlight = false;
        r.flow.wait = { topics: ['paid'], match: {}, deadline: 7_000 };
        await other.save(r);
        const back = (await store.load('u'))!;
        back.flow.wait = null;
        back.flow.inFlight = true;
        back.flow.status = 'running';
        await store.save(back);
        expect((await h.sql(store, 'SELECT status, next_due, parked FROM {instances} WHERE id = ?', ['u']))[0]).toEqual({ status: 'running', next_due: null, parked: 0 });
      } finally {
        await Promise.all([store.close(), other.close()]);
      }
    });

    it("removes an ended instance's kept events in its final write, and answers them to dropEvents without another transaction", async () => {
      const store = await h.open();
      try {
        await store.create(waiting('w', 'reply', { to: 'x' }, null));
        await store.acceptEvent({ topic: 'late', payload: {}, id: 'e-kept', instanceId: 'w', publishedAt: 1 }, [], KEEP_FOR_INSTANCE);
        await store.acceptEvent({ topic: 'reply', payload: { to: 'x' }, id: 'e-delivered', publishedAt: 2 }, [{ instanceId: 'w', track: null }], null);
        const r = (await store.load('w'))!;
        r.flow.wait = null;
        r.flow.status = 'completed';
        await store.save(r);
        expect(await store.pendingEvents('w')).toEqual([]);
        expect(await h.sql(store, 'SELECT event_id FROM {retained}')).toEqual([]);
        const transactions = store.stats.transactions;
        expect((await store.dropEvents('w')).map((e) => e.id).sort()).toEqual(['e-delivered', 'e-kept']);
        expect(store.stats.transactions).toBe(transactions);
        expect(await store.dropEvents('w')).toEqual([]);
      } finally {
        await store.close();
      }
    });

    it('still drops an event kept for an instance after its final write was queued', async () => {
      const store = await h.open();
      try {
        await store.create(waiting('w', 'reply', { to: 'x' }, null));
        await store.acceptEvent({ topic: 'early', payload: {}, id: 'e-early', instanceId: 'w', publishedAt: 1 }, [], KEEP_FOR_INSTANCE);
        const r = (await store.load('w'))!;
        r.flow.wait = null;
        r.flow.status = 'rolled_back';
        const saved = store.save(r);
        const late = store.acceptEvent({ topic: 'late', payload: {}, id: 'e-late', instanceId: 'w', publishedAt: 2 }, [], KEEP_FOR_INSTANCE);
        await Promise.all([saved, late]);
        expect((await store.dropEvents('w')).map((e) => e.id).sort()).toEqual(['e-early', 'e-late']);
        expect(await h.sql(store, 'SELECT event_id FROM {retained}')).toEqual([]);
      } finally {
        await store.close();
      }
    });
  });
});

describe('the TypeORM store on PostgreSQL', () => {
  const h = postgresHarness();
  let url = '';
  let n = 0;
  beforeAll(async () => {
    url = await createTestDatabase('typeorm_store_pg');
  });
  afterAll(async () => dropTestDatabase(url));

  describe('passes the store contract', () => {
    storeContract(async () => {
      const store = TypeormStore.postgres({ url, schema: `contract_${++n}`, poolSize: 4 });
      await store.init();
      return store;
    });
  });

  describe('passes the durable-store tests', () => durableStoreTests(h));

  describe('group commit', () => groupCommitTests(h));

  describe('with several workers', () => {
    const opened: TypeormStore[] = [];
    const worker = async (schema: string, options: Partial<PostgresUrlOptions> = {}): Promise<TypeormStore> => {
      const store = TypeormStore.postgres({ url, schema, poolSize: 8, ...options });
      opened.push(store);
      await store.init();
      return store;
    };
    afterEach(async () => {
      await Promise.all(opened.splice(0).map((s) => s.close()));
    });

    it('lets exactly one of two concurrent saves of the same version win', async () => {
      const schema = `workers_${++n}`;
      const [a, b] = await Promise.all([worker(schema), worker(schema)]);
      const ids = Array.from({ length: 30 }, (_, i) => `c${i}`);
      await Promise.all(ids.map((id) => a.create(newRecord(id, 'wf', {}, 0))));
      for (const id of ids) {
        const [ra, rb] = await Promise.all([a.load(id), b.load(id)]);
        const results = await Promise.allSettled([a.save({ ...ra!, state: { by: 'a' } }, { history: [line('a')] }), b.save({ ...rb!, state: { by: 'b' } }, { history: [line('b')] })]);
        expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
        const rejected = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
        expect(rejected).toHaveLength(1);
        expect(rejected[0]!.reason).toMatchObject({ code: 'VERSION_CONFLICT' });
        const winner = results[0].status === 'fulfilled' ? 'a' : 'b';
        expect((await a.load(id))?.state).toEqual({ by: winner });
        expect((await b.history(id)).map((h) => h.outcome)).toEqual([winner]);
      }
    });

    it('never lets two workers claim the same stale instance', async () => {
      const schema = `claims_${++n}`;
      const [a, b, c] = await Promise.all([worker(schema), worker(schema), worker(schema)]);
      const total = 600;
      for (let i = 0; i < total; i += 100) await Promise.all(Array.from({ length: 100 }, (_, j) => a.create(running(`r${i + j}`))));
      const claimed = new Map<string, string[]>();
      const claimAll = async (store: TypeormStore, owner: string): Promise<void> => {
        for (;;) {
          const ids = await store.claimStale(owner, 1_000_000, 10, 7);
          if (ids.length === 0) return;
          for (const id of ids) claimed.set(id, [...(claimed.get(id) ?? []), owner]);
        }
      };
      await Promise.all([claimAll(a, 'a'), claimAll(a, 'a2'), claimAll(b, 'b'), claimAll(b, 'b2'), claimAll(c, 'c'), claimAll(c, 'c2')]);
      expect(claimed.size).toBe(total);
      expect([...claimed.values()].filter((owners) => owners.length > 1)).toEqual([]);
      // every worker got some: they really ran at once
      expect(new Set([...claimed.values()].map((o) => o[0]![0])).size).toBe(3);
    });

    it('lets one of many concurrent acquirers hold a lease', async () => {
      const schema = `leases_${++n}`;
      const [a, b] = await Promise.all([worker(schema), worker(schema)]);
      await a.create(newRecord('l', 'wf', {}, 0));
      for (let round = 0; round < 20; round++) {
        const now = round * 1_000;
        const results = await Promise.all(['a1', 'a2', 'b1', 'b2'].map((owner) => (owner.startsWith('a') ? a : b).acquire('l', `${owner}-${round}`, now + 500, now)));
        expect(results.filter(Boolean)).toHaveLength(1);
      }
    });

    it('is shared: several worker processes may use its tables', async () => {
      const store = await worker(`shared_${++n}`);
      expect(store.shared).toBe(true);
    });

    const listenBackends = async (store: TypeormStore): Promise<number[]> =>
      (
        await store.dataSource.query<{ pid: number }[]>(
          'SELECT pid FROM pg_stat_activity WHERE application_name = $1 AND datname = current_database() ORDER BY pid',
          [LISTEN_APPLICATION_NAME],
        )
      ).map((r) => r.pid);

    it("wakes another store's inbox listeners through LISTEN/NOTIFY, and none on another schema", async () => {
      const schema = `notify_${++n}`;
      const [a, b, c] = await Promise.all([worker(schema), worker(schema), worker(`notify_other_${n}`)]);
      await a.create(waiting('i1', 'paid', {}, null));
      await c.create(waiting('c1', 'paid', {}, null));
      const heardB: string[] = [];
      const heardC: string[] = [];
      b.onInbox((id) => heardB.push(id));
      c.onInbox((id) => heardC.push(id));
      await until(() => b.listening && c.listening, 'the LISTEN connections');
      const started = performance.now();
      await a.acceptEvent({ topic: 'paid', payload: {}, id: 'e1', publishedAt: 1 }, [{ instanceId: 'i1', track: null }], null);
      await until(() => heardB.includes('i1'), 'the notification');
      const latencyMs = performance.now() - started;
      expect(latencyMs).toBeLessThan(1_000);
      // Nothing stored, nothing notified: an instance that does not exist, a delivery stored already, a retained event.
      await a.acceptEvent({ topic: 'paid', payload: {}, id: 'e1', publishedAt: 1 }, [{ instanceId: 'i1', track: null }, { instanceId: 'nobody', track: null }], null);
      await a.acceptEvent({ topic: 'paid', payload: {}, id: 'e2', publishedAt: 1 }, [], 1_000);
      // c's own delivery comes after a's notifications: once c heard it, it would have heard a's.
      await c.acceptEvent({ topic: 'paid', payload: {}, id: 'e3', publishedAt: 1 }, [{ instanceId: 'c1', track: null }], null);
      await until(() => heardC.includes('c1'), "c's notification");
      await a.acceptEvent({ topic: 'paid', payload: {}, id: 'e4', publishedAt: 2 }, [{ instanceId: 'i1', track: null }], null);
      await until(() => heardB.length === 2, 'the second notification');
      expect(heardB).toEqual(['i1', 'i1']);
      expect(heardC).toEqual(['c1']);
    });

    it('reconnects a dropped LISTEN connection with backoff and reports the deliveries stored while it was away', async () => {
      const schema = `reconnect_${++n}`;
      const a = await worker(schema);
      const b = await worker(schema, { notifications: { minBackoffMs: 300, maxBackoffMs: 1_000 }, logger: { warn: () => undefined } });
      for (const id of ['x', 'y']) await a.create(waiting(id, 'paid', {}, null));
      const heard: string[] = [];
      b.onInbox((id) => heard.push(id));
      await until(() => b.listening, 'the LISTEN connection');
      expect(b.listenConnects).toBe(1);
      const [pid] = await listenBackends(a);
      await a.dataSource.query('SELECT pg_terminate_backend($1)', [pid]);
      await until(() => !b.listening, 'the dropped connection to be noticed');
      // Stored (and notified) while nobody listens: heard through the inbox once the listener is back.
      await a.acceptEvent({ topic: 'paid', payload: {}, id: 'e1', publishedAt: 1 }, [{ instanceId: 'x', track: null }], null);
      await until(() => b.listening && heard.includes('x'), 'the reconnection and its resync');
      expect(b.listenConnects).toBe(2);
      expect(await listenBackends(a)).not.toContain(pid);
      await a.acceptEvent({ topic: 'paid', payload: {}, id: 'e2', publishedAt: 2 }, [{ instanceId: 'y', track: null }], null);
      await until(() => heard.includes('y'), 'a notification on the new connection');
    });

    it('keeps retrying, with backoff, while the database refuses the LISTEN connection', async () => {
      const schema = `refused_${++n}`;
      const a = await worker(schema);
      await a.create(waiting('x', 'paid', {}, null));
      const role = `refused_${n}`;
      await a.dataSource.query(`CREATE ROLE ${role} LOGIN CONNECTION LIMIT 0`);
      const problems: string[] = [];
      const refused = TypeormStore.postgres({
        url: url.replace(/\/\/[^@]*@/, `//${role}@`),
        schema,
        runMigrations: false,
        notifications: { minBackoffMs: 20, maxBackoffMs: 50 },
        logger: { warn: (_o, msg) => problems.push(msg ?? '') },
      });
      opened.push(refused);
      const heard: string[] = [];
      refused.onInbox((id) => heard.push(id));
      await until(() => problems.length >= 3, 'several refused tries');
      expect(refused.listening).toBe(false);
      expect(problems[0]).toMatch(/LISTEN/);
      await a.dataSource.query(`GRANT USAGE ON SCHEMA ${schema} TO ${role}`);
      await a.dataSource.query(`GRANT SELECT ON ALL TABLES IN SCHEMA ${schema} TO ${role}`);
      await a.acceptEvent({ topic: 'paid', payload: {}, id: 'e1', publishedAt: 1 }, [{ instanceId: 'x', track: null }], null);
      await a.dataSource.query(`ALTER ROLE ${role} CONNECTION LIMIT -1`);
      await until(() => refused.listening && heard.includes('x'), 'the listener to get through and find the delivery');
    });

    it('wakes listeners for an id too long for a notification by looking at the whole inbox', async () => {
      const schema = `long_${++n}`;
      const [a, b] = await Promise.all([worker(schema), worker(schema)]);
      const long = 'L'.repeat(8_100);
      await a.create(waiting(long, 'paid', {}, null));
      const heard: string[] = [];
      b.onInbox((id) => heard.push(id));
      await until(() => b.listening, 'the LISTEN connection');
      await a.acceptEvent({ topic: 'paid', payload: {}, id: 'e1', publishedAt: 1 }, [{ instanceId: long, track: null }], null);
      await until(() => heard.includes(long), 'the wake-up');
    });

    it('listens only while someone listens, and not at all with notifications: false', async () => {
      const schema = `quiet_${++n}`;
      const a = await worker(schema);
      const quiet = await worker(schema, { notifications: false });
      const stop = a.onInbox(() => undefined);
      quiet.onInbox(() => undefined);
      await until(() => a.listening, 'the LISTEN connection');
      expect(quiet.listening).toBe(false);
      expect(await listenBackends(a)).toHaveLength(1);
      stop();
      await until(async () => (await listenBackends(a)).length === 0, 'the LISTEN connection to close');
      a.onInbox(() => undefined);
      await until(() => a.listening, 'the LISTEN connection again');
      await a.close();
      expect(a.listening).toBe(false);
      await until(async () => (await listenBackends(quiet)).length === 0, 'close to end the LISTEN connection');
    });

    it('leaves the data source the application gave it open on close', async () => {
      const dataSource = new DataSource({ type: 'postgres', url, poolSize: 2 });
      await dataSource.initialize();
      try {
        const store = TypeormStore.postgres({ dataSource, schema: `app_${++n}` });
        await store.create(newRecord('x', 'wf', { n: 1 }, 0));
        expect((await store.load('x'))?.state).toEqual({ n: 1 });
        await store.close();
        expect(dataSource.isInitialized).toBe(true);
        expect(await dataSource.query('SELECT 1 AS one')).toEqual([{ one: 1 }]);
        await expect(store.load('x')).rejects.toMatchObject({ code: 'STORE_CLOSED' });
      } finally {
        await dataSource.destroy();
      }
    });

    it('reports a database it cannot open, and opens it on a later call once it is there', async () => {
      const later = `${new URL(url).pathname.slice(1)}_later`;
      const store = TypeormStore.postgres({ url: withDatabase(url, later) });
      opened.push(store);
      await expect(store.load('x')).rejects.toThrow(/does not exist/);
      await createDatabase(url, later);
      try {
        await store.create(newRecord('x', 'wf', {}, 0));
        expect((await store.load('x'))?.version).toBe(1);
      } finally {
        await store.close();
        await dropTestDatabase(withDatabase(url, later));
      }
    });

    it('closes the data source it made from a URL', async () => {
      const store = await worker(`own_${++n}`);
      await store.close();
      expect(store.dataSource.isInitialized).toBe(false);
    });
  });
});

describe('the TypeORM store under fake timers', () => {
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  it('still commits SQLite writes (its queue does not run on the faked timers)', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'sagaflow-fake-'));
    const store = TypeormStore.sqlite({ file: path.join(dir, 'fake.db') });
    try {
      expect(await store.create(newRecord('f', 'wf', {}, 0))).toBe(true);
      expect((await store.load('f'))?.version).toBe(1);
    } finally {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
