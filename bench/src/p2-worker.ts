/**
 * One worker process of P2-workers (./p2-workers forks it): a sagaflow runtime on the PostgreSQL database given in
 * `SAGAFLOW_BENCH_PG_URL`, keeping `SAGAFLOW_BENCH_INFLIGHT` happy sagas in flight. Protocol over the IPC channel:
 * it sends `{ ready: true }` once its store is open; on `{ go: { warmupMs, measureMs } }` it runs, and sends
 * `{ done: count }` — the sagas completed within the timed stretch — then closes and exits.
 */
import { TypeormStore } from '../../src/store/typeorm';
import { DurableSagaflow } from './peers/sagaflow-durable';

interface Go {
  readonly go: { readonly warmupMs: number; readonly measureMs: number };
}

async function main(): Promise<void> {
  const url = process.env.SAGAFLOW_BENCH_PG_URL;
  const inflight = Number(process.env.SAGAFLOW_BENCH_INFLIGHT ?? 50);
  if (url === undefined || process.send === undefined) throw new Error('p2-worker runs forked by p2-workers, with SAGAFLOW_BENCH_PG_URL set');
  const sagaflow = new DurableSagaflow(TypeormStore.postgres({ url }));
  await sagaflow.open();
  const go = await new Promise<Go['go']>((resolve) => {
    process.once('message', (message: Go) => resolve(message.go));
    process.send?.({ ready: true });
  });
  try {
    const count = await sagaflow.runFor(inflight, go.warmupMs, go.measureMs);
    process.send({ done: count });
  } finally {
    await sagaflow.close();
  }
}

main().then(
  () => process.disconnect?.(),
  (error: unknown) => {
    console.error(error);
    process.exitCode = 1;
    process.disconnect?.();
  },
);
