import 'reflect-metadata';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { DataSource } from 'typeorm';
import { SagaRuntime, silentLogger } from '../../src';
import { mirrorToEntity, TypeormStore } from '../../src/store/typeorm';
import { collectProblems, expectNoProblems, expectThat, resolverOf, runWhenMain } from '../support';
import { ShopOrder } from './order.entity';
import { ChargePayment, EmbeddedOrder, Effects, PAYMENT_CAPTURED, ReserveStock, Ship, type OrderState } from './workflow';

/** A column value as the table prints it (SQLite gives text and numbers). */
function cell(value: unknown): string {
  if (value === null || value === undefined) return 'NULL';
  return typeof value === 'string' ? value : JSON.stringify(value);
}

/** Where the sample prints. */
export type Print = (line: string) => void;

/** Options of {@link runEmbeddedEntity}. */
export interface EmbeddedEntityOptions {
  /**
   * The directory of the two SQLite files (`sagaflow.db`, the saga store; `shop.db`, the application's own
   * database). The sample deletes and recreates those two files. @default a temporary directory, removed after
   */
  readonly dir?: string;
}

/**
 * Runs the embedded-entity sample: the shop keeps its orders in its own `shop_orders` table (its own SQLite
 * file), whose rows embed the saga's flow columns; an `EntityMirror` on the saga store keeps each row current
 * after every transition. It prints the table:
 * 1. while order 2001 waits for its payment webhook (found with `find({ where: { flow: { status: 'waiting' } } })`);
 * 2. after order 2001 completed and order 2002 (a piano the carrier refuses) rolled back.
 *
 * Deterministic: fixed ids, fresh files per call, no times printed. Throws `SampleExpectationError` when an
 * outcome is not the expected one.
 */
export async function runEmbeddedEntity(print: Print, options: EmbeddedEntityOptions = {}): Promise<void> {
  const dir = options.dir ?? mkdtempSync(path.join(tmpdir(), 'sagaflow-embedded-'));
  mkdirSync(dir, { recursive: true });
  for (const file of ['sagaflow.db', 'shop.db']) for (const suffix of ['', '-wal', '-shm']) rmSync(path.join(dir, file + suffix), { force: true });

  // The application's own database, with its own entity (synchronize stands in for the shop's migrations).
  const shop = new DataSource({ type: 'better-sqlite3', database: path.join(dir, 'shop.db'), entities: [ShopOrder], synchronize: true });
  await shop.initialize();
  const orders = shop.getRepository(ShopOrder);

  const mirrorProblems: unknown[] = [];
  // The saga store (sagaflow's own tables: the source of truth), wrapped by the mirror into the shop's table.
  const mirror = mirrorToEntity(shop, ShopOrder, {
    workflows: [EmbeddedOrder],
    map: (state: OrderState) => ({
      id: state.orderId,
      sku: state.sku,
      quantity: state.quantity,
      amountCents: state.amountCents,
      reservationId: state.reservationId ?? null,
      paymentId: state.paymentId ?? null,
      shipmentId: state.shipmentId ?? null,
    }),
    onError: (error) => mirrorProblems.push(error),
  });
  const sagaStore = TypeormStore.sqlite({ file: path.join(dir, 'sagaflow.db') });
  const effects = new Effects();
  const runtime = new SagaRuntime({
    store: mirror.wrap(sagaStore),
    logger: silentLogger,
    workflows: [EmbeddedOrder],
    resolver: resolverOf([new ReserveStock(effects), new ChargePayment(effects), new Ship(effects)]),
  });
  const problems = collectProblems(runtime);
  try {
    print(`saga store: ${path.basename(sagaStore.dataSource.options.database as string)}; the shop's orders: ${path.basename(shop.options.database as string)} (table shop_orders)`);
    await runtime.start(EmbeddedOrder, { orderId: 'order-2001', sku: 'SKU-MUG', quantity: 2, amountCents: 2598 }, { id: 'order-2001' });
    await runtime.start(EmbeddedOrder, { orderId: 'order-2002', sku: 'SKU-PIANO', quantity: 1, amountCents: 990000 }, { id: 'order-2002' });
    await runtime.idle();

    // The application queries its own table: through TypeORM, or in plain SQL on the flow columns.
    const waiting = await orders.find({ where: { flow: { status: 'waiting' } }, order: { id: 'ASC' } });
    expectThat(waiting.length === 2, `both orders to wait for their payment, got ${waiting.length}`);
    print('');
    print("orders waiting — orders.find({ where: { flow: { status: 'waiting' } } }):");
    for (const o of waiting) print(`  ${o.id}  ${o.flow.stepName ?? '-'} waits for ${o.flow.wait?.topics.join(', ') ?? '-'} ${JSON.stringify(o.flow.wait?.match ?? {})}`);
    const sql = "SELECT id, sku, flow_step_name FROM shop_orders WHERE flow_status = 'waiting' ORDER BY id";
    print(`the same in SQL — ${sql}:`);
    for (const row of await shop.query<{ id: string; sku: string; flow_step_name: string }[]>(sql)) print(`  ${row.id}  ${row.sku}  ${row.flow_step_name}`);

    // The payment provider's webhooks arrive, one order after the other.
    await runtime.publish({ topic: PAYMENT_CAPTURED, payload: { orderId: 'order-2001', paymentId: 'pay-2001' } });
    // The mirror writes a row inside the store's save, so once a result is known its row is there too.
    const done = await runtime.handle<OrderState>('order-2001').result();
    await runtime.publish({ topic: PAYMENT_CAPTURED, payload: { orderId: 'order-2002', paymentId: 'pay-2002' } });
    const refused = await runtime.handle<OrderState>('order-2002').result();
    expectThat(done.status === 'completed', `order-2001 to complete, got ${done.status}`);
    expectThat(refused.status === 'rolled_back' && refused.error?.code === 'NO_CARRIER', `order-2002 to roll back with NO_CARRIER, got ${refused.status} ${refused.error?.code}`);

    print('');
    print('shop_orders after order-2001 completed and order-2002 rolled back:');
    const columns = ['id', 'sku', 'paymentId', 'shipmentId', 'flow_status', 'flow_direction', 'flow_step_name', 'flow_last_result', 'flow_error_reason', 'flow_stack', 'flow_version'];
    const rows = await shop.query<Record<string, unknown>[]>(`SELECT ${columns.map((c) => `"${c}"`).join(', ')} FROM shop_orders ORDER BY id`);
    for (const row of rows) {
      print(`  ${String(row.id)}`);
      for (const c of columns.slice(1)) print(`    ${c.padEnd(18)}${cell(row[c])}`);
    }
    for (const row of rows) {
      const snapshot = await runtime.get(String(row.id));
      expectThat(snapshot.status === row.flow_status, `the row of ${String(row.id)} to show the stored status ${snapshot.status}, got ${String(row.flow_status)}`);
    }

    const rolledBack = await orders.findOneByOrFail({ flow: { status: 'rolled_back' } });
    print('');
    print(`rolled back: ${rolledBack.id} (${rolledBack.flow.errorReason?.code ?? '?'}: ${rolledBack.flow.errorReason?.message ?? '?'}), stock ${rolledBack.reservationId ?? 'released'}, payment ${rolledBack.paymentId ?? 'refunded'}`);
    print('effects, in order:');
    for (const line of effects.lines) print(`  ${line}`);
    expectThat(effects.lines.includes('refund the payment of order-2002') && effects.lines.includes('release the stock of order-2002'), 'every effect of order-2002 to be undone');
    expectThat(mirrorProblems.length === 0, `no mirror problems, got: ${mirrorProblems.map(String).join('; ')}`);
    expectNoProblems(problems);
  } finally {
    await runtime.close();
    await sagaStore.close();
    await shop.destroy();
    if (options.dir === undefined) rmSync(dir, { recursive: true, force: true });
  }
}

// `node dist/samples/embedded-entity/run.js` runs it on its own.
runWhenMain(module, (print) => runEmbeddedEntity(print));
