import { createHash } from 'node:crypto';
import { clearInterval, clearTimeout, setInterval, setTimeout } from 'node:timers';
import type { Client, ClientConfig, Notification } from 'pg';
import type { DataSource } from 'typeorm';
import { quoteIdent } from './dialect';
import { pgDriver } from './drivers';

/** How the LISTEN connection of a PostgreSQL store behaves. */
export interface PgListenOptions {
  /** The first delay before reconnecting a dropped LISTEN connection; it doubles on every failed try. @default 100 */
  readonly minBackoffMs?: number;
  /** The longest delay between reconnection tries. @default 10000 */
  readonly maxBackoffMs?: number;
  /**
   * How often the idle LISTEN connection is checked with `SELECT 1`, so that a connection that died silently
   * (no FIN/RST) is noticed and replaced. `0` turns the check off. @default 30000
   */
  readonly heartbeatMs?: number;
}

/** The `application_name` of the LISTEN connections (to find them in `pg_stat_activity`). */
export const LISTEN_APPLICATION_NAME = 'sagaflow-listen';

/** Notifications carry at most this many bytes of instance id; a longer id is sent as '' (meaning: look at the whole inbox). */
export const MAX_NOTIFY_ID_BYTES = 7000;

/**
 * The channel of inbox notifications for the tables in `schema`: `sagaflow_inbox`, or `sagaflow_inbox:<schema>`
 * so that stores on different schemas of one database do not wake each other (a digest when that is longer
 * than PostgreSQL's 63-byte identifier limit).
 */
export function inboxChannel(schema: string | undefined): string {
  if (schema === undefined) return 'sagaflow_inbox';
  const channel = `sagaflow_inbox:${schema}`;
  if (Buffer.byteLength(channel) <= 63) return channel;
  return `sagaflow_inbox:${createHash('sha256').update(schema).digest('hex').slice(0, 40)}`;
}

/** The `pg` client settings of a TypeORM `postgres` data source (as TypeORM builds its pool), for a LISTEN connection. */
export function listenClientConfig(dataSource: DataSource): ClientConfig {
  const options = dataSource.options as unknown as {
    readonly replication?: { readonly master?: Record<string, unknown> };
    readonly connectTimeoutMS?: number;
    readonly extra?: Record<string, unknown>;
  };
  const credentials = (options.replication?.master ?? options) as {
    readonly url?: string;
    readonly host?: string;
    readonly port?: number;
    readonly username?: string;
    readonly password?: ClientConfig['password'];
    readonly database?: string;
    readonly ssl?: ClientConfig['ssl'];
  };
  const config: ClientConfig = { ...(options.extra ?? {}) };
  const set = <K extends keyof ClientConfig>(key: K, value: ClientConfig[K] | undefined): void => {
    if (value !== undefined) config[key] = value;
  };
  set('connectionString', credentials.url);
  set('host', credentials.host);
  set('port', credentials.port);
  set('user', credentials.username);
  set('password', credentials.password);
  set('database', credentials.database);
  set('ssl', credentials.ssl);
  set('connectionTimeoutMillis', options.connectTimeoutMS);
  config.application_name = LISTEN_APPLICATION_NAME;
  config.keepAlive = true;
  return config;
}

/** What a {@link PgInboxListener} reports to its store. */
export interface PgListenerHooks {
  /** A notification (or '' for "look at the whole inbox"). */
  readonly notified: (instanceId: string) => void;
  /** After every successful LISTEN: lists the instances with pending inbox rows (the ones notified meanwhile). */
  readonly resync: () => Promise<void>;
  /** A connection attempt failed or the connection dropped (it is being retried). */
  readonly problem: (error: unknown, action: string) => void;
}

/**
 * A dedicated PostgreSQL connection that LISTENs on the inbox channel. When it drops (the server restarted, a
 * network failure, `pg_terminate_backend`) it reconnects with exponential backoff, and after every (re)connect
 * it resyncs — lists every instance with pending inbox rows — so a notification sent while it was away is not
 * missed. Its timers are unref'd: it never keeps a process alive by itself.
 */
export class PgInboxListener {
  private client: Client | null = null;
  private stopped = false;
  private started = false;
  private failures = 0;
  private retry: NodeJS.Timeout | null = null;
  private heartbeat: NodeJS.Timeout | null = null;
  private connecting: Promise<void> | null = null;
  private readonly minBackoffMs: number;
  private readonly maxBackoffMs: number;
  private readonly heartbeatMs: number;
  /** How many times the connection was (re)established. */
  connects = 0;

  constructor(
    private readonly config: () => Promise<ClientConfig>,
    private readonly channel: string,
    private readonly hooks: PgListenerHooks,
    options: PgListenOptions = {},
  ) {
    this.minBackoffMs = Math.max(1, options.minBackoffMs ?? 100);
    this.maxBackoffMs = Math.max(this.minBackoffMs, options.maxBackoffMs ?? 10_000);
    this.heartbeatMs = Math.max(0, options.heartbeatMs ?? 30_000);
  }

  /** True while the LISTEN is in place. */
  get listening(): boolean {
    return this.client !== null;
  }

  /** Starts listening (idempotent). Connection failures are retried, never thrown. */
  start(): void {
    if (this.started || this.stopped) return;
    this.started = true;
    this.connect();
  }

  /** Stops listening and closes the connection; no reconnection follows. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.retry !== null) clearTimeout(this.retry);
    if (this.heartbeat !== null) clearInterval(this.heartbeat);
    this.retry = null;
    this.heartbeat = null;
    await this.connecting?.catch(() => undefined);
    const client = this.client;
    this.client = null;
    if (client !== null) await client.end().catch(() => undefined);
  }

  private connect(): void {
    this.retry = null;
    if (this.stopped) return;
    this.connecting = this.open().finally(() => {
      this.connecting = null;
    });
  }

  private async open(): Promise<void> {
    let client: Client | null = null;
    try {
      client = new (pgDriver().Client)(await this.config());
      const mine = client;
      mine.on('notification', (message: Notification) => {
        if (message.channel === this.channel) this.hooks.notified(message.payload ?? '');
      });
      // 'error' then 'end' on a dropped connection: both lead to one reconnection.
      mine.on('error', (error: Error) => this.lost(mine, error));
      mine.on('end', () => this.lost(mine, new Error('the LISTEN connection ended')));
      await mine.connect();
      await mine.query(`LISTEN ${quoteIdent(this.channel)}`);
      if (this.stopped) {
        await mine.end().catch(() => undefined);
        return;
      }
      this.client = mine;
      this.connects += 1;
      this.failures = 0;
      this.beat(mine);
      // Whatever was notified while nobody listened is in the inbox: look there.
      await this.hooks.resync().catch((error: unknown) => this.hooks.problem(error, 'list the inbox after (re)connecting'));
    } catch (error) {
      if (this.stopped) return;
      this.hooks.problem(error, 'LISTEN for inbox notifications');
      if (client !== null) {
        client.removeAllListeners('end');
        client.on('error', () => undefined);
        await client.end().catch(() => undefined);
      }
      this.schedule();
    }
  }

  private beat(client: Client): void {
    if (this.heartbeatMs === 0) return;
    if (this.heartbeat !== null) clearInterval(this.heartbeat);
    this.heartbeat = setInterval(() => {
      if (this.client !== client) return;
      client.query('SELECT 1').catch((error: unknown) => this.lost(client, error));
    }, this.heartbeatMs);
    this.heartbeat.unref();
  }

  private lost(client: Client, error: unknown): void {
    if (this.client !== client) return; // not (or no longer) the live connection
    this.client = null;
    if (this.heartbeat !== null) clearInterval(this.heartbeat);
    this.heartbeat = null;
    client.removeAllListeners('end');
    client.on('error', () => undefined);
    void client.end().catch(() => undefined);
    if (this.stopped) return;
    this.hooks.problem(error, 'keep the LISTEN connection');
    this.schedule();
  }

  private schedule(): void {
    if (this.stopped || this.retry !== null) return;
    const base = Math.min(this.maxBackoffMs, this.minBackoffMs * 2 ** Math.min(this.failures, 30));
    this.failures += 1;
    // ±20% jitter, so that many workers cut off together do not reconnect in lockstep.
    const delay = Math.round(base * (0.8 + 0.4 * Math.random()));
    this.retry = setTimeout(() => this.connect(), delay);
    this.retry.unref();
  }
}
