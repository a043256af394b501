/**
 * The end of a runtime: waiting for idleness, a graceful `stop` that drains calls in flight and gives back leases,
 * and `close`, which stops timers, polling and the bus at once.
 */
import { RuntimeClosedError } from '../errors/runtime-errors';
import { checkOptions } from '../input/known-keys';
import type { TimerHandle } from '../time/clock';
import { toMillis } from '../time/duration';
import type { EventDelivery } from './event-delivery';
import type { InstanceStarter } from './instance-starter';
import type { Instances } from './instances';
import type { Recovery } from './recovery';
import type { Results } from './results';
import type { RuntimeContext } from './runtime-context';
import type { StopOptions, StopReport } from './runtime-options';

export class Lifecycle {
  constructor(
    private readonly ctx: RuntimeContext,
    private readonly instances: Instances,
    private readonly recovery: Recovery,
    private readonly events: EventDelivery,
    private readonly starter: InstanceStarter,
    private readonly results: Results,
  ) {}

  /** Resolves once no instance has a handler call in flight or a happening queued; gives up once `give` says so. */
  async idleUnless(give: () => boolean): Promise<void> {
    for (;;) {
      if (!this.instances.busy || give()) return;
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
  }

  /** Drains calls in flight until `drainTimeout`, aborts the rest, gives back leases and closes. */
  async stop(options: StopOptions): Promise<StopReport> {
    const ctx = this.ctx;
    checkOptions(options, ['drainTimeout'], 'stop');
    if (ctx.closed) return { drained: true, abandoned: 0 };
    const drainMs = toMillis(options.drainTimeout ?? '30s', 'drainTimeout');
    ctx.stopping = true;
    this.recovery.stopPolling();
    let deadlinePassed = false;
    let timer: TimerHandle | undefined;
    const deadline = new Promise<void>((resolve) => {
      timer = ctx.clock.setTimeout(() => {
        deadlinePassed = true;
        resolve();
      }, drainMs);
    });
    await Promise.race([this.idleUnless(() => deadlinePassed), deadline]);
    if (timer !== undefined) ctx.clock.clearTimeout(timer);
    let abandoned = 0;
    for (const actor of this.instances.all()) abandoned += actor.callsInFlight;
    if (ctx.shared) {
      await Promise.all([...ctx.leased].map((id) => ctx.store.release(id, ctx.workerId).catch(() => undefined)));
      ctx.leased.clear();
      await ctx.store.retire?.(ctx.workerId).catch(() => undefined);
    }
    await this.close();
    return { drained: abandoned === 0, abandoned };
  }

  /** Stops timers, polling and the bus at once, aborts calls in flight, rejects waiters, closes an owned store. */
  async close(): Promise<void> {
    const ctx = this.ctx;
    if (ctx.closed) return;
    ctx.closed = true;
    this.events.clearTimers();
    this.starter.cancelSchedules();
    this.recovery.close();
    ctx.bus.detach();
    for (const actor of this.instances.all()) actor.abortAll('runtime closed');
    this.results.rejectAll(new RuntimeClosedError('wait for results'));
    ctx.problems.complete();
    if (ctx.ownsStore) await ctx.store.close();
  }
}
