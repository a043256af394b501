/**
 * The instances live in this runtime: one actor each, loaded on demand (taking the lease on shared stores),
 * handed their happenings, and evicted when idle. Also the host through which actors reach the runtime.
 */
import { InstanceBlockedError, LeasedElsewhereError, UnknownInstanceError } from '../errors/runtime-errors';
import type { Happening } from '../engine/decide';
import { InstanceActor, type ActorHost, type PostOptions, type WorkflowServices } from '../engine/instance-actor';
import type { InstanceRecord } from '../engine/instance-record';
import { copyJson } from '../core/safe-json';
import type { Blocking } from './blocking';
import type { Registry } from './registry';
import type { RuntimeContext } from './runtime-context';

/** What actors need from the rest of the runtime: events, timers, ends and children. */
export type InstanceHooks = Pick<ActorHost, 'publish' | 'watch' | 'timer' | 'finished' | 'children'>;

export class Instances {
  private readonly actors = new Map<string, InstanceActor>();
  private readonly loading = new Map<string, Promise<InstanceActor>>();
  /** The host every actor of this runtime is given. */
  readonly host: ActorHost;

  constructor(
    private readonly ctx: RuntimeContext,
    private readonly registry: Registry,
    private readonly blocking: Blocking,
    hooks: InstanceHooks,
  ) {
    this.host = {
      ...hooks,
      store: ctx.store,
      clock: ctx.clock,
      logger: ctx.logger,
      resolveStep: (cls) => registry.resolveStep(cls),
      idle: (actor) => this.evict(actor),
      reportFailure: (instanceId, message, error) => ctx.report('instance-failed', message, error, instanceId),
      lost: (actor) => {
        this.forget(actor.id, actor);
        ctx.leaseUntil.delete(actor.id);
      },
      isClosed: () => ctx.closed,
      isStopping: () => ctx.stopping,
      holds: async (instanceId) => {
        if (!ctx.shared) return true;
        const now = ctx.clock.now();
        return ctx.store.acquire(instanceId, ctx.workerId, now + ctx.leaseMs, now);
      },
      lease: (instanceId) => {
        if (!ctx.shared) return undefined;
        ctx.leased.add(instanceId);
        const now = ctx.clock.now();
        const until = now + ctx.leaseMs;
        ctx.leaseUntil.set(instanceId, until);
        // Taken only when free: an instance read without its lease is taken by its first transition.
        return { owner: ctx.workerId, until, ifFreeAt: now };
      },
    };
  }

  /** The live actor of an instance, if this runtime holds one. */
  live(id: string): InstanceActor | undefined {
    return this.actors.get(id);
  }

  /** Every live actor. */
  all(): IterableIterator<InstanceActor> {
    return this.actors.values();
  }

  /** True while an actor is being loaded or any live one has work in flight or queued. */
  get busy(): boolean {
    let busy = this.loading.size > 0;
    for (const actor of this.actors.values()) busy ||= !actor.idle;
    return busy;
  }

  /** Keeps a newly made actor (unless one already runs the instance), evicting it at once when it is idle. */
  adopt(actor: InstanceActor): void {
    if (this.actors.has(actor.id)) return;
    this.actors.set(actor.id, actor);
    if (actor.idle) this.evict(actor);
  }

  /** Forgets the live actor of an instance (when `only` is given, only if it is that one). */
  forget(id: string, only?: InstanceActor): void {
    if (only === undefined || this.actors.get(id) === only) this.actors.delete(id);
  }

  /** The record as committed: the live actor's when it equals the store's, else the store's. */
  async current(id: string): Promise<InstanceRecord | undefined> {
    // A copy, taken now: the live actor advances its record in place, and the caller reads it after an await.
    const live = this.actors.get(id)?.committed;
    return live === undefined ? this.ctx.store.load(id) : copyJson(live);
  }

  /**
   * The actor of an instance, loaded when needed — from `read` when the caller has just read the record from the
   * store (as {@link InstanceStore.load}, or on a shared store as `loadUnleased` for this worker).
   * @throws UnknownInstanceError; LeasedElsewhereError; InstanceBlockedError when no definition here runs it
   */
  async actor(id: string, read?: InstanceRecord | 'leased'): Promise<InstanceActor> {
    const existing = this.actors.get(id);
    if (existing !== undefined) return existing;
    let loading = this.loading.get(id);
    if (loading === undefined) {
      loading = this.load(id, read);
      this.loading.set(id, loading);
      loading.then(
        () => this.loading.delete(id),
        () => this.loading.delete(id),
      );
    }
    return loading;
  }

  /** Hands a happening to an instance's actor (loaded from `read` when needed: see {@link actor}). */
  async deliver(id: string, happening: Happening, options: PostOptions = {}, read?: InstanceRecord | 'leased'): Promise<boolean> {
    const actor = await this.actor(id, read);
    // A blocked instance whose definition is back goes on first: its waits, timers and calls in flight resume.
    if (actor.record.blocked !== undefined && happening.type !== 'resume') await actor.post({ type: 'resume' });
    return actor.post(happening, options);
  }

  /** Resumes an instance; a failure other than "another worker runs it" or "blocked" is reported. */
  resume(id: string): Promise<void> {
    return this.deliver(id, { type: 'resume' }).then(
      () => undefined,
      (e: unknown) => {
        if (!(e instanceof LeasedElsewhereError || e instanceof InstanceBlockedError)) this.ctx.report('instance-failed', `instance ${id} could not be resumed`, e, id);
      },
    );
  }

  private async load(id: string, read: InstanceRecord | 'leased' | undefined): Promise<InstanceActor> {
    const ctx = this.ctx;
    await ctx.ready();
    const record = ctx.shared ? await this.readShared(id, read) : read !== undefined && read !== 'leased' ? read : await ctx.store.load(id);
    if (record === undefined) throw new UnknownInstanceError(id);
    const found = this.registry.forRecord(record);
    if ('unrunnable' in found) {
      if (ctx.shared) {
        ctx.leased.delete(id);
        await ctx.store.release(id, ctx.workerId).catch(() => undefined);
      }
      throw await this.blocking.unrunnable(record, found.unrunnable);
    }
    if (record.workflowVersion === undefined) {
      // Written before versions: it runs on version 1, whose structure it takes as its own from now on.
      record.workflowVersion = found.services.def.version;
      record.fingerprint = found.services.def.fingerprint;
    }
    return this.actorFor(found.services, record);
  }

  /**
   * The stored record of a shared store's instance, when this worker may run it. When the store can, it is read
   * without taking the lease (one read, no commit): the first transition takes it, unless another worker holds it
   * meanwhile. `read`: what such a read answered just now.
   * @throws LeasedElsewhereError when another worker holds it
   */
  private async readShared(id: string, read: InstanceRecord | 'leased' | undefined): Promise<InstanceRecord | undefined> {
    const ctx = this.ctx;
    if (ctx.store.loadUnleased !== undefined) {
      ctx.leased.add(id);
      const found = read ?? (await ctx.store.loadUnleased(id, ctx.workerId, ctx.clock.now()));
      if (found === 'leased') throw new LeasedElsewhereError(id);
      return found;
    }
    if (!(await ctx.acquire(id))) {
      if ((await ctx.store.load(id)) === undefined) throw new UnknownInstanceError(id);
      throw new LeasedElsewhereError(id);
    }
    return ctx.store.load(id);
  }

  private actorFor(services: WorkflowServices, record: InstanceRecord): InstanceActor {
    const existing = this.actors.get(record.id);
    if (existing !== undefined) return existing;
    const actor = InstanceActor.load(this.host, services, record);
    this.actors.set(record.id, actor);
    return actor;
  }

  private evict(actor: InstanceActor): void {
    if (this.actors.get(actor.id) === actor && actor.idle) this.actors.delete(actor.id);
  }
}
