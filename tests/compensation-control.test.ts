import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import {
  BaseStep,
  MemoryStore,
  SagaRuntime,
  Step,
  abort,
  defineWorkflow,
  error,
  forEach,
  ok,
  parallel,
  recover,
  retryForward,
  silentLogger,
  type FinishOutcome,
  type InstanceStore,
  type RollbackReturn,
  type RuntimeProblem,
  type StepContext,
  type StepOptions,
  type StepReturn,
  type WorkflowDefinition,
} from '../src';
import { TypeormStore } from '../src/store/typeorm';
import { SimulatedClock } from '../src/testing';

interface Trip {
  id: string;
  price?: number;
  [key: string]: unknown;
}

/** Every call, in order, with its run key: `B.run id:B#2`. */
const log: string[] = [];

interface Script {
  run?: (s: Trip, ctx: StepContext, call: number) => StepReturn<Trip>;
  rollback?: (s: Trip, ctx: StepContext, call: number) => RollbackReturn<Trip>;
}

/** A step that logs each call (and its run key) and does what `script` says, ok by default. */
function step(name: string, script: Script = {}, options: Omit<StepOptions, 'name'> = {}) {
  let runs = 0;
  let rollbacks = 0;
  @Step({ ...options, name })
  class Scripted extends BaseStep<Trip> {
    override run(state: Trip, ctx: StepContext): StepReturn<Trip> {
      runs += 1;
      log.push(`${name}.run ${ctx.runKey.slice(ctx.instanceId.length + 1)}`);
      return script.run?.(state, ctx, runs) ?? ok(state);
    }
    override rollback(state: Trip, ctx: StepContext): RollbackReturn<Trip> {
      rollbacks += 1;
      log.push(`${name}.rollback ${ctx.runKey.slice(ctx.instanceId.length + 1)}`);
      return script.rollback?.(state, ctx, rollbacks) ?? ok(state);
    }
  }
  return Scripted;
}

const declined = (s: Trip) => error({ code: 'DECLINED', message: 'card declined' }, s);

const stores: [string, () => { store: InstanceStore; done: () => Promise<void> }][] = [
  ['memory', () => ({ store: new MemoryStore(), done: () => Promise.resolve() })],
  [
    'SQLite',
    () => {
      const dir = mkdtempSync(path.join(tmpdir(), 'sagaflow-control-'));
      const store = TypeormStore.sqlite({ file: path.join(dir, 'control.db') });
      return { store, done: async () => (await store.close(), rmSync(dir, { recursive: true, force: true })) };
    },
  ],
];

describe.each(stores)('controlling compensation (%s)', (_name, make) => {
  let store: InstanceStore;
  let done: () => Promise<void>;
  let clock: SimulatedClock;
  let runtime: SagaRuntime;
  let problems: RuntimeProblem[];

  function runtimeFor(...workflows: WorkflowDefinition[]): SagaRuntime {
    runtime = new SagaRuntime({ store, clock, logger: silentLogger, workflows });
    problems = [];
    runtime.errors$.subscribe((p) => problems.push(p));
    return runtime;
  }

  async function run(wf: WorkflowDefinition, id = 't-1') {
    runtimeFor(wf);
    return (await runtime.start(wf, { id }, { id })).result();
  }

  beforeEach(() => {
    ({ store, done } = make());
    clock = new SimulatedClock();
    log.length = 0;
  });
  afterEach(async () => {
    await runtime.close();
    await done();
  });

  it('runs the saga forward again from the step whose compensation returns retryForward, with new run keys', async () => {
    const wf = defineWorkflow<Trip>({
      name: 'retry-forward',
      steps: [
        step('A'),
        step('B', { rollback: (s) => retryForward(s, { maxRetries: 2 }) }, { rollbackControls: ['retryForward'] }),
        step('C', { run: (s, _ctx, call) => (call === 1 ? declined(s) : ok(s)) }),
      ],
    });
    const result = await run(wf);
    expect(result.status).toBe('completed');
    expect(log).toEqual(['A.run A', 'B.run B', 'C.run C', 'C.rollback C', 'B.rollback B', 'B.run B#2', 'C.run C#2']);
    const control = (await runtime.history('t-1')).filter((h) => h.kind === 'control');
    expect(control.map((h) => [h.outcome, h.step, h.note])).toEqual([['retryForward', 'B', 'run forward again from "B" (retry 1 of 2)']]);
  });

  it('counts the retries per instance and goes on compensating once they are spent', async () => {
    const wf = defineWorkflow<Trip>({
      name: 'retry-spent',
      steps: [step('A'), step('B', { rollback: (s) => retryForward(s, { maxRetries: 2 }) }, { rollbackControls: ['retryForward'] }), step('C', { run: declined })],
    });
    const result = await run(wf);
    expect(result.status).toBe('rolled_back');
    expect(result.error?.code).toBe('DECLINED');
    expect(log).toEqual([
      'A.run A',
      'B.run B',
      'C.run C',
      'C.rollback C',
      'B.rollback B',
      'B.run B#2',
      'C.run C#2',
      'C.rollback C#2',
      'B.rollback B#2',
      'B.run B#3',
      'C.run C#3',
      'C.rollback C#3',
      'B.rollback B#3',
      'A.rollback A',
    ]);
    expect((await store.load('t-1'))?.forwardRetries).toEqual({ B: 2 });
    const control = (await runtime.history('t-1')).filter((h) => h.kind === 'control').map((h) => h.outcome);
    expect(control).toEqual(['retryForward', 'retryForward', 'ignored']);
  });

  it('waits the backoff before running the step again', async () => {
    const wf = defineWorkflow<Trip>({
      name: 'retry-backoff',
      steps: [step('B', { rollback: (s) => retryForward(s, { maxRetries: 1, backoff: '30s' }) }, { rollbackControls: ['retryForward'] }), step('C', { run: (s, _c, n) => (n === 1 ? declined(s) : ok(s)) })],
    });
    runtimeFor(wf);
    const handle = await runtime.start(wf, { id: 't-1' }, { id: 't-1' });
    await runtime.idle();
    expect(log).toEqual(['B.run B', 'C.run C', 'C.rollback C', 'B.rollback B']);
    await clock.advance('29s');
    expect(log).toHaveLength(4);
    await clock.advance('1s');
    expect((await handle.result()).status).toBe('completed');
    expect(log.slice(4)).toEqual(['B.run B#2', 'C.run C#2']);
  });

  it('goes on forward from the next step when the failed step recovers with a substitute (a circuit breaker), and compensates it if a later step fails', async () => {
    const wf = defineWorkflow<Trip>({
      name: 'breaker',
      steps: [
        step('A'),
        step(
          'Price',
          { run: (s) => error({ code: 'PRICING_DOWN', message: 'the pricing service is down' }, s), rollback: (s) => (s.price === undefined ? recover({ ...s, price: 42 }) : ok(s)) },
          { rollbackControls: ['recover'] },
        ),
        step('Book', { run: (s) => (s.id === 't-1' ? ok({ ...s, booked: true }) : declined(s)) }),
      ],
    });
    const result = await run(wf);
    expect(result.status).toBe('completed');
    expect(result.state).toMatchObject({ price: 42, booked: true });
    expect(log).toEqual(['A.run A', 'Price.run Price', 'Price.rollback Price', 'Book.run Book']);
    log.length = 0;
    await runtime.close();
    const again = await run(wf, 't-2');
    expect(again.status).toBe('rolled_back');
    expect(log).toEqual(['A.run A', 'Price.run Price', 'Price.rollback Price', 'Book.run Book', 'Book.rollback Book', 'Price.rollback Price', 'A.rollback A']);
  });

  it('fails the compensation when a step that did not fail recovers (RECOVER_NOT_ALLOWED), or uses a control it does not declare (UNDECLARED_CONTROL)', async () => {
    const notFailed = defineWorkflow<Trip>({ name: 'not-failed', steps: [step('A', { rollback: (s) => recover(s) }, { rollbackControls: ['recover'] }), step('B', { run: declined })] });
    expect((await run(notFailed)).status).toBe('compensation_failed');
    expect((await runtime.get('t-1')).compensationFailures.map((f) => f.error.code)).toEqual(['RECOVER_NOT_ALLOWED']);
    await runtime.close();
    const undeclared = defineWorkflow<Trip>({ name: 'undeclared', steps: [step('A', { rollback: (s) => retryForward(s, { maxRetries: 1 }) }), step('B', { run: declined })] });
    expect((await run(undeclared, 't-2')).status).toBe('compensation_failed');
    expect((await runtime.get('t-2')).compensationFailures.map((f) => f.error.code)).toEqual(['UNDECLARED_CONTROL']);
  });

  it('lets no retryForward restart the saga after a compensation aborts', async () => {
    const wf = defineWorkflow<Trip>({
      name: 'aborted',
      steps: [
        step('A'),
        step('B', { rollback: (s) => retryForward(s, { maxRetries: 5 }) }, { rollbackControls: ['retryForward'] }),
        step('C', { run: declined, rollback: (s) => abort({ code: 'FRAUD', message: 'never retry this trip' }, s) }),
      ],
    });
    const result = await run(wf);
    expect(result.status).toBe('rolled_back');
    expect(log).toEqual(['A.run A', 'B.run B', 'C.run C', 'C.rollback C', 'B.rollback B', 'A.rollback A']);
    const control = (await runtime.history('t-1')).filter((h) => h.kind === 'control');
    expect(control.map((h) => h.outcome)).toEqual(['abort', 'ignored']);
    expect(control[0]?.note).toContain('never retry this trip');
  });

  it('never sends a saga forward that was rolled back from outside', async () => {
    const wf = defineWorkflow<Trip>({
      name: 'cancelled',
      steps: [step('B', { rollback: (s) => retryForward(s, { maxRetries: 5 }) }, { rollbackControls: ['retryForward'] }), step('W', { run: (s) => ({ kind: 'continue', state: s, wait: { topic: 'never' } }) })],
    });
    runtimeFor(wf);
    const handle = await runtime.start(wf, { id: 't-1' }, { id: 't-1' });
    await runtime.idle();
    await runtime.rollback('t-1', 'customer cancelled');
    expect((await handle.result()).status).toBe('rolled_back');
    expect(log).toEqual(['B.run B', 'W.run W', 'W.rollback W', 'B.rollback B']);
  });

  it('keeps a retryForward across a crash: the step it runs again is run by the next process with the same keys', async () => {
    let hang = true;
    const wf = defineWorkflow<Trip>({
      name: 'crash',
      steps: [
        step('B', { run: (s, _c, n) => (n === 2 && hang ? new Promise(() => undefined) : ok(s)), rollback: (s) => retryForward(s, { maxRetries: 1 }) }, { rollbackControls: ['retryForward'] }),
        step('C', { run: (s, _c, n) => (n === 1 ? declined(s) : ok(s)) }),
      ],
    });
    runtimeFor(wf);
    await runtime.start(wf, { id: 't-1' }, { id: 't-1' });
    for (let i = 0; i < 50 && log.length < 5; i += 1) await new Promise((r) => setImmediate(r));
    expect(log).toEqual(['B.run B', 'C.run C', 'C.rollback C', 'B.rollback B', 'B.run B#2']);
    await runtime.close(); // the process dies while B runs again
    hang = false;
    runtimeFor(wf);
    await runtime.start();
    expect((await runtime.handle('t-1').result()).status).toBe('completed');
    expect(log.slice(5)).toEqual(['B.run B#2', 'C.run C#2']);
  });

  it('recovers a failed branch step inside its own branch, while the group runs', async () => {
    const wf = defineWorkflow<Trip>({
      name: 'branch-recover',
      steps: [
        parallel('quotes', [
          step('Air', { run: (s) => error({ code: 'DOWN', message: 'down' }, s), rollback: (s) => recover({ ...s, air: 'cached' }) }, { rollbackControls: ['recover'] }),
          step('Hotel', { run: (s) => ok({ ...s, hotel: 'ok' }) }),
        ]),
        step('Pay'),
      ],
    });
    const result = await run(wf);
    expect(result.status).toBe('completed');
    expect(log.sort()).toEqual(['Air.rollback Air', 'Air.run Air', 'Hotel.run Hotel', 'Pay.run Pay']);
    expect((await runtime.history('t-1')).filter((h) => h.kind === 'control').map((h) => [h.outcome, h.branch])).toEqual([['recover', 'Air']]);
  });

  it('runs a branch step again when its compensation retries forward, and lets the branch fail once the group settles', async () => {
    const wf = defineWorkflow<Trip>({
      name: 'branch-retry',
      steps: [
        parallel('quotes', [
          step('Air', { run: (s, _c, n) => (n === 1 ? error({ code: 'FLAKY', message: 'flaky' }, s) : ok(s)), rollback: (s) => retryForward(s, { maxRetries: 1 }) }, { rollbackControls: ['retryForward'] }),
          step('Hotel'),
        ]),
      ],
    });
    expect((await run(wf)).status).toBe('completed');
    expect(log.filter((l) => l.startsWith('Air'))).toEqual(['Air.run Air', 'Air.rollback Air', 'Air.run Air#2']);
  });

  it('recovers a failed forEach item within the item', async () => {
    const wf = defineWorkflow<Trip & { legs: Trip[] }>({
      name: 'items-recover',
      steps: [
        forEach(
          'legs',
          (s: { legs: Trip[] }) => s.legs,
          step('Leg', { run: (s, ctx) => (ctx.branch === 'legs[1]' ? declined(s) : ok(s)), rollback: (s) => recover(s) }, { rollbackControls: ['recover'] }),
        ),
      ],
    });
    runtimeFor(wf);
    const result = await (await runtime.start(wf, { id: 't-1', legs: [{ id: 'l1' }, { id: 'l2' }, { id: 'l3' }] }, { id: 't-1' })).result();
    expect(result.status).toBe('completed');
    expect(log.filter((l) => l.includes('rollback'))).toEqual(['Leg.rollback Leg[1]']);
  });
});

describe('final hooks', () => {
  it('calls handleFinish once whatever the end, with the outcome, after the hook of that end', async () => {
    const seen: string[] = [];
    const observer = {
      handleWorkflowSuccess: () => void seen.push('success'),
      handleWorkflowFailure: () => void seen.push('failure'),
      handleCompensationFailed: () => void seen.push('compensationFailed'),
      handleFinish: (_s: unknown, flow: { instanceId: string }, outcome: FinishOutcome) => void seen.push(`finish ${flow.instanceId} ${outcome.status} ${outcome.error?.code ?? '-'}`),
    };
    const ends = defineWorkflow<Trip>({
      name: 'ends',
      observers: [observer],
      steps: [step('A', { rollback: (s) => (s.id === 'stuck' ? error({ code: 'REFUND_FAILED', message: 'no' }, s) : ok(s)) }), step('B', { run: (s) => (s.id === 'ok' ? ok(s) : declined(s)) })],
    });
    const runtime = new SagaRuntime({ store: new MemoryStore(), logger: silentLogger, workflows: [ends] });
    for (const id of ['ok', 'back', 'stuck']) await (await runtime.start(ends, { id }, { id })).result();
    expect(seen).toEqual(['success', 'finish ok completed -', 'failure', 'finish back rolled_back DECLINED', 'compensationFailed', 'finish stuck compensation_failed DECLINED']);
    await runtime.close();
  });

  it('isolates a handleFinish that throws, and calls it again after a crash before the end was stored', async () => {
    const inner = new MemoryStore();
    let calls = 0;
    const wf = defineWorkflow<Trip>({
      name: 'finish-crash',
      observers: [
        {
          handleFinish: () => {
            calls += 1;
            throw new Error('audit log unreachable');
          },
        },
      ],
      steps: [step('A')],
    });
    let failSaves = true;
    const store = new Proxy(inner, {
      get(target, prop, receiver) {
        if (prop === 'save') return (...args: Parameters<MemoryStore['save']>) => (failSaves ? Promise.reject(new Error('disk full')) : target.save(...args));
        const value: unknown = Reflect.get(target, prop, receiver);
        return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
      },
    });
    const first = new SagaRuntime({ store, logger: silentLogger, clock: new SimulatedClock(), workflows: [wf] });
    await first.start(wf, { id: 'f' }, { id: 'f' });
    for (let i = 0; i < 20 && calls === 0; i += 1) await new Promise((r) => setImmediate(r));
    await first.close(); // the end was never stored
    expect(calls).toBe(1);
    failSaves = false;
    const second = new SagaRuntime({ store, logger: silentLogger, workflows: [wf] });
    const problems: RuntimeProblem[] = [];
    second.errors$.subscribe((p) => problems.push(p));
    await second.start();
    expect((await second.handle('f').result()).status).toBe('completed');
    expect(calls).toBe(2);
    expect(problems.map((p) => [p.kind, p.error.message])).toEqual([['observer-failed', 'audit log unreachable']]);
    await second.close();
  });

  it('lets onExit put the final error another way before it is stored and returned, and keeps it when onExit throws', async () => {
    const hidden = defineWorkflow<Trip>({
      name: 'hidden',
      onExit: ({ error: e }) => (e.code === 'DECLINED' ? { code: 'PAYMENT_FAILED', message: 'the payment could not be taken' } : undefined),
      steps: [step('B', { run: declined })],
    });
    const broken = defineWorkflow<Trip>({
      name: 'broken-exit',
      onExit: () => {
        throw new Error('bug in onExit');
      },
      steps: [step('B2', { run: declined })],
    });
    const runtime = new SagaRuntime({ store: new MemoryStore(), logger: silentLogger, workflows: [hidden, broken] });
    const problems: RuntimeProblem[] = [];
    runtime.errors$.subscribe((p) => problems.push(p));
    const result = await (await runtime.start(hidden, { id: 'h' }, { id: 'h' })).result();
    expect(result.error).toMatchObject({ code: 'PAYMENT_FAILED', message: 'the payment could not be taken' });
    expect((await runtime.store.load('h'))?.flow.errorReason?.code).toBe('PAYMENT_FAILED');
    const kept = await (await runtime.start(broken, { id: 'k' }, { id: 'k' })).result();
    expect(kept.error?.code).toBe('DECLINED');
    expect(problems.map((p) => p.error.message)).toEqual(['bug in onExit']);
    await runtime.close();
  });
});

describe('observers registered twice', () => {
  it('are refused when a workflow is defined, and when the runtime adds one the workflow has (DUPLICATE_OBSERVER)', () => {
    const audit = { handleInit: () => undefined };
    expect(() => defineWorkflow({ name: 'twice', steps: [step('A')], observers: [audit, audit] })).toThrow(expect.objectContaining({ code: 'DUPLICATE_OBSERVER' }));
    const wf = defineWorkflow({ name: 'once', steps: [step('A2')], observers: [audit] });
    const runtime = new SagaRuntime({ store: new MemoryStore(), logger: silentLogger, observers: [audit] });
    expect(() => runtime.register(wf)).toThrow(expect.objectContaining({ code: 'DUPLICATE_OBSERVER' }));
    expect(() => new SagaRuntime({ store: new MemoryStore(), observers: [audit, { observer: audit }] })).toThrow(expect.objectContaining({ code: 'DUPLICATE_OBSERVER' }));
  });

  it('refuse a control result from a run with MALFORMED_RESULT saying it belongs to a compensation', async () => {
    const wf = defineWorkflow<Trip>({ name: 'run-control', steps: [step('R', { run: (s) => recover(s) as never })] });
    const runtime = new SagaRuntime({ store: new MemoryStore(), logger: silentLogger, workflows: [wf] });
    const result = await (await runtime.start(wf, { id: 'r' })).result();
    expect(result.error?.code).toBe('MALFORMED_RESULT');
    expect(result.error?.message).toContain('recover is a result of a compensation');
    await runtime.close();
  });
});
