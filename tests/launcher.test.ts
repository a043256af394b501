import { MemoryStore, defineWorkflow, ok, stopOnSignals, type StopReport } from '../src';
import { SimulatedClock } from '../src/testing';
import { recordingStep, type Log, type TestState } from './support/steps';
import { testRuntime } from './support/runtime';

/** A step whose run waits until `release()` is called; `entered` resolves when it starts. */
function gate() {
  let release!: () => void;
  let enter!: () => void;
  const entered = new Promise<void>((r) => (enter = r));
  const released = new Promise<void>((r) => (release = r));
  return { entered, release, run: async (s: TestState) => (enter(), await released, ok(s)) };
}

describe('stopping a runtime gracefully', () => {
  it('lets a call in flight finish and save its result, starts nothing new, and leaves the next intent for a resume', async () => {
    const log: Log = [];
    const g = gate();
    const wf = defineWorkflow<TestState>({ name: 'drain', steps: [recordingStep('S', log, { run: g.run }), recordingStep('T', log)] });
    const store = new MemoryStore();
    const first = testRuntime({ workflows: [wf], store });
    await first.runtime.start(wf, { trail: [] }, { id: 'd' });
    await g.entered;
    const stopped = first.runtime.stop({ drainTimeout: '10s' });
    g.release();
    expect(await stopped).toEqual({ drained: true, abandoned: 0 });
    expect(log).toEqual(['S.run']);
    const record = await store.load('d');
    expect(record?.flow).toMatchObject({ stepName: 'T', inFlight: true });

    const second = testRuntime({ workflows: [wf], store });
    await second.runtime.start();
    expect((await second.runtime.handle('d').result()).status).toBe('completed');
    expect(log).toEqual(['S.run', 'T.run']);
  });

  it('aborts what still runs at the deadline and drops its result; a resume calls it again', async () => {
    const log: Log = [];
    let aborted = false;
    let hang = true;
    let entered!: () => void;
    const inS = new Promise<void>((r) => (entered = r));
    const wf = defineWorkflow<TestState>({
      name: 'abandon',
      steps: [
        recordingStep('S', log, {
          run: (s, ctx) => {
            entered();
            if (!hang) return ok(s);
            return new Promise((resolve) =>
              ctx.signal.addEventListener('abort', () => {
                aborted = true;
                resolve(ok(s));
              }),
            );
          },
        }),
      ],
    });
    const store = new MemoryStore();
    const clock = new SimulatedClock();
    const first = testRuntime({ workflows: [wf], store, clock });
    await first.runtime.start(wf, { trail: [] }, { id: 'a' });
    await inS;
    const stopped = first.runtime.stop({ drainTimeout: '5s' });
    await clock.advance('5s');
    expect(await stopped).toEqual({ drained: false, abandoned: 1 });
    expect(aborted).toBe(true);
    expect((await store.load('a'))?.flow).toMatchObject({ stepName: 'S', inFlight: true });

    hang = false;
    const second = testRuntime({ workflows: [wf], store, clock });
    await second.runtime.start();
    expect((await second.runtime.handle('a').result()).status).toBe('completed');
    expect(log).toEqual(['S.run', 'S.run']);
  });

  it('refuses new work with RUNTIME_CLOSED once stopping', async () => {
    const wf = defineWorkflow<TestState>({ name: 'refuse', steps: [recordingStep('S', [])] });
    const { runtime } = testRuntime({ workflows: [wf] });
    await runtime.stop();
    await expect(runtime.start(wf, { trail: [] })).rejects.toMatchObject({ code: 'RUNTIME_CLOSED' });
    await expect(runtime.publish({ topic: 'x' })).rejects.toMatchObject({ code: 'RUNTIME_CLOSED' });
  });

  it('gives its leases back so another worker takes over at once', async () => {
    const log: Log = [];
    const g = gate();
    const wf = defineWorkflow<TestState>({ name: 'handover', steps: [recordingStep('S', log, { run: g.run }), recordingStep('T', log)] });
    const store = new MemoryStore({ shared: true });
    const clock = new SimulatedClock();
    const a = testRuntime({ workflows: [wf], store, clock, workerId: 'A' });
    const b = testRuntime({ workflows: [wf], store, clock, workerId: 'B', pollInterval: '1s' });
    await a.runtime.start();
    await a.runtime.start(wf, { trail: [] }, { id: 'h' });
    await g.entered;
    const stopped = a.runtime.stop({ drainTimeout: '10s' });
    g.release();
    await stopped;
    await b.runtime.start();
    await clock.advance('1s');
    expect((await b.runtime.handle('h').result()).status).toBe('completed');
    expect(log).toEqual(['S.run', 'T.run']);
    await b.runtime.close();
  });

  it('stops on SIGTERM through stopOnSignals', async () => {
    const wf = defineWorkflow<TestState>({ name: 'signal', steps: [recordingStep('S', [])] });
    const { runtime } = testRuntime({ workflows: [wf] });
    const reports: (StopReport | Error)[] = [];
    let done!: () => void;
    const finished = new Promise<void>((r) => (done = r));
    const remove = stopOnSignals(runtime, {
      exit: false,
      onStopped: (r) => {
        reports.push(r);
        done();
      },
    });
    process.emit('SIGTERM');
    await finished;
    remove();
    expect(reports).toEqual([{ drained: true, abandoned: 0 }]);
    await expect(runtime.start(wf, { trail: [] })).rejects.toMatchObject({ code: 'RUNTIME_CLOSED' });
  });
});
