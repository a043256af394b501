import {
  BaseStep,
  DefinitionError,
  MemoryStore,
  PARALLEL_RESULTS_KEY,
  Step,
  continueWith,
  defineWorkflow,
  error as fail,
  forEach,
  goto,
  ok,
  parallel,
  type BranchOutcome,
  type SagaEvent,
  type StepClass,
  type StepContext,
  type StepReturn,
} from '../src';
import { fails, recordingStep, type Log, type TestState } from './support/steps';
import { testRuntime } from './support/runtime';

/** One item of a batch: what each forEach item step gets as its state. */
interface Item {
  i: number;
  [key: string]: unknown;
}

/** The workflow's state: a trail (for recordingStep) and the items to fan out over. */
interface Batch extends TestState {
  items: Item[];
}

interface ItemScript {
  run?: (item: Item, ctx: StepContext) => StepReturn<Item>;
  rollback?: (item: Item, ctx: StepContext) => StepReturn<Item>;
  runHandleInfo?: (item: Item, ctx: StepContext, event: SagaEvent) => StepReturn<Item>;
}

/** An item step (a `BaseStep<Item>`) that does what `script` says, ok by default. */
function itemStep(name: string, script: ItemScript = {}): StepClass<Item> {
  @Step({ name })
  class ItemStep extends BaseStep<Item> {
    override run(item: Item, ctx: StepContext): StepReturn<Item> {
      return script.run ? script.run(item, ctx) : ok(item);
    }
    override rollback(item: Item, ctx: StepContext): StepReturn<Item> {
      return script.rollback ? script.rollback(item, ctx) : ok(item);
    }
    override runHandleInfo(event: SagaEvent, item: Item, ctx: StepContext): StepReturn<Item> {
      return script.runHandleInfo ? script.runHandleInfo(item, ctx, event) : ok(item);
    }
  }
  return ItemStep;
}

/** `n` items numbered from 0. */
function itemsOf(n: number): Item[] {
  return Array.from({ length: n }, (_, i) => ({ i }));
}

/** Yields to the event loop `times` times: an async boundary other work can run in. */
async function turns(times = 1): Promise<void> {
  for (let t = 0; t < times; t += 1) await new Promise<void>((resolve) => setImmediate(resolve));
}

/** Counts how many calls are inside a section at once, and the most there ever were. */
class InFlight {
  now = 0;
  most = 0;
  async around<T>(work: () => Promise<T>): Promise<T> {
    this.now += 1;
    this.most = Math.max(this.most, this.now);
    try {
      return await work();
    } finally {
      this.now -= 1;
    }
  }
}

/** The outcomes a forEach merged into the state under its name (the default merge). */
function itemResults(state: unknown, name: string): BranchOutcome<Item>[] | undefined {
  const merged = (state as Record<string, unknown>)[PARALLEL_RESULTS_KEY] as Record<string, unknown> | undefined;
  return merged?.[name] as BranchOutcome<Item>[] | undefined;
}

/** How many times each value occurs. */
function counts(values: readonly number[]): Map<number, number> {
  const seen = new Map<number, number>();
  for (const v of values) seen.set(v, (seen.get(v) ?? 0) + 1);
  return seen;
}

/** A promise the test (or another step) opens when a step may go on. */
interface Gate {
  readonly opened: Promise<void>;
  open(): void;
}

function gate(): Gate {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => (open = resolve));
  return { opened, open };
}

/** Resolves with the abort reason once the step's AbortSignal fires. */
function aborted(ctx: StepContext): Promise<unknown> {
  return new Promise((resolve) => {
    if (ctx.signal.aborted) resolve(ctx.signal.reason);
    else ctx.signal.addEventListener('abort', () => resolve(ctx.signal.reason), { once: true });
  });
}

/** The code of an abort reason (the engine aborts with a serialised error). */
function codeOf(reason: unknown): unknown {
  return typeof reason === 'object' && reason !== null ? (reason as { code?: unknown }).code : reason;
}

/** 0, 1, …, n-1. */
function upTo(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}

/** The DefinitionError `fn` throws, or undefined when it throws nothing. */
function refusal(fn: () => unknown): DefinitionError | undefined {
  try {
    fn();
    return undefined;
  } catch (e) {
    expect(e).toBeInstanceOf(DefinitionError);
    return e as DefinitionError;
  }
}

describe('a forEach group', () => {
  it('runs 1,000 items never more than 10 at a time and returns their results in item order', async () => {
    const log: Log = [];
    const inFlight = new InFlight();
    const ran: number[] = [];
    const settled: number[] = [];
    const Double = itemStep('Double', {
      run: (item) =>
        inFlight.around(async () => {
          ran.push(item.i);
          // Items take different times, so they settle out of item order.
          await turns(1 + ((item.i * 7) % 5));
          settled.push(item.i);
          return ok({ ...item, doubled: item.i * 2 });
        }),
    });
    const wf = defineWorkflow<Batch>({
      name: 'thousand',
      steps: [recordingStep('S', log), forEach('double', (s: Batch) => s.items, Double, { maxConcurrency: 10 }), recordingStep('T', log)],
    });
    const { runtime } = testRuntime({ workflows: [wf] });
    const result = await (await runtime.start(wf, { trail: [], items: itemsOf(1000) })).result();

    expect(result.status).toBe('completed');
    expect(log).toEqual(['S.run', 'T.run']);
    expect(inFlight.most).toBe(10);
    expect(ran).toEqual(upTo(1000));
    expect(settled).not.toEqual(upTo(1000));
    const results = itemResults(result.state, 'double');
    expect(results).toHaveLength(1000);
    expect(results).toEqual(upTo(1000).map((i) => ({ ok: true, value: { i, doubled: i * 2 } })));
  });

  it('runs a sequence of item steps per item, each step seeing the item as its previous step left it', async () => {
    const log: Log = [];
    const First = itemStep('First', {
      run: (item) => {
        log.push(`First[${item.i}]`);
        return ok({ ...item, first: `f${item.i}` });
      },
    });
    const Second = itemStep('Second', {
      run: (item) => {
        log.push(`Second[${item.i}] saw ${String(item.first)}`);
        return ok({ ...item, second: true });
      },
    });
    const wf = defineWorkflow<Batch>({ name: 'sequence', steps: [forEach('each', (s: Batch) => s.items, [First, Second], { maxConcurrency: 1 })] });
    const { runtime } = testRuntime({ workflows: [wf] });
    const result = await (await runtime.start(wf, { trail: [], items: itemsOf(3) })).result();
    expect(result.status).toBe('completed');
    expect(log).toEqual(['First[0]', 'Second[0] saw f0', 'First[1]', 'Second[1] saw f1', 'First[2]', 'Second[2] saw f2']);
    expect(itemResults(result.state, 'each')).toEqual(upTo(3).map((i) => ({ ok: true, value: { i, first: `f${i}`, second: true } })));
  });

  it('tells each item step its group, its branch name[i] and a run key that includes [i]', async () => {
    const contexts: unknown[] = [];
    const Note = itemStep('Note', {
      run: (item, ctx) => {
        contexts.push([ctx.stepName, ctx.group, ctx.branch, ctx.runKey, ctx.idempotencyKey]);
        return ok(item);
      },
    });
    const wf = defineWorkflow<Batch>({ name: 'contexts', steps: [forEach('notes', (s: Batch) => s.items, Note, { maxConcurrency: 1 })] });
    const { runtime } = testRuntime({ workflows: [wf] });
    await (await runtime.start(wf, { trail: [], items: itemsOf(3) }, { id: 'ctx-1' })).result();
    expect(contexts).toEqual([
      ['Note', 'notes', 'notes[0]', 'ctx-1:Note[0]', 'ctx-1:Note[0]:up:1'],
      ['Note', 'notes', 'notes[1]', 'ctx-1:Note[1]', 'ctx-1:Note[1]:up:1'],
      ['Note', 'notes', 'notes[2]', 'ctx-1:Note[2]', 'ctx-1:Note[2]:up:1'],
    ]);
  });

  describe("with onItemError 'failFast' (the default)", () => {
    it('starts no more items after item 500 fails, compensates every started item once (10 at a time), then the steps before in reverse', async () => {
      const log: Log = [];
      const ran: number[] = [];
      const rolledBack: number[] = [];
      const rollbackInFlight = new InFlight();
      const receivedBy500: Item[] = [];
      const abortedWith = new Map<number, unknown>();
      const item509Started = gate();
      const Charge = itemStep('Charge', {
        run: async (item, ctx) => {
          ran.push(item.i);
          if (item.i === 509) item509Started.open();
          if (item.i === 500) {
            // Fail only once the nine items behind it have started (509 is the last that fits beside it).
            await item509Started.opened;
            return fail({ code: 'CARD_DECLINED', message: 'item 500 was declined' }, { ...item, charged: false });
          }
          if (item.i > 500) {
            // Still running when 500 fails: these go on until their signal fires (or give up, unaborted).
            const reason = await Promise.race([aborted(ctx), turns(200).then(() => 'never aborted')]);
            abortedWith.set(item.i, codeOf(reason));
            return ok({ ...item, charged: true });
          }
          await turns(1 + (item.i % 3));
          return ok({ ...item, charged: true });
        },
        rollback: (item) =>
          rollbackInFlight.around(async () => {
            rolledBack.push(item.i);
            if (item.i === 500) receivedBy500.push(structuredClone(item));
            log.push(`Charge[${item.i}].rollback`);
            await turns(1 + (item.i % 2));
            return ok(item);
          }),
      });
      const wf = defineWorkflow<Batch>({
        name: 'fail-fast',
        steps: [
          recordingStep('S1', log),
          recordingStep('S2', log),
          forEach('charge', (s: Batch) => s.items, Charge, { maxConcurrency: 10 }),
          recordingStep('T', log),
        ],
      });
      const { runtime } = testRuntime({ workflows: [wf] });
      const result = await (await runtime.start(wf, { trail: [], items: itemsOf(1000) })).result();

      expect(result.status).toBe('rolled_back');
      expect(result.error).toMatchObject({ code: 'CARD_DECLINED', message: 'item 500 was declined' });
      // Items 501-509 had started when 500 failed; they were aborted and no item after them ever started.
      expect(ran).toEqual(upTo(510));
      expect([...abortedWith.entries()].sort(([a], [b]) => a - b)).toEqual(upTo(510).slice(501).map((i) => [i, 'CARD_DECLINED']));
      // Every started item, the failing one included, was compensated exactly once; no other was.
      expect([...counts(rolledBack).entries()].sort(([a], [b]) => a - b)).toEqual(upTo(510).map((i) => [i, 1]));
      expect(receivedBy500).toEqual([{ i: 500, charged: false }]);
      expect(rollbackInFlight.most).toBe(10);
      // Then the steps before the forEach, in reverse; T never ran.
      expect(log.slice(0, 2)).toEqual(['S1.run', 'S2.run']);
      expect(log.slice(-2)).toEqual(['S2.rollback', 'S1.rollback']);
      expect(log.slice(2, -2)).toHaveLength(510);
      expect(log.slice(2, -2).every((entry) => /^Charge\[\d+\]\.rollback$/.test(entry))).toBe(true);
      expect(log).not.toContain('T.run');
    });

    it('compensates the items one at a time when compensation is sequential', async () => {
      const rollbackInFlight = new InFlight();
      const rolledBack: number[] = [];
      const Work = itemStep('Work', {
        run: async (item) => {
          await turns(1);
          return item.i === 6 ? fail('ITEM_6_FAILED', item) : ok(item);
        },
        rollback: (item) =>
          rollbackInFlight.around(async () => {
            rolledBack.push(item.i);
            await turns(2);
            return ok(item);
          }),
      });
      const wf = defineWorkflow<Batch>({
        name: 'sequential-compensation',
        steps: [forEach('work', (s: Batch) => s.items, Work, { maxConcurrency: 4, compensation: 'sequential' })],
      });
      const { runtime } = testRuntime({ workflows: [wf] });
      const result = await (await runtime.start(wf, { trail: [], items: itemsOf(20) })).result();
      expect(result.status).toBe('rolled_back');
      expect(rollbackInFlight.most).toBe(1);
      expect([...rolledBack].sort((a, b) => a - b)).toEqual(upTo(Math.max(...rolledBack) + 1));
      expect(rolledBack).toContain(6);
    });
  });

  describe("with onItemError 'continue'", () => {
    /** Twelve items; items 3 and 7 fail. Records runs and rollbacks. */
    function flakyCharge(log: Log): StepClass<Item> {
      return itemStep('Charge', {
        run: async (item) => {
          log.push(`Charge[${item.i}].run`);
          await turns(1 + (item.i % 3));
          return item.i === 3 || item.i === 7
            ? fail({ code: `ITEM_${item.i}_FAILED`, message: `item ${item.i} failed` }, { ...item, charged: false })
            : ok({ ...item, charged: true });
        },
        rollback: (item) => {
          log.push(`Charge[${item.i}].rollback`);
          return ok(item);
        },
      });
    }

    const expectedOutcomes = upTo(12).map((i): BranchOutcome<Item> =>
      i === 3 || i === 7
        ? { ok: false, error: { code: `ITEM_${i}_FAILED`, name: 'Error', message: `item ${i} failed` } }
        : { ok: true, value: { i, charged: true } },
    );

    it('runs every item, undoes only the failed ones, puts their errors at their index and goes on to the next step', async () => {
      const log: Log = [];
      let seenByT: unknown;
      const wf = defineWorkflow<Batch>({
        name: 'continue',
        steps: [
          recordingStep('S', log),
          forEach('charge', (s: Batch) => s.items, flakyCharge(log), { maxConcurrency: 4, onItemError: 'continue' }),
          recordingStep('T', log, {
            run: (state) => {
              seenByT = structuredClone(itemResults(state, 'charge'));
              return ok(state);
            },
          }),
        ],
      });
      const { runtime } = testRuntime({ workflows: [wf] });
      const result = await (await runtime.start(wf, { trail: [], items: itemsOf(12) })).result();

      expect(result.status).toBe('completed');
      expect(log.filter((e) => e.endsWith('.run') && e.startsWith('Charge')).sort()).toEqual(upTo(12).map((i) => `Charge[${i}].run`).sort());
      expect(log.filter((e) => e.endsWith('.rollback')).sort()).toEqual(['Charge[3].rollback', 'Charge[7].rollback']);
      expect(log[0]).toBe('S.run');
      expect(log[log.length - 1]).toBe('T.run');
      expect(seenByT).toEqual(expectedOutcomes);
      expect(itemResults(result.state, 'charge')).toEqual(expectedOutcomes);
    });

    it('does not compensate a failed item a second time when a later step fails', async () => {
      const log: Log = [];
      const wf = defineWorkflow<Batch>({
        name: 'continue-later-failure',
        steps: [
          recordingStep('S', log),
          forEach('charge', (s: Batch) => s.items, flakyCharge(log), { maxConcurrency: 4, onItemError: 'continue' }),
          recordingStep('T', log, { run: fails('LATER') }),
        ],
      });
      const { runtime } = testRuntime({ workflows: [wf] });
      const result = await (await runtime.start(wf, { trail: [], items: itemsOf(12) })).result();
      expect(result.status).toBe('rolled_back');
      expect(result.error?.code).toBe('LATER');
      const rollbacks = log.filter((e) => e.startsWith('Charge') && e.endsWith('.rollback'));
      expect([...counts(rollbacks.map((e) => Number(/\[(\d+)\]/.exec(e)?.[1]))).entries()].sort(([a], [b]) => a - b)).toEqual(upTo(12).map((i) => [i, 1]));
      // The failed items were undone when the group ended, the others only after T failed.
      const tRollback = log.indexOf('T.rollback');
      expect(log.indexOf('Charge[3].rollback')).toBeLessThan(log.indexOf('T.run'));
      expect(log.indexOf('Charge[7].rollback')).toBeLessThan(log.indexOf('T.run'));
      expect(log.indexOf('Charge[0].rollback')).toBeGreaterThan(tRollback);
      expect(log[log.length - 1]).toBe('S.rollback');
    });

    it('hands into the state at the group start and the outcomes in item order, and goes on with the state it returns', async () => {
      const log: Log = [];
      let intoSaw: { state: unknown; results: unknown } | undefined;
      let seenByT: unknown;
      const wf = defineWorkflow<Batch>({
        name: 'into-ok',
        steps: [
          recordingStep('S', log),
          forEach('charge', (s: Batch) => s.items, flakyCharge(log), {
            maxConcurrency: 4,
            onItemError: 'continue',
            into: (state: Batch, results) => {
              intoSaw = { state: structuredClone(state), results: structuredClone(results) };
              return ok({ ...state, failed: results.flatMap((r, i) => (r.ok ? [] : [i])) });
            },
          }),
          recordingStep('T', log, {
            run: (state) => {
              seenByT = structuredClone(state);
              return ok(state);
            },
          }),
        ],
      });
      const { runtime } = testRuntime({ workflows: [wf] });
      const result = await (await runtime.start(wf, { trail: [], items: itemsOf(12) })).result();
      expect(result.status).toBe('completed');
      expect(intoSaw).toEqual({ state: { trail: ['S.run'], items: itemsOf(12) }, results: expectedOutcomes });
      expect(seenByT).toEqual({ trail: ['S.run', 'T.run'], items: itemsOf(12), failed: [3, 7] });
      expect(PARALLEL_RESULTS_KEY in result.state).toBe(false);
    });

    it('rolls back every item and the steps before when into returns error', async () => {
      const log: Log = [];
      const wf = defineWorkflow<Batch>({
        name: 'into-error',
        steps: [
          recordingStep('S', log),
          forEach('charge', (s: Batch) => s.items, flakyCharge(log), {
            maxConcurrency: 4,
            onItemError: 'continue',
            into: (_state: Batch, results) => fail({ code: 'TOO_MANY_FAILED', message: `${results.filter((r) => !r.ok).length} items failed` }),
          }),
          recordingStep('T', log),
        ],
      });
      const { runtime } = testRuntime({ workflows: [wf] });
      const result = await (await runtime.start(wf, { trail: [], items: itemsOf(12) })).result();
      expect(result.status).toBe('rolled_back');
      expect(result.error).toMatchObject({ code: 'TOO_MANY_FAILED', message: '2 items failed' });
      const rollbacks = log.filter((e) => e.startsWith('Charge') && e.endsWith('.rollback'));
      expect(rollbacks.sort()).toEqual(upTo(12).map((i) => `Charge[${i}].rollback`).sort());
      expect(log).not.toContain('T.run');
      expect(log[log.length - 1]).toBe('S.rollback');
    });

    it('jumps to a declared step when into returns goto', async () => {
      const log: Log = [];
      const wf = defineWorkflow<Batch>({
        name: 'into-goto',
        steps: [
          recordingStep('S', log),
          forEach('charge', (s: Batch) => s.items, flakyCharge(log), {
            maxConcurrency: 4,
            onItemError: 'continue',
            into: (state: Batch, results) => (results.every((r) => r.ok) ? ok(state) : goto('Refund', { ...state, partial: true })),
            goto: ['Refund'],
          }),
          recordingStep('Ship', log),
          recordingStep('Refund', log),
        ],
      });
      const { runtime } = testRuntime({ workflows: [wf] });
      const result = await (await runtime.start(wf, { trail: [], items: itemsOf(12) })).result();
      expect(result.status).toBe('completed');
      expect(log).not.toContain('Ship.run');
      expect(log[log.length - 1]).toBe('Refund.run');
      expect(result.state).toEqual({ trail: ['S.run', 'Refund.run'], items: itemsOf(12), partial: true });
    });

    it('rolls back with UNDECLARED_GOTO_TARGET when into jumps to a step the forEach does not declare', async () => {
      const log: Log = [];
      const wf = defineWorkflow<Batch>({
        name: 'into-undeclared-goto',
        steps: [
          recordingStep('S', log),
          forEach('charge', (s: Batch) => s.items, flakyCharge(log), {
            maxConcurrency: 4,
            onItemError: 'continue',
            into: (state: Batch) => goto('Refund', state),
          }),
          recordingStep('Ship', log),
          recordingStep('Refund', log),
        ],
      });
      const { runtime } = testRuntime({ workflows: [wf] });
      const result = await (await runtime.start(wf, { trail: [], items: itemsOf(12) })).result();
      expect(result.status).toBe('rolled_back');
      expect(result.error).toMatchObject({ code: 'UNDECLARED_GOTO_TARGET', details: { target: 'Refund' } });
      expect(log).not.toContain('Ship.run');
      expect(log).not.toContain('Refund.run');
      expect(log.filter((e) => e.startsWith('Charge') && e.endsWith('.rollback')).sort()).toEqual(upTo(12).map((i) => `Charge[${i}].rollback`).sort());
      expect(log[log.length - 1]).toBe('S.rollback');
    });
  });

  it('compensates every item with its own output state, then the earlier steps, when a later step fails', async () => {
    const log: Log = [];
    const received = new Map<number, Item[]>();
    const Reserve = itemStep('Reserve', {
      run: async (item) => {
        await turns(1 + ((item.i * 5) % 3));
        return ok({ ...item, reservation: `r-${item.i}` });
      },
      rollback: (item) => {
        received.set(item.i, [...(received.get(item.i) ?? []), structuredClone(item)]);
        log.push(`Reserve[${item.i}].rollback`);
        return ok(item);
      },
    });
    const wf = defineWorkflow<Batch>({
      name: 'later-failure',
      steps: [
        recordingStep('S1', log),
        recordingStep('S2', log),
        forEach('reserve', (s: Batch) => s.items, Reserve, { maxConcurrency: 3 }),
        recordingStep('T', log, { run: fails('NO_TRUCK') }),
      ],
    });
    const { runtime } = testRuntime({ workflows: [wf] });
    const result = await (await runtime.start(wf, { trail: [], items: itemsOf(8) })).result();

    expect(result.status).toBe('rolled_back');
    expect(result.error?.code).toBe('NO_TRUCK');
    expect(log.slice(0, 4)).toEqual(['S1.run', 'S2.run', 'T.run', 'T.rollback']);
    expect(log.slice(4, -2).sort()).toEqual(upTo(8).map((i) => `Reserve[${i}].rollback`).sort());
    expect(log.slice(-2)).toEqual(['S2.rollback', 'S1.rollback']);
    expect([...received.entries()].sort(([a], [b]) => a - b)).toEqual(upTo(8).map((i) => [i, [{ i, reservation: `r-${i}` }]]));
  });

  it('compensates each item with its own run key and idempotency key, and its item as plain JSON, after the group finished', async () => {
    class Order {
      trail!: string[];
      items!: Item[];
    }
    const calls: { i: number; direction: string; runKey: string; idempotencyKey: string; plain: boolean }[] = [];
    const note = (item: Item, ctx: StepContext): void => {
      calls.push({ i: item.i, direction: ctx.direction, runKey: ctx.runKey, idempotencyKey: ctx.idempotencyKey, plain: !(item instanceof Order) && !('trail' in item) });
    };
    const Refund = itemStep('Charge', {
      run: (item, ctx) => (note(item, ctx), ok(item)),
      rollback: (item, ctx) => (note(item, ctx), ok(item)),
    });
    const wf = defineWorkflow<Order>({
      name: 'keys-after-finish',
      steps: [forEach('charge', (s: Order) => s.items, Refund), recordingStep('T', [], { run: fails('NO_TRUCK') })],
      state: Order,
    });
    const { runtime } = testRuntime({ workflows: [wf] });
    const handle = await runtime.start(wf, { trail: [], items: itemsOf(4) }, { id: 'o1' });
    expect((await handle.result()).status).toBe('rolled_back');
    const down = calls.filter((c) => c.direction === 'down').sort((a, b) => a.i - b.i);
    expect(down).toEqual(upTo(4).map((i) => ({ i, direction: 'down', runKey: `o1:Charge[${i}]`, idempotencyKey: `o1:Charge[${i}]:down:1`, plain: true })));
    expect(new Set(down.map((c) => c.idempotencyKey)).size).toBe(4);
  });

  it('completes 10,000 items with a cheap step, never more than maxConcurrency at a time', async () => {
    const inFlight = new InFlight();
    let calls = 0;
    const Cheap = itemStep('Cheap', {
      run: (item) =>
        inFlight.around(async () => {
          calls += 1;
          await turns(1);
          return ok(item);
        }),
    });
    const wf = defineWorkflow<Batch>({ name: 'ten-thousand', steps: [forEach('cheap', (s: Batch) => s.items, Cheap, { maxConcurrency: 25 })] });
    const { runtime } = testRuntime({ workflows: [wf] });
    const result = await (await runtime.start(wf, { trail: [], items: itemsOf(10_000) })).result();
    expect(result.status).toBe('completed');
    expect(calls).toBe(10_000);
    expect(inFlight.most).toBe(25);
    const results = itemResults(result.state, 'cheap');
    expect(results).toHaveLength(10_000);
    expect(results?.every((r, i) => r.ok && r.value.i === i)).toBe(true);
  }, 120_000);

  describe('with items that cannot be read', () => {
    it.each([
      ['is not an array', () => ({ not: 'a list' }) as never, 'must be an array, got object'],
      ['is null', () => null as never, 'must be an array, got null'],
      [
        'comes from a function that throws',
        () => {
          throw new Error('no items today');
        },
        'could not be read: no items today',
      ],
    ])('rolls back with FOR_EACH_ITEMS_FAILED when the items %s', async (_what, items: (s: Batch) => Item[], message) => {
      const log: Log = [];
      let itemRuns = 0;
      const Work = itemStep('Work', {
        run: (item) => {
          itemRuns += 1;
          return ok(item);
        },
      });
      const wf = defineWorkflow<Batch>({
        name: 'bad-items',
        steps: [recordingStep('S1', log), recordingStep('S2', log), forEach('work', items, Work), recordingStep('T', log)],
      });
      const { runtime } = testRuntime({ workflows: [wf] });
      const result = await (await runtime.start(wf, { trail: [], items: [] })).result();
      expect(result.status).toBe('rolled_back');
      expect(result.error).toMatchObject({ code: 'FOR_EACH_ITEMS_FAILED', details: { group: 'work' } });
      expect(result.error?.message).toContain(message);
      expect(itemRuns).toBe(0);
      expect(log).toEqual(['S1.run', 'S2.run', 'S2.rollback', 'S1.rollback']);
    });
  });

  it('completes at once with [] results over an empty list and goes on', async () => {
    const log: Log = [];
    let itemRuns = 0;
    const Work = itemStep('Work', {
      run: (item) => {
        itemRuns += 1;
        return ok(item);
      },
    });
    const wf = defineWorkflow<Batch>({
      name: 'empty',
      steps: [recordingStep('S', log), forEach('work', (s: Batch) => s.items, Work), recordingStep('T', log)],
    });
    const { runtime } = testRuntime({ workflows: [wf] });
    const result = await (await runtime.start(wf, { trail: [], items: [] })).result();
    expect(result.status).toBe('completed');
    expect(itemRuns).toBe(0);
    expect(log).toEqual(['S.run', 'T.run']);
    expect(itemResults(result.state, 'work')).toEqual([]);
  });

  describe('with items that wait for events', () => {
    /** An item step that waits for `item.approved` with the item's own id, and keeps who approved it. */
    function awaitsApproval(log: Log): StepClass<Item> {
      return itemStep('Approve', {
        run: (item) => {
          log.push(`Approve[${item.i}].run`);
          return continueWith(item, { topic: 'item.approved', match: { itemId: `item-${item.i}` } });
        },
        runHandleInfo: (item, _ctx, event) => {
          log.push(`Approve[${item.i}].runHandleInfo`);
          return ok({ ...item, approvedBy: event.payload.by });
        },
      });
    }

    const approve = (i: number) => ({ topic: 'item.approved', payload: { itemId: `item-${i}`, by: `clerk-${i}` } });

    it('resumes each item with its own event and completes the group after the last one', async () => {
      const log: Log = [];
      const wf = defineWorkflow<Batch>({
        name: 'waiting-items',
        steps: [recordingStep('S', log), forEach('approve', (s: Batch) => s.items, awaitsApproval(log), { maxConcurrency: 3 }), recordingStep('T', log)],
      });
      const { runtime } = testRuntime({ workflows: [wf] });
      const handle = await runtime.start(wf, { trail: [], items: itemsOf(5) });
      await runtime.idle();
      expect(log).toEqual(['S.run', 'Approve[0].run', 'Approve[1].run', 'Approve[2].run']);
      expect((await runtime.get(handle.id)).status).toBe('waiting');

      // An event for one item resumes that item only, and frees a place for item 3.
      expect((await runtime.publish(approve(1))).delivered).toBe(1);
      await runtime.idle();
      expect(log.slice(4)).toEqual(['Approve[1].runHandleInfo', 'Approve[3].run']);
      // A second copy of the same event finds no item waiting for it.
      expect((await runtime.publish(approve(1))).delivered).toBe(0);

      for (const i of [3, 0, 2, 4]) {
        expect((await runtime.publish(approve(i))).delivered).toBe(1);
        await runtime.idle();
        if (i !== 4) {
          expect(log).not.toContain('T.run');
          expect((await runtime.get(handle.id)).status).toBe('waiting');
        }
      }
      const result = await handle.result();
      expect(result.status).toBe('completed');
      expect(log[log.length - 1]).toBe('T.run');
      expect(log.filter((e) => e.endsWith('.runHandleInfo'))).toEqual([1, 3, 0, 2, 4].map((i) => `Approve[${i}].runHandleInfo`));
      expect(itemResults(result.state, 'approve')).toEqual(upTo(5).map((i) => ({ ok: true, value: { i, approvedBy: `clerk-${i}` } })));
    });

    it('survives a restart in the middle, with items waiting and items not yet started, and runs every item exactly once', async () => {
      const log: Log = [];
      const wf = () =>
        defineWorkflow<Batch>({
          name: 'durable-items',
          steps: [recordingStep('S', log), forEach('approve', (s: Batch) => s.items, awaitsApproval(log), { maxConcurrency: 10 }), recordingStep('T', log)],
        });
      const first = testRuntime({ workflows: [wf()] });
      await first.runtime.start('durable-items', { trail: [], items: itemsOf(25) }, { id: 'd-1' });
      await first.runtime.idle();
      for (const i of upTo(5)) {
        expect((await first.runtime.publish(approve(i))).delivered).toBe(1);
        await first.runtime.idle();
      }
      // Items 0-4 are done, 5-14 wait, 15-24 have not started.
      expect(log.filter((e) => e.endsWith('.run') && e.startsWith('Approve'))).toEqual(upTo(15).map((i) => `Approve[${i}].run`));
      expect((await first.runtime.get('d-1')).status).toBe('waiting');
      const json = (first.runtime.store as MemoryStore).exportJson('d-1');
      expect(json).toBeDefined();
      await first.runtime.close();

      const store = new MemoryStore();
      store.importJson(JSON.stringify(JSON.parse(json ?? '{}')));
      const second = testRuntime({ workflows: [wf()], store });
      await second.runtime.start();
      await second.runtime.idle();
      // Resuming calls no item again: the waiting ones wait on.
      expect(log.filter((e) => e.startsWith('Approve'))).toHaveLength(20);

      for (const i of upTo(25).slice(5)) {
        expect((await second.runtime.publish(approve(i))).delivered).toBe(1);
        await second.runtime.idle();
        if (i !== 24) expect((await second.runtime.get('d-1')).status).toBe('waiting');
      }
      const result = await second.runtime.handle('d-1').result();
      expect(result.status).toBe('completed');
      expect(log.filter((e) => e === 'S.run' || e === 'T.run')).toEqual(['S.run', 'T.run']);
      expect(log[log.length - 1]).toBe('T.run');
      const runs = log.filter((e) => e.endsWith('].run')).map((e) => Number(/\[(\d+)\]/.exec(e)?.[1]));
      const handled = log.filter((e) => e.endsWith('.runHandleInfo')).map((e) => Number(/\[(\d+)\]/.exec(e)?.[1]));
      expect([...counts(runs).entries()].sort(([a], [b]) => a - b)).toEqual(upTo(25).map((i) => [i, 1]));
      expect([...counts(handled).entries()].sort(([a], [b]) => a - b)).toEqual(upTo(25).map((i) => [i, 1]));
      expect(itemResults(result.state, 'approve')).toEqual(upTo(25).map((i) => ({ ok: true, value: { i, approvedBy: `clerk-${i}` } })));
    });
  });

  describe('when defined', () => {
    const Work = itemStep('Work');

    it('refuses a forEach without an items function, with BAD_OPTION', () => {
      const refused = refusal(() => defineWorkflow({ name: 'no-items', steps: [forEach('work', undefined as never, Work)] }));
      expect(refused).toMatchObject({ code: 'BAD_OPTION', details: { field: 'items' } });
    });

    it('refuses a forEach without item steps, with EMPTY_GROUP', () => {
      const refused = refusal(() => defineWorkflow({ name: 'no-steps', steps: [forEach('work', (s: Batch) => s.items, [])] }));
      expect(refused).toMatchObject({ code: 'EMPTY_GROUP', details: { group: 'work' } });
    });

    it('refuses an unknown option, with BAD_OPTION naming it', () => {
      const refused = refusal(() => defineWorkflow({ name: 'typo', steps: [forEach('work', (s: Batch) => s.items, Work, { maxConcurency: 2 } as never)] }));
      expect(refused).toMatchObject({ code: 'BAD_OPTION', details: { field: 'maxConcurency' } });
    });

    it('refuses a maxConcurrency of 0, with BAD_OPTION', () => {
      const refused = refusal(() => defineWorkflow({ name: 'zero', steps: [forEach('work', (s: Batch) => s.items, Work, { maxConcurrency: 0 })] }));
      expect(refused).toMatchObject({ code: 'BAD_OPTION', details: { field: 'maxConcurrency' } });
    });

    it('refuses a forEach placed inside a parallel branch, with NOT_A_STEP', () => {
      const Other = itemStep('Other');
      const refused = refusal(() => defineWorkflow({ name: 'nested', steps: [parallel('g', [Other, [forEach('work', (s: Batch) => s.items, Work) as never]])] }));
      expect(refused).toMatchObject({ code: 'NOT_A_STEP' });
    });

    it('refuses a forEach placed among the item steps of another forEach, with NOT_A_STEP', () => {
      const refused = refusal(() =>
        defineWorkflow({ name: 'nested-each', steps: [forEach('outer', (s: Batch) => s.items, [Work, forEach('inner', (s: Batch) => s.items, Work) as never])] }),
      );
      expect(refused).toMatchObject({ code: 'NOT_A_STEP' });
    });
  });
});
