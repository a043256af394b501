/**
 * A steady-state throughput driver for any durable contender: `concurrency` loops that each run one saga
 * (`one()`), await it, and start the next, without a break, while the driver times consecutive windows of
 * completed sagas after a warm-up window — the same cut as sagaflow's own driver (./sagaflow-durable), so
 * every contender's windows have `concurrency` sagas in flight from start to end.
 */
import { existsSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import type { Windows } from './sagaflow-durable';

/** Time per saga (µs, wall clock) of each timed window of `cut`, with `concurrency` sagas of `one` in flight. */
export async function steadyWindows(concurrency: number, cut: Windows, one: () => Promise<void>): Promise<number[]> {
  const marks = Array.from({ length: cut.windows + 1 }, (_, i) => cut.warmup + i * cut.size);
  const times: bigint[] = [];
  let done = 0;
  let stop = false;
  const loop = async (): Promise<void> => {
    try {
      while (!stop) {
        await one();
        done += 1;
        if (done !== marks[times.length]) continue;
        times.push(process.hrtime.bigint());
        if (times.length === marks.length) stop = true;
      }
    } catch (error) {
      stop = true;
      throw error;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, loop));
  return times.slice(1).map((end, i) => Number(end - (times[i] as bigint)) / 1_000 / cut.size);
}

/** The installed version of package `name` (from its package.json, found next to its entry point). */
export function packageVersion(name: string): string {
  let entry: string;
  try {
    entry = require.resolve(`${name}/package.json`);
  } catch {
    // Not exported (DBOS): walk up from the entry point.
    entry = require.resolve(name);
  }
  let dir = path.dirname(entry);
  for (;;) {
    const file = path.join(dir, 'package.json');
    if (existsSync(file)) {
      const pkg = JSON.parse(readFileSync(file, 'utf8')) as { name?: string; version?: string };
      if (pkg.name === name && pkg.version !== undefined) return pkg.version;
    }
    const parent = path.dirname(dir);
    if (parent === dir) return 'unknown';
    dir = parent;
  }
}
