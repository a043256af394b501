/**
 * sagaflow benchmark: the 5-step workload of ./workload run by each contender, happy and failing paths,
 * plus sagaflow alone on one parallel group of 200 single-step branches (no anchor for that one), plus the
 * durable throughput of ./durable: P3 on an SQLite file (against the bare better-sqlite3 writes) and P2 on a
 * throwaway PostgreSQL 15 cluster (against DBOS on the same cluster, and against Restate: ./p2-peers), 10 and 100
 * sagas in flight.
 *
 *   npm run bench                  (from the repository root; builds, then runs this)
 *   npm run bench -- --quick       (fewer batches and calls; under 2 minutes)
 *   npm run bench -- --out FILE    (write the results somewhere other than bench/results.json)
 *   npm run bench -- --only P2,P3  (only the measurements whose id starts with one of these)
 *
 * bench/results.json (an array of {@link Result}) is written only when sagaflow has been measured. The exit
 * code is 1 when a durable measurement failed (its row is left out; the others are written).
 */
import { writeFileSync } from 'node:fs';
import * as path from 'node:path';
import type { AnchoredResult, Measurement, MeasureOptions, Result, ResultRow } from './harness';
import { formatMeasurements, formatTable, isQuick, measure, measureOptions, perUnit, scaledOptions } from './harness';
import { describeDurable, DURABLE_FULL, DURABLE_QUICK, measureDurable } from './durable';
import { measureP4toP6 } from './p4-p6';
import { writeReport } from './report';
import { NODE_SAGAS, runNodeSagasOnce } from './peers/node-sagas';
import { GROUP_BRANCHES, runSagaflowGroupOnce, runSagaflowOnce } from './peers/sagaflow';
import { FAILING_STEP, STEP_COUNT } from './workload';

/** Runs one saga of the workload (happy or failing variant) and throws if its outcome is wrong. */
export type RunOnce = (fail: boolean) => Promise<void>;

interface Scenario {
  readonly id: string;
  readonly fail: boolean;
  readonly metric: string;
  readonly unit: string;
  readonly better: AnchoredResult['better'];
  /**
   * Target for the ratio sagaflow / node-sagas, observers and flow fields included: at most 10× on the happy path (a
   * recorded transition per step against a bare loop), no slower on the failing path (node-sagas throws there).
   */
  readonly target: number;
}

const SCENARIOS: readonly Scenario[] = [
  {
    id: 'P1-happy',
    fail: false,
    metric: `time per ${STEP_COUNT}-step saga, all steps succeed`,
    unit: 'us/saga',
    better: 'lower',
    target: 10,
  },
  {
    id: 'P1-fail',
    fail: true,
    metric: `time per ${STEP_COUNT}-step saga, step ${FAILING_STEP} fails and is compensated`,
    unit: 'us/saga',
    better: 'lower',
    target: 1.0,
  },
];

// =============================================================================================
// >>> SAGAFLOW PLUG-IN POINT <<<
// sagaflow is plugged in: bench/src/peers/sagaflow.ts exports runSagaflowOnce(fail) (the same workload
// functions from ../workload, one runtime reused across runs, the outcome checked per run) and
// runSagaflowGroupOnce() (the sagaflow-only parallel-group measurement). Return undefined below to
// measure the anchor alone.
// =============================================================================================
function sagaflowRunner(): RunOnce | undefined {
  return runSagaflowOnce;
}

/** The sagaflow-only measurement: one parallel group of {@link GROUP_BRANCHES} single-step branches, per branch. */
const GROUP_SCENARIO = {
  id: `P1-group-${GROUP_BRANCHES}`,
  metric: `time per branch, one parallel group of ${GROUP_BRANCHES} single-step branches`,
  unit: 'us/branch',
  better: 'lower',
} as const;

/**
 * Measures sagaflow on the parallel-group workflow. A call runs {@link GROUP_BRANCHES} branches, so the warm-up
 * and calls per batch are divided by that; the times are reported per branch.
 */
export async function measureSagaflowGroup(options: MeasureOptions): Promise<Measurement> {
  const perSaga = await measure(`sagaflow group-${GROUP_BRANCHES}`, runSagaflowGroupOnce, scaledOptions(options, GROUP_BRANCHES));
  return perUnit(perSaga, GROUP_BRANCHES, `sagaflow group-${GROUP_BRANCHES} (per branch)`);
}

/** Measures sagaflow on one variant; `runOnce` is injected (see the plug-in point above). */
export function measureSagaflow(fail: boolean, runOnce: RunOnce, options: MeasureOptions): Promise<Measurement> {
  return measure(`sagaflow ${fail ? 'fail' : 'happy'}`, () => runOnce(fail), options);
}

/** Measures the anchor (node-sagas) on one variant. */
export function measureAnchor(fail: boolean, options: MeasureOptions): Promise<Measurement> {
  return measure(`${NODE_SAGAS} ${fail ? 'fail' : 'happy'}`, () => runNodeSagasOnce(fail), options);
}

/** Rounds to 3 decimals (µs precision beyond that is noise) so results.json stays readable. */
function round3(value: number): number {
  return Math.round(value * 1_000) / 1_000;
}

function toRow(scenario: Scenario, anchor: Measurement, sagaflow: Measurement | undefined): ResultRow {
  return {
    id: scenario.id,
    metric: scenario.metric,
    unit: scenario.unit,
    sagaflow: sagaflow === undefined ? null : round3(sagaflow.median),
    anchor: NODE_SAGAS,
    anchorValue: round3(anchor.median),
    ratio: sagaflow === undefined ? null : round3(sagaflow.median / anchor.median),
    better: scenario.better,
    target: scenario.target,
  };
}

function groupRow(measured: Measurement): Result {
  const { id, metric, unit, better } = GROUP_SCENARIO;
  // Same key order as the anchored entries, so results.json reads alike.
  return { id, metric, unit, sagaflow: round3(measured.median), anchor: null, anchorValue: null, ratio: null, better, target: null };
}

function isResult(row: ResultRow): row is Result {
  return row.sagaflow !== null && (row.anchor === null || row.ratio !== null);
}

function outputPath(argv: readonly string[]): string {
  const index = argv.indexOf('--out');
  const given = index >= 0 ? argv[index + 1] : undefined;
  if (index >= 0 && (given === undefined || given.startsWith('--'))) throw new Error('--out needs a file path');
  // Compiled to dist/bench/src/main.js; the default is bench/results.json in the source tree.
  return given === undefined ? path.resolve(__dirname, '..', '..', '..', 'bench', 'results.json') : path.resolve(given);
}

/** `--only P2,P3`: a test of measurement ids (by prefix); without it, every id passes. */
function onlyFilter(argv: readonly string[]): (id: string) => boolean {
  const index = argv.indexOf('--only');
  if (index < 0) return () => true;
  const given = argv[index + 1];
  if (given === undefined || given.startsWith('--')) throw new Error('--only needs a comma-separated list of id prefixes, e.g. P2,P3');
  const prefixes = given.split(',').map((p) => p.trim()).filter((p) => p.length > 0);
  // An id is wanted when it starts with a prefix, or (for a family like "P3-sqlite") a prefix starts with it.
  return (id) => prefixes.some((p) => id.startsWith(p) || p.startsWith(id));
}

async function main(argv: readonly string[]): Promise<void> {
  const started = process.hrtime.bigint();
  const options = measureOptions(argv);
  const durableOptions = isQuick(argv) ? DURABLE_QUICK : DURABLE_FULL;
  const out = outputPath(argv);
  const wanted = onlyFilter(argv);
  const sagaflow = sagaflowRunner();
  console.log(
    `sagaflow bench (${isQuick(argv) ? 'quick' : 'full'}): node ${process.version}, ` +
      `${options.warmup} warm-up calls, ${options.repetitions} batches x ${options.iterations} calls per measurement` +
      `${options.batchMs === undefined ? '' : ` (fewer for slow calls: about ${options.batchMs} ms per batch)`}; ` +
      describeDurable(durableOptions),
  );

  const measurements: Measurement[] = [];
  const rows: ResultRow[] = [];
  for (const scenario of SCENARIOS) {
    if (!wanted(scenario.id)) continue;
    const anchor = await measureAnchor(scenario.fail, options);
    measurements.push(anchor);
    let measured: Measurement | undefined;
    if (sagaflow !== undefined) {
      measured = await measureSagaflow(scenario.fail, sagaflow, options);
      measurements.push(measured);
    }
    rows.push(toRow(scenario, anchor, measured));
  }
  if (sagaflow !== undefined && wanted(GROUP_SCENARIO.id)) {
    const group = await measureSagaflowGroup(options);
    measurements.push(group);
    rows.push(groupRow(group));
  }
  let failures: string[] = [];
  if (sagaflow !== undefined) {
    const durable = await measureDurable(durableOptions, wanted);
    measurements.push(...durable.measurements);
    rows.push(...durable.results);
    failures = durable.failures;
    const later = await measureP4toP6(isQuick(argv), wanted);
    measurements.push(...later.measurements);
    rows.push(...later.results);
    failures.push(...later.failures);
  }

  console.log(`\n${formatMeasurements(measurements)}\n\n${formatTable(rows)}\n`);
  for (const failure of failures) console.error(`✗ not measured: ${failure}`);
  if (failures.length > 0) process.exitCode = 1;

  const results = rows.filter(isResult);
  if (results.length === 0) {
    console.log('sagaflow not plugged in yet (see SAGAFLOW PLUG-IN POINT in bench/src/main.ts): results not written.');
    return;
  }
  writeFileSync(out, `${JSON.stringify(results, null, 2)}\n`);
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  console.log(`wrote ${results.length} results to ${out} (measured in ${seconds.toFixed(1)} s)`);
  const report = writeReport(out, { mode: isQuick(argv) ? 'quick' : 'full', args: argv.join(' '), seconds, at: new Date().toISOString() });
  console.log(`wrote ${report}`);
}

main(process.argv.slice(2)).catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
