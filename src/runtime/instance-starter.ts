/**
 * Starting instances: choosing the definition and version, checking the input, `handleInit` observers, the first
 * save — and cron schedules, which start instances at each tick.
 */
import { flowView } from '../engine/flow-view';
import { InstanceActor } from '../engine/instance-actor';
import { newRecord } from '../engine/instance-record';
import { SagaflowError } from '../errors/sagaflow-error';
import { quote, serializeThrown, type SerializedError } from '../errors/serialized-error';
import { BadStateError, StateNotSerializableError } from '../errors/state-errors';
import { checkOptions } from '../input/known-keys';
import { Scheduler } from '../schedule/scheduler';
import type { ScheduleHandle, ScheduleOptions } from '../schedule/schedule-options';
import { workflowDefinition, type WorkflowRef } from '../workflow/workflow-decorator';
import type { Instances } from './instances';
import type { Registry } from './registry';
import type { Results } from './results';
import type { RuntimeContext } from './runtime-context';
import { timeOrderedId } from '../core/time-ordered-id';
import { START_OPTION_KEYS, type StartOptions, type WorkflowHandle } from './runtime-options';

export class InstanceStarter {
  private scheduler: Scheduler | null = null;

  constructor(
    private readonly ctx: RuntimeContext,
    private readonly registry: Registry,
    private readonly instances: Instances,
    private readonly results: Results,
  ) {}

  /** Starts an instance (or returns the existing one with that id), linked to `parent` when given. */
  async start<S>(workflow: WorkflowRef<S> | string, input: unknown, options: StartOptions, parent?: string): Promise<WorkflowHandle<S>> {
    const ctx = this.ctx;
    ctx.assertOpen('start an instance');
    await ctx.ready();
    checkOptions(options, START_OPTION_KEYS, 'start');
    if (options.version !== undefined && (typeof options.version !== 'number' || !Number.isSafeInteger(options.version) || options.version < 1)) {
      throw new SagaflowError('BAD_OPTION', `start: version must be a positive whole number, got ${quote(options.version, 80)}`);
    }
    // A definition starts on its own version; a name on the newest registered one (or the one asked for).
    const chosen = typeof workflow === 'string' ? { name: workflow, version: options.version } : ((d) => ({ name: d.name, version: options.version ?? d.version }))(workflowDefinition(workflow));
    const services = this.registry.services(chosen.name, 'start', chosen.version);
    const id = options.id ?? timeOrderedId();
    if (typeof id !== 'string' || id.length === 0) {
      throw new SagaflowError('BAD_OPTION', `start: the instance id must be a non-empty string, got ${quote(id, 80)}`);
    }
    // A given id may exist already; a fresh random one cannot (and create would refuse it anyway): no read for it.
    if (this.instances.live(id) !== undefined || (options.id !== undefined && (await ctx.store.load(id)) !== undefined)) return this.results.handle<S>(id);
    const { codec, observers, def } = services;
    // Shape, then JSON, then class-validator: each with its own code, nothing stored when one fails.
    let state = codec.dehydrate(input, 'given to start');
    await codec.assertValid(input, 'at start');
    const now = ctx.clock.now();
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
    const actor = await InstanceActor.create(this.instances.host, services, record, veto === null ? { type: 'begin' } : { type: 'initVetoed', error: veto });
    if (actor !== undefined) this.instances.adopt(actor);
    return this.results.handle<S>(id);
  }

  /** Starts an instance of `workflow` at every tick of a cron expression. */
  async schedule<S>(workflow: WorkflowRef<S> | string, options: ScheduleOptions<S>): Promise<ScheduleHandle> {
    const ctx = this.ctx;
    ctx.assertOpen('schedule a workflow');
    const name = this.registry.services(typeof workflow === 'string' ? workflow : workflowDefinition(workflow).name, 'schedule').def.name;
    this.scheduler ??= new Scheduler({
      clock: ctx.clock,
      store: ctx.store,
      logger: ctx.logger,
      ready: () => ctx.ready(),
      isOpen: () => ctx.open,
      start: (wf, input, id) => this.start(wf, input, { id }),
      report: (message, error, instanceId) => ctx.report('instance-failed', message, error, instanceId),
    });
    return this.scheduler.add(name, options);
  }

  /** Cancels every schedule (the runtime closed). */
  cancelSchedules(): void {
    this.scheduler?.cancelAll();
  }
}
