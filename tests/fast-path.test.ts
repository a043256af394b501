/**
 * The in-memory fast path: a handler call whose handler and hooks answer at once is made and applied without a
 * promise, and gives exactly what the same call answering through promises gives.
 */
import { BaseStep, MemoryStore, SagaRuntime, Step, continueWith, defineWorkflow, error, forEach, ok, silentLogger, type FlowView, type HistoryEntry, type Observer, type SagaEvent, type StepContext, type StepResult } from '../src';
import { invokeStep } from '../src/engine/step-invoker';
import { ObserverRunner } from '../src/engine/observer-runner';
import { StateCodec } from '../src/state/state-codec';
import { SimulatedClock } from '../src/testing';
import { seededRandom } from './support/seeded';

interface Counter {
  n: number;
  seen: string[];
}

@Step({ name: 'inc' })
class Inc extends BaseStep<Counter> {
  override run(state: Counter): StepResult<Counter> {
    state.n += 1;
    return ok(state);
  }
}

@Step({ name: 'inc-later' })
class IncLater extends BaseStep<Counter> {
  override async run(state: Counter): Promise<StepResult<Counter>> {
    await Promise.resolve();
    state.n += 1;
    return ok(state);
  }
}

const VIEW: FlowView = {
  instanceId: 'i-1',
  workflow: 'fast',
  direction: 'up',
  status: 'running',
  stepName: 'inc',
  stepIndex: 0,
  stepFunc: 'run',
  attempt: 1,
  retryDelay: null,
  errorReason: null,
  wait: null,
  lastResult: null,
};

function invocation(step: BaseStep<unknown>, observer: Observer) {
  const def = defineWorkflow<Counter>({ name: 'fast', steps: [Inc] });
  const problems: unknown[] = [];
  const observers = new ObserverRunner([{ observer, critical: false, label: 'o' }], (cls) => new cls(), (p) => problems.push(p));
  return {
    step,
    func: 'run' as const,
    storedState: { n: 1, seen: [] },
    event: null,
    view: VIEW,
    ctx: { instanceId: 'i-1' } as StepContext,
    codec: new StateCodec(def),
    observers,
    validateAfter: false,
    timeoutMs: 1_000,
    clock: new SimulatedClock(),
    abort: () => undefined,
    onLateSettle: () => undefined,
  };
}

const syncHooks: Observer = {
  handleBeforeStep: (state) => ok({ ...(state as Counter), seen: [...(state as Counter).seen, 'before'] }),
  handleAfterStep: (state) => ok({ ...(state as Counter), seen: [...(state as Counter).seen, 'after'] }),
};

const asyncHooks: Observer = {
  handleBeforeStep: (state) => Promise.resolve(ok({ ...(state as Counter), seen: [...(state as Counter).seen, 'before'] })),
  handleAfterStep: (state) => Promise.resolve(ok({ ...(state as Counter), seen: [...(state as Counter).seen, 'after'] })),
};

describe('a handler call on the fast path', () => {
  it('gives its outcome at once, not a promise, when the handler and the hooks answer at once (and sets no timeout timer)', () => {
    const inv = invocation(new Inc(), syncHooks);
    const outcome = invokeStep(inv);
    expect(outcome).not.toBeInstanceOf(Promise);
    expect(outcome).toEqual({ kind: 'ok', state: { n: 2, seen: ['before', 'after'] } });
    expect(inv.clock.pendingTimers).toBe(0);
  });

  it('gives the same outcome through a promise when the handler or a hook answers later', async () => {
    const later = invokeStep(invocation(new IncLater(), syncHooks));
    const hooksLater = invokeStep(invocation(new Inc(), asyncHooks));
    expect(later).toBeInstanceOf(Promise);
    expect(hooksLater).toBeInstanceOf(Promise);
    expect(await later).toEqual({ kind: 'ok', state: { n: 2, seen: ['before', 'after'] } });
    expect(await hooksLater).toEqual({ kind: 'ok', state: { n: 2, seen: ['before', 'after'] } });
  });

  it('turns a synchronous throw into an error outcome at once, serialised once with its code', () => {
    @Step({ name: 'boom' })
    class Boom extends BaseStep<Counter> {
      override run(): StepResult<Counter> {
        throw Object.assign(new Error('no stock'), { code: 'NO_STOCK', details: { sku: 'a-1' } });
      }
    }
    const outcome = invokeStep(invocation(new Boom(), {}));
    expect(outcome).toEqual({ kind: 'error', error: { code: 'NO_STOCK', name: 'Error', message: 'no stock', details: { sku: 'a-1' } }, state: { n: 1, seen: [] }, started: true });
  });
});

describe('a round of observer hooks', () => {
  const flow = VIEW;

  it('runs synchronously while the hooks answer at once, and goes on in order after one that returns a promise', async () => {
    const order: string[] = [];
    const runner = new ObserverRunner(
      [
        { observer: { handleBeforeStep: () => void order.push('first') }, critical: false, label: 'a' },
        { observer: { handleBeforeStep: async () => void order.push('second') }, critical: false, label: 'b' },
        { observer: { handleBeforeStep: (s: unknown) => (order.push('third'), ok({ ...(s as object), third: true })) }, critical: false, label: 'c' },
      ],
      (cls) => new cls(),
      () => undefined,
    );
    const syncOnly = new ObserverRunner([{ observer: { handleBeforeStep: () => undefined }, critical: false, label: 'a' }], (cls) => new cls(), () => undefined);
    expect(syncOnly.run('handleBeforeStep', { x: 1 }, flow, 'veto')).toEqual({ state: { x: 1 }, veto: null });
    const round = runner.run('handleBeforeStep', { x: 1 }, flow, 'veto');
    expect(round).toBeInstanceOf(Promise);
    expect(await round).toEqual({ state: { x: 1, third: true }, veto: null });
    expect(order).toEqual(['first', 'second', 'third']);
  });

  it('stops at a veto, whether it comes at once or later, and reports a hook that throws at once', async () => {
    const reported: string[] = [];
    const veto = (later: boolean) =>
      new ObserverRunner(
        [
          { observer: { handleBeforeStep: () => { throw new Error('telemetry down'); } }, critical: false, label: 'broken' },
          { observer: { handleBeforeStep: () => (later ? Promise.resolve(error('closed')) : error('closed')) }, critical: false, label: 'guard' },
          { observer: { handleBeforeStep: () => { reported.push('never'); } }, critical: false, label: 'after' },
        ],
        (cls) => new cls(),
        (p) => reported.push(`${p.observer}: ${p.error.message}`),
      );
    const now = veto(false).run('handleBeforeStep', {}, flow, 'veto');
    expect(now).not.toBeInstanceOf(Promise);
    expect((now as { veto: { code: string } | null }).veto?.code).toBe('OBSERVER_VETO');
    expect((await veto(true).run('handleBeforeStep', {}, flow, 'veto')).veto?.code).toBe('OBSERVER_VETO');
    expect(reported).toEqual(['broken: telemetry down', 'broken: telemetry down']);
  });
});


type Behaviour = 'ok' | 'error' | 'throw';

/** A workflow of `plan.length` steps doing what the plan says, each answering at once or through a promise. */
function plannedWorkflow(name: string, plan: readonly Behaviour[], later: boolean) {
  const answer = <T>(value: T): T | Promise<T> => (later ? Promise.resolve(value) : value);
  const steps = plan.map((behaviour, i) => {
    @Step({ name: `s${i}` })
    class Planned extends BaseStep<Counter> {
      override run(state: Counter, ctx: StepContext) {
        if (behaviour === 'throw') throw new Error(`s${i} threw`);
        if (behaviour === 'error') return answer(error({ code: `S${i}_FAILED`, message: `s${i} failed` }));
        return answer(ok({ ...state, n: state.n + 1, seen: [...state.seen, `${ctx.stepName}.up`] }));
      }
      override rollback(state: Counter, ctx: StepContext) {
        return answer(ok({ ...state, seen: [...state.seen, `${ctx.stepName}.down`] }));
      }
    }
    return Planned;
  });
  const observer: Observer = {
    handleBeforeStep: (state: unknown) => answer(ok({ ...(state as Counter), seen: [...(state as Counter).seen, 'b'] })),
    handleAfterStep: () => answer(undefined),
    handleWorkflowFailure: (state: unknown) => answer(ok({ ...(state as Counter), seen: [...(state as Counter).seen, 'failed'] })),
  };
  return defineWorkflow<Counter>({ name, steps, observers: [observer] });
}

function comparable(history: readonly HistoryEntry[]): unknown[] {
  return history.map(({ at: _at, ...rest }) => rest);
}

describe('synchronous and asynchronous handlers and hooks', () => {
  it('give the same result, state and history for hundreds of generated workflows (seeded)', async () => {
    const next = seededRandom(Number(process.env.SAGAFLOW_FUZZ_SEED ?? 2026));
    for (let round = 0; round < 120; round += 1) {
      const plan = Array.from({ length: 1 + Math.floor(next() * 6) }, (): Behaviour => {
        const r = next();
        return r < 0.75 ? 'ok' : r < 0.9 ? 'error' : 'throw';
      });
      const results = [];
      for (const later of [false, true]) {
        const wf = plannedWorkflow(`planned-${round}-${later}`, plan, later);
        const store = new MemoryStore();
        const runtime = new SagaRuntime({ store, workflows: [wf], logger: silentLogger });
        const result = await (await runtime.start(wf, { n: 0, seen: [] }, { id: `run-${round}` })).result();
        results.push({ result, history: comparable(await store.history(`run-${round}`)) });
        await runtime.close();
      }
      expect(results[0]).toEqual(results[1]);
    }
  });
});

describe('closing a runtime while an observer hook runs', () => {
  it('writes nothing after close: the transition the hook was part of is left to whoever resumes the instance', async () => {
    let release: () => void = () => undefined;
    let called = false;
    const wf = defineWorkflow<Counter>({
      name: 'slow-success-hook',
      steps: [Inc],
      observers: [
        {
          handleWorkflowSuccess: () =>
            new Promise<void>((resolve) => {
              called = true;
              release = resolve;
            }),
        },
      ],
    });
    const store = new MemoryStore();
    const runtime = new SagaRuntime({ store, workflows: [wf], logger: silentLogger });
    await runtime.start(wf, { n: 0, seen: [] }, { id: 'closing-1' });
    for (let i = 0; i < 50 && !called; i += 1) await new Promise((r) => setImmediate(r));
    expect(called).toBe(true);
    await runtime.close();
    release();
    for (let i = 0; i < 10; i += 1) await new Promise((r) => setImmediate(r));
    expect((await store.load('closing-1'))?.flow.status).toBe('running');
  });
});

describe('what the MemoryStore keeps while a runHandleInfo call is in flight', () => {
  it('is the event as it arrived, even when the handler changes the payload it was given', async () => {
    let release: () => void = () => undefined;
    let called = false;
    @Step({ name: 'await-payment' })
    class AwaitPayment extends BaseStep<Counter> {
      override run(state: Counter): StepResult<Counter> {
        return continueWith(state, { topic: 'paid' });
      }
      override runHandleInfo(event: SagaEvent, state: Counter): Promise<StepResult<Counter>> {
        event.payload.amount = 0;
        called = true;
        return new Promise((resolve) => (release = () => resolve(ok(state))));
      }
    }
    const wf = defineWorkflow<Counter>({ name: 'payload-kept', steps: [AwaitPayment] });
    const store = new MemoryStore();
    const runtime = new SagaRuntime({ store, workflows: [wf], logger: silentLogger });
    try {
      const handle = await runtime.start(wf, { n: 0, seen: [] }, { id: 'payload-1' });
      await runtime.publish({ topic: 'paid', payload: { amount: 42 } });
      for (let i = 0; i < 50 && !called; i += 1) await new Promise((r) => setImmediate(r));
      expect(called).toBe(true);
      expect((await store.load('payload-1'))?.flow.handling?.payload).toEqual({ amount: 42 });
      release();
      expect((await handle.result()).status).toBe('completed');
    } finally {
      await runtime.close();
    }
  });
});

describe('a big forEach whose items answer at once', () => {
  it('gives the event loop turns while it runs, as it did when every result came through a promise', async () => {
    @Step({ name: 'add-one' })
    class AddOne extends BaseStep<number> {
      override run(n: number): StepResult<number> {
        return ok(n + 1);
      }
    }
    const wf = defineWorkflow({ name: 'many-sync-items', steps: [forEach('items', (s: { items: number[] }) => s.items, AddOne, { maxConcurrency: 8 })] });
    const runtime = new SagaRuntime({ store: new MemoryStore(), workflows: [wf], logger: silentLogger });
    let turns = 0;
    let running = true;
    const turn = (): void => {
      turns += 1;
      if (running) setImmediate(turn);
    };
    try {
      setImmediate(turn);
      const handle = await runtime.start(wf, { items: Array.from({ length: 500 }, (_, i) => i) });
      const result = await handle.result();
      running = false;
      expect(result.status).toBe('completed');
      expect(turns).toBeGreaterThan(0);
    } finally {
      running = false;
      await runtime.close();
    }
  });
});

describe("a step's context", () => {
  it('keeps its signal when it is spread into a new object, as a context made as an object literal did', async () => {
    let spread: Partial<StepContext> = {};
    @Step({ name: 'spreads-context' })
    class SpreadsContext extends BaseStep<Counter> {
      override run(state: Counter, ctx: StepContext): StepResult<Counter> {
        spread = { ...ctx, stepName: 'inner' };
        return ok(state);
      }
    }
    const wf = defineWorkflow<Counter>({ name: 'context-spread', steps: [SpreadsContext] });
    const runtime = new SagaRuntime({ store: new MemoryStore(), workflows: [wf], logger: silentLogger });
    try {
      await (await runtime.start(wf, { n: 0, seen: [] })).result();
      expect(spread.signal).toBeInstanceOf(AbortSignal);
      expect(spread.signal?.aborted).toBe(false);
      expect(spread.instanceId).toEqual(expect.any(String));
    } finally {
      await runtime.close();
    }
  });
});
