import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { MemoryStore, SagaRuntime, silentLogger, type InstanceStore, type RuntimeProblem } from '../src';
import { SimulatedClock, flushMicrotasks } from '../src/testing';
import { TypeormStore } from '../src/store/typeorm';
import { PaymentWithReceipt, bank } from './support/operating-fixture';
import { recordingStep, type Log, type TestState } from './support/steps';
import { defineWorkflow, error } from '../src';
import { createTestDatabase, dropTestDatabase } from './support/postgres';

const log: Log = [];
const Pass = defineWorkflow<TestState>({ name: 'pass', steps: [recordingStep('a', log)] });
const Fail = defineWorkflow<TestState>({ name: 'fail', steps: [recordingStep('b', log, { run: (s) => error('no', s) })] });

async function settle(runtime: SagaRuntime, clock: SimulatedClock, duration: string): Promise<void> {
  await clock.advance(duration);
  await flushMicrotasks(200);
  await runtime.idle();
}

describe('retention on the runtime', () => {
  it('deletes completed and rolled-back instances once past their age, in batches, never compensation_failed ones', async () => {
    const store = new MemoryStore();
    const clock = new SimulatedClock();
    const runtime = new SagaRuntime({ store, clock, logger: silentLogger, workflows: [Pass, Fail, PaymentWithReceipt], retention: { completed: '7d', rolledBack: '30d', interval: '1h', batchSize: 2 } });
    const purge = jest.spyOn(store, 'purge');
    bank.refusing = true;
    for (let i = 0; i < 5; i += 1) await (await runtime.start(Pass, { trail: [] }, { id: `done-${i}` })).result();
    await (await runtime.start(Fail, { trail: [] }, { id: 'undone' })).result();
    await (await runtime.start(PaymentWithReceipt, { account: 'a' }, { id: 'stuck' })).result();
    expect((await store.list()).length).toBe(7);

    await settle(runtime, clock, '8d');
    expect((await store.list()).map((i) => i.id).sort()).toEqual(['stuck', 'undone']);
    // 5 completed in batches of 2: 2, 2, 1 (a short batch ends the status's loop)
    const completedCalls = purge.mock.calls.filter(([o]) => o.statuses[0] === 'completed' && o.before > 0);
    expect(completedCalls.length).toBeGreaterThanOrEqual(3);

    await settle(runtime, clock, '23d');
    expect((await store.list()).map((i) => i.id)).toEqual(['stuck']);
    expect(await store.history('undone')).toEqual([]);
    await runtime.close();
  });

  it('runs its first round when the store opens, and none once closed', async () => {
    const store = new MemoryStore();
    const clock = new SimulatedClock();
    const first = new SagaRuntime({ store, clock, logger: silentLogger, workflows: [Pass] });
    await (await first.start(Pass, { trail: [] }, { id: 'old' })).result();
    await first.close();
    await clock.advance('10d');
    const second = new SagaRuntime({ store, clock, logger: silentLogger, workflows: [Pass], retention: { completed: '7d' } });
    await second.start();
    await flushMicrotasks(200);
    expect(await store.list()).toEqual([]);
    await (await second.start(Pass, { trail: [] }, { id: 'new' })).result();
    await second.close();
    await clock.advance('30d');
    await flushMicrotasks(200);
    expect((await store.list()).map((i) => i.id)).toEqual(['new']);
  });

  it('refuses a compensationFailed or blocked age and unknown keys (BAD_OPTION), and a store without purge', () => {
    const store = new MemoryStore();
    expect(() => new SagaRuntime({ store, retention: { compensationFailed: '1d' } as never })).toThrow(expect.objectContaining({ code: 'BAD_OPTION', message: expect.stringMatching(/never purged automatically.*sagaflow purge --status compensation_failed/) }));
    // Blocked instances are unfinished: no purge takes them, so the message does not send the user to one.
    expect(() => new SagaRuntime({ store, retention: { blocked: '1d' } as never })).toThrow(expect.objectContaining({ code: 'BAD_OPTION', message: expect.not.stringContaining('sagaflow purge') }));
    expect(() => new SagaRuntime({ store, retention: { complete: '1d' } as never })).toThrow(expect.objectContaining({ code: 'BAD_OPTION', message: expect.stringContaining('did you mean "completed"') }));
    expect(() => new SagaRuntime({ store, retention: { completed: 'soon' } })).toThrow(expect.objectContaining({ code: 'BAD_OPTION' }));
    expect(() => new SagaRuntime({ store, retention: { batchSize: 0 } })).toThrow(expect.objectContaining({ code: 'BAD_OPTION' }));
    const bare: InstanceStore = { ...store, purge: undefined } as unknown as InstanceStore;
    expect(() => new SagaRuntime({ store: Object.assign(Object.create(Object.getPrototypeOf(store) as object) as MemoryStore, bare), retention: { completed: '1d' } })).toThrow(
      expect.objectContaining({ code: 'BAD_OPTION', message: expect.stringContaining('no purge method') }),
    );
  });

  it('reports a failed round as maintenance-failed and tries again at the next interval', async () => {
    const store = new MemoryStore();
    const clock = new SimulatedClock();
    const runtime = new SagaRuntime({ store, clock, logger: silentLogger, workflows: [Pass], retention: { completed: '1d', interval: '1h' } });
    const problems: RuntimeProblem[] = [];
    runtime.errors$.subscribe((p) => problems.push(p));
    await (await runtime.start(Pass, { trail: [] }, { id: 'x' })).result();
    const real = store.purge.bind(store);
    const purge = jest.spyOn(store, 'purge').mockRejectedValueOnce(new Error('disk full'));
    await settle(runtime, clock, '2d');
    expect(problems.map((p) => [p.kind, p.error.message])).toEqual([['maintenance-failed', 'disk full']]);
    purge.mockImplementation(real);
    await settle(runtime, clock, '1h');
    expect(await store.list()).toEqual([]);
    await runtime.close();
  });
});

describe('the stores purge and keep outlines', () => {
  let dir: string;
  let pgUrl: string;
  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'sagaflow-retention-'));
    pgUrl = await createTestDatabase('retention');
  });
  afterAll(async () => {
    rmSync(dir, { recursive: true, force: true });
    await dropTestDatabase(pgUrl);
  });

  const stores: readonly [string, () => InstanceStore][] = [
    ['memory', () => new MemoryStore()],
    ['SQLite', () => TypeormStore.sqlite({ file: path.join(dir, `p-${Math.random().toString(36).slice(2)}.db`) })],
    ['PostgreSQL', () => TypeormStore.postgres({ url: pgUrl, schema: `p_${Math.random().toString(36).slice(2, 8)}`, poolSize: 4 })],
  ];

  it.each(stores)('%s: purge deletes an instance with its history and inbox, oldest first and at most limit, and a dry run deletes nothing', async (_name, make) => {
    const store = make();
    const clock = new SimulatedClock();
    const runtime = new SagaRuntime({ store, clock, logger: silentLogger, workflows: [Pass, Fail] });
    for (const id of ['p1', 'p2', 'p3']) {
      await (await runtime.start(Pass, { trail: [] }, { id })).result();
      await clock.advance('1m');
    }
    await (await runtime.start(Fail, { trail: [] }, { id: 'f1' })).result();
    const before = clock.now() + 1;
    expect(await store.purge?.({ before, statuses: ['completed'], limit: 10, dryRun: true })).toEqual(['p1', 'p2', 'p3']);
    expect((await store.list()).length).toBe(4);
    expect(await store.purge?.({ before, statuses: ['completed'], limit: 2 })).toEqual(['p1', 'p2']);
    expect(await store.load('p1')).toBeUndefined();
    expect(await store.history('p1')).toEqual([]);
    expect((await store.history('p3')).length).toBeGreaterThan(0);
    expect(await store.purge?.({ before: before - 120_000, statuses: ['completed'], limit: 10 })).toEqual([]);
    await expect(store.purge?.({ before, statuses: ['running'], limit: 10 })).rejects.toMatchObject({ code: 'NOT_PURGEABLE' });
    await expect(store.purge?.({ before, statuses: ['completed'], limit: 0 })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await runtime.close();
    await store.close();
  });

  it.each(stores)('%s: a runtime stores the outline of every workflow it registers, once', async (_name, make) => {
    const store = make();
    const runtime = new SagaRuntime({ store, logger: silentLogger, workflows: [Pass, Fail] });
    await runtime.start();
    await flushMicrotasks(50);
    await runtime.idle();
    const again = new SagaRuntime({ store, logger: silentLogger, workflows: [Pass] });
    await again.start();
    await flushMicrotasks(50);
    for (let i = 0; i < 50 && (await store.outlines?.())?.length !== 2; i += 1) await new Promise((r) => setTimeout(r, 20));
    const outlines = (await store.outlines?.()) ?? [];
    expect(outlines.map((o) => o.outline.name).sort()).toEqual(['fail', 'pass']);
    expect(outlines.find((o) => o.outline.name === 'pass')?.outline).toEqual(JSON.parse(JSON.stringify(Pass.outline)));
    expect((await store.outlines?.('fail'))?.map((o) => o.outline.fingerprint)).toEqual([Fail.fingerprint]);
    await runtime.close();
    await again.close();
    await store.close();
  });
});
