/**
 * Resuming work: recovery of every unfinished instance when a process starts, the poll loop of a shared store
 * (stale claims, due timers, inbox, lease renewal, orphans), and resuming instances blocked for want of a definition.
 */
import { InstanceBlockedError, LeasedElsewhereError } from '../errors/runtime-errors';
import type { Blocking } from './blocking';
import type { EventDelivery } from './event-delivery';
import type { Instances } from './instances';
import { PollLoop } from './poll-loop';
import type { Registry } from './registry';
import type { Results } from './results';
import type { RuntimeContext } from './runtime-context';

export class Recovery {
  private recovered: Promise<void> | null = null;
  private readonly polls: PollLoop;
  /** When the next scan for instances no live worker can run is due (shared stores). */
  private nextOrphanScan = 0;
  private unsubscribeInbox: (() => void) | null = null;

  constructor(
    private readonly ctx: RuntimeContext,
    private readonly registry: Registry,
    private readonly instances: Instances,
    private readonly events: EventDelivery,
    private readonly results: Results,
    private readonly blocking: Blocking,
  ) {
    this.polls = new PollLoop(ctx, () => this.pollRound(), 'a poll of the shared store failed; the next one will try again');
  }

  /** True once recovery has been asked for: the runtime runs instances. */
  get started(): boolean {
    return this.recovered !== null;
  }

  /** Recovery, once; a recovery that failed (the store was down) is tried again by the next `start()`. */
  recover(): Promise<void> {
    this.recovered ??= this.recoverOnce().catch((error: unknown) => {
      this.recovered = null;
      throw error;
    });
    return this.recovered;
  }

  /** Resumes an instance and applies what waits in its inbox. */
  async resumeWithInbox(id: string): Promise<void> {
    await this.instances.resume(id);
    await this.events.drainInbox(id);
  }

  /** Resumes the blocked instances of a workflow this runtime can now run (non-shared stores; shared ones claim them). */
  async resumeBlocked(workflow: string): Promise<void> {
    await this.ctx.ready();
    for (const { id } of await this.ctx.store.list({ status: 'blocked', workflow, limit: Number.MAX_SAFE_INTEGER })) await this.resumeWithInbox(id);
  }

  /** Stops the poll loop (the runtime stops). */
  stopPolling(): void {
    this.polls.stop();
  }

  /** Stops the poll loop and inbox wake-ups for good (the runtime closed). */
  close(): void {
    this.polls.stop();
    this.unsubscribeInbox?.();
  }

  private recoverOnce(): Promise<void> {
    return (async () => {
      const ctx = this.ctx;
      ctx.assertOpen('recover');
      await ctx.ready();
      if (ctx.shared) {
        // Other workers may be running their own instances: take only those with free or expired leases,
        // and keep looking for more (and for due timers and inbox deliveries) on every poll.
        this.unsubscribeInbox = ctx.store.onInbox?.((id) => void this.events.drainInbox(id)) ?? null;
        await this.polls.run();
        return;
      }
      const ids = await ctx.store.unfinished();
      await Promise.all(ids.map((id) => this.instances.resume(id)));
      // Retained events whose window passed while no process ran: report them as dropped.
      await this.events.expireRetained();
      // Deliveries accepted before a crash and not yet applied (a retained event moved to an inbox, say).
      for (const id of (await ctx.store.inboxInstances?.(10_000)) ?? []) await this.events.drainInbox(id);
    })();
  }

  /**
   * One round of a shared store's worker loop: claim stale instances (a dead worker's), fire due timers, take
   * inbox deliveries, renew the leases this worker holds. Then the next round is scheduled on the clock.
   */
  private async pollRound(): Promise<void> {
    const ctx = this.ctx;
    const now = ctx.clock.now();
    // This worker takes only instances of definitions it runs, and says which those are.
    const runnable = this.registry.runnable();
    await ctx.store.heartbeat?.(ctx.workerId, runnable, now);
    await this.renewLeases(now);
    const stale = await ctx.store.claimStale(ctx.workerId, now + ctx.leaseMs, now, 100, runnable);
    for (const id of stale) ctx.leased.add(id);
    await Promise.all(stale.map((id) => this.instances.resume(id)));
    const due = await ctx.store.dueWaits(now, 100, runnable);
    await Promise.all(
      due.map(({ instanceId, track, deadline }) =>
        this.instances.deliver(instanceId, { type: 'due', track, at: deadline }).catch((e: unknown) => {
          if (!(e instanceof LeasedElsewhereError || e instanceof InstanceBlockedError)) ctx.report('instance-failed', `a timer of ${instanceId} could not be applied`, e, instanceId);
        }),
      ),
    );
    const inbox = (await ctx.store.inboxInstances?.(100, runnable)) ?? [];
    await Promise.all(inbox.map((id) => this.events.drainInbox(id)));
    if (now >= this.nextOrphanScan) {
      this.nextOrphanScan = now + ctx.leaseMs;
      await this.blocking.blockOrphans(now);
    }
    // A retained event may match a wait whose own check never ran (its worker died right after parking).
    for (const event of await ctx.store.retainedEvents(now, 100)) await this.events.claimRetained(event, now);
    if (ctx.retentionMs > 0) await this.events.expireRetained();
    await this.results.settleFinishedElsewhere();
  }

  private async renewLeases(now: number): Promise<void> {
    const ctx = this.ctx;
    const live = [...this.instances.all()];
    const ids = new Set(live.map((actor) => actor.id));
    for (const id of ctx.leaseUntil.keys()) if (!ids.has(id)) ctx.leaseUntil.delete(id);
    await Promise.all(
      live.map(async (actor) => {
        // A transition written lately renewed the lease with it: nothing to write until half of it is spent.
        if ((ctx.leaseUntil.get(actor.id) ?? 0) - now > ctx.leaseMs / 2) return;
        if (await ctx.store.acquire(actor.id, ctx.workerId, now + ctx.leaseMs, now)) {
          ctx.leaseUntil.set(actor.id, now + ctx.leaseMs);
          return;
        }
        // Another worker took it over (this one was too slow to renew): stop running it here.
        actor.abortAll('the lease was lost to another worker');
        this.instances.forget(actor.id, actor);
      }),
    );
  }
}
