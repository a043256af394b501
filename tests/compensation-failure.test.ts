import { defineWorkflow, error as fail, ok, parallel } from '../src';
import { recordingStep, type Log, type TestState } from './support/steps';
import { testRuntime } from './support/runtime';

/** A rollback that fails while `broken.value` is true. */
function fragile(name: string, log: Log, broken: { value: boolean }) {
  return recordingStep(name, log, { rollback: (s) => (broken.value ? fail({ code: 'UNDO_FAILED', message: `${name} cannot be undone` }, s) : ok(s)) });
}

describe('a compensation that fails', () => {
  it('stops the instance in compensation_failed, keeping what remains, and calls handleCompensationFailed', async () => {
    const log: Log = [];
    const broken = { value: true };
    const seen: string[] = [];
    const wf = defineWorkflow<TestState>({
      name: 'halt',
      steps: [recordingStep('A', log), fragile('B', log, broken), recordingStep('E', log, { run: (s) => fail('boom', s) })],
      observers: [{ handleCompensationFailed: (_s, flow) => void seen.push(`${flow.stepName ?? ''} ${flow.status}`) }],
    });
    const { runtime } = testRuntime({ workflows: [wf] });
    const handle = await runtime.start(wf, { trail: [] });
    expect((await handle.result()).status).toBe('compensation_failed');
    expect(log).toEqual(['A.run', 'B.run', 'E.run', 'E.rollback', 'B.rollback']);
    expect(seen).toEqual(['B compensation_failed']);
  });

  it('finishes the rollback with retryCompensation once the fault is fixed', async () => {
    const log: Log = [];
    const broken = { value: true };
    const wf = defineWorkflow<TestState>({ name: 'retry-comp', steps: [recordingStep('A', log), fragile('B', log, broken), recordingStep('E', log, { run: (s) => fail('boom', s) })] });
    const { runtime } = testRuntime({ workflows: [wf] });
    const handle = await runtime.start(wf, { trail: [] });
    await handle.result();
    broken.value = false;
    await runtime.retryCompensation(handle.id, { by: 'ops@example.com', reason: 'gateway fixed' });
    const result = await runtime.handle(handle.id).result();
    expect(result.status).toBe('rolled_back');
    expect(log).toEqual(['A.run', 'B.run', 'E.run', 'E.rollback', 'B.rollback', 'B.rollback', 'A.rollback']);
    expect((await runtime.get(handle.id)).compensationFailures).toEqual([]);
    const ops = (await runtime.history(handle.id)).filter((h) => h.kind === 'operator');
    expect(ops).toEqual([expect.objectContaining({ outcome: 'retryCompensation', note: 'by ops@example.com: gateway fixed', step: 'B' })]);
  });

  it('moves on to the earlier steps with skipCompensation and records the skip', async () => {
    const log: Log = [];
    const wf = defineWorkflow<TestState>({ name: 'skip-comp', steps: [recordingStep('A', log), fragile('B', log, { value: true }), recordingStep('E', log, { run: (s) => fail('boom', s) })] });
    const { runtime } = testRuntime({ workflows: [wf] });
    const handle = await runtime.start(wf, { trail: [] });
    await handle.result();
    await runtime.skipCompensation(handle.id, 'refunded by hand in the payment console');
    const result = await runtime.handle(handle.id).result();
    expect(result.status).toBe('rolled_back');
    expect(log).toEqual(['A.run', 'B.run', 'E.run', 'E.rollback', 'B.rollback', 'A.rollback']);
    const ops = (await runtime.history(handle.id)).filter((h) => h.kind === 'operator');
    expect(ops).toEqual([expect.objectContaining({ outcome: 'skipCompensation', note: 'refunded by hand in the payment console' })]);
  });

  it("runs every earlier compensation with onCompensationError 'continue' and lists each failure", async () => {
    const log: Log = [];
    const broken = { value: true };
    const wf = defineWorkflow<TestState>({
      name: 'continue',
      onCompensationError: 'continue',
      steps: [recordingStep('A', log), fragile('B', log, broken), fragile('C', log, broken), recordingStep('E', log, { run: (s) => fail('boom', s) })],
    });
    const { runtime } = testRuntime({ workflows: [wf] });
    const handle = await runtime.start(wf, { trail: [] });
    expect((await handle.result()).status).toBe('compensation_failed');
    expect(log).toEqual(['A.run', 'B.run', 'C.run', 'E.run', 'E.rollback', 'C.rollback', 'B.rollback', 'A.rollback']);
    expect((await runtime.get(handle.id)).compensationFailures.map((f) => f.step)).toEqual(['C', 'B']);
    await expect(runtime.retryCompensation(handle.id)).rejects.toMatchObject({ code: 'INVALID_OPERATION' });
  });

  it('retries a failed branch compensation inside a parallel group', async () => {
    const log: Log = [];
    const broken = { value: true };
    const wf = defineWorkflow<TestState>({
      name: 'group-retry',
      steps: [recordingStep('S', log), parallel('G', [recordingStep('X', log), fragile('Y', log, broken)]), recordingStep('T', log, { run: (s) => fail('late failure', s) })],
    });
    const { runtime } = testRuntime({ workflows: [wf] });
    const handle = await runtime.start(wf, { trail: [] });
    expect((await handle.result()).status).toBe('compensation_failed');
    expect((await runtime.get(handle.id)).compensationFailures).toEqual([expect.objectContaining({ step: 'Y', branch: 'Y' })]);
    broken.value = false;
    await runtime.retryCompensation(handle.id);
    expect((await runtime.handle(handle.id).result()).status).toBe('rolled_back');
    expect(log.filter((l) => l.endsWith('rollback'))).toEqual(['T.rollback', 'Y.rollback', 'X.rollback', 'Y.rollback', 'S.rollback']);
  });

  it('refuses operator calls on unknown ids or instances in the wrong state, changing nothing', async () => {
    const log: Log = [];
    const wf = defineWorkflow<TestState>({ name: 'ops-errors', steps: [recordingStep('A', log)] });
    const { runtime } = testRuntime({ workflows: [wf] });
    const handle = await runtime.start(wf, { trail: [] });
    await handle.result();
    await expect(runtime.retryCompensation('nope')).rejects.toMatchObject({ code: 'UNKNOWN_INSTANCE' });
    await expect(runtime.skipCompensation('nope', 'x')).rejects.toMatchObject({ code: 'UNKNOWN_INSTANCE' });
    await expect(runtime.history('nope')).rejects.toMatchObject({ code: 'UNKNOWN_INSTANCE' });
    await expect(runtime.cancel('nope', 'x')).rejects.toMatchObject({ code: 'UNKNOWN_INSTANCE' });
    await expect(runtime.retryCompensation(handle.id)).rejects.toMatchObject({ code: 'INVALID_OPERATION' });
    await expect(runtime.skipCompensation(handle.id, 'x')).rejects.toMatchObject({ code: 'INVALID_OPERATION' });
    await expect(runtime.cancel(handle.id, 'x')).rejects.toMatchObject({ code: 'INSTANCE_FINISHED' });
    expect((await runtime.get(handle.id)).status).toBe('completed');
    expect(log).toEqual(['A.run']);
  });

  it('lists instances by status and workflow for operators', async () => {
    const log: Log = [];
    const ok1 = defineWorkflow<TestState>({ name: 'lister-ok', steps: [recordingStep('A', log)] });
    const bad = defineWorkflow<TestState>({ name: 'lister-bad', steps: [fragile('B', log, { value: true }), recordingStep('E', log, { run: (s) => fail('x', s) })] });
    const { runtime } = testRuntime({ workflows: [ok1, bad] });
    await (await runtime.start(ok1, { trail: [] }, { id: 'good' })).result();
    await (await runtime.start(bad, { trail: [] }, { id: 'stuck' })).result();
    expect((await runtime.list({ status: 'compensation_failed' })).map((s) => s.id)).toEqual(['stuck']);
    expect((await runtime.list({ workflow: 'lister-ok' })).map((s) => s.id)).toEqual(['good']);
  });
});
