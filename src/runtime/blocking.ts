/**
 * Instances this runtime cannot run — their version is not registered, or its structure changed — are marked
 * `blocked` (persisted, reported once) rather than run on the wrong definition.
 */
import type { HistoryEntry } from '../engine/history-entry';
import { isFinalStatus } from '../core/flow-fields';
import { versionOf, type InstanceRecord } from '../engine/instance-record';
import { InstanceBlockedError, LeasedElsewhereError, VersionConflictError } from '../errors/runtime-errors';
import { isRunnable } from '../store/instance-filter';
import type { Unrunnable } from './definition-registry';
import type { Registry } from './registry';
import type { RuntimeContext } from './runtime-context';

export class Blocking {
  /** Blocked instances already reported by this runtime (each is reported once per process). */
  private readonly reported = new Set<string>();

  constructor(
    private readonly ctx: RuntimeContext,
    private readonly registry: Registry,
  ) {}

  /**
   * Why an instance this runtime cannot run is not run here: another live worker runs its definition
   * (`LeasedElsewhereError`: that one takes it), or none does, and it is blocked (persisted, reported once).
   */
  async unrunnable(record: InstanceRecord, why: Unrunnable): Promise<LeasedElsewhereError | InstanceBlockedError> {
    const ctx = this.ctx;
    if (ctx.shared && ctx.store.liveRunners !== undefined) {
      const live = await ctx.store.liveRunners(ctx.clock.now() - 2 * ctx.leaseMs);
      if (isRunnable(live, record.workflow, versionOf(record), record.fingerprint ?? null)) return new LeasedElsewhereError(record.id);
    }
    await this.block(record, why);
    return new InstanceBlockedError(record.id, why);
  }

  /**
   * Blocks the unfinished instances that no live worker runs the definition of (shared stores): they would
   * otherwise wait unseen. A worker that runs their definition later claims them and they go on.
   */
  async blockOrphans(now: number): Promise<void> {
    const store = this.ctx.store;
    if (store.orphans === undefined || store.liveRunners === undefined) return;
    const live = await store.liveRunners(now - 2 * this.ctx.leaseMs);
    for (const id of await store.orphans([...live, ...this.registry.runnable()], 100)) {
      const record = await store.load(id);
      if (record === undefined) continue;
      const found = this.registry.forRecord(record);
      if ('unrunnable' in found) await this.block(record, found.unrunnable);
    }
  }

  /** Forgets that an instance was reported blocked (it moved on: the next block is reported again). */
  unblocked(id: string): void {
    this.reported.delete(id);
  }

  /** Marks an unfinished instance blocked (once; its status is kept for when it goes on) and reports it once. */
  private async block(record: InstanceRecord, why: Unrunnable): Promise<void> {
    const same = record.blocked !== undefined && record.blocked.code === why.code && record.blocked.registered === why.registered;
    if (!same && !isFinalStatus(record.flow.status)) {
      const now = this.ctx.clock.now();
      const status = record.blocked?.status ?? record.flow.status;
      const blocked: InstanceRecord = { ...record, blocked: { ...why, status, since: now }, flow: { ...record.flow, status: 'blocked' }, updatedAt: now };
      const f = record.flow;
      const line: HistoryEntry = { at: now, kind: 'blocked', step: f.stepName, direction: f.direction, func: f.stepFunc, attempt: f.attempt, code: why.code, status: 'blocked', note: why.message };
      try {
        await this.ctx.store.save(blocked, { history: [line] });
      } catch (e) {
        if (!(e instanceof VersionConflictError)) throw e; // it moved meanwhile: whoever looks next decides again
      }
    }
    if (this.reported.has(record.id)) return;
    this.reported.add(record.id);
    this.ctx.report('instance-blocked', why.message, { code: why.code, message: why.message, details: { fingerprint: why.fingerprint, registered: why.registered } }, record.id);
  }
}
