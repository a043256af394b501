/**
 * P5: heap per waiting instance — and, on the same parked population, P6's dispatch growth.
 *
 * One runtime on an SQLite file (`TypeormStore.sqlite`, the durable store). After a warm-up (sagas parked,
 * resumed and finished, so that code and statement caches are warm) and a forced GC (`node --expose-gc`, which
 * `npm run bench` passes), the heap is read; then sagas of the event variant (./waiting-saga: step 3 parks on
 * `continueWith`, each on its own order id) are started until `sizes` of them wait, `runtime.idle()` each time.
 *
 * - **P5-heap-per-waiting**: the heap's growth per instance parked between the smallest size and the largest
 *   (1,000 and 100,000; 5,000 with `--quick`), each read after two forced GCs: (heapUsed at the largest −
 *   heapUsed at the smallest) / instances parked in between. Taking the slope, not the growth from the warm-up's
 *   baseline, keeps what the warm-up left for the collector (a few MB, freed later) out of a figure of a few bytes
 *   per instance: measured from the baseline, it came out negative. Target ≤ 1 KB each, no anchor. The driver keeps
 *   no handle of them.
 *   At the end one of the first parked sagas is resumed by its event and must complete.
 * - **P6-dispatch-{1k,10k,100k}**: at each size, `probes` more sagas are parked, then their events are published one
 *   at a time: the time until `publish` resolves (the waiting instance found through the wait index, its
 *   transition committed). The 1k row has no anchor; the others are compared with it (target ≤ 1.5: flat).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { SagaRuntime, silentLogger } from '../../src';
import { TypeormStore } from '../../src/store/typeorm';
import type { Measurement } from './harness';
import { summarize } from './harness';
import { describeTimes, dispatchProbe, growthRow, type GrowthOutcome } from './p6-growth';
import { orderState, pay, percentile, waitingWorkflow, whenCharged } from './waiting-saga';

/** How far the parked population grows, and how many dispatches are timed at each size. */
export interface ParkedOptions {
  /** Population sizes, increasing; P5 is read at the last. */
  readonly sizes: readonly number[];
  /** Events timed at each size. */
  readonly probes: number;
  /** Sagas started at once while the population grows. */
  readonly chunk: number;
}

export const PARKED_QUICK: ParkedOptions = { sizes: [1_000, 5_000], probes: 50, chunk: 500 };
export const PARKED_FULL: ParkedOptions = { sizes: [1_000, 10_000, 100_000], probes: 300, chunk: 1_000 };

/** P5 target: bytes of heap per waiting instance. */
const P5_TARGET_BYTES = 1_024;

function gc(): void {
  const collect = (globalThis as { gc?: () => void }).gc;
  if (collect === undefined) throw new Error('P5 needs a forced GC: run node with --expose-gc (npm run bench does)');
  collect();
  collect();
}

function label(size: number): string {
  return size % 1_000 === 0 ? `${size / 1_000}k` : String(size);
}

/** Runs P5 and P6-dispatch (on one parked population), for the ids `wanted` accepts. */
export async function measureParked(options: ParkedOptions, wanted: (id: string) => boolean): Promise<GrowthOutcome> {
  const out: GrowthOutcome = { measurements: [], results: [], failures: [] };
  const heapWanted = wanted('P5-heap');
  const dispatchWanted = wanted('P6-dispatch');
  if (!heapWanted && !dispatchWanted) return out;
  console.log(`P5/P6: ${options.sizes.map(label).join(', ')} sagas parked on SQLite ...`);
  const dir = mkdtempSync(path.join(tmpdir(), 'sagaflow-p5-'));
  const store = TypeormStore.sqlite({ file: path.join(dir, 'p5.db') });
  const runtime = new SagaRuntime({ store, workflows: [waitingWorkflow], logger: silentLogger });
  try {
    await store.init();
    await runtime.start();
    await dispatchProbe(runtime, 200, 'warmup');
    gc();
    const baseline = process.memoryUsage();
    let parked = 0;
    let firstId: string | undefined;
    let base: { id: string; value: number } | undefined;
    let first: { parked: number; heapUsed: number } | undefined;
    const started = process.hrtime.bigint();
    for (const size of options.sizes) {
      while (parked < size) {
        const count = Math.min(options.chunk, size - parked);
        const handles = await Promise.all(Array.from({ length: count }, (_, k) => runtime.start(waitingWorkflow, orderState(`park-${parked + k}`))));
        firstId ??= handles[0]?.id;
        parked += count;
        if (parked % (options.chunk * 10) === 0) await runtime.idle();
      }
      await runtime.idle();
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      gc();
      gc();
      const heap = process.memoryUsage();
      first ??= { parked, heapUsed: heap.heapUsed };
      const perInstance = parked === first.parked ? 0 : (heap.heapUsed - first.heapUsed) / (parked - first.parked);
      console.log(
        `  ${parked} parked after ${seconds.toFixed(1)} s: heap +${((heap.heapUsed - baseline.heapUsed) / 2 ** 20).toFixed(1)} MB ` +
          `(${parked === first.parked ? 'the first size: growth is measured from here' : `${perInstance.toFixed(1)} B per instance parked since ${first.parked}`}), rss +${((heap.rss - baseline.rss) / 2 ** 20).toFixed(0)} MB`,
      );
      if (heapWanted && size === options.sizes[options.sizes.length - 1]) {
        out.results.push({
          id: 'P5-heap-per-waiting',
          metric: `heap per waiting instance: growth from ${first.parked.toLocaleString('en-US')} to ${parked.toLocaleString('en-US')} sagas parked on distinct correlation keys, SQLite store, after forced GC (target <= ${P5_TARGET_BYTES} B)`,
          unit: 'bytes',
          sagaflow: Math.round(perInstance * 10) / 10,
          anchor: null,
          anchorValue: null,
          ratio: null,
          better: 'lower',
          target: null,
        });
      }
      if (!dispatchWanted) continue;
      const times = await dispatchProbe(runtime, options.probes, label(size));
      const sorted = [...times].sort((a, b) => a - b);
      const m: Measurement = summarize(`sagaflow dispatch, ${label(size)} waiting (per event)`, sorted, { warmup: 0, repetitions: sorted.length, iterations: 1 });
      out.measurements.push(m);
      console.log(`  dispatch with ${label(size)} waiting: ${describeTimes(times)}`);
      const id = `P6-dispatch-${label(size)}`;
      const value = percentile(sorted, 50);
      out.results.push(
        growthRow(id, `event dispatch (publish to one waiting instance until committed), p50, ${label(size)} instances waiting, SQLite file`, 'us/event', value, base),
      );
      base ??= { id, value };
    }
    // The first parked saga still resumes by its event and completes.
    const charged = whenCharged('park-0');
    await pay(runtime, 'park-0');
    await charged;
    await runtime.idle();
    const status = firstId === undefined ? 'never started' : (await runtime.get(firstId)).status;
    if (status !== 'completed') throw new Error(`P5: park-0 resumed by its event ended ${status}, expected completed`);
    console.log('  park-0 resumed by its event and completed');
  } catch (e) {
    out.failures.push(`P5/P6-dispatch: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
  } finally {
    await runtime.close();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
  return out;
}
