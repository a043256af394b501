/** The base of the adapters (Redis, PostgreSQL) whose outgoing events wait in an {@link OutgoingQueue} while their connection is down. */
import { SagaflowError } from '../../errors/sagaflow-error';
import { quote } from '../../errors/serialized-error';
import type { SagaEvent } from '../event';
import type { EventBus } from '../event-bus';
import { BusAdapterBase, positiveInteger, type BusAdapterName, type BusAdapterOptions } from './adapter-core';
import { OutgoingQueue, type SendVerdict } from './outgoing-queue';

/** An accepted event on its way to a network bus, with its JSON. */
export interface OutgoingMessage {
  readonly event: SagaEvent;
  readonly json: string;
}

/** Options of the adapters that queue outgoing events while their connection is down. */
export interface QueuedBusAdapterOptions extends BusAdapterOptions {
  /**
   * How many accepted events may wait while the connection is down. Beyond that the oldest waiting event is
   * dropped and reported as `event-dropped`. (While connected, a burst is not cut: it waits its turn. Up to one
   * batch of 64 being sent comes on top.)
   * @default 1000
   */
  readonly maxQueued?: number;
}

/**
 * An adapter whose outgoing direction goes through an {@link OutgoingQueue}: accepted events are sent while the
 * connection is up and wait (bounded) while it is down.
 */
export abstract class QueuedBusAdapter extends BusAdapterBase {
  protected readonly outgoing: OutgoingQueue<OutgoingMessage>;

  protected constructor(bus: EventBus, adapterName: BusAdapterName, options: QueuedBusAdapterOptions) {
    super(bus, adapterName, options);
    const max = positiveInteger(options.maxQueued ?? 1000, 'maxQueued');
    this.outgoing = new OutgoingQueue<OutgoingMessage>(
      {
        send: (messages) => this.sendMessages(messages),
        isReady: () => this.canSend,
        classify: (error) => this.classify(error),
        overflowed: (message) =>
          this.report(
            'event-dropped',
            new SagaflowError(
              'EVENT_DROPPED',
              `the ${adapterName} bus adapter's outgoing queue is full (${max} events wait for the connection): dropped the oldest, ` +
                `event ${message.event.id} (${quote(message.event.topic)})`,
              { eventId: message.event.id, topic: message.event.topic, maxQueued: max },
            ),
            message.event.id,
          ),
        failed: (message, error) => this.report('delivery-failed', error, message.event.id),
      },
      max,
    );
  }

  /** True while the connection to the app's bus is up (outgoing events are sent rather than queued). */
  abstract get connected(): boolean;

  /** True while outgoing events can be sent now (the connection they go out on is up). */
  protected get canSend(): boolean {
    return this.connected;
  }

  /** Accepted events waiting to go out to the app's bus, or being sent. */
  get pending(): number {
    return this.outgoing.size;
  }

  /**
   * Sends a batch of messages to the app's bus, in order; resolves to each one's error (`undefined`: sent).
   */
  protected abstract sendMessages(messages: readonly OutgoingMessage[]): Promise<readonly unknown[]>;

  /** Whether a failed send is worth retrying on the next connection. */
  protected abstract classify(error: unknown): SendVerdict;

  /** Checks that a message fits the app's bus; reports and returns false when not. */
  protected fits(_message: OutgoingMessage): boolean {
    return true;
  }

  protected send(event: SagaEvent): void {
    const message = { event, json: JSON.stringify(event) };
    if (this.fits(message)) this.outgoing.push(message);
  }

  /**
   * At stop: lets the current sending round finish, sends the rest when connected, then stops the queue and
   * reports what is left as `event-dropped`.
   */
  protected async flushOrDrop(): Promise<void> {
    await this.outgoing.settled();
    this.outgoing.kick();
    await this.outgoing.settled();
    for (const message of this.outgoing.close()) {
      this.report(
        'event-dropped',
        new SagaflowError(
          'EVENT_DROPPED',
          `the ${this.adapterName} bus adapter stopped while event ${message.event.id} (${quote(message.event.topic)}) waited for the connection`,
          { eventId: message.event.id, topic: message.event.topic },
        ),
        message.event.id,
      );
    }
  }
}
