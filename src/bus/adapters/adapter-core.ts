import { Subject, type Observable, type Subscription } from 'rxjs';
import { DefinitionError } from '../../errors/definition-error';
import { SagaflowError } from '../../errors/sagaflow-error';
import { serializeThrown, quote } from '../../errors/serialized-error';
import { consoleLogger, type Logger } from '../../core/logger';
import { normalizeEvent, type SagaEvent, type SagaEventInput } from '../event';
import type { EventBus } from '../event-bus';

/** Which way events flow through an adapter. */
export type AdapterDirection = 'both' | 'in' | 'out';

/** The adapters that ship with sagaflow. */
export type BusAdapterName = 'event-emitter' | 'redis' | 'postgres';

/**
 * What went wrong in an adapter. Nothing here ends the adapter or the bus; each is reported on
 * {@link BusAdapter.problems$} and the stream goes on.
 *
 * - `malformed-message` — the app's bus carried something that is not a saga event (not JSON, not an object, no
 *   string `topic`, a payload that is not an object, …). Dropped. `error` says what and where.
 * - `publish-failed` — the saga bus refused a well-formed app event for another reason (the runtime is closed,
 *   the store failed). Dropped: the event was never accepted.
 * - `delivery-failed` — sending an accepted event to the app's bus failed for good (an app listener threw, the
 *   server refused the command). Dropped for this adapter; the event stays accepted on the saga side.
 * - `event-too-large` — an accepted event does not fit the app's bus (a NOTIFY payload must be under 8000 bytes).
 *   Not sent — never truncated.
 * - `event-dropped` — an accepted event waited for a connection that did not come back in time: the outgoing
 *   queue overflowed (the oldest is dropped) or the adapter was stopped while disconnected.
 * - `connection-error` — a connection failed or dropped (reported once per outage of each connection); the
 *   adapter reconnects.
 */
export type AdapterProblemKind =
  | 'malformed-message'
  | 'publish-failed'
  | 'delivery-failed'
  | 'event-too-large'
  | 'event-dropped'
  | 'connection-error';

/** A problem an adapter reported and survived. */
export interface AdapterProblem {
  /** Which adapter. */
  readonly adapter: BusAdapterName;
  readonly kind: AdapterProblemKind;
  /** The cause: a {@link SagaflowError} with a stable code for the ones the adapter made, else what was thrown. */
  readonly error: unknown;
  /** The event concerned, when there is one with an id. */
  readonly eventId?: string;
}

/** What every adapter offers. */
export interface BusAdapter {
  /**
   * Starts both directions. Resolves once the adapter listens to the app's bus (for network adapters: connected and
   * subscribed; while the server is unreachable it keeps retrying and waits). Calling it again returns the same
   * promise while it runs. Rejects with `ADAPTER_STOPPED` once {@link BusAdapter.stop} was called.
   */
  start(): Promise<void>;
  /**
   * Stops both directions and releases everything it opened (listeners, connections, timers). App events already
   * handed to the saga bus are waited for; outgoing events still waiting for a connection are reported as
   * `event-dropped`. Idempotent. A stopped adapter cannot be started again: make a new one.
   */
  stop(): Promise<void>;
  /** Problems reported and survived; see {@link AdapterProblemKind}. Completes after `stop()`. */
  readonly problems$: Observable<AdapterProblem>;
}

/** Options every adapter takes. */
export interface BusAdapterOptions {
  /**
   * Which directions run: `'in'` only takes app events in (app → saga bus), `'out'` only sends accepted events to
   * the app (saga bus → app).
   * @default 'both'
   */
  readonly direction?: AdapterDirection;
  /**
   * Which accepted events go out to the app. Events that came in from this adapter's app bus never go back to it,
   * whatever this says.
   * @default every event
   */
  readonly filter?: (event: SagaEvent) => boolean;
  /**
   * How many event ids the adapter remembers for loop protection: ids it took in (not sent back) and ids it sent
   * out (not taken in again when the app's bus hands them back).
   * @default 10000
   */
  readonly rememberIds?: number;
  /**
   * Where problems go while nobody subscribes to {@link BusAdapter.problems$} (as a warning).
   * @default consoleLogger
   */
  readonly logger?: Logger;
}

/** A bounded set of recent ids, oldest evicted first. */
export class RecentIds {
  private readonly ids = new Map<string, true>();
  constructor(private readonly capacity: number) {}

  add(id: string): void {
    this.ids.delete(id);
    this.ids.set(id, true);
    if (this.ids.size > this.capacity) {
      const oldest = this.ids.keys().next();
      if (oldest.done !== true) this.ids.delete(oldest.value);
    }
  }

  has(id: string): boolean {
    return this.ids.has(id);
  }

  /** True (and forgets it) when `id` is there. */
  take(id: string): boolean {
    return this.ids.delete(id);
  }

  delete(id: string): void {
    this.ids.delete(id);
  }
}

/** Checks a positive integer option. @throws DefinitionError BAD_OPTION */
export function positiveInteger(value: number, name: string): number {
  if (!Number.isInteger(value) || value < 1) {
    throw new DefinitionError('BAD_OPTION', `${name} must be a positive integer, got ${String(value)}`, { [name]: value });
  }
  return value;
}

/** Checks a non-empty string option. @throws DefinitionError BAD_OPTION */
export function nonEmpty(value: string, name: string): string {
  if (typeof value !== 'string' || value.length === 0) {
    throw new DefinitionError('BAD_OPTION', `${name} must be a non-empty string, got ${quote(value)}`, { [name]: value });
  }
  return value;
}

/** The error of a stop that came before start finished. */
export function stoppedError(adapter: BusAdapterName): SagaflowError {
  return new SagaflowError('ADAPTER_STOPPED', `the ${adapter} bus adapter was stopped`, { adapter });
}

/**
 * What the adapters share: the two directions on the saga bus, loop protection by event id, problem reporting
 * and the start/stop life cycle. A subclass connects to its app bus in {@link BusAdapterBase.open}, calls
 * {@link BusAdapterBase.receive} (or {@link BusAdapterBase.receiveJson}) for each app message, sends what
 * {@link BusAdapterBase.send} gets, and releases everything in {@link BusAdapterBase.close}.
 */
export abstract class BusAdapterBase implements BusAdapter {
  private readonly problemSubject = new Subject<AdapterProblem>();
  readonly problems$: Observable<AdapterProblem> = this.problemSubject.asObservable();

  /** Ids of app events handed to the saga bus: when the bus emits them, they are not sent back. */
  private readonly fromApp: RecentIds;
  /** Ids of events sent to the app: when the app's bus hands them back, they are not taken in again. */
  private readonly toApp: RecentIds;
  private readonly filter: (event: SagaEvent) => boolean;
  private readonly logger: Logger;
  /** App events are handed to the saga bus one at a time, in arrival order. */
  private incomingTail: Promise<void> = Promise.resolve();
  private subscription: Subscription | null = null;
  private startPromise: Promise<void> | null = null;
  private stopPromise: Promise<void> | null = null;

  /** True when app events are taken in. */
  protected readonly takesIn: boolean;
  /** True when accepted events are sent to the app. */
  protected readonly sendsOut: boolean;

  protected constructor(
    protected readonly bus: EventBus,
    protected readonly adapterName: BusAdapterName,
    options: BusAdapterOptions,
  ) {
    const direction = options.direction ?? 'both';
    if (direction !== 'both' && direction !== 'in' && direction !== 'out') {
      throw new DefinitionError('BAD_OPTION', `direction must be 'both', 'in' or 'out', got ${quote(direction)}`, { direction });
    }
    this.takesIn = direction !== 'out';
    this.sendsOut = direction !== 'in';
    const remember = positiveInteger(options.rememberIds ?? 10_000, 'rememberIds');
    this.fromApp = new RecentIds(remember);
    this.toApp = new RecentIds(remember);
    this.filter = options.filter ?? (() => true);
    this.logger = options.logger ?? consoleLogger;
  }

  /** True once stop() was called. */
  protected get stopping(): boolean {
    return this.stopPromise !== null;
  }

  start(): Promise<void> {
    if (this.stopping) return Promise.reject(stoppedError(this.adapterName));
    if (this.startPromise !== null) return this.startPromise;
    // Listen to the saga bus first: events accepted while connecting wait in the outgoing queue.
    if (this.sendsOut) this.subscription = this.bus.on((event) => this.onAccepted(event));
    let started: Promise<void>;
    try {
      started = this.open();
    } catch (error) {
      started = Promise.reject(error instanceof Error ? error : new Error(String(error)));
    }
    // A caller that awaits start() still sees its rejection; one that did not (`void adapter.start()`, then a stop
    // during the connect) does not crash the process with an unhandled rejection.
    started.catch(() => undefined);
    this.startPromise = started;
    return started;
  }

  stop(): Promise<void> {
    if (this.stopPromise !== null) return this.stopPromise;
    this.stopPromise = (async () => {
      this.subscription?.unsubscribe();
      this.subscription = null;
      try {
        await this.close(() => this.incomingTail);
      } finally {
        await this.incomingTail;
        this.problemSubject.complete();
      }
    })();
    return this.stopPromise;
  }

  /** Connects to the app's bus and starts listening; resolves when it listens. */
  protected abstract open(): Promise<void>;

  /**
   * Stops listening to the app's bus, awaits `incoming()` (app events being handed to the saga bus), flushes or
   * drops what waits to go out, and releases every connection and timer.
   */
  protected abstract close(incoming: () => Promise<void>): Promise<void>;

  /** Sends an accepted event to the app (or queues it). Must not throw. */
  protected abstract send(event: SagaEvent): void;

  /** Reports a problem (to problems$, or the logger while nobody listens). */
  protected report(kind: AdapterProblemKind, error: unknown, eventId?: string): void {
    const problem: AdapterProblem = eventId === undefined ? { adapter: this.adapterName, kind, error } : { adapter: this.adapterName, kind, error, eventId };
    if (this.problemSubject.observed && !this.problemSubject.closed) {
      this.problemSubject.next(problem);
    } else {
      this.logger.warn({ adapter: this.adapterName, kind, eventId, error: serializeThrown(error) }, `${this.adapterName} bus adapter: ${kind}`);
    }
  }

  /** Takes in an app message that should be JSON text. */
  protected receiveJson(text: string, where: string): void {
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (cause) {
      const preview = text.length > 120 ? `${text.slice(0, 120)}…` : text;
      this.report(
        'malformed-message',
        new SagaflowError('MALFORMED_MESSAGE', `a message on ${where} is not JSON (${(cause as Error).message}): ${quote(preview)}`, {
          where,
        }),
      );
      return;
    }
    this.receive(value, where);
  }

  /**
   * Takes in an app value: checks its shape, drops echoes of events this adapter sent out, gives it an id when it
   * has none (so the saga bus does not send it back) and hands it to the saga bus, in order.
   */
  protected receive(value: unknown, where: string): void {
    if (!this.takesIn || this.stopping) return;
    let event: SagaEvent;
    try {
      // The same check the runtime makes; an id is assigned here when the app's event has none.
      event = normalizeEvent(value, Date.now());
    } catch (error) {
      this.report('malformed-message', withWhere(error, where));
      return;
    }
    if (this.toApp.has(event.id)) return; // our own event, handed back by the app's bus
    const input: SagaEventInput =
      event.instanceId === undefined
        ? { topic: event.topic, payload: event.payload, id: event.id }
        : { topic: event.topic, payload: event.payload, id: event.id, instanceId: event.instanceId };
    this.fromApp.add(event.id);
    this.incomingTail = this.incomingTail.then(() =>
      this.bus.publish(input).then(
        () => undefined,
        (error: unknown) => {
          this.fromApp.delete(event.id);
          const code = error instanceof SagaflowError ? error.code : undefined;
          this.report(code === 'INVALID_EVENT' ? 'malformed-message' : 'publish-failed', error, event.id);
        },
      ),
    );
  }

  private onAccepted(event: SagaEvent): void {
    if (this.fromApp.take(event.id)) return; // it came from this app bus: do not echo it back
    let wanted: boolean;
    try {
      wanted = this.filter(event);
    } catch (error) {
      this.report('delivery-failed', error, event.id);
      return;
    }
    if (!wanted) return;
    this.toApp.add(event.id);
    this.send(event);
  }
}

function withWhere(error: unknown, where: string): unknown {
  if (error instanceof SagaflowError) {
    const made = new SagaflowError(error.code, `${error.message} (from ${where})`, { ...error.details, where });
    made.name = error.name;
    return made;
  }
  return error;
}
