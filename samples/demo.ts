/**
 * `npm run demo`: runs every sample against the embedded SQLite database, `.sagaflow/sagaflow.db` in the working
 * directory (`TypeormStore.sqlite()`, the store a plain `new SagaRuntime()` uses), so every run adds to what the
 * earlier ones left:
 * 1. lists what the database already holds (instances by workflow and status, the last few);
 * 2. calls `runtime.start()`, which resumes any instance an interrupted earlier run left unfinished;
 * 3. runs the samples with fresh instance ids (`order-1001-r<run>`, …; the run number is one more than the
 *    highest one in the database) and prints their timelines.
 *
 * Exit code 0 when every sample ended as it expects; 1 when one did not (a final status other than the
 * expected one, an effect left standing, a problem the runtime reported), when resuming failed, or when the
 * demo stopped before every sample finished (a saga that never settled). `rm -rf .sagaflow` starts over.
 */
import * as path from 'node:path';
import type { InstanceStore } from '../src';
import { TypeormStore, defaultSqliteFile } from '../src/store/typeorm';
import { runOrderCheckout } from './order-checkout/run';
import { recoveryRuntime, resumeUnfinished, showEarlierRuns } from './recovery';
import type { SampleOptions } from './support';
import type { Print } from './timeline-observer';
import { runUserOnboarding } from './user-onboarding/run';
import { runBranchingOrder } from './branching-order/run';
import { runNightlyBatch } from './nightly-batch/run';
import { runVersionedDeploy } from './versioned-deploy/run';
import { runTripBooking } from './trip-booking/run';

const SAMPLES: readonly { readonly title: string; readonly run: (print: Print, options: SampleOptions) => Promise<void> }[] = [
  { title: 'order-checkout: reserve → charge (wait for the payment webhook) → ship', run: runOrderCheckout },
  { title: 'user-onboarding: create the user → provision in parallel (mail, workspace, billing)', run: runUserOnboarding },
  { title: 'branching-order: when express → rush group, else standard · payment child workflow · goto over the review · rate-limited mail', run: runBranchingOrder },
  { title: 'nightly-batch: a cron schedule starts a forEach over the night’s invoices, rate-limited', run: runNightlyBatch },
  { title: 'versioned-deploy: version 2 deployed while version-1 applications wait; a blocked one migrated', run: runVersionedDeploy },
  { title: 'trip-booking: a compensation recovers with a cached fare (circuit breaker) and retries forward past a busy card network', run: runTripBooking },
];

const print: Print = (line) => console.log(line);

function heading(title: string): void {
  print('');
  print(`══ ${title} ${'═'.repeat(Math.max(3, 100 - title.length))}`);
  print('');
}

/** The demo's last line: the command that opens the web inspector on the database it just wrote. */
function inspectorHint(file: string): string {
  const relative = path.relative(process.cwd(), file);
  const shown = relative.startsWith('..') || path.isAbsolute(relative) ? file : relative;
  return `see every instance, its diagram and timeline in the inspector: npx sagaflow inspect --db ${/\s/.test(shown) ? JSON.stringify(shown) : shown}`;
}

function describe(e: unknown): string {
  return e instanceof Error ? (e.stack ?? e.message) : String(e);
}

async function main(): Promise<number> {
  const file = defaultSqliteFile();
  const store: InstanceStore = TypeormStore.sqlite({ file });
  let failed = 0;
  try {
    heading(`the embedded database: ${path.relative(process.cwd(), file)}`);
    const recovery = recoveryRuntime(print, store);
    let run: number;
    try {
      const earlier = await showEarlierRuns(print, recovery.runtime);
      run = earlier.nextRun;
      print('');
      await resumeUnfinished(print, recovery, earlier.instances);
    } catch (e) {
      console.error(`✗ UNEXPECTED while resuming earlier instances: ${describe(e)}`);
      return 1;
    } finally {
      await recovery.runtime.close();
    }

    const idSuffix = `-r${run}`;
    print('');
    print(`this is run ${run}: its instances end in ${idSuffix}`);
    for (const sample of SAMPLES) {
      heading(sample.title);
      try {
        await sample.run(print, { store, idSuffix });
      } catch (e) {
        failed += 1;
        console.error(`✗ UNEXPECTED in ${sample.title}: ${describe(e)}`);
      }
    }

    print('');
    const all = await store.list({ limit: Number.MAX_SAFE_INTEGER });
    const mine = all.filter((i) => i.id.endsWith(idSuffix)).length;
    print(`the database now holds ${all.length} instances, ${mine} of them from this run; run the demo again to see them listed first.`);
    print(failed === 0 ? `✓ all ${SAMPLES.length} samples ended as expected` : `✗ ${failed} of ${SAMPLES.length} samples did not end as expected`);
    print(inspectorHint(file));
    return failed === 0 ? 0 : 1;
  } finally {
    await store.close();
  }
}

// Fail unless main says otherwise: if a saga never settles, Node exits with the event loop empty and main unfinished.
process.exitCode = 1;
let finished = false;
process.on('exit', () => {
  if (!finished) console.error('✗ the demo stopped before every sample finished: a saga never settled');
});
main().then(
  (code) => {
    finished = true;
    process.exitCode = code;
  },
  (e: unknown) => {
    finished = true;
    console.error(e);
    process.exitCode = 1;
  },
);
