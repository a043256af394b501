/**
 * Generates BENCHMARKS.md (repository root) from bench/results.json, bench/notes.json (hand-written: for a row id,
 * why its target is missed and what would close the gap) and bench/results.meta.json (how the results were made:
 * written by the bench run). The machine section is read when the report is generated.
 *
 *   npm --workspace bench run bench:report      (or: node dist/bench/src/report.js [results.json])
 *
 * `npm run bench` calls {@link writeReport} at its end, so BENCHMARKS.md always shows the last run.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Result } from './harness';
import { meetsTarget } from './harness';

/** Compiled to dist/bench/src/report.js: the repository root is three levels up. */
const ROOT = path.resolve(__dirname, '..', '..', '..');
export const DEFAULT_RESULTS = path.join(ROOT, 'bench', 'results.json');
const NOTES = path.join(ROOT, 'bench', 'notes.json');
const META = path.join(ROOT, 'bench', 'results.meta.json');
const OUTPUT = path.join(ROOT, 'BENCHMARKS.md');

/** How a results file was made. */
export interface RunMeta {
  readonly mode: 'quick' | 'full';
  /** The bench's command-line arguments. */
  readonly args: string;
  /** Wall time of the measurements, in seconds. */
  readonly seconds: number;
  /** When the run ended (ISO 8601). */
  readonly at: string;
}

/** A note of bench/notes.json: why a row misses its target, and what would close the gap. */
interface Note {
  readonly why: string;
  readonly close: string;
}

type Row = Result & { readonly spreadPct?: number };

function readJson<T>(file: string, fallback: T): T {
  if (!existsSync(file)) return fallback;
  return JSON.parse(readFileSync(file, 'utf8')) as T;
}

function num(value: number | null, digits = 3): string {
  if (value === null) return '—';
  const abs = Math.abs(value);
  const d = abs >= 1_000 ? 0 : abs >= 100 ? 1 : digits;
  return value.toLocaleString('en-US', { minimumFractionDigits: d, maximumFractionDigits: d });
}

function cell(text: string): string {
  return text.replace(/\|/g, '\\|');
}

function met(row: Row): 'yes' | 'no' | '—' {
  if (row.ratio === null || row.target === null) return '—';
  return meetsTarget(row.ratio, row.better, row.target) ? 'yes' : 'no';
}

function machine(): string[] {
  const cpus = os.cpus();
  const model = cpus[0]?.model.trim() ?? 'unknown CPU';
  return [
    `- CPU: ${cpus.length} × ${model}`,
    `- memory: ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB`,
    `- OS: ${os.type()} ${os.release()} (${os.platform()}/${os.arch()})`,
    `- Node.js: ${process.version}`,
    '- storage: SQLite files and the PostgreSQL cluster live in the OS temporary directory (`os.tmpdir()`)',
  ];
}

const METHOD = [
  'Every number comes from one run of `npm run bench`, which measures sagaflow and each anchor in the same process',
  'and the same stretch of time; a ratio is sagaflow / anchor. Nothing is installed at run time; PostgreSQL 15 runs as',
  'a throwaway cluster on 127.0.0.1 (fsync on), SQLite files use WAL with `synchronous = FULL`.',
  '',
  '- **P1** in memory (MemoryStore): time per 5-step saga, happy and failing (step 4 fails, earlier steps compensated),',
  '  against node-sagas on the same step functions (targets: happy ≤ 10×, failing ≤ 1×). Warm-up, then timed batches of',
  '  sequential calls; median of the batches (spread = (max − min) / median).',
  '- **P2** durable on PostgreSQL, 10 and 100 sagas in flight: sagas per second, against DBOS (target ≥ 3×) and Restate',
  '  (≥ 2×) when present; P2-pg-100-vs-10 is sagaflow at 100 in flight against itself at 10 (≥ 2×: group commit shares',
  '  commits as concurrency grows); P2-workers-{1,2,4} fork 1, 2 and 4 worker processes on one database, 50 sagas in',
  '  flight each, and count the sagas they complete in the same timed stretch (more workers must give more: ≥ 1.1×).',
  '- **P3** durable on an SQLite file: sagas per second against the bare better-sqlite3 writes those sagas need (same',
  '  transactions, rows and sizes), the bare batches run between sagaflow\'s windows (target ≥ 0.6).',
  '- **P4** event → waiting step resumed and persisted: sagas of the event variant park on `continueWith` at step 3',
  '  (matched by order id); the driver publishes one event at a time and times until `runtime.publish` resolves (the',
  '  transition ending the wait is committed). Anchor: one single-row UPDATE committed in its own transaction on the',
  '  same database, timed between sagaflow samples. p50 (target ≤ 2×) and p99 (≤ 3×); `handled` rows time until the handler\'s result is',
  '  committed too (two commits in sequence).',
  '- **P5** heap per waiting instance: sagas parked on distinct correlation keys on the SQLite store, 1,000 then',
  '  100,000 (5,000 with `--quick`), `runtime.idle()` and two forced GCs (`--expose-gc`) at each: the heap\'s growth',
  '  between the two readings / the instances parked between them. Target ≤ 1,024 bytes.',
  '  One of them is then resumed by its event and must complete.',
  '- **P6** growth: time per transition of 10-, 100- and 1,000-step workflows, one saga at a time, lengths interleaved',
  '  batch by batch (MemoryStore and SQLite); and event dispatch time (p50) with 1k, 10k and 100k instances waiting',
  '  (the P5 population). The smallest size has no anchor; the others are compared with it (target ≤ 1.5: flat).',
  '- **P7** shapes no peer has, sagaflow alone (no anchor): one forEach of 10,000 single-step items (time per item), and',
  '  a parent saga of two steps around a 3-step child workflow (time per parent saga), on the MemoryStore and on SQLite.',
  '',
  'Considered and not measured: Node\'s built-in `node:sqlite` as the embedded store\'s driver (no native build at',
  'install). It needs Node 22.5 or newer (it was experimental there); sagaflow\'s `engines` floor and this machine are',
  'Node 20, where it does not exist, so it can be neither the default nor measured here. better-sqlite3 stays the',
  'embedded driver, an optional peer dependency.',
];

/** Writes BENCHMARKS.md from `resultsFile` (and `meta`, saved next to it for later regenerations); returns its path. */
export function writeReport(resultsFile = DEFAULT_RESULTS, meta?: RunMeta): string {
  if (meta !== undefined) writeFileSync(META, `${JSON.stringify(meta, null, 2)}\n`);
  const rows = readJson<Row[]>(resultsFile, []);
  const notes = readJson<Record<string, Note>>(NOTES, {});
  const run = meta ?? readJson<RunMeta | undefined>(META, undefined);
  const lines: string[] = [
    '# sagaflow benchmarks',
    '',
    '<!-- Generated by bench/src/report.ts from bench/results.json and bench/notes.json: do not edit by hand. -->',
    '',
    '## Method',
    '',
    ...METHOD,
    '',
    '## Machine',
    '',
    ...machine(),
    '',
    '## Results',
    '',
    run === undefined
      ? `From \`${path.relative(ROOT, resultsFile)}\`.`
      : `A ${run.mode} run (\`npm run bench${run.args === '' ? '' : ` -- ${run.args}`}\`) that ended ${run.at}, measured in ${run.seconds.toFixed(0)} s.`,
    '',
    '| id | metric | unit | sagaflow | spread | anchor | anchor value | ratio | target | met? |',
    '|---|---|---|--:|--:|---|--:|--:|--:|:-:|',
  ];
  for (const row of rows) {
    const target = row.target === null ? '—' : `${row.better === 'lower' ? '≤' : '≥'} ${row.target}`;
    const spread = row.spreadPct === undefined ? '—' : `${row.spreadPct.toFixed(1)}%`;
    const mark = met(row);
    lines.push(
      `| ${row.id} | ${cell(row.metric)} | ${row.unit} | ${num(row.sagaflow)} | ${spread} | ${row.anchor ?? '—'} | ${num(row.anchorValue)} | ${row.ratio === null ? '—' : row.ratio.toFixed(2)} | ${target} | ${mark === 'no' ? '**no**' : mark} |`,
    );
  }
  lines.push(
    '',
    'sagaflow and anchor values are medians over the timed batches (P1, P2, P3, P6-steps), percentiles over single',
    'samples (P4, P6-dispatch), or one reading (P5). The raw per-batch statistics (min, max) are printed by the run.',
    '',
  );
  const missed = rows.filter((row) => met(row) === 'no' || (row.id === 'P5-heap-per-waiting' && row.sagaflow > 1_024));
  lines.push('## Targets missed', '');
  if (missed.length === 0) lines.push('None in this run.', '');
  for (const row of missed) {
    const note = notes[row.id] ?? notes[row.id.replace(/-[^-]+$/, '-*')];
    const got = row.ratio === null ? `${num(row.sagaflow)} ${row.unit}` : `ratio ${row.ratio.toFixed(2)} against ${row.better === 'lower' ? '≤' : '≥'} ${row.target}`;
    lines.push(`### ${row.id}: ${got}`, '');
    if (note === undefined) lines.push('*No note yet: add one for this id to bench/notes.json.*', '');
    else lines.push(`**Why:** ${note.why}`, '', `**What would close it:** ${note.close}`, '');
  }
  lines.push(
    '## Reproduce',
    '',
    '```sh',
    'npm install                      # the library and the bench workspace (bench/)',
    'npm run bench                    # full run: builds, measures, writes bench/results.json and this file',
    'npm run bench -- --quick         # smoke run, under 2 minutes',
    'npm run bench -- --only P4,P6    # only the ids starting with these',
    'npm --workspace bench run bench:report   # regenerate this file from bench/results.json',
    '```',
    '',
    'PostgreSQL 15 server programs are needed for P2 and P4-pg (Debian: `apt-get install -y postgresql-15`, or',
    '`SAGAFLOW_PG_BIN`). Notes on missed targets are kept by hand in `bench/notes.json` (`{ "<row id>": { "why", "close" } }`).',
    '',
  );
  writeFileSync(OUTPUT, lines.join('\n'));
  return OUTPUT;
}

if (require.main === module) {
  const file = process.argv[2] === undefined ? DEFAULT_RESULTS : path.resolve(process.argv[2]);
  console.log(`wrote ${writeReport(file)}`);
}
