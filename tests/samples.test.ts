import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { MemoryStore, SagaRuntime, silentLogger } from '../src';
import { TypeormStore } from '../src/store/typeorm';
import { runOrderCheckout } from '../samples/order-checkout/run';
import { Ledger } from '../samples/ledger';
import { InventoryService, PaymentGateway, Carrier } from '../samples/order-checkout/services';
import { ChargePayment, ReserveInventory, Ship } from '../samples/order-checkout/steps';
import { OrderCheckout } from '../samples/order-checkout/workflow';
import { recoveryRuntime, resumeUnfinished, runOf, showEarlierRuns } from '../samples/recovery';
import { resolverOf, untilParked } from '../samples/support';
import { TimelineObserver } from '../samples/timeline-observer';
import { runUserOnboarding } from '../samples/user-onboarding/run';
import { runBranchingOrder } from '../samples/branching-order/run';
import { runNightlyBatch } from '../samples/nightly-batch/run';
import { runVersionedDeploy } from '../samples/versioned-deploy/run';
import { runTripBooking } from '../samples/trip-booking/run';

describe('the samples', () => {
  it('order-checkout completes one order and undoes every effect of the one the carrier refuses', async () => {
    const lines: string[] = [];
    await runOrderCheckout((line) => lines.push(line), { store: new MemoryStore() });
    const text = lines.join('\n');
    expect(text).toMatch(/order-1001 +✓ +order-checkout +completed/);
    expect(text).toMatch(/order-1002 +↑ +ship +run +error NO_CARRIER_CAPACITY/);
    const undo = lines.filter((l) => l.startsWith('order-1002') && l.includes('↓')).map((l) => l.split(/ {2,}/)[2]);
    expect(undo).toEqual(['ship', 'charge-payment', 'reserve-inventory']);
    expect(text).toContain('every effect of order-1002 was undone');
    expect(text).toContain('STATE_INVALID');
  });

  it('user-onboarding undoes every parallel branch and then create-user when billing fails', async () => {
    const lines: string[] = [];
    await runUserOnboarding((line) => lines.push(line), { store: new MemoryStore() });
    const text = lines.join('\n');
    expect(text).toMatch(/signup-ada +✓ +user-onboarding +completed/);
    const undo = lines.filter((l) => l.startsWith('signup-bob') && l.includes('↓') && l.includes('rollback')).map((l) => l.split(/ {2,}/)[2]);
    expect(undo).toEqual(['provision/set-up-billing', 'provision/provision-workspace', 'provision/send-welcome-email', 'create-user']);
    expect(text).toContain('every effect of signup-bob was undone (4 of 4)');
  });
});

describe('the versioned-deploy sample', () => {
  it('finishes waiting version-1 applications on version 1 after version 2 is deployed, and migrates the one a later deploy blocks', async () => {
    const lines: string[] = [];
    await runVersionedDeploy((line) => lines.push(line), { store: new MemoryStore() });
    const text = lines.join('\n');
    expect(text).toContain('loan-1 approved and completed on version 1; fraud check did not run');
    expect(text).toContain('loan-3 (grace) starts on version 2');
    expect(text).toContain('loan-3 approved and completed on version 2; fraud check ran');
    expect(text).toContain('running "await-approval": "score-fraud" comes before "await-approval" in version 2 but never ran: it would be skipped');
    expect(text).toContain('loan-2 is blocked (UNKNOWN_VERSION)');
    expect(text).toContain('loan-2 approved and completed on version 2');
    expect(text).toMatch(/history of loan-2: migrated .*by ops: version 1 is retired/);
  });
});

describe('the trip-booking sample', () => {
  it('recovers with a cached fare, retries forward past a busy card network, and hides the internal code of a trip it cannot book', async () => {
    const lines: string[] = [];
    await runTripBooking((line) => lines.push(line), { store: new MemoryStore() });
    const text = lines.join('\n');
    expect(text).toContain('trip-lisbon: completed, fare 180 (cached)');
    expect(text).toContain('compensations decided: recover at quote-fare, retryForward at hold-room, retryForward at hold-room');
    expect(text).toMatch(/hotel +room-\S+#3 +held a room in lisbon +stands/);
    expect(text).toContain('trip-oslo: rolled_back: the trip could not be booked (FARES_DOWN)');
  });
});

describe('the control-flow samples', () => {
  it('branching-order takes the block its predicate chose, compensates a completed payment child, and parks a mail for its rate limit', async () => {
    const lines: string[] = [];
    await runBranchingOrder((line) => lines.push(line), { store: new MemoryStore() });
    const text = lines.join('\n');
    expect(text).toContain('history: when express? took then; manual-review never ran');
    const undo = lines.filter((l) => l.startsWith('ord-3002') && l.includes('↓')).map((l) => l.split(/ {2,}/)[2]);
    expect(undo).toEqual(['manual-review', 'score-fraud', 'capture-payment', 'authorize-card', 'payment', 'payment', 'book-standard-shipping', 'reserve-stock']);
    expect(text).toContain('every effect of ord-3002 was undone');
    expect(text).toMatch(/ord-3005\S* waits for a mailer slot/);
  });

  it('nightly-batch starts one instance per night from its cron schedule and charges every invoice once', async () => {
    const lines: string[] = [];
    await runNightlyBatch((line) => lines.push(line), { store: new MemoryStore() });
    const text = lines.join('\n');
    expect(text).toContain('schedule:nightly:2026-11-21T01:00:00.000Z: 7 collected, 0 declined');
    expect(text).toContain('schedule:nightly:2026-11-22T01:00:00.000Z: 6 collected, 1 declined (inv-11-22-5)');
  });
});

describe('the demo on a durable store', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'sagaflow-samples-'));
  });
  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it('runs the samples twice on one SQLite file, each run with its own instance ids, and lists the earlier ones', async () => {
    const store = TypeormStore.sqlite({ file: path.join(dir, 'demo.db') });
    try {
      for (const idSuffix of ['-r1', '-r2']) {
        const lines: string[] = [];
        await runOrderCheckout((line) => lines.push(line), { store, idSuffix });
        await runUserOnboarding((line) => lines.push(line), { store, idSuffix });
        const text = lines.join('\n');
        expect(text).toMatch(new RegExp(`order-1001${idSuffix} +✓ +order-checkout +completed`));
        expect(text).toMatch(new RegExp(`order-1002${idSuffix} +✗ +order-checkout +rolled back`));
        expect(text).toContain(`nothing was stored for order-1003${idSuffix}`);
        expect(text).toContain(`every effect of signup-bob${idSuffix} was undone (4 of 4)`);
      }
      const stored = await store.list();
      expect(stored.map((s) => `${s.id} ${s.status}`).sort()).toEqual(
        ['-r1', '-r2'].flatMap((r) => [
          `order-1001${r} completed`,
          `order-1002${r} rolled_back`,
          `signup-ada${r} completed`,
          `signup-bob${r} rolled_back`,
        ]).sort(),
      );

      const lines: string[] = [];
      const recovery = recoveryRuntime((line) => lines.push(line), store);
      try {
        const earlier = await showEarlierRuns((line) => lines.push(line), recovery.runtime);
        expect(earlier.nextRun).toBe(3);
        expect(earlier.instances).toHaveLength(8);
        await resumeUnfinished((line) => lines.push(line), recovery, earlier.instances);
      } finally {
        await recovery.runtime.close();
      }
      expect(lines).toContain('the database holds 8 instances from earlier runs, by workflow and status:');
      expect(lines).toContainEqual(expect.stringMatching(/^ {2}order-checkout +2 +2$/));
      expect(lines).toContainEqual(expect.stringMatching(/^ {2}user-onboarding +2 +2$/));
      expect(lines).toContain('runtime.start(): nothing to resume, every earlier instance is finished.');
    } finally {
      await store.close();
    }
  });

  it('resumes an instance an interrupted run left waiting, and rolls it back since its webhook will not come', async () => {
    const store = new MemoryStore();
    const ledger = new Ledger();
    const interrupted = new SagaRuntime({
      store,
      logger: silentLogger,
      workflows: [OrderCheckout],
      resolver: resolverOf([
        new ReserveInventory(new InventoryService(ledger, { 'SKU-MUG': 10 })),
        new ChargePayment(new PaymentGateway(ledger)),
        new Ship(new Carrier(ledger)),
        new TimelineObserver(() => undefined),
      ]),
    });
    await interrupted.start(OrderCheckout, { orderId: 'order-1001-r7', sku: 'SKU-MUG', quantity: 1, amountCents: 1299 }, { id: 'order-1001-r7' });
    await untilParked(interrupted, 'order-1001-r7');
    await interrupted.close();

    const lines: string[] = [];
    const recovery = recoveryRuntime((line) => lines.push(line), store);
    try {
      const earlier = await showEarlierRuns((line) => lines.push(line), recovery.runtime);
      expect(earlier.nextRun).toBe(8);
      await resumeUnfinished((line) => lines.push(line), recovery, earlier.instances);
      expect((await recovery.runtime.get('order-1001-r7')).status).toBe('rolled_back');
    } finally {
      await recovery.runtime.close();
    }
    expect(lines).toContain('runtime.start(): resuming 1 unfinished instance that an interrupted run left behind: order-1001-r7 (waiting)');
    expect(lines).toContain("order-1001-r7 is waiting for payment.captured, which only the interrupted run's fakes would have sent: rolling it back");
    expect(lines).toContainEqual(expect.stringMatching(/^order-1001-r7 +↑ +charge-payment +run +continue → waiting for payment\.captured$/));
    const undo = lines.filter((l) => l.startsWith('order-1001-r7') && l.includes('↓')).map((l) => l.split(/ {2,}/)[2]);
    expect(undo).toEqual(['charge-payment', 'reserve-inventory']);
    expect(lines).toContain('resumed order-1001-r7: rolled_back (ROLLBACK_REQUESTED)');
  });

  it('numbers demo runs by the highest -r<n> suffix of the instance ids', () => {
    expect(runOf('order-1001-r12')).toBe(12);
    expect(runOf('signup-ada-r3')).toBe(3);
    expect(runOf('order-1001')).toBe(0);
    expect(runOf('0b7c2f8e-3a1d-4c55-9f0e-2d7b6a9c1e44')).toBe(0);
  });
});
