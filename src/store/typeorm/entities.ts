import { EntitySchema, type ColumnType } from 'typeorm';
import { claimablePredicate, columnTypes, TABLES, type DriverKind } from './dialect';
import { UNFINISHED_STATUSES } from './statuses';

/**
 * A row of `sagaflow_instances`. `record` (the whole instance, as JSON) is the source of truth; the other
 * columns are indexes derived from it on every save, plus the lease.
 */
export interface SagaflowInstanceRow {
  id: string;
  workflow: string;
  status: string;
  version: number;
  /** JSON text on SQLite; `jsonb` on PostgreSQL (read it back with `record::text` and a safe parse). */
  record: unknown;
  /** The earliest wait deadline or retry time (ms since epoch), or null. */
  nextDue: number | string | null;
  /** Every deadline per track, as JSON `[[track, at], …]` (track null for the main line). */
  deadlines: string | null;
  /** Parked on a wait or a retry with nothing in flight (no work to claim). */
  parked: boolean;
  leaseOwner: string | null;
  leaseUntil: number | string | null;
  createdAt: number | string;
  updatedAt: number | string;
  /** The version of the definition the instance runs on (1 for rows written before versions). */
  defVersion: number;
  /** Its definition's structural fingerprint (null for rows written before versions). */
  fingerprint: string | null;
}

/** A row of `sagaflow_waits`: one per waiting track and topic. */
export interface SagaflowWaitRow {
  instanceId: string;
  /** `''` for the main line, else the branch key. */
  track: string;
  topic: string;
  /** JSON of the wait's sorted match keys. */
  matchKeys: string;
  /** JSON of the match values in key order (`#sha256:…` of it when long). */
  matchValues: string;
}

/** A row of `sagaflow_inbox`: an event accepted for a waiting track and not yet consumed. */
export interface SagaflowInboxRow {
  eventId: string;
  instanceId: string;
  track: string;
  event: unknown;
  acceptedAt: number | string;
}

/**
 * A row of `sagaflow_retained`: an event nobody waited for, kept until `retainUntil` — or, published to one instance
 * (`instanceId`), kept for it until one of its waits takes it or it ends.
 */
export interface SagaflowRetainedRow {
  eventId: string;
  topic: string;
  event: unknown;
  publishedAt: number | string;
  retainUntil: number | string;
  instanceId: string | null;
}

/** A row of `sagaflow_workers`: a live worker and the definitions it runs (`[workflow, version, fingerprint]`). */
export interface SagaflowWorkerRow {
  workerId: string;
  runs: unknown;
  seenAt: number | string;
}

/** A row of `sagaflow_definitions`: the outline of a definition some runtime registered (drawn by the inspector). */
export interface SagaflowDefinitionRow {
  workflow: string;
  version: number;
  fingerprint: string;
  /** The `WorkflowOutline` as JSON. */
  outline: unknown;
  /** When a runtime last registered it (ms since epoch). */
  registeredAt: number | string;
}

/** A row of `sagaflow_requests`: an operator request, pending until the worker running its instance applies it. */
export interface SagaflowRequestRow {
  id: string;
  instanceId: string;
  /** `retry-compensation`, `skip-compensation`, `cancel` or `resume`. */
  kind: string;
  requestedBy: string | null;
  reason: string | null;
  requestedAt: number | string;
  /** `pending`, `done` or `failed`. */
  state: string;
  /** JSON of the serialised error of a failed request, or null. */
  error: string | null;
  doneAt: number | string | null;
}

/** A row of `sagaflow_history`: one line of an instance's history (append-only). */
export interface SagaflowHistoryRow {
  id: number | string;
  instanceId: string;
  /** The record version the transition that wrote it produced. */
  version: number;
  /** Its position among that transition's lines. */
  seq: number;
  at: number | string;
  kind: string;
  step: string | null;
  groupName: string | null;
  branch: string | null;
  direction: string;
  func: string | null;
  attempt: number;
  outcome: string | null;
  code: string | null;
  status: string;
  note: string | null;
  /** JSON of any other fields of the line, or null. */
  extra: string | null;
}

/**
 * A row of `sagaflow_stack`: one entry of an instance's compensation stack (of its main line, or of a branch of the
 * group it runs), written once when it is pushed. The record holds each stack's depth: rows at or past it are left
 * over from entries popped since, and are overwritten by the next push at their position.
 */
export interface SagaflowStackRow {
  instanceId: string;
  /** `''` for the main line, else the branch key. */
  track: string;
  /** Its position on the stack, from 0 (the bottom). */
  pos: number;
  /** The entry, as JSON. */
  entry: unknown;
}

/** A row of `sagaflow_schedule`: the last tick a cron schedule fired. */
export interface SagaflowScheduleRow {
  /** The schedule's name. */
  name: string;
  /** The last tick (ms since epoch) the schedule fired, or the time it was first scheduled. */
  lastTick: number | string;
  /** When the row was last written (the runtime's clock, ms since epoch). */
  updatedAt: number | string;
}

/**
 * The sagaflow tables as TypeORM entities, with the column types of `kind` (`jsonb` on PostgreSQL, text on
 * SQLite). They match what the migrations create. The store itself does not need them registered: add them
 * to an application's data source only to query the tables through repositories.
 *
 * @example
 * new DataSource({ type: 'postgres', url, entities: [...sagaflowEntities('postgres'), ...mine] });
 */
export function sagaflowEntities(kind: DriverKind, schema?: string): EntitySchema[] {
  const c = columnTypes(kind);
  const t = (type: string): ColumnType => type as ColumnType;
  const where = kind === 'postgres' && schema !== undefined ? { schema } : {};
  return [
    new EntitySchema<SagaflowInstanceRow>({
      name: 'SagaflowInstance',
      tableName: TABLES.instances,
      ...where,
      columns: {
        id: { type: t(c.string), primary: true },
        workflow: { type: t(c.string) },
        status: { type: t(c.string) },
        version: { type: t(c.int) },
        record: { type: t(c.json) },
        nextDue: { name: 'next_due', type: t(c.bigint), nullable: true },
        deadlines: { type: t(c.text), nullable: true },
        parked: { type: t(c.bool) },
        leaseOwner: { name: 'lease_owner', type: t(c.string), nullable: true },
        leaseUntil: { name: 'lease_until', type: t(c.bigint), nullable: true },
        createdAt: { name: 'created_at', type: t(c.bigint) },
        updatedAt: { name: 'updated_at', type: t(c.bigint) },
        defVersion: { name: 'def_version', type: t(c.int), default: 1 },
        fingerprint: { type: t(c.string), nullable: true },
      },
      indices: [
        { name: 'IDX_sagaflow_instances_status', columns: ['status'] },
        { name: 'IDX_sagaflow_instances_definition', columns: ['workflow', 'defVersion'] },
        { name: 'IDX_sagaflow_instances_next_due', columns: ['nextDue'] },
        { name: 'IDX_sagaflow_instances_status_updated', columns: ['status', 'updatedAt'] },
        { name: 'IDX_sagaflow_instances_claimable', columns: ['updatedAt'], where: claimablePredicate(kind, UNFINISHED_STATUSES) },
      ],
    }) as EntitySchema,
    new EntitySchema<SagaflowWaitRow>({
      name: 'SagaflowWait',
      tableName: TABLES.waits,
      ...where,
      columns: {
        instanceId: { name: 'instance_id', type: t(c.string), primary: true },
        track: { type: t(c.string), primary: true },
        topic: { type: t(c.string), primary: true },
        matchKeys: { name: 'match_keys', type: t(c.text) },
        matchValues: { name: 'match_values', type: t(c.text) },
      },
      indices: [{ name: 'IDX_sagaflow_waits_match', columns: ['topic', 'matchKeys', 'matchValues'] }],
    }) as EntitySchema,
    new EntitySchema<SagaflowInboxRow>({
      name: 'SagaflowInbox',
      tableName: TABLES.inbox,
      ...where,
      columns: {
        eventId: { name: 'event_id', type: t(c.string), primary: true },
        instanceId: { name: 'instance_id', type: t(c.string), primary: true },
        track: { type: t(c.string), primary: true },
        event: { type: t(c.json) },
        acceptedAt: { name: 'accepted_at', type: t(c.bigint) },
      },
      indices: [{ name: 'IDX_sagaflow_inbox_instance', columns: ['instanceId', 'acceptedAt'] }],
    }) as EntitySchema,
    new EntitySchema<SagaflowRetainedRow>({
      name: 'SagaflowRetained',
      tableName: TABLES.retained,
      ...where,
      columns: {
        eventId: { name: 'event_id', type: t(c.string), primary: true },
        topic: { type: t(c.string) },
        event: { type: t(c.json) },
        publishedAt: { name: 'published_at', type: t(c.bigint) },
        retainUntil: { name: 'retain_until', type: t(c.bigint) },
        instanceId: { name: 'instance_id', type: t(c.string), nullable: true },
      },
      indices: [
        { name: 'IDX_sagaflow_retained_topic', columns: ['topic', 'publishedAt'] },
        { name: 'IDX_sagaflow_retained_until', columns: ['retainUntil'] },
        { name: 'IDX_sagaflow_retained_instance', columns: ['instanceId'] },
      ],
    }) as EntitySchema,
    new EntitySchema<SagaflowHistoryRow>({
      name: 'SagaflowHistory',
      tableName: TABLES.history,
      ...where,
      columns: {
        id: { type: t(c.serial), primary: true, generated: 'increment' },
        instanceId: { name: 'instance_id', type: t(c.string) },
        version: { type: t(c.int) },
        seq: { type: t(c.int) },
        at: { type: t(c.bigint) },
        kind: { type: t(c.string) },
        step: { type: t(c.string), nullable: true },
        groupName: { name: 'group_name', type: t(c.string), nullable: true },
        branch: { type: t(c.string), nullable: true },
        direction: { type: t(c.string) },
        func: { type: t(c.string), nullable: true },
        attempt: { type: t(c.int) },
        outcome: { type: t(c.string), nullable: true },
        code: { type: t(c.string), nullable: true },
        status: { type: t(c.string) },
        note: { type: t(c.text), nullable: true },
        extra: { type: t(c.text), nullable: true },
      },
      indices: [{ name: 'IDX_sagaflow_history_instance', columns: ['instanceId', 'version', 'seq'] }],
    }) as EntitySchema,
    new EntitySchema<SagaflowStackRow>({
      name: 'SagaflowStack',
      tableName: TABLES.stack,
      ...where,
      columns: {
        instanceId: { name: 'instance_id', type: t(c.string), primary: true },
        track: { type: t(c.string), primary: true },
        pos: { type: t(c.int), primary: true },
        entry: { type: t(c.json) },
      },
    }) as EntitySchema,
    new EntitySchema<SagaflowScheduleRow>({
      name: 'SagaflowSchedule',
      tableName: TABLES.schedule,
      ...where,
      columns: {
        name: { type: t(c.string), primary: true },
        lastTick: { name: 'last_tick', type: t(c.bigint) },
        updatedAt: { name: 'updated_at', type: t(c.bigint) },
      },
    }) as EntitySchema,
    new EntitySchema<SagaflowWorkerRow>({
      name: 'SagaflowWorker',
      tableName: TABLES.workers,
      ...where,
      columns: {
        workerId: { name: 'worker_id', type: t(c.string), primary: true },
        runs: { type: t(c.json) },
        seenAt: { name: 'seen_at', type: t(c.bigint) },
      },
    }) as EntitySchema,
    new EntitySchema<SagaflowDefinitionRow>({
      name: 'SagaflowDefinition',
      tableName: TABLES.definitions,
      ...where,
      columns: {
        workflow: { type: t(c.string), primary: true },
        version: { type: t(c.int), primary: true },
        fingerprint: { type: t(c.string), primary: true },
        outline: { type: t(c.json) },
        registeredAt: { name: 'registered_at', type: t(c.bigint) },
      },
    }) as EntitySchema,
    new EntitySchema<SagaflowRequestRow>({
      name: 'SagaflowRequest',
      tableName: TABLES.requests,
      ...where,
      columns: {
        id: { type: t(c.string), primary: true },
        instanceId: { name: 'instance_id', type: t(c.string) },
        kind: { type: t(c.string) },
        requestedBy: { name: 'requested_by', type: t(c.string), nullable: true },
        reason: { type: t(c.text), nullable: true },
        requestedAt: { name: 'requested_at', type: t(c.bigint) },
        state: { type: t(c.string) },
        error: { type: t(c.text), nullable: true },
        doneAt: { name: 'done_at', type: t(c.bigint), nullable: true },
      },
      indices: [
        { name: 'IDX_sagaflow_requests_state', columns: ['state', 'requestedAt'] },
        { name: 'IDX_sagaflow_requests_instance', columns: ['instanceId', 'requestedAt'] },
      ],
    }) as EntitySchema,
  ];
}
