// The handler calls of one instance: an `invoke` effect becomes a call (once its rate limiter admits it) that runs
// concurrently with the others and posts its result back to the actor as a `settled` happening.
import { SagaflowError } from '../../errors/sagaflow-error';
import { serializeError, serializeThrown, quote } from '../../errors/serialized-error';
import type { BaseStep } from '../../steps/base-step';
import type { StepContext } from '../../steps/step-context';
import { ChildStep } from '../../workflow/child';
import { childSpecOf } from '../../workflow/child-spec';
import type { Effect, Outcome } from '../decide';
import { flowView } from '../flow-view';
import type { InstanceActor } from '../instance-actor';
import { trackOf, type TrackRef } from '../instance-record';
import { LazyAbort } from '../lazy-abort';
import { invokeStep } from '../step-invoker';
import type { Maybe } from '../../core/maybe';
import { directionOf } from '../../core/flow-fields';
import type { ActorHost, WorkflowServices } from './actor-host';

/** The key of a track in maps by track (the main line has no branch key). */
export function trackKey(ref: TrackRef): string {
  return ref ?? '\u0000main';
}

/** True for the abort of every call when the runtime closes or loses the instance (see InstanceActor.abortAll). */
function isRuntimeStop(reason: unknown): boolean {
  return reason instanceof SagaflowError && reason.code === 'RUNTIME_CLOSED';
}

/** The fields of a {@link StepContext} other than its signal. */
type ContextFields = Omit<StepContext, 'signal' | 'group' | 'branch'>;

/**
 * A handler call's {@link StepContext}: its fields are own data properties; its signal is made only when read, by a
 * getter (an object literal with an accessor is made on V8's slow path, and a context is made per call). The getter
 * is an own enumerable property, one descriptor shared by every context, so `{ ...ctx }` keeps the signal as a
 * context made as a literal did (a getter on the prototype would be left out).
 */
class CallContext implements StepContext {
  static readonly #signal: PropertyDescriptor = {
    enumerable: true,
    get(this: CallContext): AbortSignal {
      return this.#abort.signal;
    },
  };
  readonly #abort: LazyAbort;
  declare readonly signal: AbortSignal;
  readonly instanceId: string;
  readonly workflow: string;
  readonly stepName: string;
  readonly direction: StepContext['direction'];
  readonly stepFunc: StepContext['stepFunc'];
  readonly attempt: number;
  readonly runKey: string;
  readonly idempotencyKey: string;
  readonly idempotencyKeyBase: string;
  readonly clock: StepContext['clock'];
  readonly logger: StepContext['logger'];
  readonly publish: StepContext['publish'];
  declare group?: string;
  declare branch?: string;

  constructor(abort: LazyAbort, fields: ContextFields) {
    this.#abort = abort;
    Object.defineProperty(this, 'signal', CallContext.#signal);
    this.instanceId = fields.instanceId;
    this.workflow = fields.workflow;
    this.stepName = fields.stepName;
    this.direction = fields.direction;
    this.stepFunc = fields.stepFunc;
    this.attempt = fields.attempt;
    this.runKey = fields.runKey;
    this.idempotencyKey = fields.idempotencyKey;
    this.idempotencyKeyBase = fields.idempotencyKeyBase;
    this.clock = fields.clock;
    this.logger = fields.logger;
    this.publish = fields.publish;
  }
}

/** The handler calls an actor has in flight, one per track at most. */
export class StepCalls {
  /** The call in flight of each track, with its token; a newer call of a track aborts the older one. */
  readonly inFlight = new Map<string, { readonly abort: LazyAbort; readonly token: number }>();

  constructor(
    private readonly host: ActorHost,
    private readonly services: WorkflowServices,
    private readonly actor: InstanceActor,
  ) {}

  /**
   * Starts the call an `invoke` effect asks for; its result is posted to the actor. A `run` of a rate-limited step
   * asks its limiter for a slot first; with none free now, the track is parked (persisted) until the booked slot and
   * the call is made then. A limiter shared through the store answers later: meanwhile the call counts as in flight
   * (the actor is not idle, and a newer call of the track or an abort cancels it).
   */
  invoke(effect: Extract<Effect, { type: 'invoke' }>): void {
    const limiter = effect.func === 'run' ? this.services.limiters.get(effect.step) : undefined;
    if (limiter === undefined) return this.start(effect);
    const now = this.host.clock.now();
    const key = trackKey(effect.track);
    const at = limiter.reserve(`${this.actor.record.id}\u0000${key}`, now);
    if (typeof at === 'number') return this.admit(effect, limiter.name, at, now);
    const asking = this.claim(key, effect.token);
    const settle = (slot: number | undefined, error?: unknown): void => {
      if (this.inFlight.get(key) !== asking) return;
      this.inFlight.delete(key);
      if (asking.abort.isAborted && isRuntimeStop(asking.abort.reason)) {
        // The runtime closed or lost the instance: whoever runs it next makes the call.
        if (this.actor.idle) this.host.idle(this.actor);
        return;
      }
      // Told to stop while its limiter was answering: the call is parked instead of made, and `decide` settles a
      // parked track it told to abort as a step that never started (a superseded call's old token is ignored).
      if (asking.abort.isAborted) return this.park(effect, limiter.name, now);
      if (slot !== undefined) return this.admit(effect, limiter.name, slot, now);
      // The store could not book a slot: report it and ask again a window later (the track stays parked meanwhile).
      this.host.reportFailure(this.actor.record.id, `the rate limiter ${limiter.name} of ${effect.step} could not book a slot in the store; asking again later`, error);
      this.admit(effect, limiter.name, now + limiter.spec.perMs, now);
    };
    at.then(
      (slot) => settle(slot),
      (error: unknown) => settle(undefined, error),
    );
  }

  /** Makes `token` the track's call in flight, aborting the older one it supersedes. */
  private claim(key: string, token: number): { readonly abort: LazyAbort; readonly token: number } {
    this.inFlight.get(key)?.abort.abort(new SagaflowError('SUPERSEDED', 'a newer call of this track started'));
    const call = { abort: new LazyAbort(), token };
    this.inFlight.set(key, call);
    return call;
  }

  /** Calls the step when its slot is now, else parks the track until the slot. */
  private admit(effect: Extract<Effect, { type: 'invoke' }>, limiter: string, at: number, now: number): void {
    if (at <= now) return this.start(effect);
    this.park(effect, limiter, at);
  }

  /** Parks the track until `until` for its rate limiter (a `throttled` happening). */
  private park(effect: Extract<Effect, { type: 'invoke' }>, limiter: string, until: number): void {
    this.actor.enqueue({ type: 'throttled', track: effect.track, token: effect.token, until, limiter }, (error) =>
      this.host.reportFailure(this.actor.record.id, `parking ${effect.step} for its rate limit failed`, error),
    );
  }

  private start(effect: Extract<Effect, { type: 'invoke' }>): void {
    const { def, observers, policy } = this.services;
    const compiled = def.steps.get(effect.step);
    const key = trackKey(effect.track);
    const call = this.claim(key, effect.token);
    const controller = call.abort;
    const record = this.actor.record;
    const view = flowView(record, effect.track);
    const track = trackOf(record, effect.track);
    // A forEach item is its group's branch whatever the group is doing: running, or unwound by a later failure.
    const groupNode = record.group === null ? undefined : def.nodes[record.group.index];
    const item = effect.track !== null && groupNode?.kind === 'group' && groupNode.each !== undefined;
    const codec = item ? this.services.itemCodec : this.services.codec;
    const direction = directionOf(effect.func);
    const pass = track?.flow.pass ?? 0;
    const runKey = `${record.id}:${effect.step}${item ? `[${effect.track ?? ''}]` : ''}${pass > 0 ? `#${pass + 1}` : ''}`;
    const keyBase = `${runKey}:${direction}`;
    const ctx = new CallContext(controller, {
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
      publish: (event) => this.host.publish(event),
    });
    if (view.group !== undefined) ctx.group = view.group;
    if (view.branch !== undefined) ctx.branch = view.branch;
    const lost = (error: unknown): void => {
      if (this.inFlight.get(key) === call) this.inFlight.delete(key);
      this.host.reportFailure(record.id, `recording the result of ${effect.step} ${effect.func} failed`, error);
      if (this.actor.idle) this.host.idle(this.actor);
    };
    const settle = (outcome: Outcome): void => {
      if (this.inFlight.get(key) === call) this.inFlight.delete(key);
      // Queued, not awaited: a call that answered at once is applied in the same drain of the actor as the one
      // that started it, without a promise per step.
      this.actor.enqueue({ type: 'settled', track: effect.track, token: effect.token, outcome }, lost);
    };
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
        const child = childSpecOf(compiled.cls);
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
    const outcome: Maybe<Outcome> =
      unavailable ??
      invokeStep({
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
      });
    if (!(outcome instanceof Promise)) return settle(outcome);
    // invokeStep's promise never rejects (every failure is an outcome); the guard keeps a defect from being lost.
    outcome.then(settle, lost);
  }
}
