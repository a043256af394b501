import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import {
  BaseStep,
  MemoryStore,
  SagaRuntime,
  Step,
  continueWith,
  defineWorkflow,
  error,
  ok,
  parallel,
  silentLogger,
  type InstanceStore,
  type RuntimeProblem,
  type SagaEvent,
  type StepClass,
  type StepResult,
  type WorkflowDefinition,
} from '../src';
import { setImmediate as nextTurn, setTimeout as sleep } from 'node:timers/promises';
import { TypeormStore } from '../src/store/typeorm';
import { createTestDatabase, dropTestDatabase } from './support/postgres';
import { SimulatedClock, checkCompatible } from '../src/testing';

interface Order {
  orderId: string;
  trail?: string[];
}

/** Every call of every step below, in order: `a.run`, `b.runHandleInfo`, … */
const log: string[] = [];

function step(name: string, behave: { run?: (s: Order) => StepResult<Order>; handle?: (s: Order) => StepResult<Order> } = {}): StepClass<Order> {
  @Step({ name })
  class Logged extends BaseStep<Order> {
    override run(state: Order): StepResult<Order> {
      log.push(`${name}.run`);
      return behave.run?.(state) ?? ok(state);
    }
    override rollback(state: Order): StepResult<Order> {
      log.push(`${name}.rollback`);
      return ok(state);
    }
    override runHandleInfo(event: SagaEvent, state: Order): StepResult<Order> {
      log.push(`${name}.runHandleInfo`);
      if (event.payload.fail === true) return error({ code: 'DECLINED', message: 'declined' }, state);
      return behave.handle?.(state) ?? ok(state);
    }
  }
  return Logged;
}

const waitForGo = (s: Order): StepResult<Order> => continueWith(s, { topic: 'go', match: { orderId: s.orderId }, timeout: '1h' });
const A = step('a');
const B = step('b', { run: waitForGo });
const B2 = step('b2', { run: waitForGo });
const C = step('c');
const X = step('x');

const V1 = defineWorkflow<Order>({ name: 'order', steps: [A, B, C] });
const V2_FRONT = defineWorkflow<Order>({ name: 'order', version: 2, steps: [X, A, B, C] });
const V2_APPENDED = defineWorkflow<Order>({ name: 'order', version: 2, steps: [A, B, C, X] });
const V2_NO_FIRST = defineWorkflow<Order>({ name: 'order', version: 2, steps: [B, C] });
const V2_RENAMED = defineWorkflow<Order>({ name: 'order', version: 2, steps: [A, B2, C] });
/** Version 1's name and number on a changed structure: what a careless deploy registers. */
const V1_CHANGED = defineWorkflow<Order>({ name: 'order', steps: [X, A, B, C] });

const stores: [string, () => { store: InstanceStore; done: () => Promise<void> }][] = [
  ['memory', () => ({ store: new MemoryStore(), done: () => Promise.resolve() })],
  [
    'SQLite',
    () => {
      const dir = mkdtempSync(path.join(tmpdir(), 'sagaflow-versions-'));
      const store = TypeormStore.sqlite({ file: path.join(dir, 'versions.db') });
      return { store, done: async () => (await store.close(), rmSync(dir, { recursive: true, force: true })) };
    },
  ],
];

/**
 * These tests move the simulated clock by hours; with the default 1 s poll a durable store would be polled 7,200
 * times per hour moved (each a query), which took seconds. Nothing here depends on polling.
 */
const POLL = '10m';

describe.each(stores)('deploying a changed workflow while an instance waits (%s)', (_name, make) => {
  let store: InstanceStore;
  let done: () => Promise<void>;
  let runtime: SagaRuntime;
  let clock: SimulatedClock;
  let problems: RuntimeProblem[];

  /** A new process on the same database, with these definitions, recovering what the last one left. */
  async function deploy(...workflows: WorkflowDefinition[]): Promise<SagaRuntime> {
    await runtime.close();
    runtime = new SagaRuntime({ store, clock, logger: silentLogger, workflows, pollInterval: POLL });
    runtime.errors$.subscribe((p) => problems.push(p));
    await runtime.start();
    await runtime.idle();
    return runtime;
  }

  beforeEach(async () => {
    ({ store, done } = make());
    clock = new SimulatedClock();
    problems = [];
    log.length = 0;
    runtime = new SagaRuntime({ store, clock, logger: silentLogger, workflows: [V1], pollInterval: POLL });
    await runtime.start(V1, { orderId: 'o-1' }, { id: 'o-1' });
    await runtime.idle();
    expect(log).toEqual(['a.run', 'b.run']);
  });
  afterEach(async () => {
    await runtime.close();
    await done();
  });

  it.each([
    ['a step added in front', V2_FRONT, ['x.run', 'a.run', 'b.run']],
    ['the first step removed', V2_NO_FIRST, ['b.run']],
    ['the waiting step renamed', V2_RENAMED, ['a.run', 'b2.run']],
  ])('finishes the parked instance on version 1 when %s is registered as version 2, and starts new ones on version 2', async (_change, v2, newRun) => {
    await deploy(V1, v2);
    await runtime.publish({ topic: 'go', payload: { orderId: 'o-1' } });
    const result = await runtime.handle('o-1').result();
    expect(result.status).toBe('completed');
    expect(log).toEqual(['a.run', 'b.run', 'b.runHandleInfo', 'c.run']);
    expect((await runtime.get('o-1')).version).toBe(1);
    log.length = 0;
    await runtime.start('order', { orderId: 'o-2' }, { id: 'o-2' });
    await runtime.idle();
    expect(log).toEqual(newRun);
    expect((await runtime.get('o-2')).version).toBe(2);
    expect(problems).toEqual([]);
  });

  it('compensates a version-1 instance with version 1 steps after version 2 renamed one', async () => {
    await deploy(V1, V2_RENAMED);
    await runtime.publish({ topic: 'go', payload: { orderId: 'o-1', fail: true } });
    expect((await runtime.handle('o-1').result()).status).toBe('rolled_back');
    expect(log).toEqual(['a.run', 'b.run', 'b.runHandleInfo', 'b.rollback', 'a.rollback']);
  });

  it('blocks the instance with DEFINITION_CHANGED when a changed definition takes its version, runs nothing, and resumes untouched when the old one is back', async () => {
    await deploy(V1_CHANGED);
    const snapshot = await runtime.get('o-1');
    expect(snapshot.status).toBe('blocked');
    expect(snapshot.blocked).toMatchObject({ code: 'DEFINITION_CHANGED', fingerprint: V1.fingerprint, registered: V1_CHANGED.fingerprint, status: 'waiting' });
    expect(problems.map((p) => [p.kind, p.error.code, p.instanceId])).toEqual([['instance-blocked', 'DEFINITION_CHANGED', 'o-1']]);
    expect((await runtime.list({ status: 'blocked' })).map((s) => s.id)).toEqual(['o-1']);
    // Meanwhile: its event is kept, its wait deadline passes, operators are refused — and nothing runs.
    expect((await runtime.publish({ topic: 'go', payload: { orderId: 'o-1' } })).delivered).toBe(1);
    await clock.advance('2h');
    await runtime.idle();
    await expect(runtime.rollback('o-1', 'stop')).rejects.toMatchObject({ code: 'DEFINITION_CHANGED' });
    expect(log).toEqual(['a.run', 'b.run']);
    expect((await runtime.get('o-1')).status).toBe('blocked');
    expect((await runtime.history('o-1')).filter((h) => h.kind === 'blocked')).toHaveLength(1);
    // The old definition is back: it goes on where it was, with the event that came meanwhile.
    await deploy(V1);
    const result = await runtime.handle('o-1').result();
    expect(result.status).toBe('completed');
    expect(log).toEqual(['a.run', 'b.run', 'b.runHandleInfo', 'c.run']);
    expect((await runtime.history('o-1')).map((h) => h.kind)).toContain('unblocked');
  });

  it('blocks an instance whose version is not registered (UNKNOWN_VERSION) and goes on when that version is registered in the running process', async () => {
    await deploy(V2_APPENDED);
    expect((await runtime.get('o-1')).blocked).toMatchObject({ code: 'UNKNOWN_VERSION', registered: null });
    runtime.register(V1);
    await runtime.idle();
    await new Promise((r) => setImmediate(r));
    await runtime.idle();
    expect((await runtime.get('o-1')).status).toBe('waiting');
    await runtime.publish({ topic: 'go', payload: { orderId: 'o-1' } });
    expect((await runtime.handle('o-1').result()).status).toBe('completed');
    expect(log).toEqual(['a.run', 'b.run', 'b.runHandleInfo', 'c.run']);
  });

  it('fails the wait with TIMEOUT once unblocked when its deadline passed while it was blocked', async () => {
    await deploy(V2_APPENDED);
    await clock.advance('2h');
    await deploy(V1, V2_APPENDED);
    await clock.advance(1);
    const result = await runtime.handle('o-1').result();
    expect(result.status).toBe('rolled_back');
    expect(result.error?.code).toBe('TIMEOUT');
  });

  it('migrates a blocked instance to a compatible version, recording who and why, and it goes on there', async () => {
    await deploy(V2_APPENDED);
    await runtime.migrate('o-1', { to: 2, by: 'ops', reason: 'v1 retired' });
    const snapshot = await runtime.get('o-1');
    expect(snapshot.version).toBe(2);
    expect(snapshot.status).toBe('waiting');
    const migrated = (await runtime.history('o-1')).find((h) => h.kind === 'migrated');
    expect(migrated?.note).toContain('by ops: v1 retired');
    expect(migrated?.note).toContain('to version 2');
    await runtime.publish({ topic: 'go', payload: { orderId: 'o-1' } });
    expect((await runtime.handle('o-1').result()).status).toBe('completed');
    expect(log).toEqual(['a.run', 'b.run', 'b.runHandleInfo', 'c.run', 'x.run']);
  });

  it('refuses a migration that would lose a step, listing what is missing, and accepts it with a rename map', async () => {
    await deploy(V1, V2_RENAMED, defineWorkflow<Order>({ name: 'order', version: 3, steps: [B, C] }));
    await expect(runtime.migrate('o-1', { to: 3 })).rejects.toMatchObject({ code: 'MIGRATION_REFUSED', missing: [expect.stringContaining('"a"')] });
    await expect(runtime.migrate('o-1', { to: 2 })).rejects.toMatchObject({ code: 'MIGRATION_REFUSED' });
    expect((await runtime.get('o-1')).version).toBe(1);
    await runtime.migrate('o-1', { to: 2, map: { b: 'b2' } });
    expect((await runtime.get('o-1')).version).toBe(2);
    await runtime.publish({ topic: 'go', payload: { orderId: 'o-1', fail: true } });
    expect((await runtime.handle('o-1').result()).status).toBe('rolled_back');
    expect(log).toEqual(['a.run', 'b.run', 'b2.runHandleInfo', 'b2.rollback', 'a.rollback']);
  });

  it('migrates every instance of a version at once, reporting the ones it cannot move', async () => {
    await runtime.start(V1, { orderId: 'o-3' }, { id: 'o-3' });
    await runtime.idle();
    await deploy(V1, V2_APPENDED);
    const report = await runtime.migrateAll({ workflow: 'order', from: 1, to: 2, by: 'ops' });
    expect([...report.migrated].sort()).toEqual(['o-1', 'o-3']);
    expect(report.refused).toEqual([]);
    expect((await runtime.list({ workflow: 'order', version: 2 })).length).toBe(2);
  });

  it('runs a record written before versions (no version, no fingerprint) as version 1', async () => {
    await runtime.close();
    const record = (await store.load('o-1'))!;
    delete record.workflowVersion;
    delete record.fingerprint;
    await store.save(record);
    await deploy(V1, V2_FRONT);
    await runtime.publish({ topic: 'go', payload: { orderId: 'o-1' } });
    expect((await runtime.handle('o-1').result()).status).toBe('completed');
    expect(log).toEqual(['a.run', 'b.run', 'b.runHandleInfo', 'c.run']);
    expect((await store.load('o-1'))?.fingerprint).toBe(V1.fingerprint);
  });
});

describe('registering versions', () => {
  it('starts the newest version by name, the given one by definition or option, and refuses two definitions of one version', async () => {
    const runtime = new SagaRuntime({ store: new MemoryStore(), clock: new SimulatedClock(), logger: silentLogger, workflows: [V1, V2_APPENDED] });
    const byName = await runtime.start('order', { orderId: 'n' });
    const byDef = await runtime.start(V1, { orderId: 'd' });
    const byOption = await runtime.start('order', { orderId: 'v' }, { version: 1 });
    expect((await runtime.get(byName.id)).version).toBe(2);
    expect((await runtime.get(byDef.id)).version).toBe(1);
    expect((await runtime.get(byOption.id)).version).toBe(1);
    await expect(runtime.start('order', { orderId: 'x' }, { version: 7 })).rejects.toMatchObject({ code: 'UNKNOWN_WORKFLOW' });
    expect(() => runtime.register(V1_CHANGED)).toThrow(expect.objectContaining({ code: 'DUPLICATE_NAME' }));
    expect(() => runtime.register(V1)).not.toThrow();
    await runtime.close();
  });

  it('takes the same definition again as harmless on a runtime with observers of its own', async () => {
    const runtime = new SagaRuntime({ store: new MemoryStore(), logger: silentLogger, observers: [{ handleInit: () => undefined }], workflows: [V1] });
    expect(() => runtime.register(V1, V1)).not.toThrow();
    await runtime.close();
  });
});

describe('checkCompatible', () => {
  const at = (report: ReturnType<typeof checkCompatible>, position: string) => report.positions.find((p) => p.position === position);

  it('finds every position compatible when steps are only appended', () => {
    const report = checkCompatible(V1, V2_APPENDED);
    expect(report.compatible).toBe(true);
    expect(report.positions.map((p) => p.position)).toEqual(['running "a"', 'compensating "a"', 'running "b"', 'compensating "b"', 'running "c"', 'compensating "c"']);
  });

  it('says which positions cannot move when a step is removed, and why', () => {
    const report = checkCompatible(V1, V2_NO_FIRST);
    expect(report.compatible).toBe(false);
    expect(at(report, 'running "b"')).toMatchObject({ movable: false, compatible: false, reasons: [expect.stringContaining('"a"')] });
    expect(at(report, 'compensating "c"')?.movable).toBe(false);
  });

  it('flags a step the new order would skip or run again', () => {
    const reordered = defineWorkflow<Order>({ name: 'order', version: 2, steps: [A, C, B] });
    const report = checkCompatible(V1, reordered);
    expect(at(report, 'running "b"')).toMatchObject({ movable: true, compatible: false, reasons: [expect.stringContaining('"c" comes before "b" in version 2 but never ran')] });
    expect(at(report, 'running "c"')).toMatchObject({ movable: true, compatible: false, reasons: [expect.stringContaining('"b" already ran but comes after "c"')] });
    expect(at(report, 'compensating "c"')?.compatible).toBe(true);
  });

  it('accepts a rename through the map', () => {
    expect(checkCompatible(V1, V2_RENAMED).compatible).toBe(false);
    expect(checkCompatible(V1, V2_RENAMED, { map: { b: 'b2' } }).compatible).toBe(true);
  });

  it('checks every branch step of a group, and warns of a branch a group in progress would never start', () => {
    const G1 = defineWorkflow<Order>({ name: 'grouped', steps: [A, parallel('ship', [B, C])] });
    const G2 = defineWorkflow<Order>({ name: 'grouped', version: 2, steps: [A, parallel('ship', [B, C, X])] });
    const G3 = defineWorkflow<Order>({ name: 'grouped', version: 3, steps: [A, parallel('ship', [B])] });
    expect(at(checkCompatible(G1, G2), 'in group "ship"')).toMatchObject({ movable: true, compatible: false, reasons: [expect.stringContaining('branch "x"')] });
    expect(at(checkCompatible(G1, G2), 'compensating group "ship"')?.compatible).toBe(true);
    expect(at(checkCompatible(G1, G3), 'in group "ship"')).toMatchObject({ movable: false, reasons: [expect.stringContaining('branch "c"')] });
  });
});

describe('two PostgreSQL workers running different versions on one database', () => {
  let url = '';
  beforeAll(async () => {
    url = await createTestDatabase('versions');
  });
  afterAll(async () => dropTestDatabase(url));

  it('finish each instance on a worker that has its version; an instance no live worker can run is blocked until one can', async () => {
    const inflight = { n: 0 };
    /** A store that counts its calls in flight, so the test can wait for real I/O a simulated clock does not wait for. */
    const counted = (store: InstanceStore): InstanceStore =>
      new Proxy(store, {
        get(target, property) {
          const value: unknown = Reflect.get(target, property, target);
          if (typeof value !== 'function') return value;
          return (...args: unknown[]): unknown => {
            const result: unknown = (value as (...a: unknown[]) => unknown).apply(target, args);
            if (result instanceof Promise) {
              inflight.n += 1;
              const settled = (): void => void (inflight.n -= 1);
              result.then(settled, settled);
            }
            return result;
          };
        },
      });
    const settle = async (): Promise<void> => {
      for (let quiet = 0; quiet < 5; ) {
        await nextTurn();
        if (inflight.n === 0) quiet += 1;
        else {
          quiet = 0;
          await sleep(1);
        }
      }
    };
    const clock = new SimulatedClock();
    const advance = async (seconds: number): Promise<void> => {
      await settle();
      for (let i = 0; i < seconds; i += 1) {
        await clock.advance('1s');
        await settle();
      }
    };
    const stores: TypeormStore[] = [];
    const problems: RuntimeProblem[] = [];
    const worker = (workerId: string, workflows: WorkflowDefinition[]): SagaRuntime => {
      const store = TypeormStore.postgres({ url, schema: 'versions', poolSize: 4 });
      stores.push(store);
      const runtime = new SagaRuntime({ store: counted(store), clock, logger: silentLogger, workflows, workerId, leaseDuration: '10s', pollInterval: '1s' });
      runtime.errors$.subscribe((p) => problems.push(p));
      return runtime;
    };
    log.length = 0;
    const one = worker('v1-worker', [V1]);
    const two = worker('v2-worker', [V2_APPENDED]);
    await one.start();
    await two.start();
    await one.start(V1, { orderId: 'p-1' }, { id: 'p-1' });
    await two.start(V2_APPENDED, { orderId: 'p-2' }, { id: 'p-2' });
    await one.start(V1, { orderId: 'p-3' }, { id: 'p-3' });
    await advance(2);
    // Both events go through the version-2 worker; the version-1 instance's goes to its inbox for the other worker.
    await two.publish({ topic: 'go', payload: { orderId: 'p-1' } });
    await two.publish({ topic: 'go', payload: { orderId: 'p-2' } });
    await advance(3);
    expect((await one.get('p-1')).status).toBe('completed');
    expect((await two.get('p-2')).status).toBe('completed');
    expect(log.filter((l) => l === 'x.run')).toEqual(['x.run']);
    for (const id of ['p-1', 'p-2']) expect((await one.history(id)).map((h) => h.kind)).not.toContain('blocked');
    expect(problems).toEqual([]);

    // The version-1 worker goes away for good: its waiting instance is blocked for all to see...
    await one.stop({ drainTimeout: '1s' });
    await advance(25);
    expect((await two.get('p-3')).blocked).toMatchObject({ code: 'UNKNOWN_VERSION' });
    expect(problems.map((p) => [p.kind, p.instanceId])).toEqual([['instance-blocked', 'p-3']]);
    // ...until a worker with version 1 comes back and takes it: it waits again, and finishes.
    const again = worker('v1-worker-again', [V1]);
    await again.start();
    await advance(3);
    expect((await again.get('p-3')).status).toBe('waiting');
    await two.publish({ topic: 'go', payload: { orderId: 'p-3' } });
    await advance(3);
    expect((await again.get('p-3')).status).toBe('completed');
    await two.close();
    await again.close();
    await Promise.all(stores.map((s) => s.close()));
  }, 30_000);
});
