/**
 * `npm run screenshot:inspector`: fills a fresh SQLite database with the samples, serves the inspector on it and
 * writes docs/inspector.png (the instance page of a branching order that rolled back) with headless Chromium.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { startInspector } from '../src/inspector/inspector-server';
import { TypeormStore } from '../src/store/typeorm';
import { runBranchingOrder } from '../samples/branching-order/run';
import { runOrderCheckout } from '../samples/order-checkout/run';
import { runUserOnboarding } from '../samples/user-onboarding/run';
import { launchChromium } from '../tests/support/chromium';

async function main(): Promise<void> {
  const dir = mkdtempSync(path.join(tmpdir(), 'sagaflow-screenshot-'));
  const file = path.join(dir, 'sagaflow.db');
  const quiet = (): void => undefined;
  const writer = TypeormStore.sqlite({ file });
  await runOrderCheckout(quiet, { store: writer });
  await runUserOnboarding(quiet, { store: writer });
  await runBranchingOrder(quiet, { store: writer });
  await writer.close();
  const store = TypeormStore.sqlite({ file, readOnly: true });
  const inspector = await startInspector({ store, database: '.sagaflow/sagaflow.db' });
  const browser = await launchChromium();
  try {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    await page.goto(`${inspector.url}instances/ord-3002`);
    const out = path.resolve(__dirname, '..', '..', 'docs', 'inspector.png');
    await page.screenshot({ path: out, clip: { x: 0, y: 0, width: 1280, height: 1500 }, fullPage: true });
    console.log(`wrote ${out}`);
  } finally {
    await browser.close();
    await inspector.close();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
