import { BaseStep, Step, defineWorkflow, ok, type StepContext, type StepResult } from '../src';
import { recordingStep, waitsFor, type Log, type TestState } from './support/steps';
import { testRuntime } from './support/runtime';

describe('timeouts', () => {
  it('fails a run that never settles with TIMEOUT at its deadline, fires its signal, and rolls back', async () => {
    const log: Log = [];
    let aborted: unknown;
    @Step({ name: 'hang', timeout: '30s' })
    class Hang extends BaseStep<TestState> {
      override run(_state: TestState, ctx: StepContext): Promise<StepResult<TestState>> {
        log.push('hang.run');
        ctx.signal.addEventListener("abort", () => {
          aborted = ctx.signal.reason as unknown;
        });
        return new Promise(() => undefined);
      }
      override rollback(state: TestState): StepResult<TestState> {
        log.push('hang.rollback');
        return ok(state);
      }
    }
    const wf = defineWorkflow<TestState>({ name: 'hanging', steps: [recordingStep('A', log), Hang] });
    const { runtime, clock } = testRuntime({ workflows: [wf] });
    const handle = await runtime.start(wf, { trail: [] });
    await clock.advance('29s');
    expect((await runtime.get(handle.id)).status).toBe('running');
    await clock.advance('1s');
    const result = await handle.result();
    expect(result.status).toBe('rolled_back');
    expect(result.error?.code).toBe('TIMEOUT');
    expect(aborted).toMatchObject({ code: 'TIMEOUT' });
    expect(log).toEqual(['A.run', 'hang.run', 'hang.rollback', 'A.rollback']);
  });

  it('ignores and reports a late settle of a call that timed out', async () => {
    let finish!: () => void;
    @Step({ name: 'slow', timeout: 100 })
    class Slow extends BaseStep<TestState> {
      override run(state: TestState): Promise<StepResult<TestState>> {
        return new Promise((resolve) => (finish = () => resolve(ok(state))));
      }
    }
    const wf = defineWorkflow<TestState>({ name: 'late', steps: [Slow] });
    const { runtime, clock, problems } = testRuntime({ workflows: [wf] });
    const handle = await runtime.start(wf, { trail: [] });
    await clock.advance(100);
    expect((await handle.result()).status).toBe('rolled_back');
    finish();
    await runtime.idle();
    await clock.advance(1);
    expect(problems.map((p) => p.error.code)).toContain('LATE_SETTLE');
    expect((await runtime.get(handle.id)).status).toBe('rolled_back');
  });

  it('gives a continued step the default wait timeout unless its continueWith names one', async () => {
    const log: Log = [];
    const wf = defineWorkflow<TestState>({
      name: 'default-wait',
      steps: [recordingStep('W', log, { run: waitsFor('never') }), recordingStep('V', log, { run: waitsFor('never', {}, '5s') })],
    });
    const { runtime, clock } = testRuntime({ workflows: [wf], defaults: { waitTimeout: '1m' } });
    const handle = await runtime.start(wf, { trail: [] });
    await runtime.idle();
    expect((await runtime.get(handle.id)).flow.wait?.deadline).toBe(clock.now() + 60_000);
    await clock.advance('1m');
    expect((await handle.result()).error?.code).toBe('TIMEOUT');
    expect(log).toEqual(['W.run', 'W.rollback']);
  });

  it('rolls the workflow back when its whole-workflow deadline passes', async () => {
    const log: Log = [];
    const wf = defineWorkflow<TestState>({
      name: 'deadline',
      deadline: '1h',
      steps: [recordingStep('A', log), recordingStep('W', log, { run: waitsFor('approval') }), recordingStep('B', log)],
    });
    const { runtime, clock } = testRuntime({ workflows: [wf] });
    const handle = await runtime.start(wf, { trail: [] });
    await clock.advance('59m');
    expect((await runtime.get(handle.id)).status).toBe('waiting');
    await clock.advance('1m');
    const result = await handle.result();
    expect(result.status).toBe('rolled_back');
    expect(result.error).toMatchObject({ code: 'TIMEOUT', details: { scope: 'workflow' } });
    expect(log).toEqual(['A.run', 'W.run', 'W.rollback', 'A.rollback']);
  });

  it('does nothing when the workflow deadline passes after it completed', async () => {
    const log: Log = [];
    const wf = defineWorkflow<TestState>({ name: 'deadline-done', deadline: '1m', steps: [recordingStep('A', log)] });
    const { runtime, clock } = testRuntime({ workflows: [wf] });
    const handle = await runtime.start(wf, { trail: [] });
    await handle.result();
    await clock.advance('2m');
    expect((await runtime.get(handle.id)).status).toBe('completed');
    expect(log).toEqual(['A.run']);
  });
});
