import type { Redis, RedisOptions } from 'ioredis';
import { checkOptions, optionKeys } from '../../input/known-keys';
import { SagaflowError } from '../../errors/sagaflow-error';
import { MissingDependencyError } from '../../errors/missing-dependency-error';
import { requireDependency } from '../../core/optional-dependency';
import type { EventBus } from '../event-bus';
import { nonEmpty, stoppedError } from './adapter-core';
import type { SendVerdict } from './outgoing-queue';
import { QueuedBusAdapter, type OutgoingMessage, type QueuedBusAdapterOptions } from './queued-adapter';

/** Options of {@link RedisAdapter}. */
export interface RedisAdapterOptions extends QueuedBusAdapterOptions {
  /**
   * Where Redis is: an ioredis client (its settings are copied with `duplicate()` for the adapter's own two
   * connections; the client itself is neither used nor closed), ioredis options, or a `redis://` URL. Its
   * `retryStrategy` is how the adapter reconnects (one that gives up leaves the adapter disconnected: outgoing
   * events queue, then drop, as in any outage). The adapter sets, on its own connections only: `lazyConnect`,
   * `autoResubscribe` and `maxRetriesPerRequest: null` (subscriber); `enableOfflineQueue: false`,
   * `maxRetriesPerRequest: 0` and `autoResendUnfulfilledCommands: false` (publisher: the adapter queues and
   * resends itself); `connectionName` `'sagaflow-bus-in'` / `'sagaflow-bus-out'` and `disconnectTimeout: 200`
   * unless the options set them (a client given as a template keeps its own).
   * @default {} (ioredis' defaults: 127.0.0.1:6379, its default retry strategy)
   */
  readonly connection?: Redis | RedisOptions | string;
  /**
   * The channel accepted events are PUBLISHed to, as JSON; and the channel app events are read from unless
   * `subscribeChannel` or `subscribePattern` say otherwise.
   * @default 'sagaflow:events'
   */
  readonly channel?: string;
  /**
   * The channel app events are read from (SUBSCRIBE).
   * @default the value of `channel`
   */
  readonly subscribeChannel?: string;
  /**
   * A glob pattern of channels app events are read from (PSUBSCRIBE), e.g. `'orders:*'`; replaces `subscribeChannel`.
   * @default undefined (SUBSCRIBE to `subscribeChannel`)
   */
  readonly subscribePattern?: string;
}

const REDIS_KEYS = optionKeys<RedisAdapterOptions>()(['direction', 'filter', 'rememberIds', 'logger', 'maxQueued', 'connection', 'channel', 'subscribeChannel', 'subscribePattern']);

type RedisClass = typeof Redis;

function loadRedis(): RedisClass {
  // Loaded when an adapter is made, so applications without Redis never need ioredis (an optional peer dependency).
  const mod = requireDependency<{ Redis?: RedisClass; default?: RedisClass }>('ioredis', 'RedisAdapter');
  const cls = mod.Redis ?? mod.default;
  if (cls === undefined) throw new MissingDependencyError('ioredis', 'npm install ioredis@5', 'RedisAdapter needs ioredis 5, whose module exports a Redis class; this one exports none: run `npm install ioredis@5`');
  return cls;
}

/**
 * Connects the saga bus to Redis pub/sub through ioredis.
 *
 * - **App → saga bus:** SUBSCRIBEs to `subscribeChannel` (or PSUBSCRIBEs to `subscribePattern`); every message
 *   must be a JSON saga event, `{ "topic": …, "payload"?: {…}, "id"?: …, "instanceId"?: … }`. Bad JSON or a
 *   wrong shape is reported as `malformed-message` on {@link RedisAdapter.problems$} and dropped; the
 *   subscription goes on. Good messages are handed to `bus.publish` one at a time, in arrival order.
 * - **Saga bus → app:** every event the saga bus accepted is PUBLISHed to `channel` as JSON
 *   (`{ topic, payload, id, instanceId?, publishedAt }`).
 * - **No loops:** an event that came in from Redis is not published back, and the adapter's own messages coming
 *   back on a channel it subscribes to (the default: one channel both ways) are not taken in again — both by
 *   event id.
 *
 * **Delivery and reconnection.** Two connections (a subscriber and a publisher) reconnect by ioredis' own
 * `retryStrategy`, and the subscriber re-subscribes. Pub/sub is at-most-once: a message published while the
 * subscriber is disconnected never reaches it — that gap is the app's to cover (or use the durable saga side).
 * An event counts as accepted when `bus.publish`/`runtime.publish` resolves: it is then stored in the durable
 * inbox, and no reconnect loses it there. Its delivery *to Redis* is retried until the connection is back: while
 * the publisher is down, accepted events wait in a bounded in-memory queue (`maxQueued`, default 1000) and are
 * sent in order once it is ready again; when the queue overflows the oldest waiting event is dropped and
 * reported as `event-dropped`, and events still waiting at `stop()` are reported the same way. A PUBLISH whose
 * reply was lost to a disconnect is sent again, so the app may see an event twice: dedupe by `id`. The queue
 * lives in this process: a crash loses what waited in it (the events stay accepted on the saga side).
 *
 * @example
 * const adapter = new RedisAdapter(runtime.bus, { connection: 'redis://127.0.0.1:6379', channel: 'orders:events' });
 * adapter.problems$.subscribe((p) => log.warn(p));
 * await adapter.start();
 * // …
 * await adapter.stop();
 */
export class RedisAdapter extends QueuedBusAdapter {
  private readonly connection: Redis | RedisOptions | string;
  private readonly channel: string;
  private readonly subscribeChannel: string;
  private readonly subscribePattern: string | undefined;
  private readonly RedisCtor: RedisClass;
  private subscriber: Redis | null = null;
  private publisher: Redis | null = null;
  /** Rejects a pending start() when stop() comes first. */
  private abortStart: ((error: Error) => void) | null = null;

  /** @throws SagaflowError MISSING_DEPENDENCY when ioredis is not installed; DefinitionError BAD_OPTION. */
  constructor(bus: EventBus, options: RedisAdapterOptions = {}) {
    checkOptions(options, REDIS_KEYS, 'RedisAdapter');
    super(bus, 'redis', options);
    this.RedisCtor = loadRedis();
    this.connection = options.connection ?? {};
    this.channel = nonEmpty(options.channel ?? 'sagaflow:events', 'channel');
    this.subscribeChannel = nonEmpty(options.subscribeChannel ?? this.channel, 'subscribeChannel');
    this.subscribePattern = options.subscribePattern === undefined ? undefined : nonEmpty(options.subscribePattern, 'subscribePattern');
  }

  /** True while the adapter's connections are ready (the subscriber may still be re-subscribing). */
  get connected(): boolean {
    const subOk = this.subscriber === null || this.subscriber.status === 'ready';
    const pubOk = this.publisher === null || this.publisher.status === 'ready';
    return (this.subscriber !== null || this.publisher !== null) && subOk && pubOk && !this.stopping;
  }

  protected override get canSend(): boolean {
    return this.publisher !== null && this.publisher.status === 'ready' && !this.stopping;
  }

  protected open(): Promise<void> {
    const RedisCtor = this.RedisCtor;
    const make = (override: Partial<RedisOptions>, name: string): Redis => {
      const given = this.connection;
      if (typeof given === 'object' && typeof (given as Redis).duplicate === 'function') {
        const client = given as Redis;
        return client.duplicate({ ...override, connectionName: client.options.connectionName ?? name });
      }
      // ioredis waits disconnectTimeout for a closing socket, on a timer it leaves running even when the socket is
      // already gone (a stop while reconnecting): keep it short so a stopped adapter does not hold the process.
      if (typeof given === 'string') return new RedisCtor(given, { disconnectTimeout: 200, ...override, connectionName: name });
      const options = given as RedisOptions;
      return new RedisCtor({ disconnectTimeout: 200, ...options, ...override, connectionName: options.connectionName ?? name });
    };
    const waits: Promise<void>[] = [];
    if (this.takesIn) {
      const sub = make({ lazyConnect: true, autoResubscribe: true, maxRetriesPerRequest: null }, 'sagaflow-bus-in');
      this.subscriber = sub;
      this.watchConnection(sub);
      sub.on('message', (channel: string, message: string) => this.receiveJson(message, `redis channel ${channel}`));
      sub.on('pmessage', (_pattern: string, channel: string, message: string) => this.receiveJson(message, `redis channel ${channel}`));
      waits.push(
        (this.subscribePattern === undefined ? sub.subscribe(this.subscribeChannel) : sub.psubscribe(this.subscribePattern)).then(() => undefined),
      );
    }
    if (this.sendsOut) {
      const pub = make(
        { lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 0, autoResendUnfulfilledCommands: false },
        'sagaflow-bus-out',
      );
      this.publisher = pub;
      this.watchConnection(pub);
      pub.on('ready', () => this.outgoing.kick());
      waits.push(
        new Promise<void>((resolve) => {
          pub.once('ready', () => resolve());
          // A failed first attempt is reported by the 'error' listener; ioredis keeps retrying.
          pub.connect().catch(() => undefined);
        }),
      );
    }
    return new Promise<void>((resolve, reject) => {
      this.abortStart = reject;
      Promise.all(waits).then(
        () => {
          this.abortStart = null;
          resolve();
        },
        (error: unknown) => {
          this.abortStart = null;
          reject(error instanceof Error ? error : new Error(String(error)));
        },
      );
    });
  }

  protected async close(incoming: () => Promise<void>): Promise<void> {
    this.abortStart?.(stoppedError('redis'));
    this.abortStart = null;
    this.subscriber?.removeAllListeners('message');
    this.subscriber?.removeAllListeners('pmessage');
    await incoming();
    await this.flushOrDrop();
    await Promise.all([closeClient(this.subscriber), closeClient(this.publisher)]);
  }

  protected async sendMessages(messages: readonly OutgoingMessage[]): Promise<readonly unknown[]> {
    const pub = this.publisher;
    if (pub === null) return messages.map(() => new SagaflowError('CONNECTION_LOST', 'the redis publisher is closed'));
    // One connection writes its commands in order: these are pipelined, and their replies come back in order.
    const outcomes = await Promise.allSettled(messages.map((m) => pub.publish(this.channel, m.json)));
    return outcomes.map((o) => (o.status === 'fulfilled' ? undefined : (o.reason as unknown)));
  }

  protected classify(error: unknown): SendVerdict {
    // A reply error (ACL denial, …) will not go away by reconnecting; anything else is the connection.
    return error instanceof Error && error.name === 'ReplyError' ? 'drop' : 'retry';
  }

  /** Reports the first error of each outage of each connection (ioredis emits one per failed attempt). */
  private watchConnection(client: Redis): void {
    let outage = false;
    client.on('error', (error: unknown) => {
      if (outage || this.stopping) return;
      outage = true;
      this.report('connection-error', error);
    });
    client.on('ready', () => {
      outage = false;
    });
    client.on('close', () => {
      if (outage || this.stopping) return;
      outage = true;
      this.report('connection-error', new SagaflowError('CONNECTION_LOST', `the redis connection ${client.options.connectionName ?? ''} closed; reconnecting`));
    });
  }
}

/** Closes an ioredis client and waits for its socket to be gone. */
async function closeClient(client: Redis | null): Promise<void> {
  if (client === null || client.status === 'end') return;
  const status = client.status;
  // A client between attempts has no socket: disconnect() only cancels the next attempt, and 'end' may not come.
  const ended =
    status === 'reconnecting' || status === 'wait'
      ? Promise.resolve()
      : new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, 2000);
          client.once('end', () => {
            clearTimeout(timer);
            resolve();
          });
        });
  if (status === 'ready') {
    try {
      await client.quit();
    } catch {
      client.disconnect();
    }
  } else {
    client.disconnect();
  }
  await ended;
}
