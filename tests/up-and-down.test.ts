import { defineWorkflow } from '../src';
import { fails, recordingStep, throws, type Log, type TestState } from './support/steps';
import { testRuntime } from './support/runtime';

describe('a workflow going up and down', () => {
  it('runs every step in order and completes when all return ok', async () => {
    const log: Log = [];
    const wf = defineWorkflow<TestState>({ name: 'ab', steps: [recordingStep('A', log), recordingStep('B', log)] });
    const { runtime } = testRuntime({ workflows: [wf] });
    const handle = await runtime.start(wf, { trail: [] });
    const result = await handle.result();
    expect(result.status).toBe('completed');
    expect(log).toEqual(['A.run', 'B.run']);
    expect(result.state.trail).toEqual(['A.run', 'B.run']);
    expect(result.error).toBeNull();
  });

  it('compensates the failing step first, then the earlier ones in reverse', async () => {
    const log: Log = [];
    const wf = defineWorkflow<TestState>({
      name: 'ae',
      steps: [recordingStep('A', log), recordingStep('E', log, { run: fails('CARD_DECLINED', 'declined') })],
    });
    const { runtime } = testRuntime({ workflows: [wf] });
    const result = await (await runtime.start(wf, { trail: [] })).result();
    expect(result.status).toBe('rolled_back');
    expect(log).toEqual(['A.run', 'E.run', 'E.rollback', 'A.rollback']);
    expect(result.error).toMatchObject({ code: 'CARD_DECLINED', message: 'declined' });
  });

  it('never compensates a step that did not start', async () => {
    const log: Log = [];
    const wf = defineWorkflow<TestState>({
      name: 'aec',
      steps: [recordingStep('A', log), recordingStep('E', log, { run: fails() }), recordingStep('C', log)],
    });
    const { runtime } = testRuntime({ workflows: [wf] });
    await (await runtime.start(wf, { trail: [] })).result();
    expect(log).toEqual(['A.run', 'E.run', 'E.rollback', 'A.rollback']);
  });

  it('treats a thrown Error as an error result and keeps its code', async () => {
    const log: Log = [];
    const boom = Object.assign(new Error('disk full'), { code: 'ENOSPC' });
    const wf = defineWorkflow<TestState>({ name: 'thrower', steps: [recordingStep('A', log), recordingStep('T', log, { run: throws(boom) })] });
    const { runtime } = testRuntime({ workflows: [wf] });
    const result = await (await runtime.start(wf, { trail: [] })).result();
    expect(result.status).toBe('rolled_back');
    expect(result.error).toEqual({ code: 'ENOSPC', name: 'Error', message: 'disk full' });
    expect(log).toEqual(['A.run', 'T.run', 'T.rollback', 'A.rollback']);
  });

  it('treats a thrown non-Error value as an error that quotes it', async () => {
    const log: Log = [];
    const wf = defineWorkflow<TestState>({ name: 'thrower2', steps: [recordingStep('T', log, { run: throws({ weird: 42 }) })] });
    const { runtime } = testRuntime({ workflows: [wf] });
    const result = await (await runtime.start(wf, { trail: [] })).result();
    expect(result.status).toBe('rolled_back');
    expect(result.error?.code).toBe('NON_ERROR_THROWN');
    expect(result.error?.message).toContain('{"weird":42}');
  });

  it.each([
    ['undefined', undefined],
    ['a string', 'done'],
    ['an ok without state', { kind: 'ok' }],
    ['an unknown kind', { kind: 'maybe', state: {} }],
    ['a continue without a topic', { kind: 'continue', state: {}, wait: {} }],
  ])('fails with MALFORMED_RESULT quoting the value when a step returns %s', async (_label, value) => {
    const log: Log = [];
    const wf = defineWorkflow<TestState>({
      name: `malformed`,
      steps: [recordingStep('A', log), recordingStep('M', log, { run: () => value as never })],
    });
    const { runtime } = testRuntime({ workflows: [wf] });
    const result = await (await runtime.start(wf, { trail: [] })).result();
    expect(result.status).toBe('rolled_back');
    expect(result.error?.code).toBe('MALFORMED_RESULT');
    expect(result.error?.message).toContain(value === undefined ? 'undefined' : JSON.stringify(value));
    expect(log).toEqual(['A.run', 'M.run', 'M.rollback', 'A.rollback']);
  });

  it('passes each step the state the previous one returned', async () => {
    const log: Log = [];
    const wf = defineWorkflow<TestState>({ name: 'chain', steps: [recordingStep('A', log), recordingStep('B', log), recordingStep('C', log)] });
    const { runtime } = testRuntime({ workflows: [wf] });
    const result = await (await runtime.start(wf, { trail: ['start'] })).result();
    expect(result.state.trail).toEqual(['start', 'A.run', 'B.run', 'C.run']);
  });

  it('gives compensations the state as it was when the failure happened, changed by each rollback in turn', async () => {
    const log: Log = [];
    const wf = defineWorkflow<TestState>({
      name: 'rollback-state',
      steps: [recordingStep('A', log), recordingStep('B', log), recordingStep('E', log, { run: fails() })],
    });
    const { runtime } = testRuntime({ workflows: [wf] });
    const result = await (await runtime.start(wf, { trail: [] })).result();
    expect(result.state.trail).toEqual(['A.run', 'B.run', 'E.run', 'E.rollback', 'B.rollback', 'A.rollback']);
  });

  it('ends in compensation_failed, keeping the remaining compensations, when a rollback fails', async () => {
    const log: Log = [];
    const wf = defineWorkflow<TestState>({
      name: 'comp-fail',
      steps: [recordingStep('A', log), recordingStep('B', log, { rollback: fails('REFUND_FAILED') }), recordingStep('E', log, { run: fails() })],
    });
    const { runtime } = testRuntime({ workflows: [wf] });
    const handle = await runtime.start(wf, { trail: [] });
    const result = await handle.result();
    expect(result.status).toBe('compensation_failed');
    expect(log).toEqual(['A.run', 'B.run', 'E.run', 'E.rollback', 'B.rollback']);
    const snap = await runtime.get(handle.id);
    expect(snap.compensationFailures).toEqual([{ step: 'B', error: expect.objectContaining({ code: 'REFUND_FAILED' }) }]);
    const record = await runtime.store.load(handle.id);
    expect(record?.flow.stack.map((e) => e.name)).toEqual(['A', 'B']);
  });

  it('gives each call an idempotency key made of the instance, step, direction and attempt', async () => {
    const keys: string[] = [];
    const log: Log = [];
    const wf = defineWorkflow<TestState>({
      name: 'keys',
      steps: [
        recordingStep('A', log, {
          run: (s, ctx) => {
            keys.push(ctx.idempotencyKey);
            return { kind: 'ok', state: s };
          },
          rollback: (s, ctx) => {
            keys.push(ctx.idempotencyKey);
            return { kind: 'ok', state: s };
          },
        }),
        recordingStep('E', log, { run: fails() }),
      ],
    });
    const { runtime } = testRuntime({ workflows: [wf] });
    await (await runtime.start(wf, { trail: [] }, { id: 'order-7' })).result();
    expect(keys).toEqual(['order-7:A:up:1', 'order-7:A:down:1']);
  });
});
