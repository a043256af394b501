import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { TypeormStore } from '../src/store/typeorm';
import { changedKeys, crashStats, outcomesIn, sagaProblems, unexpectedProblems } from './crash/check';
import { openLedger } from './crash/ledger';
import type { WorkerConfig } from './crash/protocol';
import { Random } from './crash/random';
import { killAllWorkers, note, WorkerProcess, withLogOnFailure } from './crash/worker-process';
import { plannedSagas } from './crash/workload';

/**
 * The seed of the kill schedule and of the workers' pauses, fixed so a failure replays with the same kill delays;
 * SAGAFLOW_CRASH_SEED=<n> tries another schedule.
 */
const SEED = Number(process.env.SAGAFLOW_CRASH_SEED ?? 0x5a6af10);
/** How many times a worker is killed. */
const KILLS = 20;
/** Kills land this long after the worker has its store open and is told to go (recovery and new starts come next). */
const KILL_AFTER_MS = [20, 400] as const;
/** Sagas in the run: a few seconds of worker time, so the kills land on work in progress. */
const SAGAS = 100;
/** How long the last worker may take to finish what is left (it needs a few seconds). */
const LAST_RUN_MS = 40_000;

describe('crash recovery on SQLite, with real processes killed by SIGKILL', () => {
  let dir = '';
  let passed = false;
  beforeAll(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'sagaflow-crash-'));
  });
  afterAll(() => {
    killAllWorkers();
    // A failed run keeps its files (the log, the store, the ledger) to look at; its path is in the failure.
    if (passed) rmSync(dir, { recursive: true, force: true });
  });

  it(`ends every saga completed or rolled back after ${KILLS} kills at random moments, with a balanced ledger and no accepted event lost`, async () => {
    const log = path.join(dir, 'workers.log');
    await withLogOnFailure(log, async () => {
      note(log, `seed ${SEED} (SAGAFLOW_CRASH_SEED=${SEED} replays this kill schedule)`);
      const random = new Random(SEED);
      const config = (life: number): WorkerConfig => ({
        workerId: `life-${life}`,
        store: { kind: 'sqlite', file: path.join(dir, 'sagas.db') },
        ledger: { kind: 'sqlite', file: path.join(dir, 'ledger.db') },
        sagas: SAGAS,
        seed: SEED + life,
        maxPauseMs: 25,
        maxActive: 6,
        maxStartGapMs: 10,
        startOffset: 0,
        maxLifetimeMs: 60_000,
      });

      let kills = 0;
      let finishedEarly = false;
      for (let life = 1; life <= KILLS && !finishedEarly; life += 1) {
        const worker = WorkerProcess.spawn(config(life), log);
        const ready = await worker.ready;
        worker.go();
        const delay = random.int(...KILL_AFTER_MS);
        const exit = ready ? await worker.exitWithin(delay) : await worker.exited;
        if (exit === null) {
          note(log, `SIGKILL ${worker.workerId}, ${delay} ms after it opened the store and was told to go`);
          await worker.kill();
          kills += 1;
        } else {
          // It ended on its own: it finished every saga (or failed, which the expectation shows).
          expect({ life, code: exit.code, signal: exit.signal, done: worker.done }).toEqual({ life, code: 0, signal: null, done: true });
          finishedEarly = true;
        }
      }

      const last = WorkerProcess.spawn(config(KILLS + 1), log);
      if (await last.ready) last.go();
      const exit = await last.exitWithin(LAST_RUN_MS);
      await last.kill();

      const planned = plannedSagas(SAGAS);
      const store = TypeormStore.sqlite({ file: path.join(dir, 'sagas.db') });
      const ledger = await openLedger({ kind: 'sqlite', file: path.join(dir, 'ledger.db') });
      try {
        const snapshot = await ledger.snapshot();
        // Everything at once, so a failure shows all that went wrong.
        expect({
          lastRun: exit === null ? `still running after ${LAST_RUN_MS} ms` : { code: exit.code, signal: exit.signal, done: last.done },
          sagas: sagaProblems(planned, await outcomesIn(store, planned), snapshot),
          reRunsWithAnotherKey: changedKeys(snapshot.runs),
          runtimeProblems: unexpectedProblems(snapshot),
        }).toEqual({ lastRun: { code: 0, signal: null, done: true }, sagas: [], reRunsWithAnotherKey: [], runtimeProblems: [] });
        console.log(`crash recovery on SQLite (seed ${SEED}): ${kills} kills; ${snapshot.acks.filter((a) => a.retained).length} acknowledged events retained rather than delivered at once; ${JSON.stringify(crashStats(snapshot.runs))}`);
      } finally {
        await store.close();
        await ledger.close();
      }
      // The first kill lands before the first worker can have started every saga: at least one kill cut work short.
      expect(kills).toBeGreaterThanOrEqual(1);
    });
    passed = true;
  }, 120_000);
});
