/**
 * Answers for callers waiting on instances: `handle(id).result()` waiters (settled when an instance ends, here or
 * on another worker), and snapshots with the state made into the workflow's class.
 */
import { isFinalStatus } from '../core/flow-fields';
import { flowView } from '../engine/flow-view';
import { versionOf, type InstanceRecord } from '../engine/instance-record';
import { RuntimeClosedError, UnknownInstanceError } from '../errors/runtime-errors';
import { copyJson } from '../core/safe-json';
import { checkInstanceId } from '../store/instance-filter';
import type { Instances } from './instances';
import type { Registry } from './registry';
import type { Deferred, RuntimeContext } from './runtime-context';
import type { InstanceSnapshot, SagaResult, WorkflowHandle } from './runtime-options';

export class Results {
  private readonly waiters = new Map<string, Deferred<SagaResult<unknown>>[]>();

  constructor(
    private readonly ctx: RuntimeContext,
    private readonly registry: Registry,
    private readonly instances: Instances,
  ) {}

  /** A handle to an existing instance. */
  handle<S>(id: string): WorkflowHandle<S> {
    return { id, result: () => this.result<S>(id) };
  }

  /**
   * Waits for an instance to end. Its waiter is registered before the instance is looked up (so an end that comes
   * meanwhile is not missed) and taken back when the lookup fails: a rejected `result()` leaves nothing behind.
   */
  result<S>(id: string): Promise<SagaResult<S>> {
    try {
      checkInstanceId(id, 'result');
    } catch (error) {
      return Promise.reject(error instanceof Error ? error : new Error(String(error)));
    }
    let waiter!: Deferred<SagaResult<unknown>>;
    const promise = new Promise<SagaResult<S>>((resolve, reject) => {
      waiter = { resolve: resolve as (v: SagaResult<unknown>) => void, reject };
    });
    const list = this.waiters.get(id) ?? [];
    list.push(waiter);
    this.waiters.set(id, list);
    const withdraw = (error: unknown): void => {
      const left = (this.waiters.get(id) ?? []).filter((w) => w !== waiter);
      if (left.length === 0) this.waiters.delete(id);
      else this.waiters.set(id, left);
      waiter.reject(error);
    };
    const lookUp = async (): Promise<void> => {
      await this.ctx.ready();
      // A live actor that has not ended settles the waiter when it does: nothing to read (and no store round trip).
      const live = this.instances.live(id);
      if (live !== undefined && !isFinalStatus(live.record.flow.status) && !this.ctx.closed) return;
      const record = await this.instances.current(id);
      if (record === undefined) withdraw(new UnknownInstanceError(id));
      else if (isFinalStatus(record.flow.status)) this.settle(record);
      else if (this.ctx.closed) withdraw(new RuntimeClosedError('wait for results'));
    };
    lookUp().catch(withdraw);
    return promise;
  }

  /** Resolves the waiters of an instance that ended. */
  settle(record: InstanceRecord): void {
    const list = this.waiters.get(record.id);
    if (list === undefined) return;
    this.waiters.delete(record.id);
    const result: SagaResult<unknown> = { id: record.id, status: record.flow.status, state: this.readableState(record), error: record.flow.errorReason };
    for (const d of list) d.resolve(result);
  }

  /** Settles the waiters of instances another worker finished. */
  async settleFinishedElsewhere(): Promise<void> {
    const ids = [...this.waiters.keys()].filter((id) => this.instances.live(id) === undefined);
    for (const id of ids) {
      const record = await this.ctx.store.load(id).catch(() => undefined);
      if (record !== undefined && isFinalStatus(record.flow.status)) this.settle(record);
    }
  }

  /** Rejects every waiter (the runtime closed). */
  rejectAll(error: unknown): void {
    for (const [id, list] of [...this.waiters]) {
      this.waiters.delete(id);
      for (const d of list) d.reject(error);
    }
  }

  /** A snapshot of a record, its state readable. */
  snapshot<S>(record: InstanceRecord): InstanceSnapshot<S> {
    return {
      id: record.id,
      workflow: record.workflow,
      version: versionOf(record),
      blocked: record.blocked === undefined ? null : structuredClone(record.blocked),
      status: record.flow.status,
      state: this.readableState(record) as S,
      error: record.flow.errorReason,
      flow: flowView(record, null),
      createdAt: record.createdAt,
      updatedAt: record.updatedAt,
      compensationFailures: structuredClone(record.compensationFailures),
    };
  }

  /** The state as the workflow's class when it can be made, else the stored JSON (reported): a read never fails on it. */
  private readableState(record: InstanceRecord): unknown {
    const found = this.registry.forRecord(record);
    if ('services' in found) {
      try {
        return found.services.codec.hydrate(record.state);
      } catch (error) {
        this.ctx.report('instance-failed', `the state of ${record.id} could not be made into its state class; it is returned as stored JSON`, error, record.id);
      }
    }
    return copyJson(record.state);
  }
}
