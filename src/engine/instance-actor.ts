// The instance actor: applies an instance's happenings one batch at a time (decide, lifecycle hooks, save with the
// history, then the effects), and keeps going through store failures by reloading and retrying.
import { SagaflowError } from '../errors/sagaflow-error';
import { LeasedElsewhereError, UnknownInstanceError, VersionConflictError } from '../errors/runtime-errors';
import { serializeThrown } from '../errors/serialized-error';
import type { TransitionWrites } from '../store/instance-store';
import type { ActorHost, PostOptions, WorkflowServices } from './actor/actor-host';
import { LifecycleHooks } from './actor/lifecycle-hooks';
import { StepCalls, trackKey } from './actor/step-calls';
import { applyHappening, type DecideEnv, type Effect, type Happening } from './decide';
import { isFinalStatus } from '../core/flow-fields';
import { trackOf, type InstanceRecord, type TrackRef } from './instance-record';
import { priorTrack, transitionHistory, type PriorTrack } from './transition-history';
import { HistoryLog, packedWrites, takesHistoryLog } from './history-log';
import type { Maybe } from '../core/maybe';

// The host types moved to actor/actor-host.ts; they stay importable from here.
export type { ActorHost, PostOptions, WorkflowServices } from './actor/actor-host';

interface Queued {
  readonly happening: Happening;
  readonly options: PostOptions;
  readonly resolve: (changed: boolean) => void;
  readonly reject: (error: unknown) => void;
}

/** What applying a batch produced: per happening whether it changed the record, the effects, and the writes. */
interface Applied {
  readonly results: boolean[];
  readonly effects: Effect[];
  /** Null when nothing changed and nothing was consumed: there is nothing to save. */
  readonly writes: TransitionWrites | null;
}

/** What {@link InstanceActor.applyAll} gathers over a batch. */
interface Accumulated {
  readonly results: boolean[];
  readonly effects: Effect[];
  readonly history: HistoryLog;
  readonly consumed: { eventId: string; track: TrackRef }[];
  readonly requestsDone: string[];
}

/** How long to wait before trying the store again after `failures` failures in a row: 100 ms doubling, at most 30 s. */
export function storeRetryDelay(failures: number): number {
  return Math.min(100 * 2 ** Math.max(0, failures - 1), 30_000);
}

/** A handler result that could not be applied becomes a failure of that call, so the result is never just lost. */
function internalFailure(happening: Happening, defect: unknown): Happening {
  if (happening.type !== 'settled') return happening;
  const cause = serializeThrown(defect);
  return {
    ...happening,
    outcome: {
      kind: 'error',
      error: { code: 'INTERNAL_ERROR', name: 'InternalError', message: `sagaflow could not apply the result of this call: ${cause.message}`, details: { cause } },
      started: true,
    },
  };
}

/**
 * A batch's writes, with only the parts it has (built without spreads: one is made per save). The history lines are
 * built as objects only for a store that reads them so: the in-memory store keeps them packed until they are read.
 */
function writesOf(store: object, history: HistoryLog, consumed: Accumulated['consumed'], requestsDone: string[], lease: TransitionWrites['lease']): TransitionWrites {
  const writes: { -readonly [K in keyof TransitionWrites]: TransitionWrites[K] } = takesHistoryLog(store) ? packedWrites(history) : { history: history.entries() };
  if (consumed.length > 0) writes.consumed = consumed;
  if (requestsDone.length > 0) writes.requestsDone = requestsDone;
  if (lease !== undefined) writes.lease = lease;
  return writes;
}

const NO_OPTIONS: PostOptions = {};
function ignore(): void {}

/** At most this many queued happenings go into one save. */
const MAX_BATCH = 512;

/** With more branches than this in the record, a save waits a moment for more results to go with it. */
const COALESCE_ABOVE = 64;

/** How many branches the record's group has or will have (a forEach's items). */
function groupSize(record: InstanceRecord): number {
  const g = record.group;
  return g === null ? 0 : (g.items?.length ?? g.branches.length);
}

/**
 * Runs one instance: applies happenings one at a time (decide, call lifecycle hooks, persist the record with its
 * history lines, then perform the effects), and runs handler calls concurrently, feeding their results back as
 * happenings.
 */
export class InstanceActor {
  private readonly queue: Queued[] = [];
  private draining = false;
  /** Ends a store-retry backoff early (the runtime closed, or the actor was aborted). */
  /** True when an inbox event was left for a busy track: the next wait drains the inbox again. */
  private inboxKept = false;
  private wake: (() => void) | null = null;
  /** Set when a failed save could not be followed by a reload: the in-memory record can no longer be trusted. */
  private broken = false;
  /** True from the first change of a batch until its save returned (the record is then ahead of the store). */
  private applying = false;
  /** The handler calls in flight. */
  private readonly calls: StepCalls;
  /** The observers' lifecycle hooks, called before a transition is saved. */
  private readonly hooks: LifecycleHooks;

  private constructor(
    private readonly host: ActorHost,
    private readonly services: WorkflowServices,
    private rec: InstanceRecord,
  ) {
    this.calls = new StepCalls(host, services, this);
    this.hooks = new LifecycleHooks(host, services);
  }

  /** An actor for a stored record. */
  static load(host: ActorHost, services: WorkflowServices, record: InstanceRecord): InstanceActor {
    return new InstanceActor(host, services, record);
  }

  /**
   * Creates a new instance: applies its first happening (`begin`, or `initVetoed`) and stores the record with
   * the intent of its first step in one write. Resolves undefined when the id is taken.
   */
  static async create(host: ActorHost, services: WorkflowServices, record: InstanceRecord, first: Happening): Promise<InstanceActor | undefined> {
    const actor = new InstanceActor(host, services, record);
    const prior = priorTrack(record, first);
    const draft = record;
    const { effects } = applyHappening(actor.env(), draft, first);
    await actor.hooks.run(draft, effects);
    const history = new HistoryLog(record.createdAt);
    transitionHistory(history, prior, first, draft, effects, draft.updatedAt);
    if (!(await host.store.create(draft, writesOf(host.store, history, [], [], host.lease(record.id))))) return undefined;
    actor.rec = { ...draft, version: 1 };
    actor.performAll(effects);
    return actor;
  }

  get id(): string {
    return this.rec.id;
  }

  /** The record as the actor holds it: it may be ahead of the store while a transition is being saved. */
  get record(): InstanceRecord {
    return this.rec;
  }

  /** The record when it equals what is stored (no transition being applied), else undefined: read the store. */
  get committed(): InstanceRecord | undefined {
    return this.applying ? undefined : this.rec;
  }

  /** True when nothing is queued or running. */
  get idle(): boolean {
    return !this.draining && this.queue.length === 0 && this.calls.inFlight.size === 0;
  }

  /** Queues a happening; resolves true once it changed the record and the change was persisted. */
  post(happening: Happening, options: PostOptions = {}): Promise<boolean> {
    return new Promise<boolean>((resolve, reject) => {
      this.queue.push({ happening, options, resolve, reject });
      if (!this.draining) void this.drain();
    });
  }

  /**
   * Queues a happening nobody awaits (a handler call's result): no promise is made for it, and when the actor is
   * draining it is applied in that same drain. `failed` hears if it could not be applied.
   */
  enqueue(happening: Happening, failed: (error: unknown) => void): void {
    this.queue.push({ happening, options: NO_OPTIONS, resolve: ignore, reject: failed });
    if (!this.draining) void this.drain();
  }

  /** How many handler calls are in flight. */
  get callsInFlight(): number {
    return this.calls.inFlight.size;
  }

  /** Aborts every handler call in flight (runtime shutdown). */
  abortAll(reason: string): void {
    for (const call of this.calls.inFlight.values()) call.abort.abort(new SagaflowError('RUNTIME_CLOSED', reason));
    this.wake?.();
  }

  /** The state codec's functions as `decide` takes them, made once per actor rather than per transition. */
  private readonly hydrate = (s: unknown): unknown => this.services.codec.hydrate(s);
  private readonly dehydrate = (s: unknown): unknown => this.services.codec.dehydrate(s, 'returned by into');

  private env(): DecideEnv {
    const { def, policy } = this.services;
    return { def, now: this.host.clock.now(), hydrate: this.hydrate, dehydrate: this.dehydrate, policy };
  }

  private async drain(): Promise<void> {
    this.draining = true;
    /** True once this drain applied a batch without giving the event loop a turn since. */
    let unyielded = false;
    try {
      while (this.queue.length > 0) {
        // A big record (a forEach with many items) costs a lot to save: let the results of the calls in flight
        // arrive first, so one save carries many of them. Items that answer at once are never in flight here (their
        // results are queued already): the event loop still gets a turn between batches, else the whole group
        // would run in microtasks, starving timers and I/O.
        if (groupSize(this.rec) > COALESCE_ABOVE && (unyielded || this.calls.inFlight.size > 1)) {
          await new Promise<void>((resolve) => setImmediate(resolve));
          unyielded = false;
        }
        unyielded = true;
        const batch = this.queue.splice(0, MAX_BATCH);
        try {
          await this.applyBatch(batch);
        } catch (defect) {
          // applyBatch answers every item itself; should it ever throw, no caller is left waiting for ever.
          this.host.reportFailure(this.rec.id, 'a batch of happenings could not be applied', defect);
          for (const item of batch) item.reject(defect);
        }
      }
    } finally {
      this.draining = false;
      if (this.idle) this.host.idle(this);
    }
  }

  /**
   * Applies every queued happening to the record, one after the other, and saves the result once: one write for
   * a burst of results (the branches of a group settling together) instead of one per result. Every intent is
   * still saved before any of the batch's effects run; if the save fails, none of them run.
   *
   * A save the store fails (disk full, connection lost) is not the end of the batch: the failure is reported,
   * and after a backoff the record is read again. If the write did not commit, the same happenings are applied
   * to the stored record and saved again; if it did (only its answer was lost), the stored record is taken as it
   * is and its effects are performed from it. A transition that throws (a defect, never user input) fails the
   * handler call it was about instead of losing its result.
   */
  private async applyBatch(batch: readonly Queued[]): Promise<void> {
    let items = batch;
    let engineFailed = false;
    /** Store failures in a row: the backoff grows with them. */
    let failures = 0;
    /** Set when a save failed: the record's version before it, and what the batch changed, to tell whether it committed. */
    let unsure: { readonly base: number; readonly results: readonly boolean[] } | null = null;
    for (;;) {
      if (this.host.isClosed()) {
        for (const item of items) item.resolve(false);
        return;
      }
      if (this.broken) {
        if (!(await this.reloadAfter(failures, `reading instance ${this.rec.id} again`))) {
          failures += 1;
          continue;
        }
        if (unsure !== null && this.rec.version !== unsure.base) {
          // The write committed and only its answer was lost (or another writer moved the instance on).
          const results = unsure.results;
          let mine: boolean;
          try {
            mine = await this.host.holds(this.rec.id);
          } catch (error) {
            failures += 1;
            this.broken = true;
            this.host.reportFailure(this.rec.id, `renewing the lease of ${this.rec.id} failed (attempt ${failures}); it is tried again in ${storeRetryDelay(failures)} ms`, error);
            continue;
          }
          if (!mine) {
            this.abortAll('another worker took the instance over while its store was failing');
            for (const item of items) item.resolve(false);
            return;
          }
          this.reconcile();
          items.forEach((item, i) => item.resolve(results[i] ?? false));
          return;
        }
        unsure = null; // it did not commit: the same happenings are applied to the stored record again
      }
      const base = this.rec.version;
      let applied: Applied;
      try {
        const maybe = this.applyAll(items);
        applied = maybe instanceof Promise ? await maybe : maybe;
      } catch (defect) {
        this.applying = false;
        this.broken = true;
        this.host.reportFailure(this.rec.id, 'a transition could not be applied; the handler call it was about fails with INTERNAL_ERROR', defect);
        for (const item of items) if (engineFailed || item.happening.type !== 'settled') item.reject(defect);
        if (engineFailed) return;
        engineFailed = true;
        items = items.filter((item) => item.happening.type === 'settled').map((item) => ({ ...item, happening: internalFailure(item.happening, defect) }));
        continue;
      }
      if (applied.writes !== null) {
        if (this.host.isClosed()) {
          // The runtime closed while an observer's hook was running: a closed runtime writes nothing more (as after
          // a crash, whoever resumes the instance applies the result again).
          this.applying = false;
          for (const item of items) item.resolve(false);
          return;
        }
        try {
          this.rec.version = await this.host.store.save(this.rec, applied.writes);
        } catch (error) {
          this.applying = false;
          this.broken = true;
          if (error instanceof VersionConflictError) {
            // Someone else changed the instance (another worker): drop the batch and go on from what is stored.
            await this.reloadAfter(0, '');
            for (const item of items) item.reject(error);
            return;
          }
          if (error instanceof LeasedElsewhereError) {
            // It was read without its lease, and another worker holds it: that worker runs it, not this actor.
            this.abortAll('another worker holds the lease of the instance');
            this.host.lost(this);
            for (const item of [...items, ...this.queue.splice(0)]) item.reject(error);
            return;
          }
          failures += 1;
          this.host.reportFailure(this.rec.id, `saving a transition of ${this.rec.id} failed (attempt ${failures}); it is tried again in ${storeRetryDelay(failures)} ms`, error);
          unsure = { base, results: applied.results };
          continue;
        }
      }
      this.applying = false;
      this.performAll(applied.effects);
      items.forEach((item, i) => item.resolve(applied.results[i] ?? false));
      return;
    }
  }

  /**
   * Applies happenings to the record in place; the writes are null when nothing changed. Synchronous unless an
   * observer's lifecycle hook returns a promise.
   */
  private applyAll(items: readonly Queued[]): Maybe<Applied> {
    this.applying = true;
    return this.applyFrom(items, 0, { results: [], effects: [], history: new HistoryLog(this.rec.createdAt), consumed: [], requestsDone: [] });
  }

  private applyFrom(items: readonly Queued[], from: number, acc: Accumulated): Maybe<Applied> {
    // The actor owns its record: transitions are applied in place, and it is reloaded if saving fails.
    const draft = this.rec;
    for (let i = from; i < items.length; i += 1) {
      const { happening, options } = items[i] as Queued;
      const prior = priorTrack(draft, happening);
      const transition = applyHappening(this.env(), draft, happening);
      if (options.fromInbox === true && happening.type === 'event') {
        // A track whose handler is still running (between a runHandleInfo call and its next wait) cannot take the
        // event yet: it stays in the inbox for the track's next wait. Otherwise it is consumed, applied or not.
        if (!transition.changed && trackOf(draft, happening.track)?.flow.inFlight === true) this.inboxKept = true;
        else acc.consumed.push({ eventId: happening.event.id, track: happening.track });
      }
      acc.results.push(transition.changed);
      if (!transition.changed) continue;
      if (options.request !== undefined) acc.requestsDone.push(options.request);
      const hooked = this.hooks.run(draft, transition.effects);
      if (hooked instanceof Promise) {
        return hooked.then(() => {
          this.recordTransition(acc, draft, prior, happening, transition.effects, options.note);
          return this.applyFrom(items, i + 1, acc);
        });
      }
      this.recordTransition(acc, draft, prior, happening, transition.effects, options.note);
    }
    const { results, effects, history, consumed, requestsDone } = acc;
    if (history.length === 0 && consumed.length === 0) return { results, effects, writes: null };
    const lease = this.host.lease(this.rec.id);
    return {
      results,
      effects,
      writes: writesOf(this.host.store, history, consumed, requestsDone, lease),
    };
  }

  /** Adds an applied transition's history lines and effects to what the batch will save and perform. */
  private recordTransition(acc: Accumulated, draft: InstanceRecord, prior: PriorTrack | undefined, happening: Happening, effects: readonly Effect[], note: string | undefined): void {
    transitionHistory(acc.history, prior, happening, draft, effects, draft.updatedAt, note, this.services.stateChanges);
    for (const e of effects) acc.effects.push(e);
  }

  /**
   * Waits `storeRetryDelay(failures)` (none for 0), then reads the record again. True when it was read; false when
   * that failed (reported, unless `what` is empty) or the runtime closed meanwhile.
   */
  private async reloadAfter(failures: number, what: string): Promise<boolean> {
    if (failures > 0) await this.sleep(storeRetryDelay(failures));
    if (this.host.isClosed()) return false;
    try {
      const stored = await this.host.store.load(this.rec.id);
      if (stored === undefined) throw new UnknownInstanceError(this.rec.id);
      this.rec = stored;
      this.broken = false;
      return true;
    } catch (error) {
      if (what !== '') this.host.reportFailure(this.rec.id, `${what} failed (attempt ${failures + 1}); it is tried again in ${storeRetryDelay(failures + 1)} ms`, error);
      return false;
    }
  }

  /** A backoff on the injected clock, cut short when the runtime closes or the actor is aborted. */
  private sleep(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const timer = this.host.clock.setTimeout(() => {
        this.wake = null;
        resolve();
      }, ms);
      this.wake = () => {
        this.host.clock.clearTimeout(timer);
        this.wake = null;
        resolve();
      };
    });
  }

  /**
   * Performs the effects the stored record implies — calls it has in flight that are not running here, its waits,
   * its timers, its end — as a resume would, when the record moved on without this actor seeing the effects.
   */
  private reconcile(): void {
    if (isFinalStatus(this.rec.flow.status)) {
      this.performAll([{ type: 'finished' }]);
      return;
    }
    const { effects } = applyHappening(this.env(), structuredClone(this.rec), { type: 'resume' });
    this.performAll(effects.filter((e) => e.type !== 'invoke' || this.calls.inFlight.get(trackKey(e.track))?.token !== e.token));
  }
  /** Performs effects in order; one that throws is reported and does not keep the others from happening. */
  private performAll(effects: readonly Effect[]): void {
    for (const effect of effects) {
      try {
        this.perform(effect);
      } catch (error) {
        this.host.reportFailure(this.rec.id, `performing a ${effect.type} effect failed`, error);
      }
    }
  }

  private perform(effect: Effect): void {
    switch (effect.type) {
      case 'invoke':
        // While stopping, the intent is saved but the call is left to whoever resumes the instance.
        if (!this.host.isStopping()) this.calls.invoke(effect);
        return;
      case 'abort':
        this.calls.inFlight.get(trackKey(effect.track))?.abort.abort(new SagaflowError(effect.reason.code, effect.reason.message, { ...effect.reason.details }));
        return;
      case 'watch': {
        const kept = this.inboxKept;
        this.inboxKept = false;
        this.host.watch(this.rec.id, effect.track, effect.wait, kept);
        return;
      }
      case 'timer':
        this.host.timer(this.rec.id, effect.track, effect.at);
        return;
      case 'finished':
        this.host.finished(this.rec);
        return;
      case 'problem':
        this.host.reportFailure(this.rec.id, effect.message, effect.error);
        return;
      case 'hook':
      case 'branched':
      case 'unblocked':
      case 'controlled':
        return;
    }
  }
}
