/**
 * `npm run demo`: runs every sample against a fresh runtime (default store: in memory) and prints their
 * timelines. Exit code 0 when every sample ended as it expects; 1 when one did not (a final status other
 * than the expected one, an effect left standing, a problem the runtime reported) or when the demo stopped
 * before every sample finished (a saga that never settled).
 */
import { runOrderCheckout } from './order-checkout/run';
import { runUserOnboarding } from './user-onboarding/run';
import type { Print } from './timeline-observer';

const SAMPLES: readonly { readonly title: string; readonly run: (print: Print) => Promise<void> }[] = [
  { title: 'order-checkout: reserve → charge (wait for the payment webhook) → ship', run: runOrderCheckout },
  { title: 'user-onboarding: create the user → provision in parallel (mail, workspace, billing)', run: runUserOnboarding },
];

const print: Print = (line) => console.log(line);

async function main(): Promise<number> {
  let failed = 0;
  for (const sample of SAMPLES) {
    print('');
    print(`══ ${sample.title} ${'═'.repeat(Math.max(3, 100 - sample.title.length))}`);
    print('');
    try {
      await sample.run(print);
    } catch (e) {
      failed += 1;
      console.error(`✗ UNEXPECTED in ${sample.title}: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
    }
  }
  print('');
  print(failed === 0 ? `✓ all ${SAMPLES.length} samples ended as expected` : `✗ ${failed} of ${SAMPLES.length} samples did not end as expected`);
  return failed === 0 ? 0 : 1;
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
