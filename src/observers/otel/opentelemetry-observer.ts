import { checkBoolean, checkOptions } from '../../input/known-keys';
import {
  context,
  isSpanContextValid,
  metrics,
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  trace,
  type Attributes,
  type Context,
  type Counter,
  type HrTime,
  type Link,
  type MeterProvider,
  type Span,
  type Tracer,
} from '@opentelemetry/api';
import type { InstanceStatus, StepFunc } from '../../core/flow-fields';
import type { FlowView, Observer } from '../observer';
import { SagaAttributes as A, SagaMetrics, SagaSpanEvents } from './saga-telemetry-names';
import { sagaRootSpanContext } from './saga-trace-ids';
import {
  SAGAFLOW_INSTRUMENTATION_SCOPE,
  type OpenTelemetryObserverOptions,
  OTEL_OPTION_KEYS,
  type StepRef,
  type Instruments,
  type OpenCall,
  type OpenInstance,
  hrTime,
  callKey,
  isResumeHandler,
  spanName,
  errorAttributes,
} from './observer-parts';

/**
 * Traces and measures sagas through the OpenTelemetry API (`@opentelemetry/api` only: bring your own SDK, set up
 * as usual, or pass providers in the options).
 *
 * **Spans.** One span per instance, `saga <workflow>`, with a child span per step call, `<step> run` or
 * `<step> rollback`, and a span per parallel group, `<group> run` / `<group> rollback`, under which the group's
 * branch steps nest. Step spans start in `handleBeforeStep` and end in `handleAfterStep`; they carry
 * `sagaflow.instance_id`, `sagaflow.workflow`, `sagaflow.step`, `sagaflow.step_index`, `sagaflow.direction`,
 * `sagaflow.handler`, `sagaflow.attempt` (each retry is its own span, with `sagaflow.retry_delay_ms`),
 * `sagaflow.group` / `sagaflow.branch` inside a group, and `sagaflow.result`. A call that resolved with an error gets
 * status ERROR and an `exception` event with the error code (the after-hook sees only the code; the message is
 * recorded on the instance span when the rollback starts). A step that continued keeps its span open while it is
 * parked; the span gets a `resumed` event with `sagaflow.parked_ms` and ends when `runHandleInfo` resolves. The
 * instance span gets a `rollback started` event and an `exception` event (code, name, message) when the direction
 * turns down, and ends when the instance finishes, with status ERROR unless it completed.
 *
 * **One trace per instance, in every process.** The trace id is derived from the instance id
 * ({@link sagaTraceId}: a SHA-256 prefix), and every instance span is the child of a virtual root span whose id is
 * derived the same way ({@link sagaRootSpanContext}). Nothing is stored with the instance (the state is the
 * user's), yet a process that picks an instance up after a restart, or another worker resuming a continued step,
 * puts its spans in the same trace. Each process that works on an instance opens its own instance span (those
 * opened without seeing `handleInit` carry `sagaflow.recovered: true`), so a trace shows one `saga <workflow>` span
 * per process segment, all under the same root. The root itself is never exported (no single process could time
 * it), so trace viewers show the instance spans as children of a missing root. The trace id is a pure function of
 * the instance id: a saga restarted with the same id shares its trace. The alternative — a random trace whose
 * traceparent is stored with the instance — would need a place in the persisted record that observers do not have.
 *
 * **Your spans inside a step.** An observer cannot wrap the handler call, so the context active while `run()`
 * executes is whatever the runtime's async chain carries (often the caller of `runtime.start` or `publish`). To
 * nest your own spans under the step span, wrap the work with {@link OpenTelemetryObserver.withStepContext} (or
 * `context.with(observer.stepContext(ctx), …)`), passing the `StepContext` the handler received.
 * {@link OpenTelemetryObserver.activeStepSpan} returns the open step span to add attributes or events to.
 *
 * **Metrics.** Counters `sagaflow.steps` (attributes `sagaflow.workflow`, `sagaflow.step`, `sagaflow.direction`,
 * `sagaflow.outcome` = `ok` | `error` | `goto`, and `sagaflow.continued` for continued steps),
 * `sagaflow.instances.started`, `.completed`, `.rolled_back`, `.compensation_failed` (by `sagaflow.workflow`), and
 * the histogram `sagaflow.step.duration` in ms (same attributes as `sagaflow.steps`; for a continued step it spans
 * the wait; calls whose start this process did not see are not measured). Instance ids are never metric attributes.
 *
 * Spans of a call that never got its after-hook (a before-hook vetoed by another observer, a wait cancelled by a
 * rollback) are ended with `sagaflow.interrupted: true` when the instance finishes; call
 * {@link OpenTelemetryObserver.endOpenSpans} when the runtime stops so the spans of parked instances are exported.
 * A veto by a later observer's after-hook is not visible to this one: the span shows what the step returned.
 *
 * @example
 * import { context, trace } from '@opentelemetry/api';
 * import { OpenTelemetryObserver } from 'sagaflow/opentelemetry';
 *
 * const otel = new OpenTelemetryObserver(); // global providers, set up by your SDK
 * const runtime = new SagaRuntime({ observers: [otel] });
 *
 * class Charge extends BaseStep<Order> {
 *   async run(state: Order, ctx: StepContext) {
 *     // spans started in here are children of the "charge run" span
 *     return otel.withStepContext(ctx, async () => ok({ ...state, receipt: await payments.charge(state.total) }));
 *   }
 * }
 */
export class OpenTelemetryObserver implements Observer<unknown> {
  private readonly tracer: Tracer;
  private readonly now: () => number;
  private readonly sample: (instanceId: string, workflow: string) => boolean;
  private readonly linkStartingSpan: boolean;
  private readonly meterProvider: MeterProvider | undefined;
  private made: Instruments | undefined;
  private readonly instances = new Map<string, OpenInstance>();

  constructor(options: OpenTelemetryObserverOptions = {}) {
    checkOptions(options, OTEL_OPTION_KEYS, 'new OpenTelemetryObserver');
    checkBoolean(options.linkStartingSpan, 'linkStartingSpan', 'new OpenTelemetryObserver');
    this.tracer = (options.tracerProvider ?? trace.getTracerProvider()).getTracer(SAGAFLOW_INSTRUMENTATION_SCOPE);
    this.meterProvider = options.meterProvider;
    this.now = options.now ?? Date.now;
    this.sample = options.sample ?? (() => true);
    this.linkStartingSpan = options.linkStartingSpan ?? true;
  }

  /**
   * The instruments, made on first use: the global tracer provider is a proxy that follows a later SDK
   * registration, the global meter provider is not, so an observer built before the SDK starts still records.
   */
  private get instruments(): Instruments {
    if (this.made !== undefined) return this.made;
    const meter = (this.meterProvider ?? metrics.getMeterProvider()).getMeter(SAGAFLOW_INSTRUMENTATION_SCOPE);
    const counter = (name: string, description: string, unit: string): Counter => meter.createCounter(name, { description, unit });
    this.made = {
      steps: counter(SagaMetrics.Steps, 'Step handler calls that resolved', '{call}'),
      stepDuration: meter.createHistogram(SagaMetrics.StepDuration, {
        description: 'Time from the before-hook to the after-hook of a step call (for a continued step, including the wait)',
        unit: 'ms',
      }),
      started: counter(SagaMetrics.InstancesStarted, 'Saga instances started', '{instance}'),
      completed: counter(SagaMetrics.InstancesCompleted, 'Saga instances that completed', '{instance}'),
      rolledBack: counter(SagaMetrics.InstancesRolledBack, 'Saga instances that rolled back', '{instance}'),
      compensationFailed: counter(SagaMetrics.InstancesCompensationFailed, 'Saga instances that stopped because a compensation failed', '{instance}'),
    };
    return this.made;
  }

  // ---------------------------------------------------------------------------------------------------------
  // Helpers for step code

  /**
   * The context to run your own instrumented code in, inside a step handler: the active context with the step's
   * span set. Pass the handler's `StepContext`. When this process has no span for the call (the step resumed in
   * `runHandleInfo` after a restart), it opens one (marked `sagaflow.recovered`), which the after-hook ends. From a
   * `*HandleInfo` handler it also records the `resumed` event at once, which makes `sagaflow.parked_ms` exact to
   * the handler's start.
   *
   * @example
   * await context.with(otel.stepContext(ctx), () => tracer.startActiveSpan('reserve stock', async (span) => { … }));
   */
  stepContext(ref: StepRef): Context {
    const instance = this.instance(ref, false);
    if (ref.stepName === null) return trace.setSpan(context.active(), instance.span);
    const key = callKey(ref);
    let call = instance.calls.get(key);
    if (call === undefined) instance.calls.set(key, (call = this.openCall(instance, ref, true)));
    if (isResumeHandler(ref.stepFunc)) this.markResumed(call, ref.stepFunc);
    return trace.setSpan(context.active(), call.span);
  }

  /**
   * Runs `fn` with {@link OpenTelemetryObserver.stepContext} active and returns what it returns.
   *
   * @example
   * return otel.withStepContext(ctx, async () => ok({ ...state, receipt: await payments.charge(state.total) }));
   */
  withStepContext<T>(ref: StepRef, fn: () => T): T {
    return context.with(this.stepContext(ref), fn);
  }

  /**
   * Makes the step span the active context while the handler runs (the runtime calls this around every handler
   * call), so spans the handler starts — yours, or an instrumented client's — nest under it with no helper.
   */
  wrapStep<T>(flow: FlowView, call: () => Promise<T>): Promise<T> {
    return context.with(this.stepContext(flow), call);
  }

  /**
   * The open span of a step call in this process, or undefined (never opens one).
   *
   * @example
   * otel.activeStepSpan(ctx)?.setAttribute('payment.provider', 'acme');
   */
  activeStepSpan(ref: StepRef): Span | undefined {
    return this.instances.get(ref.instanceId)?.calls.get(callKey(ref))?.span;
  }

  /**
   * Ends every span this observer holds open (step calls parked on a `continue`, instance spans of unfinished
   * instances), marked `sagaflow.interrupted: true`, and forgets them. Call it when the runtime stops, before the
   * SDK flushes, so this process's part of each trace is exported; a process that later resumes an instance opens
   * new spans in the same trace.
   *
   * @example
   * await runtime.close();
   * otel.endOpenSpans();
   * await sdk.shutdown();
   */
  endOpenSpans(): void {
    const at = hrTime(this.now());
    for (const instance of this.instances.values()) {
      this.interruptChildren(instance, at);
      instance.span.setAttribute(A.Interrupted, true);
      instance.span.end(at);
    }
    this.instances.clear();
  }

  /** How many spans are open (instances, groups and step calls), for tests and leak checks. */
  get openSpans(): number {
    let n = 0;
    for (const instance of this.instances.values()) n += 1 + instance.calls.size + instance.groups.size;
    return n;
  }

  // ---------------------------------------------------------------------------------------------------------
  // Hooks

  handleInit(_state: unknown, flow: FlowView): void {
    this.instance(flow, true);
    this.instruments.started.add(1, { [A.Workflow]: flow.workflow });
  }

  handleBeforeStep(_state: unknown, flow: FlowView): void {
    const instance = this.instance(flow, false);
    const key = callKey(flow);
    const stale = instance.calls.get(key);
    if (stale !== undefined) this.interrupt(stale.span, hrTime(this.now()));
    instance.calls.set(key, this.openCall(instance, flow, false));
  }

  handleAfterStep(_state: unknown, flow: FlowView): void {
    const instance = this.instance(flow, false);
    const key = callKey(flow);
    const call = instance.calls.get(key) ?? this.openCall(instance, flow, true);
    instance.calls.delete(key);
    const continued = isResumeHandler(flow.stepFunc);
    if (continued) this.markResumed(call, flow.stepFunc);
    const now = this.now();
    const at = hrTime(now);
    const outcome = flow.lastResult?.kind ?? 'ok';
    const { span } = call;
    span.setAttribute(A.Result, outcome);
    if (continued) span.setAttribute(A.Continued, true);
    if (outcome === 'error') {
      const code = flow.lastResult?.code ?? 'ERROR';
      span.setAttribute(A.ErrorCode, code);
      span.addEvent(
        SagaSpanEvents.Exception,
        { 'exception.type': code, 'exception.message': `step ${flow.stepName ?? ''} ${flow.stepFunc} failed with ${code}`, [A.ErrorCode]: code },
        at,
      );
      span.setStatus({ code: SpanStatusCode.ERROR, message: code });
    }
    span.end(at);

    const measured: Attributes = {
      [A.Workflow]: flow.workflow,
      [A.Step]: flow.stepName ?? '',
      [A.Direction]: flow.direction,
      [A.Outcome]: outcome,
      ...(continued ? { [A.Continued]: true } : {}),
    };
    this.instruments.steps.add(1, measured);
    if (!call.recovered) this.instruments.stepDuration.record(now - call.start, measured);
  }

  handleStartRollback(_state: unknown, flow: FlowView): void {
    const instance = this.instance(flow, false);
    const at = hrTime(this.now());
    const reason = flow.errorReason;
    const attributes: Attributes = { ...(reason === null ? {} : errorAttributes(reason)), ...(flow.stepName === null ? {} : { [A.Step]: flow.stepName }) };
    instance.span.addEvent(SagaSpanEvents.RollbackStarted, attributes, at);
    if (reason !== null) {
      // `ERROR` is the code of errors that had none: their class name says more.
      const type = reason.code === 'ERROR' ? reason.name : reason.code;
      instance.span.addEvent(SagaSpanEvents.Exception, { 'exception.type': type, 'exception.message': reason.message, ...attributes }, at);
    }
  }

  handleWorkflowSuccess(_state: unknown, flow: FlowView): void {
    this.finish(flow, 'completed', this.instruments.completed, null);
  }

  handleWorkflowFailure(_state: unknown, flow: FlowView): void {
    const reason = flow.errorReason;
    this.finish(flow, 'rolled_back', this.instruments.rolledBack, `rolled back: ${reason === null ? 'no reason' : `${reason.code}: ${reason.message}`}`);
  }

  handleCompensationFailed(_state: unknown, flow: FlowView): void {
    const last = flow.lastResult;
    const where = last?.kind === 'error' ? ` (${last.step} ${last.func}: ${last.code ?? 'ERROR'})` : '';
    this.finish(flow, 'compensation_failed', this.instruments.compensationFailed, `a compensation failed${where}`);
  }

  handleGroupStart(_state: unknown, flow: FlowView): void {
    const instance = this.instance(flow, false);
    const name = flow.group ?? flow.stepName ?? '';
    const at = hrTime(this.now());
    const stale = instance.groups.get(name);
    if (stale !== undefined) this.interrupt(stale, at);
    const span = this.tracer.startSpan(
      spanName(name, flow.direction),
      {
        kind: SpanKind.INTERNAL,
        startTime: at,
        attributes: {
          [A.InstanceId]: flow.instanceId,
          [A.Workflow]: flow.workflow,
          [A.NodeKind]: 'group',
          [A.Group]: name,
          [A.StepIndex]: flow.stepIndex,
          [A.Direction]: flow.direction,
        },
      },
      instance.context,
    );
    instance.groups.set(name, span);
  }

  handleGroupEnd(_state: unknown, flow: FlowView): void {
    const instance = this.instances.get(flow.instanceId);
    const name = flow.group ?? flow.stepName ?? '';
    const span = instance?.groups.get(name);
    if (instance === undefined || span === undefined) return;
    instance.groups.delete(name);
    span.end(hrTime(this.now()));
  }

  // ---------------------------------------------------------------------------------------------------------
  // Internals

  /** The open instance span, or a new one (under the instance's deterministic root). */
  private instance(ref: Pick<StepRef, 'instanceId' | 'workflow'>, starting: boolean): OpenInstance {
    const known = this.instances.get(ref.instanceId);
    if (known !== undefined) return known;
    const root = trace.setSpanContext(ROOT_CONTEXT, sagaRootSpanContext(ref.instanceId, this.sample(ref.instanceId, ref.workflow)));
    const links: Link[] = [];
    if (starting && this.linkStartingSpan) {
      const caller = trace.getSpanContext(context.active());
      if (caller !== undefined && isSpanContextValid(caller)) links.push({ context: caller, attributes: { 'sagaflow.link': 'started_by' } });
    }
    const span = this.tracer.startSpan(
      `saga ${ref.workflow}`,
      {
        kind: SpanKind.INTERNAL,
        startTime: hrTime(this.now()),
        attributes: { [A.InstanceId]: ref.instanceId, [A.Workflow]: ref.workflow, ...(starting ? {} : { [A.Recovered]: true }) },
        links,
      },
      root,
    );
    const opened: OpenInstance = { span, context: trace.setSpan(root, span), calls: new Map(), groups: new Map() };
    this.instances.set(ref.instanceId, opened);
    return opened;
  }

  private openCall(instance: OpenInstance, ref: StepRef | FlowView, recovered: boolean): OpenCall {
    const start = this.now();
    const group = ref.group === undefined ? undefined : instance.groups.get(ref.group);
    const parent = group === undefined ? instance.context : trace.setSpan(instance.context, group);
    const attributes: Attributes = {
      [A.InstanceId]: ref.instanceId,
      [A.Workflow]: ref.workflow,
      [A.NodeKind]: 'step',
      [A.Step]: ref.stepName ?? '',
      [A.Direction]: ref.direction,
    };
    if ('stepIndex' in ref) attributes[A.StepIndex] = ref.stepIndex;
    if (ref.stepFunc !== undefined) attributes[A.Handler] = ref.stepFunc;
    if (ref.attempt !== undefined) attributes[A.Attempt] = ref.attempt;
    if ('retryDelay' in ref && ref.retryDelay !== null) attributes[A.RetryDelayMs] = ref.retryDelay;
    if (ref.group !== undefined) attributes[A.Group] = ref.group;
    if (ref.branch !== undefined) attributes[A.Branch] = ref.branch;
    if (recovered) attributes[A.Recovered] = true;
    const span = this.tracer.startSpan(spanName(ref.stepName ?? '', ref.direction), { kind: SpanKind.INTERNAL, startTime: hrTime(start), attributes }, parent);
    return { span, start, recovered, resumed: false };
  }

  /** Adds the `resumed` event once per call, with the parked time when this process saw the call start. */
  private markResumed(call: OpenCall, func: StepFunc | undefined): void {
    if (call.resumed) return;
    call.resumed = true;
    const now = this.now();
    const attributes: Attributes = func === undefined ? {} : { [A.Handler]: func };
    if (!call.recovered) attributes[A.ParkedMs] = now - call.start;
    call.span.addEvent(SagaSpanEvents.Resumed, attributes, hrTime(now));
  }

  private finish(flow: FlowView, status: InstanceStatus, counter: Counter, failure: string | null): void {
    const instance = this.instance(flow, false);
    const at = hrTime(this.now());
    this.interruptChildren(instance, at);
    instance.span.setAttribute(A.Status, status);
    if (failure !== null) instance.span.setStatus({ code: SpanStatusCode.ERROR, message: failure });
    instance.span.end(at);
    this.instances.delete(flow.instanceId);
    counter.add(1, { [A.Workflow]: flow.workflow });
  }

  private interruptChildren(instance: OpenInstance, at: HrTime): void {
    for (const call of instance.calls.values()) this.interrupt(call.span, at);
    for (const group of instance.groups.values()) this.interrupt(group, at);
    instance.calls.clear();
    instance.groups.clear();
  }

  private interrupt(span: Span, at: HrTime): void {
    span.setAttribute(A.Interrupted, true);
    span.end(at);
  }
}
