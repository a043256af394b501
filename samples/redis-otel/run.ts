import 'reflect-metadata';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { Redis } from 'ioredis';
import { LoggingObserver, MemoryStore, SagaRuntime, silentLogger, type SagaResult } from '../../src';
import { RedisAdapter, type AdapterProblem } from '../../src/bus/adapters';
import { OpenTelemetryObserver } from '../../src/observers/otel';
import { collectProblems, expectNoProblems, expectThat, untilParked, SampleExpectationError, runWhenMain } from '../support';
import type { Print } from '../timeline-observer';
import { OrderSaga, PAYMENT_CAPTURED, type OrderState } from './steps';
import { printLogger, spanTree } from './telemetry';

/** Options of {@link runRedisOtel}. */
export interface RedisOtelOptions {
  /** The Redis server, e.g. `redis://127.0.0.1:6379`. */
  readonly redisUrl: string;
  /** The channel the app (here: its payment provider) publishes events for the sagas on. @default 'shop:app-events' */
  readonly inChannel?: string;
  /** The channel every event the saga bus accepts is published to. @default 'shop:saga-events' */
  readonly outChannel?: string;
}

/** One message seen on the outgoing channel. */
interface OutgoingEvent {
  readonly topic: string;
  readonly payload: Record<string, unknown>;
}

const ORDERS: readonly OrderState[] = [
  { orderId: 'order-2001', sku: 'SKU-MUG', quantity: 2, amountCents: 2598, shipTo: 'Lyon' },
  { orderId: 'order-2002', sku: 'SKU-LAMP', quantity: 1, amountCents: 4500, shipTo: 'Atlantis' },
];

/**
 * The order saga wired to Redis (RedisAdapter) and OpenTelemetry (OpenTelemetryObserver), with a LoggingObserver
 * writing to `print`:
 * 1. order-2001: reserve-stock → charge, which waits for `payment.captured`; the payment provider publishes it as
 *    JSON on the Redis channel the adapter subscribes to → ship → completed;
 * 2. order-2002: the same, but the carrier refuses it, so ship, charge and reserve-stock are compensated.
 * Every event the saga bus accepts goes out on `outChannel`, where a plain ioredis subscriber prints it; at the end
 * the spans are printed as a tree. Stops everything it starts (adapter, Redis clients, runtime, tracer provider).
 *
 * Deterministic apart from ids and times, which it does not print. Throws `SampleExpectationError` when an
 * outcome is not the expected one.
 */
export async function runRedisOtel(print: Print, options: RedisOtelOptions): Promise<void> {
  const inChannel = options.inChannel ?? 'shop:app-events';
  const outChannel = options.outChannel ?? 'shop:saga-events';
  const spans = new InMemorySpanExporter();
  const tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(spans)] });
  const runtime = new SagaRuntime({
    store: new MemoryStore(),
    logger: silentLogger,
    workflows: [OrderSaga],
    observers: [
      new LoggingObserver({ logger: printLogger(print) }),
      new OpenTelemetryObserver({ tracerProvider }),
    ],
  });
  const problems = collectProblems(runtime);
  const adapter = new RedisAdapter(runtime.bus, { connection: options.redisUrl, subscribeChannel: inChannel, channel: outChannel });
  const adapterProblems: AdapterProblem[] = [];
  adapter.problems$.subscribe((p) => adapterProblems.push(p));
  // The app's side: a client that listens to what the sagas announce, and one the payment provider publishes with.
  const listener = new Redis(options.redisUrl, { lazyConnect: true });
  const provider = new Redis(options.redisUrl, { lazyConnect: true });
  const seen: OutgoingEvent[] = [];
  listener.on('message', (_channel: string, message: string) => {
    const { topic, payload } = JSON.parse(message) as OutgoingEvent;
    seen.push({ topic, payload });
  });
  try {
    await Promise.all([listener.connect(), provider.connect()]);
    await listener.subscribe(outChannel);
    await adapter.start();
    print(`redis: the saga bus takes in ${inChannel} and publishes to ${outChannel}`);

    for (const order of ORDERS) {
      print('');
      const refused = order.shipTo === 'Atlantis';
      print(`${order.orderId}: ${order.quantity} × ${order.sku} to ${order.shipTo}${refused ? ' (the carrier refuses it)' : ''}`);
      const result = await checkout(runtime, provider, inChannel, order, print);
      if (refused) {
        expectThat(result.status === 'rolled_back', `${order.orderId} to roll back, got ${result.status}`);
        expectThat(result.error?.code === 'NO_CARRIER', `${order.orderId} to fail with NO_CARRIER, got ${result.error?.code}`);
        print(`${order.orderId}: rolled back (${result.error?.code}: ${result.error?.message})`);
      } else {
        expectThat(result.status === 'completed', `${order.orderId} to complete, got ${result.status}`);
        const { reservationId, paymentId, shipmentId } = result.state;
        print(`${order.orderId}: completed — reservation ${reservationId}, payment ${paymentId}, shipment ${shipmentId}`);
      }
      const expected = refused
        ? ['stock.reserved', 'payment.requested', 'payment.refunded', 'stock.released']
        : ['stock.reserved', 'payment.requested', 'order.shipped'];
      const mine = await until(`${order.orderId}'s ${expected.length} events on ${outChannel}`, () => {
        const list = seen.filter((e) => e.payload.orderId === order.orderId);
        return list.length >= expected.length ? list : undefined;
      });
      print(`on redis ${outChannel} (${PAYMENT_CAPTURED} came in from redis, so it is not sent back):`);
      for (const e of mine) print(`  ${e.topic} ${JSON.stringify(e.payload)}`);
      const topics = mine.map((e) => e.topic);
      expectThat(topics.join(',') === expected.join(','), `${expected.join(', ')} on ${outChannel}, got ${topics.join(', ')}`);
    }

    await tracerProvider.forceFlush();
    print('');
    print('spans:');
    for (const line of spanTree(spans.getFinishedSpans())) print(line);
    expectNoProblems(problems);
    expectThat(adapterProblems.length === 0, `no adapter problems, got: ${adapterProblems.map((p) => p.kind).join(', ')}`);
  } finally {
    await adapter.stop();
    await Promise.all([quit(listener), quit(provider)]);
    await runtime.close();
    await tracerProvider.shutdown();
  }
}

/**
 * Starts an order, waits until it parks on `payment.captured`, plays the payment provider (publishes the capture
 * as JSON on the Redis channel the adapter reads), and resolves with how the order ended.
 */
async function checkout(runtime: SagaRuntime, provider: Redis, channel: string, order: OrderState, print: Print): Promise<SagaResult<OrderState>> {
  const handle = await runtime.start<OrderState>(OrderSaga, order, { id: order.orderId });
  const { topics } = await untilParked(runtime, handle.id);
  print(`${order.orderId}: waiting for ${topics.join(', ')}`);
  const webhook = { topic: PAYMENT_CAPTURED, payload: { orderId: order.orderId, paymentId: `pay-${order.orderId}` } };
  print(`payment provider → redis ${channel}: ${JSON.stringify(webhook)}`);
  await provider.publish(channel, JSON.stringify(webhook));
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new SampleExpectationError(`expected ${order.orderId} to finish within 10 s`)), 10_000);
  });
  try {
    return await Promise.race([handle.result(), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Polls `check` until it returns a value (or throws after 10 s). */
async function until<T>(what: string, check: () => T | undefined): Promise<T> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const value = check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new SampleExpectationError(`expected ${what} within 10 s`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

async function quit(client: Redis): Promise<void> {
  if (client.status === 'end') return;
  try {
    await client.quit();
  } catch {
    client.disconnect();
  }
}

// `node dist/samples/redis-otel/run.js` runs it on its own (REDIS_URL, default redis://127.0.0.1:6379).
runWhenMain(module, (print) => runRedisOtel(print, { redisUrl: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379' }));
