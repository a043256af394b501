/**
 * P4: event → step resumed and persisted, as latency percentiles, against one bare commit on the same database.
 *
 * The saga is the event variant of ./waiting-saga (step 3 parks on `continueWith`, matched by order id). Sagas are
 * parked a round at a time; then, one after the other, the driver publishes an instance's event and times:
 *
 * - **publish**: until `runtime.publish` resolves. It resolves once the transition that ends the wait — the event
 *   applied to the record, with the intent to call step 3's `runHandleInfo` — is committed (see `publish` in
 *   src/runtime/saga-runtime.ts: `deliver` → `InstanceActor.post`, which resolves after `store.save`). That is the
 *   P4 row: lookup of the waiting instance through the wait index, load, transition, one commit.
 * - **handled**: until step 4's `run` starts, i.e. until `runHandleInfo`'s result (with step 4's intent) is committed
 *   too: two commits in sequence. Reported without an anchor.
 *
 * The anchor is timed between two sagaflow samples on the same database, once the previous saga has finished (so
 * nothing else is in flight): a single-row UPDATE committed in its own transaction — on SQLite a second
 * better-sqlite3 connection to sagaflow's own file (WAL, the same `synchronous = FULL`), on PostgreSQL one
 * autocommitted UPDATE through `pg` on sagaflow's database (fsync and synchronous_commit on).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { Client } from 'pg';
import { SagaRuntime, silentLogger } from '../../src';
import { TypeormStore } from '../../src/store/typeorm';
import { createDatabase, startCluster, withDatabase, type PgCluster } from '../../tests/support/postgres';
import type { AnchorName, Measurement, Result } from './harness';
import { summarize } from './harness';
import { BARE_SQLITE } from './peers/bare-sqlite';
import { orderState, pay, percentile, usSince, waitingWorkflow, whenCharged } from './waiting-saga';

/** How many samples P4 takes per database. */
export interface LatencyOptions {
  /** Untimed samples first. */
  readonly warmup: number;
  /** Timed samples. */
  readonly samples: number;
  /** Sagas parked at once before their events are published one by one. */
  readonly round: number;
  /** Whether to measure on PostgreSQL too (starts a throwaway cluster). */
  readonly postgres: boolean;
}

export const P4_QUICK: LatencyOptions = { warmup: 10, samples: 100, round: 50, postgres: true };
export const P4_FULL: LatencyOptions = { warmup: 100, samples: 1_000, round: 100, postgres: true };

/** The bare commit of a database. */
interface BareCommit {
  readonly name: AnchorName;
  commit(): Promise<void>;
  close(): Promise<void>;
}

/** The slice of better-sqlite3's API used here. */
interface Statement {
  run(...params: unknown[]): unknown;
}
interface Database {
  pragma(source: string): unknown;
  exec(source: string): unknown;
  prepare(source: string): Statement;
  transaction(fn: () => void): () => void;
  close(): void;
}
// eslint-disable-next-line @typescript-eslint/no-require-imports
const BetterSqlite3 = require('better-sqlite3') as new (file: string) => Database;

/** A second connection to sagaflow's SQLite file: one UPDATE of one row per transaction, synchronous FULL. */
function sqliteBare(file: string): BareCommit {
  const db = new BetterSqlite3(file);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.pragma('busy_timeout = 5000');
  db.exec('CREATE TABLE IF NOT EXISTS bench_bare (id INTEGER PRIMARY KEY, v INTEGER NOT NULL); INSERT OR IGNORE INTO bench_bare VALUES (1, 0);');
  const update = db.prepare('UPDATE bench_bare SET v = v + 1 WHERE id = 1');
  const commit = db.transaction(() => {
    update.run();
  });
  return {
    name: BARE_SQLITE,
    commit: () => {
      commit();
      return Promise.resolve();
    },
    close: () => {
      db.close();
      return Promise.resolve();
    },
  };
}

/** The PostgreSQL anchor's name. */
export const BARE_POSTGRES: AnchorName = 'bare-postgres';

async function postgresBare(url: string): Promise<BareCommit> {
  const client = new Client({ connectionString: url });
  await client.connect();
  await client.query('CREATE TABLE IF NOT EXISTS bench_bare (id INTEGER PRIMARY KEY, v INTEGER NOT NULL)');
  await client.query('INSERT INTO bench_bare VALUES (1, 0) ON CONFLICT DO NOTHING');
  return {
    name: BARE_POSTGRES,
    commit: async () => {
      await client.query('UPDATE bench_bare SET v = v + 1 WHERE id = 1');
    },
    close: () => client.end(),
  };
}

interface Samples {
  readonly publish: number[];
  readonly handled: number[];
  readonly bare: number[];
}

/** Parks `round` sagas at a time and publishes their events one by one; a bare commit after each saga finished. */
async function sample(runtime: SagaRuntime, bare: BareCommit, options: LatencyOptions, label: string): Promise<Samples> {
  const out: Samples = { publish: [], handled: [], bare: [] };
  const total = options.warmup + options.samples;
  for (let n = 0; n < total; ) {
    const ids = Array.from({ length: Math.min(options.round, total - n) }, (_, k) => `p4-${label}-${n + k}`);
    const handles = await Promise.all(ids.map((id) => runtime.start(waitingWorkflow, orderState(id))));
    await runtime.idle();
    for (let k = 0; k < ids.length; k++, n++) {
      const id = ids[k] as string;
      const charged = whenCharged(id);
      const start = process.hrtime.bigint();
      await pay(runtime, id);
      const publishUs = usSince(start);
      await charged;
      const handledUs = usSince(start);
      const result = await (handles[k] as (typeof handles)[number]).result();
      if (result.status !== 'completed') throw new Error(`P4 ${label}: saga ${id} ended ${result.status} (${JSON.stringify(result.error)})`);
      await runtime.idle();
      const bareStart = process.hrtime.bigint();
      await bare.commit();
      const bareUs = usSince(bareStart);
      if (n < options.warmup) continue;
      out.publish.push(publishUs);
      out.handled.push(handledUs);
      out.bare.push(bareUs);
    }
  }
  return out;
}

function round3(value: number): number {
  return Math.round(value * 1_000) / 1_000;
}

/** What P4 produced for one database. */
export interface LatencyOutcome {
  readonly measurements: Measurement[];
  readonly results: Result[];
  readonly failures: string[];
}

function rows(db: 'sqlite' | 'pg', where: string, bare: AnchorName, s: Samples): { results: Result[]; measurements: Measurement[]; note: string } {
  const sorted = (values: readonly number[]): number[] => [...values].sort((a, b) => a - b);
  const [publish, handled, anchor] = [sorted(s.publish), sorted(s.handled), sorted(s.bare)];
  const options = { warmup: 0, repetitions: publish.length, iterations: 1 };
  const results: Result[] = [];
  for (const p of [50, 99]) {
    const value = percentile(publish, p);
    const anchorValue = percentile(anchor, p);
    results.push({
      id: `P4-${db}-p${p}`,
      metric: `event → waiting step resumed and persisted (publish resolves), p${p}, ${where}`,
      unit: 'us',
      sagaflow: round3(value),
      anchor: bare,
      anchorValue: round3(anchorValue),
      ratio: round3(value / anchorValue),
      better: 'lower',
      // The target is on the tail: p99 at most 3× one commit; p50 keeps the tighter 2×.
      target: p === 99 ? 3 : 2,
    });
  }
  results.push({
    id: `P4-${db}-handled-p99`,
    metric: `event → runHandleInfo's result committed (two commits in sequence), p99, ${where}`,
    unit: 'us',
    sagaflow: round3(percentile(handled, 99)),
    anchor: null,
    anchorValue: null,
    ratio: null,
    better: 'lower',
    target: null,
  });
  const name = `sagaflow ${db}`;
  return {
    results,
    // As "per call" statistics: each sample is one call (median = p50; min and max over the samples).
    measurements: [summarize(`${name} publish (per event)`, publish, options), summarize(`${name} handled (per event)`, handled, options), summarize(`${bare} one commit`, anchor, options)],
    note: `${publish.length} samples; publish p50/p99 ${percentile(publish, 50).toFixed(0)}/${percentile(publish, 99).toFixed(0)} us, handled ${percentile(handled, 50).toFixed(0)}/${percentile(handled, 99).toFixed(0)} us, one commit ${percentile(anchor, 50).toFixed(0)}/${percentile(anchor, 99).toFixed(0)} us`,
  };
}

async function onSqlite(options: LatencyOptions, out: LatencyOutcome): Promise<void> {
  const dir = mkdtempSync(path.join(tmpdir(), 'sagaflow-p4-'));
  try {
    const file = path.join(dir, 'p4.db');
    const store = TypeormStore.sqlite({ file });
    const runtime = new SagaRuntime({ store, workflows: [waitingWorkflow], logger: silentLogger });
    let bare: BareCommit | undefined;
    try {
      await store.init();
      await runtime.start();
      bare = sqliteBare(file);
      const r = rows('sqlite', 'SQLite file (WAL, synchronous FULL)', bare.name, await sample(runtime, bare, options, 'sqlite'));
      console.log(`  P4-sqlite: ${r.note}`);
      out.results.push(...r.results);
      out.measurements.push(...r.measurements);
    } finally {
      await bare?.close();
      await runtime.close();
      await store.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function onPostgres(options: LatencyOptions, out: LatencyOutcome): Promise<void> {
  let cluster: PgCluster;
  try {
    cluster = await startCluster({ durable: true });
  } catch (e) {
    out.failures.push(`P4-pg: could not start PostgreSQL: ${e instanceof Error ? e.message : String(e)}`);
    return;
  }
  const stop = (): void => cluster.stop();
  process.once('exit', stop);
  try {
    await createDatabase(cluster.url, 'bench_p4');
    const url = withDatabase(cluster.url, 'bench_p4');
    const store = TypeormStore.postgres({ url });
    const runtime = new SagaRuntime({ store, workflows: [waitingWorkflow], logger: silentLogger });
    let bare: BareCommit | undefined;
    try {
      await store.init();
      await runtime.start();
      bare = await postgresBare(url);
      const r = rows('pg', 'PostgreSQL 15 (fsync on)', bare.name, await sample(runtime, bare, options, 'pg'));
      console.log(`  P4-pg: ${r.note}`);
      out.results.push(...r.results);
      out.measurements.push(...r.measurements);
    } finally {
      await bare?.close();
      await runtime.close();
      await store.close();
    }
  } finally {
    stop();
    process.removeListener('exit', stop);
  }
}

/** Runs P4 on SQLite (and PostgreSQL when `options.postgres`), for the ids `wanted` accepts. */
export async function measureLatency(options: LatencyOptions, wanted: (id: string) => boolean): Promise<LatencyOutcome> {
  const out: LatencyOutcome = { measurements: [], results: [], failures: [] };
  if (wanted('P4-sqlite')) {
    console.log('P4: event → resumed and persisted, on SQLite ...');
    await onSqlite(options, out).catch((e: unknown) => out.failures.push(`P4-sqlite: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`));
  }
  if (options.postgres && wanted('P4-pg')) {
    console.log('P4: event → resumed and persisted, on PostgreSQL ...');
    await onPostgres(options, out).catch((e: unknown) => out.failures.push(`P4-pg: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`));
  }
  return out;
}
