/**
 * P2's anchors, measured in the same run and on the same machine as sagaflow's P2 rows (./durable):
 *
 * - **P2-pg-10 / P2-pg-100** are anchored on DBOS (./peers/dbos), whose system database is a database of the
 *   same throwaway PostgreSQL cluster (fsync on) as sagaflow's store.
 * - **P2-restate-10 / P2-restate-100** (added here) put the same sagaflow-on-PostgreSQL throughput against
 *   Restate (./peers/restate): its server from the npm package on loopback, the workflow served by this process.
 *
 * Each peer runs the happy 5-step saga of ./workload (every step a durable step of that system), with the same
 * steady-state cut as sagaflow (warm-up window, then timed windows of completed sagas, `concurrency` in flight;
 * ./peers/steady). A peer that cannot run leaves its rows with `anchor: null` and prints why; it does not fail
 * the run.
 */
import type { Measurement, Result } from './harness';
import { isQuick, summarize } from './harness';
import { DBOS_NAME, DbosPeer, dbosVersion } from './peers/dbos';
import { RESTATE_NAME, RestatePeer, restateVersions } from './peers/restate';
import type { Windows } from './peers/sagaflow-durable';
import { steadyWindows } from './peers/steady';

/** Target of P2 against each peer: sagaflow's throughput at least 3× the peer's. */
export const P2_TARGET = 3;
/** Target of the P2-restate rows: at least 2× Restate's throughput. */
export const P2_RESTATE_TARGET = 2;

/** Where the rows go (the shape of ./durable's outcome). */
export interface P2Outcome {
  readonly measurements: Measurement[];
  readonly results: Result[];
}

/** DBOS's system-database pool: its default, 10, the same as sagaflow's store (SAGAFLOW_BENCH_PG_POOL overrides both). */
const DBOS_POOL = Number(process.env.SAGAFLOW_BENCH_PG_POOL ?? 10);

function round3(value: number): number {
  return Math.round(value * 1_000) / 1_000;
}

function describe(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/**
 * The peers' cut: sagaflow's, except in the quick run (`--quick`), where the warm-up and windows are half as long
 * (at least `concurrency` sagas) to keep the smoke check short; the number of windows is the same.
 */
function peerCut(concurrency: number, cut: Windows): Windows {
  if (!isQuick()) return cut;
  const half = Math.max(concurrency, Math.ceil(cut.size / 2));
  return { warmup: Math.max(concurrency, Math.ceil(cut.warmup / 2)), size: half, windows: cut.windows };
}

/** One peer's per-saga windows, summarised like sagaflow's. */
async function measurePeer(name: string, concurrency: number, sagaflowCut: Windows, one: () => Promise<void>): Promise<Measurement> {
  const cut = peerCut(concurrency, sagaflowCut);
  const perSagaUs = await steadyWindows(concurrency, cut, one);
  return summarize(`${name} ${concurrency} in flight (per saga)`, perSagaUs, { warmup: cut.warmup, repetitions: cut.windows, iterations: cut.size });
}

/** `row` anchored on `anchor` measured as `m` (per-saga µs → sagas/s). */
function anchored(row: Result, id: string, anchor: 'DBOS' | 'Restate', m: Measurement, metric: string): Result {
  if (row.sagaflow === null) throw new Error(`${row.id}: no sagaflow value`);
  const anchorValue = 1e6 / m.median;
  return {
    id,
    metric,
    unit: row.unit,
    sagaflow: row.sagaflow,
    anchor,
    anchorValue: round3(anchorValue),
    ratio: round3(row.sagaflow / anchorValue),
    better: 'higher',
    target: anchor === 'DBOS' ? P2_TARGET : P2_RESTATE_TARGET,
  };
}

function unanchored(row: Result, id: string, metric: string): Result {
  return { id, metric, unit: row.unit, sagaflow: row.sagaflow, anchor: null, anchorValue: null, ratio: null, better: 'higher', target: null };
}

/**
 * Measures the peers on the cluster at `clusterUrl` (an admin URL; DBOS gets database `dbos_bench_sys`) at each
 * of `concurrencies`, with `cutFor(concurrency)` windows, and anchors the P2-pg rows already in `out` on DBOS and
 * adds the P2-restate rows. `wanted` filters by id prefix as `--only` does.
 */
export async function anchorP2(
  clusterUrl: string,
  concurrencies: readonly number[],
  cutFor: (concurrency: number) => Windows,
  wanted: (id: string) => boolean,
  out: P2Outcome,
): Promise<void> {
  const sagaflowRow = (concurrency: number): { index: number; row: Result } | undefined => {
    const index = out.results.findIndex((r) => r.id === `P2-pg-${concurrency}`);
    const row = out.results[index];
    return row === undefined ? undefined : { index, row };
  };

  if (wanted('P2-pg')) {
    const dbos = new DbosPeer();
    let reason: string | undefined;
    try {
      const url = new URL(clusterUrl);
      url.pathname = '/dbos_bench_sys';
      await dbos.open(url.toString(), DBOS_POOL);
      console.log(`  ${DBOS_NAME} ${dbosVersion()} on the same cluster (system database dbos_bench_sys, pool of ${DBOS_POOL})`);
    } catch (e) {
      reason = `DBOS could not start: ${describe(e)}`;
    }
    try {
      for (const concurrency of concurrencies) {
        const found = sagaflowRow(concurrency);
        if (found === undefined) continue;
        if (reason !== undefined) {
          console.error(`✗ P2-pg-${concurrency}: no anchor (${reason})`);
          continue;
        }
        try {
          const m = await measurePeer(DBOS_NAME, concurrency, cutFor(concurrency), dbos.one);
          out.measurements.push(m);
          out.results[found.index] = anchored(found.row, found.row.id, 'DBOS', m, found.row.metric);
        } catch (e) {
          console.error(`✗ P2-pg-${concurrency}: no anchor (DBOS failed: ${describe(e)})`);
        }
      }
    } finally {
      try {
        await dbos.close();
      } catch (e) {
        console.error(`  DBOS shutdown failed: ${describe(e)}`);
      }
    }
  }

  if (wanted('P2-restate')) {
    const peer = new RestatePeer();
    let reason: string | undefined;
    try {
      await peer.open();
      console.log(`  ${RESTATE_NAME} (${restateVersions()}) on 127.0.0.1, its own storage (RocksDB + log, fsync on)`);
    } catch (e) {
      reason = `Restate could not start: ${describe(e)}`;
    }
    try {
      for (const concurrency of concurrencies) {
        const found = sagaflowRow(concurrency);
        if (found === undefined) continue;
        const id = `P2-restate-${concurrency}`;
        const metric = `${found.row.metric}; Restate: its server on its own storage, invoked over HTTP`;
        if (reason !== undefined) {
          console.error(`✗ ${id}: no anchor (${reason})`);
          out.results.push(unanchored(found.row, id, metric));
          continue;
        }
        try {
          const m = await measurePeer(RESTATE_NAME, concurrency, cutFor(concurrency), peer.one);
          out.measurements.push(m);
          out.results.push(anchored(found.row, id, 'Restate', m, metric));
        } catch (e) {
          console.error(`✗ ${id}: no anchor (Restate failed: ${describe(e)})`);
          out.results.push(unanchored(found.row, id, metric));
        }
      }
    } finally {
      await peer.close();
    }
  }
}
