import * as path from 'node:path';
import { DataSource } from 'typeorm';
import type { SagaEvent } from '../../bus/event';
import type { WaiterRef } from '../../bus/wait-index';
import { eventMatchesWait } from '../../bus/wait-match';
import type { InstanceStatus, Wait } from '../../engine/flow-fields';
import type { HistoryEntry } from '../../engine/history-entry';
import type { InstanceRecord, TrackRef } from '../../engine/instance-record';
import { SagaflowError } from '../../errors/sagaflow-error';
import { DefinitionError } from '../../errors/definition-error';
import { quote } from '../../errors/serialized-error';
import { CorruptRecordError, VersionConflictError } from '../../errors/runtime-errors';
import { decodeRecord } from '../record-codec';
import { parseJsonSafe } from '../../state/safe-json';
import { checkFilter } from '../instance-filter';
import { KEEP_FOR_INSTANCE, type RunnableDefinition, type DueWait, type InstanceFilter, type InstanceStore, type InstanceSummary, type PendingEvent, type TransitionWrites } from '../instance-store';
import { claimablePredicate, Dialect, driverKindOf, runnablePredicate, schemaOf, type DriverKind, type Exec } from './dialect';
import { UNFINISHED_STATUSES } from './statuses';
import { sagaflowEntities } from './entities';
import { pgTransition } from './pg-transition';
import { checkMigrationsOwner, checkSagaflowMigrationsRan, runSagaflowMigrations } from './migrate';
import {
  decodeEvent,
  encodeEvent,
  HISTORY_COLUMNS,
  historyEntry,
  historyValues,
  lookupValues,
  num,
  parseDeadlines,
  parseMatchKeys,
  prepareRecord,
  trackColumn,
  trackRef,
  type PreparedRecord,
} from './rows';
import { WriteQueue, type WriteStats } from './write-queue';
import { DatabaseFile } from './database-file';
import { inboxChannel, listenClientConfig, MAX_NOTIFY_ID_BYTES, PgInboxListener, type PgListenOptions } from './pg-listener';
import { consoleLogger, type Logger } from '../../runtime/logger';
import { betterSqlite3Driver, pgDriver } from './drivers';
import { checkPostgresOptions, checkSqliteOptions, defaultSqliteFile, notificationsOption, type PostgresStoreOptions, type SqliteStoreOptions } from './store-options';

/** Counters of a store's writes (transactions and how many writes each carried). */
export type TypeormStoreStats = WriteStats;

/** The store was closed; it accepts no more calls. */
export class StoreClosedError extends SagaflowError {
  constructor(action: string) {
    super('STORE_CLOSED', `the store is closed and cannot ${action}; create a new store`);
  }
}

const NOT_FINAL = UNFINISHED_STATUSES.map((s) => `'${s.replace(/'/g, "''")}'`).join(', ');
/** The unfinished statuses but `blocked`: instances that run, or would if a worker took them. */
const RUNNING_STATUSES = UNFINISHED_STATUSES.filter((s) => s !== 'blocked').map((s) => `'${s}'`).join(', ');

/** Multi-row inserts carry at most this many rows per statement. */
const ROWS_PER_INSERT = 100;

interface Setup {
  readonly kind: DriverKind;
  readonly dataSource: DataSource;
  readonly owns: boolean;
  readonly schema: string | undefined;
  readonly runMigrations: boolean;
  /** SQLite: a second connection that reads committed data while the writer's transaction is open. */
  readonly reader?: DataSource;
  /** SQLite on a file: its identity, checked at every commit. */
  readonly file?: DatabaseFile;
  readonly maxBatch: number;
  /** PostgreSQL: LISTEN/NOTIFY settings, or false. */
  readonly notifications?: false | PgListenOptions;
  readonly logger?: Pick<Logger, 'warn'>;
}

type Mode = 'read' | 'write' | 'tx';

/**
 * A durable {@link InstanceStore} on TypeORM: an embedded SQLite file (better-sqlite3, WAL) by default, or
 * PostgreSQL shared by several workers.
 *
 * - The instance record JSON is the source of truth; status, the earliest deadline, `parked` and the wait
 *   rows are indexes derived from it in the same transaction on every save.
 * - SQLite: one writer connection; every write goes through a queue that commits concurrently queued writes
 *   together in one transaction (group commit); reads use a second connection and see committed data only.
 * - PostgreSQL: each save is its own transaction (`UPDATE … WHERE id AND version`) on a pooled connection;
 *   `claimStale` uses `FOR UPDATE SKIP LOCKED`; `acquire` is one conditional UPDATE. The store is `shared`:
 *   several worker processes may use the same tables. An inbox delivery is stored together with a
 *   `pg_notify('sagaflow_inbox', instanceId)` in one transaction; {@link onInbox} listeners hear it through a
 *   dedicated LISTEN connection (reconnected with backoff; after every reconnect, the listeners are called for
 *   every instance with pending inbox rows, so nothing stored meanwhile is missed).
 * - Times (lease expiry, deadlines, retention) are always the values the runtime passes from its clock; the
 *   database's own `now()` is never used, so a simulated clock and skewed server clocks behave the same.
 *
 * The factories return at once; the connection opens and pending migrations run on {@link init} (called by
 * the first operation when not called before).
 *
 * @example
 * const store = TypeormStore.sqlite();                        // .sagaflow/sagaflow.db
 * const shared = TypeormStore.postgres({ url: process.env.DATABASE_URL! });
 * await shared.init();                                        // connect and migrate now
 */
export class TypeormStore implements InstanceStore {
  private readonly dialect: Dialect;
  private ready: Promise<void> | null = null;
  private queue: WriteQueue | null = null;
  private closing: Promise<void> | null = null;
  private readonly inflight = new Set<Promise<unknown>>();
  private readonly pgStats: WriteStats = { transactions: 0, writes: 0, largestBatch: 0 };
  private readonly inboxListeners = new Set<(instanceId: string) => void>();
  private listener: PgInboxListener | null = null;

  private constructor(private readonly setup: Setup) {
    this.dialect = new Dialect(setup.kind, setup.kind === 'postgres' ? setup.schema : undefined);
  }

  /**
   * A store in an SQLite file through better-sqlite3 (WAL journal). better-sqlite3 is an optional peer
   * dependency: when it is not installed, or its native addon was never built, this throws a
   * `MissingDependencyError` (`MISSING_DEPENDENCY`) naming the command that fixes it.
   */
  static sqlite(options: SqliteStoreOptions = {}): TypeormStore {
    checkSqliteOptions(options);
    const file = options.file ?? defaultSqliteFile();
    const synchronous = options.synchronous ?? 'FULL';
    const common = {
      type: 'better-sqlite3' as const,
      driver: betterSqlite3Driver(),
      database: file,
      entities: sagaflowEntities('sqlite'),
      synchronize: false,
      migrationsRun: false,
      timeout: options.busyTimeoutMs ?? 5000,
      statementCacheSize: 200,
      logging: options.logging ?? false,
    };
    const memory = file === ':memory:';
    const dataSource = new DataSource({
      ...common,
      enableWAL: !memory,
      prepareDatabase: (db: { pragma(source: string): unknown }) => {
        db.pragma(`synchronous = ${synchronous}`);
      },
    });
    const reader = memory
      ? undefined
      : new DataSource({
          ...common,
          prepareDatabase: (db: { pragma(source: string): unknown }) => {
            db.pragma('query_only = ON');
          },
        });
    return new TypeormStore({
      kind: 'sqlite',
      dataSource,
      owns: true,
      schema: undefined,
      runMigrations: options.runMigrations ?? true,
      ...(reader === undefined ? {} : { reader, file: new DatabaseFile(path.resolve(file)) }),
      maxBatch: Math.max(1, Math.floor(options.maxBatch ?? 500)),
    });
  }

  /**
   * A store in PostgreSQL, from a URL (its own pool) or the application's data source (left open by `close`).
   * pg is an optional peer dependency: without it, a URL store throws a `MissingDependencyError`.
   */
  static postgres(options: PostgresStoreOptions): TypeormStore {
    checkPostgresOptions(options);
    if ('dataSource' in options) {
      const kind = driverKindOf(options.dataSource);
      if (kind !== 'postgres') throw new DefinitionError('BAD_OPTION', `TypeormStore.postgres needs a "postgres" data source, not ${quote(options.dataSource.options.type)}`, { field: 'dataSource' });
      if (options.runMigrations !== false) checkMigrationsOwner(options.dataSource, 'TypeormStore.postgres');
      return new TypeormStore({
        kind,
        dataSource: options.dataSource,
        owns: false,
        schema: options.schema ?? schemaOf(options.dataSource),
        runMigrations: options.runMigrations ?? true,
        maxBatch: 1,
        notifications: notificationsOption(options.notifications),
        ...(options.logger === undefined ? {} : { logger: options.logger }),
      });
    }
    if (typeof options.url !== 'string' || options.url.length === 0) {
      throw new DefinitionError('BAD_OPTION', `TypeormStore.postgres needs a url (a non-empty string) or a dataSource, got ${quote(options.url)}`, { field: 'url' });
    }
    const dataSource = new DataSource({
      type: 'postgres',
      driver: pgDriver(),
      url: options.url,
      poolSize: options.poolSize ?? 10,
      ...(options.schema === undefined ? {} : { schema: options.schema }),
      entities: sagaflowEntities('postgres', options.schema),
      synchronize: false,
      migrationsRun: false,
      applicationName: 'sagaflow',
      logging: options.logging ?? false,
    });
    return new TypeormStore({
      kind: 'postgres',
      dataSource,
      owns: true,
      schema: options.schema,
      runMigrations: options.runMigrations ?? true,
      maxBatch: 1,
      notifications: notificationsOption(options.notifications),
      ...(options.logger === undefined ? {} : { logger: options.logger }),
    });
  }

  /** Which database this store runs on. */
  get kind(): DriverKind {
    return this.setup.kind;
  }

  /**
   * True on PostgreSQL: several runtime processes may share the tables (they lease instances, poll, and hand
   * events over through the inbox). False on SQLite: one embedded process owns the file.
   */
  get shared(): boolean {
    return this.setup.kind === 'postgres';
  }

  /** True while the PostgreSQL LISTEN connection of {@link onInbox} is up. */
  get listening(): boolean {
    return this.listener?.listening ?? false;
  }

  /** How many times the LISTEN connection was established (1 + reconnections); 0 when none was. */
  get listenConnects(): number {
    return this.listener?.connects ?? 0;
  }

  /** The TypeORM data source the store writes through. */
  get dataSource(): DataSource {
    return this.setup.dataSource;
  }

  /** How many transactions committed how many writes (SQLite's group commit shows here). */
  get stats(): TypeormStoreStats {
    return { ...(this.queue?.stats ?? this.pgStats) };
  }

  /**
   * Opens the connection(s) and runs pending migrations. Idempotent; the first operation calls it too, so
   * calling it is only needed to see connection or migration errors early.
   */
  init(): Promise<void> {
    if (this.closing !== null) return Promise.reject(new StoreClosedError('be initialised'));
    // A failed open (database unreachable, a migration failing) is tried again by the next call.
    this.ready ??= this.open().catch((error: unknown) => {
      this.ready = null;
      throw error;
    });
    return this.ready;
  }

  private async open(): Promise<void> {
    const { dataSource, reader } = this.setup;
    if (!dataSource.isInitialized) await dataSource.initialize();
    if (this.setup.runMigrations) await runSagaflowMigrations(dataSource, this.setup.schema === undefined ? {} : { schema: this.setup.schema });
    else await checkSagaflowMigrationsRan(dataSource, this.setup.schema);
    if (this.setup.kind === 'sqlite') {
      const file = this.setup.file;
      file?.remember();
      this.queue = new WriteQueue(this.dialect.exec(dataSource.createQueryRunner()), this.setup.maxBatch, () => file?.check());
      if (reader !== undefined && !reader.isInitialized) await reader.initialize();
    }
  }

  // ---------------------------------------------------------------------------------------------------------
  // InstanceStore

  create(record: InstanceRecord, writes: TransitionWrites = {}): Promise<boolean> {
    let p: PreparedRecord;
    try {
      p = prepareRecord(record, 1);
    } catch (e) {
      return Promise.reject(e instanceof Error ? e : new Error(String(e)));
    }
    if (this.setup.kind === 'postgres') {
      const { sql, params } = pgTransition(this.dialect, p, writes, null);
      return this.run('create an instance', 'write', async (x) => num((await x(sql, params)).rows[0]?.changed) === 1);
    }
    const lease = writes.lease;
    return this.run('create an instance', 'tx', async (x) => {
      const inserted = await x(
        `INSERT INTO ${this.dialect.t('instances')} (id, workflow, status, version, record, next_due, deadlines, parked, lease_owner, lease_until, created_at, updated_at, def_version, fingerprint)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`,
        [p.id, p.workflow, p.status, p.version, p.json, p.nextDue, p.deadlines, p.parked, lease?.owner ?? null, lease?.until ?? null, p.createdAt, p.updatedAt, p.defVersion, p.fingerprint],
      );
      if (inserted.affected === 0) return false;
      await this.writeDerived(x, p, writes, false);
      return true;
    });
  }

  load(id: string): Promise<InstanceRecord | undefined> {
    return this.run('load an instance', 'read', async (x) => {
      const { rows } = await x(`SELECT ${this.dialect.jsonText('record')} AS record FROM ${this.dialect.t('instances')} WHERE id = ?`, [id]);
      const row = rows[0];
      if (row === undefined) return undefined;
      if (typeof row.record !== 'string') throw new CorruptRecordError(id, 'its record column is empty');
      return decodeRecord(row.record, id);
    });
  }

  save(record: InstanceRecord, writes: TransitionWrites = {}): Promise<number> {
    const version = record.version + 1;
    let p: PreparedRecord;
    try {
      p = prepareRecord(record, version);
    } catch (e) {
      return Promise.reject(e instanceof Error ? e : new Error(String(e)));
    }
    if (this.setup.kind === 'postgres') {
      const { sql, params } = pgTransition(this.dialect, p, writes, record.version);
      return this.run('save an instance', 'write', async (x) => {
        const row = (await x(sql, params)).rows[0];
        if (num(row?.changed) === 1) return version;
        throw new VersionConflictError(p.id, record.version, row?.current === null || row?.current === undefined ? undefined : num(row.current));
      });
    }
    const lease = writes.lease;
    return this.run('save an instance', 'tx', async (x) => {
      const updated = await x(
        `UPDATE ${this.dialect.t('instances')} SET workflow = ?, status = ?, version = ?, record = ?, next_due = ?, deadlines = ?, parked = ?, updated_at = ?, def_version = ?, fingerprint = ?${
          lease === undefined ? '' : ', lease_owner = ?, lease_until = ?'
        }
         WHERE id = ? AND version = ?`,
        [p.workflow, p.status, p.version, p.json, p.nextDue, p.deadlines, p.parked, p.updatedAt, p.defVersion, p.fingerprint, ...(lease === undefined ? [] : [lease.owner, lease.until]), p.id, record.version],
      );
      if (updated.affected === 0) {
        const { rows } = await x(`SELECT version FROM ${this.dialect.t('instances')} WHERE id = ?`, [p.id]);
        throw new VersionConflictError(p.id, record.version, rows[0] === undefined ? undefined : num(rows[0].version));
      }
      await this.writeDerived(x, p, writes, true);
      return version;
    });
  }

  history(id: string): Promise<HistoryEntry[]> {
    return this.run('read a history', 'read', async (x) => {
      const { rows } = await x(`SELECT * FROM ${this.dialect.t('history')} WHERE instance_id = ? ORDER BY version, seq, id`, [id]);
      return rows.map(historyEntry);
    });
  }

  findWaiting(event: SagaEvent): Promise<WaiterRef[]> {
    return this.run('find waiting instances', 'read', async (x) => {
      const w = this.dialect.t('waits');
      // The distinct key sets of the topic, one index seek each (a loose index scan: never a scan of the waits).
      const keySets = await x(
        `WITH RECURSIVE k(mk) AS (
           SELECT MIN(match_keys) FROM ${w} WHERE topic = ?
           UNION ALL
           SELECT (SELECT MIN(w2.match_keys) FROM ${w} w2 WHERE w2.topic = ? AND w2.match_keys > k.mk) FROM k WHERE k.mk IS NOT NULL
         )
         SELECT mk FROM k WHERE mk IS NOT NULL`,
        [event.topic, event.topic],
      );
      const parts: string[] = [];
      const params: unknown[] = [];
      for (const row of keySets.rows) {
        const keys = parseMatchKeys(row.mk);
        if (keys === undefined) continue;
        const values = lookupValues(event, keys);
        if (values === undefined) continue;
        parts.push(`SELECT instance_id, track FROM ${w} WHERE topic = ? AND match_keys = ? AND match_values = ?${event.instanceId === undefined ? '' : ' AND instance_id = ?'}`);
        params.push(event.topic, row.mk, values);
        if (event.instanceId !== undefined) params.push(event.instanceId);
      }
      if (parts.length === 0) return [];
      const { rows } = await x(parts.join(' UNION ALL '), params);
      return rows.map((r) => ({ instanceId: String(r.instance_id), track: trackRef(r.track) }));
    });
  }

  /**
   * Stores inbox deliveries (for instances that exist; one already stored is kept as it is) or a retained event.
   * A stored delivery wakes the {@link onInbox} listeners: on PostgreSQL through `pg_notify` in the same
   * transaction (so every listening worker hears it once it is committed), on SQLite in this process after the
   * commit.
   */
  acceptEvent(event: SagaEvent, deliveries: readonly WaiterRef[], retainUntil: number | null): Promise<void> {
    if (deliveries.length === 0 && retainUntil === null) return this.run('accept an event', 'read', () => Promise.resolve());
    const json = encodeEvent(event);
    if (deliveries.length === 0) {
      return this.run('accept an event', 'write', async (x) => {
        await x(
          `INSERT INTO ${this.dialect.t('retained')} (event_id, topic, event, published_at, retain_until, instance_id) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (event_id) DO NOTHING`,
          [event.id, event.topic, json, event.publishedAt, retainUntil, event.instanceId ?? null],
        );
      });
    }
    if (this.setup.kind === 'postgres') {
      // One statement (one transaction): the deliveries, and a notification per instance that got one.
      const params: unknown[] = [];
      const values = deliveries.map((d) => {
        params.push(d.instanceId, trackColumn(d.track));
        return '(CAST(? AS varchar), CAST(? AS varchar))';
      });
      params.push(event.id, json, event.publishedAt, inboxChannel(this.setup.schema), MAX_NOTIFY_ID_BYTES);
      const sql = `WITH d(instance_id, track) AS (VALUES ${values.join(', ')}),
        ins AS (INSERT INTO ${this.dialect.t('inbox')} (event_id, instance_id, track, event, accepted_at)
          SELECT ?, d.instance_id, d.track, CAST(? AS jsonb), CAST(? AS BIGINT) FROM d
          WHERE EXISTS (SELECT 1 FROM ${this.dialect.t('instances')} i WHERE i.id = d.instance_id)
          ON CONFLICT DO NOTHING RETURNING instance_id)
        SELECT pg_notify(CAST(? AS text), CASE WHEN octet_length(n.instance_id) <= CAST(? AS integer) THEN n.instance_id ELSE '' END) AS notified
        FROM (SELECT DISTINCT instance_id FROM ins) AS n`;
      return this.run('accept an event', 'write', async (x) => {
        await x(sql, params);
      });
    }
    return this.run('accept an event', deliveries.length > 1 ? 'tx' : 'write', async (x) => {
      const stored = new Set<string>();
      for (const d of deliveries) {
        const { affected } = await x(
          `INSERT INTO ${this.dialect.t('inbox')} (event_id, instance_id, track, event, accepted_at)
           SELECT ?, ?, ?, ?, CAST(? AS BIGINT) WHERE EXISTS (SELECT 1 FROM ${this.dialect.t('instances')} WHERE id = ?)
           ON CONFLICT DO NOTHING`,
          [event.id, d.instanceId, trackColumn(d.track), json, event.publishedAt, d.instanceId],
        );
        if (affected > 0) stored.add(d.instanceId);
      }
      return stored;
    }).then((stored) => {
      // The queue resolves once the transaction committed: now the deliveries are there for whoever looks.
      for (const id of stored) this.notifyInbox(id);
    });
  }

  /** Ids of instances with inbox deliveries not yet consumed, oldest delivery first (at most `limit`). */
  inboxInstances(limit: number, runnable?: readonly RunnableDefinition[]): Promise<string[]> {
    return this.run('list inbox instances', 'read', async (x) => {
      const params: unknown[] = [];
      const only = runnable === undefined ? '' : ` WHERE instance_id IN (SELECT id FROM ${this.dialect.t('instances')} WHERE ${runnablePredicate(runnable, params)})`;
      const { rows } = await x(
        `SELECT instance_id FROM ${this.dialect.t('inbox')}${only} GROUP BY instance_id ORDER BY MIN(accepted_at), instance_id LIMIT ?`,
        [...params, Math.max(0, Math.floor(limit))],
      );
      return rows.map((r) => String(r.instance_id));
    });
  }

  /**
   * Calls `listener` with the instance id whenever an inbox delivery is stored — by this store or, on
   * PostgreSQL, by any other process on the same tables (LISTEN/NOTIFY) — and, on PostgreSQL, with every
   * instance that has pending deliveries after the LISTEN connection (re)connects. Calls may repeat; a
   * listener must tolerate an id whose inbox is already empty. Returns an unsubscribe function.
   */
  onInbox(listener: (instanceId: string) => void): () => void {
    if (this.closing !== null) throw new StoreClosedError('listen to the inbox');
    this.inboxListeners.add(listener);
    if (this.setup.kind === 'postgres' && this.setup.notifications !== false) this.startListening(this.setup.notifications ?? {});
    return () => {
      this.inboxListeners.delete(listener);
      if (this.inboxListeners.size === 0 && this.listener !== null) {
        const listening = this.listener;
        this.listener = null;
        void listening.stop();
      }
    };
  }

  pendingEvents(instanceId: string): Promise<PendingEvent[]> {
    return this.run('read an inbox', 'read', async (x) => {
      const { rows } = await x(
        `SELECT event_id, track, ${this.dialect.jsonText('event')} AS event FROM ${this.dialect.t('inbox')} WHERE instance_id = ? ORDER BY accepted_at, event_id`,
        [instanceId],
      );
      return rows.map((r) => ({ event: decodeEvent(r.event, instanceId, String(r.event_id)), track: trackRef(r.track) }));
    });
  }

  takeRetained(instanceId: string, wait: Wait, now: number): Promise<SagaEvent | undefined> {
    if (wait.topics.length === 0) return this.run('take a retained event', 'read', () => Promise.resolve(undefined));
    return this.run('take a retained event', 'write', async (x) => {
      await x(`DELETE FROM ${this.dialect.t('retained')} WHERE retain_until < ?`, [now]);
      return this.takeMatchingRetained(x, instanceId, wait, now);
    });
  }

  moveRetainedToInbox(instanceId: string, track: TrackRef, wait: Wait, now: number): Promise<SagaEvent | undefined> {
    if (wait.topics.length === 0) return this.run('move a retained event', 'read', () => Promise.resolve(undefined));
    return this.run('move a retained event', 'tx', async (x) => {
      const event = await this.takeMatchingRetained(x, instanceId, wait, now);
      if (event === undefined) return undefined;
      // In the same transaction the event becomes a delivery in the instance's inbox.
      await x(
        `INSERT INTO ${this.dialect.t('inbox')} (event_id, instance_id, track, event, accepted_at)
         SELECT ?, ?, ?, ${this.setup.kind === 'postgres' ? 'CAST(? AS jsonb)' : '?'}, CAST(? AS BIGINT) WHERE EXISTS (SELECT 1 FROM ${this.dialect.t('instances')} WHERE id = ?)
         ON CONFLICT DO NOTHING`,
        [event.id, instanceId, trackColumn(track), encodeEvent(event), event.publishedAt, instanceId],
      );
      return event;
    });
  }

  /** Deletes and returns the oldest live retained event that `wait` of `instanceId` matches (inside `x`'s transaction). */
  private async takeMatchingRetained(x: Exec, instanceId: string, wait: Wait, now: number): Promise<SagaEvent | undefined> {
    const topics = [...new Set(wait.topics)];
    const r = this.dialect.t('retained');
    const { rows } = await x(
      `SELECT event_id, ${this.dialect.jsonText('event')} AS event FROM ${r}
       WHERE topic IN (${Dialect.marks(topics.length)}) AND retain_until >= ? AND (instance_id IS NULL OR instance_id = ?) ORDER BY published_at, event_id`,
      [...topics, now, instanceId],
    );
    for (const row of rows) {
      let event: SagaEvent;
      try {
        event = decodeEvent(row.event, `retained:${String(row.event_id)}`, String(row.event_id));
      } catch {
        continue; // an unreadable retained event matches nothing; it goes when it expires
      }
      if (!eventMatchesWait(event, wait, instanceId)) continue;
      // Whoever deletes it takes it (another worker may have been first).
      if ((await x(`DELETE FROM ${r} WHERE event_id = ?`, [row.event_id])).affected === 1) return event;
    }
    return undefined;
  }

  retainedEvents(now: number, limit: number): Promise<SagaEvent[]> {
    return this.run('list retained events', 'read', async (x) => {
      const { rows } = await x(
        `SELECT event_id, ${this.dialect.jsonText('event')} AS event FROM ${this.dialect.t('retained')} WHERE retain_until >= ? ORDER BY published_at DESC, event_id LIMIT ?`,
        [now, Math.max(0, Math.floor(limit))],
      );
      return readableEvents(rows);
    });
  }

  expireRetained(now: number, limit: number): Promise<SagaEvent[]> {
    return this.run('expire retained events', 'write', async (x) => {
      const r = this.dialect.t('retained');
      const { rows } = await x(
        `DELETE FROM ${r} WHERE event_id IN (SELECT event_id FROM ${r} WHERE retain_until < ? ORDER BY retain_until LIMIT ?)
         RETURNING event_id, published_at, ${this.dialect.jsonText('event')} AS event`,
        [now, Math.max(0, Math.floor(limit))],
      );
      return readableEvents(rows).sort((a, b) => a.publishedAt - b.publishedAt);
    });
  }

  dropEvents(instanceId: string): Promise<SagaEvent[]> {
    return this.run('drop the events of an instance', 'tx', async (x) => {
      const kept = await x(
        `DELETE FROM ${this.dialect.t('retained')} WHERE instance_id = ? AND retain_until = ? RETURNING event_id, ${this.dialect.jsonText('event')} AS event`,
        [instanceId, KEEP_FOR_INSTANCE],
      );
      const pending = await x(`DELETE FROM ${this.dialect.t('inbox')} WHERE instance_id = ? RETURNING event_id, ${this.dialect.jsonText('event')} AS event`, [instanceId]);
      return readableEvents([...kept.rows, ...pending.rows]);
    });
  }

  dueWaits(now: number, limit: number, runnable?: readonly RunnableDefinition[]): Promise<DueWait[]> {
    return this.run('list due waits', 'read', async (x) => {
      const params: unknown[] = [now];
      const only = runnable === undefined ? '' : ` AND ${runnablePredicate(runnable, params)}`;
      const { rows } = await x(`SELECT id, deadlines FROM ${this.dialect.t('instances')} WHERE next_due <= ?${only} ORDER BY next_due, id LIMIT ?`, [...params, limit]);
      const due: DueWait[] = [];
      for (const row of rows) {
        for (const d of parseDeadlines(row.deadlines)) if (d.at <= now) due.push({ instanceId: String(row.id), track: d.track, deadline: d.at });
      }
      due.sort((a, b) => a.deadline - b.deadline);
      return due.slice(0, limit);
    });
  }

  unfinished(): Promise<string[]> {
    return this.run('list unfinished instances', 'read', async (x) => {
      const { rows } = await x(`SELECT id FROM ${this.dialect.t('instances')} WHERE status IN (${NOT_FINAL}) ORDER BY created_at, id`);
      return rows.map((r) => String(r.id));
    });
  }

  list(given?: InstanceFilter): Promise<InstanceSummary[]> {
    let filter: InstanceFilter & { readonly limit: number };
    try {
      filter = checkFilter(given);
    } catch (error) {
      return Promise.reject(error instanceof Error ? error : new Error(String(error)));
    }
    return this.run('list instances', 'read', async (x) => {
      const where: string[] = [];
      const params: unknown[] = [];
      if (filter.status !== undefined) {
        const statuses = typeof filter.status === 'string' ? [filter.status] : [...filter.status];
        if (statuses.length === 0) return [];
        where.push(`status IN (${Dialect.marks(statuses.length)})`);
        params.push(...statuses);
      }
      if (filter.workflow !== undefined) {
        where.push('workflow = ?');
        params.push(filter.workflow);
      }
      if (filter.version !== undefined) {
        where.push('def_version = ?');
        params.push(filter.version);
      }
      if (filter.since !== undefined) {
        where.push('updated_at >= ?');
        params.push(filter.since);
      }
      params.push(filter.limit);
      const { rows } = await x(
        `SELECT id, workflow, def_version, status, created_at, updated_at FROM ${this.dialect.t('instances')}${where.length === 0 ? '' : ` WHERE ${where.join(' AND ')}`}
         ORDER BY updated_at DESC, id LIMIT ?`,
        params,
      );
      return rows.map((r) => ({
        id: String(r.id),
        workflow: String(r.workflow),
        version: num(r.def_version),
        status: r.status as InstanceStatus,
        createdAt: num(r.created_at),
        updatedAt: num(r.updated_at),
      }));
    });
  }

  acquire(id: string, owner: string, until: number, now: number): Promise<boolean> {
    return this.run('acquire a lease', 'write', async (x) => {
      const { affected } = await x(
        `UPDATE ${this.dialect.t('instances')} SET lease_owner = ?, lease_until = ?
         WHERE id = ? AND (lease_owner IS NULL OR lease_owner = ? OR lease_until IS NULL OR lease_until <= ?)`,
        [owner, until, id, owner, now],
      );
      return affected > 0;
    });
  }

  release(id: string, owner: string): Promise<void> {
    return this.run('release a lease', 'write', async (x) => {
      await x(`UPDATE ${this.dialect.t('instances')} SET lease_owner = NULL, lease_until = NULL WHERE id = ? AND lease_owner = ?`, [id, owner]);
    });
  }

  claimStale(owner: string, until: number, now: number, limit: number, runnable?: readonly RunnableDefinition[]): Promise<string[]> {
    return this.run('claim stale instances', 'write', async (x) => {
      const i = this.dialect.t('instances');
      // SQLite's planner would rather take the status index; the partial index holds only the claimable rows.
      const from = this.setup.kind === 'sqlite' ? `${i} INDEXED BY "IDX_sagaflow_instances_claimable"` : i;
      const only: unknown[] = [];
      const runs = runnable === undefined ? '' : ` AND ${runnablePredicate(runnable, only)}`;
      const candidates = `SELECT id FROM ${from} WHERE ${claimablePredicate(this.setup.kind, UNFINISHED_STATUSES)} AND (lease_until IS NULL OR lease_until <= ?)${runs} ORDER BY updated_at LIMIT ?`;
      const { rows } =
        this.setup.kind === 'postgres'
          ? // Rows another worker is claiming are skipped, not waited for; a row claimed meanwhile is re-checked.
            await x(`WITH c AS (${candidates} FOR UPDATE SKIP LOCKED) UPDATE ${i} AS i SET lease_owner = ?, lease_until = ? FROM c WHERE i.id = c.id RETURNING i.id`, [
              now,
              ...only,
              limit,
              owner,
              until,
            ])
          : await x(`UPDATE ${i} SET lease_owner = ?, lease_until = ? WHERE id IN (${candidates}) RETURNING id`, [owner, until, now, ...only, limit]);
      return rows.map((r) => String(r.id));
    });
  }

  heartbeat(workerId: string, runs: readonly RunnableDefinition[], now: number): Promise<void> {
    return this.run('record a heartbeat', 'write', async (x) => {
      await x(
        `INSERT INTO ${this.dialect.t('workers')} (worker_id, runs, seen_at) VALUES (?, ${this.dialect.jsonParam()}, ?)
         ON CONFLICT (worker_id) DO UPDATE SET runs = EXCLUDED.runs, seen_at = EXCLUDED.seen_at`,
        [workerId, JSON.stringify(runs.map((d) => [d.workflow, d.version, d.fingerprint])), now],
      );
    });
  }

  liveRunners(since: number): Promise<RunnableDefinition[]> {
    return this.run('list live workers', 'read', async (x) => {
      const { rows } = await x(`SELECT ${this.dialect.jsonText('runs')} AS runs FROM ${this.dialect.t('workers')} WHERE seen_at >= ?`, [since]);
      return rows.flatMap((row) => parseRuns(row.runs));
    });
  }

  orphans(runnable: readonly RunnableDefinition[], limit: number): Promise<string[]> {
    return this.run('list instances no worker runs', 'read', async (x) => {
      const params: unknown[] = [];
      const runs = runnablePredicate(runnable, params);
      const { rows } = await x(`SELECT id FROM ${this.dialect.t('instances')} WHERE status IN (${RUNNING_STATUSES}) AND NOT ${runs} ORDER BY updated_at LIMIT ?`, [
        ...params,
        Math.max(0, Math.floor(limit)),
      ]);
      return rows.map((r) => String(r.id));
    });
  }

  retire(workerId: string): Promise<void> {
    return this.run('forget a worker', 'write', async (x) => {
      await x(`DELETE FROM ${this.dialect.t('workers')} WHERE worker_id = ?`, [workerId]);
    });
  }

  scheduleTick(name: string): Promise<number | undefined> {
    return this.run('read a schedule tick', 'read', async (x) => {
      const { rows } = await x(`SELECT last_tick FROM ${this.dialect.t('schedule')} WHERE name = ?`, [name]);
      const row = rows[0];
      return row === undefined ? undefined : num(row.last_tick);
    });
  }

  advanceSchedule(name: string, expectedPrevious: number | undefined, tick: number, now: number): Promise<boolean> {
    return this.run('advance a schedule', 'write', async (x) => {
      const { affected } =
        expectedPrevious === undefined
          ? await x(`INSERT INTO ${this.dialect.t('schedule')} (name, last_tick, updated_at) VALUES (?, ?, ?) ON CONFLICT (name) DO NOTHING`, [name, tick, now])
          : await x(`UPDATE ${this.dialect.t('schedule')} SET last_tick = ?, updated_at = ? WHERE name = ? AND last_tick = ?`, [tick, now, name, expectedPrevious]);
      return affected > 0;
    });
  }

  /** Waits for the writes in progress, then closes the connections it opened (never the application's). */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.inboxListeners.clear();
      const listening = this.listener;
      this.listener = null;
      await listening?.stop();
      await Promise.allSettled([...this.inflight]);
      await this.queue?.idle();
      if (this.ready !== null) await this.ready.catch(() => undefined);
      if (this.setup.owns) {
        for (const ds of [this.setup.reader, this.setup.dataSource]) if (ds?.isInitialized === true) await ds.destroy();
      }
    })();
    return this.closing;
  }

  // ---------------------------------------------------------------------------------------------------------

  private startListening(options: PgListenOptions): void {
    if (this.listener !== null) return;
    const logger = this.setup.logger ?? consoleLogger;
    this.listener = new PgInboxListener(
      async () => {
        await this.init();
        return listenClientConfig(this.setup.dataSource);
      },
      inboxChannel(this.setup.schema),
      {
        notified: (id) => {
          if (id !== '') {
            this.notifyInbox(id);
            return;
          }
          // An id too long for a notification: look at the whole inbox.
          this.resyncInbox().catch((error: unknown) => logger.warn({ error }, 'could not list the inbox after a notification'));
        },
        resync: () => this.resyncInbox(),
        problem: (error, action) => logger.warn({ error: error instanceof Error ? error.message : String(error) }, `could not ${action}; retrying`),
      },
      options,
    );
    this.listener.start();
  }

  /** Calls the inbox listeners for every instance with pending deliveries. */
  private async resyncInbox(): Promise<void> {
    if (this.inboxListeners.size === 0 || this.closing !== null) return;
    const ids = await this.run('list inbox instances', 'read', async (x) => {
      const { rows } = await x(`SELECT DISTINCT instance_id FROM ${this.dialect.t('inbox')}`);
      return rows.map((r) => String(r.instance_id));
    });
    for (const id of ids) this.notifyInbox(id);
  }

  private notifyInbox(instanceId: string): void {
    for (const listener of [...this.inboxListeners]) {
      try {
        listener(instanceId);
      } catch {
        // a throwing listener neither fails the write that woke it nor keeps the others from hearing it
      }
    }
  }

  /** Writes what a record's save derives (wait rows) and what the transition carries (history, consumed inbox). */
  private async writeDerived(x: Exec, p: PreparedRecord, writes: TransitionWrites, replaceWaits: boolean): Promise<void> {
    if (replaceWaits) await x(`DELETE FROM ${this.dialect.t('waits')} WHERE instance_id = ?`, [p.id]);
    for (let i = 0; i < p.waits.length; i += ROWS_PER_INSERT) {
      const chunk = p.waits.slice(i, i + ROWS_PER_INSERT);
      await x(
        `INSERT INTO ${this.dialect.t('waits')} (instance_id, track, topic, match_keys, match_values) VALUES ${chunk.map(() => '(?, ?, ?, ?, ?)').join(', ')}`,
        chunk.flatMap((w) => [p.id, w.track, w.topic, w.matchKeys, w.matchValues]),
      );
    }
    const history = writes.history ?? [];
    const row = `(${Dialect.marks(HISTORY_COLUMNS.length)})`;
    for (let i = 0; i < history.length; i += ROWS_PER_INSERT) {
      const chunk = history.slice(i, i + ROWS_PER_INSERT);
      await x(
        `INSERT INTO ${this.dialect.t('history')} (${HISTORY_COLUMNS.join(', ')}) VALUES ${chunk.map(() => row).join(', ')}`,
        chunk.flatMap((h, j) => historyValues(p.id, p.version, i + j, h)),
      );
    }
    for (const c of writes.consumed ?? []) {
      await x(`DELETE FROM ${this.dialect.t('inbox')} WHERE event_id = ? AND instance_id = ? AND track = ?`, [c.eventId, p.id, trackColumn(c.track)]);
    }
  }

  /**
   * Runs `fn` once the store is open: reads on SQLite's reader connection (or PostgreSQL's pool), writes
   * through SQLite's group-commit queue (or a pooled PostgreSQL connection, in a transaction for `tx`).
   */
  private run<T>(action: string, mode: Mode, fn: (x: Exec) => Promise<T>): Promise<T> {
    if (this.closing !== null) return Promise.reject(new StoreClosedError(action));
    const work = this.init().then(() => this.execute(mode, fn));
    this.inflight.add(work);
    const forget = (): void => {
      this.inflight.delete(work);
    };
    work.then(forget, forget);
    return work;
  }

  private async execute<T>(mode: Mode, fn: (x: Exec) => Promise<T>): Promise<T> {
    if (this.setup.kind === 'sqlite') {
      const queue = this.queue as WriteQueue;
      if (mode !== 'read' || this.setup.reader === undefined) return queue.submit(fn);
      // A read from a file deleted or replaced under the store would show what no reopen can find again.
      this.setup.file?.check();
      return fn(this.dialect.exec(this.setup.reader.createQueryRunner()));
    }
    const runner = this.setup.dataSource.createQueryRunner();
    const x = this.dialect.exec(runner);
    try {
      await runner.connect();
      if (mode !== 'read') {
        this.pgStats.transactions += 1;
        this.pgStats.writes += 1;
        this.pgStats.largestBatch = 1;
      }
      if (mode !== 'tx') return await fn(x);
      await x('BEGIN');
      try {
        const result = await fn(x);
        await x('COMMIT');
        return result;
      } catch (error) {
        await x('ROLLBACK').catch(() => undefined);
        throw error;
      }
    } finally {
      await runner.release();
    }
  }
}

/** A worker's `runs` column back as definitions; anything unreadable in it is skipped. */
function parseRuns(column: unknown): RunnableDefinition[] {
  let value: unknown;
  try {
    value = typeof column === 'string' ? parseJsonSafe(column) : [];
  } catch {
    return [];
  }
  if (!Array.isArray(value)) return [];
  const out: RunnableDefinition[] = [];
  for (const item of value as unknown[]) {
    if (!Array.isArray(item)) continue;
    const [workflow, version, fingerprint] = item as unknown[];
    if (typeof workflow === 'string' && typeof version === 'number' && typeof fingerprint === 'string') out.push({ workflow, version, fingerprint });
  }
  return out;
}

/** The events of retained or inbox rows that can be read; an unreadable one matches nothing and is skipped. */
function readableEvents(rows: readonly Record<string, unknown>[]): SagaEvent[] {
  const events: SagaEvent[] = [];
  for (const row of rows) {
    try {
      events.push(decodeEvent(row.event, `retained:${String(row.event_id)}`, String(row.event_id)));
    } catch {
      // an unreadable stored event matches nothing; it goes when it expires or its instance ends
    }
  }
  return events;
}
