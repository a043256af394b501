import { copyFileSync, mkdtempSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { MemoryStore, SagaRuntime, defineWorkflow, ok, silentLogger, type InstanceStore, type RuntimeProblem, type SagaResult, type WorkflowHandle } from '../src';
import { SimulatedClock } from '../src/testing';
import { TypeormStore } from '../src/store/typeorm';
import { FlakyStore } from './support/flaky-store';
import { newRecord } from '../src/engine/instance-record';
import { recordingStep, waitsFor, type Log, type TestState } from './support/steps';

const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/**
 * Advances the clock in small steps until the instance ends: the store-retry backoff runs on it (and a batch
 * waiting for its retry counts as queued work, so `runtime.idle()` would wait for it).
 */
async function settle<S>(handle: WorkflowHandle<S>, clock: SimulatedClock): Promise<SagaResult<S>> {
  let result: SagaResult<S> | undefined;
  void handle.result().then((r) => (result = r));
  for (let i = 0; i < 400 && result === undefined; i += 1) {
    for (let k = 0; k < 5; k += 1) await turn();
    await clock.advance(50);
  }
  if (result === undefined) throw new Error('the instance did not end');
  return result;
}

const stores: [string, () => { store: InstanceStore; done: () => Promise<void> }][] = [
  ['memory', () => ({ store: new MemoryStore(), done: () => Promise.resolve() })],
  [
    'SQLite',
    () => {
      const dir = mkdtempSync(path.join(tmpdir(), 'sagaflow-flaky-'));
      const store = TypeormStore.sqlite({ file: path.join(dir, 'flaky.db') });
      return {
        store,
        done: async () => {
          await store.close();
          rmSync(dir, { recursive: true, force: true });
        },
      };
    },
  ],
];

describe.each(stores)('a store that fails and recovers (%s)', (_name, make) => {
  let flaky: FlakyStore;
  let done: () => Promise<void>;
  let runtime: SagaRuntime;
  let clock: SimulatedClock;
  let problems: RuntimeProblem[];
  const log: Log = [];
  const wf = defineWorkflow<TestState>({
    name: 'three',
    steps: [recordingStep('A', log), recordingStep('B', log), recordingStep('C', log)],
  });

  beforeEach(() => {
    const made = make();
    flaky = new FlakyStore(made.store);
    done = made.done;
    clock = new SimulatedClock();
    runtime = new SagaRuntime({ store: flaky.store, clock, logger: silentLogger, workflows: [wf] });
    problems = [];
    runtime.errors$.subscribe((p) => problems.push(p));
    log.length = 0;
  });
  afterEach(async () => {
    await runtime.close();
    await done();
  });

  it('saves a transition again with backoff until the store answers, reporting each failure, and goes on', async () => {
    flaky.failSaves(3);
    const handle = await runtime.start(wf, { trail: [] });
    const result = await settle(handle, clock);
    expect(result.status).toBe('completed');
    expect(log).toEqual(['A.run', 'B.run', 'C.run']);
    const failures = problems.filter((p) => p.message.includes('saving a transition'));
    expect(failures.map((p) => p.message.match(/attempt (\d+)/)?.[1])).toEqual(['1', '2', '3']);
    expect(failures.map((p) => p.error.code)).toEqual(['SQLITE_FULL', 'SQLITE_FULL', 'SQLITE_FULL']);
    expect(failures.map((p) => p.message.match(/again in (\d+) ms/)?.[1])).toEqual(['100', '200', '400']);
    expect((await runtime.history(handle.id)).filter((h) => h.kind === 'step-result')).toHaveLength(3);
  });

  it('does not apply a result twice when the save committed but its answer was lost', async () => {
    flaky.failSaves(1, 'after');
    const handle = await runtime.start(wf, { trail: [] });
    const result = await settle(handle, clock);
    expect(result.status).toBe('completed');
    expect(log).toEqual(['A.run', 'B.run', 'C.run']);
    expect((await runtime.history(handle.id)).filter((h) => h.kind === 'step-result').map((h) => h.step)).toEqual(['A', 'B', 'C']);
  });

  it('keeps reading the record back while the store is down, then goes on', async () => {
    const events: Log = [];
    const waiting = defineWorkflow<TestState>({ name: 'waits-then-two', steps: [recordingStep('W', events, { run: waitsFor('go') }), recordingStep('D', events)] });
    runtime.register(waiting);
    const handle = await runtime.start(waiting, { trail: [] });
    await runtime.idle();
    const ended = settle(handle, clock);
    flaky.failSaves(1, 'before', 2);
    await runtime.publish({ topic: 'go' });
    const result = await ended;
    expect(result.status).toBe('completed');
    expect(events).toEqual(['W.run', 'W.runHandleInfo', 'D.run']);
    expect(problems.filter((p) => p.message.includes('reading instance')).map((p) => p.error.code)).toEqual(['ECONNRESET', 'ECONNRESET']);
  });

  it('delivers an event whose transition could not be saved at first, exactly once', async () => {
    const events: Log = [];
    const waiting = defineWorkflow<TestState>({ name: 'waits', steps: [recordingStep('W', events, { run: waitsFor('go') })] });
    runtime.register(waiting);
    const handle = await runtime.start(waiting, { trail: [] });
    await runtime.idle();
    flaky.failSaves(2);
    const published = runtime.publish({ topic: 'go' });
    const result = await settle(handle, clock);
    expect((await published).delivered).toBe(1);
    expect(result.status).toBe('completed');
    expect(events).toEqual(['W.run', 'W.runHandleInfo']);
  });

  it('stops retrying when the runtime closes, leaving nothing pending', async () => {
    flaky.failSaves(1000);
    const handle = await runtime.start(wf, { trail: [] });
    for (let k = 0; k < 5; k += 1) await turn();
    await clock.advance(100);
    await runtime.close();
    await expect(handle.result()).rejects.toMatchObject({ code: 'RUNTIME_CLOSED' });
  });
});

describe('handle.result() that rejects', () => {
  it('leaves no waiter behind, so closing the runtime later raises no unhandled rejection', async () => {
    const unhandled: unknown[] = [];
    const listener = (reason: unknown): void => {
      unhandled.push(reason);
    };
    process.on('unhandledRejection', listener);
    try {
      const flaky = new FlakyStore(new MemoryStore());
      const wf = defineWorkflow<TestState>({ name: 'parks', steps: [recordingStep('W', [], { run: waitsFor('never') })] });
      const runtime = new SagaRuntime({ store: flaky.store, clock: new SimulatedClock(), logger: silentLogger, workflows: [wf] });
      const handle = await runtime.start(wf, { trail: [] });
      await runtime.idle();
      await expect(runtime.handle('no-such-id').result()).rejects.toMatchObject({ code: 'UNKNOWN_INSTANCE' });
      flaky.failLoads(1);
      await expect(runtime.handle(`${handle.id}-other`).result()).rejects.toMatchObject({ code: 'ECONNRESET' });
      const waiting = handle.result();
      await runtime.close();
      await expect(waiting).rejects.toMatchObject({ code: 'RUNTIME_CLOSED' });
      await expect(handle.result()).rejects.toMatchObject({ code: 'RUNTIME_CLOSED' });
      await new Promise((resolve) => setImmediate(resolve));
      expect(unhandled).toEqual([]);
    } finally {
      process.off('unhandledRejection', listener);
    }
  });

  it('tries a store that failed to open again on the next call instead of failing for ever', async () => {
    const store = new MemoryStore();
    let opens = 0;
    const flakyInit = Object.assign(Object.create(store) as MemoryStore, {
      init: () => (++opens === 1 ? Promise.reject(new Error('database is starting up')) : Promise.resolve()),
    });
    const wf = defineWorkflow<TestState>({ name: 'one', steps: [recordingStep('A', [])] });
    const runtime = new SagaRuntime({ store: flakyInit, clock: new SimulatedClock(), logger: silentLogger, workflows: [wf] });
    await expect(runtime.start(wf, { trail: [] })).rejects.toThrow('database is starting up');
    const handle = await runtime.start(wf, { trail: [] });
    expect((await handle.result()).status).toBe('completed');
    expect(opens).toBe(2);
    await runtime.close();
  });

  it('tries recovery again after a store failure made runtime.start() reject', async () => {
    const store = new MemoryStore();
    const wf = defineWorkflow<TestState>({ name: 'one', steps: [recordingStep('A', [])] });
    const runtime = new SagaRuntime({ store, clock: new SimulatedClock(), logger: silentLogger, workflows: [wf] });
    const unfinished = jest.spyOn(store, 'unfinished').mockRejectedValueOnce(new Error('connection refused'));
    await expect(runtime.start()).rejects.toThrow('connection refused');
    await expect(runtime.start()).resolves.toBeUndefined();
    expect(unfinished).toHaveBeenCalledTimes(2);
    await runtime.close();
  });
});

describe('an SQLite file deleted or replaced under a running store', () => {
  let dir: string;
  let file: string;
  let store: TypeormStore;
  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'sagaflow-vanish-'));
    file = path.join(dir, 'app.db');
    store = TypeormStore.sqlite({ file });
  });
  afterEach(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('acknowledges nothing while the file is gone (STORE_FILE_CHANGED), keeps the result, and goes on when the file is back', async () => {
    const clock = new SimulatedClock();
    const log: Log = [];
    let finish!: () => void;
    const finished = new Promise<void>((resolve) => (finish = resolve));
    const wf = defineWorkflow<TestState>({
      name: 'vanish',
      steps: [recordingStep('W', log, { run: waitsFor('go') }), recordingStep('D', log, { run: async (s) => (await finished, ok(s)) })],
    });
    const runtime = new SagaRuntime({ store, clock, logger: silentLogger, workflows: [wf] });
    const problems: RuntimeProblem[] = [];
    runtime.errors$.subscribe((p) => problems.push(p));
    const handle = await runtime.start(wf, { trail: [] });
    await runtime.idle();
    await runtime.publish({ topic: 'go' });
    renameSync(file, `${file}.moved`);
    // While the file is gone, an event is not accepted, and D's result is not acknowledged: it is kept and retried.
    await expect(runtime.publish({ topic: 'other' })).rejects.toMatchObject({ code: 'STORE_FILE_CHANGED', details: { reason: 'deleted' } });
    finish();
    for (let i = 0; i < 10; i += 1) {
      for (let k = 0; k < 5; k += 1) await turn();
      await clock.advance(100);
    }
    const failures = problems.filter((p) => p.error.code === 'STORE_FILE_CHANGED');
    expect(failures.length).toBeGreaterThan(1);
    expect(failures[0]?.message).toContain('saving a transition');
    renameSync(`${file}.moved`, file);
    const result = await settle(handle, clock);
    expect(result.status).toBe('completed');
    expect(log).toEqual(['W.run', 'W.runHandleInfo', 'D.run']);
    await runtime.close();
  });

  it('says the file was replaced when another file now has its name', async () => {
    await store.create(newRecord('r-1', 'wf', { n: 1 }, 0));
    const record = (await store.load('r-1'))!;
    copyFileSync(file, `${file}.copy`);
    renameSync(`${file}.copy`, file);
    await expect(store.save({ ...record, state: { n: 2 } })).rejects.toMatchObject({ code: 'STORE_FILE_CHANGED', details: { reason: 'replaced' } });
    await expect(store.load('r-1')).rejects.toMatchObject({ code: 'STORE_FILE_CHANGED', details: { reason: 'replaced' } });
  });
});
