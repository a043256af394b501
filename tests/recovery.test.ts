import { defineWorkflow, MemoryStore, ok } from '../src';
import { SimulatedClock } from '../src/testing';
import { recordingStep, waitsFor, type Log, type TestState } from './support/steps';
import { testRuntime } from './support/runtime';

/** A workflow whose steps record into `log`; W waits for `go`, optionally with a deadline. */
function awb(log: Log, timeout?: string) {
  return defineWorkflow<TestState>({
    name: 'resumable',
    steps: [recordingStep('A', log), recordingStep('W', log, { run: waitsFor('go', { k: 1 }, timeout) }), recordingStep('B', log)],
  });
}

describe('resuming from a stored record', () => {
  it('round-trips a waiting instance through JSON and resumes it in a new runtime', async () => {
    const log: Log = [];
    const first = testRuntime({ workflows: [awb(log)] });
    const handle = await first.runtime.start('resumable', { trail: [] }, { id: 'r-1' });
    await first.runtime.idle();
    const json = (first.runtime.store as MemoryStore).exportJson('r-1')!;
    await first.runtime.close();

    const store = new MemoryStore();
    store.importJson(JSON.stringify(JSON.parse(json)));
    const second = testRuntime({ workflows: [awb(log)], store });
    await second.runtime.start();
    expect((await second.runtime.publish({ topic: 'go', payload: { k: 1 } })).delivered).toBe(1);
    const result = await second.runtime.handle(handle.id).result();
    expect(result.status).toBe('completed');
    expect(log).toEqual(['A.run', 'W.run', 'W.runHandleInfo', 'B.run']);
  });

  it('re-runs the step that was in flight, with the same idempotency key', async () => {
    const keys: string[] = [];
    const log: Log = [];
    let hang = true;
    let entered!: () => void;
    const inS = new Promise<void>((resolve) => (entered = resolve));
    const wf = defineWorkflow<TestState>({
      name: 'in-flight',
      steps: [
        recordingStep('A', log),
        recordingStep('S', log, {
          run: (state, ctx) => {
            keys.push(ctx.idempotencyKey);
            entered();
            return hang ? new Promise(() => undefined) : ok(state);
          },
        }),
      ],
    });
    const store = new MemoryStore();
    const first = testRuntime({ workflows: [wf], store });
    await first.runtime.start(wf, { trail: [] }, { id: 'crashy' });
    await inS;
    // The process "dies" here: S.run never returns. A new runtime on the same store takes over.
    hang = false;
    const second = testRuntime({ workflows: [wf], store });
    await second.runtime.start();
    const result = await second.runtime.handle('crashy').result();
    expect(result.status).toBe('completed');
    expect(log).toEqual(['A.run', 'S.run', 'S.run']);
    expect(keys).toEqual(['crashy:S:up:1', 'crashy:S:up:1']);
  });

  it('keeps a waiting instance’s absolute deadline across a restart', async () => {
    const log: Log = [];
    const clock = new SimulatedClock();
    const store = new MemoryStore();
    const first = testRuntime({ workflows: [awb(log, '10m')], store, clock });
    await first.runtime.start('resumable', { trail: [] }, { id: 'late' });
    await first.runtime.idle();
    await clock.advance('6m');
    await first.runtime.close();

    const second = testRuntime({ workflows: [awb(log, '10m')], store, clock });
    await second.runtime.start();
    await clock.advance('3m');
    expect((await second.runtime.get('late')).status).toBe('waiting');
    await clock.advance('1m');
    const result = await second.runtime.handle('late').result();
    expect(result.error?.code).toBe('TIMEOUT');
    expect(log).toEqual(['A.run', 'W.run', 'W.rollback', 'A.rollback']);
  });

  it('refuses a record written by a newer schema version with CORRUPT_RECORD, affecting nothing else', async () => {
    const log: Log = [];
    const store = new MemoryStore();
    const first = testRuntime({ workflows: [awb(log)], store });
    await first.runtime.start('resumable', { trail: [] }, { id: 'future' });
    await first.runtime.start('resumable', { trail: [] }, { id: 'present' });
    await first.runtime.idle();
    await first.runtime.close();
    const future = JSON.parse(store.exportJson('future')!) as Record<string, unknown>;
    expect(() => store.importJson(JSON.stringify({ ...future, schemaVersion: 99 }))).toThrow(expect.objectContaining({ code: 'CORRUPT_RECORD' }));
    expect(() => store.importJson('{"id":"broken", "schemaVersion": 1')).toThrow();
    const second = testRuntime({ workflows: [awb(log)], store });
    await second.runtime.start();
    await second.runtime.publish({ topic: 'go', payload: { k: 1 } });
    expect((await second.runtime.handle('present').result()).status).toBe('completed');
  });
});
