import 'reflect-metadata';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { Column, DataSource, Entity, PrimaryColumn } from 'typeorm';
import { MemoryStore, SagaRuntime, defineWorkflow, silentLogger, type InstanceStore } from '../src';
import { newRecord, type InstanceRecord } from '../src/engine/instance-record';
import { EntityMirror, mirrorToEntity, SagaFlowColumns, SagaFlowJsonbColumns, TypeormStore, type SagaFlowFields } from '../src/store/typeorm';
import { runEmbeddedEntity } from '../samples/embedded-entity/run';
import { createTestDatabase, dropTestDatabase } from './support/postgres';
import { fails, recordingStep, waitsFor, type TestState } from './support/steps';

@Entity({ name: 'tickets' })
class Ticket {
  @PrimaryColumn({ type: 'varchar' })
  id!: string;

  @Column({ type: 'varchar', nullable: true })
  title!: string | null;

  @Column({ type: 'integer', default: 0 })
  seats!: number;

  @Column(() => SagaFlowColumns)
  flow!: SagaFlowColumns;
}

@Entity({ name: 'pg_tickets' })
class PgTicket {
  @PrimaryColumn({ type: 'varchar' })
  id!: string;

  @Column({ type: 'varchar', nullable: true })
  title!: string | null;

  @Column(() => SagaFlowJsonbColumns)
  saga!: SagaFlowJsonbColumns;
}

interface TicketState extends TestState {
  title: string;
}

const booking = defineWorkflow<TicketState>({
  name: 'booking',
  steps: [recordingStep('hold', []), recordingStep('pay', [], { run: waitsFor('paid', {}) }), recordingStep('issue', [])],
});
const refused = defineWorkflow<TicketState>({ name: 'refused', steps: [recordingStep('hold', []), recordingStep('issue', [], { run: fails('SOLD_OUT') })] });
const unrelated = defineWorkflow<TestState>({ name: 'unrelated', steps: [recordingStep('x', [])] });

const mapTicket = (state: TicketState, _flow: SagaFlowFields, instance: { id: string }): Partial<Ticket> => ({ id: instance.id, title: state.title });

async function sqliteApp(): Promise<DataSource> {
  const dataSource = new DataSource({ type: 'better-sqlite3', database: ':memory:', entities: [Ticket], synchronize: true });
  await dataSource.initialize();
  return dataSource;
}

function record(id: string, version: number, status: InstanceRecord['flow']['status'] = 'running'): InstanceRecord {
  const r = newRecord(id, 'booking', { title: `v${version}`, trail: [] }, version);
  r.version = version;
  r.flow.status = status;
  return r;
}

describe('the embedded-entity sample', () => {
  it('shows the waiting orders, then a completed and a rolled-back order in the shop’s own table', async () => {
    const lines: string[] = [];
    await runEmbeddedEntity((line) => lines.push(line));
    const text = lines.join('\n');
    expect(text).toContain("SELECT id, sku, flow_step_name FROM shop_orders WHERE flow_status = 'waiting'");
    expect(lines).toContain('  order-2001  SKU-MUG  charge-payment');
    expect(lines).toContain('  order-2002  SKU-PIANO  charge-payment');
    expect(text).toMatch(/order-2001\n {4}sku +SKU-MUG\n {4}paymentId +pay-2001\n {4}shipmentId +shp-order-2001\n {4}flow_status +completed\n {4}flow_direction +up/);
    expect(text).toMatch(/order-2002\n {4}sku +SKU-PIANO\n {4}paymentId +NULL\n {4}shipmentId +NULL\n {4}flow_status +rolled_back\n {4}flow_direction +down/);
    expect(text).toMatch(/flow_error_reason +\{"code":"NO_CARRIER"/);
    expect(text).toContain('rolled back: order-2002 (NO_CARRIER: no carrier takes a piano), stock released, payment refunded');
    expect(lines.slice(lines.indexOf('effects, in order:') + 1)).toEqual([
      '  reserve 2 × SKU-MUG for order-2001',
      '  authorise 2598 cents for order-2001',
      '  reserve 1 × SKU-PIANO for order-2002',
      '  authorise 990000 cents for order-2002',
      '  ship order-2001',
      '  refund the payment of order-2002',
      '  release the stock of order-2002',
    ]);
  });

  it('keeps both SQLite files side by side in the directory it is given, fresh on every run', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'sagaflow-embedded-test-'));
    try {
      const first: string[] = [];
      await runEmbeddedEntity((line) => first.push(line), { dir });
      expect(existsSync(path.join(dir, 'sagaflow.db'))).toBe(true);
      expect(existsSync(path.join(dir, 'shop.db'))).toBe(true);
      const second: string[] = [];
      await runEmbeddedEntity((line) => second.push(line), { dir });
      expect(second).toEqual(first);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('SagaFlowColumns', () => {
  it('embeds in an entity of the application as nullable flow_* columns', async () => {
    const app = await sqliteApp();
    try {
      const columns = app.getMetadata(Ticket).columns.filter((c) => c.embeddedMetadata !== undefined);
      expect(columns.map((c) => `${c.propertyPath}=${c.databaseName}`)).toEqual([
        'flow.instanceId=flow_instance_id',
        'flow.workflow=flow_workflow',
        'flow.direction=flow_direction',
        'flow.status=flow_status',
        'flow.stepIndex=flow_step_index',
        'flow.stepName=flow_step_name',
        'flow.stepFunc=flow_step_func',
        'flow.attempt=flow_attempt',
        'flow.updatedAt=flow_updated_at',
        'flow.version=flow_version',
        'flow.errorReason=flow_error_reason',
        'flow.wait=flow_wait',
        'flow.stack=flow_stack',
        'flow.lastResult=flow_last_result',
      ]);
      expect(columns.every((c) => c.isNullable)).toBe(true);
      // The application writes its own rows without any flow.
      await app.getRepository(Ticket).insert({ id: 'mine', title: 'no saga yet' });
      expect((await app.getRepository(Ticket).findOneByOrFail({ id: 'mine' })).flow.status).toBeNull();
    } finally {
      await app.destroy();
    }
  });

  it('copies the flow fields of an instance record (its main line)', () => {
    const r = newRecord('i', 'booking', {}, 1_000);
    r.version = 4;
    r.updatedAt = 2_000;
    r.flow = {
      ...r.flow,
      direction: 'down',
      status: 'rolling_back',
      stepIndex: 1,
      stepName: 'pay',
      stepFunc: 'rollback',
      attempt: 2,
      errorReason: { code: 'X', name: 'Error', message: 'x' },
      wait: { topics: ['t'], match: { k: 1 }, deadline: 5_000 },
      stack: [{ kind: 'step', name: 'hold', index: 0 }],
      lastResult: { kind: 'error', step: 'pay', func: 'run', code: 'X' },
    };
    const columns = SagaFlowJsonbColumns.fromRecord(r);
    expect(columns).toBeInstanceOf(SagaFlowJsonbColumns);
    expect({ ...columns }).toEqual({
      instanceId: 'i',
      workflow: 'booking',
      direction: 'down',
      status: 'rolling_back',
      stepIndex: 1,
      stepName: 'pay',
      stepFunc: 'rollback',
      attempt: 2,
      errorReason: { code: 'X', name: 'Error', message: 'x' },
      wait: { topics: ['t'], match: { k: 1 }, deadline: 5_000 },
      stack: [{ kind: 'step', name: 'hold', index: 0 }],
      lastResult: { kind: 'error', step: 'pay', func: 'run', code: 'X' },
      updatedAt: 2_000,
      version: 4,
    });
    expect(columns.stack).not.toBe(r.flow.stack);
  });
});

describe('EntityMirror on SQLite', () => {
  let app: DataSource;
  let runtime: SagaRuntime | null = null;
  beforeEach(async () => {
    app = await sqliteApp();
  });
  afterEach(async () => {
    await runtime?.close();
    runtime = null;
    await app.destroy();
  });

  function run(store: InstanceStore): SagaRuntime {
    runtime = new SagaRuntime({ store, logger: silentLogger, workflows: [booking, refused, unrelated] });
    return runtime;
  }

  it('writes the row after every committed transition: running, waiting on its event, completed', async () => {
    const mirror = mirrorToEntity(app, Ticket, { workflows: [booking, 'refused'], map: mapTicket });
    const seen: string[] = [];
    const write = mirror.write.bind(mirror);
    jest.spyOn(mirror, 'write').mockImplementation(async (r) => {
      seen.push(`${r.version} ${r.flow.status} ${r.flow.stepName ?? '-'} ${r.flow.inFlight ? 'in flight' : 'settled'}`);
      return write(r);
    });
    const rt = run(mirror.wrap(new MemoryStore()));
    await rt.start(booking, { title: 'Opera', trail: [] }, { id: 't1' });
    await rt.idle();
    const tickets = app.getRepository(Ticket);
    const parked = await tickets.findOneByOrFail({ flow: { status: 'waiting' } });
    expect(parked).toMatchObject({ id: 't1', title: 'Opera', flow: { instanceId: 't1', workflow: 'booking', stepName: 'pay', wait: { topics: ['paid'], match: {}, deadline: null } } });
    expect(parked.flow.stack?.map((s) => s.name)).toEqual(['hold', 'pay']);
    await rt.publish({ topic: 'paid' });
    expect((await rt.handle('t1').result()).status).toBe('completed');
    await rt.idle();
    const done = await tickets.findOneByOrFail({ id: 't1' });
    const stored = (await rt.store.load('t1'))!;
    expect(done.flow).toMatchObject({ status: 'completed', direction: 'up', version: stored.version, updatedAt: stored.updatedAt, lastResult: { kind: 'ok', step: 'issue' } });
    expect(seen).toEqual([
      '1 running hold in flight',
      '2 running pay in flight',
      '3 waiting pay settled',
      '4 running pay in flight',
      '5 running issue in flight',
      '6 completed - settled',
    ]);
    expect(await app.query("SELECT id FROM tickets WHERE flow_status = 'completed'")).toEqual([{ id: 't1' }]);
  });

  it('shows a rollback with its reason, and mirrors only the workflows it is given', async () => {
    const mirror = mirrorToEntity(app, Ticket, { workflows: [booking, 'refused'], map: mapTicket });
    const rt = run(mirror.wrap(new MemoryStore()));
    await rt.start(refused, { title: 'Ballet', trail: [] }, { id: 't2' });
    await rt.start(unrelated, { trail: [] }, { id: 'u1' });
    expect((await rt.handle('t2').result()).status).toBe('rolled_back');
    await rt.idle();
    const rows = await app.getRepository(Ticket).find();
    expect(rows.map((r) => r.id)).toEqual(['t2']);
    expect(rows[0]!.flow).toMatchObject({ status: 'rolled_back', direction: 'down', errorReason: { code: 'SOLD_OUT' }, stack: [] });
  });

  it('fills in the row the application made before the saga started, keeping its other columns', async () => {
    await app.getRepository(Ticket).insert({ id: 't3', title: 'draft', seats: 4 });
    const mirror = mirrorToEntity(app, Ticket, { map: mapTicket });
    const rt = run(mirror.wrap(new MemoryStore()));
    await rt.start(refused, { title: 'Ballet', trail: [] }, { id: 't3' });
    await rt.handle('t3').result();
    await rt.idle();
    expect(await app.getRepository(Ticket).findOneByOrFail({ id: 't3' })).toMatchObject({ title: 'Ballet', seats: 4, flow: { status: 'rolled_back' } });
  });

  it('never moves a row back to an older version', async () => {
    const mirror = new EntityMirror(app, Ticket, { map: mapTicket });
    expect(await mirror.write(record('r', 5, 'waiting'))).toBe(true);
    expect(await mirror.write(record('r', 3, 'running'))).toBe(false);
    expect(await mirror.write(record('r', 5, 'running'))).toBe(false);
    expect(await app.getRepository(Ticket).findOneByOrFail({ id: 'r' })).toMatchObject({ title: 'v5', flow: { version: 5, status: 'waiting' } });
    expect(await mirror.write(record('r', 6, 'completed'))).toBe(true);
    expect(await app.getRepository(Ticket).findOneByOrFail({ id: 'r' })).toMatchObject({ title: 'v6', flow: { version: 6, status: 'completed' } });
  });

  it('reports a failing mirror write and lets the saga go on; the next transition writes the row again', async () => {
    const errors: string[] = [];
    let failing = true;
    const mirror = mirrorToEntity(app, Ticket, {
      map: (state: TicketState, flow, instance) => {
        if (failing && flow.status === 'waiting') throw new Error('the application table is locked');
        return mapTicket(state, flow, instance);
      },
      onError: (error, r) => errors.push(`${r.id}@${r.version}: ${(error as Error).message}`),
    });
    const rt = run(mirror.wrap(new MemoryStore()));
    await rt.start(booking, { title: 'Opera', trail: [] }, { id: 't4' });
    await rt.idle();
    expect(errors).toEqual(['t4@3: the application table is locked']);
    expect((await app.getRepository(Ticket).findOneByOrFail({ id: 't4' })).flow.status).toBe('running');
    failing = false;
    await rt.publish({ topic: 'paid' });
    expect((await rt.handle('t4').result()).status).toBe('completed');
    await rt.idle();
    expect((await app.getRepository(Ticket).findOneByOrFail({ id: 't4' })).flow.status).toBe('completed');
  });

  it('reports a map that gives no primary key, or an entity without the embedded flow columns', async () => {
    const errors: unknown[] = [];
    const noKey = mirrorToEntity(app, Ticket, { map: (s: TicketState) => ({ title: s.title }), onError: (e) => errors.push(e) });
    const rt = run(noKey.wrap(new MemoryStore()));
    await rt.start(unrelated, { trail: [] }, { id: 'n1' });
    expect((await rt.handle('n1').result()).status).toBe('completed');
    expect(errors[0]).toBeInstanceOf(TypeError);
    expect(String(errors[0])).toMatch(/no primary key/);
    await expect(new EntityMirror(app, Ticket, { map: mapTicket, flowProperty: 'saga' }).write(record('x', 1))).rejects.toThrow(/no embedded "saga"/);
  });

  it('leaves the wrapped store as it was: its class, shared flag, init, inbox and own members', async () => {
    const mirror = mirrorToEntity(app, Ticket, { map: mapTicket });
    const dir = mkdtempSync(path.join(tmpdir(), 'sagaflow-mirror-'));
    const sqlite = TypeormStore.sqlite({ file: path.join(dir, 'saga.db') });
    try {
      const wrapped = mirror.wrap(sqlite);
      expect(wrapped).toBeInstanceOf(TypeormStore);
      expect(wrapped.shared).toBe(false);
      expect(wrapped.kind).toBe('sqlite');
      await wrapped.init();
      expect(wrapped.dataSource.isInitialized).toBe(true);
      expect(await wrapped.create(record('w', 0))).toBe(true);
      expect(await app.getRepository(Ticket).countBy({ id: 'w' })).toBe(1);
      const shared = mirror.wrap(new MemoryStore({ shared: true }));
      expect(shared.shared).toBe(true);
      const heard: string[] = [];
      shared.onInbox?.((id) => heard.push(id));
      await shared.create(record('s', 0));
      await shared.acceptEvent({ topic: 'paid', payload: {}, id: 'e', publishedAt: 0 }, [{ instanceId: 's', track: null }], null);
      expect(heard).toEqual(['s']);
      expect(await shared.inboxInstances?.(10)).toEqual(['s']);
    } finally {
      await sqlite.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('EntityMirror on PostgreSQL', () => {
  let url = '';
  beforeAll(async () => {
    url = await createTestDatabase('embedded_entity');
  });
  afterAll(async () => dropTestDatabase(url));

  it('keeps the entity in the same database as sagaflow’s tables, with jsonb flow columns', async () => {
    const app = new DataSource({ type: 'postgres', url, entities: [PgTicket], synchronize: true, poolSize: 4 });
    await app.initialize();
    const store = TypeormStore.postgres({ dataSource: app, schema: 'sagaflow' });
    const mirror = mirrorToEntity(app, PgTicket, { flowProperty: 'saga', flowColumns: SagaFlowJsonbColumns, map: mapTicket });
    const rt = new SagaRuntime({ store: mirror.wrap(store), logger: silentLogger, workflows: [booking], pollInterval: '1h' });
    try {
      await rt.start();
      // The store listens for inbox notifications on a connection made from the application's data source options.
      for (let i = 0; i < 1_000 && !store.listening; i += 1) await new Promise((resolve) => setTimeout(resolve, 5));
      expect(store.listening).toBe(true);
      await rt.start(booking, { title: 'Opera', trail: [] }, { id: 'p1' });
      await rt.idle();
      const types = await app.query<{ column_name: string; data_type: string }[]>(
        "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'pg_tickets' AND column_name IN ('saga_wait', 'saga_stack', 'saga_status') ORDER BY column_name",
      );
      expect(types).toEqual([
        { column_name: 'saga_stack', data_type: 'jsonb' },
        { column_name: 'saga_status', data_type: 'character varying' },
        { column_name: 'saga_wait', data_type: 'jsonb' },
      ]);
      expect(await app.query(`SELECT id FROM pg_tickets WHERE saga_status = 'waiting' AND saga_wait -> 'topics' ? 'paid'`)).toEqual([{ id: 'p1' }]);
      await rt.publish({ topic: 'paid' });
      await rt.handle('p1').result();
      await rt.idle();
      const row = await app.getRepository(PgTicket).findOneByOrFail({ id: 'p1' });
      expect(row.saga).toMatchObject({ status: 'completed', version: 6, updatedAt: (await store.load('p1'))!.updatedAt });
      expect(typeof row.saga.updatedAt).toBe('number');
    } finally {
      await rt.close();
      await store.close();
      await app.destroy();
    }
  });

  it('lets two workers race on one row without ever moving it backwards', async () => {
    const app = new DataSource({ type: 'postgres', url, entities: [PgTicket], synchronize: true, poolSize: 8 });
    await app.initialize();
    try {
      const a = new EntityMirror(app, PgTicket, { flowProperty: 'saga', flowColumns: SagaFlowJsonbColumns, map: mapTicket });
      const b = new EntityMirror(app, PgTicket, { flowProperty: 'saga', flowColumns: SagaFlowJsonbColumns, map: mapTicket });
      for (let round = 0; round < 10; round += 1) {
        const id = `race-${round}`;
        const versions = Array.from({ length: 12 }, (_, i) => i + 1).sort(() => Math.random() - 0.5);
        await Promise.all(versions.map((v, i) => (i % 2 === 0 ? a : b).write(record(id, v))));
        expect(await app.getRepository(PgTicket).findOneByOrFail({ id })).toMatchObject({ title: 'v12', saga: { version: 12 } });
      }
    } finally {
      await app.destroy();
    }
  });
});
