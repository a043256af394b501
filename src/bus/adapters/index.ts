/**
 * Bus adapters: connect the saga bus to an application's bus, both ways (app → saga bus, saga bus → app), without
 * echo loops. Each is a small module: ioredis (an optional peer dependency) and pg are loaded only when their
 * adapter starts.
 *
 * @module sagaflow/adapters
 */
export type {
  AdapterDirection,
  AdapterProblem,
  AdapterProblemKind,
  BusAdapter,
  BusAdapterName,
  BusAdapterOptions,
} from './adapter-core';
export type { QueuedBusAdapterOptions } from './queued-adapter';
export { EventEmitterAdapter, type EventEmitterAdapterOptions } from './event-emitter-adapter';
export { RedisAdapter, type RedisAdapterOptions } from './redis-adapter';
export { PostgresNotifyAdapter, MAX_NOTIFY_PAYLOAD_BYTES, type PostgresNotifyAdapterOptions } from './postgres-notify-adapter';
