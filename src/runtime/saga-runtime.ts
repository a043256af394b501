import 'reflect-metadata';
import { Subject, type Observable } from 'rxjs';
import { normalizeEvent, type SagaEventInput } from '../bus/event';
import { EventBus } from '../bus/event-bus';
import { DefinitionError } from '../errors/definition-error';
import { hostname } from 'node:os';
import { InstanceBlockedError, InvalidArgumentError, InvalidOperationError, LeasedElsewhereError, MigrationRefusedError, UnknownInstanceError, RuntimeClosedError, VersionConflictError } from '../errors/runtime-errors';
import { planMigration } from '../versions/migrate-record';
import { DefinitionRegistry, type Unrunnable } from './definition-registry';
import { checkOptions, optionKeys, readingOptions } from '../input/known-keys';
import { checkFilter, checkInstanceId, isRunnable } from '../store/instance-filter';
import type { HistoryEntry } from '../engine/history-entry';
import { NO_POLICY, resolveStepPolicy, STEP_POLICY_KEYS, type PolicyLookup, type StepPolicy, type StepPolicyOptions } from '../policies/step-policy';
import { SagaflowError } from '../errors/sagaflow-error';
import { quote, serializeError, serializeThrown, type SerializedError } from '../errors/serialized-error';
import { BadStateError, StateNotSerializableError } from '../errors/state-errors';
import { RollbackRequestedError } from '../errors/step-errors';
import { isFinalStatus, type InstanceStatus, type Wait } from '../engine/flow-fields';
import { flowView } from '../engine/flow-view';
import { InstanceActor, type ActorHost, type PostOptions, type WorkflowServices } from '../engine/instance-actor';
import type { Happening } from '../engine/decide';
import type { SagaEvent } from '../bus/event';
import { newRecord, trackOf, versionOf, type BlockedReason, type InstanceRecord, type TrackRef } from '../engine/instance-record';
import type { FlowView, ObserverSpec } from '../observers/observer';
import { ObserverRunner, type HookProblem } from '../observers/observer-runner';
import { stateChangeOptions, type StateChangeRecording } from '../observers/history-observer';
import { StateCodec } from '../state/state-codec';
import type { BaseStep, StepClass } from '../steps/base-step';
import { KEEP_FOR_INSTANCE, type InstanceFilter, type InstanceStore, type InstanceSummary } from '../store/instance-store';
import type { TypeormStore as TypeormStoreClass } from '../store/typeorm';
import { SystemClock, type Clock, type TimerHandle } from '../time/clock';
import { toMillis, type Duration } from '../time/duration';
import { compileObservers } from '../workflow/compile-workflow';
import { workflowDefinition, type WorkflowRef } from '../workflow/workflow-decorator';
import type { WorkflowDefinition } from '../workflow/workflow-definition';
import { consoleLogger, type Logger } from './logger';
import type { PublishReceipt } from './publish-receipt';
import { TimerQueue } from './timer-queue';
import { requireDependency } from './optional-dependency';
import { RateLimiter, resolveRateLimit, type RateLimitSpec } from '../policies/rate-limiter';
import { CHILD_ENDED_TOPIC, type ChildEnded } from '../workflow/child';
import { Scheduler } from '../schedule/scheduler';
import type { ScheduleHandle, ScheduleOptions } from '../schedule/schedule-options';

/** Makes step and observer instances; plug a DI container in here. The default calls `new Cls()` once per class. */
export type Resolver = <T>(cls: new (...args: never[]) => T) => T;

/** Options of {@link SagaRuntime}. */
export interface SagaRuntimeOptions {
  /**
   * Where instances live. `TypeormStore.postgres({ url })` (from `sagaflow/typeorm`) for production,
   * `new MemoryStore()` for tests. The default needs the optional peer dependency better-sqlite3; without it,
   * `new SagaRuntime()` throws a `MissingDependencyError` (`MISSING_DEPENDENCY`) naming the install command.
   * @default the embedded SQLite database `.sagaflow/sagaflow.db` (`TypeormStore.sqlite()`)
   */
  readonly store?: InstanceStore;
  /** The event bus. @default new EventBus() */
  readonly bus?: EventBus;
  /** The clock for deadlines; use `SimulatedClock` from `sagaflow/testing` in tests. @default new SystemClock() */
  readonly clock?: Clock;
  /** Where the runtime logs (pino's method shape). @default warnings and errors to the console */
  readonly logger?: Logger;
  /** Makes step and observer instances. @default one `new Cls()` per class */
  readonly resolver?: Resolver;
  /** Observers for every workflow, called after each workflow's own. @default [] */
  readonly observers?: readonly ObserverSpec[];
  /** How long an event no wait matched is kept for a wait that begins just after it. @default '30s' */
  readonly eventRetention?: Duration;
  /** Workflows to register right away. @default [] */
  readonly workflows?: readonly WorkflowRef[];
  /** Retry and timeout settings for every step that does not set its own. @default no retries, no timeouts */
  readonly defaults?: StepPolicyOptions;
  /** This worker's name in leases (shared stores). @default host name, process id and a random suffix */
  readonly workerId?: string;
  /** How long a worker's lease on an instance lasts without renewal (shared stores). @default '30s' */
  readonly leaseDuration?: Duration;
  /** How often a worker looks for due timers, stale instances and inbox deliveries (shared stores). @default '1s' */
  readonly pollInterval?: Duration;
  /**
   * Named rate limiters that steps share: `@Step({ name, rateLimit: 'jira' })` on any workflow draws on
   * `rateLimiters.jira`. Limits are kept per runtime process. @default {}
   */
  readonly rateLimiters?: Readonly<Record<string, RateLimitSpec>>;
}

/** Who performs an operator action, and why; recorded in the instance's history. */
export interface OperatorNote {
  /** Who (a person or a system). */
  readonly by?: string;
  /** Why. */
  readonly reason?: string;
}

/** Options of {@link SagaRuntime.stop}. */
export interface StopOptions {
  /** How long handler calls in flight may take to finish before they are aborted. @default '30s' */
  readonly drainTimeout?: Duration;
}

/** What {@link SagaRuntime.stop} did. */
export interface StopReport {
  /** True when every call in flight finished before the deadline. */
  readonly drained: boolean;
  /** Calls still in flight at the deadline, aborted; they run again when their instances are resumed. */
  readonly abandoned: number;
}

/** Options of {@link SagaRuntime.migrate}. */
export interface MigrateOptions extends OperatorNote {
  /** The version to move to; it must be registered. */
  readonly to: number;
  /** Old name → new name for the steps, groups and `when`s the target version renamed. @default {} */
  readonly map?: Readonly<Record<string, string>>;
}

/** Options of {@link SagaRuntime.migrateAll}. */
export interface MigrateAllOptions extends MigrateOptions {
  /** The workflow whose instances move. */
  readonly workflow: string;
  /** The version they move from. */
  readonly from: number;
}

/** What {@link SagaRuntime.migrateAll} did. */
export interface MigrateAllReport {
  /** The instances moved. */
  readonly migrated: readonly string[];
  /** The instances that could not move, and why (`MIGRATION_REFUSED` lists what the target lacks). */
  readonly refused: readonly { readonly id: string; readonly error: SerializedError }[];
}

/** Options of `start(workflow, input, options)`. */
export interface StartOptions {
  /** The instance id; starting again with an existing id returns that instance. @default a random UUID */
  readonly id?: string;
  /**
   * The version of the workflow to start. @default the version of the definition given, or, given a workflow's
   * name, the newest version registered
   */
  readonly version?: number;
}

/** How an instance ended (or where it is). */
export interface SagaResult<S> {
  readonly id: string;
  readonly status: InstanceStatus;
  /** The state, as an instance of the workflow's state class when it has one. */
  readonly state: S;
  /** Why it rolled back, or null. */
  readonly error: SerializedError | null;
}

/** A snapshot of an instance, from {@link SagaRuntime.get}. */
export interface InstanceSnapshot<S> extends SagaResult<S> {
  readonly workflow: string;
  /** The version of the workflow it runs on. */
  readonly version: number;
  /** Why it is `blocked` (its definition is not registered as it started), or null. */
  readonly blocked: BlockedReason | null;
  /** The flow fields of the main line. */
  readonly flow: FlowView;
  readonly createdAt: number;
  readonly updatedAt: number;
  /** Compensations that failed, when the status is `compensation_failed`. */
  readonly compensationFailures: readonly { readonly step: string; readonly branch?: string; readonly error: SerializedError }[];
}

/** What `start` returns. */
export interface WorkflowHandle<S> {
  readonly id: string;
  /** Resolves when the instance completes, rolls back or stops in `compensation_failed`. */
  result(): Promise<SagaResult<S>>;
}

/** A problem the runtime reported and survived (a throwing observer, a dropped event, a failed save). */
export interface RuntimeProblem {
  readonly kind: 'observer-failed' | 'event-dropped' | 'instance-failed' | 'instance-blocked' | 'bus-problem';
  readonly message: string;
  readonly error: SerializedError;
  readonly instanceId?: string;
}

interface Deferred<T> {
  resolve(value: T): void;
  reject(error: unknown): void;
}

/**
 * The embedded default: a SQLite file through TypeORM. Loaded only when no store is given, so an application
 * that brings its own store never loads TypeORM for it.
 */
/**
 * The embedded SQLite store. TypeORM and better-sqlite3 are loaded only here, so an application that passes its
 * own store never loads them; when one is missing (or better-sqlite3's addon was never built) this throws a
 * `MissingDependencyError` naming the command that fixes it.
 */
function defaultStore(): InstanceStore {
  requireDependency('typeorm', 'the default store of new SagaRuntime() (SQLite through TypeORM)');
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { TypeormStore } = require('../store/typeorm') as { TypeormStore: typeof TypeormStoreClass };
  return TypeormStore.sqlite();
}

/** What a parent learns of a child instance. */
function childEnded(record: InstanceRecord): ChildEnded {
  return {
    childId: record.id,
    status: record.flow.status,
    direction: record.flow.direction,
    output: record.state,
    error: record.flow.errorReason,
  };
}

/** The names of {@link SagaRuntimeOptions}. */
export const RUNTIME_OPTION_KEYS = optionKeys<SagaRuntimeOptions>()([
  'store',
  'bus',
  'clock',
  'logger',
  'resolver',
  'observers',
  'eventRetention',
  'workflows',
  'defaults',
  'workerId',
  'leaseDuration',
  'pollInterval',
  'rateLimiters',
]);

const START_OPTION_KEYS = optionKeys<StartOptions>()(['id', 'version']);

/**
 * Checks a version argument: a positive whole number.
 * @throws InvalidArgumentError `INVALID_ARGUMENT`
 */
function checkVersionArgument(value: unknown, argument: string, where: string): void {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1) throw new InvalidArgumentError(where, argument, `must be a positive whole number, got ${quote(value, 80)}`);
}

/**
 * Checks the options of `migrate`: `to`, `map` (names to names), and the operator note.
 * @throws InvalidArgumentError `INVALID_ARGUMENT`; DefinitionError `BAD_OPTION` for an unknown key
 */
function checkMigrateOptions(options: MigrateOptions): { to: number; map: Readonly<Record<string, string>> } {
  checkOptions(options, ['to', 'map', 'by', 'reason'], 'migrate');
  if (typeof options !== 'object' || options === null) throw new InvalidArgumentError('migrate', 'the options', 'must be { to, map?, by?, reason? }');
  checkVersionArgument(options.to, 'to', 'migrate');
  const map = options.map ?? {};
  if (typeof map !== 'object' || map === null || Array.isArray(map) || Object.entries(map).some(([k, v]) => k.length === 0 || typeof v !== 'string' || v.length === 0)) {
    throw new InvalidArgumentError('migrate', 'map', `must map old names to new names (strings), got ${quote(options.map, 80)}`);
  }
  checkNote({ ...(options.by === undefined ? {} : { by: options.by }), ...(options.reason === undefined ? {} : { reason: options.reason }) }, 'migrate');
  return { to: options.to, map };
}

/**
 * Checks that `value` is a string, when given.
 * @throws InvalidArgumentError `INVALID_ARGUMENT`
 */
function checkText(value: unknown, argument: string, where: string): void {
  if (typeof value !== 'string') throw new InvalidArgumentError(where, argument, `must be a string, got ${quote(value, 80)}`);
}

/**
 * Checks an operator note: `{ by?, reason? }`, both strings.
 * @throws InvalidArgumentError `INVALID_ARGUMENT`; DefinitionError `BAD_OPTION` for an unknown key
 */
function checkNote(note: OperatorNote, where: string): void {
  checkOptions(note, ['by', 'reason'], where);
  if (note.by !== undefined) checkText(note.by, 'note.by', where);
  if (note.reason !== undefined) checkText(note.reason, 'note.reason', where);
}

/** The timer-queue key of the check that expires retained events (not an instance id: those are never empty). */
const RETAINED_EXPIRY = '';

function randomId(): string {
  return globalThis.crypto.randomUUID();
}

/**
 * The object a user starts: holds the workflows, the store, the bus and the clock; starts instances, delivers
 * events, rolls back on request and resumes unfinished instances.
 *
 * @example
 * const runtime = new SagaRuntime({ workflows: [OrderCheckout] });
 * const handle = await runtime.start(OrderCheckout, { orderId: 'o-1', sku: 'sku-9', amount: 42 });
 * await runtime.publish({ topic: 'payment.captured', payload: { orderId: 'o-1' } });
 * const { status, state } = await handle.result();
 */
export class SagaRuntime {
  /** The event bus. */
  readonly bus: EventBus;
  /** The store. */
  readonly store: InstanceStore;
  /** The clock. */
  readonly clock: Clock;
  /** The logger. */
  readonly logger: Logger;

  private readonly problems = new Subject<RuntimeProblem>();
  /** Problems the runtime reported and survived. */
  readonly errors$: Observable<RuntimeProblem> = this.problems.asObservable();

  private readonly definitions = new DefinitionRegistry();
  /** Blocked instances already reported by this runtime (each is reported once per process). */
  private readonly reportedBlocked = new Set<string>();
  private readonly globalObservers: readonly ObserverSpec[];
  private readonly defaults: StepPolicyOptions;
  private readonly resolver: Resolver;
  private readonly resolved = new Map<unknown, unknown>();
  private readonly actors = new Map<string, InstanceActor>();
  private readonly loading = new Map<string, Promise<InstanceActor>>();
  private readonly waiters = new Map<string, Deferred<SagaResult<unknown>>[]>();
  private readonly retentionMs: number;
  private readonly timers: TimerQueue<{ instanceId: string; track: TrackRef }>;
  private readonly host: ActorHost;
  private recovered: Promise<void> | null = null;
  private closed = false;
  private stopping = false;
  /** Instances this worker has taken a lease on (released on stop; a lease not renewed simply expires). */
  private readonly leased = new Set<string>();
  private readyPromise: Promise<void> | null = null;
  /** This worker's name in leases. */
  readonly workerId: string;
  private readonly leaseMs: number;
  /** True when the runtime made its store (the embedded default) and so closes it. */
  private readonly ownsStore: boolean;
  private readonly pollMs: number;
  private pollTimer: TimerHandle | null = null;
  /** Rate limiters: the shared ones by name, and steps' own ones by `step:<name>`. */
  private readonly limiters = new Map<string, RateLimiter>();
  private polling: Promise<void> | null = null;
  /** When the next scan for instances no live worker can run is due (shared stores). */
  private nextOrphanScan = 0;
  private unsubscribeInbox: (() => void) | null = null;
  private scheduler: Scheduler | null = null;

  constructor(options: SagaRuntimeOptions = {}) {
    readingOptions('new SagaRuntime', () => {
      checkOptions(options, RUNTIME_OPTION_KEYS, 'new SagaRuntime');
      checkOptions(options.defaults, STEP_POLICY_KEYS, 'new SagaRuntime: defaults');
      resolveStepPolicy({}, options.defaults ?? {}, 'runtime defaults');
      for (const [name, spec] of Object.entries(options.rateLimiters ?? {})) resolveRateLimit(spec, `rateLimiters.${name}`);
      for (const duration of [options.eventRetention, options.leaseDuration, options.pollInterval]) if (duration !== undefined) toMillis(duration, 'new SagaRuntime');
      compileObservers(options.observers ?? [], 'runtime');
    });
    this.ownsStore = options.store === undefined;
    this.store = options.store ?? defaultStore();
    this.bus = options.bus ?? new EventBus();
    this.clock = options.clock ?? new SystemClock();
    this.logger = options.logger ?? consoleLogger;
    this.globalObservers = options.observers ?? [];
    this.defaults = options.defaults ?? {};
    resolveStepPolicy({}, this.defaults, 'runtime defaults');
    this.workerId = options.workerId ?? `${hostname()}:${process.pid}:${randomId().slice(0, 8)}`;
    this.leaseMs = toMillis(options.leaseDuration ?? '30s', 'leaseDuration');
    this.pollMs = toMillis(options.pollInterval ?? '1s', 'pollInterval');
    this.resolver =
      options.resolver ??
      (<T>(cls: new (...args: never[]) => T): T => {
        let made = this.resolved.get(cls) as T | undefined;
        if (made === undefined) {
          made = new (cls)();
          this.resolved.set(cls, made);
        }
        return made;
      });
    this.retentionMs = toMillis(options.eventRetention ?? '30s', 'eventRetention');
    for (const [name, spec] of Object.entries(options.rateLimiters ?? {})) {
      this.limiters.set(name, new RateLimiter(name, resolveRateLimit(spec, `rateLimiters.${name}`)));
    }
    this.timers = new TimerQueue(this.clock, ({ instanceId, track }, at) => {
      if (instanceId === RETAINED_EXPIRY) {
        this.expireRetained().catch((e: unknown) => this.report('instance-failed', 'retained events could not be expired', e));
        return;
      }
      this.deliver(instanceId, { type: 'due', track, at }).catch((e: unknown) => {
        if (!(e instanceof InstanceBlockedError)) this.report('instance-failed', `a timer of ${instanceId} could not be applied`, e, instanceId);
      });
    });
    this.bus.attach((input) => this.publish(input as SagaEventInput));
    this.bus.problems$.subscribe((p) => this.report('bus-problem', `bus ${p.kind}`, p.error));
    this.host = {
      store: this.store,
      clock: this.clock,
      logger: this.logger,
      resolveStep: (cls: StepClass) => this.resolver(cls as unknown as new () => BaseStep<unknown>),
      publish: (event) => this.publish(event),
      watch: (instanceId, track, wait) => this.watch(instanceId, track, wait),
      timer: (instanceId, track, at) => this.timers.add(at, { instanceId, track }),
      finished: (record) => {
        this.settleWaiters(record);
        if (record.parent !== undefined) void this.tellParent(record);
        this.dropEventsOf(record).catch((e: unknown) => this.report('instance-failed', `the unconsumed events of ${record.id} could not be dropped`, e, record.id));
      },
      idle: (actor) => this.evict(actor),
      reportFailure: (instanceId, message, error) => this.report('instance-failed', message, error, instanceId),
      isClosed: () => this.closed,
      isStopping: () => this.stopping,
      holds: async (instanceId) => {
        if (!this.shared) return true;
        const now = this.clock.now();
        return this.store.acquire(instanceId, this.workerId, now + this.leaseMs, now);
      },
      lease: (instanceId) => {
        if (!this.shared) return undefined;
        this.leased.add(instanceId);
        return { owner: this.workerId, until: this.clock.now() + this.leaseMs };
      },
      children: {
        start: async (def, input, id, parentId) => {
          await this.startInstance(def, input, { id }, parentId);
        },
        status: async (id) => {
          const record = await this.current(id);
          return record === undefined ? undefined : childEnded(record);
        },
        undo: async (id, reason) => {
          await (await this.actor(id)).post({ type: 'undo', reason });
        },
      },
    };
    for (const wf of options.workflows ?? []) this.register(wf);
  }

  /**
   * Registers workflows (`@Workflow` classes or `defineWorkflow` definitions). Registering the same
   * definition again is harmless; another definition under a taken name is a `DUPLICATE_NAME` error.
   */
  register(...workflows: WorkflowRef[]): this {
    for (const ref of workflows) {
      const def = workflowDefinition(ref);
      // The workflows its child steps start come first (a child's name may not be taken by another definition).
      if (def.children.length > 0) this.register(...def.children);
      const added = this.definitions.add(def, (d) => {
        const merged = this.globalObservers.length === 0 ? d : this.withGlobalObservers(d);
        return {
          def: merged,
          codec: new StateCodec(merged),
          observers: new ObserverRunner(merged.observers, (cls) => this.resolver(cls), (p) => this.reportHook(p)),
          policy: this.policies(merged),
          ...this.stateChangesOf(merged),
          itemCodec: new StateCodec(merged, true),
          limiters: this.limitersOf(merged),
        };
      });
      // Instances blocked for want of this definition go on (once the runtime runs instances at all).
      if (added && this.recovered !== null && !this.shared) {
        this.resumeBlocked(def.name).catch((e: unknown) => this.report('instance-failed', `blocked instances of ${def.name} could not be resumed`, e));
      }
    }
    return this;
  }

  /** Resumes every unfinished instance in the store (call once when the process starts). */
  start(): Promise<void>;
  /** Starts an instance of a registered workflow with a validated input state. */
  start<S = any>(workflow: WorkflowRef<S> | string, input: S | Record<string, unknown>, options?: StartOptions): Promise<WorkflowHandle<S>>; // eslint-disable-line @typescript-eslint/no-explicit-any
  start<S>(workflow?: WorkflowRef<S> | string, input?: unknown, options: StartOptions = {}): Promise<WorkflowHandle<S> | void> {
    if (workflow === undefined) return this.recover();
    return this.startInstance(workflow, input, options);
  }

  /** True when several workers may share the store: leases, polling and the inbox are then in use. */
  private get shared(): boolean {
    return this.store.shared === true;
  }

  /** The store's init, once; a failed one is tried again by the next call (the database may come up later). */
  private ready(): Promise<void> {
    this.readyPromise ??= (this.store.init?.() ?? Promise.resolve()).catch((error: unknown) => {
      this.readyPromise = null;
      throw error;
    });
    return this.readyPromise;
  }

  /** Recovery, once; a recovery that failed (the store was down) is tried again by the next `start()`. */
  private recover(): Promise<void> {
    this.recovered ??= this.recoverOnce().catch((error: unknown) => {
      this.recovered = null;
      throw error;
    });
    return this.recovered;
  }

  private recoverOnce(): Promise<void> {
    return (async () => {
      this.assertOpen('recover');
      await this.ready();
      if (this.shared) {
        // Other workers may be running their own instances: take only those with free or expired leases,
        // and keep looking for more (and for due timers and inbox deliveries) on every poll.
        this.unsubscribeInbox = this.store.onInbox?.((id) => void this.drainInbox(id)) ?? null;
        await this.poll();
        return;
      }
      const ids = await this.store.unfinished();
      await Promise.all(ids.map((id) => this.resume(id)));
      // Retained events whose window passed while no process ran: report them as dropped.
      await this.expireRetained();
      // Deliveries accepted before a crash and not yet applied (a retained event moved to an inbox, say).
      for (const id of (await this.store.inboxInstances?.(10_000)) ?? []) await this.drainInbox(id);
    })();
  }

  private resume(id: string): Promise<void> {
    return this.deliver(id, { type: 'resume' }).then(
      () => undefined,
      (e: unknown) => {
        if (!(e instanceof LeasedElsewhereError || e instanceof InstanceBlockedError)) this.report('instance-failed', `instance ${id} could not be resumed`, e, id);
      },
    );
  }

  /**
   * One round of a shared store's worker loop: claim stale instances (a dead worker's), fire due timers, take
   * inbox deliveries, renew the leases this worker holds. Then the next round is scheduled on the clock.
   */
  private poll(): Promise<void> {
    this.polling ??= (async () => {
      try {
        const now = this.clock.now();
        // This worker takes only instances of definitions it runs, and says which those are.
        const runnable = this.definitions.runnable();
        await this.store.heartbeat?.(this.workerId, runnable, now);
        await this.renewLeases(now);
        const stale = await this.store.claimStale(this.workerId, now + this.leaseMs, now, 100, runnable);
        for (const id of stale) this.leased.add(id);
        await Promise.all(stale.map((id) => this.resume(id)));
        const due = await this.store.dueWaits(now, 100, runnable);
        await Promise.all(
          due.map(({ instanceId, track, deadline }) =>
            this.deliver(instanceId, { type: 'due', track, at: deadline }).catch((e: unknown) => {
              if (!(e instanceof LeasedElsewhereError || e instanceof InstanceBlockedError)) this.report('instance-failed', `a timer of ${instanceId} could not be applied`, e, instanceId);
            }),
          ),
        );
        const inbox = (await this.store.inboxInstances?.(100, runnable)) ?? [];
        await Promise.all(inbox.map((id) => this.drainInbox(id)));
        if (now >= this.nextOrphanScan) {
          this.nextOrphanScan = now + this.leaseMs;
          await this.blockOrphans(now);
        }
        // A retained event may match a wait whose own check never ran (its worker died right after parking).
        for (const event of await this.store.retainedEvents(now, 100)) await this.claimRetained(event, now);
        if (this.retentionMs > 0) await this.expireRetained();
        await this.settleFinishedElsewhere();
      } catch (e) {
        this.report('instance-failed', 'a poll of the shared store failed; the next one will try again', e);
      } finally {
        this.polling = null;
        if (!this.closed && !this.stopping) this.pollTimer = this.clock.setTimeout(() => void this.poll(), this.pollMs);
      }
    })();
    return this.polling;
  }

  /**
   * Blocks the unfinished instances that no live worker runs the definition of (shared stores): they would
   * otherwise wait unseen. A worker that runs their definition later claims them and they go on.
   */
  private async blockOrphans(now: number): Promise<void> {
    if (this.store.orphans === undefined || this.store.liveRunners === undefined) return;
    const live = await this.store.liveRunners(now - 2 * this.leaseMs);
    for (const id of await this.store.orphans([...live, ...this.definitions.runnable()], 100)) {
      const record = await this.store.load(id);
      if (record === undefined) continue;
      const found = this.definitions.forRecord(record);
      if ('unrunnable' in found) await this.block(record, found.unrunnable);
    }
  }

  /** Settles the `result()` waiters of instances another worker finished. */
  private async settleFinishedElsewhere(): Promise<void> {
    const ids = [...this.waiters.keys()].filter((id) => !this.actors.has(id));
    for (const id of ids) {
      const record = await this.store.load(id).catch(() => undefined);
      if (record !== undefined && isFinalStatus(record.flow.status)) this.settleWaiters(record);
    }
  }

  private async renewLeases(now: number): Promise<void> {
    await Promise.all(
      [...this.actors.values()].map(async (actor) => {
        if (await this.store.acquire(actor.id, this.workerId, now + this.leaseMs, now)) return;
        // Another worker took it over (this one was too slow to renew): stop running it here.
        actor.abortAll('the lease was lost to another worker');
        if (this.actors.get(actor.id) === actor) this.actors.delete(actor.id);
      }),
    );
  }

  /** Applies the inbox deliveries of an instance, when this worker can hold its lease. */
  private async drainInbox(id: string): Promise<void> {
    try {
      const pending = await this.store.pendingEvents(id);
      for (const { event, track } of pending) {
        await this.deliver(id, { type: 'event', track, event }, { fromInbox: true });
      }
    } catch (e) {
      if (!(e instanceof LeasedElsewhereError || e instanceof InstanceBlockedError)) this.report('instance-failed', `the inbox of ${id} could not be applied`, e, id);
    }
  }


  private async startInstance<S>(workflow: WorkflowRef<S> | string, input: unknown, options: StartOptions, parent?: string): Promise<WorkflowHandle<S>> {
    this.assertOpen('start an instance');
    await this.ready();
    checkOptions(options, START_OPTION_KEYS, 'start');
    if (options.version !== undefined && (typeof options.version !== 'number' || !Number.isSafeInteger(options.version) || options.version < 1)) {
      throw new SagaflowError('BAD_OPTION', `start: version must be a positive whole number, got ${quote(options.version, 80)}`);
    }
    // A definition starts on its own version; a name on the newest registered one (or the one asked for).
    const chosen = typeof workflow === 'string' ? { name: workflow, version: options.version } : ((d) => ({ name: d.name, version: options.version ?? d.version }))(workflowDefinition(workflow));
    const services = this.services(chosen.name, 'start', chosen.version);
    const id = options.id ?? randomId();
    if (typeof id !== 'string' || id.length === 0) {
      throw new SagaflowError('BAD_OPTION', `start: the instance id must be a non-empty string, got ${quote(id, 80)}`);
    }
    if (this.actors.has(id) || (await this.store.load(id)) !== undefined) return this.handle<S>(id);
    const { codec, observers, def } = services;
    // Shape, then JSON, then class-validator: each with its own code, nothing stored when one fails.
    let state = codec.dehydrate(input, 'given to start');
    await codec.assertValid(input, 'at start');
    const now = this.clock.now();
    const record = newRecord(id, def.name, state, now, def.deadlineMs === null ? null : now + def.deadlineMs, def);
    if (parent !== undefined) record.parent = parent;
    let veto: SerializedError | null = null;
    if (observers.has('handleInit')) {
      const round = await observers.run('handleInit', codec.hydrate(state), flowView(record, null), 'veto');
      try {
        state = codec.dehydrate(round.state, 'returned by handleInit');
      } catch (e) {
        if (!(e instanceof StateNotSerializableError || e instanceof BadStateError)) throw e;
        veto = serializeThrown(e);
      }
      record.state = state;
      veto = round.veto ?? veto;
    }
    const actor = await InstanceActor.create(this.host, services, record, veto === null ? { type: 'begin' } : { type: 'initVetoed', error: veto });
    if (actor !== undefined && !this.actors.has(id)) {
      this.actors.set(id, actor);
      if (actor.idle) this.evict(actor);
    }
    return this.handle<S>(id);
  }

  /**
   * Starts an instance of `workflow` at every tick of a cron expression, with the id
   * `schedule:<name>:<tick as ISO string>`: several workers on one store start one instance per tick. The last
   * tick is stored, so ticks missed while no runtime ran the schedule are caught up as `missed` says; a new
   * schedule never fires for earlier ticks. `close()` and `stop()` cancel every schedule.
   * @throws ScheduleError `BAD_CRON`, `BAD_TIMEZONE`, `BAD_OPTION`, `DUPLICATE_SCHEDULE`; UnknownWorkflowError.
   * @example
   * await runtime.schedule(Reconcile, { cron: '0 2 * * *', timezone: 'Europe/Paris', input: (tick) => ({ day: tick.toISOString() }) });
   */
  async schedule<S = any>(workflow: WorkflowRef<S> | string, options: ScheduleOptions<S>): Promise<ScheduleHandle> { // eslint-disable-line @typescript-eslint/no-explicit-any
    this.assertOpen('schedule a workflow');
    const name = this.services(typeof workflow === 'string' ? workflow : workflowDefinition(workflow).name, 'schedule').def.name;
    this.scheduler ??= new Scheduler({
      clock: this.clock,
      store: this.store,
      logger: this.logger,
      ready: () => this.ready(),
      isOpen: () => !this.closed && !this.stopping,
      start: (wf, input, id) => this.start(wf, input, { id }),
      report: (message, error, instanceId) => this.report('instance-failed', message, error, instanceId),
    });
    return this.scheduler.add(name, options);
  }

  /** A handle to an existing instance. */
  handle<S = any>(id: string): WorkflowHandle<S> { // eslint-disable-line @typescript-eslint/no-explicit-any
    return { id, result: () => this.result<S>(id) };
  }

  /**
   * Waits for an instance to end. Its waiter is registered before the instance is looked up (so an end that comes
   * meanwhile is not missed) and taken back when the lookup fails: a rejected `result()` leaves nothing behind.
   */
  private result<S>(id: string): Promise<SagaResult<S>> {
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
      await this.ready();
      const record = await this.current(id);
      if (record === undefined) withdraw(new UnknownInstanceError(id));
      else if (isFinalStatus(record.flow.status)) this.settleWaiters(record);
      else if (this.closed) withdraw(new RuntimeClosedError('wait for results'));
    };
    lookUp().catch(withdraw);
    return promise;
  }

  /**
   * Rolls an instance back from outside: a parked step's rollback runs at once, an in-flight `run` sees its
   * AbortSignal fire and is compensated when it settles. Asking again while it goes down changes nothing.
   * @throws UnknownInstanceError; SagaflowError `INSTANCE_FINISHED` for a completed instance.
   */
  async rollback(id: string, reason: string): Promise<void> {
    checkInstanceId(id, 'rollback');
    checkText(reason, 'the reason', 'rollback');
    this.assertOpen('roll back');
    const actor = await this.actor(id);
    if (actor.record.flow.status === 'completed') {
      throw new SagaflowError('INSTANCE_FINISHED', `instance ${quote(id, 120)} already completed; there is nothing in flight to roll back`, {
        instanceId: id,
      });
    }
    await actor.post({ type: 'rollback', reason: serializeError(new RollbackRequestedError(reason)) });
  }

  /**
   * Operator: cancels an instance — the same as {@link SagaRuntime.rollback}, with who and why recorded in the
   * history.
   */
  async cancel(id: string, reason: string, note: OperatorNote = {}): Promise<void> {
    checkNote(note, 'cancel');
    await this.rollback(id, note.by === undefined ? reason : `${reason} (by ${note.by})`);
  }

  /**
   * Operator: calls the failed compensations of a `compensation_failed` instance again (from attempt 1), then
   * goes on compensating. Resolves once the retry is recorded; use `handle(id).result()` for the outcome.
   * @throws UnknownInstanceError; InvalidOperationError `INVALID_OPERATION` when the instance is not
   * `compensation_failed`, or when nothing is left to retry (`onCompensationError: 'continue'` went past it).
   */
  async retryCompensation(id: string, note: OperatorNote = {}): Promise<void> {
    await this.operate(id, 'retryCompensation', note);
  }

  /**
   * Operator: gives up on the failed compensations of a `compensation_failed` instance and goes on with the
   * earlier ones; the skip and `note` are recorded in the history.
   * @throws UnknownInstanceError; InvalidOperationError `INVALID_OPERATION` when the instance is not `compensation_failed`.
   */
  async skipCompensation(id: string, note: string | OperatorNote = {}): Promise<void> {
    await this.operate(id, 'skipCompensation', typeof note === 'string' ? { reason: note } : note);
  }

  /**
   * Operator: moves an instance in flight to another version of its workflow — a `blocked` one, or one waiting (or
   * `compensation_failed`) — when its current position and every step on its compensation stack exist in that
   * version (renamed through `map`). It then goes on there; the move is recorded in its history with who and why.
   * @throws MigrationRefusedError `MIGRATION_REFUSED` listing what the target lacks; InvalidOperationError when
   * it has a call in flight or has ended; UnknownInstanceError; UnknownWorkflowError when the version is not registered.
   * @example
   * await runtime.migrate('order-17', { to: 2, map: { 'charge-card': 'charge-payment' }, by: 'ops', reason: 'v1 retired' });
   */
  async migrate(id: string, options: MigrateOptions): Promise<void> {
    checkInstanceId(id, 'migrate');
    const { to, map } = checkMigrateOptions(options);
    this.assertOpen('migrate');
    await this.ready();
    const busy = this.actors.get(id);
    if (busy !== undefined && !busy.idle) throw new InvalidOperationError('migrate', id, busy.record.flow.status, 'it has a handler call in flight; migrate it once it parks');
    if (this.shared) {
      const now = this.clock.now();
      this.leased.add(id);
      if (!(await this.store.acquire(id, this.workerId, now + this.leaseMs, now))) throw new LeasedElsewhereError(id);
    }
    const record = await this.store.load(id);
    if (record === undefined) throw new UnknownInstanceError(id);
    const status = record.flow.status;
    if (status === 'completed' || status === 'rolled_back') throw new InvalidOperationError('migrate', id, status, 'an ended instance stays on the version it ran on');
    const active = [record.flow, ...(record.group?.branches.map((b) => b.flow) ?? [])];
    if (record.blocked === undefined && active.some((f) => f.inFlight)) throw new InvalidOperationError('migrate', id, status, 'it has a handler call in flight; migrate it once it parks');
    const target = this.services(record.workflow, 'migrate', to).def;
    if (record.blocked === undefined && versionOf(record) === to && record.fingerprint === target.fingerprint) {
      throw new InvalidOperationError('migrate', id, status, `it already runs on version ${to}`);
    }
    const plan = planMigration(record, target, map);
    if ('missing' in plan) throw new MigrationRefusedError(id, to, plan.missing);
    const now = this.clock.now();
    const moved: InstanceRecord = { ...plan.record, updatedAt: now };
    const who = [options.by === undefined ? undefined : `by ${options.by}`, options.reason].filter((x) => x !== undefined).join(': ');
    const from = `version ${versionOf(record)} (${record.fingerprint ?? 'no fingerprint'})`;
    const f = moved.flow;
    const line: HistoryEntry = {
      at: now,
      kind: 'migrated',
      step: f.stepName,
      direction: f.direction,
      func: f.stepFunc,
      attempt: f.attempt,
      outcome: `version ${to}`,
      status: f.status,
      note: `${who === '' ? '' : `${who}; `}from ${from} to version ${to} (${target.fingerprint})`,
    };
    const lease = this.host.lease(id);
    await this.store.save(moved, lease === undefined ? { history: [line] } : { history: [line], lease });
    if (this.actors.get(id) !== undefined) this.actors.delete(id);
    this.reportedBlocked.delete(id);
    if (!isFinalStatus(moved.flow.status)) {
      await this.resume(id);
      await this.drainInbox(id);
    }
  }

  /**
   * Operator: {@link migrate}s every unfinished (or `compensation_failed`) instance of `workflow` at version `from`
   * to version `to`, each on its own; resolves to the ids moved and those refused, with why.
   * @example
   * const { migrated, refused } = await runtime.migrateAll({ workflow: 'order-checkout', from: 1, to: 2, by: 'ops' });
   */
  async migrateAll(options: MigrateAllOptions): Promise<MigrateAllReport> {
    checkOptions(options, ['workflow', 'from', 'to', 'map', 'by', 'reason'], 'migrateAll');
    const { workflow, from, ...rest } = options;
    if (typeof workflow !== 'string' || workflow.length === 0) throw new InvalidArgumentError('migrateAll', 'workflow', `must be a workflow name, got ${quote(workflow, 80)}`);
    checkVersionArgument(from, 'from', 'migrateAll');
    checkMigrateOptions(rest);
    const statuses: InstanceStatus[] = ['running', 'waiting', 'rolling_back', 'blocked', 'compensation_failed'];
    const ids = (await this.list({ workflow, version: from, status: statuses, limit: Number.MAX_SAFE_INTEGER })).map((s) => s.id);
    const migrated: string[] = [];
    const refused: { id: string; error: SerializedError }[] = [];
    for (const id of ids) {
      try {
        await this.migrate(id, rest);
        migrated.push(id);
      } catch (error) {
        refused.push({ id, error: serializeThrown(error) });
      }
    }
    return { migrated, refused };
  }

  /** The history of an instance, oldest first: every transition, retry and operator action. @throws UnknownInstanceError */
  async history(id: string): Promise<HistoryEntry[]> {
    checkInstanceId(id, 'history');
    await this.ready();
    if (!this.actors.has(id) && (await this.store.load(id)) === undefined) throw new UnknownInstanceError(id);
    return this.store.history(id);
  }

  private async operate(id: string, action: 'retryCompensation' | 'skipCompensation', note: OperatorNote): Promise<void> {
    checkInstanceId(id, action);
    checkNote(note, action);
    this.assertOpen(action);
    const actor = await this.actor(id);
    const record = actor.record;
    if (record.flow.status !== 'compensation_failed') {
      throw new InvalidOperationError(action, id, record.flow.status, 'only a compensation_failed instance has failed compensations');
    }
    const leftovers = record.flow.stack.length > 0 || (record.group?.branches.some((b) => b.phase === 'compensation_failed') ?? false);
    if (!leftovers) {
      throw new InvalidOperationError(action, id, record.flow.status, 'no compensation is left to act on (the rollback went past its failures, which are listed in compensationFailures)');
    }
    const text = [note.by === undefined ? undefined : `by ${note.by}`, note.reason].filter((x) => x !== undefined).join(': ');
    await actor.post({ type: action }, text === '' ? {} : { note: text });
  }

  /** A snapshot of an instance. @throws UnknownInstanceError */
  async get<S = any>(id: string): Promise<InstanceSnapshot<S>> { // eslint-disable-line @typescript-eslint/no-explicit-any
    checkInstanceId(id, 'get');
    await this.ready();
    const record = await this.current(id);
    if (record === undefined) throw new UnknownInstanceError(id);
    return this.snapshot<S>(record);
  }

  /** Summaries of instances in the store. */
  async list(filter?: InstanceFilter): Promise<InstanceSummary[]> {
    const checked = checkFilter(filter);
    await this.ready();
    return this.store.list(checked);
  }

  /**
   * Publishes an event: delivers it to every waiting step whose wait matches (topic, match fields, and the
   * instance when the event names one), or keeps it for the retention window when none does. Resolves once
   * the resumed steps' transitions are persisted.
   * @throws InvalidEventError when the event is malformed.
   */
  async publish(input: SagaEventInput): Promise<PublishReceipt> {
    this.assertOpen('publish');
    await this.ready();
    const now = this.clock.now();
    const event = normalizeEvent(input, now);
    const waiting = await this.store.findWaiting(event);
    const results = await Promise.all(
      waiting.map((w) =>
        this.deliverEvent(w.instanceId, w.track, event).catch((e: unknown) => {
          this.report('instance-failed', `event ${event.topic} could not be delivered to ${w.instanceId}`, e, w.instanceId);
          return false;
        }),
      ),
    );
    let delivered = results.filter(Boolean).length;
    let retained = false;
    let held = false;
    if (delivered === 0 && event.instanceId !== undefined) {
      held = await this.holdFor(event.instanceId, event);
    } else if (delivered === 0 && this.retentionMs > 0) {
      await this.store.acceptEvent(event, [], now + this.retentionMs);
      this.timers.add(now + this.retentionMs + 1, { instanceId: RETAINED_EXPIRY, track: null });
      retained = true;
    }
    // A wait may have begun between the lookup and the retention (the fast reply race): look again. Whoever
    // takes the kept event first — this or the wait's own check — delivers it, exactly once.
    if ((retained || held) && (await this.claimRetained(event, now))) {
      delivered = 1;
      retained = false;
      held = false;
    }
    this.bus.emit(event);
    return { eventId: event.id, delivered, retained, held };
  }

  /**
   * Keeps an event published to `instanceId` for it (no wait of it matched): until one of its waits takes it, or it
   * ends. False when it has already ended (the event is reported as dropped).
   * @throws UnknownInstanceError when there is no such instance.
   */
  private async holdFor(instanceId: string, event: SagaEvent): Promise<boolean> {
    const record = await this.current(instanceId);
    if (record === undefined) throw new UnknownInstanceError(instanceId);
    if (isFinalStatus(record.flow.status)) {
      this.report('event-dropped', `event ${event.topic} (${event.id}) was published to instance ${instanceId}, which has ended (${record.flow.status})`, {
        code: 'INSTANCE_FINISHED',
        message: `instance ${quote(instanceId)} has ended`,
      }, instanceId);
      return false;
    }
    await this.store.acceptEvent(event, [], KEEP_FOR_INSTANCE);
    // It may have ended meanwhile (its end already dropped what it kept): drop this one too.
    const now = await this.current(instanceId);
    if (now !== undefined && isFinalStatus(now.flow.status)) await this.dropEventsOf(now);
    return true;
  }

  /** Reports and removes what an ended instance never consumed: events published to it, inbox deliveries. */
  private async dropEventsOf(record: InstanceRecord): Promise<void> {
    for (const event of await this.store.dropEvents(record.id)) {
      this.report(
        'event-dropped',
        `event ${event.topic} (${event.id}) for instance ${record.id} was never consumed: the instance ended ${record.flow.status}`,
        { code: 'EVENT_NOT_CONSUMED', message: `instance ${quote(record.id)} ended before a wait of it took the event` },
        record.id,
      );
    }
  }

  /** Reports and removes retained events nobody took in their window. */
  private async expireRetained(): Promise<void> {
    for (const event of await this.store.expireRetained(this.clock.now(), 1000)) {
      this.report('event-dropped', `event ${event.topic} (${event.id}) matched no wait within eventRetention and was dropped`, {
        code: 'EVENT_EXPIRED',
        message: `no wait took event ${quote(event.id)} within ${this.retentionMs} ms`,
      });
    }
  }

  private async claimRetained(event: SagaEvent, now: number): Promise<boolean> {
    for (const w of await this.store.findWaiting(event)) {
      const record = await this.current(w.instanceId);
      const wait = record === undefined ? undefined : trackOf(record, w.track)?.flow.wait;
      if (wait === undefined || wait === null) continue;
      const taken = await this.store.moveRetainedToInbox(w.instanceId, w.track, wait, now);
      if (taken === undefined) continue;
      // It is in the instance's inbox now (stored, so accepted); apply it here unless another worker holds it.
      await this.drainInbox(w.instanceId);
      return true;
    }
    return false;
  }

  /**
   * Resolves once no instance has a handler call in flight or a happening queued: every instance is waiting,
   * finished, or parked on a timer. Handy in tests and before a shutdown.
   */
  idle(): Promise<void> {
    return this.idleUnless(() => false);
  }

  /**
   * A graceful stop: accept no more work (`start`, `publish` and operator calls fail with `RUNTIME_CLOSED`), let the
   * handler calls in flight finish and save their results — without starting the next ones, whose intents stay
   * saved for whoever resumes the instances — until `drainTimeout`; then abort what still runs (its result is
   * dropped; the call is made again on resume), give back this worker's leases so others take over at once, and
   * close.
   * @example
   * process.on('SIGTERM', () => void runtime.stop({ drainTimeout: '10s' }));
   */
  async stop(options: StopOptions = {}): Promise<StopReport> {
    checkOptions(options, ['drainTimeout'], 'stop');
    if (this.closed) return { drained: true, abandoned: 0 };
    const drainMs = toMillis(options.drainTimeout ?? '30s', 'drainTimeout');
    this.stopping = true;
    if (this.pollTimer !== null) this.clock.clearTimeout(this.pollTimer);
    this.pollTimer = null;
    let deadlinePassed = false;
    let timer: TimerHandle | undefined;
    const deadline = new Promise<void>((resolve) => {
      timer = this.clock.setTimeout(() => {
        deadlinePassed = true;
        resolve();
      }, drainMs);
    });
    await Promise.race([this.idleUnless(() => deadlinePassed), deadline]);
    if (timer !== undefined) this.clock.clearTimeout(timer);
    let abandoned = 0;
    for (const actor of this.actors.values()) abandoned += actor.callsInFlight;
    if (this.shared) {
      await Promise.all([...this.leased].map((id) => this.store.release(id, this.workerId).catch(() => undefined)));
      this.leased.clear();
      await this.store.retire?.(this.workerId).catch(() => undefined);
    }
    await this.close();
    return { drained: abandoned === 0, abandoned };
  }

  /** Like {@link idle}, but gives up once `give` says so. */
  private async idleUnless(give: () => boolean): Promise<void> {
    for (;;) {
      let busy = this.loading.size > 0;
      for (const actor of this.actors.values()) busy ||= !actor.idle;
      if (!busy || give()) return;
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
  }

  /**
   * Stops timers and detaches the bus at once. In-flight handler calls are aborted; their results are dropped (use
   * {@link stop} to drain first). A store the runtime made itself (the embedded default) is closed; a store you
   * passed in is yours to close.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.timers.clear();
    this.scheduler?.cancelAll();
    if (this.pollTimer !== null) this.clock.clearTimeout(this.pollTimer);
    this.unsubscribeInbox?.();
    this.bus.detach();
    for (const actor of this.actors.values()) actor.abortAll('runtime closed');
    for (const [id] of this.waiters) this.rejectWaiters(id, new RuntimeClosedError('wait for results'));
    this.problems.complete();
    if (this.ownsStore) await this.store.close();
  }

  // -------------------------------------------------------------------------------------------------------

  private withGlobalObservers(def: WorkflowDefinition): WorkflowDefinition {
    return { ...def, observers: [...def.observers, ...compileObservers(this.globalObservers, 'runtime', def.observers)] };
  }

  private stateChangesOf(def: WorkflowDefinition): { stateChanges?: StateChangeRecording } {
    const options = stateChangeOptions(def.observers.map((o) => o.observer));
    return options === undefined ? {} : { stateChanges: options };
  }

  /** The rate limiter of each step of `def` that has one. @throws DefinitionError `UNKNOWN_RATE_LIMITER` */
  private limitersOf(def: WorkflowDefinition): Map<string, RateLimiter> {
    const out = new Map<string, RateLimiter>();
    for (const [name, step] of def.steps) {
      const limit = step.meta.options.rateLimit;
      if (limit === undefined) continue;
      if (typeof limit === 'string') {
        const shared = this.limiters.get(limit);
        if (shared === undefined) {
          throw new DefinitionError('UNKNOWN_RATE_LIMITER', `step ${quote(name)} of workflow ${quote(def.name)} uses rate limiter ${quote(limit)}, which the runtime's rateLimiters do not define`, {
            workflow: def.name,
            step: name,
            limiter: limit,
          });
        }
        out.set(name, shared);
        continue;
      }
      let own = this.limiters.get(`step:${name}`);
      if (own === undefined) {
        own = new RateLimiter(`step:${name}`, resolveRateLimit(limit, `step ${quote(name)}: rateLimit`));
        this.limiters.set(own.name, own);
      }
      out.set(name, own);
    }
    return out;
  }

  /** Tells a parent that its child ended (either way); a parent not waiting yet finds out when its wait begins. */
  private async tellParent(record: InstanceRecord): Promise<void> {
    if (record.parent === undefined || this.closed) return;
    const ended = childEnded(record);
    try {
      await this.publish({ topic: CHILD_ENDED_TOPIC, instanceId: record.parent, payload: { ...ended } });
    } catch (e) {
      if (!(e instanceof RuntimeClosedError)) this.report('instance-failed', `parent ${record.parent} could not be told that child ${record.id} ended`, e, record.parent);
    }
  }

  /** A wait for a child that has already ended is answered at once (the child ended before the wait began, or before a crash). */
  private async answerChildWait(wait: Wait): Promise<void> {
    const id = wait.match.childId;
    if (typeof id !== 'string') return;
    const record = await this.current(id);
    if (record === undefined || !isFinalStatus(record.flow.status)) return;
    if (wait.match.direction !== undefined && wait.match.direction !== record.flow.direction) return;
    await this.tellParent(record);
  }

  private policies(def: WorkflowDefinition): PolicyLookup {
    const table = new Map<string, Record<'up' | 'down', StepPolicy>>();
    for (const [name, step] of def.steps) table.set(name, resolveStepPolicy(step.meta.options, this.defaults, `step ${quote(name)}`));
    return (step, direction) => table.get(step)?.[direction] ?? NO_POLICY;
  }

  private services(name: string, where: string, version?: number): WorkflowServices {
    return this.definitions.get(name, version, where);
  }

  private actorFor(services: WorkflowServices, record: InstanceRecord): InstanceActor {
    const existing = this.actors.get(record.id);
    if (existing !== undefined) return existing;
    const actor = InstanceActor.load(this.host, services, record);
    this.actors.set(record.id, actor);
    return actor;
  }

  /** The record as committed: the live actor's when it equals the store's, else the store's. */
  private async current(id: string): Promise<InstanceRecord | undefined> {
    // A copy, taken now: the live actor advances its record in place, and the caller reads it after an await.
    const live = this.actors.get(id)?.committed;
    return live === undefined ? this.store.load(id) : structuredClone(live);
  }

  private async actor(id: string): Promise<InstanceActor> {
    const existing = this.actors.get(id);
    if (existing !== undefined) return existing;
    let loading = this.loading.get(id);
    if (loading === undefined) {
      loading = (async () => {
        await this.ready();
        if (this.shared) {
          const now = this.clock.now();
          this.leased.add(id);
          if (!(await this.store.acquire(id, this.workerId, now + this.leaseMs, now))) {
            if ((await this.store.load(id)) === undefined) throw new UnknownInstanceError(id);
            throw new LeasedElsewhereError(id);
          }
        }
        const record = await this.store.load(id);
        if (record === undefined) throw new UnknownInstanceError(id);
        const found = this.definitions.forRecord(record);
        if ('unrunnable' in found) {
          if (this.shared) {
            this.leased.delete(id);
            await this.store.release(id, this.workerId).catch(() => undefined);
          }
          throw await this.unrunnable(record, found.unrunnable);
        }
        if (record.workflowVersion === undefined) {
          // Written before versions: it runs on version 1, whose structure it takes as its own from now on.
          record.workflowVersion = found.services.def.version;
          record.fingerprint = found.services.def.fingerprint;
        }
        return this.actorFor(found.services, record);
      })();
      this.loading.set(id, loading);
      loading.then(
        () => this.loading.delete(id),
        () => this.loading.delete(id),
      );
    }
    return loading;
  }

  private async deliver(id: string, happening: Happening, options: PostOptions = {}): Promise<boolean> {
    const actor = await this.actor(id);
    // A blocked instance whose definition is back goes on first: its waits, timers and calls in flight resume.
    if (actor.record.blocked !== undefined && happening.type !== 'resume') await actor.post({ type: 'resume' });
    return actor.post(happening, options);
  }

  /**
   * Why an instance this runtime cannot run is not run here: another live worker runs its definition
   * (`LeasedElsewhereError`: that one takes it), or none does, and it is blocked (persisted, reported once).
   */
  private async unrunnable(record: InstanceRecord, why: Unrunnable): Promise<LeasedElsewhereError | InstanceBlockedError> {
    if (this.shared && this.store.liveRunners !== undefined) {
      const live = await this.store.liveRunners(this.clock.now() - 2 * this.leaseMs);
      if (isRunnable(live, record.workflow, versionOf(record), record.fingerprint ?? null)) return new LeasedElsewhereError(record.id);
    }
    await this.block(record, why);
    return new InstanceBlockedError(record.id, why);
  }

  /** Marks an unfinished instance blocked (once; its status is kept for when it goes on) and reports it once. */
  private async block(record: InstanceRecord, why: Unrunnable): Promise<void> {
    const same = record.blocked !== undefined && record.blocked.code === why.code && record.blocked.registered === why.registered;
    if (!same && !isFinalStatus(record.flow.status)) {
      const now = this.clock.now();
      const status = record.blocked?.status ?? record.flow.status;
      const blocked: InstanceRecord = { ...record, blocked: { ...why, status, since: now }, flow: { ...record.flow, status: 'blocked' }, updatedAt: now };
      const f = record.flow;
      const line: HistoryEntry = { at: now, kind: 'blocked', step: f.stepName, direction: f.direction, func: f.stepFunc, attempt: f.attempt, code: why.code, status: 'blocked', note: why.message };
      try {
        await this.store.save(blocked, { history: [line] });
      } catch (e) {
        if (!(e instanceof VersionConflictError)) throw e; // it moved meanwhile: whoever looks next decides again
      }
    }
    if (this.reportedBlocked.has(record.id)) return;
    this.reportedBlocked.add(record.id);
    this.report('instance-blocked', why.message, { code: why.code, message: why.message, details: { fingerprint: why.fingerprint, registered: why.registered } }, record.id);
  }

  /** Resumes the blocked instances of a workflow this runtime can now run (non-shared stores; shared ones claim them). */
  private async resumeBlocked(workflow: string): Promise<void> {
    await this.ready();
    for (const { id } of await this.store.list({ status: 'blocked', workflow, limit: Number.MAX_SAFE_INTEGER })) {
      await this.resume(id);
      await this.drainInbox(id);
    }
  }

  /**
   * Delivers an event to a waiting track. When another worker holds the instance, the event goes into the
   * inbox (stored before `publish` resolves) and that worker applies it.
   */
  private async deliverEvent(id: string, track: TrackRef, event: SagaEvent): Promise<boolean> {
    try {
      return await this.deliver(id, { type: 'event', track, event });
    } catch (e) {
      // Another worker holds it, or it is blocked: the event waits in its inbox for whoever runs it.
      if (!(e instanceof LeasedElsewhereError || e instanceof InstanceBlockedError)) throw e;
      await this.store.acceptEvent(event, [{ instanceId: id, track }], null);
      return true;
    }
  }

  private evict(actor: InstanceActor): void {
    if (this.actors.get(actor.id) === actor && actor.idle) this.actors.delete(actor.id);
  }

  private watch(instanceId: string, track: TrackRef, wait: Wait): void {
    if (wait.deadline !== null) this.timers.add(wait.deadline, { instanceId, track });
    if (wait.topics.includes(CHILD_ENDED_TOPIC)) {
      this.answerChildWait(wait).catch((e: unknown) => this.report('instance-failed', `the child wait of ${instanceId} could not be checked`, e, instanceId));
    }
    // A kept event this wait matches (a retained one, or one published to this instance) moves into the instance's
    // inbox in one transaction, and is applied from there (its consumption commits with the transition): a crash in
    // between cannot lose it.
    this.store
      .moveRetainedToInbox(instanceId, track, wait, this.clock.now())
      .then(async (early) => {
        if (early !== undefined) await this.drainInbox(instanceId);
      })
      .catch((e: unknown) => this.report('instance-failed', `a retained event could not be delivered to ${instanceId}`, e, instanceId));
  }

  /** The state as the workflow's class when it can be made, else the stored JSON (reported): a read never fails on it. */
  private readableState(record: InstanceRecord): unknown {
    const found = this.definitions.forRecord(record);
    if ('services' in found) {
      try {
        return found.services.codec.hydrate(record.state);
      } catch (error) {
        this.report('instance-failed', `the state of ${record.id} could not be made into its state class; it is returned as stored JSON`, error, record.id);
      }
    }
    return structuredClone(record.state);
  }

  private snapshot<S>(record: InstanceRecord): InstanceSnapshot<S> {
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

  private settleWaiters(record: InstanceRecord): void {
    const list = this.waiters.get(record.id);
    if (list === undefined) return;
    this.waiters.delete(record.id);
    const snap = this.snapshot(record);
    const result: SagaResult<unknown> = { id: snap.id, status: snap.status, state: snap.state, error: snap.error };
    for (const d of list) d.resolve(result);
  }

  private rejectWaiters(id: string, error: unknown): void {
    const list = this.waiters.get(id);
    if (list === undefined) return;
    this.waiters.delete(id);
    for (const d of list) d.reject(error);
  }

  private reportHook(p: HookProblem): void {
    this.report('observer-failed', `observer ${p.observer} ${p.hook} failed at ${p.flow.stepName ?? p.flow.workflow}`, p.error, p.flow.instanceId);
  }

  private report(kind: RuntimeProblem['kind'], message: string, error: unknown, instanceId?: string): void {
    const serialized = serializeError(error);
    const problem: RuntimeProblem = instanceId === undefined ? { kind, message, error: serialized } : { kind, message, error: serialized, instanceId };
    this.logger.warn({ kind, instanceId, error: serialized }, message);
    this.problems.next(problem);
  }

  private assertOpen(action: string): void {
    if (this.closed || this.stopping) throw new RuntimeClosedError(action);
  }
}
