import * as path from 'node:path';
import { DataSource } from 'typeorm';
import type { SagaEvent } from '../../bus/event';
import type { WaiterRef } from '../../bus/wait-index';
import type { Wait } from '../../core/flow-fields';
import type { HistoryEntry } from '../../engine/history-entry';
import type { InstanceRecord, TrackRef } from '../../engine/instance-record';
import { DefinitionError } from '../../errors/definition-error';
import { quote } from '../../errors/serialized-error';
import type { PurgeOptions, StoredOutline, RunnableDefinition, DueWait, InstanceFilter, InstanceStore, InstanceSummary, PendingEvent, TransitionWrites, WaitingRecord } from '../instance-store';
import { driverKindOf, schemaOf, type DriverKind } from './dialect';
import { sagaflowEntities } from './entities';
import { checkMigrationsOwner } from './migrate';
import type { WriteStats } from './write-queue';
import { DatabaseFile } from './database-file';
import { betterSqlite3Driver, pgDriver } from './drivers';
import { checkPostgresOptions, checkSqliteOptions, defaultSqliteFile, notificationsOption, writeLanes, type PostgresStoreOptions, type SqliteStoreOptions } from './store-options';
import { StoreSession, type Setup } from './store-session';
import { StoreWrites } from './store-writes';
import { StoreReads } from './store-reads';
import { StoreEvents } from './store-events';
import { SharedWorkers } from './shared-workers';
import { StoreOperating } from './store-operating';
import { RateSlots } from './rate-slots';
import type { ResolvedRateLimit } from '../../policies/rate-limiter';
import type { WorkflowOutline } from '../../workflow/workflow-outline';
import type { OperatorRequest, OperatorRequestInput } from '../operator-request';
import type { SerializedError } from '../../errors/serialized-error';

/** PostgreSQL's default group-commit batch (see `maxBatch`). */
const PG_MAX_BATCH = 100;

/** The pool size of an application's PostgreSQL data source (TypeORM's `poolSize`, else pg's default of 10). */
function poolSizeOf(dataSource: DataSource): number {
  const size = (dataSource.options as { poolSize?: unknown }).poolSize;
  return typeof size === 'number' && size >= 1 ? Math.floor(size) : 10;
}

/** Counters of a store's writes (transactions and how many writes each carried). */
export type TypeormStoreStats = WriteStats;

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
  private readonly session: StoreSession;
  private readonly writePath: StoreWrites;
  private readonly readPath: StoreReads;
  private readonly events: StoreEvents;
  private readonly workers: SharedWorkers;
  private readonly operating: StoreOperating;
  private readonly rateSlots: RateSlots;

  private constructor(private readonly setup: Setup) {
    this.session = new StoreSession(setup);
    this.events = new StoreEvents(this.session);
    this.writePath = new StoreWrites(this.session, this.events);
    this.readPath = new StoreReads(this.session);
    this.workers = new SharedWorkers(this.session);
    this.operating = new StoreOperating(this.session);
    this.rateSlots = new RateSlots(this.session);
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
    if (options.readOnly === true) {
      // One read-only connection: nothing is written, and a missing file is never created (checked on open).
      const dataSource = new DataSource({ ...common, readonly: true, fileMustExist: true });
      return new TypeormStore({ kind: 'sqlite', dataSource, owns: true, schema: undefined, runMigrations: false, readOnly: path.resolve(file), maxBatch: 1 });
    }
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
        maxBatch: options.maxBatch ?? PG_MAX_BATCH,
        lanes: writeLanes(options, poolSizeOf(options.dataSource)),
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
      maxBatch: options.maxBatch ?? PG_MAX_BATCH,
      lanes: writeLanes(options, options.poolSize ?? 10),
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

  /** True unless the store is an in-memory SQLite database: other processes (the `sagaflow` CLI) may open it. */
  get multiProcess(): boolean {
    return this.setup.kind === 'postgres' || this.setup.file !== undefined;
  }

  /** True while the PostgreSQL LISTEN connection of {@link onInbox} is up. */
  get listening(): boolean {
    return this.events.listening;
  }

  /** How many times the LISTEN connection was established (1 + reconnections); 0 when none was. */
  get listenConnects(): number {
    return this.events.listenConnects;
  }

  /** The TypeORM data source the store writes through. */
  get dataSource(): DataSource {
    return this.setup.dataSource;
  }

  /** How many transactions committed how many writes (SQLite's group commit shows here). */
  get stats(): TypeormStoreStats {
    return this.session.stats;
  }

  /**
   * Opens the connection(s) and runs pending migrations. Idempotent; the first operation calls it too, so
   * calling it is only needed to see connection or migration errors early.
   */
  init(): Promise<void> {
    return this.session.init();
  }

  // ---------------------------------------------------------------------------------------------------------
  // InstanceStore

  create(record: InstanceRecord, writes: TransitionWrites = {}): Promise<boolean> {
    return this.writePath.create(record, writes);
  }

  load(id: string): Promise<InstanceRecord | undefined> {
    return this.readPath.load(id);
  }

  loadUnleased(id: string, owner: string, now: number): Promise<InstanceRecord | 'leased' | undefined> {
    return this.readPath.loadUnleased(id, owner, now);
  }

  save(record: InstanceRecord, writes: TransitionWrites = {}): Promise<number> {
    return this.writePath.save(record, writes);
  }

  history(id: string): Promise<HistoryEntry[]> {
    return this.readPath.history(id);
  }

  findWaiting(event: SagaEvent): Promise<WaiterRef[]> {
    return this.readPath.findWaiting(event);
  }

  findWaitingRecords(event: SagaEvent, lease?: { readonly owner: string; readonly now: number }): Promise<WaitingRecord[]> {
    return this.readPath.findWaitingRecords(event, lease);
  }

  /**
   * Stores inbox deliveries (for instances that exist; one already stored is kept as it is) or a retained event.
   * A stored delivery wakes the {@link onInbox} listeners: on PostgreSQL through `pg_notify` in the same
   * transaction (so every listening worker hears it once it is committed), on SQLite in this process after the
   * commit.
   */
  acceptEvent(event: SagaEvent, deliveries: readonly WaiterRef[], retainUntil: number | null): Promise<void> {
    return this.events.acceptEvent(event, deliveries, retainUntil);
  }

  /** Ids of instances with inbox deliveries not yet consumed, oldest delivery first (at most `limit`). */
  inboxInstances(limit: number, runnable?: readonly RunnableDefinition[]): Promise<string[]> {
    return this.events.inboxInstances(limit, runnable);
  }

  /**
   * Calls `listener` with the instance id whenever an inbox delivery is stored — by this store or, on
   * PostgreSQL, by any other process on the same tables (LISTEN/NOTIFY) — and, on PostgreSQL, with every
   * instance that has pending deliveries after the LISTEN connection (re)connects. Calls may repeat; a
   * listener must tolerate an id whose inbox is already empty. Returns an unsubscribe function.
   */
  onInbox(listener: (instanceId: string) => void): () => void {
    return this.events.onInbox(listener);
  }

  pendingEvents(instanceId: string): Promise<PendingEvent[]> {
    return this.events.pendingEvents(instanceId);
  }

  takeRetained(instanceId: string, wait: Wait, now: number): Promise<SagaEvent | undefined> {
    return this.events.takeRetained(instanceId, wait, now);
  }

  moveRetainedToInbox(instanceId: string, track: TrackRef, wait: Wait, now: number): Promise<SagaEvent | undefined> {
    return this.events.moveRetainedToInbox(instanceId, track, wait, now);
  }

  retainedEvents(now: number, limit: number): Promise<SagaEvent[]> {
    return this.events.retainedEvents(now, limit);
  }

  expireRetained(now: number, limit: number): Promise<SagaEvent[]> {
    return this.events.expireRetained(now, limit);
  }

  dropEvents(instanceId: string): Promise<SagaEvent[]> {
    return this.events.dropEvents(instanceId);
  }

  dueWaits(now: number, limit: number, runnable?: readonly RunnableDefinition[]): Promise<DueWait[]> {
    return this.readPath.dueWaits(now, limit, runnable);
  }

  unfinished(): Promise<string[]> {
    return this.readPath.unfinished();
  }

  list(given?: InstanceFilter): Promise<InstanceSummary[]> {
    return this.readPath.list(given);
  }

  acquire(id: string, owner: string, until: number, now: number): Promise<boolean> {
    return this.workers.acquire(id, owner, until, now);
  }

  release(id: string, owner: string): Promise<void> {
    return this.workers.release(id, owner);
  }

  claimStale(owner: string, until: number, now: number, limit: number, runnable?: readonly RunnableDefinition[]): Promise<string[]> {
    return this.workers.claimStale(owner, until, now, limit, runnable);
  }

  heartbeat(workerId: string, runs: readonly RunnableDefinition[], now: number): Promise<void> {
    return this.workers.heartbeat(workerId, runs, now);
  }

  reserveSlot(limiter: string, spec: ResolvedRateLimit, key: string, now: number): Promise<number> {
    return this.rateSlots.reserve(limiter, spec, key, now);
  }

  liveRunners(since: number): Promise<RunnableDefinition[]> {
    return this.workers.liveRunners(since);
  }

  orphans(runnable: readonly RunnableDefinition[], limit: number): Promise<string[]> {
    return this.workers.orphans(runnable, limit);
  }

  retire(workerId: string): Promise<void> {
    return this.workers.retire(workerId);
  }

  scheduleTick(name: string): Promise<number | undefined> {
    return this.workers.scheduleTick(name);
  }

  advanceSchedule(name: string, expectedPrevious: number | undefined, tick: number, now: number): Promise<boolean> {
    return this.workers.advanceSchedule(name, expectedPrevious, tick, now);
  }

  saveOutline(outline: WorkflowOutline, registeredAt: number): Promise<boolean> {
    return this.operating.saveOutline(outline, registeredAt);
  }

  outlines(workflow?: string): Promise<StoredOutline[]> {
    return this.operating.outlines(workflow);
  }

  purge(options: PurgeOptions): Promise<string[]> {
    return this.operating.purge(options);
  }

  request(input: OperatorRequestInput, id: string, now: number): Promise<OperatorRequest> {
    return this.operating.request(input, id, now);
  }

  requestById(id: string): Promise<OperatorRequest | undefined> {
    return this.operating.requestById(id);
  }

  pendingRequests(instanceId: string): Promise<OperatorRequest[]> {
    return this.operating.pendingRequests(instanceId);
  }

  requestInstances(limit: number, runnable?: readonly RunnableDefinition[]): Promise<string[]> {
    return this.operating.requestInstances(limit, runnable);
  }

  finishRequest(id: string, error: SerializedError | null, now: number): Promise<void> {
    return this.operating.finishRequest(id, error, now);
  }

  /** Waits for the writes in progress, then closes the connections it opened (never the application's). */
  close(): Promise<void> {
    return this.session.close(() => this.events.stopListening());
  }
}
