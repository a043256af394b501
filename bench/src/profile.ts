/**
 * Profiling driver: runs the sagaflow happy path (or, with `--fail`, the failing path; with `--group`, the
 * parallel-group workflow) many times in a row, to be run under `node --cpu-prof`.
 *
 *   npm run bench -- --quick   (builds dist/bench/src/profile.js along with the rest)
 *   cd bench && node --cpu-prof --cpu-prof-dir=/tmp/prof ../dist/bench/src/profile.js [--fail | --group] [--runs N]
 *
 * The default is 20,000 happy-path runs (100 with `--group`).
 */
import { runSagaflowGroupOnce, runSagaflowOnce } from './peers/sagaflow';

function runsFrom(argv: readonly string[], fallback: number): number {
  const index = argv.indexOf('--runs');
  if (index < 0) return fallback;
  const runs = Number(argv[index + 1]);
  if (!Number.isSafeInteger(runs) || runs < 1) throw new RangeError(`--runs needs a positive integer, got ${argv[index + 1]}`);
  return runs;
}

async function main(argv: readonly string[]): Promise<void> {
  const group = argv.includes('--group');
  const failing = argv.includes('--fail');
  const runs = runsFrom(argv, group ? 100 : 20_000);
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
