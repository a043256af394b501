/**
 * What operators (and tools) do to instances from outside: roll back or cancel, retry or skip failed
 * compensations, and read snapshots, lists and histories.
 */
import type { HistoryEntry } from '../engine/history-entry';
import { InvalidOperationError, UnknownInstanceError } from '../errors/runtime-errors';
import { SagaflowError } from '../errors/sagaflow-error';
import { quote, serializeError } from '../errors/serialized-error';
import { RollbackRequestedError } from '../errors/step-errors';
import { checkFilter, checkInstanceId } from '../store/instance-filter';
import type { InstanceFilter, InstanceSummary } from '../store/instance-store';
import type { Instances } from './instances';
import { checkNote, checkText, noteText } from './operator-input';
import type { Results } from './results';
import type { RuntimeContext } from './runtime-context';
import type { InstanceSnapshot, OperatorNote } from './runtime-options';

export class OperatorApi {
  constructor(
    private readonly ctx: RuntimeContext,
    private readonly instances: Instances,
    private readonly results: Results,
  ) {}

  /** Rolls an instance back from outside. @throws UnknownInstanceError; SagaflowError `INSTANCE_FINISHED` */
  async rollback(id: string, reason: string, request?: string): Promise<void> {
    checkInstanceId(id, 'rollback');
    checkText(reason, 'the reason', 'rollback');
    this.ctx.assertOpen('roll back');
    const actor = await this.instances.actor(id);
    if (actor.record.flow.status === 'completed') {
      throw new SagaflowError('INSTANCE_FINISHED', `instance ${quote(id, 120)} already completed; there is nothing in flight to roll back`, {
        instanceId: id,
      });
    }
    await actor.post({ type: 'rollback', reason: serializeError(new RollbackRequestedError(reason)) }, request === undefined ? {} : { request });
  }

  /** Cancels an instance: a rollback with who and why in the history. */
  async cancel(id: string, reason: string, note: OperatorNote, request?: string): Promise<void> {
    checkNote(note, 'cancel');
    await this.rollback(id, note.by === undefined ? reason : `${reason} (by ${note.by})`, request);
  }

  /**
   * Retries or skips the failed compensations of a `compensation_failed` instance.
   * @throws UnknownInstanceError; InvalidOperationError `INVALID_OPERATION`
   */
  async operate(id: string, action: 'retryCompensation' | 'skipCompensation', note: OperatorNote, request?: string): Promise<void> {
    checkInstanceId(id, action);
    checkNote(note, action);
    this.ctx.assertOpen(action);
    const actor = await this.instances.actor(id);
    const record = actor.record;
    if (record.flow.status !== 'compensation_failed') {
      throw new InvalidOperationError(action, id, record.flow.status, 'only a compensation_failed instance has failed compensations');
    }
    const leftovers = record.flow.stack.length > 0 || (record.group?.branches.some((b) => b.phase === 'compensation_failed') ?? false);
    if (!leftovers) {
      throw new InvalidOperationError(action, id, record.flow.status, 'no compensation is left to act on (the rollback went past its failures, which are listed in compensationFailures)');
    }
    const text = noteText(note);
    await actor.post({ type: action }, { ...(text === '' ? {} : { note: text }), ...(request === undefined ? {} : { request }) });
  }

  /** The history of an instance, oldest first. @throws UnknownInstanceError */
  async history(id: string): Promise<HistoryEntry[]> {
    checkInstanceId(id, 'history');
    await this.ctx.ready();
    if (this.instances.live(id) === undefined && (await this.ctx.store.load(id)) === undefined) throw new UnknownInstanceError(id);
    return this.ctx.store.history(id);
  }

  /** A snapshot of an instance. @throws UnknownInstanceError */
  async get<S>(id: string): Promise<InstanceSnapshot<S>> {
    checkInstanceId(id, 'get');
    await this.ctx.ready();
    const record = await this.instances.current(id);
    if (record === undefined) throw new UnknownInstanceError(id);
    return this.results.snapshot<S>(record);
  }

  /** Summaries of instances in the store. */
  async list(filter?: InstanceFilter): Promise<InstanceSummary[]> {
    const checked = checkFilter(filter);
    await this.ctx.ready();
    return this.ctx.store.list(checked);
  }
}
