import { Observable, Subject, type Subscription } from 'rxjs';
import { serializeThrown } from '../errors/serialized-error';
import type { PublishReceipt } from '../core/publish-receipt';
import type { SagaEvent, SagaEventInput } from './event';
import { SagaflowError } from '../errors/sagaflow-error';

/** Something that went wrong on the bus and was dropped rather than allowed to end the stream. */
export interface BusProblem {
  readonly kind: 'malformed-event' | 'subscriber-threw' | 'source-failed' | 'delivery-failed';
  readonly error: unknown;
}

type Sink = (input: unknown) => Promise<PublishReceipt>;

/**
 * The saga event bus: an RxJS `Observable` of every event the runtime accepted, with `publish` to send one
 * and `connect` to feed it from an application's stream. A listener registered with {@link EventBus.on} that
 * throws is reported and the others keep receiving; a malformed event from a connected stream is reported
 * and dropped, and the stream goes on.
 *
 * @example
 * const bus = new EventBus();
 * const runtime = new SagaRuntime({ bus });
 * bus.connect(fromEvent(appEmitter, 'saga-event'));
 * bus.on((event) => console.log(event.topic));
 */
export class EventBus extends Observable<SagaEvent> {
  private readonly out = new Subject<SagaEvent>();
  private readonly problemSubject = new Subject<BusProblem>();
  private sink: Sink | null = null;

  /** Problems the bus reported and dropped. */
  readonly problems$: Observable<BusProblem> = this.problemSubject.asObservable();

  constructor() {
    super((subscriber) => this.out.subscribe(subscriber));
  }

  /** Publishes an event; resolves once the runtime accepted it. @throws InvalidEventError */
  publish(event: SagaEventInput): Promise<PublishReceipt> {
    if (this.sink === null) {
      return Promise.reject(new SagaflowError('BUS_NOT_ATTACHED', 'this bus is not attached to a runtime; pass it to new SagaRuntime({ bus })'));
    }
    return this.sink(event);
  }

  /**
   * Feeds the bus from an application's stream (app → saga). Malformed values are reported on
   * {@link EventBus.problems$} and dropped; a failing source is reported and the bus goes on.
   */
  connect(source: Observable<unknown>): Subscription {
    return source.subscribe({
      next: (value) => {
        if (this.sink === null) {
          this.report('delivery-failed', new SagaflowError('BUS_NOT_ATTACHED', 'an event arrived before the bus was attached to a runtime'));
          return;
        }
        this.sink(value).catch((error: unknown) => {
          const code = error instanceof SagaflowError ? error.code : undefined;
          this.report(code === 'INVALID_EVENT' ? 'malformed-event' : 'delivery-failed', error);
        });
      },
      error: (error: unknown) => this.report('source-failed', error),
    });
  }

  /** Listens to every accepted event (saga → app); a listener that throws is reported and isolated. */
  on(listener: (event: SagaEvent) => void): Subscription {
    return this.out.subscribe((event) => {
      try {
        listener(event);
      } catch (error) {
        this.report('subscriber-threw', error);
      }
    });
  }

  /** @internal The runtime attaches itself here. */
  attach(sink: Sink): void {
    if (this.sink !== null && this.sink !== sink) {
      throw new SagaflowError('BUS_ALREADY_ATTACHED', 'this bus is already attached to another runtime; give each runtime its own bus');
    }
    this.sink = sink;
  }

  /** @internal The runtime detaches on close. */
  detach(): void {
    this.sink = null;
  }

  /** @internal The runtime emits accepted events here. */
  emit(event: SagaEvent): void {
    this.out.next(event);
  }

  private report(kind: BusProblem['kind'], error: unknown): void {
    if (this.problemSubject.observed) this.problemSubject.next({ kind, error });
    else console.warn(`[sagaflow] bus ${kind}: ${serializeThrown(error).message}`);
  }
}
