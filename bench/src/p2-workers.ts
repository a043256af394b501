/**
 * P2-workers: scale-out. 1, 2 and 4 worker processes (./p2-worker, forked) share one PostgreSQL database, each a
 * sagaflow runtime keeping {@link PER_WORKER} happy 5-step sagas in flight with its own pool; all start together,
 * warm up, then count the sagas they complete in the same timed stretch. The throughput is their sum per second.
 * P2-workers-1 has no anchor; 2 and 4 workers are compared with it (target: at least {@link GROWTH_TARGET}×, i.e.
 * throughput grows with workers).
 */
import { fork, type ChildProcess } from 'node:child_process';
import * as path from 'node:path';
import { createDatabase, withDatabase } from '../../tests/support/postgres';
import type { AnchorName, Measurement, Result } from './harness';
import { summarize } from './harness';
import { STEP_COUNT } from './workload';

/** Worker counts measured. */
export const WORKER_COUNTS = [1, 2, 4] as const;
/** Sagas each worker keeps in flight. */
export const PER_WORKER = 50;
/** Throughput with n workers at least this many times that of one worker. */
export const GROWTH_TARGET = 1.1;

/** How long each measurement runs. */
export interface WorkersOptions {
  readonly warmupMs: number;
  readonly measureMs: number;
}

export const WORKERS_QUICK: WorkersOptions = { warmupMs: 1_000, measureMs: 2_000 };
export const WORKERS_FULL: WorkersOptions = { warmupMs: 3_000, measureMs: 8_000 };

function round3(value: number): number {
  return Math.round(value * 1_000) / 1_000;
}

function once<T>(child: ChildProcess, pick: (message: unknown) => T | undefined): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onMessage = (message: unknown): void => {
      const value = pick(message);
      if (value === undefined) return;
      child.off('message', onMessage);
      child.off('exit', onExit);
      resolve(value);
    };
    const onExit = (code: number | null): void => reject(new Error(`a P2 worker exited (code ${code}) before answering`));
    child.on('message', onMessage);
    child.once('exit', onExit);
  });
}

/** Sagas per second of `workers` processes on database `url`. */
async function throughput(url: string, workers: number, options: WorkersOptions): Promise<number> {
  const script = path.join(__dirname, 'p2-worker.js');
  const children = Array.from({ length: workers }, () =>
    fork(script, [], { env: { ...process.env, SAGAFLOW_BENCH_PG_URL: url, SAGAFLOW_BENCH_INFLIGHT: String(PER_WORKER) }, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }),
  );
  try {
    await Promise.all(children.map((c) => once(c, (m) => ((m as { ready?: boolean }).ready === true ? true : undefined))));
    const counts = children.map((c) => once(c, (m) => (m as { done?: number }).done));
    for (const c of children) c.send({ go: options });
    const done = await Promise.all(counts);
    return done.reduce((a, b) => a + b, 0) / (options.measureMs / 1_000);
  } finally {
    await Promise.all(children.map((c) => (c.exitCode !== null ? Promise.resolve() : new Promise<void>((resolve) => c.once('exit', () => resolve())))));
  }
}

/** What P2-workers produced. */
export interface WorkersOutcome {
  readonly measurements: Measurement[];
  readonly results: Result[];
  readonly failures: string[];
}

/** Measures 1, 2 and 4 workers on the cluster at `clusterUrl` (a fresh database each). */
export async function measureWorkers(clusterUrl: string, options: WorkersOptions, out: WorkersOutcome): Promise<void> {
  let base: { id: string; value: number } | undefined;
  for (const workers of WORKER_COUNTS) {
    const id = `P2-workers-${workers}`;
    try {
      const database = `bench_workers_${workers}`;
      await createDatabase(clusterUrl, database);
      const value = await throughput(withDatabase(clusterUrl, database), workers, options);
      out.measurements.push(summarize(`sagaflow postgres ${workers} worker process(es), ${PER_WORKER} in flight each (sagas/s)`, [value], { warmup: 0, repetitions: 1, iterations: 1 }));
      const metric = `durable ${STEP_COUNT}-step sagas per second, PostgreSQL 15 (fsync on), ${workers} worker process${workers === 1 ? '' : 'es'} on one database, ${PER_WORKER} in flight each`;
      out.results.push(
        base === undefined
          ? { id, metric, unit: 'sagas/s', sagaflow: round3(value), anchor: null, anchorValue: null, ratio: null, better: 'higher', target: null }
          : { id, metric, unit: 'sagas/s', sagaflow: round3(value), anchor: base.id as AnchorName, anchorValue: round3(base.value), ratio: round3(value / base.value), better: 'higher', target: GROWTH_TARGET },
      );
      base ??= { id, value };
    } catch (e) {
      out.failures.push(`${id}: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
    }
  }
}
