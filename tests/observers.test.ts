import { defineWorkflow, error as fail, ok, type FlowView, type Observer } from '../src';
import { RecordingObserver } from '../src/testing';
import { recordingStep, fails, waitsFor, type Log, type TestState } from './support/steps';
import { testRuntime } from './support/runtime';

/** Writes hook calls and step calls into one log so their interleaving can be asserted. */
function recorders(log: Log, ...labels: string[]): RecordingObserver[] {
  return labels.map((l) => new RecordingObserver(l, log));
}

describe('observers', () => {
  it('call init, then before and after around every step in registration order, then success', async () => {
    const log: Log = [];
    const [o1, o2] = recorders(log, 'O1', 'O2');
    const wf = defineWorkflow<TestState>({ name: 'obs-ab', steps: [recordingStep('A', log), recordingStep('B', log)], observers: [o1!, o2!] });
    const { runtime } = testRuntime({ workflows: [wf] });
    await (await runtime.start(wf, { trail: [] })).result();
    expect(log).toEqual([
      'O1.init',
      'O2.init',
      'O1.before A',
      'O2.before A',
      'A.run',
      'O1.after A',
      'O2.after A',
      'O1.before B',
      'O2.before B',
      'B.run',
      'O1.after B',
      'O2.after B',
      'O1.success',
      'O2.success',
    ]);
  });

  it('see the failing step, the start of the rollback, the compensation and the failure', async () => {
    const log: Log = [];
    const [o] = recorders(log, 'O');
    const wf = defineWorkflow<TestState>({ name: 'obs-e', steps: [recordingStep('E', log, { run: fails() })], observers: [o!] });
    const { runtime } = testRuntime({ workflows: [wf] });
    await (await runtime.start(wf, { trail: [] })).result();
    expect(log).toEqual(['O.init', 'O.before E', 'E.run', 'O.after E', 'O.startRollback', 'O.before E', 'E.rollback', 'O.after E', 'O.failure']);
    const directions = o!.calls.map((c) => `${c.flow.direction}:${c.flow.stepFunc}`);
    expect(directions).toEqual(['up:run', 'up:run', 'up:run', 'down:rollback', 'down:rollback', 'down:rollback', 'down:rollback']);
  });

  it('do not call after between run and runHandleInfo, only once the continued step resolves', async () => {
    const log: Log = [];
    const [o] = recorders(log, 'O');
    const wf = defineWorkflow<TestState>({ name: 'obs-w', steps: [recordingStep('W', log, { run: waitsFor('go') })], observers: [o!] });
    const { runtime } = testRuntime({ workflows: [wf] });
    const handle = await runtime.start(wf, { trail: [] });
    await runtime.idle();
    expect(log).toEqual(['O.init', 'O.before W', 'W.run']);
    await runtime.publish({ topic: 'go' });
    await handle.result();
    expect(log).toEqual(['O.init', 'O.before W', 'W.run', 'W.runHandleInfo', 'O.after W', 'O.success']);
  });

  it('receive a read-only flow view with the instance, step, index, handler and attempt', async () => {
    const log: Log = [];
    const [o] = recorders(log, 'O');
    const wf = defineWorkflow<TestState>({ name: 'obs-view', steps: [recordingStep('A', log), recordingStep('B', log)], observers: [o!] });
    const { runtime } = testRuntime({ workflows: [wf] });
    await (await runtime.start(wf, { trail: [] }, { id: 'i-1' })).result();
    const before = o!.calls.find((c) => c.hook === 'handleBeforeStep' && c.flow.stepName === 'B')!.flow;
    expect(before).toMatchObject({ instanceId: 'i-1', workflow: 'obs-view', direction: 'up', stepName: 'B', stepIndex: 1, stepFunc: 'run', attempt: 1 });
    expect(Object.isFrozen(before)).toBe(true);
    const after = o!.calls.find((c) => c.hook === 'handleAfterStep' && c.flow.stepName === 'B')!.flow;
    expect(after.lastResult).toMatchObject({ kind: 'ok', step: 'B', func: 'run' });
  });

  it('may change the state by returning ok(state)', async () => {
    const log: Log = [];
    const stamping: Observer<TestState> = {
      handleBeforeStep: (state, flow) => ok({ ...state, trail: [...state.trail, `stamp ${flow.stepName ?? ''}`] }),
    };
    const wf = defineWorkflow<TestState>({ name: 'obs-change', steps: [recordingStep('A', log)], observers: [stamping] });
    const { runtime } = testRuntime({ workflows: [wf] });
    const result = await (await runtime.start(wf, { trail: [] })).result();
    expect(result.state.trail).toEqual(['stamp A', 'A.run']);
  });

  it('never stop the flow when a hook throws; the throw is reported', async () => {
    const log: Log = [];
    const broken: Observer = {
      handleBeforeStep: () => {
        throw new Error('telemetry exporter down');
      },
      handleAfterStep: () => Promise.reject(new Error('async failure')),
    };
    const wf = defineWorkflow<TestState>({ name: 'obs-throw', steps: [recordingStep('A', log), recordingStep('B', log)], observers: [broken] });
    const { runtime, problems } = testRuntime({ workflows: [wf] });
    const result = await (await runtime.start(wf, { trail: [] })).result();
    expect(result.status).toBe('completed');
    expect(log).toEqual(['A.run', 'B.run']);
    expect(problems.filter((p) => p.kind === 'observer-failed').map((p) => p.error.message)).toEqual([
      'telemetry exporter down',
      'async failure',
      'telemetry exporter down',
      'async failure',
    ]);
  });

  it('skip the step and roll back the ones before it when handleBeforeStep vetoes going up', async () => {
    const log: Log = [];
    const guard: Observer<TestState> = {
      handleBeforeStep: (state, flow) => (flow.stepName === 'B' && flow.direction === 'up' ? fail({ code: 'FORBIDDEN', message: 'B is not allowed' }) : undefined),
    };
    const wf = defineWorkflow<TestState>({ name: 'obs-veto-before', steps: [recordingStep('A', log), recordingStep('B', log), recordingStep('C', log)], observers: [guard] });
    const { runtime } = testRuntime({ workflows: [wf] });
    const result = await (await runtime.start(wf, { trail: [] })).result();
    expect(result.status).toBe('rolled_back');
    expect(result.error?.code).toBe('FORBIDDEN');
    expect(log).toEqual(['A.run', 'A.rollback']);
  });

  it('fail the step that just ran, and compensate it, when handleAfterStep vetoes going up', async () => {
    const log: Log = [];
    const audit: Observer<TestState> = {
      handleAfterStep: (_state, flow) => (flow.stepName === 'B' && flow.direction === 'up' ? fail('audit rejected B') : undefined),
    };
    const wf = defineWorkflow<TestState>({ name: 'obs-veto-after', steps: [recordingStep('A', log), recordingStep('B', log), recordingStep('C', log)], observers: [audit] });
    const { runtime } = testRuntime({ workflows: [wf] });
    const result = await (await runtime.start(wf, { trail: [] })).result();
    expect(result.status).toBe('rolled_back');
    expect(result.error).toMatchObject({ code: 'OBSERVER_VETO', message: 'audit rejected B' });
    expect(log).toEqual(['A.run', 'B.run', 'B.rollback', 'A.rollback']);
  });

  it('report but never stop or skip a compensation when a hook vetoes or throws going down', async () => {
    const log: Log = [];
    const obstructive: Observer<TestState> = {
      handleBeforeStep: (_s, flow: FlowView) => (flow.direction === 'down' ? fail('no compensations please') : undefined),
      handleAfterStep: (_s, flow: FlowView) => {
        if (flow.direction === 'down') throw new Error('after hook broken');
      },
    };
    const wf = defineWorkflow<TestState>({ name: 'obs-down', steps: [recordingStep('A', log), recordingStep('E', log, { run: fails() })], observers: [obstructive] });
    const { runtime, problems } = testRuntime({ workflows: [wf] });
    const result = await (await runtime.start(wf, { trail: [] })).result();
    expect(result.status).toBe('rolled_back');
    expect(log).toEqual(['A.run', 'E.run', 'E.rollback', 'A.rollback']);
    expect(problems.filter((p) => p.kind === 'observer-failed')).toHaveLength(4);
  });

  it('turn throws into vetoes for an observer registered as critical', async () => {
    const log: Log = [];
    const guard: Observer = {
      handleBeforeStep: (_s, flow) => {
        if (flow.stepName === 'B') throw new Error('policy service unreachable');
      },
    };
    const wf = defineWorkflow<TestState>({
      name: 'obs-critical',
      steps: [recordingStep('A', log), recordingStep('B', log)],
      observers: [{ observer: guard, critical: true }],
    });
    const { runtime } = testRuntime({ workflows: [wf] });
    const result = await (await runtime.start(wf, { trail: [] })).result();
    expect(result.status).toBe('rolled_back');
    expect(result.error?.message).toBe('policy service unreachable');
    expect(log).toEqual(['A.run', 'A.rollback']);
  });

  it('end the instance before any step when handleInit vetoes', async () => {
    const log: Log = [];
    const [o] = recorders(log, 'O');
    const gate: Observer = { handleInit: () => fail({ code: 'MAINTENANCE', message: 'orders are paused' }) };
    const wf = defineWorkflow<TestState>({ name: 'obs-init', steps: [recordingStep('A', log)], observers: [gate, o!] });
    const { runtime } = testRuntime({ workflows: [wf] });
    const result = await (await runtime.start(wf, { trail: [] })).result();
    expect(result.status).toBe('rolled_back');
    expect(result.error?.code).toBe('MAINTENANCE');
    expect(log).toEqual(['O.startRollback', 'O.failure']);
  });

  it('report a hook result of the wrong shape and go on', async () => {
    const log: Log = [];
    const sloppy = { handleAfterStep: () => 'fine' } as unknown as Observer;
    const wf = defineWorkflow<TestState>({ name: 'obs-malformed', steps: [recordingStep('A', log)], observers: [sloppy] });
    const { runtime, problems } = testRuntime({ workflows: [wf] });
    const result = await (await runtime.start(wf, { trail: [] })).result();
    expect(result.status).toBe('completed');
    expect(problems.map((p) => p.error.code)).toEqual(['MALFORMED_RESULT']);
  });

  it('run runtime-wide observers after the workflow’s own', async () => {
    const log: Log = [];
    const [own, global] = recorders(log, 'own', 'global');
    const wf = defineWorkflow<TestState>({ name: 'obs-global', steps: [recordingStep('A', log)], observers: [own!] });
    const { runtime } = testRuntime({ workflows: [wf], observers: [global!] });
    await (await runtime.start(wf, { trail: [] })).result();
    expect(log.slice(0, 4)).toEqual(['own.init', 'global.init', 'own.before A', 'global.before A']);
  });

  it('are made through the resolver when registered as classes', async () => {
    const log: Log = [];
    class CountingObserver implements Observer {
      static made = 0;
      constructor() {
        CountingObserver.made += 1;
      }
      handleBeforeStep(_s: unknown, flow: FlowView): void {
        log.push(`count ${flow.stepName ?? ''}`);
      }
    }
    const wf = defineWorkflow<TestState>({ name: 'obs-class', steps: [recordingStep('A', log)], observers: [CountingObserver] });
    const made: unknown[] = [];
    const { runtime } = testRuntime({
      workflows: [wf],
      resolver: <T>(cls: new (...args: never[]) => T): T => {
        made.push(cls);
        return new (cls)();
      },
    });
    await (await runtime.start(wf, { trail: [] })).result();
    expect(made).toContain(CountingObserver);
    expect(log).toEqual(['count A', 'A.run']);
  });

  it('wrap every handler call with wrapStep, the first registered outermost, keeping the handler’s own result', async () => {
    const log: Log = [];
    const wrapper = (name: string): Observer => ({
      wrapStep: async <T>(flow: FlowView, call: () => Promise<T>): Promise<T> => {
        log.push(`${name}> ${flow.stepName ?? ''}.${flow.stepFunc}`);
        const result = await call();
        log.push(`<${name}`);
        return result;
      },
    });
    const wf = defineWorkflow<TestState>({ name: 'obs-wrap', steps: [recordingStep('A', log)], observers: [wrapper('W1'), wrapper('W2')] });
    const { runtime } = testRuntime({ workflows: [wf] });
    const result = await (await runtime.start(wf, { trail: [] })).result();
    expect(result.status).toBe('completed');
    expect(log).toEqual(['W1> A.run', 'W2> A.run', 'A.run', '<W2', '<W1']);
  });

  it('report a wrapStep that throws and make the call once all the same', async () => {
    const log: Log = [];
    const broken: Observer = {
      wrapStep: () => {
        throw new Error('tracer misconfigured');
      },
    };
    const late: Observer = {
      wrapStep: async <T>(_flow: FlowView, call: () => Promise<T>): Promise<T> => {
        await call();
        throw new Error('exporter failed after the call');
      },
    };
    const wf = defineWorkflow<TestState>({ name: 'obs-wrap-broken', steps: [recordingStep('A', log)], observers: [broken, late] });
    const { runtime, problems } = testRuntime({ workflows: [wf] });
    const result = await (await runtime.start(wf, { trail: [] })).result();
    expect(result.status).toBe('completed');
    expect(log).toEqual(['A.run']);
    expect(problems.map((p) => p.error.message).sort()).toEqual(['exporter failed after the call', 'tracer misconfigured']);
  });
});
