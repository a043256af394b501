/** A small measurement harness: warm-up, timed batches of sequential calls, summary statistics, tables. */

export interface MeasureOptions {
  /** Untimed calls before measuring (lets the JIT settle). */
  readonly warmup: number;
  /** Number of timed batches. */
  readonly repetitions: number;
  /** Sequential calls per timed batch. */
  readonly iterations: number;
  /**
   * When set (the quick run): fewer calls per batch for a slow `fn`, so that a batch lasts about this many
   * milliseconds (at least 50 calls), judged from the warm-up's time per call; never more than `iterations`.
   * The measurement's `options` say how many calls were made.
   */
  readonly batchMs?: number;
}

/** Per-call time statistics over the timed batches, in microseconds. */
export interface Measurement {
  readonly name: string;
  /** Median over the batches of the mean per-call time. */
  readonly median: number;
  readonly min: number;
  readonly max: number;
  /** (max - min) / median, in percent. */
  readonly spreadPct: number;
  readonly options: MeasureOptions;
}

/**
 * The anchors we compare against: peers, bare database writes, or (for growth rows) sagaflow's own value at the
 * smallest size (`"<id of that row>"`).
 */
export type AnchorName = 'node-sagas' | 'bare-sqlite' | 'bare-postgres' | 'DBOS' | 'Restate' | `P2-${string}` | `P6-${string}`;

/** One entry of bench/results.json that is compared against an anchor. */
export interface AnchoredResult {
  readonly id: string;
  readonly metric: string;
  readonly unit: string;
  readonly sagaflow: number;
  readonly anchor: AnchorName;
  readonly anchorValue: number;
  /** sagaflow / anchorValue. */
  readonly ratio: number;
  readonly better: 'higher' | 'lower';
  /** The ratio to reach: at most this when `better` is "lower", at least this when "higher". */
  readonly target: number;
}

/** An entry with nothing to compare against: only the sagaflow value; anchor, anchorValue, ratio and target are null. */
export type AnchorlessResult = Omit<AnchoredResult, 'anchor' | 'anchorValue' | 'ratio' | 'target'> & {
  readonly anchor: null;
  readonly anchorValue: null;
  readonly ratio: null;
  readonly target: null;
};

/** One entry of bench/results.json. */
export type Result = AnchoredResult | AnchorlessResult;

/** A table row: a {@link Result}, or an anchored one whose sagaflow side has not been measured (yet). */
export type ResultRow =
  | Result
  | (Omit<AnchoredResult, 'sagaflow' | 'ratio'> & {
      readonly sagaflow: number | null;
      readonly ratio: number | null;
    });

export const QUICK_OPTIONS: MeasureOptions = { warmup: 2_000, repetitions: 5, iterations: 5_000, batchMs: 300 };
export const FULL_OPTIONS: MeasureOptions = { warmup: 20_000, repetitions: 15, iterations: 10_000 };

/** True when `--quick` is on the command line. */
export function isQuick(argv: readonly string[] = process.argv.slice(2)): boolean {
  return argv.includes('--quick');
}

export function measureOptions(argv: readonly string[] = process.argv.slice(2)): MeasureOptions {
  return isQuick(argv) ? QUICK_OPTIONS : FULL_OPTIONS;
}

function median(sorted: readonly number[]): number {
  const mid = sorted.length >> 1;
  const upper = sorted[mid];
  if (upper === undefined) throw new RangeError('median of an empty list');
  return sorted.length % 2 === 1 ? upper : ((sorted[mid - 1] ?? upper) + upper) / 2;
}

function checkOptions(options: MeasureOptions): void {
  for (const key of ['warmup', 'repetitions', 'iterations'] as const) {
    const value = options[key];
    const min = key === 'warmup' ? 0 : 1;
    if (!Number.isSafeInteger(value) || value < min) throw new RangeError(`${key} must be an integer >= ${min}, got ${value}`);
  }
}

/**
 * Runs `fn` `options.warmup` times untimed, then `options.repetitions` batches of `options.iterations`
 * sequential awaited calls, each batch timed with `process.hrtime.bigint()`. Returns statistics of the
 * per-call time (batch time / iterations) in microseconds. Any rejection of `fn` aborts the measurement.
 */
export async function measure(name: string, fn: () => Promise<void>, options: MeasureOptions): Promise<Measurement> {
  checkOptions(options);
  const warmupStart = process.hrtime.bigint();
  for (let i = 0; i < options.warmup; i++) await fn();
  const warmupUs = Number(process.hrtime.bigint() - warmupStart) / 1_000;

  let iterations = options.iterations;
  if (options.batchMs !== undefined && options.warmup > 0) {
    const perCall = warmupUs / options.warmup;
    iterations = Math.min(iterations, Math.max(50, Math.round((options.batchMs * 1_000) / Math.max(perCall, 1e-3))));
  }
  const perCallUs: number[] = [];
  for (let r = 0; r < options.repetitions; r++) {
    const start = process.hrtime.bigint();
    for (let i = 0; i < iterations; i++) await fn();
    const elapsedNs = process.hrtime.bigint() - start;
    perCallUs.push(Number(elapsedNs) / 1_000 / iterations);
  }
  return summarize(name, perCallUs, { warmup: options.warmup, repetitions: options.repetitions, iterations });
}

/** Statistics of per-call times (µs) measured in batches described by `options`. */
export function summarize(name: string, perCallUs: readonly number[], options: MeasureOptions): Measurement {
  const sorted = [...perCallUs].sort((a, b) => a - b);
  const med = median(sorted);
  const min = sorted[0] ?? med;
  const max = sorted[sorted.length - 1] ?? med;
  return { name, median: med, min, max, spreadPct: med > 0 ? ((max - min) / med) * 100 : 0, options };
}

/**
 * `options` for a call that does `factor` times the work of a normal one: warm-up and calls per batch divided
 * by `factor` (at least 1 call per batch), the same number of batches.
 */
export function scaledOptions(options: MeasureOptions, factor: number): MeasureOptions {
  if (!(factor >= 1)) throw new RangeError(`factor must be >= 1, got ${factor}`);
  return {
    warmup: Math.ceil(options.warmup / factor),
    repetitions: options.repetitions,
    iterations: Math.max(1, Math.ceil(options.iterations / factor)),
    // A call does `factor` times the work: a batch of the same length has `factor` times fewer calls.
    ...(options.batchMs === undefined ? {} : { batchMs: options.batchMs }),
  };
}

/** `m` with its times divided by `units` (e.g. per branch rather than per call); the spread is unchanged. */
export function perUnit(m: Measurement, units: number, name = m.name): Measurement {
  if (!(units > 0)) throw new RangeError(`units must be > 0, got ${units}`);
  return { ...m, name, median: m.median / units, min: m.min / units, max: m.max / units };
}

/** Whether `ratio` meets `target` in the direction given by `better`. */
export function meetsTarget(ratio: number, better: AnchoredResult['better'], target: number): boolean {
  return better === 'lower' ? ratio <= target : ratio >= target;
}

/** Formats a number with `digits` decimals, or "-" when absent. */
export function formatNumber(value: number | null, digits = 3): string {
  if (value === null) return '-';
  if (!Number.isFinite(value)) return String(value);
  return value.toFixed(digits);
}

/** Renders an aligned text table: text columns left-aligned, numeric-looking ones right-aligned. */
export function renderTable(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = headers.map((header, c) => Math.max(header.length, ...rows.map((row) => (row[c] ?? '').length)));
  const numeric = headers.map((_, c) => rows.length > 0 && rows.every((row) => /^[-+]?[\d.]+%?$|^-$|^—$/.test(row[c] ?? '')));
  const line = (cells: readonly string[]): string =>
    widths
      .map((width, c) => {
        const cell = cells[c] ?? '';
        return numeric[c] ? cell.padStart(width) : cell.padEnd(width);
      })
      .join('  ')
      .trimEnd();
  return [line(headers), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

/** What an anchorless row shows in its anchor, anchor value, ratio, target and met? cells. */
export const NO_ANCHOR = '—';

/**
 * The results table: id, metric, unit, sagaflow, anchor, anchor value, ratio, target, met?.
 * A row without an anchor shows {@link NO_ANCHOR} in the last five; an unmeasured sagaflow side shows "-".
 */
export function formatTable(rows: readonly ResultRow[]): string {
  return renderTable(
    ['id', 'metric', 'unit', 'sagaflow', 'anchor', 'anchor value', 'ratio', 'target', 'met?'],
    rows.map((row) => {
      const head = [row.id, row.metric, row.unit, formatNumber(row.sagaflow)];
      if (row.anchor === null) return [...head, NO_ANCHOR, NO_ANCHOR, NO_ANCHOR, NO_ANCHOR, NO_ANCHOR];
      return [
        ...head,
        row.anchor,
        formatNumber(row.anchorValue),
        formatNumber(row.ratio, 2),
        `${row.better === 'lower' ? '<=' : '>='} ${formatNumber(row.target, 2)}`,
        row.ratio === null ? '-' : meetsTarget(row.ratio, row.better, row.target) ? 'yes' : 'NO',
      ];
    }),
  );
}

/** The raw measurements table: name, median, min, max, spread, batches x calls. */
export function formatMeasurements(measurements: readonly Measurement[]): string {
  return renderTable(
    ['measurement', 'median us/call', 'min', 'max', 'spread', 'batches x calls'],
    measurements.map((m) => [
      m.name,
      formatNumber(m.median),
      formatNumber(m.min),
      formatNumber(m.max),
      `${m.spreadPct.toFixed(1)}%`,
      `${m.options.repetitions} x ${m.options.iterations}`,
    ]),
  );
}
