/**
 * P4 (event latency), P5 (heap per waiting instance), P6 (growth) and P7 (forEach and child workflows), run one
 * after the other; see ./p4-latency, ./p5-memory, ./p6-growth and ./p7-shapes.
 */
import type { Measurement, Result } from './harness';
import { measureLatency, P4_FULL, P4_QUICK } from './p4-latency';
import { measureParked, PARKED_FULL, PARKED_QUICK } from './p5-memory';
import { CHAIN_FULL, CHAIN_QUICK, measureChains } from './p6-growth';
import { measureShapes, SHAPES_FULL, SHAPES_QUICK } from './p7-shapes';

/** What P4–P6 produced: raw measurements, result rows, failures (printed; exit code 1). */
export interface LaterOutcome {
  readonly measurements: Measurement[];
  readonly results: Result[];
  readonly failures: string[];
}

/** Runs P4, P5, P6 and P7 (the ids `wanted` accepts), with the quick sizes when `quick`. */
export async function measureP4toP6(quick: boolean, wanted: (id: string) => boolean): Promise<LaterOutcome> {
  const out: LaterOutcome = { measurements: [], results: [], failures: [] };
  const parts = [
    await measureLatency(quick ? P4_QUICK : P4_FULL, wanted),
    await measureChains(quick ? CHAIN_QUICK : CHAIN_FULL, wanted),
    await measureParked(quick ? PARKED_QUICK : PARKED_FULL, wanted),
    await measureShapes(quick ? SHAPES_QUICK : SHAPES_FULL, wanted),
  ];
  for (const part of parts) {
    out.measurements.push(...part.measurements);
    out.results.push(...part.results);
    out.failures.push(...part.failures);
  }
  return out;
}
