/**
 * A worker process of the crash tests (run by `WorkerProcess`, through register.js): opens the store, recovers
 * (`runtime.start()`), starts the run's sagas that do not exist yet (a few at a time), publishes
 * `payment.captured` for every waiting saga (or early, see `PlannedSaga.early`) no publisher has an
 * acknowledgement for, and exits with code 0 once every saga of the run is final. It may be killed at any
 * moment; the next process carries on from the store. An acknowledged event is never published again, so one
 * the runtime lost would leave its saga waiting for ever.
 *
 * Logs go to stdout (a file the parent opened); messages to the parent go over the IPC channel. Without a
 * parent (the channel closes), or past its maximum lifetime, the process exits on its own.
 */
import 'reflect-metadata';
import { SagaRuntime, isFinalStatus, type InstanceStatus, type InstanceStore, type Logger, type SagaEventInput } from '../../src';
import { TypeormStore } from '../../src/store/typeorm';
import { openLedger, type Ledger } from './ledger';
import { EXIT_ORPHANED, EXIT_TOO_OLD, type ParentMessage, type WorkerConfig, type WorkerMessage } from './protocol';
import { Random, sleep } from './random';
import { Charge, Confirm, CrashCheckout, PAYMENT_CAPTURED, Reserve, Services, Ship, plannedSagas, type CrashOrder, type PlannedSaga } from './workload';

const config = JSON.parse(process.argv[2] ?? 'null') as WorkerConfig;
const me = config.workerId;

function log(line: string): void {
  console.log(`${new Date().toISOString()} ${me} pid ${process.pid}: ${line}`);
}

/** Sends `message` to the parent; resolves once it is handed over. */
function tell(message: WorkerMessage): Promise<void> {
  return new Promise((resolve) => {
    if (process.send === undefined) resolve();
    else process.send(message, () => resolve());
  });
}

/** Resolves when the parent says `go` (at once without a parent). */
function go(): Promise<void> {
  return new Promise((resolve) => {
    if (process.send === undefined) return resolve();
    const listen = (message: ParentMessage): void => {
      if (message.type !== 'go') return;
      process.off('message', listen);
      resolve();
    };
    process.on('message', listen);
  });
}

let finished = false;
process.on('disconnect', () => {
  if (finished) return;
  log('the parent is gone; exiting');
  process.exit(EXIT_ORPHANED);
});
setTimeout(() => {
  log(`still running after ${config.maxLifetimeMs} ms; exiting`);
  process.exit(EXIT_TOO_OLD);
}, config.maxLifetimeMs).unref();

const logger: Logger = {
  debug: () => undefined,
  info: () => undefined,
  warn: (obj, msg) => log(`warn: ${msg ?? ''} ${JSON.stringify(obj)}`),
  error: (obj, msg) => log(`error: ${msg ?? ''} ${JSON.stringify(obj)}`),
};

/**
 * Publishes `payment.captured` once for each saga that waits for it (or, for the sagas planned `early`, that has
 * the effect of `charge`) and no publisher has an acknowledgement for.
 */
class Publisher {
  private readonly started = new Set<string>();
  private readonly early: ReadonlySet<string>;
  private count = 0;

  constructor(
    private readonly runtime: SagaRuntime,
    private readonly ledger: Ledger,
    private readonly random: Random,
    planned: readonly PlannedSaga[],
  ) {
    this.early = new Set(planned.filter((s) => s.early).map((s) => s.id));
  }

  async round(waiting: readonly string[]): Promise<void> {
    const charged = [...(await this.ledger.sagasWithEffect('charge'))].filter((id) => this.early.has(id));
    const fresh = [...new Set([...waiting, ...charged])].filter((id) => !this.started.has(id));
    if (fresh.length === 0) return;
    const acked = await this.ledger.ackedSagas();
    for (const id of fresh) {
      if (acked.has(id)) continue;
      this.started.add(id);
      void this.publish(id);
    }
  }

  private async publish(id: string): Promise<void> {
    const event: SagaEventInput & { id: string } = {
      topic: PAYMENT_CAPTURED,
      id: `${id}:captured:${me}:${++this.count}`,
      payload: { orderId: id, paymentId: `pay-${id}` },
    };
    try {
      await sleep(this.random.int(0, 30));
      const receipt = await this.runtime.publish(event);
      await this.ledger.ack(id, receipt.eventId, receipt.delivered, receipt.retained, me);
      log(`published ${receipt.eventId}: delivered ${receipt.delivered}${receipt.retained ? ', retained' : ''}`);
    } catch (e) {
      log(`publishing ${event.id} failed (tried again on a later round): ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
      this.started.delete(id);
    }
  }
}

const UNFINISHED: InstanceStatus[] = ['running', 'waiting', 'rolling_back'];

function isFinal(status: InstanceStatus | undefined): boolean {
  return status !== undefined && isFinalStatus(status);
}

async function main(): Promise<void> {
  const random = new Random(config.seed);
  const ledger = await openLedger(config.ledger);
  const store = config.store.kind === 'sqlite' ? TypeormStore.sqlite({ file: config.store.file }) : TypeormStore.postgres({ url: config.store.url, poolSize: 5 });
  await store.init();
  const services = new Services(ledger, me, random, config.maxPauseMs);
  const steps = new Map<unknown, unknown>([Reserve, Charge, Ship, Confirm].map((cls) => [cls, new cls(services)]));
  const runtime = new SagaRuntime({
    store,
    logger,
    workflows: [CrashCheckout],
    resolver: <T>(cls: new (...args: never[]) => T): T => {
      const step = steps.get(cls);
      if (step === undefined) throw new Error(`the crash worker has no instance of ${cls.name}`);
      return step as T;
    },
    workerId: me,
    // Early events wait in the store for their saga's wait, across kills: long enough for any run of the tests.
    eventRetention: '10m',
    ...(config.leaseDuration === undefined ? {} : { leaseDuration: config.leaseDuration }),
    ...(config.pollInterval === undefined ? {} : { pollInterval: config.pollInterval }),
  });
  runtime.errors$.subscribe((p) => {
    log(`runtime problem ${p.kind} ${p.instanceId ?? ''}: ${p.message} (${p.error.code}: ${p.error.message})`);
    void ledger.problem(me, p.kind, p.message, p.error.code, p.instanceId ?? null).catch(() => undefined);
  });
  const shared = (store as InstanceStore).shared === true;
  log(`store open (shared: ${String(shared)})`);
  const going = go();
  await tell({ type: 'ready' });
  await going;

  const unfinished = await runtime.list({ status: UNFINISHED, limit: config.sagas * 10 });
  await runtime.start();
  log(`recovered (${unfinished.length} unfinished sagas in the store)`);

  const planned = plannedSagas(config.sagas);
  const order = [...planned.slice(config.startOffset), ...planned.slice(0, config.startOffset)];
  const existing = new Set((await runtime.list({ limit: config.sagas * 10 })).map((s) => s.id));
  const starting = (async () => {
    for (const saga of order) {
      // Starting an existing id returns that instance; skip those without the pause between starts.
      if (existing.has(saga.id)) continue;
      // A steady stream: a few sagas at a time, so whenever a kill lands, sagas are in every phase.
      while ((await runtime.list({ status: UNFINISHED, limit: config.sagas * 10 })).length >= config.maxActive) await sleep(10);
      const input: CrashOrder = { orderId: saga.id, declines: saga.declines };
      await runtime.start(CrashCheckout, input, { id: saga.id });
      await sleep(random.int(0, config.maxStartGapMs));
    }
    log('every saga started (or found)');
  })();

  const publisher = new Publisher(runtime, ledger, random, planned);
  for (;;) {
    const summaries = await runtime.list({ limit: config.sagas * 10 });
    const status = new Map(summaries.map((s) => [s.id, s.status]));
    if (planned.every((s) => isFinal(status.get(s.id)))) break;
    await publisher.round(summaries.filter((s) => s.status === 'waiting').map((s) => s.id));
    await sleep(50);
  }
  await starting;
  const counts = new Map<string, number>();
  for (const s of await runtime.list({ limit: config.sagas * 10 })) counts.set(s.status, (counts.get(s.status) ?? 0) + 1);
  log(`every saga is final: ${[...counts].map(([s, n]) => `${n} ${s}`).join(', ')}`);
  await runtime.close();
  await store.close();
  await ledger.close();
  finished = true;
  await tell({ type: 'done' });
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    log(`failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
    process.exit(1);
  },
);
