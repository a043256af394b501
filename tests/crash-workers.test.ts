import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import type { InstanceStore } from '../src';
import { TypeormStore } from '../src/store/typeorm';
import { changedKeys, crashStats, outcomesIn, overlappingRuns, sagaProblems, unexpectedProblems } from './crash/check';
import { openLedger, type Ledger, type LedgerSnapshot } from './crash/ledger';
import type { WorkerConfig } from './crash/protocol';
import { Random, sleep } from './crash/random';
import { killAllWorkers, note, WorkerProcess, withLogOnFailure, type WorkerExit } from './crash/worker-process';
import { plannedSagas } from './crash/workload';
import { createTestDatabase, dropTestDatabase } from './support/postgres';

/**
 * The seed of the kill schedule and of the workers' pauses, fixed so a failure replays with the same kill delays;
 * SAGAFLOW_CRASH_SEED=<n> tries another schedule.
 */
const SEED = Number(process.env.SAGAFLOW_CRASH_SEED ?? 0x3c0ffee);
const SAGAS = 60;
const WORKERS = ['worker-1', 'worker-2', 'worker-3'] as const;
const VICTIM = 'worker-2';
/** The victim is killed once it has started this many handler calls (see `untilBusy`), then after a random 0–300 ms more. */
const VICTIM_CALLS = 30;
/** How long the survivors may take to finish everything (the victim's instances need its 2 s lease to expire). */
const SURVIVORS_MS = 40_000;

describe('three worker processes on one PostgreSQL database, one of them killed by SIGKILL', () => {
  let url = '';
  let dir = '';
  let passed = false;
  beforeAll(async () => {
    url = await createTestDatabase('crash_workers');
    dir = mkdtempSync(path.join(tmpdir(), 'sagaflow-crash-workers-'));
  });
  afterAll(async () => {
    killAllWorkers();
    if (url !== '') await dropTestDatabase(url);
    // A failed run keeps its log to look at; its path is in the failure.
    if (passed) rmSync(dir, { recursive: true, force: true });
  });

  it('runs on a PostgreSQL store that is shared (leases, polling, the inbox)', async () => {
    const store: InstanceStore = TypeormStore.postgres({ url, poolSize: 1 });
    try {
      expect(store.shared).toBe(true);
    } finally {
      await store.close();
    }
  });

  it('finishes every saga on the two survivors: completed or rolled back, a balanced ledger, no accepted event lost, no saga run by two live workers at once', async () => {
    const log = path.join(dir, 'workers.log');
    await withLogOnFailure(log, async () => {
      note(log, `seed ${SEED} (SAGAFLOW_CRASH_SEED=${SEED} replays this kill schedule)`);
      const random = new Random(SEED);
      // The ledger's tables are made before the workers start (their CREATE TABLE IF NOT EXISTS would collide); the
      // store's migrations the workers run themselves, all three at once, as replicas booting together do.
      const ledger = await openLedger({ kind: 'postgres', url });
      const store = TypeormStore.postgres({ url, poolSize: 2 });
      try {
        const workers = WORKERS.map((workerId, i) => {
          const config: WorkerConfig = {
            workerId,
            store: { kind: 'postgres', url },
            ledger: { kind: 'postgres', url },
            sagas: SAGAS,
            seed: SEED + i,
            maxPauseMs: 40,
            maxActive: 12,
            maxStartGapMs: 20,
            startOffset: Math.floor((i * SAGAS) / WORKERS.length),
            leaseDuration: '2s',
            pollInterval: '200ms',
            maxLifetimeMs: 90_000,
          };
          return WorkerProcess.spawn(config, log);
        });
        expect(await Promise.all(workers.map((w) => w.ready))).toEqual([true, true, true]);
        // All at once, so that none has a head start (and takes all the work before the victim has any).
        for (const w of workers) w.go();
        const victim = workers.find((w) => w.workerId === VICTIM) as WorkerProcess;
        const survivors = workers.filter((w) => w !== victim);

        await untilBusy(victim, ledger, store);
        await sleep(random.int(0, 300));
        note(log, `SIGKILL ${VICTIM} after ${await ledger.callsBy(VICTIM)} of its handler calls started`);
        const death = await victim.kill();

        const exits = await Promise.all(survivors.map((w) => w.exitWithin(SURVIVORS_MS)));
        await Promise.all(survivors.map((w) => w.kill()));

        const planned = plannedSagas(SAGAS);
        const snapshot: LedgerSnapshot = await ledger.snapshot();
        const victimSagas = new Set(snapshot.runs.filter((r) => r.worker === VICTIM).map((r) => r.saga));
        // What the survivors did first, after the kill, for each saga the victim had worked on.
        const takenOver = new Map<string, string>();
        for (const r of snapshot.runs) {
          if (r.worker !== VICTIM && r.startedAt > death.at && victimSagas.has(r.saga) && !takenOver.has(r.saga)) takenOver.set(r.saga, `${r.step}.${r.func}`);
        }
        // Everything at once, so a failure shows all that went wrong.
        expect({
          victimDiedOf: death.signal ?? `exit code ${death.code} (done: ${String(victim.done)})`,
          survivors: survivors.map((w, i) => describeExit(w, exits[i] ?? null)),
          sagas: sagaProblems(planned, await outcomesIn(store, planned), snapshot),
          reRunsWithAnotherKey: changedKeys(snapshot.runs),
          overlappingRuns: overlappingRuns(snapshot.runs, new Map([[VICTIM, death.at]])),
          runsOfTheVictimAfterItDied: snapshot.runs.filter((r) => r.worker === VICTIM && r.startedAt > death.at),
          runtimeProblemsOfSurvivors: unexpectedProblems(snapshot).filter((p) => p.worker !== VICTIM),
          // The kill landed in the middle of the victim's work: the survivors took over some of its sagas.
          someSagaTakenOver: takenOver.size > 0,
        }).toEqual({
          victimDiedOf: 'SIGKILL',
          survivors: survivors.map((w) => ({ worker: w.workerId, code: 0, signal: null, done: true })),
          sagas: [],
          reRunsWithAnotherKey: [],
          overlappingRuns: [],
          runsOfTheVictimAfterItDied: [],
          runtimeProblemsOfSurvivors: [],
          someSagaTakenOver: true,
        });
        console.log(
          `crash workers on PostgreSQL (seed ${SEED}): the victim was killed after ${snapshot.runs.filter((r) => r.worker === VICTIM).length} calls; ` +
            `${takenOver.size} of its sagas taken over (${[...takenOver.values()].join(', ')}); ${snapshot.acks.filter((a) => a.retained).length} acknowledged events retained rather than delivered at once; ${JSON.stringify(crashStats(snapshot.runs))}`,
        );
      } finally {
        await store.close();
        await ledger.close();
      }
    });
    passed = true;
  }, 120_000);
});

/**
 * Resolves once the victim is in the middle of its work: it has started {@link VICTIM_CALLS} handler calls, or
 * half the sagas are final already (whichever comes first), or it has ended, or 20 s have passed.
 */
async function untilBusy(victim: WorkerProcess, ledger: Ledger, store: InstanceStore): Promise<void> {
  let ended = false;
  void victim.exited.then(() => (ended = true));
  for (let waited = 0; waited < 20_000 && !ended; waited += 20) {
    if ((await ledger.callsBy(victim.workerId)) >= VICTIM_CALLS) return;
    if ((await store.list({ status: ['completed', 'rolled_back', 'compensation_failed'], limit: SAGAS })).length >= SAGAS / 2) return;
    await sleep(20);
  }
}

function describeExit(worker: WorkerProcess, exit: WorkerExit | null): Record<string, unknown> {
  if (exit === null) return { worker: worker.workerId, stillRunningAfterMs: SURVIVORS_MS };
  return { worker: worker.workerId, code: exit.code, signal: exit.signal, done: worker.done };
}
