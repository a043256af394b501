import { MemoryStore, defineWorkflow, type InstanceStore } from '../src';
import { recordingStep, waitsFor, type Log, type TestState } from './support/steps';
import { testRuntime } from './support/runtime';
import { flushMicrotasks } from '../src/testing';

/** `store` as runtime A sees it: `hang(method)` makes A "die" in that call (it never returns). */
function dyingIn(store: MemoryStore, hang: (method: string) => boolean): InstanceStore {
  return new Proxy(store, {
    get(target, p) {
      const v = Reflect.get(target, p, target) as unknown;
      if (typeof v !== 'function') return v;
      return (...args: unknown[]) => (hang(String(p)) ? new Promise(() => undefined) : (v as (...a: unknown[]) => unknown).apply(target, args));
    },
  });
}

function paidWorkflow(log: Log) {
  return defineWorkflow<TestState>({ name: 'pay', steps: [recordingStep('W', log, { run: waitsFor('paid', { orderId: 'o-1' }) })] });
}

/** Workers A (on a store that hangs where `hang` says) and B on one shared store and clock. */
function twoWorkers(store: MemoryStore, wf: ReturnType<typeof paidWorkflow>, hang: (method: string) => boolean) {
  const opts = { workflows: [wf], leaseDuration: '30s', pollInterval: '1s' } as const;
  const a = testRuntime({ ...opts, store: dyingIn(store, hang), workerId: 'A' });
  const b = testRuntime({ ...opts, store, clock: a.clock, workerId: 'B' });
  return { a, b };
}

describe('retained (fast-reply) events without a crash', () => {
  it('reach a wait that begins after them on a shared store', async () => {
    const log: Log = [];
    const store = new MemoryStore({ shared: true });
    const wf = paidWorkflow(log);
    const { a, b } = twoWorkers(store, wf, () => false);
    await b.runtime.start();
    expect(await b.runtime.publish({ topic: 'paid', payload: { orderId: 'o-1' } })).toMatchObject({ delivered: 0, retained: true });
    await a.runtime.start();
    await a.runtime.start(wf, { trail: [] }, { id: 'o-1' });
    await a.runtime.idle();
    await flushMicrotasks();
    expect((await store.load('o-1'))?.flow.status).toBe('completed');
  });
  it('reach a wait that begins after them in one process', async () => {
    const log: Log = [];
    const store = new MemoryStore();
    const wf = paidWorkflow(log);
    const a = testRuntime({ workflows: [wf], store: dyingIn(store, () => false) });
    expect(await a.runtime.publish({ topic: 'paid', payload: { orderId: 'o-1' } })).toMatchObject({ delivered: 0, retained: true });
    await a.runtime.start(wf, { trail: [] }, { id: 'o-1' });
    await flushMicrotasks();
    expect((await store.load('o-1'))?.flow.status).toBe('completed');
  });
});

describe('retained (fast-reply) events across a crash', () => {
  it('reach the waiting instance of a dead worker, once another worker takes it over, on a shared store', async () => {
    const log: Log = [];
    const store = new MemoryStore({ shared: true });
    const wf = paidWorkflow(log);
    // A dies right after its wait is stored, before it looks for a retained event.
    const { a, b } = twoWorkers(store, wf, (m) => m === 'moveRetainedToInbox');
    await b.runtime.start();
    // The fast reply: published before the wait exists, so it is retained (acknowledged).
    expect(await b.runtime.publish({ topic: 'paid', payload: { orderId: 'o-1' } })).toMatchObject({ delivered: 0, retained: true });
    await a.runtime.start();
    await a.runtime.start(wf, { trail: [] }, { id: 'o-1' });
    await a.runtime.idle();
    expect((await store.load('o-1'))?.flow.status).toBe('waiting');
    await a.runtime.close(); // A is dead; its lease runs out after 30 s
    await a.clock.advance('2m');
    await b.runtime.idle();
    expect((await store.load('o-1'))?.flow.status).toBe('completed');
    await b.runtime.close();
  });

  it('are not lost when the process dies between taking one and applying it', async () => {
    const log: Log = [];
    const store = new MemoryStore();
    const wf = paidWorkflow(log);
    let taken = false;
    // A takes the retained event, then dies before the transition that applies it is saved.
    const a = testRuntime({
      workflows: [wf],
      store: dyingIn(store, (m) => {
        if (m === 'moveRetainedToInbox') taken = true;
        return m === 'save' && taken;
      }),
    });
    expect(await a.runtime.publish({ topic: 'paid', payload: { orderId: 'o-1' } })).toMatchObject({ delivered: 0, retained: true });
    await a.runtime.start(wf, { trail: [] }, { id: 'o-1' });
    await flushMicrotasks();
    expect(taken).toBe(true);
    expect((await store.load('o-1'))?.flow.status).toBe('waiting');
    await a.runtime.close(); // the process dies
    const b = testRuntime({ workflows: [wf], store, clock: a.clock });
    await b.runtime.start(); // recovery: the instance waits again
    await b.runtime.idle();
    expect((await store.load('o-1'))?.flow.status).toBe('completed');
    await b.runtime.close();
  });
});
