/**
 * A NestJS application running an order saga through `sagaflow/nestjs`.
 *
 * - The steps are Nest providers: `Warehouse` and `PaymentGateway` are injected by constructor.
 * - `OrdersService` injects the `SagaRuntime` by class and starts the saga.
 * - `SagaflowModule.forRootAsync` makes the runtime's options in a factory (here a fresh `MemoryStore`).
 * - `app.enableShutdownHooks()` drains the runtime on SIGTERM; `app.close()` does the same.
 *
 * Run: `npm run build && node dist/samples/nestjs/app.js`.
 */
import 'reflect-metadata';
import { Inject, Injectable, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { BaseStep, MemoryStore, Step, Workflow, error, ok, silentLogger, type StepContext, type StepResult } from '../../src';
import { SagaRuntime, SagaflowModule } from '../../src/nestjs';

interface OrderState {
  orderId: string;
  sku: string;
  amount: number;
  reservationId?: string;
  chargeId?: string;
}

/** An in-memory warehouse: reservations by id. */
@Injectable()
class Warehouse {
  readonly reserved = new Map<string, string>();
  reserve(sku: string, key: string): string {
    const id = `res-${key}`;
    this.reserved.set(id, sku);
    return id;
  }
  release(id: string): void {
    this.reserved.delete(id);
  }
}

/** An in-memory payment gateway that refuses amounts over 1000. */
@Injectable()
class PaymentGateway {
  readonly charges: string[] = [];
  charge(orderId: string, amount: number): string | null {
    if (amount > 1000) return null;
    this.charges.push(orderId);
    return `ch-${orderId}`;
  }
}

@Injectable()
@Step({ name: 'reserve-stock' })
class ReserveStock extends BaseStep<OrderState> {
  constructor(@Inject(Warehouse) private readonly warehouse: Warehouse) {
    super();
  }
  override run(state: OrderState, ctx: StepContext): StepResult<OrderState> {
    return ok({ ...state, reservationId: this.warehouse.reserve(state.sku, ctx.idempotencyKeyBase) });
  }
  override rollback(state: OrderState): StepResult<OrderState> {
    if (state.reservationId !== undefined) this.warehouse.release(state.reservationId);
    return ok(state);
  }
}

@Injectable()
@Step({ name: 'charge-card' })
class ChargeCard extends BaseStep<OrderState> {
  constructor(@Inject(PaymentGateway) private readonly payments: PaymentGateway) {
    super();
  }
  override run(state: OrderState): StepResult<OrderState> {
    const chargeId = this.payments.charge(state.orderId, state.amount);
    return chargeId === null ? error({ code: 'CARD_DECLINED', message: `${state.amount} is over the card's limit` }, state) : ok({ ...state, chargeId });
  }
}

@Workflow<OrderState>({ name: 'nest-order', steps: [ReserveStock, ChargeCard] })
class PlaceOrder {}

/** The application's own service: injects the runtime by class. */
@Injectable()
class OrdersService {
  constructor(@Inject(SagaRuntime) private readonly runtime: SagaRuntime) {}
  async place(orderId: string, sku: string, amount: number): Promise<string> {
    const handle = await this.runtime.start(PlaceOrder, { orderId, sku, amount }, { id: orderId });
    const result = await handle.result();
    return result.error === null ? result.status : `${result.status} (${result.error.code})`;
  }
}

@Module({
  imports: [
    SagaflowModule.forRootAsync({
      useFactory: () => ({ workflows: [PlaceOrder], store: new MemoryStore(), logger: silentLogger, drainTimeout: '10s' }),
    }),
  ],
  providers: [Warehouse, PaymentGateway, ReserveStock, ChargeCard, OrdersService],
})
class AppModule {}

/** Boots the application, places an order that goes through and one that is declined, and shuts down. */
export async function runNestjsSample(print: (line: string) => void): Promise<void> {
  const app = await NestFactory.createApplicationContext(AppModule, { logger: false });
  app.enableShutdownHooks();
  const orders = app.get(OrdersService);
  print(`order-1 ${await orders.place('order-1', 'sku-7', 120)}`);
  print(`order-2 ${await orders.place('order-2', 'sku-7', 5000)}`);
  print(`reservations held: ${app.get(Warehouse).reserved.size}, charges: ${app.get(PaymentGateway).charges.join(', ')}`);
  await app.close();
}
