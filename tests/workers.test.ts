import { MemoryStore, defineWorkflow, ok, type SagaRuntimeOptions } from '../src';
import { SimulatedClock } from '../src/testing';
import { recordingStep, waitsFor, type Log, type TestState } from './support/steps';
import { testRuntime } from './support/runtime';

/** Two workers (runtimes) on one shared store and one clock. */
function twoWorkers(workflows: SagaRuntimeOptions['workflows']) {
  const store = new MemoryStore({ shared: true });
  const clock = new SimulatedClock();
  const options = { workflows, store, clock, leaseDuration: '30s', pollInterval: '1s' } as const;
  return { store, clock, a: testRuntime({ ...options, workerId: 'A' }), b: testRuntime({ ...options, workerId: 'B' }) };
}

describe('several workers on one shared store', () => {
  it('never run an instance on two workers at once while its lease is held', async () => {
    const log: Log = [];
    let release!: () => void;
    const wf = defineWorkflow<TestState>({
      name: 'held',
      steps: [recordingStep('S', log, { run: (s) => new Promise((r) => (release = () => r(ok(s)))) })],
    });
    const { a, b, clock } = twoWorkers([wf]);
    await a.runtime.start();
    const handle = await a.runtime.start(wf, { trail: [] }, { id: 'one' });
    await b.runtime.start();
    await clock.advance('20s');
    expect(log).toEqual(['S.run']);
    release();
    expect((await handle.result()).status).toBe('completed');
    await clock.advance('1m');
    expect(log).toEqual(['S.run']);
    await a.runtime.close();
    await b.runtime.close();
  });

  it("take over a dead worker's instance after its lease expires, re-running the step with the same idempotency key", async () => {
    const keys: string[] = [];
    let hang = true;
    const wf = defineWorkflow<TestState>({
      name: 'takeover',
      steps: [
        recordingStep('A', []),
        recordingStep('S', [], {
          run: (s, ctx) => {
            keys.push(`${ctx.idempotencyKey}`);
            return hang ? new Promise(() => undefined) : ok(s);
          },
        }),
      ],
    });
    const { a, b, clock } = twoWorkers([wf]);
    await a.runtime.start();
    await a.runtime.start(wf, { trail: [] }, { id: 'orphan' });
    await clock.advance('1s');
    expect(keys).toEqual(['orphan:S:up:1']);
    await a.runtime.close(); // the worker dies with the lease held and S in flight
    hang = false;
    await b.runtime.start();
    await clock.advance('29s');
    expect(keys).toHaveLength(1);
    await clock.advance('2s');
    expect((await b.runtime.handle('orphan').result()).status).toBe('completed');
    expect(keys).toEqual(['orphan:S:up:1', 'orphan:S:up:1']);
    await b.runtime.close();
  });

  it('hand an event published on one worker to the worker holding the instance, through the inbox, exactly once', async () => {
    const log: Log = [];
    const wf = defineWorkflow<TestState>({ name: 'inbox', steps: [recordingStep('W', log, { run: waitsFor('paid', { orderId: 'o-1' }) })] });
    const { a, b, store } = twoWorkers([wf]);
    await a.runtime.start();
    await b.runtime.start();
    const handle = await a.runtime.start(wf, { trail: [] }, { id: 'mine' });
    await a.runtime.idle();
    const receipt = await b.runtime.publish({ topic: 'paid', payload: { orderId: 'o-1' }, id: 'evt-1' });
    expect(receipt.delivered).toBe(1);
    expect((await handle.result()).status).toBe('completed');
    expect(log).toEqual(['W.run', 'W.runHandleInfo']);
    expect(await store.pendingEvents('mine')).toEqual([]);
    await a.runtime.close();
    await b.runtime.close();
  });

  it('apply an inbox delivery left by a dead worker once its lease expires', async () => {
    const log: Log = [];
    const wf = defineWorkflow<TestState>({ name: 'inbox-takeover', steps: [recordingStep('W', log, { run: waitsFor('paid') })] });
    const { a, b, clock, store } = twoWorkers([wf]);
    await a.runtime.start();
    await a.runtime.start(wf, { trail: [] }, { id: 'left' });
    await a.runtime.idle();
    await a.runtime.close();
    await b.runtime.start();
    expect((await b.runtime.publish({ topic: 'paid' })).delivered).toBe(1);
    expect(await store.pendingEvents('left')).toHaveLength(1);
    await clock.advance('31s');
    expect((await b.runtime.handle('left').result()).status).toBe('completed');
    expect(log).toEqual(['W.run', 'W.runHandleInfo']);
    expect(await store.pendingEvents('left')).toEqual([]);
    await b.runtime.close();
  });

  it('fire due wait deadlines on a surviving worker', async () => {
    const log: Log = [];
    const wf = defineWorkflow<TestState>({ name: 'due', steps: [recordingStep('A', log), recordingStep('W', log, { run: waitsFor('never', {}, '1m') })] });
    const { a, b, clock } = twoWorkers([wf]);
    await a.runtime.start();
    await a.runtime.start(wf, { trail: [] }, { id: 'late' });
    await a.runtime.idle();
    await a.runtime.close();
    await b.runtime.start();
    await clock.advance('61s');
    const result = await b.runtime.handle('late').result();
    expect(result.error?.code).toBe('TIMEOUT');
    expect(log).toEqual(['A.run', 'W.run', 'W.rollback', 'A.rollback']);
    await b.runtime.close();
  });

  it('refuse operator calls on an instance another live worker holds with LEASED_ELSEWHERE', async () => {
    const wf = defineWorkflow<TestState>({ name: 'leased', steps: [recordingStep('W', [], { run: waitsFor('go') })] });
    const { a, b } = twoWorkers([wf]);
    await a.runtime.start();
    await a.runtime.start(wf, { trail: [] }, { id: 'busy' });
    await a.runtime.idle();
    await expect(b.runtime.rollback('busy', 'x')).rejects.toMatchObject({ code: 'LEASED_ELSEWHERE' });
    await expect(b.runtime.rollback('missing', 'x')).rejects.toMatchObject({ code: 'UNKNOWN_INSTANCE' });
    await a.runtime.close();
    await b.runtime.close();
  });
});
