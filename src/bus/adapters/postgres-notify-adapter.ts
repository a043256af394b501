import type { Client, ClientConfig, Notification } from 'pg';
import { quote } from '../../errors/serialized-error';
import { checkOptions, optionKeys } from '../../input/known-keys';
import { DefinitionError } from '../../errors/definition-error';
import { SagaflowError } from '../../errors/sagaflow-error';
import { requireDependency } from '../../core/optional-dependency';
import { toMillis, type Duration } from '../../time/duration';
import type { EventBus } from '../event-bus';
import { nonEmpty, stoppedError } from './adapter-core';
import type { SendVerdict } from './outgoing-queue';
import { QueuedBusAdapter, type OutgoingMessage, type QueuedBusAdapterOptions } from './queued-adapter';

/** The largest NOTIFY payload PostgreSQL takes, in bytes (it must be shorter than 8000 bytes). */
export const MAX_NOTIFY_PAYLOAD_BYTES = 7999;

/** Options of {@link PostgresNotifyAdapter}. */
export interface PostgresNotifyAdapterOptions extends QueuedBusAdapterOptions {
  /**
   * Where PostgreSQL is: a connection URL or `pg` client settings. The adapter opens one connection of its own
   * (and a new one after each drop) and closes it at `stop()`.
   * @default {} (pg's defaults and the PG* environment variables)
   */
  readonly connection?: string | ClientConfig;
  /**
   * The channel accepted events are NOTIFYed on, as JSON; and the channel LISTENed to for app events unless
   * `listenChannel` says otherwise. Used as given (case-sensitive), at most 63 bytes.
   * @default 'sagaflow_events'
   */
  readonly channel?: string;
  /**
   * The channel LISTENed to for app events.
   * @default the value of `channel`
   */
  readonly listenChannel?: string;
  /**
   * The pause before the first reconnect attempt after the connection dropped; it doubles after each failed
   * attempt up to `maxReconnectDelay`, and starts again from here once connected.
   * @default '100ms'
   */
  readonly reconnectDelay?: Duration;
  /**
   * The longest pause between reconnect attempts.
   * @default '10s'
   */
  readonly maxReconnectDelay?: Duration;
}

const POSTGRES_NOTIFY_KEYS = optionKeys<PostgresNotifyAdapterOptions>()([
  'direction',
  'filter',
  'rememberIds',
  'logger',
  'maxQueued',
  'connection',
  'channel',
  'listenChannel',
  'reconnectDelay',
  'maxReconnectDelay',
]);

type ClientClass = typeof Client;

function loadClient(): ClientClass {
  // Loaded when an adapter is made, so `import 'sagaflow'` does not load pg for applications that do not use it.
  return requireDependency<{ Client: ClientClass }>('pg', 'PostgresNotifyAdapter').Client;
}

/** SQLSTATE classes that a new connection may cure: connection exception, insufficient resources, operator intervention. */
const TRANSIENT_SQLSTATE = /^(08|53|57)/;

function checkChannel(name: string, option: string): string {
  nonEmpty(name, option);
  if (Buffer.byteLength(name, 'utf8') > 63) {
    throw new DefinitionError('BAD_OPTION', `${option} must be at most 63 bytes (a PostgreSQL identifier), got ${quote(name)}`, { [option]: name });
  }
  return name;
}

/**
 * Connects the saga bus to PostgreSQL `LISTEN`/`NOTIFY` through `pg`.
 *
 * - **App → saga bus:** LISTENs on `listenChannel`; every notification payload must be a JSON saga event,
 *   `{ "topic": …, "payload"?: {…}, "id"?: …, "instanceId"?: … }` (the app sends it with
 *   `SELECT pg_notify('sagaflow_events', $1)` or `NOTIFY`). Bad JSON or a wrong shape is reported as
 *   `malformed-message` on {@link PostgresNotifyAdapter.problems$} and dropped; the stream goes on. Good payloads
 *   are handed to `bus.publish` one at a time, in arrival order.
 * - **Saga bus → app:** every event the saga bus accepted is sent with `pg_notify(channel, json)`
 *   (`{ topic, payload, id, instanceId?, publishedAt }`). A NOTIFY payload must be shorter than 8000 bytes: a
 *   larger event is reported as `event-too-large` and not sent — never truncated (publish a reference instead).
 * - **No loops:** an event that came in is not NOTIFYed back, and the adapter's own notifications (the default is
 *   one channel both ways) are not taken in again — by event id, and by the sending backend's process id.
 *
 * **Delivery and reconnection.** When the connection drops (a restart, `pg_terminate_backend`, a network
 * failure) the adapter reports a `connection-error`, reconnects with exponential backoff (`reconnectDelay`
 * doubling up to `maxReconnectDelay`) and LISTENs again. A notification sent while it is not listening is not
 * delivered to it (NOTIFY reaches the sessions listening at commit): that gap is the app's to cover. An event
 * counts as accepted when `bus.publish`/`runtime.publish` resolves: it is then stored in the durable inbox, and no
 * reconnect loses it there. Its delivery *to PostgreSQL* is retried until the connection is back: while it is
 * down, accepted events wait in a bounded in-memory queue (`maxQueued`, default 1000) and are sent in order once
 * connected; when the queue overflows the oldest waiting event is dropped and reported as `event-dropped`, and
 * events still waiting at `stop()` are reported the same way. A NOTIFY whose reply was lost to a drop is sent
 * again, so the app may see an event twice: dedupe by `id`.
 *
 * @example
 * const adapter = new PostgresNotifyAdapter(runtime.bus, { connection: process.env.DATABASE_URL, channel: 'orders' });
 * await adapter.start();
 * // elsewhere: SELECT pg_notify('orders', '{"topic":"payment.captured","payload":{"orderId":"o-1"}}');
 * await adapter.stop();
 */
export class PostgresNotifyAdapter extends QueuedBusAdapter {
  private readonly ClientCtor: ClientClass;
  private readonly config: ClientConfig;
  private readonly channel: string;
  private readonly listenChannel: string;
  private readonly reconnectDelay: number;
  private readonly maxReconnectDelay: number;
  /** The connected (and listening) client. */
  private client: Client | null = null;
  /** A client being connected. */
  private connecting: Client | null = null;
  private failedAttempts = 0;
  private reconnectTimer: ReturnType<typeof setTimeout> | null = null;
  /** True between a drop (or a failed first attempt) and the next connection: reported once. */
  private outage = false;
  private startWaiter: { resolve(): void; reject(error: Error): void } | null = null;

  /** @throws DefinitionError BAD_OPTION */
  constructor(bus: EventBus, options: PostgresNotifyAdapterOptions = {}) {
    checkOptions(options, POSTGRES_NOTIFY_KEYS, 'PostgresNotifyAdapter');
    super(bus, 'postgres', options);
    this.ClientCtor = loadClient();
    const connection = options.connection ?? {};
    this.config = typeof connection === 'string' ? { connectionString: connection } : { ...connection };
    this.channel = checkChannel(options.channel ?? 'sagaflow_events', 'channel');
    this.listenChannel = checkChannel(options.listenChannel ?? this.channel, 'listenChannel');
    this.reconnectDelay = toMillis(options.reconnectDelay ?? '100ms', 'reconnectDelay');
    this.maxReconnectDelay = Math.max(this.reconnectDelay, toMillis(options.maxReconnectDelay ?? '10s', 'maxReconnectDelay'));
  }

  /** True while the adapter's connection is up (and LISTENing, when it takes events in). */
  get connected(): boolean {
    return this.client !== null && !this.stopping;
  }

  /** The backend process id of the adapter's current connection (for operators: pg_stat_activity.pid). */
  get backendPid(): number | undefined {
    return this.client === null ? undefined : (this.client as unknown as { processID?: number }).processID;
  }

  protected open(): Promise<void> {
    const started = new Promise<void>((resolve, reject) => {
      this.startWaiter = { resolve, reject };
    });
    this.attempt();
    return started;
  }

  protected async close(incoming: () => Promise<void>): Promise<void> {
    if (this.reconnectTimer !== null) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = null;
    this.startWaiter?.reject(stoppedError('postgres'));
    this.startWaiter = null;
    this.client?.removeAllListeners('notification');
    await incoming();
    await this.flushOrDrop();
    const clients = [this.client, this.connecting].filter((c): c is Client => c !== null);
    this.client = null;
    this.connecting = null;
    await Promise.all(clients.map((c) => c.end().catch(() => undefined)));
  }

  protected override fits(message: OutgoingMessage): boolean {
    const bytes = Buffer.byteLength(message.json, 'utf8');
    if (bytes <= MAX_NOTIFY_PAYLOAD_BYTES) return true;
    const { id, topic } = message.event;
    this.report(
      'event-too-large',
      new SagaflowError(
        'EVENT_TOO_LARGE',
        `event ${id} (${quote(topic)}) is ${bytes} bytes as JSON, and a NOTIFY payload must be shorter than 8000 bytes: not sent ` +
          '(publish a reference to the data instead)',
        { eventId: id, topic, bytes, limit: MAX_NOTIFY_PAYLOAD_BYTES },
      ),
      id,
    );
    return false;
  }

  protected async sendMessages(messages: readonly OutgoingMessage[]): Promise<readonly unknown[]> {
    const client = this.client;
    if (client === null) return messages.map(() => new SagaflowError('CONNECTION_LOST', 'the postgres connection is down'));
    try {
      // One statement, one transaction: the batch is delivered whole, in array order, or not at all.
      await client.query('SELECT pg_notify($1, payload) FROM unnest($2::text[]) AS payload', [this.channel, messages.map((m) => m.json)]);
      return messages.map(() => undefined);
    } catch (error) {
      if (messages.length === 1 || this.classify(error) === 'retry') return messages.map(() => error);
    }
    // The server refused the batch: send one at a time so that only the bad ones are dropped.
    const errors: unknown[] = [];
    for (const m of messages) {
      try {
        await client.query('SELECT pg_notify($1, $2)', [this.channel, m.json]);
        errors.push(undefined);
      } catch (error) {
        errors.push(error);
      }
    }
    return errors;
  }

  protected classify(error: unknown): SendVerdict {
    const code = (error as { code?: unknown } | null)?.code;
    // A server error (a bad payload, a permission) stays; a lost connection (no SQLSTATE, or class 08/53/57) does not.
    return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) && !TRANSIENT_SQLSTATE.test(code) ? 'drop' : 'retry';
  }

  private attempt(): void {
    if (this.stopping) return;
    const client = new this.ClientCtor(this.config);
    this.connecting = client;
    client.on('error', (error: Error) => this.lost(client, error));
    client.on('end', () => this.lost(client, new SagaflowError('CONNECTION_LOST', 'the postgres connection ended')));
    client.on('notification', (msg: Notification) => this.onNotification(client, msg));
    const connectAndListen = async (): Promise<void> => {
      await client.connect();
      if (this.takesIn) await client.query(`LISTEN ${client.escapeIdentifier(this.listenChannel)}`);
    };
    connectAndListen().then(
      () => {
        if (this.connecting !== client) return; // stopped meanwhile: close() ends it
        this.connecting = null;
        this.client = client;
        this.failedAttempts = 0;
        this.outage = false;
        this.startWaiter?.resolve();
        this.startWaiter = null;
        this.outgoing.kick();
      },
      (error: unknown) => {
        if (this.connecting !== client) return;
        this.connecting = null;
        client.removeAllListeners('notification');
        client.end().catch(() => undefined);
        this.reportOutage(error);
        this.scheduleReconnect();
      },
    );
  }

  /** The current connection failed or ended: report once, and reconnect. */
  private lost(client: Client, error: unknown): void {
    if (this.client !== client || this.stopping) return;
    this.client = null;
    client.removeAllListeners('notification');
    client.end().catch(() => undefined);
    this.reportOutage(error);
    this.scheduleReconnect();
  }

  private reportOutage(error: unknown): void {
    if (this.outage || this.stopping) return;
    this.outage = true;
    this.report('connection-error', error);
  }

  private scheduleReconnect(): void {
    if (this.stopping || this.reconnectTimer !== null) return;
    const delay = Math.min(this.maxReconnectDelay, this.reconnectDelay * 2 ** this.failedAttempts);
    this.failedAttempts += 1;
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null;
      this.attempt();
    }, delay);
  }

  private onNotification(client: Client, msg: Notification): void {
    if (msg.channel !== this.listenChannel) return;
    // Our own NOTIFY on a channel we listen to comes back to us: not an app event.
    if (msg.processId === (client as unknown as { processID?: number }).processID) return;
    this.receiveJson(msg.payload ?? '', `postgres channel ${msg.channel}`);
  }
}
