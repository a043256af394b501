/**
 * Durable throughput of the happy 5-step saga, measured in the same run as the rest:
 *
 * - **P3-sqlite-10 / P3-sqlite-100**: sagaflow on an SQLite file (`TypeormStore.sqlite`, WAL, `synchronous = FULL`,
 *   group commit), 10 and 100 sagas in flight, against {@link BareSqlite}: the bare better-sqlite3 writes those
 *   sagas need (same transactions, rows and sizes, measured from sagaflow's run just before). Target: a
 *   throughput ratio of at least 0.6.
 * - **P2-pg-10 / P2-pg-100**: sagaflow on PostgreSQL 15 (`TypeormStore.postgres`, a throwaway cluster on
 *   127.0.0.1 with fsync on, started for the run and stopped after it, also on failure), anchored on DBOS on the
 *   same cluster; plus **P2-restate-10 / P2-restate-100**, the same sagaflow throughput against Restate (see
 *   ./p2-peers). Target: at least 3× each peer's throughput.
 * - **P2-pg-100-vs-10**: sagaflow's own throughput at 100 in flight against 10 (target ≥ 2: group commit scales).
 * - **P2-workers-{1,2,4}**: 1, 2 and 4 worker processes on one database (./p2-workers): throughput must grow.
 *
 * sagaflow is measured in the steady state (./peers/sagaflow-durable): `concurrency` sagas always in flight, a
 * warm-up window, then timed windows of a fixed number of completed sagas; the time per saga is a window's wall
 * time divided by its sagas, the throughput 1e6 / (median µs per saga). The bare anchor writes a window's worth
 * of sagas between sagaflow's windows (see {@link sqliteRow}).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { TypeormStore } from '../../src/store/typeorm';
import { createDatabase, startCluster, withDatabase, type PgCluster } from '../../tests/support/postgres';
import type { AnchorName, Measurement, Result } from './harness';
import { summarize } from './harness';
import { anchorP2 } from './p2-peers';
import { measureWorkers, WORKERS_FULL, WORKERS_QUICK, type WorkersOptions } from './p2-workers';
import { BARE_SQLITE, BareSqlite } from './peers/bare-sqlite';
import { DurableSagaflow, type Windows } from './peers/sagaflow-durable';
import { STEP_COUNT } from './workload';

/** How much each durable measurement runs. */
export interface DurableOptions {
  /** Timed windows (batches) per measurement, after one untimed warm-up window of the same size. */
  readonly windows: number;
  /** Completed sagas per window, by database and concurrency. */
  readonly sagas: { readonly sqlite: Readonly<Record<number, number>>; readonly postgres: Readonly<Record<number, number>> };
  /** How long P2-workers warms up and measures. */
  readonly workers: WorkersOptions;
}

export const DURABLE_QUICK: DurableOptions = { windows: 2, sagas: { sqlite: { 10: 300, 100: 600 }, postgres: { 10: 100, 100: 200 } }, workers: WORKERS_QUICK };
export const DURABLE_FULL: DurableOptions = { windows: 7, sagas: { sqlite: { 10: 1_000, 100: 3_000 }, postgres: { 10: 500, 100: 1_000 } }, workers: WORKERS_FULL };

/** A one-line description of `options` for the bench's header. */
export function describeDurable(options: DurableOptions): string {
  const sizes = (db: 'sqlite' | 'postgres'): string => CONCURRENCIES.map((c) => `${options.sagas[db][c] ?? '?'}`).join('/');
  return `durable: warm-up + ${options.windows} windows of ${sizes('sqlite')} sagas on SQLite, ${sizes('postgres')} on PostgreSQL (${CONCURRENCIES.join('/')} in flight)`;
}

/** The concurrencies measured. */
export const CONCURRENCIES = [10, 100] as const;

/** Pooled PostgreSQL connections of the sagaflow store: its default, 10 (SAGAFLOW_BENCH_PG_POOL overrides it). */
const PG_POOL = Number(process.env.SAGAFLOW_BENCH_PG_POOL ?? 10);

/** Target of P3: sagaflow's throughput at least 0.6 of the bare writes'. */
const P3_TARGET = 0.6;

/** Target of P2-pg-100-vs-10: sagaflow's throughput at 100 in flight at least twice its throughput at 10. */
const P2_CONCURRENCY_TARGET = 2;

/** What the durable measurements produced: raw measurements, result rows, and failures (printed, exit code 1). */
export interface DurableOutcome {
  readonly measurements: Measurement[];
  readonly results: Result[];
  readonly failures: string[];
}

function round3(value: number): number {
  return Math.round(value * 1_000) / 1_000;
}

/** Sagas per second from a per-saga measurement (µs). */
function perSecond(m: Measurement): number {
  return 1e6 / m.median;
}

function windowOf(options: DurableOptions, db: 'sqlite' | 'postgres', concurrency: number): Windows {
  const size = options.sagas[db][concurrency];
  if (size === undefined || !(size >= concurrency)) throw new RangeError(`no window size for ${concurrency} concurrent sagas on ${db}`);
  return { warmup: size, size, windows: options.windows };
}

/** Per-saga statistics of timed windows. */
function windowsMeasurement(name: string, perSagaUs: readonly number[], cut: Windows): Measurement {
  return summarize(`${name} (per saga)`, perSagaUs, { warmup: cut.warmup, repetitions: cut.windows, iterations: cut.size });
}

/**
 * P3 at one concurrency. The bare anchor's batches run between sagaflow's windows (while sagaflow is held), one
 * after each window with that window's transaction size, so both sides are measured in the same stretch of
 * time: a disk that gets slower or faster during the run moves both alike.
 */
async function sqliteRow(dir: string, concurrency: number, cut: Windows): Promise<{ sagaflow: Measurement; bare: Measurement; result: Result; note: string }> {
  const sagaflow = new DurableSagaflow(TypeormStore.sqlite({ file: path.join(dir, `sagaflow-${concurrency}.db`) }));
  let bare: BareSqlite | undefined;
  try {
    await sagaflow.open();
    const writes = await sagaflow.probe();
    const anchor = new BareSqlite(path.join(dir, `bare-${concurrency}.db`), writes);
    bare = anchor;
    const bareUs: number[] = [];
    const { perSagaUs, writesPerTransaction } = await sagaflow.steady(concurrency, cut, (mark, perTransaction) => {
      const start = process.hrtime.bigint();
      anchor.batch(concurrency, cut.size, perTransaction);
      // Mark 0 ends sagaflow's warm-up; the bare batch run then is the anchor's warm-up.
      if (mark > 0) bareUs.push(Number(process.hrtime.bigint() - start) / 1_000 / cut.size);
    });
    const measured = windowsMeasurement(`sagaflow sqlite ${concurrency} in flight`, perSagaUs, cut);
    const anchorMeasured = windowsMeasurement(`${BARE_SQLITE} ${concurrency} in flight`, bareUs, cut);
    const value = perSecond(measured);
    const anchorValue = perSecond(anchorMeasured);
    return {
      sagaflow: measured,
      bare: anchorMeasured,
      note:
        `${writes.writesPerSaga} writes and ${writes.historyPerSaga} history rows per saga, ` +
        `${writesPerTransaction.toFixed(1)} writes per transaction, record ${writes.recordJson.length} B`,
      result: {
        id: `P3-sqlite-${concurrency}`,
        metric: `durable ${STEP_COUNT}-step sagas per second, SQLite file (WAL, synchronous FULL, group commit), ${concurrency} in flight`,
        unit: 'sagas/s',
        sagaflow: round3(value),
        anchor: BARE_SQLITE,
        anchorValue: round3(anchorValue),
        ratio: round3(value / anchorValue),
        better: 'higher',
        target: P3_TARGET,
      },
    };
  } finally {
    bare?.close();
    await sagaflow.close();
  }
}

async function sqliteRows(dir: string, options: DurableOptions, out: DurableOutcome): Promise<void> {
  for (const concurrency of CONCURRENCIES) {
    const id = `P3-sqlite-${concurrency}`;
    try {
      const { sagaflow, bare, result, note } = await sqliteRow(dir, concurrency, windowOf(options, 'sqlite', concurrency));
      console.log(`  ${id}: ${note}`);
      out.measurements.push(sagaflow, bare);
      out.results.push(result);
    } catch (e) {
      out.failures.push(`${id}: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
    }
  }
}

async function postgresRows(options: DurableOptions, out: DurableOutcome, wanted: (id: string) => boolean): Promise<void> {
  let cluster: PgCluster;
  try {
    cluster = await startCluster({ durable: true });
  } catch (e) {
    out.failures.push(`P2-pg: could not start PostgreSQL: ${e instanceof Error ? e.message : String(e)}`);
    return;
  }
  // Stop it whatever happens: at the end below, on Ctrl-C, and (stop is synchronous) when the process exits.
  const stop = (): void => cluster.stop();
  const interrupted = (signal: NodeJS.Signals): void => {
    stop();
    process.kill(process.pid, signal);
  };
  process.once('exit', stop);
  process.once('SIGINT', interrupted);
  process.once('SIGTERM', interrupted);
  try {
    console.log(`  PostgreSQL 15 on 127.0.0.1:${cluster.port} (fsync on), data in ${cluster.dir}`);
    for (const concurrency of CONCURRENCIES) {
      const id = `P2-pg-${concurrency}`;
      if (!wanted(id) && !wanted(`P2-restate-${concurrency}`)) continue;
      const cut = windowOf(options, 'postgres', concurrency);
      try {
        const database = `bench_${concurrency}`;
        await createDatabase(cluster.url, database);
        const sagaflow = new DurableSagaflow(TypeormStore.postgres({ url: withDatabase(cluster.url, database), poolSize: PG_POOL }));
        let measured: Measurement;
        try {
          await sagaflow.open();
          measured = windowsMeasurement(`sagaflow postgres ${concurrency} in flight`, (await sagaflow.steady(concurrency, cut)).perSagaUs, cut);
        } finally {
          await sagaflow.close();
        }
        out.measurements.push(measured);
        out.results.push({
          id,
          metric: `durable ${STEP_COUNT}-step sagas per second, PostgreSQL 15 (fsync on, pool of ${PG_POOL}), ${concurrency} in flight`,
          unit: 'sagas/s',
          sagaflow: round3(perSecond(measured)),
          anchor: null,
          anchorValue: null,
          ratio: null,
          better: 'higher',
          target: null,
        });
      } catch (e) {
        out.failures.push(`${id}: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
      }
    }
    // Concurrency: sagaflow's own throughput at 100 in flight against its throughput at 10 (target ≥ 2×).
    const [low, high] = CONCURRENCIES.map((c) => out.results.find((r) => r.id === `P2-pg-${c}`));
    if (low !== undefined && high !== undefined) {
      out.results.push({
        id: `P2-pg-${CONCURRENCIES[1]}-vs-${CONCURRENCIES[0]}`,
        metric: `durable sagas per second on PostgreSQL, ${CONCURRENCIES[1]} in flight against ${CONCURRENCIES[0]} in flight (group commit shares commits as concurrency grows)`,
        unit: 'sagas/s',
        sagaflow: high.sagaflow,
        anchor: low.id as AnchorName,
        anchorValue: low.sagaflow,
        ratio: round3(high.sagaflow / low.sagaflow),
        better: 'higher',
        target: P2_CONCURRENCY_TARGET,
      });
    }
    // The peers (DBOS on this cluster, Restate on its own storage): anchors of P2-pg, rows P2-restate (./p2-peers).
    await anchorP2(cluster.url, CONCURRENCIES, (concurrency) => windowOf(options, 'postgres', concurrency), wanted, out);
    // Scale-out: 1, 2 and 4 worker processes on one database (./p2-workers).
    if (wanted('P2-workers')) await measureWorkers(cluster.url, options.workers, out);
  } finally {
    stop();
    process.removeListener('exit', stop);
    process.removeListener('SIGINT', interrupted);
    process.removeListener('SIGTERM', interrupted);
  }
}

/**
 * Runs the durable measurements whose ids `wanted` accepts: P3 on SQLite files in a temporary directory (removed
 * afterwards), P2 on a throwaway PostgreSQL cluster.
 */
export async function measureDurable(options: DurableOptions, wanted: (id: string) => boolean): Promise<DurableOutcome> {
  const out: DurableOutcome = { measurements: [], results: [], failures: [] };
  if (wanted('P3-sqlite')) {
    const dir = mkdtempSync(path.join(tmpdir(), 'sagaflow-bench-'));
    try {
      console.log(`durable on SQLite (files in ${dir}) ...`);
      await sqliteRows(dir, options, out);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  if (wanted('P2-pg') || wanted('P2-restate') || wanted('P2-workers')) {
    console.log('durable on PostgreSQL ...');
    await postgresRows(options, out, wanted);
  }
  return out;
}
