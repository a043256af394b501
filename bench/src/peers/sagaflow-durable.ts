/**
 * sagaflow on a durable store: the happy 5-step saga of ./sagaflow (the same step classes and workflow) run by a
 * runtime on a `TypeormStore` — an SQLite file (group commit) or PostgreSQL — with a fixed number of sagas in
 * flight: `concurrency` loops that each start a saga, await its result, check it, and start the next. Every
 * transition is committed before the saga goes on (intent before effect).
 *
 * Throughput is measured in the steady state: the loops run without a break while the driver times
 * consecutive windows of completed sagas, after a warm-up window; so every window has `concurrency` sagas in
 * flight from its start to its end (no ramp-up or drain inside a window).
 */
import { SagaRuntime, silentLogger } from '../../../src';
import type { TypeormStore, TypeormStoreStats } from '../../../src/store/typeorm';
import { assertOutcome, EXPECTED_HAPPY, initialState } from '../workload';
import { happyWorkflow, SAGAFLOW } from './sagaflow';

/** What one saga writes (run alone, so that nothing else is in its transactions). */
export interface SagaWrites {
  /** Instance-row writes per saga (the create, then one save per transition). */
  readonly writesPerSaga: number;
  /** History rows per saga. */
  readonly historyPerSaga: number;
  /** The stored record JSON of the finished saga. */
  readonly recordJson: string;
}

/** How a steady-state run is cut: a warm-up window, then `windows` timed windows, in completed sagas. */
export interface Windows {
  readonly warmup: number;
  readonly size: number;
  readonly windows: number;
}

/**
 * Called synchronously at the end of the warm-up (`mark` 0) and of every timed window (`mark` 1…), while the
 * sagas are paused (the event loop is held), with the writes per transaction of the window that just ended.
 * Whatever it does is not counted in any window: the next window starts when it returns.
 */
export type MarkHook = (mark: number, writesPerTransaction: number) => void;

/** A runtime on `store` that runs the happy saga with a fixed number in flight. */
export class DurableSagaflow {
  private readonly runtime: SagaRuntime;
  private lastId = '';

  constructor(private readonly store: TypeormStore) {
    this.runtime = new SagaRuntime({ store, workflows: [happyWorkflow], logger: silentLogger });
  }

  /** The store's write counters. */
  get stats(): TypeormStoreStats {
    return this.store.stats;
  }

  /** Opens the store (connects, migrates) and resumes nothing (the database is fresh). */
  async open(): Promise<void> {
    await this.store.init();
    await this.runtime.start();
  }

  /** Runs one saga to its end and checks it; throws when it ends wrong. */
  private async one(): Promise<void> {
    const handle = await this.runtime.start(happyWorkflow, initialState());
    const result = await handle.result();
    if (result.status !== 'completed' || result.error !== null) {
      throw new Error(`${SAGAFLOW} (${this.store.kind}): instance ended ${result.status} (error ${JSON.stringify(result.error)})`);
    }
    assertOutcome(SAGAFLOW, `durable happy path (${this.store.kind})`, result.state, EXPECTED_HAPPY);
    this.lastId = handle.id;
  }

  /** Runs one saga alone and says what it wrote. */
  async probe(): Promise<SagaWrites> {
    const before = this.store.stats.writes;
    await this.one();
    const writesPerSaga = this.store.stats.writes - before;
    const record = await this.store.load(this.lastId);
    const history = await this.store.history(this.lastId);
    return { writesPerSaga, historyPerSaga: history.length, recordJson: JSON.stringify(record) };
  }

  /**
   * Keeps `concurrency` sagas in flight until the warm-up and every window are done; resolves with the time per
   * saga (µs, wall clock) of each timed window and the writes per transaction over the timed windows.
   */
  async steady(concurrency: number, cut: Windows, hook?: MarkHook): Promise<{ perSagaUs: number[]; writesPerTransaction: number }> {
    const marks = Array.from({ length: cut.windows + 1 }, (_, i) => cut.warmup + i * cut.size);
    const ends: bigint[] = [];
    const starts: bigint[] = [];
    const stats: TypeormStoreStats[] = [this.store.stats];
    let done = 0;
    let stop = false;
    const loop = async (): Promise<void> => {
      try {
        while (!stop) {
          await this.one();
          done += 1;
          const mark = ends.length;
          if (done !== marks[mark]) continue;
          ends.push(process.hrtime.bigint());
          const now = this.store.stats;
          const prior = stats[stats.length - 1] as TypeormStoreStats;
          stats.push(now);
          hook?.(mark, (now.writes - prior.writes) / Math.max(1, now.transactions - prior.transactions));
          starts.push(process.hrtime.bigint());
          if (ends.length === marks.length) stop = true;
        }
      } catch (error) {
        stop = true;
        throw error;
      }
    };
    await Promise.all(Array.from({ length: concurrency }, loop));
    // Window i runs from the start after mark i to the end at mark i + 1.
    const perSagaUs = starts.slice(0, -1).map((start, i) => Number((ends[i + 1] as bigint) - start) / 1_000 / cut.size);
    const [first, last] = [stats[1], stats[stats.length - 1]];
    if (first === undefined || last === undefined || last.transactions === first.transactions) throw new Error(`${SAGAFLOW}: nothing measured on ${this.store.kind}`);
    return { perSagaUs, writesPerTransaction: (last.writes - first.writes) / (last.transactions - first.transactions) };
  }

  /**
   * Keeps `concurrency` sagas in flight for `warmupMs` and then `measureMs` (wall clock); resolves with the sagas
   * completed within the timed stretch, once every saga in flight has ended.
   */
  async runFor(concurrency: number, warmupMs: number, measureMs: number): Promise<number> {
    const start = Date.now();
    const from = start + warmupMs;
    const until = from + measureMs;
    let counted = 0;
    const loop = async (): Promise<void> => {
      while (Date.now() < until) {
        await this.one();
        const now = Date.now();
        if (now >= from && now < until) counted += 1;
      }
    };
    await Promise.all(Array.from({ length: concurrency }, loop));
    return counted;
  }

  /** Closes the runtime and the store. */
  async close(): Promise<void> {
    await this.runtime.close();
    await this.store.close();
  }
}
