/**
 * Getting events and timers to instances: `publish` (to waiting steps, into an inbox when another worker holds
 * the instance, or kept for a wait that begins just after), inbox draining, retained-event expiry, and due timers.
 */
import { normalizeEvent, type SagaEvent, type SagaEventInput } from '../bus/event';
import { isFinalStatus, type Wait } from '../core/flow-fields';
import { trackOf, type InstanceRecord, type TrackRef } from '../engine/instance-record';
import { InstanceBlockedError, LeasedElsewhereError, UnknownInstanceError, VersionConflictError } from '../errors/runtime-errors';
import { quote } from '../errors/serialized-error';
import { KEEP_FOR_INSTANCE, type WaitingRecord } from '../store/instance-store';
import { CHILD_ENDED_TOPIC } from '../workflow/child';
import type { Instances } from './instances';
import type { PublishReceipt } from '../core/publish-receipt';
import type { RuntimeContext } from './runtime-context';
import { TimerQueue } from './timer-queue';

/**
 * A child's end is told to its parent at least once: when the child ends, and again when the parent's wait begins (in
 * case the first was missed). A copy arriving after the parent took one, or after the parent ended, is expected: it
 * is dropped without a report.
 */
function isRepeatedChildEnd(event: SagaEvent): boolean {
  return event.topic === CHILD_ENDED_TOPIC;
}

/** The timer-queue key of the check that expires retained events (not an instance id: those are never empty). */
const RETAINED_EXPIRY = '';

export class EventDelivery {
  private readonly timers: TimerQueue<{ instanceId: string; track: TrackRef }>;

  constructor(
    private readonly ctx: RuntimeContext,
    private readonly instances: Instances,
    /** Told of each wait that begins, after its timer is set and before kept events are looked at. */
    private readonly onWait: (instanceId: string, wait: Wait) => void,
  ) {
    this.timers = new TimerQueue(ctx.clock, ({ instanceId, track }, at) => {
      if (instanceId === RETAINED_EXPIRY) {
        this.expireRetained().catch((e: unknown) => ctx.report('instance-failed', 'retained events could not be expired', e));
        return;
      }
      instances.deliver(instanceId, { type: 'due', track, at }).catch((e: unknown) => {
        if (!(e instanceof InstanceBlockedError)) ctx.report('instance-failed', `a timer of ${instanceId} could not be applied`, e, instanceId);
      });
    });
  }

  /**
   * Publishes an event: delivers it to every waiting step whose wait matches, or keeps it (for the instance it
   * names, or for the retention window).
   */
  async publish(input: SagaEventInput): Promise<PublishReceipt> {
    const ctx = this.ctx;
    ctx.assertOpen('publish');
    await ctx.ready();
    const now = ctx.clock.now();
    const event = normalizeEvent(input, now);
    const waiting = await this.findWaiting(event, now);
    const results = await Promise.all(
      waiting.map((w) =>
        this.deliverEvent(w.instanceId, w.track, event, w.record).catch((e: unknown) => {
          ctx.report('instance-failed', `event ${event.topic} could not be delivered to ${w.instanceId}`, e, w.instanceId);
          return false;
        }),
      ),
    );
    let delivered = results.filter(Boolean).length;
    let retained = false;
    let held = false;
    if (delivered === 0 && event.instanceId !== undefined) {
      held = await this.holdFor(event.instanceId, event);
    } else if (delivered === 0 && ctx.retentionMs > 0) {
      await ctx.store.acceptEvent(event, [], now + ctx.retentionMs);
      this.timers.add(now + ctx.retentionMs + 1, { instanceId: RETAINED_EXPIRY, track: null });
      retained = true;
    }
    // A wait may have begun between the lookup and the retention (the fast reply race): look again. Whoever
    // takes the kept event first — this or the wait's own check — delivers it, exactly once.
    if ((retained || held) && (await this.claimRetained(event, now))) {
      delivered = 1;
      retained = false;
      held = false;
    }
    ctx.bus.emit(event);
    return { eventId: event.id, delivered, retained, held };
  }

  /**
   * The waiting tracks `event` matches, with their records when the store reads them in the same query (as this
   * runtime would load them: without the lease on a shared store).
   */
  private findWaiting(event: SagaEvent, now: number): Promise<WaitingRecord[]> {
    const { store, shared, workerId } = this.ctx;
    if (store.findWaitingRecords === undefined || (shared && store.loadUnleased === undefined)) return store.findWaiting(event);
    return store.findWaitingRecords(event, shared ? { owner: workerId, now } : undefined);
  }

  /** Sets a timer that hands the track a `due` happening at `at`. */
  timer(instanceId: string, track: TrackRef, at: number): void {
    this.timers.add(at, { instanceId, track });
  }

  /** Cancels every timer (the runtime closed). */
  clearTimers(): void {
    this.timers.clear();
  }

  /**
   * A wait began: set its deadline's timer, and hand it a kept event it matches — a retained one, or one left in the
   * inbox while the track was busy (`inboxKept`).
   */
  watch(instanceId: string, track: TrackRef, wait: Wait, inboxKept = false): void {
    if (wait.deadline !== null) this.timers.add(wait.deadline, { instanceId, track });
    this.onWait(instanceId, wait);
    // A kept event this wait matches (a retained one, or one published to this instance) moves into the instance's
    // inbox in one transaction, and is applied from there (its consumption commits with the transition): a crash in
    // between cannot lose it.
    this.ctx.store
      .moveRetainedToInbox(instanceId, track, wait, this.ctx.clock.now())
      .then(async (early) => {
        if (early !== undefined || inboxKept) await this.drainInbox(instanceId);
      })
      .catch((e: unknown) => this.ctx.report('instance-failed', `a retained event could not be delivered to ${instanceId}`, e, instanceId));
  }

  /**
   * Applies the inbox deliveries of an instance, when this worker can hold its lease. A delivery that meets a newer
   * version of the instance (another worker moved it on since this one read it) stays in the inbox: the inbox is
   * read again once at once, and else the next poll applies it.
   */
  async drainInbox(id: string, retries = 1): Promise<void> {
    try {
      const pending = await this.ctx.store.pendingEvents(id);
      for (const { event, track } of pending) {
        await this.instances.deliver(id, { type: 'event', track, event }, { fromInbox: true });
      }
    } catch (e) {
      if (e instanceof VersionConflictError && retries > 0) return this.drainInbox(id, retries - 1);
      if (!(e instanceof LeasedElsewhereError || e instanceof VersionConflictError || e instanceof InstanceBlockedError)) {
        this.ctx.report('instance-failed', `the inbox of ${id} could not be applied`, e, id);
      }
    }
  }

  /**
   * Reports and removes what an ended instance never consumed: events published to it, inbox deliveries. A child's
   * end is told to its parent twice when the child ends as the parent's wait begins (once when the child ends, once
   * when the wait finds it ended): the copy left over is removed without a report.
   */
  async dropEventsOf(record: InstanceRecord): Promise<void> {
    for (const event of await this.ctx.store.dropEvents(record.id)) {
      if (isRepeatedChildEnd(event)) continue;
      this.ctx.report(
        'event-dropped',
        `event ${event.topic} (${event.id}) for instance ${record.id} was never consumed: the instance ended ${record.flow.status}`,
        { code: 'EVENT_NOT_CONSUMED', message: `instance ${quote(record.id)} ended before a wait of it took the event` },
        record.id,
      );
    }
  }

  /** Reports and removes retained events nobody took in their window. */
  async expireRetained(): Promise<void> {
    for (const event of await this.ctx.store.expireRetained(this.ctx.clock.now(), 1000)) {
      this.ctx.report('event-dropped', `event ${event.topic} (${event.id}) matched no wait within eventRetention and was dropped`, {
        code: 'EVENT_EXPIRED',
        message: `no wait took event ${quote(event.id)} within ${this.ctx.retentionMs} ms`,
      });
    }
  }

  /** Moves a kept event into the inbox of a wait it matches and applies it; false when no wait took it. */
  async claimRetained(event: SagaEvent, now: number): Promise<boolean> {
    for (const w of await this.ctx.store.findWaiting(event)) {
      const record = await this.instances.current(w.instanceId);
      const wait = record === undefined ? undefined : trackOf(record, w.track)?.flow.wait;
      if (wait === undefined || wait === null) continue;
      const taken = await this.ctx.store.moveRetainedToInbox(w.instanceId, w.track, wait, now);
      if (taken === undefined) continue;
      // It is in the instance's inbox now (stored, so accepted); apply it here unless another worker holds it.
      await this.drainInbox(w.instanceId);
      return true;
    }
    return false;
  }

  /**
   * Keeps an event published to `instanceId` for it (no wait of it matched): until one of its waits takes it, or it
   * ends. False when it has already ended (the event is reported as dropped, unless it is a copy of a child's end).
   * @throws UnknownInstanceError when there is no such instance.
   */
  private async holdFor(instanceId: string, event: SagaEvent): Promise<boolean> {
    const record = await this.instances.current(instanceId);
    if (record === undefined) throw new UnknownInstanceError(instanceId);
    if (isFinalStatus(record.flow.status)) {
      if (isRepeatedChildEnd(event)) return false;
      this.ctx.report('event-dropped', `event ${event.topic} (${event.id}) was published to instance ${instanceId}, which has ended (${record.flow.status})`, {
        code: 'INSTANCE_FINISHED',
        message: `instance ${quote(instanceId)} has ended`,
      }, instanceId);
      return false;
    }
    await this.ctx.store.acceptEvent(event, [], KEEP_FOR_INSTANCE);
    // It may have ended meanwhile (its end already dropped what it kept): drop this one too.
    const now = await this.instances.current(instanceId);
    if (now !== undefined && isFinalStatus(now.flow.status)) await this.dropEventsOf(now);
    return true;
  }

  /**
   * Delivers an event to a waiting track. When another worker holds the instance, the event goes into the
   * inbox (stored before `publish` resolves) and that worker applies it.
   */
  private async deliverEvent(id: string, track: TrackRef, event: SagaEvent, read?: InstanceRecord | 'leased'): Promise<boolean> {
    try {
      return await this.instances.deliver(id, { type: 'event', track, event }, {}, read);
    } catch (e) {
      // Another worker holds it (or moved it on since this one read it), or it is blocked: the event waits in its
      // inbox for whoever runs it.
      if (!(e instanceof LeasedElsewhereError || e instanceof VersionConflictError || e instanceof InstanceBlockedError)) throw e;
      await this.ctx.store.acceptEvent(event, [{ instanceId: id, track }], null);
      return true;
    }
  }
}
