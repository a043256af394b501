import type { DataSource, DeepPartial, EntityTarget, FindOptionsWhere, ObjectLiteral, Repository } from 'typeorm';
import { quote } from '../../errors/serialized-error';
import { checkOptions, optionKeys } from '../../input/known-keys';
import type { InstanceRecord } from '../../engine/instance-record';
import { consoleLogger } from '../../core/logger';
import { workflowDefinition, type WorkflowRef } from '../../workflow/workflow-decorator';
import type { InstanceStore, TransitionWrites } from '../instance-store';
import { SagaFlowColumns, type SagaFlowBaseColumns, type SagaFlowFields } from './saga-flow-columns';

/** What {@link EntityMirrorOptions.map} gets besides the state and the flow columns. */
export interface MirroredInstance {
  readonly id: string;
  readonly workflow: string;
  readonly createdAt: number;
  readonly updatedAt: number;
}

/** Options of {@link mirrorToEntity}. */
export interface EntityMirrorOptions<E extends ObjectLiteral, S> {
  /**
   * The entity's fields for an instance, from its state: at least the primary key (e.g. `{ id: state.orderId }`
   * or `{ id: instance.id }`), and any state fields the application wants as columns. The flow columns are set
   * on {@link flowProperty} unless `map` sets that property itself.
   * @param state the stored state: plain JSON, as the workflow's state class dehydrates to (a copy)
   * @param flow the flow columns for this transition (a {@link SagaFlowColumns}, or the `flowColumns` class)
   */
  map(state: S, flow: SagaFlowFields, instance: MirroredInstance): DeepPartial<E>;
  /** Only instances of these workflows (names, `@Workflow` classes or definitions) are mirrored. @default all */
  readonly workflows?: readonly (string | WorkflowRef)[];
  /** The entity property that embeds the flow columns (`@Column(() => SagaFlowColumns) flow`). @default 'flow' */
  readonly flowProperty?: string;
  /** The embeddable class the entity uses, when it is not {@link SagaFlowColumns} (e.g. `SagaFlowJsonbColumns`). */
  readonly flowColumns?: new () => SagaFlowBaseColumns;
  /**
   * Called when a mirror write fails. The saga is not affected: its transition is committed in sagaflow's
   * tables before the mirror is written, and the next transition writes the row again.
   * @default a console warning
   */
  readonly onError?: (error: unknown, record: InstanceRecord) => void;
}

/**
 * Keeps a row of the application's own entity in step with a saga instance: after every committed transition
 * (start, each step's intent and result, parking on a wait, each compensation, the end) it upserts the row with
 * the fields {@link EntityMirrorOptions.map} derives from the state and with the embedded {@link SagaFlowColumns},
 * so the application can query its own table (`find({ where: { flow: { status: 'waiting' } } })`).
 *
 * It is plugged in by wrapping the runtime's store ({@link wrap}): it sees exactly what was committed — the
 * whole record, with the compensation stack and the `waiting` status, which observers do not see, and never a
 * transition that failed to commit. The mirror write is awaited before the transition's effects run, so once
 * the runtime is idle the row is current. Rows only move forward: a write carrying an older record version
 * than the row's is skipped (two workers racing, a retried write).
 *
 * The mirror is a read model, not a second source of truth: it is written after sagaflow's own transaction
 * (in the application's data source, possibly another database), so after a crash it may lag by one
 * transition until the instance's next one. Recovery, leases, events and history only use sagaflow's tables.
 *
 * @example
 * const mirror = mirrorToEntity(appDataSource, Order, {
 *   workflows: [OrderCheckout],
 *   map: (state: OrderState) => ({ id: state.orderId, sku: state.sku }),
 * });
 * const runtime = new SagaRuntime({ store: mirror.wrap(TypeormStore.sqlite()), workflows: [OrderCheckout] });
 */
export class EntityMirror<E extends ObjectLiteral, S = Record<string, unknown>> {
  private readonly workflows: ReadonlySet<string> | null;
  private readonly flowProperty: string;
  private readonly Flow: new () => SagaFlowBaseColumns;
  private readonly onError: (error: unknown, record: InstanceRecord) => void;

  constructor(
    readonly dataSource: DataSource,
    readonly entity: EntityTarget<E>,
    private readonly options: EntityMirrorOptions<E, S>,
  ) {
    checkOptions(options, optionKeys<EntityMirrorOptions<E, S>>()(['map', 'workflows', 'flowProperty', 'flowColumns', 'onError']), 'mirrorToEntity');
    this.workflows = options.workflows === undefined ? null : new Set(options.workflows.map((w) => (typeof w === 'string' ? w : workflowDefinition(w).name)));
    this.flowProperty = options.flowProperty ?? 'flow';
    this.Flow = options.flowColumns ?? SagaFlowColumns;
    this.onError =
      options.onError ??
      ((error, record) =>
        consoleLogger.warn({ instanceId: record.id, error: error instanceof Error ? error.message : String(error) }, 'the entity mirror could not write its row; the saga goes on'));
  }

  /**
   * `store`, mirroring every record it commits (create and save) to the entity. Everything else — leases,
   * the inbox, `shared`, `init`, the store's own members — is the store's, unchanged; the result is still a
   * `TypeormStore` (or whatever `store` is).
   */
  wrap<T extends InstanceStore>(store: T): T {
    const mirror = async (record: InstanceRecord): Promise<void> => {
      try {
        await this.write(record);
      } catch (error) {
        this.report(error, record);
      }
    };
    const create = async (record: InstanceRecord, writes?: TransitionWrites): Promise<boolean> => {
      const created = await store.create(record, writes);
      if (created) await mirror({ ...record, version: 1 });
      return created;
    };
    const save = async (record: InstanceRecord, writes?: TransitionWrites): Promise<number> => {
      const version = await store.save(record, writes);
      await mirror({ ...record, version });
      return version;
    };
    return new Proxy(store, {
      get(target, property) {
        if (property === 'create') return create;
        if (property === 'save') return save;
        const value: unknown = Reflect.get(target, property, target);
        return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
      },
    });
  }

  /**
   * Upserts the entity row of `record` (when its workflow is mirrored), unless the row already reflects the
   * same or a newer version. Resolves whether it wrote. Rejects when `map` or the database fails.
   */
  async write(record: InstanceRecord): Promise<boolean> {
    if (this.workflows !== null && !this.workflows.has(record.workflow)) return false;
    const repository = this.dataSource.getRepository(this.entity);
    const row = this.row(record, repository);
    const id = repository.metadata.getEntityIdMap(row) as FindOptionsWhere<E> | undefined;
    if (id === undefined) {
      throw new TypeError(`the entity mirror's map() gave no primary key for instance ${quote(record.id)} (it returned ${quote(Object.keys(row))})`);
    }
    if (await this.update(repository, row, id, record.version)) return true;
    if (!(await repository.exists({ where: id }))) {
      try {
        await repository.insert(row as Parameters<Repository<E>['insert']>[0]);
        return true;
      } catch (error) {
        if (!(await repository.exists({ where: id }))) throw error;
        // Inserted meanwhile (by another worker): compare versions below.
      }
    }
    // The row exists now (it may have appeared after the first update): this update decides.
    return this.update(repository, row, id, record.version);
  }

  private row(record: InstanceRecord, repository: Repository<E>): DeepPartial<E> {
    const flow = (this.Flow as typeof SagaFlowColumns).fromRecord(record);
    const fields = this.options.map(structuredClone(record.state) as S, flow, {
      id: record.id,
      workflow: record.workflow,
      createdAt: record.createdAt,
      updatedAt: record.updatedAt,
    }) as Record<string, unknown>;
    if (fields === null || typeof fields !== 'object') throw new TypeError(`the entity mirror's map() must return an object, got ${String(fields)}`);
    const row: Record<string, unknown> = { ...fields };
    if (row[this.flowProperty] === undefined) row[this.flowProperty] = flow;
    const embedded = repository.metadata.findEmbeddedWithPropertyPath(this.flowProperty);
    if (embedded === undefined) {
      throw new TypeError(`entity ${repository.metadata.name} has no embedded ${quote(this.flowProperty)}: add @Column(() => SagaFlowColumns) ${this.flowProperty}`);
    }
    return row as DeepPartial<E>;
  }

  /** Updates the row when its stored version is older (or unset); resolves whether a row changed. */
  private async update(repository: Repository<E>, row: DeepPartial<E>, id: FindOptionsWhere<E>, version: number): Promise<boolean> {
    const metadata = repository.metadata;
    const versionColumn = metadata.findColumnWithPropertyPath(`${this.flowProperty}.version`);
    if (versionColumn === undefined) throw new TypeError(`entity ${metadata.name}: ${this.flowProperty} is not a SagaFlowColumns embeddable (no version column)`);
    const values: Record<string, unknown> = { ...(row as Record<string, unknown>) };
    for (const primary of metadata.primaryColumns) delete values[primary.propertyName];
    const qb = repository.createQueryBuilder().update();
    const column = qb.escape(versionColumn.databaseName);
    const result = await qb
      .set(values as Parameters<typeof qb.set>[0])
      .where(id)
      .andWhere(`(${column} IS NULL OR ${column} < :sagaflowMirrorVersion)`, { sagaflowMirrorVersion: version })
      .execute();
    return (result.affected ?? 0) > 0;
  }

  private report(error: unknown, record: InstanceRecord): void {
    try {
      this.onError(error, record);
    } catch {
      // a throwing error handler must not fail the saga's transition either
    }
  }
}

/**
 * Mirrors saga instances into rows of the application's own entity (see {@link EntityMirror}); plug it in with
 * `mirror.wrap(store)`.
 */
export function mirrorToEntity<E extends ObjectLiteral, S = Record<string, unknown>>(
  dataSource: DataSource,
  entity: EntityTarget<E>,
  options: EntityMirrorOptions<E, S>,
): EntityMirror<E, S> {
  return new EntityMirror(dataSource, entity, options);
}
