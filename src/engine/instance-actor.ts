import type { SagaEventInput } from '../bus/event';
import { SagaflowError } from '../errors/sagaflow-error';
import { UnknownInstanceError, VersionConflictError } from '../errors/runtime-errors';
import { serializeError, serializeThrown, quote } from '../errors/serialized-error';
import type { ObserverRunner } from '../observers/observer-runner';
import type { PolicyLookup } from '../policies/step-policy';
import type { StateChangeRecording } from '../observers/history-observer';
import type { PublishReceipt } from '../runtime/publish-receipt';
import type { Logger } from '../runtime/logger';
import type { StateCodec } from '../state/state-codec';
import type { BaseStep, StepClass } from '../steps/base-step';
import type { StepContext } from '../steps/step-context';
import type { FinishOutcome } from '../observers/observer';
import type { InstanceStore, TransitionWrites } from '../store/instance-store';
import type { HistoryEntry } from './history-entry';
import type { Clock } from '../time/clock';
import type { WorkflowDefinition } from '../workflow/workflow-definition';
import { ChildStep, type ChildHost } from '../workflow/child';
import type { RateLimiter } from '../policies/rate-limiter';
import { applyHappening, type DecideEnv, type Effect, type Happening, type LifecycleHook, type Outcome } from './decide';
import { isFinalStatus, type Wait } from './flow-fields';
import { flowView } from './flow-view';
import { trackOf, type InstanceRecord, type TrackRef } from './instance-record';
import { LazyAbort } from './lazy-abort';
import { invokeStep } from './step-invoker';
import { priorTrack, transitionHistory } from './transition-history';

/** The per-workflow pieces an actor uses, built once per runtime and workflow. */
export interface WorkflowServices {
  readonly def: WorkflowDefinition;
  readonly codec: StateCodec;
  readonly observers: ObserverRunner;
  readonly policy: PolicyLookup;
  /** Set when a HistoryObserver asks for state changes in the history. */
  readonly stateChanges?: StateChangeRecording;
  /** The state codec of forEach item steps: their state is the item, plain JSON. */
  readonly itemCodec: StateCodec;
  /** The rate limiter of each step that has one, by step name. */
  readonly limiters: ReadonlyMap<string, RateLimiter>;
}

/** What an actor needs from the runtime that owns it. */
export interface ActorHost {
  readonly store: InstanceStore;
  readonly clock: Clock;
  readonly logger: Logger;
  resolveStep(cls: StepClass): BaseStep<unknown>;
  publish(event: SagaEventInput): Promise<PublishReceipt>;
  watch(instanceId: string, track: TrackRef, wait: Wait): void;
  timer(instanceId: string, track: TrackRef, at: number): void;
  finished(record: InstanceRecord): void;
  idle(actor: InstanceActor): void;
  reportFailure(instanceId: string, message: string, error: unknown): void;
  /** True once the runtime closed: nothing more is written. */
  isClosed(): boolean;
  /** Whether this worker may still run the instance (takes or renews its lease on shared stores; true otherwise). */
  holds(instanceId: string): Promise<boolean>;
  /** True while the runtime drains before a stop: results are still saved, but no new handler call starts. */
  isStopping(): boolean;
  /** The lease to take or renew with each write of this instance (shared stores), or undefined. */
  lease(instanceId: string): { owner: string; until: number } | undefined;
  /** What child-workflow steps use to start, watch and undo their children. */
  readonly children: ChildHost;
}

/** Extra facts about a happening that the record does not carry. */
export interface PostOptions {
  /** Who asked and why (operator actions), for the history. */
  readonly note?: string;
  /**
   * The happening is an event taken from the inbox: consume that delivery in the same transaction (or on its own
   * when it no longer applies, so it is handled exactly once either way).
   */
  readonly fromInbox?: boolean;
}

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

/** The lifecycle hooks of an end; `handleFinish` follows each. */
const FINAL_HOOKS: ReadonlySet<LifecycleHook> = new Set(['handleWorkflowSuccess', 'handleWorkflowFailure', 'handleCompensationFailed']);

/** At most this many queued happenings go into one save. */
const MAX_BATCH = 512;

/** With more branches than this in the record, a save waits a moment for more results to go with it. */
const COALESCE_ABOVE = 64;

/** How many branches the record's group has or will have (a forEach's items). */
function groupSize(record: InstanceRecord): number {
  const g = record.group;
  return g === null ? 0 : (g.items?.length ?? g.branches.length);
}

function trackKey(ref: TrackRef): string {
  return ref ?? '\u0000main';
}

/**
 * Runs one instance: applies happenings one at a time (decide, call lifecycle hooks, persist the record with its
 * history lines, then perform the effects), and runs handler calls concurrently, feeding their results back as
 * happenings.
 */
export class InstanceActor {
  private readonly queue: Queued[] = [];
  private draining = false;
  private readonly inFlight = new Map<string, { readonly abort: LazyAbort; readonly token: number }>();
  /** Ends a store-retry backoff early (the runtime closed, or the actor was aborted). */
  private wake: (() => void) | null = null;
  /** Set when a failed save could not be followed by a reload: the in-memory record can no longer be trusted. */
  private broken = false;
  /** True from the first change of a batch until its save returned (the record is then ahead of the store). */
  private applying = false;

  private constructor(
    private readonly host: ActorHost,
    private readonly services: WorkflowServices,
    private rec: InstanceRecord,
  ) {}

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
    await actor.runLifecycleHooks(draft, effects);
    const history = transitionHistory(prior, first, draft, effects, draft.updatedAt);
    const lease = host.lease(record.id);
    if (!(await host.store.create(draft, lease === undefined ? { history } : { history, lease }))) return undefined;
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
    return !this.draining && this.queue.length === 0 && this.inFlight.size === 0;
  }

  /** Queues a happening; resolves true once it changed the record and the change was persisted. */
  post(happening: Happening, options: PostOptions = {}): Promise<boolean> {
    return new Promise<boolean>((resolve, reject) => {
      this.queue.push({ happening, options, resolve, reject });
      if (!this.draining) void this.drain();
    });
  }

  /** How many handler calls are in flight. */
  get callsInFlight(): number {
    return this.inFlight.size;
  }

  /** Aborts every handler call in flight (runtime shutdown). */
  abortAll(reason: string): void {
    for (const call of this.inFlight.values()) call.abort.abort(new SagaflowError('RUNTIME_CLOSED', reason));
    this.wake?.();
  }

  private env(): DecideEnv {
    const { def, codec, policy } = this.services;
    return { def, now: this.host.clock.now(), hydrate: (s) => codec.hydrate(s), dehydrate: (s) => codec.dehydrate(s, 'returned by into'), policy };
  }

  private async drain(): Promise<void> {
    this.draining = true;
    try {
      while (this.queue.length > 0) {
        // A big record (a forEach with many items) costs a lot to save: let the results of the calls in flight
        // arrive first, so one save carries many of them.
        if (this.inFlight.size > 1 && groupSize(this.rec) > COALESCE_ABOVE) await new Promise<void>((resolve) => setImmediate(resolve));
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
        applied = await this.applyAll(items);
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

  /** Applies happenings to the record in place; the writes are null when nothing changed. */
  private async applyAll(items: readonly Queued[]): Promise<Applied> {
    const results: boolean[] = [];
    const effects: Effect[] = [];
    const history: HistoryEntry[] = [];
    const consumed: { eventId: string; track: TrackRef }[] = [];
    // The actor owns its record: transitions are applied in place, and it is reloaded if saving fails.
    const draft = this.rec;
    this.applying = true;
    for (const { happening, options } of items) {
      const prior = priorTrack(draft, happening);
      const transition = applyHappening(this.env(), draft, happening);
      if (options.fromInbox === true && happening.type === 'event') consumed.push({ eventId: happening.event.id, track: happening.track });
      results.push(transition.changed);
      if (!transition.changed) continue;
      await this.runLifecycleHooks(draft, transition.effects);
      history.push(...transitionHistory(prior, happening, draft, transition.effects, draft.updatedAt, options.note, this.services.stateChanges));
      effects.push(...transition.effects);
    }
    if (history.length === 0 && consumed.length === 0) return { results, effects, writes: null };
    const lease = this.host.lease(this.rec.id);
    return {
      results,
      effects,
      writes: { history, ...(consumed.length === 0 ? {} : { consumed }), ...(lease === undefined ? {} : { lease }) },
    };
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
    this.performAll(effects.filter((e) => e.type !== 'invoke' || this.inFlight.get(trackKey(e.track))?.token !== e.token));
  }

  private async runLifecycleHooks(draft: InstanceRecord, effects: readonly Effect[]): Promise<void> {
    const { observers } = this.services;
    for (const effect of effects) {
      if (effect.type !== 'hook') continue;
      if (observers.has(effect.hook)) await this.lifecycle(draft, effect.hook, effect.group);
      // Whatever the end, handleFinish follows the hook of that end.
      if (FINAL_HOOKS.has(effect.hook) && observers.has('handleFinish')) await this.lifecycle(draft, 'handleFinish', null);
    }
  }

  private async lifecycle(draft: InstanceRecord, hook: LifecycleHook, group: string | null): Promise<void> {
    const { observers, codec, def } = this.services;
    if (!observers.has(hook)) return;
    const base = flowView(draft, null);
    const view = group === null ? base : { ...base, group, stepName: group, stepIndex: def.nodeIndex.get(group) ?? base.stepIndex };
    const changesState = hook !== 'handleGroupStart' && hook !== 'handleGroupEnd';
    let state: unknown;
    try {
      state = codec.hydrate(draft.state);
    } catch (error) {
      this.host.reportFailure(draft.id, `${hook} was not called: the state could not be made into its class`, error);
      return;
    }
    const outcome: FinishOutcome | undefined =
      hook === 'handleFinish' ? { status: draft.flow.status as FinishOutcome['status'], error: draft.flow.errorReason } : undefined;
    const round = await observers.run(hook, state, view, 'report', outcome);
    if (!changesState) return;
    try {
      draft.state = codec.dehydrate(round.state, `returned by ${hook}`);
    } catch (error) {
      this.host.reportFailure(draft.id, `${hook} returned a state that cannot be stored; it was ignored`, error);
    }
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
        if (!this.host.isStopping()) this.invoke(effect);
        return;
      case 'abort':
        this.inFlight.get(trackKey(effect.track))?.abort.abort(new SagaflowError(effect.reason.code, effect.reason.message, { ...effect.reason.details }));
        return;
      case 'watch':
        this.host.watch(this.rec.id, effect.track, effect.wait);
        return;
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

  /**
   * A `run` of a rate-limited step asks its limiter for a slot first; with none free now, the track is parked
   * (persisted) until the booked slot and the call is made then. True when the call may go now.
   */
  private admitted(effect: Extract<Effect, { type: 'invoke' }>): boolean {
    const limiter = effect.func === 'run' ? this.services.limiters.get(effect.step) : undefined;
    if (limiter === undefined) return true;
    const now = this.host.clock.now();
    const at = limiter.reserve(`${this.rec.id}\u0000${trackKey(effect.track)}`, now);
    if (at <= now) return true;
    void this.post({ type: 'throttled', track: effect.track, token: effect.token, until: at, limiter: limiter.name }).catch((error: unknown) =>
      this.host.reportFailure(this.rec.id, `parking ${effect.step} for its rate limit failed`, error),
    );
    return false;
  }

  private invoke(effect: Extract<Effect, { type: 'invoke' }>): void {
    if (!this.admitted(effect)) return;
    const { def, observers, policy } = this.services;
    const compiled = def.steps.get(effect.step);
    const key = trackKey(effect.track);
    const controller = new LazyAbort();
    this.inFlight.get(key)?.abort.abort(new SagaflowError('SUPERSEDED', 'a newer call of this track started'));
    const call = { abort: controller, token: effect.token };
    this.inFlight.set(key, call);
    const record = this.rec;
    const view = flowView(record, effect.track);
    const track = trackOf(record, effect.track);
    // A forEach item is its group's branch whatever the group is doing: running, or unwound by a later failure.
    const groupNode = record.group === null ? undefined : def.nodes[record.group.index];
    const item = effect.track !== null && groupNode?.kind === 'group' && groupNode.each !== undefined;
    const codec = item ? this.services.itemCodec : this.services.codec;
    const direction = effect.func === 'run' || effect.func === 'runHandleInfo' ? 'up' : 'down';
    const pass = track?.flow.pass ?? 0;
    const runKey = `${record.id}:${effect.step}${item ? `[${effect.track ?? ''}]` : ''}${pass > 0 ? `#${pass + 1}` : ''}`;
    const keyBase = `${runKey}:${direction}`;
    const ctx: StepContext = {
      get signal() {
        return controller.signal;
      },
      instanceId: record.id,
      workflow: record.workflow,
      stepName: effect.step,
      direction,
      stepFunc: effect.func,
      attempt: view.attempt,
      runKey,
      idempotencyKey: `${keyBase}:${view.attempt}`,
      idempotencyKeyBase: keyBase,
      clock: this.host.clock,
      logger: this.host.logger,
      ...(view.group === undefined ? {} : { group: view.group }),
      ...(view.branch === undefined ? {} : { branch: view.branch }),
      publish: (event) => this.host.publish(event),
    };
    const run = async (): Promise<void> => {
      let step: BaseStep<unknown> | undefined;
      let unavailable: Outcome | undefined;
      if (compiled === undefined) {
        unavailable = {
          kind: 'error',
          error: serializeError({ code: 'UNKNOWN_STEP', message: `workflow ${def.name} has no step ${quote(effect.step)} (the record was written by another definition)` }),
          started: true,
        };
      } else {
        try {
          const child = compiled.meta.child;
          step = child === undefined ? this.host.resolveStep(compiled.cls) : new ChildStep(child, this.host.children, compiled.name);
        } catch (cause) {
          const reason = serializeThrown(cause);
          unavailable = {
            kind: 'error',
            error: { code: 'STEP_UNAVAILABLE', name: 'StepUnavailableError', message: `the resolver could not make step ${quote(effect.step)}: ${reason.message}`, details: { cause: reason } },
            started: false,
          };
        }
      }
      const outcome: Outcome =
        unavailable ??
        (await invokeStep({
              step: step as BaseStep<unknown>,
              func: effect.func,
              storedState: track?.state,
              event: effect.event,
              view,
              ctx,
              codec,
              observers,
              validateAfter: def.validateStateAfterEachStep && !item,
              timeoutMs: policy(effect.step, direction).timeoutMs,
              clock: this.host.clock,
              abort: (reason) => controller.abort(reason),
              onLateSettle: (late) =>
                this.host.reportFailure(
                  record.id,
                  `step ${effect.step} ${effect.func} settled (${late.kind}) after it had timed out; the late result was ignored`,
                  new SagaflowError('LATE_SETTLE', `late ${late.kind} from ${effect.step} ${effect.func}`, { step: effect.step }),
                ),
            }));
      if (this.inFlight.get(key) === call) this.inFlight.delete(key);
      await this.post({ type: 'settled', track: effect.track, token: effect.token, outcome });
    };
    run().catch((error: unknown) => {
      if (this.inFlight.get(key) === call) this.inFlight.delete(key);
      this.host.reportFailure(record.id, `recording the result of ${effect.step} ${effect.func} failed`, error);
      if (this.idle) this.host.idle(this);
    });
  }
}
