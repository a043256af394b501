import 'reflect-metadata';
import { Column, type ValueTransformer } from 'typeorm';
import type { Direction, InstanceStatus, ResultSummary, StackEntry, StepFunc, Wait } from '../../core/flow-fields';
import type { InstanceRecord } from '../../engine/instance-record';
import type { SerializedError } from '../../errors/serialized-error';

/** A `bigint` column read back as a number (`pg` gives bigints as strings). */
const msColumn: ValueTransformer = {
  to: (value: unknown) => value,
  from: (value: unknown) => (value === null || value === undefined ? null : Number(value)),
};

/** The flow fields an entity embeds (what {@link SagaFlowColumns} and {@link SagaFlowJsonbColumns} hold). */
export interface SagaFlowFields {
  instanceId: string | null;
  workflow: string | null;
  direction: Direction | null;
  status: InstanceStatus | null;
  stepIndex: number | null;
  stepName: string | null;
  stepFunc: StepFunc | null;
  attempt: number | null;
  errorReason: SerializedError | null;
  wait: Wait | null;
  stack: StackEntry[] | null;
  lastResult: ResultSummary | null;
  updatedAt: number | null;
  version: number | null;
}

/** The columns both embeddables share (all but the JSON ones, whose column type differs). */
export abstract class SagaFlowBaseColumns implements SagaFlowFields {
  /** The saga instance this row mirrors. */
  @Column({ name: '_instance_id', type: 'varchar', nullable: true })
  instanceId!: string | null;

  /** Its workflow's name. */
  @Column({ name: '_workflow', type: 'varchar', nullable: true })
  workflow!: string | null;

  /** `up` while it runs forward, `down` while it compensates. */
  @Column({ name: '_direction', type: 'varchar', nullable: true })
  direction!: Direction | null;

  /** `running`, `waiting`, `completed`, `rolling_back`, `rolled_back` or `compensation_failed`. */
  @Column({ name: '_status', type: 'varchar', nullable: true })
  status!: InstanceStatus | null;

  /** Index of the current step (or group) in the workflow's step list. */
  @Column({ name: '_step_index', type: 'integer', nullable: true })
  stepIndex!: number | null;

  /** The current step (or group), or null before the first and after the last. */
  @Column({ name: '_step_name', type: 'varchar', nullable: true })
  stepName!: string | null;

  /** `run`, `runHandleInfo`, `rollback` or `rollbackHandleInfo`. */
  @Column({ name: '_step_func', type: 'varchar', nullable: true })
  stepFunc!: StepFunc | null;

  /** Attempt number of the current handler, from 1. */
  @Column({ name: '_attempt', type: 'integer', nullable: true })
  attempt!: number | null;

  /** When the instance last changed (ms since epoch, from the runtime's clock). */
  @Column({ name: '_updated_at', type: 'bigint', nullable: true, transformer: msColumn })
  updatedAt!: number | null;

  /** The instance's record version this row reflects: a mirror never replaces a row with an older one. */
  @Column({ name: '_version', type: 'integer', nullable: true })
  version!: number | null;

  abstract errorReason: SerializedError | null;
  abstract wait: Wait | null;
  abstract stack: StackEntry[] | null;
  abstract lastResult: ResultSummary | null;

  /** The flow columns of a stored instance record (its main line). */
  static fromRecord<C extends SagaFlowBaseColumns>(this: new () => C, record: InstanceRecord): C {
    const f = record.flow;
    const columns = new this();
    columns.instanceId = record.id;
    columns.workflow = record.workflow;
    columns.direction = f.direction;
    columns.status = f.status;
    columns.stepIndex = f.stepIndex;
    columns.stepName = f.stepName;
    columns.stepFunc = f.stepFunc;
    columns.attempt = f.attempt;
    columns.errorReason = structuredClone(f.errorReason);
    columns.wait = structuredClone(f.wait);
    columns.stack = structuredClone(f.stack);
    columns.lastResult = structuredClone(f.lastResult);
    columns.updatedAt = record.updatedAt;
    columns.version = record.version;
    return columns;
  }
}

/**
 * The flow fields of a saga instance (DESIGN §5) as a TypeORM embeddable, so an application keeps them next to
 * its own columns — the way WorkflowEx embeds `__flow__` in an Ecto schema:
 *
 * @example
 * @Entity()
 * class Order {
 *   @PrimaryColumn() id!: string;
 *   @Column() sku!: string;
 *   @Column(() => SagaFlowColumns) flow!: SagaFlowColumns;
 * }
 * // columns: flow_instance_id, flow_status, flow_step_name, … — `SELECT id FROM "order" WHERE flow_status = 'waiting'`,
 * // or through TypeORM: find({ where: { flow: { status: 'waiting' } } }).
 *
 * Column names: the embeddable names its columns `_status`, `_step_name`, …, which TypeORM's default naming
 * strategy appends to the embedding property's name (`flow` + `_status`). Keep the default prefix (the property
 * name, or a `prefix` of your choice); a naming strategy that inserts its own `_` between prefix and name (some
 * snake_case strategies do) gives `flow__status`.
 *
 * An {@link EntityMirror} fills them after every committed transition. Every column is nullable, so a row the
 * application writes before its saga starts needs none of them. The JSON columns are `simple-json` (text on
 * every database); {@link SagaFlowJsonbColumns} makes them `jsonb` on PostgreSQL.
 *
 * These columns are a copy for the application's queries: sagaflow's own tables stay the durable source of
 * truth (recovery, leases, the inbox and history read only those).
 */
export class SagaFlowColumns extends SagaFlowBaseColumns {
  /** Why it is rolling back (or rolled back), as a serialised error; null otherwise. */
  @Column({ name: '_error_reason', type: 'simple-json', nullable: true })
  errorReason!: SerializedError | null;

  /** What the current step waits for (topics, match, absolute deadline), while it is parked. */
  @Column({ name: '_wait', type: 'simple-json', nullable: true })
  wait!: Wait | null;

  /** The compensation stack: steps and groups that started (with each branch's own stack), in start order. */
  @Column({ name: '_stack', type: 'simple-json', nullable: true })
  stack!: StackEntry[] | null;

  /** A summary of the last result a handler produced. */
  @Column({ name: '_last_result', type: 'simple-json', nullable: true })
  lastResult!: ResultSummary | null;
}

/**
 * {@link SagaFlowColumns} with `jsonb` JSON columns, for PostgreSQL (queryable with `->`, `?`, GIN indexes).
 * TypeORM also accepts `jsonb` on SQLite (as text).
 */
export class SagaFlowJsonbColumns extends SagaFlowBaseColumns {
  /** Why it is rolling back (or rolled back), as a serialised error; null otherwise. */
  @Column({ name: '_error_reason', type: 'jsonb', nullable: true })
  errorReason!: SerializedError | null;

  /** What the current step waits for (topics, match, absolute deadline), while it is parked. */
  @Column({ name: '_wait', type: 'jsonb', nullable: true })
  wait!: Wait | null;

  /** The compensation stack: steps and groups that started (with each branch's own stack), in start order. */
  @Column({ name: '_stack', type: 'jsonb', nullable: true })
  stack!: StackEntry[] | null;

  /** A summary of the last result a handler produced. */
  @Column({ name: '_last_result', type: 'jsonb', nullable: true })
  lastResult!: ResultSummary | null;
}
