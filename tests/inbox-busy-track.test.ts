import { MemoryStore, SagaRuntime, VersionConflictError, defineWorkflow, ok, silentLogger, type RuntimeProblem } from '../src';
import { recordingStep, waitsFor, type Log, type TestState } from './support/steps';

/** Polls `condition` every 20 ms for at most `ms`; true once it held. */
async function within(ms: number, condition: () => Promise<boolean>): Promise<boolean> {
  for (const end = Date.now() + ms; Date.now() < end; ) {
    if (await condition()) return true;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return condition();
}

describe('an event in the inbox for a track whose handler is still running', () => {
  it('stays in the inbox until the track waits again, and is then delivered: none is lost', async () => {
    const log: Log = [];
    let parts = 0;
    const wf = defineWorkflow<TestState>({
      name: 'parts-inbox',
      steps: [
        recordingStep('W', log, {
          run: waitsFor('part'),
          runHandleInfo: async (state) => {
            parts += 1;
            // The first part takes a while: the second arrives in the inbox meanwhile.
            if (parts === 1) await new Promise((resolve) => setTimeout(resolve, 150));
            return parts < 2 ? { kind: 'continue', state, wait: { topic: 'part' } } : ok(state);
          },
        }),
      ],
    });
    const store = new MemoryStore({ shared: true });
    const problems: RuntimeProblem[] = [];
    const holder = new SagaRuntime({ store, workflows: [wf], logger: silentLogger, workerId: 'holder', pollInterval: '20ms' });
    const publisher = new SagaRuntime({ store, workflows: [wf], logger: silentLogger, workerId: 'publisher', pollInterval: '1h' });
    for (const runtime of [holder, publisher]) runtime.errors$.subscribe((p) => problems.push(p));
    try {
      await holder.start();
      await holder.start(wf, { trail: [] }, { id: 'parts-1' });
      await holder.idle();
      // The holder keeps the lease: both events go into the instance's inbox together (each found the instance
      // waiting before the holder applied the first).
      const receipts = await Promise.all([publisher.publish({ topic: 'part' }), publisher.publish({ topic: 'part' })]);

      expect(receipts.map((r) => r.delivered)).toEqual([1, 1]);
      expect(await within(3000, async () => (await store.load('parts-1'))?.flow.status === 'completed')).toBe(true);
      expect(log).toEqual(['W.run', 'W.runHandleInfo', 'W.runHandleInfo']);
      expect(problems).toEqual([]);
    } finally {
      await publisher.close();
      await holder.close();
    }
  });
});

describe('an inbox delivery that meets a newer version of its instance', () => {
  it('stays in the inbox and is applied on the next read of it, without a report', async () => {
    const log: Log = [];
    const wf = defineWorkflow<TestState>({ name: 'inbox-conflict', steps: [recordingStep('W', log, { run: waitsFor('part') })] });
    const inner = new MemoryStore({ shared: true });
    let conflicts = 0;
    // The first save that consumes an inbox delivery finds the instance moved on (as when another worker wrote it).
    const store = new Proxy(inner, {
      get(target, prop, receiver) {
        if (prop === 'save') {
          return (...args: Parameters<MemoryStore['save']>) => {
            const [record, writes] = args;
            if (conflicts === 0 && (writes?.consumed?.length ?? 0) > 0) {
              conflicts += 1;
              return Promise.reject(new VersionConflictError(record.id, record.version, record.version + 1));
            }
            return target.save(...args);
          };
        }
        const value: unknown = Reflect.get(target, prop, receiver);
        return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
      },
    });
    const problems: RuntimeProblem[] = [];
    const holder = new SagaRuntime({ store, workflows: [wf], logger: silentLogger, workerId: 'holder', pollInterval: '1h' });
    const publisher = new SagaRuntime({ store, workflows: [wf], logger: silentLogger, workerId: 'publisher', pollInterval: '1h' });
    for (const runtime of [holder, publisher]) runtime.errors$.subscribe((p) => problems.push(p));
    try {
      await holder.start();
      await holder.start(wf, { trail: [] }, { id: 'conflict-1' });
      await holder.idle();
      expect((await publisher.publish({ topic: 'part' })).delivered).toBe(1);
      expect(await within(3000, async () => (await inner.load('conflict-1'))?.flow.status === 'completed')).toBe(true);
      expect(conflicts).toBe(1);
      expect(problems).toEqual([]);
    } finally {
      await publisher.close();
      await holder.close();
    }
  });
});
