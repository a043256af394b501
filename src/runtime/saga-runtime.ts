/**
 * `SagaRuntime`, the object users hold: a thin facade over the runtime's collaborators (registry, instances,
 * event delivery, recovery, operator API, child links, lifecycle), which it builds and wires together.
 */
import 'reflect-metadata';
import type { Observable } from 'rxjs';
import type { SagaEventInput } from '../bus/event';
import type { EventBus } from '../bus/event-bus';
import type { HistoryEntry } from '../engine/history-entry';
import { readingOptions, checkOptions } from '../input/known-keys';
import { resolveStepPolicy, STEP_POLICY_KEYS } from '../policies/step-policy';
import { resolveRateLimit } from '../policies/rate-limiter';
import type { ScheduleHandle, ScheduleOptions } from '../schedule/schedule-options';
import type { InstanceFilter, InstanceStore, InstanceSummary } from '../store/instance-store';
import type { Clock } from '../time/clock';
import { toMillis } from '../time/duration';
import { compileObservers } from '../workflow/compile-workflow';
import type { WorkflowRef } from '../workflow/workflow-decorator';
import { Blocking } from './blocking';
import { ChildLinks } from './child-links';
import { EventDelivery } from './event-delivery';
import { InstanceMigration } from './instance-migration';
import { InstanceStarter } from './instance-starter';
import { Instances } from './instances';
import type { Logger } from '../core/logger';
import { Lifecycle } from './lifecycle';
import { Maintenance } from './maintenance';
import { OperatorRequests } from './operator-requests';
import { checkNote, checkText } from './operator-input';
import { checkInstanceId } from '../store/instance-filter';
import { retentionPolicy } from './retention';
import { OperatorApi } from './operator-api';
import type { PublishReceipt } from '../core/publish-receipt';
import { Recovery } from './recovery';
import { Registry } from './registry';
import { Results } from './results';
import { RuntimeContext } from './runtime-context';
import {
  RUNTIME_OPTION_KEYS,
  type InstanceSnapshot,
  type MigrateAllOptions,
  type MigrateAllReport,
  type MigrateOptions,
  type OperatorNote,
  type RuntimeProblem,
  type SagaRuntimeOptions,
  type StartOptions,
  type StopOptions,
  type StopReport,
  type WorkflowHandle,
} from './runtime-options';

/** The runtime's option, result and report shapes are defined beside it and exported from here too. */
export * from './runtime-options';

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
  /** This worker's name in leases. */
  readonly workerId: string;
  /** Problems the runtime reported and survived. */
  readonly errors$: Observable<RuntimeProblem>;

  private readonly ctx: RuntimeContext;
  private readonly registry: Registry;
  private readonly instances: Instances;
  private readonly results: Results;
  private readonly events: EventDelivery;
  private readonly children: ChildLinks;
  private readonly recovery: Recovery;
  private readonly operator: OperatorApi;
  private readonly migration: InstanceMigration;
  private readonly starter: InstanceStarter;
  private readonly lifecycle: Lifecycle;
  private readonly maintenance: Maintenance;
  private readonly requests: OperatorRequests;

  constructor(options: SagaRuntimeOptions = {}) {
    readingOptions('new SagaRuntime', () => {
      checkOptions(options, RUNTIME_OPTION_KEYS, 'new SagaRuntime');
      checkOptions(options.defaults, STEP_POLICY_KEYS, 'new SagaRuntime: defaults');
      resolveStepPolicy({}, options.defaults ?? {}, 'runtime defaults');
      for (const [name, spec] of Object.entries(options.rateLimiters ?? {})) resolveRateLimit(spec, `rateLimiters.${name}`);
      for (const duration of [options.eventRetention, options.leaseDuration, options.pollInterval]) if (duration !== undefined) toMillis(duration, 'new SagaRuntime');
      compileObservers(options.observers ?? [], 'runtime');
      if (options.retention !== undefined) retentionPolicy(options.retention);
    });
    const ctx = (this.ctx = new RuntimeContext(options));
    this.store = ctx.store;
    this.bus = ctx.bus;
    this.clock = ctx.clock;
    this.logger = ctx.logger;
    this.workerId = ctx.workerId;
    this.errors$ = ctx.problems.asObservable();
    const maintenance = (this.maintenance = new Maintenance(options, ctx));
    ctx.onReady = () => maintenance.opened();
    this.registry = new Registry(options, ctx);
    const blocking = new Blocking(ctx, this.registry);
    // The collaborators below call each other only once the runtime runs, so the arrows may point forward.
    this.children = new ChildLinks(ctx, {
      start: async (def, input, id, parentId) => {
        await this.starter.start(def, input, { id }, parentId);
      },
      publish: (event) => this.events.publish(event),
      current: (id) => this.instances.current(id),
      undo: async (id, reason) => {
        await (await this.instances.actor(id)).post({ type: 'undo', reason });
      },
    });
    this.instances = new Instances(ctx, this.registry, blocking, {
      publish: (event) => this.events.publish(event),
      watch: (instanceId, track, wait, inboxKept) => this.events.watch(instanceId, track, wait, inboxKept),
      timer: (instanceId, track, at) => this.events.timer(instanceId, track, at),
      finished: (record) => {
        this.results.settle(record);
        if (record.parent !== undefined) void this.children.tellParent(record);
        this.events.dropEventsOf(record).catch((e: unknown) => ctx.report('instance-failed', `the unconsumed events of ${record.id} could not be dropped`, e, record.id));
      },
      children: this.children.host,
    });
    this.results = new Results(ctx, this.registry, this.instances);
    this.events = new EventDelivery(ctx, this.instances, (instanceId, wait) => this.children.watch(instanceId, wait));
    this.recovery = new Recovery(ctx, this.registry, this.instances, this.events, this.results, blocking);
    this.operator = new OperatorApi(ctx, this.instances, this.results);
    this.migration = new InstanceMigration(ctx, this.registry, this.instances, blocking, this.recovery, this.operator);
    this.starter = new InstanceStarter(ctx, this.registry, this.instances, this.results);
    this.requests = new OperatorRequests(ctx, this.registry, this.instances, this.events, this.operator);
    this.lifecycle = new Lifecycle(ctx, this.instances, this.recovery, this.events, this.starter, this.results);
    ctx.bus.attach((input) => this.publish(input as SagaEventInput));
    ctx.bus.problems$.subscribe((p) => ctx.report('bus-problem', `bus ${p.kind}`, p.error));
    for (const wf of options.workflows ?? []) this.register(wf);
  }

  /**
   * Registers workflows (`@Workflow` classes or `defineWorkflow` definitions). Registering the same
   * definition again is harmless; another definition under a taken name is a `DUPLICATE_NAME` error.
   */
  register(...workflows: WorkflowRef[]): this {
    for (const ref of workflows) {
      this.registry.register(ref, (def) => {
        this.maintenance.registered(def.outline);
        // Instances blocked for want of this definition go on (once the runtime runs instances at all).
        if (this.recovery.started && !this.store.shared) {
          this.recovery.resumeBlocked(def.name).catch((e: unknown) => this.ctx.report('instance-failed', `blocked instances of ${def.name} could not be resumed`, e));
        }
      });
    }
    return this;
  }

  /** Resumes every unfinished instance in the store (call once when the process starts). */
  start(): Promise<void>;
  /** Starts an instance of a registered workflow with a validated input state. */
  start<S = any>(workflow: WorkflowRef<S> | string, input: S | Record<string, unknown>, options?: StartOptions): Promise<WorkflowHandle<S>>; // eslint-disable-line @typescript-eslint/no-explicit-any
  start<S>(workflow?: WorkflowRef<S> | string, input?: unknown, options: StartOptions = {}): Promise<WorkflowHandle<S> | void> {
    if (workflow === undefined) return this.recovery.recover().then(() => this.requests.start());
    return this.starter.start(workflow, input, options);
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
  schedule<S = any>(workflow: WorkflowRef<S> | string, options: ScheduleOptions<S>): Promise<ScheduleHandle> { // eslint-disable-line @typescript-eslint/no-explicit-any
    return this.starter.schedule(workflow, options);
  }

  /** A handle to an existing instance. */
  handle<S = any>(id: string): WorkflowHandle<S> { // eslint-disable-line @typescript-eslint/no-explicit-any
    return this.results.handle<S>(id);
  }

  /**
   * Rolls an instance back from outside: a parked step's rollback runs at once, an in-flight `run` sees its
   * AbortSignal fire and is compensated when it settles. Asking again while it goes down changes nothing.
   * @throws UnknownInstanceError; SagaflowError `INSTANCE_FINISHED` for a completed instance.
   */
  rollback(id: string, reason: string): Promise<void> {
    return this.operator.rollback(id, reason);
  }

  /**
   * Operator: cancels an instance — the same as {@link SagaRuntime.rollback}, with who and why recorded in the
   * history.
   */
  async cancel(id: string, reason: string, note: OperatorNote = {}): Promise<void> {
    checkInstanceId(id, 'cancel');
    checkText(reason, 'the reason', 'cancel');
    checkNote(note, 'cancel');
    await this.requests.ask({ instanceId: id, kind: 'cancel', reason, ...(note.by === undefined ? {} : { by: note.by }) });
  }

  /**
   * Operator: calls the failed compensations of a `compensation_failed` instance again (from attempt 1), then
   * goes on compensating. Resolves once the retry is recorded; use `handle(id).result()` for the outcome.
   * @throws UnknownInstanceError; InvalidOperationError `INVALID_OPERATION` when the instance is not
   * `compensation_failed`, or when nothing is left to retry (`onCompensationError: 'continue'` went past it).
   */
  retryCompensation(id: string, note: OperatorNote = {}): Promise<void> {
    return this.operatorRequest(id, 'retry-compensation', note);
  }

  /**
   * Operator: gives up on the failed compensations of a `compensation_failed` instance and goes on with the
   * earlier ones; the skip and `note` are recorded in the history.
   * @throws UnknownInstanceError; InvalidOperationError `INVALID_OPERATION` when the instance is not `compensation_failed`.
   */
  skipCompensation(id: string, note: string | OperatorNote = {}): Promise<void> {
    return this.operatorRequest(id, 'skip-compensation', typeof note === 'string' ? { reason: note } : note);
  }

  /**
   * Operator: lets a `blocked` instance go on here — its definition is registered again — with who and why recorded
   * in its history. (Registering the definition resumes blocked instances by itself; this asks for one explicitly.)
   * @throws UnknownInstanceError; InvalidOperationError `INVALID_OPERATION` when it is not blocked; InstanceBlockedError
   * when this runtime still cannot run it (the request stays, for a runtime that can).
   */
  resume(id: string, note: OperatorNote = {}): Promise<void> {
    return this.operatorRequest(id, 'resume', note);
  }

  /** Writes an operator request through the store (the one way operator acts happen) and applies it. */
  private async operatorRequest(id: string, kind: 'retry-compensation' | 'skip-compensation' | 'resume', note: OperatorNote): Promise<void> {
    checkInstanceId(id, kind);
    checkNote(note, kind);
    await this.requests.ask({ instanceId: id, kind, ...(note.by === undefined ? {} : { by: note.by }), ...(note.reason === undefined ? {} : { reason: note.reason }) });
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
  migrate(id: string, options: MigrateOptions): Promise<void> {
    return this.migration.migrate(id, options);
  }

  /**
   * Operator: {@link migrate}s every unfinished (or `compensation_failed`) instance of `workflow` at version `from`
   * to version `to`, each on its own; resolves to the ids moved and those refused, with why.
   * @example
   * const { migrated, refused } = await runtime.migrateAll({ workflow: 'order-checkout', from: 1, to: 2, by: 'ops' });
   */
  migrateAll(options: MigrateAllOptions): Promise<MigrateAllReport> {
    return this.migration.migrateAll(options);
  }

  /** The history of an instance, oldest first: every transition, retry and operator action. @throws UnknownInstanceError */
  history(id: string): Promise<HistoryEntry[]> {
    return this.operator.history(id);
  }

  /** A snapshot of an instance. @throws UnknownInstanceError */
  get<S = any>(id: string): Promise<InstanceSnapshot<S>> { // eslint-disable-line @typescript-eslint/no-explicit-any
    return this.operator.get<S>(id);
  }

  /** Summaries of instances in the store. */
  list(filter?: InstanceFilter): Promise<InstanceSummary[]> {
    return this.operator.list(filter);
  }

  /**
   * Publishes an event: delivers it to every waiting step whose wait matches (topic, match fields, and the
   * instance when the event names one), or keeps it for the retention window when none does. Resolves once
   * the resumed steps' transitions are persisted.
   * @throws InvalidEventError when the event is malformed.
   */
  publish(input: SagaEventInput): Promise<PublishReceipt> {
    return this.events.publish(input);
  }

  /**
   * Resolves once no instance has a handler call in flight or a happening queued: every instance is waiting,
   * finished, or parked on a timer. Handy in tests and before a shutdown.
   */
  idle(): Promise<void> {
    return this.lifecycle.idleUnless(() => false);
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
  stop(options: StopOptions = {}): Promise<StopReport> {
    this.maintenance.stop();
    this.requests.stop();
    return this.lifecycle.stop(options);
  }

  /**
   * Stops timers and detaches the bus at once. In-flight handler calls are aborted; their results are dropped (use
   * {@link stop} to drain first). A store the runtime made itself (the embedded default) is closed; a store you
   * passed in is yours to close.
   */
  close(): Promise<void> {
    this.maintenance.stop();
    this.requests.stop();
    return this.lifecycle.close();
  }
}
