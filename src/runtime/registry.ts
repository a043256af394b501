/**
 * The workflows a runtime runs, and what it makes for each when it is registered: the state codecs, observer
 * runner, step policies, state-change recording and rate limiters the actor uses.
 */
import { DefinitionError } from '../errors/definition-error';
import { quote } from '../errors/serialized-error';
import type { WorkflowServices } from '../engine/instance-actor';
import type { InstanceRecord } from '../engine/instance-record';
import type { ObserverSpec } from '../observers/observer';
import { ObserverRunner, type HookProblem } from '../engine/observer-runner';
import { stateChangeOptions, type StateChangeRecording } from '../observers/history-observer';
import { RateLimiter, resolveRateLimit, type ResolvedRateLimit, type SlotLimiter } from '../policies/rate-limiter';
import { NO_POLICY, resolveStepPolicy, type PolicyLookup, type StepPolicy, type StepPolicyOptions } from '../policies/step-policy';
import { StateCodec } from '../state/state-codec';
import type { BaseStep, StepClass } from '../steps/base-step';
import type { RunnableDefinition } from '../store/instance-store';
import { compileObservers } from '../workflow/compile-workflow';
import { workflowDefinition, type WorkflowRef } from '../workflow/workflow-decorator';
import type { WorkflowDefinition } from '../workflow/workflow-definition';
import { DefinitionRegistry, type Unrunnable } from './definition-registry';
import type { RuntimeContext } from './runtime-context';
import type { Resolver, SagaRuntimeOptions } from './runtime-options';

export class Registry {
  private readonly definitions = new DefinitionRegistry();
  private readonly globalObservers: readonly ObserverSpec[];
  private readonly defaults: StepPolicyOptions;
  private readonly resolver: Resolver;
  private readonly resolved = new Map<unknown, unknown>();
  /** Rate limiters: the shared ones by name, and steps' own ones by `step:<name>`. */
  private readonly limiters = new Map<string, SlotLimiter>();

  constructor(
    options: SagaRuntimeOptions,
    private readonly ctx: RuntimeContext,
  ) {
    this.globalObservers = options.observers ?? [];
    this.defaults = options.defaults ?? {};
    resolveStepPolicy({}, this.defaults, 'runtime defaults');
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
    for (const [name, spec] of Object.entries(options.rateLimiters ?? {})) {
      this.limiters.set(name, this.limiter(name, resolveRateLimit(spec, `rateLimiters.${name}`)));
    }
  }

  /**
   * Registers a workflow and the workflows its child steps start (those first: a child's name may not be taken by
   * another definition); `added` is told of each definition that was new.
   * @throws DefinitionError `DUPLICATE_NAME`
   */
  register(ref: WorkflowRef, added: (def: WorkflowDefinition) => void): void {
    const def = workflowDefinition(ref);
    for (const child of def.children) this.register(child, added);
    const isNew = this.definitions.add(def, (d) => {
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
    if (isNew) added(def);
  }

  /** The services of `name` at `version`, or its newest. @throws UnknownWorkflowError */
  services(name: string, where: string, version?: number): WorkflowServices {
    return this.definitions.get(name, version, where);
  }

  /** The services a record runs on, or why none here can run it. */
  forRecord(record: InstanceRecord): { readonly services: WorkflowServices } | { readonly unrunnable: Unrunnable } {
    return this.definitions.forRecord(record);
  }

  /** The definitions this runtime runs, as a shared store records them. */
  runnable(): RunnableDefinition[] {
    return this.definitions.runnable();
  }

  /** A step instance, made by the resolver. */
  resolveStep(cls: StepClass): BaseStep<unknown> {
    return this.resolver(cls as unknown as new () => BaseStep<unknown>);
  }

  private withGlobalObservers(def: WorkflowDefinition): WorkflowDefinition {
    return { ...def, observers: [...def.observers, ...compileObservers(this.globalObservers, 'runtime', def.observers)] };
  }

  private stateChangesOf(def: WorkflowDefinition): { stateChanges?: StateChangeRecording } {
    const options = stateChangeOptions(def.observers.map((o) => o.observer));
    return options === undefined ? {} : { stateChanges: options };
  }

  /** The rate limiter of each step of `def` that has one. @throws DefinitionError `UNKNOWN_RATE_LIMITER` */
  private limitersOf(def: WorkflowDefinition): Map<string, SlotLimiter> {
    const out = new Map<string, SlotLimiter>();
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
        own = this.limiter(`step:${name}`, resolveRateLimit(limit, `step ${quote(name)}: rateLimit`));
        this.limiters.set(own.name, own);
      }
      out.set(name, own);
    }
    return out;
  }

  /**
   * A rate limiter: booked through the store when several workers share it (so the limit holds across all of
   * them), else kept in this process.
   */
  private limiter(name: string, spec: ResolvedRateLimit): SlotLimiter {
    const store = this.ctx.store;
    if (store.shared !== true || store.reserveSlot === undefined) return new RateLimiter(name, spec);
    const reserveSlot = store.reserveSlot.bind(store);
    return { name, spec, reserve: (key, now) => reserveSlot(name, spec, key, now) };
  }

  private policies(def: WorkflowDefinition): PolicyLookup {
    const table = new Map<string, Record<'up' | 'down', StepPolicy>>();
    for (const [name, step] of def.steps) table.set(name, resolveStepPolicy(step.meta.options, this.defaults, `step ${quote(name)}`));
    return (step, direction) => table.get(step)?.[direction] ?? NO_POLICY;
  }

  private reportHook(p: HookProblem): void {
    this.ctx.report('observer-failed', `observer ${p.observer} ${p.hook} failed at ${p.flow.stepName ?? p.flow.workflow}`, p.error, p.flow.instanceId);
  }
}
