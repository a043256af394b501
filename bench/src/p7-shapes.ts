/**
 * P7: workflow shapes beyond a straight line, sagaflow alone (no peer has them), on a `MemoryStore` and on an SQLite
 * file (`TypeormStore.sqlite`, WAL, synchronous FULL):
 *
 * - **P7-foreach-{memory,sqlite}**: one saga whose single node is a `forEach` over {@link FOR_EACH_ITEMS} items
 *   (default `maxConcurrency`, 10), each item one trivial step; time per item (the saga's wall time / items).
 * - **P7-child-{memory,sqlite}**: a parent saga of two steps around a `child` step whose child workflow has
 *   {@link CHILD_STEPS} steps, one saga at a time; time per parent saga (child included).
 *
 * Anchorless rows: they show the cost of these shapes next to P1/P3 and catch regressions.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import type { InstanceStore, StepResult } from '../../src';
import { BaseStep, child, defineWorkflow, forEach, MemoryStore, ok, SagaRuntime, silentLogger, Step } from '../../src';
import { TypeormStore } from '../../src/store/typeorm';
import type { Measurement, Result } from './harness';
import { summarize } from './harness';

/** Items of the forEach workload. */
export const FOR_EACH_ITEMS = 10_000;
/** Steps of the child workflow. */
export const CHILD_STEPS = 3;

/** How much P7 runs. */
export interface ShapeOptions {
  /** forEach sagas: untimed, then timed (each is one batch). */
  readonly forEach: { readonly warmup: number; readonly repetitions: number };
  /** Parent sagas per batch, by store, and batches. */
  readonly child: { readonly warmup: number; readonly repetitions: number; readonly memory: number; readonly sqlite: number };
}

export const SHAPES_QUICK: ShapeOptions = { forEach: { warmup: 1, repetitions: 2 }, child: { warmup: 50, repetitions: 3, memory: 500, sqlite: 100 } };
export const SHAPES_FULL: ShapeOptions = { forEach: { warmup: 1, repetitions: 5 }, child: { warmup: 200, repetitions: 7, memory: 3_000, sqlite: 500 } };

interface BatchState {
  orderId: string;
  total: number;
}

@Step({ name: 'price-item' })
class PriceItem extends BaseStep<number> {
  override run(item: number): StepResult<number> {
    return ok(item * 2);
  }
}

const forEachWorkflow = defineWorkflow<BatchState>({
  name: 'bench-foreach',
  steps: [forEach('items', () => Array.from({ length: FOR_EACH_ITEMS }, (_, i) => i), PriceItem)],
});

interface ChildState {
  orderId: string;
  count: number;
}

function counted(name: string): typeof BaseStep<ChildState> {
  @Step({ name })
  class Counted extends BaseStep<ChildState> {
    override run(state: ChildState): StepResult<ChildState> {
      state.count += 1;
      return ok(state);
    }
  }
  return Counted;
}

const childWorkflow = defineWorkflow<ChildState>({ name: 'bench-child', steps: Array.from({ length: CHILD_STEPS }, (_, i) => counted(`c${i}`)) });

const parentWorkflow = defineWorkflow<ChildState>({
  name: 'bench-parent',
  steps: [
    counted('before'),
    child(childWorkflow, {
      name: 'kid',
      input: (s: ChildState) => ({ orderId: s.orderId, count: 0 }),
      into: (s: ChildState, out: ChildState) => ok({ ...s, count: s.count + out.count }),
    }),
    counted('after'),
  ],
});

function round3(value: number): number {
  return Math.round(value * 1_000) / 1_000;
}

function row(id: string, metric: string, unit: string, m: Measurement): Result {
  return Object.assign(
    { id, metric, unit, sagaflow: round3(m.median), anchor: null, anchorValue: null, ratio: null, better: 'lower', target: null } as const,
    { spreadPct: Math.round(m.spreadPct * 10) / 10 },
  );
}

/** What P7 produced. */
export interface ShapesOutcome {
  readonly measurements: Measurement[];
  readonly results: Result[];
  readonly failures: string[];
}

async function shapeRows(kind: 'memory' | 'sqlite', store: InstanceStore, options: ShapeOptions, wanted: (id: string) => boolean, out: ShapesOutcome): Promise<void> {
  const runtime = new SagaRuntime({ store, workflows: [forEachWorkflow, childWorkflow, parentWorkflow], logger: silentLogger });
  const where = kind === 'memory' ? 'MemoryStore' : 'SQLite file (WAL, synchronous FULL)';
  let seq = 0;
  try {
    await store.init?.();
    await runtime.start();
    if (wanted(`P7-foreach-${kind}`)) {
      const once = async (): Promise<void> => {
        const result = await (await runtime.start(forEachWorkflow, { orderId: `fe-${seq++}`, total: 0 })).result();
        if (result.status !== 'completed') throw new Error(`P7 forEach (${kind}) ended ${result.status}: ${JSON.stringify(result.error)}`);
      };
      for (let i = 0; i < options.forEach.warmup; i++) await once();
      const perItem: number[] = [];
      for (let r = 0; r < options.forEach.repetitions; r++) {
        const start = process.hrtime.bigint();
        await once();
        perItem.push(Number(process.hrtime.bigint() - start) / 1_000 / FOR_EACH_ITEMS);
      }
      const m = summarize(`sagaflow ${kind} forEach-${FOR_EACH_ITEMS} (per item)`, perItem, { warmup: options.forEach.warmup, repetitions: options.forEach.repetitions, iterations: 1 });
      out.measurements.push(m);
      out.results.push(row(`P7-foreach-${kind}`, `time per item, one forEach of ${FOR_EACH_ITEMS.toLocaleString('en-US')} single-step items (maxConcurrency 10), ${where}`, 'us/item', m));
    }
    if (wanted(`P7-child-${kind}`)) {
      const once = async (): Promise<void> => {
        const result = await (await runtime.start(parentWorkflow, { orderId: `p-${seq++}`, count: 0 })).result();
        if (result.status !== 'completed' || result.state.count !== CHILD_STEPS + 2) throw new Error(`P7 child (${kind}) ended ${result.status} with count ${result.state.count}`);
      };
      const calls = options.child[kind];
      for (let i = 0; i < options.child.warmup; i++) await once();
      const perSaga: number[] = [];
      for (let r = 0; r < options.child.repetitions; r++) {
        const start = process.hrtime.bigint();
        for (let i = 0; i < calls; i++) await once();
        perSaga.push(Number(process.hrtime.bigint() - start) / 1_000 / calls);
      }
      const m = summarize(`sagaflow ${kind} parent+child (per saga)`, perSaga, { warmup: options.child.warmup, repetitions: options.child.repetitions, iterations: calls });
      out.measurements.push(m);
      out.results.push(row(`P7-child-${kind}`, `time per parent saga (2 steps around a child workflow of ${CHILD_STEPS} steps), one at a time, ${where}`, 'us/saga', m));
    }
  } finally {
    await runtime.close();
    await store.close();
  }
}

/** Runs P7 on the MemoryStore and on an SQLite file, for the ids `wanted` accepts. */
export async function measureShapes(options: ShapeOptions, wanted: (id: string) => boolean): Promise<ShapesOutcome> {
  const out: ShapesOutcome = { measurements: [], results: [], failures: [] };
  const failed = (what: string) => (e: unknown) => {
    out.failures.push(`${what}: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
  };
  if (wanted('P7-foreach-memory') || wanted('P7-child-memory')) {
    console.log('P7: forEach and child workflows, MemoryStore ...');
    await shapeRows('memory', new MemoryStore(), options, wanted, out).catch(failed('P7 memory'));
  }
  if (wanted('P7-foreach-sqlite') || wanted('P7-child-sqlite')) {
    console.log('P7: forEach and child workflows, SQLite ...');
    const dir = mkdtempSync(path.join(tmpdir(), 'sagaflow-p7-'));
    try {
      await shapeRows('sqlite', TypeormStore.sqlite({ file: path.join(dir, 'p7.db') }), options, wanted, out).catch(failed('P7 sqlite'));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  return out;
}
