import type { EventEmitter } from 'node:events';
import { quote } from '../../errors/serialized-error';
import { checkOptions, optionKeys } from '../../input/known-keys';
import { DefinitionError } from '../../errors/definition-error';
import type { SagaEvent } from '../event';
import type { EventBus } from '../event-bus';
import { BusAdapterBase, type BusAdapterOptions } from './adapter-core';

/** Options of {@link EventEmitterAdapter}. */
export interface EventEmitterAdapterOptions extends BusAdapterOptions {
  /**
   * The emitter event that carries whole saga events, both ways. In: the app emits
   * `emitter.emit(eventName, { topic, payload?, id?, instanceId? })`. Out: every accepted event is emitted as
   * `emitter.emit(eventName, sagaEvent)` (`{ topic, payload, id, instanceId?, publishedAt }`).
   * @default 'sagaflow:event'
   */
  readonly eventName?: string | symbol;
  /**
   * Topics the app emits as emitter events of their own: `emitter.emit('payment.captured', { orderId })` becomes
   * `{ topic: 'payment.captured', payload: { orderId } }` on the saga bus (the payload must be an object or
   * absent). Give an id or an instanceId through `eventName` instead.
   * @default [] (only `eventName` is listened to)
   */
  readonly topics?: readonly string[];
  /**
   * Also emit every accepted event under its topic: `emitter.emit(event.topic, event.payload, event)`, so app
   * code can listen with `emitter.on('payment.captured', (payload, event) => …)`. (An event whose topic is
   * `'error'` goes out under `eventName` only.)
   * @default false
   */
  readonly emitTopics?: boolean;
}

const EVENT_EMITTER_KEYS = optionKeys<EventEmitterAdapterOptions>()(['direction', 'filter', 'rememberIds', 'logger', 'eventName', 'topics', 'emitTopics']);

/**
 * Connects the saga bus to a Node `EventEmitter` the application uses as its bus.
 *
 * **Mapping.** Whole events travel under one emitter event name, `eventName` (default `'sagaflow:event'`), both
 * ways. Besides, the app may emit plain `(topic, payload)` pairs for the `topics` it lists, and the adapter may
 * emit accepted events under their topic as `(payload, event)` (`emitTopics`).
 *
 * - **App → saga bus:** each value is checked like `runtime.publish` checks it; a malformed one is reported as
 *   `malformed-message` on {@link EventEmitterAdapter.problems$} and dropped, and later ones still flow. Good ones
 *   are handed to `bus.publish` one at a time, in emit order.
 * - **Saga bus → app:** every event the saga bus accepted is emitted synchronously. An app listener that throws
 *   is reported as `delivery-failed` (Node stops calling the listeners after it for that emit); the bus goes on.
 * - **No loops:** an event that came in from the emitter is not emitted back, and an event the adapter emitted is
 *   not taken in again when it (or a copy with the same id) is emitted back.
 *
 * Nothing is lost to a connection here: emitting is in-process and synchronous.
 *
 * @example
 * const adapter = new EventEmitterAdapter(runtime.bus, appEvents, { topics: ['payment.captured'] });
 * await adapter.start();
 * appEvents.emit('payment.captured', { orderId: 'o-1' });         // resumes the saga waiting for it
 * appEvents.on('sagaflow:event', (event) => audit(event.topic));  // everything the saga bus accepted
 * await adapter.stop();
 */
export class EventEmitterAdapter extends BusAdapterBase {
  private readonly eventName: string | symbol;
  private readonly topics: readonly string[];
  private readonly emitTopics: boolean;
  /** The event objects this adapter emitted: when the emitter hands one back, it is not taken in. */
  private readonly emitted = new WeakSet<object>();
  private readonly listeners: { name: string | symbol; listener: (...args: unknown[]) => void }[] = [];

  constructor(
    bus: EventBus,
    private readonly emitter: EventEmitter,
    options: EventEmitterAdapterOptions = {},
  ) {
    checkOptions(options, EVENT_EMITTER_KEYS, 'EventEmitterAdapter');
    super(bus, 'event-emitter', options);
    this.eventName = options.eventName ?? 'sagaflow:event';
    this.topics = [...(options.topics ?? [])];
    this.emitTopics = options.emitTopics ?? false;
    if (typeof this.eventName === 'string' && this.eventName.length === 0) {
      throw new DefinitionError('BAD_OPTION', 'eventName must not be empty', {});
    }
    for (const name of [this.eventName, ...this.topics]) {
      if (name === 'error') {
        throw new DefinitionError('BAD_OPTION', `"error" cannot be an event name or topic of the EventEmitter adapter: EventEmitter throws it when nobody listens`, {});
      }
    }
    for (const topic of this.topics) {
      if (typeof topic !== 'string' || topic.length === 0) {
        throw new DefinitionError('BAD_OPTION', `topics must be non-empty strings, got ${quote(topic)}`, {});
      }
    }
  }

  protected open(): Promise<void> {
    if (this.takesIn) {
      this.listen(this.eventName, (value: unknown) => {
        if (typeof value === 'object' && value !== null && this.emitted.has(value)) return;
        this.receive(value, `emitter event ${String(this.eventName)}`);
      });
      for (const topic of this.topics) {
        this.listen(topic, (payload: unknown, event: unknown) => {
          if (typeof event === 'object' && event !== null && this.emitted.has(event)) return;
          this.receive(payload === undefined ? { topic } : { topic, payload }, `emitter event ${topic}`);
        });
      }
    }
    return Promise.resolve();
  }

  protected async close(incoming: () => Promise<void>): Promise<void> {
    for (const { name, listener } of this.listeners.splice(0)) this.emitter.off(name, listener);
    await incoming();
  }

  protected send(event: SagaEvent): void {
    this.emitted.add(event);
    this.emitSafely(event, this.eventName, event);
    if (this.emitTopics && event.topic !== this.eventName && event.topic !== 'error') this.emitSafely(event, event.topic, event.payload, event);
  }

  private emitSafely(event: SagaEvent, name: string | symbol, ...args: unknown[]): void {
    try {
      this.emitter.emit(name, ...args);
    } catch (error) {
      this.report('delivery-failed', error, event.id);
    }
  }

  private listen(name: string | symbol, listener: (...args: never[]) => void): void {
    const wrapped = listener as (...args: unknown[]) => void;
    this.emitter.on(name, wrapped);
    this.listeners.push({ name, listener: wrapped });
  }
}
