/**
 * P6: growth. Is the cost of a transition flat in the length of the workflow, and the cost of dispatching an event
 * flat in the number of waiting instances?
 *
 * - **P6-steps-{memory,sqlite}-{10,100,1000}**: time per transition (a saga's time / its steps) of workflows of 10,
 *   100 and 1,000 trivial steps (./waiting-saga's `chainWorkflow`), one saga at a time, on a `MemoryStore` and on an
 *   SQLite file (`TypeormStore.sqlite`, WAL, synchronous FULL: every transition is one commit). The 10-step row has
 *   no anchor; the longer ones are compared with it (ratio = their time per transition / the 10-step one's,
 *   target ≤ 1.5: flat).
 * - **P6-dispatch-{1k,10k,100k}**: see ./p5-memory, which parks the population and calls {@link dispatchProbe} at
 *   each size.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import type { InstanceStore, SagaRuntime as Runtime } from '../../src';
import { MemoryStore, SagaRuntime, silentLogger } from '../../src';
import { TypeormStore } from '../../src/store/typeorm';
import type { AnchorName, Measurement, Result } from './harness';
import { summarize } from './harness';
import { chainWorkflow, orderState, pay, percentile, usSince, waitingWorkflow, whenCharged } from './waiting-saga';

/** Workflow lengths measured. */
export const CHAIN_LENGTHS = [10, 100, 1_000] as const;

/** How much P6-steps runs, in transitions (steps) per store: warm-up, timed batches, transitions per batch. */
export interface ChainOptions {
  readonly memory: { readonly warmup: number; readonly repetitions: number; readonly transitions: number };
  readonly sqlite: { readonly warmup: number; readonly repetitions: number; readonly transitions: number };
}

export const CHAIN_QUICK: ChainOptions = {
  memory: { warmup: 3_000, repetitions: 5, transitions: 5_000 },
  sqlite: { warmup: 1_000, repetitions: 3, transitions: 1_000 },
};
export const CHAIN_FULL: ChainOptions = {
  memory: { warmup: 20_000, repetitions: 9, transitions: 20_000 },
  sqlite: { warmup: 3_000, repetitions: 5, transitions: 3_000 },
};

/** Growth target: the larger size's cost at most 1.5× the smallest's. */
export const FLAT_TARGET = 1.5;

function round3(value: number): number {
  return Math.round(value * 1_000) / 1_000;
}

/** `row` with the spread of its measurement, (max − min) / median in percent, for the report. */
export function withSpread(row: Result, spreadPct: number): Result {
  return Object.assign({}, row, { spreadPct: Math.round(spreadPct * 10) / 10 });
}

/**
 * A growth row: anchorless for the first (smallest) size, else compared with the smallest size's row
 * (`base`): ratio = value / base value, target {@link FLAT_TARGET}.
 */
export function growthRow(id: string, metric: string, unit: string, value: number, base: { id: string; value: number } | undefined): Result {
  if (base === undefined) return { id, metric, unit, sagaflow: round3(value), anchor: null, anchorValue: null, ratio: null, better: 'lower', target: null };
  return {
    id,
    metric,
    unit,
    sagaflow: round3(value),
    anchor: base.id as AnchorName,
    anchorValue: round3(base.value),
    ratio: round3(value / base.value),
    better: 'lower',
    target: FLAT_TARGET,
  };
}

/** What a P6 part produced. */
export interface GrowthOutcome {
  readonly measurements: Measurement[];
  readonly results: Result[];
  readonly failures: string[];
}

/**
 * Times the three lengths in interleaved batches (10, 100, 1000, 10, 100, …) so that a disk or CPU that drifts
 * during the run moves every length alike; each batch runs about `transitions` transitions, one saga at a time.
 */
async function chainRows(kind: 'memory' | 'sqlite', store: InstanceStore, options: ChainOptions, out: GrowthOutcome): Promise<void> {
  const workflows = CHAIN_LENGTHS.map((n) => chainWorkflow(n));
  const runtime = new SagaRuntime({ store, workflows, logger: silentLogger });
  const cut = options[kind];
  try {
    await store.init?.();
    await runtime.start();
    const batches = CHAIN_LENGTHS.map((n, i) => {
      const workflow = workflows[i] as (typeof workflows)[number];
      const once = async (): Promise<void> => {
        const result = await (await runtime.start(workflow, { count: 0 })).result();
        if (result.status !== 'completed' || result.state.count !== n) throw new Error(`P6 ${kind} chain-${n}: ended ${result.status} after ${result.state.count} steps`);
      };
      return { n, once, iterations: Math.max(1, Math.ceil(cut.transitions / n)), warmup: Math.max(1, Math.ceil(cut.warmup / n)), perTransitionUs: [] as number[] };
    });
    for (const b of batches) for (let k = 0; k < b.warmup; k++) await b.once();
    for (let r = 0; r < cut.repetitions; r++) {
      for (const b of batches) {
        const start = process.hrtime.bigint();
        for (let k = 0; k < b.iterations; k++) await b.once();
        b.perTransitionUs.push(Number(process.hrtime.bigint() - start) / 1_000 / (b.iterations * b.n));
      }
    }
    let base: { id: string; value: number } | undefined;
    for (const b of batches) {
      const m = summarize(`sagaflow ${kind} chain-${b.n} (per transition)`, b.perTransitionUs, { warmup: b.warmup, repetitions: cut.repetitions, iterations: b.iterations });
      out.measurements.push(m);
      const id = `P6-steps-${kind}-${b.n}`;
      const where = kind === 'memory' ? 'MemoryStore' : 'SQLite file (WAL, synchronous FULL)';
      out.results.push(withSpread(growthRow(id, `time per transition, ${b.n}-step workflow, one saga at a time, ${where}`, 'us/transition', m.median, base), m.spreadPct));
      base ??= { id, value: m.median };
    }
  } finally {
    await runtime.close();
    await store.close();
  }
}

/** Runs P6-steps on the MemoryStore and on an SQLite file, for the ids `wanted` accepts. */
export async function measureChains(options: ChainOptions, wanted: (id: string) => boolean): Promise<GrowthOutcome> {
  const out: GrowthOutcome = { measurements: [], results: [], failures: [] };
  if (wanted('P6-steps-memory')) {
    console.log('P6: time per transition by workflow length, MemoryStore ...');
    await chainRows('memory', new MemoryStore(), options, out).catch((e: unknown) => out.failures.push(`P6-steps-memory: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`));
  }
  if (wanted('P6-steps-sqlite')) {
    console.log('P6: time per transition by workflow length, SQLite ...');
    const dir = mkdtempSync(path.join(tmpdir(), 'sagaflow-p6-'));
    try {
      await chainRows('sqlite', TypeormStore.sqlite({ file: path.join(dir, 'p6.db') }), options, out).catch((e: unknown) =>
        out.failures.push(`P6-steps-sqlite: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`),
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  return out;
}

/** Dispatch times (µs) of `probes` events, each to one waiting instance, with whatever else is parked meanwhile. */
export async function dispatchProbe(runtime: Runtime, probes: number, label: string): Promise<number[]> {
  const ids = Array.from({ length: probes }, (_, k) => `probe-${label}-${k}`);
  await Promise.all(ids.map((id) => runtime.start(waitingWorkflow, orderState(id))));
  await runtime.idle();
  const times: number[] = [];
  for (const id of ids) {
    const charged = whenCharged(id);
    const start = process.hrtime.bigint();
    await pay(runtime, id);
    times.push(usSince(start));
    await charged;
    await runtime.idle();
  }
  return times;
}

/** p50 and p99 of dispatch times, for the log. */
export function describeTimes(times: readonly number[]): string {
  const sorted = [...times].sort((a, b) => a - b);
  return `p50 ${percentile(sorted, 50).toFixed(0)} us, p99 ${percentile(sorted, 99).toFixed(0)} us over ${sorted.length} events`;
}
