import 'reflect-metadata';
import { IsString } from 'class-validator';
import {
  BaseStep,
  child,
  CHILD_ENDED_TOPIC,
  continueWith,
  defineWorkflow,
  error as fail,
  forEach,
  MemoryStore,
  ok,
  parallel,
  parallelResult,
  parallelResults,
  Step,
  type BranchOutcome,
  SagaRuntime,
  silentLogger,
  type RuntimeProblem,
  type StepResult,
} from '../src';
import { fails, recordingStep, waitsFor, type Log, type TestState } from './support/steps';
import { testRuntime } from './support/runtime';
import { TypeormStore } from '../src/store/typeorm';
import { createTestDatabase, dropTestDatabase } from './support/postgres';

/** A child workflow `name` whose steps `<prefix>1`, `<prefix>2` record into `log`; the first doubles `n`. */
function twoStepChild(name: string, prefix: string, log: Log) {
  return defineWorkflow<TestState>({
    name,
    steps: [
      recordingStep(`${prefix}1`, log, { run: (state) => ok({ ...state, doubled: Number(state.n) * 2 }) }),
      recordingStep(`${prefix}2`, log),
    ],
  });
}

/** The log entries of one prefix (a child's steps), in order. */
function only(log: Log, prefix: string): string[] {
  return log.filter((entry) => entry.startsWith(prefix));
}

/** Every instance the runtime's MemoryStore holds, as stored JSON. */
async function exportAll(runtime: SagaRuntime): Promise<Map<string, string>> {
  const store = runtime.store as MemoryStore;
  const out = new Map<string, string>();
  for (const { id } of await store.list({})) out.set(id, store.exportJson(id)!);
  return out;
}

describe('a child workflow step', () => {
  it('starts the child linked to its parent, parks until it completes, and keeps its output under the step name', async () => {
    const log: Log = [];
    const kid = twoStepChild('kid', 'K', log);
    let seenByP2: unknown;
    const parent = defineWorkflow<TestState>({
      name: 'parent',
      steps: [
        recordingStep('P1', log, { run: (state) => ok({ ...state, n: 21 }) }),
        child(kid, { input: (s: TestState) => ({ trail: [], n: s.n }) }),
        recordingStep('P2', log, {
          run: (state) => {
            seenByP2 = parallelResult(state, 'child:kid');
            return ok(state);
          },
        }),
      ],
    });
    // Only the parent is registered: registering it registers the child workflow too.
    const { runtime } = testRuntime({ workflows: [parent] });
    const result = await (await runtime.start(parent, { trail: [] }, { id: 'p-1' })).result();

    expect(result.status).toBe('completed');
    expect(log).toEqual(['P1.run', 'K1.run', 'K2.run', 'P2.run']);
    const childOutput = { trail: ['K1.run', 'K2.run'], n: 21, doubled: 42 };
    expect(seenByP2).toEqual({ ok: true, value: childOutput });
    expect(parallelResults(result.state)['child:kid']).toEqual({ ok: true, value: childOutput });
    const stored = await runtime.store.load('p-1:child:kid');
    expect(stored?.workflow).toBe('kid');
    expect(stored?.parent).toBe('p-1');
    expect((await runtime.get('p-1:child:kid')).status).toBe('completed');
  });

  it('registers the child workflow with its parent, so it can also be started on its own', async () => {
    const log: Log = [];
    const kid = twoStepChild('kid-registered', 'K', log);
    const parent = defineWorkflow<TestState>({ name: 'parent-registers', steps: [child(kid, { input: () => ({ trail: [], n: 1 }) })] });
    const { runtime } = testRuntime({ workflows: [parent] });
    const alone = await (await runtime.start<TestState>('kid-registered', { trail: [], n: 2 })).result();
    expect(alone.status).toBe('completed');
    expect(alone.state.doubled).toBe(4);
  });

  it('folds the child output into the parent state with a custom into', async () => {
    const log: Log = [];
    const kid = twoStepChild('kid-into', 'K', log);
    const parent = defineWorkflow<TestState>({
      name: 'parent-into',
      steps: [
        child(kid, {
          name: 'compute',
          input: (s: TestState) => ({ trail: [], n: s.n }),
          into: (s: TestState, out: TestState) => ok({ ...s, fromChild: out.doubled }),
        }),
        recordingStep('P2', log),
      ],
    });
    const { runtime } = testRuntime({ workflows: [parent] });
    const result = await (await runtime.start(parent, { trail: [], n: 5 }, { id: 'p-into' })).result();

    expect(result.status).toBe('completed');
    expect(result.state).toEqual({ trail: ['P2.run'], n: 5, fromChild: 10 });
    expect(log).toEqual(['K1.run', 'K2.run', 'P2.run']);
    expect((await runtime.store.load('p-into:compute'))?.parent).toBe('p-into');
  });

  it("types into's output as the child workflow's state, apart from the input handed to it", async () => {
    interface Quote {
      sku: string;
      priceCents?: number;
    }
    interface Basket {
      sku: string;
      totalCents?: number;
    }
    @Step({ name: 'quote-price' })
    class QuotePrice extends BaseStep<Quote> {
      override run(state: Quote): StepResult<Quote> {
        return ok({ ...state, priceCents: state.sku.length * 100 });
      }
    }
    const quote = defineWorkflow<Quote>({ name: 'quote', steps: [QuotePrice] });
    const parent = defineWorkflow<Basket>({
      name: 'basket',
      steps: [
        child(quote, {
          input: (b: Basket) => ({ sku: b.sku }),
          // `quoted` is a Quote (the child's state), so its priceCents type-checks; an optional number, it may be undefined
          into: (b: Basket, quoted) => ok({ ...b, totalCents: quoted.priceCents }),
        }),
      ],
    });
    const { runtime } = testRuntime({ workflows: [parent] });
    const result = await (await runtime.start(parent, { sku: 'mug' })).result();
    expect(result.state).toEqual({ sku: 'mug', totalCents: 300 });
  });

  it('compensates a completed child and the steps before when its into fails', async () => {
    const log: Log = [];
    const kid = twoStepChild('kid-into-fails', 'K', log);
    const parent = defineWorkflow<TestState>({
      name: 'parent-into-fails',
      steps: [recordingStep('P1', log), child(kid, { input: () => ({ trail: [], n: 1 }), into: () => fail({ code: 'REFUSED', message: 'not that output' }) })],
    });
    const { runtime } = testRuntime({ workflows: [parent] });
    const result = await (await runtime.start(parent, { trail: [] }, { id: 'p-if' })).result();

    expect(result.status).toBe('rolled_back');
    expect(result.error?.code).toBe('REFUSED');
    expect(log).toEqual(['P1.run', 'K1.run', 'K2.run', 'K2.rollback', 'K1.rollback', 'P1.rollback']);
    expect((await runtime.get('p-if:child:kid-into-fails')).status).toBe('rolled_back');
  });

  it('fails with CHILD_ROLLED_BACK when the child rolls back, and the parent rolls back without compensating the child twice', async () => {
    const log: Log = [];
    const kid = defineWorkflow<TestState>({
      name: 'kid-fails',
      steps: [recordingStep('K1', log), recordingStep('K2', log, { run: fails('OUT_OF_STOCK', 'no stock left') })],
    });
    const parent = defineWorkflow<TestState>({
      name: 'parent-of-failing',
      steps: [recordingStep('P1', log), child(kid, { input: () => ({ trail: [] }) }), recordingStep('P2', log)],
    });
    const { runtime } = testRuntime({ workflows: [parent] });
    const result = await (await runtime.start(parent, { trail: [] }, { id: 'p-2' })).result();

    expect(result.status).toBe('rolled_back');
    expect(result.error?.code).toBe('CHILD_ROLLED_BACK');
    expect(result.error?.details).toMatchObject({
      childId: 'p-2:child:kid-fails',
      cause: { code: 'OUT_OF_STOCK', message: 'no stock left' },
    });
    expect(log).toEqual(['P1.run', 'K1.run', 'K2.run', 'K2.rollback', 'K1.rollback', 'P1.rollback']);
    const kidSnapshot = await runtime.get('p-2:child:kid-fails');
    expect(kidSnapshot.status).toBe('rolled_back');
    expect(kidSnapshot.error?.code).toBe('OUT_OF_STOCK');
    expect((await runtime.history('p-2:child:kid-fails')).filter((h) => h.kind === 'undo-requested')).toEqual([]);
  });

  it('compensates a completed child as a unit, its steps in reverse, before the parent’s earlier steps when a later parent step fails', async () => {
    const log: Log = [];
    const kid = defineWorkflow<TestState>({
      name: 'kid-undone',
      steps: [recordingStep('K1', log), recordingStep('K2', log), recordingStep('K3', log)],
    });
    const parent = defineWorkflow<TestState>({
      name: 'parent-fails-late',
      steps: [
        recordingStep('P1', log),
        child(kid, { input: () => ({ trail: [] }) }),
        recordingStep('P2', log),
        recordingStep('P3', log, { run: fails('LATE', 'the last step failed') }),
      ],
    });
    const { runtime } = testRuntime({ workflows: [parent] });
    const result = await (await runtime.start(parent, { trail: [] }, { id: 'p-3' })).result();

    expect(result.status).toBe('rolled_back');
    expect(result.error?.code).toBe('LATE');
    expect(log).toEqual([
      'P1.run',
      'K1.run',
      'K2.run',
      'K3.run',
      'P2.run',
      'P3.run',
      'P3.rollback',
      'P2.rollback',
      'K3.rollback',
      'K2.rollback',
      'K1.rollback',
      'P1.rollback',
    ]);
    expect((await runtime.get('p-3:child:kid-undone')).status).toBe('rolled_back');
  });

  it('records in the child’s history that its parent undid it, with the code PARENT_ROLLED_BACK', async () => {
    const log: Log = [];
    const kid = twoStepChild('kid-history', 'K', log);
    const parent = defineWorkflow<TestState>({
      name: 'parent-history',
      steps: [child(kid, { input: () => ({ trail: [], n: 1 }) }), recordingStep('P2', log, { run: fails() })],
    });
    const { runtime } = testRuntime({ workflows: [parent] });
    expect((await (await runtime.start(parent, { trail: [] }, { id: 'p-h' })).result()).status).toBe('rolled_back');

    const history = await runtime.history('p-h:child:kid-history');
    const undo = history.filter((h) => h.kind === 'undo-requested');
    expect(undo).toHaveLength(1);
    expect(undo[0]?.code).toBe('PARENT_ROLLED_BACK');
    // The undo comes after the child had completed, and before its compensations.
    const kinds = history.map((h) => `${h.kind}:${h.status}`);
    expect(kinds.indexOf('finished:completed')).toBeGreaterThanOrEqual(0);
    expect(kinds.indexOf('finished:completed')).toBeLessThan(history.indexOf(undo[0]!));
    expect(history.at(-1)?.status).toBe('rolled_back');
  });

  it('keeps the parent waiting while its child waits for an event, then both finish when it arrives', async () => {
    const log: Log = [];
    const kid = defineWorkflow<TestState>({
      name: 'kid-waits',
      steps: [recordingStep('K1', log), recordingStep('KW', log, { run: waitsFor('kid.go', { k: 1 }) }), recordingStep('K2', log)],
    });
    const parent = defineWorkflow<TestState>({
      name: 'parent-waits',
      steps: [recordingStep('P1', log), child(kid, { input: () => ({ trail: [] }) }), recordingStep('P2', log)],
    });
    const { runtime } = testRuntime({ workflows: [parent] });
    const handle = await runtime.start(parent, { trail: [] }, { id: 'p-4' });
    await runtime.idle();

    expect((await runtime.get('p-4')).status).toBe('waiting');
    expect((await runtime.get('p-4:child:kid-waits')).status).toBe('waiting');
    expect(log).toEqual(['P1.run', 'K1.run', 'KW.run']);
    expect((await runtime.publish({ topic: 'kid.go', payload: { k: 2 } })).delivered).toBe(0);
    await runtime.idle();
    expect((await runtime.get('p-4')).status).toBe('waiting');

    expect((await runtime.publish({ topic: 'kid.go', payload: { k: 1 } })).delivered).toBe(1);
    const result = await handle.result();
    expect(result.status).toBe('completed');
    expect((await runtime.get('p-4:child:kid-waits')).status).toBe('completed');
    expect(log).toEqual(['P1.run', 'K1.run', 'KW.run', 'KW.runHandleInfo', 'K2.run', 'P2.run']);
  });

  it('in parallel branches with failFast, rolls back a waiting child and compensates a completed one when a sibling fails, then the steps before', async () => {
    const log: Log = [];
    const kidA = defineWorkflow<TestState>({ name: 'kid-a', steps: [recordingStep('A1', log), recordingStep('A2', log)] });
    const kidB = defineWorkflow<TestState>({
      name: 'kid-b',
      steps: [recordingStep('B1', log), recordingStep('BW', log, { run: waitsFor('b.go') })],
    });
    const parent = defineWorkflow<TestState>({
      name: 'parent-parallel',
      steps: [
        recordingStep('P1', log),
        parallel(
          'G',
          [
            child(kidA, { input: () => ({ trail: [] }) }),
            child(kidB, { input: () => ({ trail: [] }) }),
            recordingStep('C', log, { run: waitsFor('c.fail'), runHandleInfo: fails('C_FAILED', 'branch C failed') }),
          ],
          { onError: 'failFast' },
        ),
        recordingStep('P2', log),
      ],
    });
    const { runtime } = testRuntime({ workflows: [parent] });
    const handle = await runtime.start(parent, { trail: [] }, { id: 'p-5' });
    await runtime.idle();
    expect((await runtime.get('p-5:child:kid-a')).status).toBe('completed');
    expect((await runtime.get('p-5:child:kid-b')).status).toBe('waiting');
    expect((await runtime.get('p-5')).status).toBe('waiting');

    await runtime.publish({ topic: 'c.fail', payload: {} });
    const result = await handle.result();

    expect(result.status).toBe('rolled_back');
    expect(result.error?.code).toBe('C_FAILED');
    expect([...log].sort()).toEqual(
      ['P1.run', 'A1.run', 'A2.run', 'B1.run', 'BW.run', 'C.run', 'C.runHandleInfo', 'C.rollback', 'A2.rollback', 'A1.rollback', 'BW.rollback', 'B1.rollback', 'P1.rollback'].sort(),
    );
    expect(log[0]).toBe('P1.run');
    expect(log.at(-1)).toBe('P1.rollback');
    expect(only(log, 'A')).toEqual(['A1.run', 'A2.run', 'A2.rollback', 'A1.rollback']);
    expect(only(log, 'B')).toEqual(['B1.run', 'BW.run', 'BW.rollback', 'B1.rollback']);
    expect(log.indexOf('A1.rollback')).toBeGreaterThan(log.indexOf('C.runHandleInfo'));
    expect(log.indexOf('BW.rollback')).toBeGreaterThan(log.indexOf('C.runHandleInfo'));
    const a = await runtime.get('p-5:child:kid-a');
    const b = await runtime.get('p-5:child:kid-b');
    expect(a.status).toBe('rolled_back');
    expect(b.status).toBe('rolled_back');
    expect(b.error?.code).toBe('PARENT_ROLLED_BACK');
    // A waiting child that is rolled back never sees the event it waited for.
    expect((await runtime.publish({ topic: 'b.go', payload: {} })).delivered).toBe(0);
  });

  it('runs one child per forEach item and hands back their outputs in item order, whatever order they finish in', async () => {
    interface Item {
      sku: string;
      reserved?: string;
    }
    @Step({ name: 'Reserve' })
    class Reserve extends BaseStep<TestState> {
      override run(state: TestState): StepResult<TestState> {
        const sku = String(state.sku);
        return sku === 'a' ? continueWith(state, { topic: 'stock.ok', match: { sku } }) : ok({ ...state, reservation: `r-${sku}` });
      }
      override runHandleInfo(_event: unknown, state: TestState): StepResult<TestState> {
        return ok({ ...state, reservation: `r-${String(state.sku)}` });
      }
    }
    const reserve = defineWorkflow<TestState>({ name: 'reserve', steps: [Reserve] });
    const finished: string[] = [];
    const parent = defineWorkflow<TestState>({
      name: 'parent-foreach',
      steps: [
        forEach(
          'items',
          (s: TestState) => s.items as Item[],
          child<Item, TestState>(reserve, {
            input: (item) => ({ trail: [], sku: item.sku }),
            into: (item, out) => {
              finished.push(item.sku);
              return ok({ ...item, reserved: String(out.reservation) });
            },
          }),
        ),
      ],
    });
    const { runtime } = testRuntime({ workflows: [parent] });
    const handle = await runtime.start(parent, { trail: [], items: [{ sku: 'a' }, { sku: 'b' }, { sku: 'c' }] }, { id: 'p-6' });
    await runtime.idle();
    expect((await runtime.get('p-6')).status).toBe('waiting');
    expect((await runtime.get('p-6:child:reserve[0]')).status).toBe('waiting');
    expect((await runtime.get('p-6:child:reserve[1]')).status).toBe('completed');
    expect((await runtime.get('p-6:child:reserve[2]')).status).toBe('completed');

    await runtime.publish({ topic: 'stock.ok', payload: { sku: 'a' } });
    const result = await handle.result();

    expect(result.status).toBe('completed');
    expect(finished.at(-1)).toBe('a');
    const outcomes = parallelResult(result.state, 'items') as unknown as BranchOutcome<Item>[];
    expect(outcomes).toEqual([
      { ok: true, value: { sku: 'a', reserved: 'r-a' } },
      { ok: true, value: { sku: 'b', reserved: 'r-b' } },
      { ok: true, value: { sku: 'c', reserved: 'r-c' } },
    ]);
    for (const i of [0, 1, 2]) expect((await runtime.store.load(`p-6:child:reserve[${i}]`))?.parent).toBe('p-6');
  });

  it('drops without a report a copy of its child’s end that reaches the parent once the parent has ended', async () => {
    const log: Log = [];
    const kid = twoStepChild('kid-late-copy', 'K', log);
    const parent = defineWorkflow<TestState>({ name: 'parent-late-copy', steps: [child(kid, { input: (s: TestState) => ({ trail: [], n: s.n }) }), recordingStep('P2', log)] });
    const { runtime, problems } = testRuntime({ workflows: [parent] });
    const result = await (await runtime.start(parent, { trail: [], n: 1 }, { id: 'late-copy' })).result();
    expect(result.status).toBe('completed');
    // The second telling of the child's end (as the parent's wait found the child ended), arriving after the parent ended.
    await runtime.publish({ topic: CHILD_ENDED_TOPIC, instanceId: 'late-copy', payload: { childId: 'late-copy:child:kid-late-copy', status: 'completed' } });
    await runtime.idle();
    expect(problems).toEqual([]);
  });

  describe('durably', () => {
    function waitingFamily(log: Log) {
      const kid = defineWorkflow<TestState>({
        name: 'kid-durable',
        steps: [recordingStep('K1', log), recordingStep('KW', log, { run: waitsFor('kid.go', { k: 1 }) }), recordingStep('K2', log)],
      });
      return defineWorkflow<TestState>({
        name: 'parent-durable',
        steps: [
          recordingStep('P1', log),
          child(kid, { input: () => ({ trail: [] }), into: (s: TestState, out: TestState) => ok({ ...s, childTrail: out.trail }) }),
          recordingStep('P2', log),
        ],
      });
    }

    it('resumes a parked parent and its waiting child from exported records in a new runtime', async () => {
      const log: Log = [];
      const first = testRuntime({ workflows: [waitingFamily(log)] });
      await first.runtime.start('parent-durable', { trail: [] }, { id: 'p-7' });
      await first.runtime.idle();
      expect((await first.runtime.get('p-7')).status).toBe('waiting');
      const exported = await exportAll(first.runtime);
      expect([...exported.keys()].sort()).toEqual(['p-7', 'p-7:child:kid-durable']);
      await first.runtime.close();

      const store = new MemoryStore();
      for (const json of exported.values()) store.importJson(JSON.stringify(JSON.parse(json)));
      const second = testRuntime({ workflows: [waitingFamily(log)], store });
      await second.runtime.start();
      expect((await second.runtime.publish({ topic: 'kid.go', payload: { k: 1 } })).delivered).toBe(1);
      const result = await second.runtime.handle<TestState>('p-7').result();

      expect(result.status).toBe('completed');
      expect(result.state.childTrail).toEqual(['K1.run', 'KW.run', 'KW.runHandleInfo', 'K2.run']);
      expect((await second.runtime.get('p-7:child:kid-durable')).status).toBe('completed');
      expect(log).toEqual(['P1.run', 'K1.run', 'KW.run', 'KW.runHandleInfo', 'K2.run', 'P2.run']);
    });

    it('resumes a parent whose child finished while the parent’s notification was lost', async () => {
      const log: Log = [];
      const first = testRuntime({ workflows: [waitingFamily(log)] });
      await first.runtime.start('parent-durable', { trail: [] }, { id: 'p-8' });
      await first.runtime.idle();
      const exported = await exportAll(first.runtime);
      await first.runtime.close();

      // The child finishes where its parent is not there to be told (and no event is retained for later).
      const store = new MemoryStore();
      store.importJson(exported.get('p-8:child:kid-durable')!);
      const childOnly = testRuntime({ workflows: [waitingFamily(log)], store, eventRetention: 0 });
      await childOnly.runtime.start();
      await childOnly.runtime.publish({ topic: 'kid.go', payload: { k: 1 } });
      expect((await childOnly.runtime.handle('p-8:child:kid-durable').result()).status).toBe('completed');
      await childOnly.runtime.idle();
      await childOnly.runtime.close();
      expect(log).toEqual(['P1.run', 'K1.run', 'KW.run', 'KW.runHandleInfo', 'K2.run']);

      // The parent comes back still parked on its child: resuming it re-checks the child and goes on.
      store.importJson(exported.get('p-8')!);
      expect((await store.load('p-8'))?.flow.status).toBe('waiting');
      const second = testRuntime({ workflows: [waitingFamily(log)], store, eventRetention: 0 });
      await second.runtime.start();
      const result = await second.runtime.handle<TestState>('p-8').result();

      expect(result.status).toBe('completed');
      expect(result.state.childTrail).toEqual(['K1.run', 'KW.run', 'KW.runHandleInfo', 'K2.run']);
      expect(log).toEqual(['P1.run', 'K1.run', 'KW.run', 'KW.runHandleInfo', 'K2.run', 'P2.run']);
    });
  });

  it('compensates the child of every forEach item when the parent rolls back after the forEach finished', async () => {
    const log: Log = [];
    const kid = twoStepChild('item-kid', 'K', log);
    const parent = defineWorkflow<TestState>({
      name: 'parent-foreach-undo',
      steps: [
        forEach('items', (s: TestState) => s.items as TestState[], child<TestState, TestState>(kid, { input: (item) => ({ trail: [], n: item.n }), into: (item) => ok(item) })),
        recordingStep('P2', log, { run: fails('NO_TRUCK') }),
      ],
    });
    const { runtime } = testRuntime({ workflows: [parent] });
    const result = await (await runtime.start(parent, { trail: [], items: [{ n: 1 }, { n: 2 }, { n: 3 }] }, { id: 'p-9' })).result();
    expect(result.status).toBe('rolled_back');
    expect(result.error?.code).toBe('NO_TRUCK');
    for (const i of [0, 1, 2]) expect((await runtime.get(`p-9:child:item-kid[${i}]`)).status).toBe('rolled_back');
    expect(log.filter((l) => l === 'K1.rollback')).toHaveLength(3);
    expect(log.filter((l) => l === 'K2.rollback')).toHaveLength(3);
  });

  it('fails the compensation with CHILD_NOT_FOUND, never a silent ok, when the child it started cannot be found', async () => {
    const log: Log = [];
    const kid = twoStepChild('lost-kid', 'K', log);
    const parent = defineWorkflow<TestState>({
      name: 'parent-lost-child',
      steps: [child(kid, { input: () => ({ trail: [], n: 1 }) }), recordingStep('P2', log, { run: waitsFor('truck.answer'), runHandleInfo: fails('NO_TRUCK') })],
    });
    const memory = new MemoryStore();
    let lost = false;
    // The child's record vanishes (restored from an old backup, say) once it completed.
    const store = new Proxy(memory, {
      get(target, prop, receiver) {
        if (prop === 'load') return (id: string) => (lost && id.endsWith(':child:lost-kid') ? Promise.resolve(undefined) : target.load(id));
        const value: unknown = Reflect.get(target, prop, receiver);
        return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
      },
    });
    const { runtime } = testRuntime({ workflows: [parent], store });
    const handle = await runtime.start(parent, { trail: [] }, { id: 'p-10' });
    await runtime.idle();
    lost = true;
    await runtime.publish({ topic: 'truck.answer' });
    const result = await handle.result();
    expect(result.status).toBe('compensation_failed');
    expect((await runtime.get('p-10')).compensationFailures.map((f) => f.error.code)).toEqual(['CHILD_NOT_FOUND']);
  });

  it('fails with STATE_INVALID when the child input fails the child’s state class, storing nothing of the child', async () => {
    class KidState {
      @IsString()
      orderId!: string;
    }
    const ran: string[] = [];
    @Step({ name: 'KidStep' })
    class KidStep extends BaseStep<KidState> {
      override run(state: KidState): StepResult<KidState> {
        ran.push(state.orderId);
        return ok(state);
      }
    }
    const log: Log = [];
    const kid = defineWorkflow<KidState>({ name: 'kid-validated', steps: [KidStep], state: KidState });
    const parent = defineWorkflow<TestState>({
      name: 'parent-of-validated',
      steps: [recordingStep('P1', log), child<TestState, KidState>(kid, { input: () => ({ orderId: 42 }) }), recordingStep('P2', log)],
    });
    const { runtime } = testRuntime({ workflows: [parent] });
    const result = await (await runtime.start(parent, { trail: [] }, { id: 'p-9' })).result();

    expect(result.status).toBe('rolled_back');
    expect(result.error?.code).toBe('STATE_INVALID');
    expect(result.error?.details).toMatchObject({ workflow: 'kid-validated', properties: [expect.objectContaining({ property: 'orderId' })] });
    expect(log).toEqual(['P1.run', 'P1.rollback']);
    expect(ran).toEqual([]);
    expect(await runtime.store.load('p-9:child:kid-validated')).toBeUndefined();
    expect(await runtime.store.list({ workflow: 'kid-validated' })).toEqual([]);
  });
});

describe('child workflows on PostgreSQL', () => {
  it('reports nothing when a parent ends, though its child’s end may have been told to it twice', async () => {
    const url = await createTestDatabase('child_told_twice');
    const log: Log = [];
    const kid = defineWorkflow<TestState>({ name: 'kid-quick', steps: [recordingStep('K1', log)] });
    const parent = defineWorkflow<TestState>({ name: 'parent-quick', steps: [child(kid, { input: (s: TestState) => ({ trail: [], n: s.n }) }), recordingStep('P2', log)] });
    const store = TypeormStore.postgres({ url });
    const runtime = new SagaRuntime({ store, workflows: [parent], logger: silentLogger, pollInterval: '100ms' });
    const problems: RuntimeProblem[] = [];
    runtime.errors$.subscribe((p) => problems.push(p));
    try {
      await runtime.start();
      const handles = await Promise.all(Array.from({ length: 10 }, (_, i) => runtime.start(parent, { trail: [], n: 1 }, { id: `told-${i}` })));
      const results = await Promise.all(handles.map((h) => h.result()));
      await runtime.idle();

      expect(results.map((r) => r.status)).toEqual(Array.from({ length: 10 }, () => 'completed'));
      expect(log.filter((entry) => entry === 'P2.run')).toHaveLength(10);
      expect(problems).toEqual([]);
    } finally {
      await runtime.close();
      await store.close();
      await dropTestDatabase(url);
    }
  }, 30_000);
});
