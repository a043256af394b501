/**
 * Profiling driver: runs the sagaflow happy path (or, with `--fail`, the failing path; with `--group`, the
 * parallel-group workflow) many times in a row, to be run under `node --cpu-prof`. With `--pg` it runs the P2
 * workload instead: the happy saga durable on a throwaway PostgreSQL 15 cluster (fsync on), `--inflight N`
 * (default 100) sagas in flight, `--runs` completed sagas in all; `--sqlite` the same on an SQLite file (P3).
 *
 *   npm run bench -- --quick   (builds dist/bench/src/profile.js along with the rest)
 *   cd bench && node --cpu-prof --cpu-prof-dir=/tmp/prof ../dist/bench/src/profile.js [--fail | --group | --pg] [--runs N]
 *
 * The default is 20,000 happy-path runs (100 with `--group`, 3,000 with `--pg`). With `--pg`, `PG_WAL=1` prints the
 * WAL bytes written per completed saga (pg_current_wal_lsn before and after the run).
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { Client } from 'pg';
import { TypeormStore } from '../../src/store/typeorm';
import { createDatabase, startCluster, withDatabase } from '../../tests/support/postgres';
import { runSagaflowGroupOnce, runSagaflowOnce } from './peers/sagaflow';
import { DurableSagaflow } from './peers/sagaflow-durable';

function intOption(argv: readonly string[], name: string, fallback: number): number {
  const index = argv.indexOf(name);
  if (index < 0) return fallback;
  const value = Number(argv[index + 1]);
  if (!Number.isSafeInteger(value) || value < 1) throw new RangeError(`${name} needs a positive integer, got ${argv[index + 1]}`);
  return value;
}

/** Runs the happy saga on `store` with `inflight` in flight until `runs` have completed, and says how fast it went. */
async function steadyRun(label: string, store: TypeormStore, runs: number, inflight: number): Promise<void> {
  const sagaflow = new DurableSagaflow(store);
  await sagaflow.open();
  try {
    const start = process.hrtime.bigint();
    await sagaflow.steady(inflight, { warmup: Math.min(runs, inflight), size: runs, windows: 1 });
    const seconds = Number(process.hrtime.bigint() - start) / 1e9;
    console.log(`sagaflow on ${label}, ${inflight} in flight: ${runs} sagas in ${seconds.toFixed(2)} s, ${(runs / seconds).toFixed(0)} sagas/s; ${JSON.stringify(sagaflow.stats)}`);
  } finally {
    await sagaflow.close();
  }
}

/**
 * The P2 workload on PostgreSQL. `PG_LANES` and `PG_BATCH` set the store's `writeConnections` and `maxBatch`;
 * `PG_LOG` prints the server's deadlock reports.
 */
async function profilePostgres(runs: number, inflight: number): Promise<void> {
  const cluster = await startCluster({ durable: true });
  try {
    await createDatabase(cluster.url, 'profile');
    const { PG_LANES, PG_BATCH } = process.env;
    const tuning = { ...(PG_LANES === undefined ? {} : { writeConnections: Number(PG_LANES) }), ...(PG_BATCH === undefined ? {} : { maxBatch: Number(PG_BATCH) }) };
    const url = withDatabase(cluster.url, 'profile');
    const store = TypeormStore.postgres({ url, ...tuning });
    await store.init();
    // The WAL written per completed saga (PG_WAL): what a transition rewrites, from the LSN before and after the run.
    const wal = process.env.PG_WAL === undefined ? undefined : new Client({ connectionString: url });
    await wal?.connect();
    const lsn = async (): Promise<string> => String(((await wal?.query<{ lsn: string }>('SELECT pg_current_wal_lsn()::text AS lsn'))?.rows[0] as { lsn: string }).lsn);
    const before = wal === undefined ? '' : await lsn();
    await steadyRun('PostgreSQL', store, runs, inflight);
    if (wal !== undefined) {
      const after = await lsn();
      const { rows } = await wal.query<{ bytes: string; sagas: string }>(
        "SELECT pg_wal_lsn_diff($2::pg_lsn, $1::pg_lsn)::text AS bytes, (SELECT count(*) FROM sagaflow_instances WHERE status = 'completed')::text AS sagas",
        [before, after],
      );
      const { bytes, sagas } = rows[0] as { bytes: string; sagas: string };
      console.log(`WAL: ${bytes} bytes for ${sagas} completed sagas, ${(Number(bytes) / Number(sagas) / 1024).toFixed(2)} KB per saga`);
      await wal.end();
    }
  } finally {
    if (process.env.PG_LOG !== undefined) {
      const log = readFileSync(path.join(cluster.dir, 'server.log'), 'utf8').split('\n');
      console.log(log.filter((l) => /deadlock|DETAIL|Process \d+|CONTEXT|STATEMENT/.test(l)).slice(0, 40).join('\n'));
    }
    cluster.stop();
  }
}

/** The P3 workload: the happy saga durable on an SQLite file. */
async function profileSqlite(runs: number, inflight: number): Promise<void> {
  const dir = mkdtempSync(path.join(tmpdir(), 'sagaflow-profile-'));
  try {
    await steadyRun('SQLite', TypeormStore.sqlite({ file: path.join(dir, 'profile.db') }), runs, inflight);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function main(argv: readonly string[]): Promise<void> {
  if (argv.includes('--sqlite')) {
    await profileSqlite(intOption(argv, '--runs', 10_000), intOption(argv, '--inflight', 100));
    return;
  }
  if (argv.includes('--pg')) {
    await profilePostgres(intOption(argv, '--runs', 3_000), intOption(argv, '--inflight', 100));
    return;
  }
  const group = argv.includes('--group');
  const failing = argv.includes('--fail');
  const runs = intOption(argv, '--runs', group ? 100 : 20_000);
  const what = group ? 'parallel group' : failing ? 'failing path' : 'happy path';
  const start = process.hrtime.bigint();
  for (let i = 0; i < runs; i++) await (group ? runSagaflowGroupOnce() : runSagaflowOnce(failing));
  const elapsedUs = Number(process.hrtime.bigint() - start) / 1_000;
  const heapMb = process.memoryUsage().heapUsed / 2 ** 20;
  console.log(
    `sagaflow ${what}: ${runs} runs in ${(elapsedUs / 1e6).toFixed(2)} s, ${(elapsedUs / runs).toFixed(1)} us/run, heap ${heapMb.toFixed(0)} MB`,
  );
}

main(process.argv.slice(2)).catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
