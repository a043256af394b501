import { context, metrics, SpanStatusCode, trace, type Attributes, type Tracer } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import {
  AggregationTemporality,
  InMemoryMetricExporter,
  MeterProvider,
  PeriodicExportingMetricReader,
  type DataPoint,
  type Histogram,
  type MetricData,
} from '@opentelemetry/sdk-metrics';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { defineWorkflow, error as fail, ok, parallel, type Observer, type SagaRuntimeOptions } from '../src';
import { OpenTelemetryObserver, sagaRootSpanId, sagaTraceId, type OpenTelemetryObserverOptions } from '../src/observers/otel';
import { SimulatedClock } from '../src/testing';
import { fails, recordingStep, throws, waitsFor, type Log, type TestState } from './support/steps';
import { testRuntime } from './support/runtime';

/** One "process" worth of OpenTelemetry SDK: a tracer provider and a meter provider exporting into memory. */
class Telemetry {
  readonly spanExporter = new InMemorySpanExporter();
  readonly tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(this.spanExporter)] });
  readonly metricExporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
  readonly reader = new PeriodicExportingMetricReader({ exporter: this.metricExporter, exportIntervalMillis: 3_600_000 });
  readonly meterProvider = new MeterProvider({ readers: [this.reader] });
  /** A tracer for "user code" spans. */
  readonly userTracer: Tracer = this.tracerProvider.getTracer('app');

  observer(options: OpenTelemetryObserverOptions = {}): OpenTelemetryObserver {
    return new OpenTelemetryObserver({ tracerProvider: this.tracerProvider, meterProvider: this.meterProvider, ...options });
  }

  /** Finished spans, in the order they ended. */
  get spans(): ReadableSpan[] {
    return this.spanExporter.getFinishedSpans();
  }

  span(name: string): ReadableSpan {
    const found = this.spans.filter((s) => s.name === name);
    if (found.length !== 1) throw new Error(`expected one span ${JSON.stringify(name)}, found ${found.length} among ${this.spans.map((s) => s.name).join(', ')}`);
    return found[0]!;
  }

  /** The metric of that name from a fresh collection. */
  async metric(name: string): Promise<MetricData | undefined> {
    this.metricExporter.reset();
    await this.reader.forceFlush();
    const last = this.metricExporter.getMetrics().at(-1);
    return last?.scopeMetrics.flatMap((s) => s.metrics).find((m) => m.descriptor.name === name);
  }

  async shutdown(): Promise<void> {
    await this.tracerProvider.shutdown();
    await this.meterProvider.shutdown();
  }
}

const parentId = (span: ReadableSpan): string | undefined => span.parentSpanContext?.spanId;
const spanId = (span: ReadableSpan): string => span.spanContext().spanId;
const traceId = (span: ReadableSpan): string => span.spanContext().traceId;
/** An HrTime as ms since the epoch. */
const ms = ([s, ns]: readonly [number, number]): number => s * 1000 + ns / 1e6;

/** The value of the data point whose attributes include `attributes`. */
function point<T>(metric: MetricData | undefined, attributes: Attributes): T | undefined {
  const points = (metric?.dataPoints ?? []) as DataPoint<T>[];
  return points.find((p) => Object.entries(attributes).every(([k, v]) => p.attributes[k] === v))?.value;
}

const contextManager = new AsyncLocalStorageContextManager();
beforeAll(() => {
  context.setGlobalContextManager(contextManager.enable());
});
afterAll(() => {
  context.disable();
});

describe('OpenTelemetryObserver', () => {
  let telemetry: Telemetry;
  let clock: SimulatedClock;
  beforeEach(() => {
    telemetry = new Telemetry();
    clock = new SimulatedClock();
  });
  afterEach(async () => {
    await telemetry.shutdown();
  });

  /** A runtime on the test's clock with the observer registered runtime-wide. */
  function run(observer: Observer, options: SagaRuntimeOptions) {
    return testRuntime({ clock, observers: [observer], ...options });
  }

  it('opens a span per instance with a child span per step run, in a trace derived from the instance id', async () => {
    const log: Log = [];
    const otel = telemetry.observer({ now: () => clock.now() });
    const wf = defineWorkflow<TestState>({ name: 'otel-ok', steps: [recordingStep('A', log), recordingStep('B', log)] });
    const { runtime } = run(otel, { workflows: [wf] });
    await (await runtime.start(wf, { trail: [] }, { id: 'order-1' })).result();

    expect(telemetry.spans.map((s) => s.name)).toEqual(['A run', 'B run', 'saga otel-ok']);
    const saga = telemetry.span('saga otel-ok');
    const a = telemetry.span('A run');
    const b = telemetry.span('B run');
    expect(new Set(telemetry.spans.map(traceId))).toEqual(new Set([sagaTraceId('order-1')]));
    expect(parentId(saga)).toBe(sagaRootSpanId('order-1'));
    expect(parentId(a)).toBe(spanId(saga));
    expect(parentId(b)).toBe(spanId(saga));
    expect(saga.attributes).toEqual({ 'sagaflow.instance_id': 'order-1', 'sagaflow.workflow': 'otel-ok', 'sagaflow.status': 'completed' });
    expect(saga.status.code).toBe(SpanStatusCode.UNSET);
    expect(b.attributes).toEqual({
      'sagaflow.instance_id': 'order-1',
      'sagaflow.workflow': 'otel-ok',
      'sagaflow.node_kind': 'step',
      'sagaflow.step': 'B',
      'sagaflow.step_index': 1,
      'sagaflow.direction': 'up',
      'sagaflow.handler': 'run',
      'sagaflow.attempt': 1,
      'sagaflow.result': 'ok',
    });
    expect(ms(saga.startTime)).toBe(clock.now());
    expect(otel.openSpans).toBe(0);
  });

  it('records a failing workflow: the error on the step span, a span per rollback, and the reason on the instance span', async () => {
    const log: Log = [];
    const otel = telemetry.observer({ now: () => clock.now() });
    const wf = defineWorkflow<TestState>({
      name: 'otel-fail',
      steps: [recordingStep('A', log), recordingStep('E', log, { run: fails('CARD_DECLINED', 'the card was declined') })],
    });
    const { runtime } = run(otel, { workflows: [wf] });
    await (await runtime.start(wf, { trail: [] }, { id: 'order-2' })).result();

    expect(telemetry.spans.map((s) => s.name)).toEqual(['A run', 'E run', 'E rollback', 'A rollback', 'saga otel-fail']);
    const saga = telemetry.span('saga otel-fail');
    const failed = telemetry.span('E run');
    expect(failed.status).toEqual({ code: SpanStatusCode.ERROR, message: 'CARD_DECLINED' });
    expect(failed.attributes).toMatchObject({ 'sagaflow.result': 'error', 'sagaflow.error.code': 'CARD_DECLINED' });
    expect(failed.events.map((e) => [e.name, e.attributes?.['exception.type']])).toEqual([['exception', 'CARD_DECLINED']]);
    for (const name of ['E rollback', 'A rollback']) {
      const span = telemetry.span(name);
      expect(parentId(span)).toBe(spanId(saga));
      expect(span.attributes).toMatchObject({ 'sagaflow.direction': 'down', 'sagaflow.handler': 'rollback', 'sagaflow.result': 'ok' });
      expect(span.status.code).toBe(SpanStatusCode.UNSET);
    }
    expect(saga.status).toEqual({ code: SpanStatusCode.ERROR, message: 'rolled back: CARD_DECLINED: the card was declined' });
    expect(saga.attributes['sagaflow.status']).toBe('rolled_back');
    expect(saga.events.map((e) => e.name)).toEqual(['rollback started', 'exception']);
    expect(saga.events[0]!.attributes).toEqual({
      'sagaflow.error.code': 'CARD_DECLINED',
      'sagaflow.error.name': 'Error',
      'sagaflow.error.message': 'the card was declined',
      'sagaflow.step': 'E',
    });
    expect(saga.events[1]!.attributes).toMatchObject({ 'exception.type': 'CARD_DECLINED', 'exception.message': 'the card was declined' });
  });

  it('records a step that threw, with the thrown error on the instance span', async () => {
    const log: Log = [];
    const otel = telemetry.observer({ now: () => clock.now() });
    const wf = defineWorkflow<TestState>({ name: 'otel-throw', steps: [recordingStep('T', log, { run: throws(new TypeError('x is undefined')) })] });
    const { runtime } = run(otel, { workflows: [wf] });
    await (await runtime.start(wf, { trail: [] })).result();

    expect(telemetry.span('T run').status).toEqual({ code: SpanStatusCode.ERROR, message: 'ERROR' });
    const exception = telemetry.span('saga otel-throw').events.find((e) => e.name === 'exception');
    expect(exception?.attributes).toMatchObject({ 'exception.type': 'TypeError', 'exception.message': 'x is undefined', 'sagaflow.error.name': 'TypeError' });
  });

  it('stops with the compensation error on the span when a compensation fails', async () => {
    const log: Log = [];
    const otel = telemetry.observer({ now: () => clock.now() });
    const wf = defineWorkflow<TestState>({
      name: 'otel-comp',
      steps: [recordingStep('A', log, { rollback: fails('REFUND_FAILED', 'the refund bounced') }), recordingStep('E', log, { run: fails() })],
    });
    const { runtime } = run(otel, { workflows: [wf] });
    expect((await (await runtime.start(wf, { trail: [] })).result()).status).toBe('compensation_failed');
    expect(telemetry.span('A rollback').status).toEqual({ code: SpanStatusCode.ERROR, message: 'REFUND_FAILED' });
    const saga = telemetry.span('saga otel-comp');
    expect(saga.status).toEqual({ code: SpanStatusCode.ERROR, message: 'a compensation failed (A rollback: REFUND_FAILED)' });
    expect(saga.attributes['sagaflow.status']).toBe('compensation_failed');
  });

  it('keeps a continued step’s span open while it is parked and adds a resumed event with the parked time', async () => {
    const log: Log = [];
    const otel = telemetry.observer({ now: () => clock.now() });
    const wf = defineWorkflow<TestState>({ name: 'otel-wait', steps: [recordingStep('W', log, { run: waitsFor('paid') }), recordingStep('B', log)] });
    const { runtime } = run(otel, { workflows: [wf] });
    const handle = await runtime.start(wf, { trail: [] }, { id: 'order-3' });
    await runtime.idle();
    expect(telemetry.spans).toEqual([]);
    expect(otel.openSpans).toBe(2);
    await clock.advance('90s');
    await runtime.publish({ topic: 'paid' });
    await handle.result();

    expect(telemetry.spans.map((s) => s.name)).toEqual(['W run', 'B run', 'saga otel-wait']);
    const w = telemetry.span('W run');
    expect(w.attributes).toMatchObject({ 'sagaflow.handler': 'run', 'sagaflow.continued': true, 'sagaflow.result': 'ok' });
    expect(w.events.map((e) => [e.name, e.attributes])).toEqual([['resumed', { 'sagaflow.handler': 'runHandleInfo', 'sagaflow.parked_ms': 90_000 }]]);
    expect(ms(w.endTime) - ms(w.startTime)).toBe(90_000);
    expect(parentId(w)).toBe(spanId(telemetry.span('saga otel-wait')));
  });

  it('puts the spans of two processes in the same trace for the same instance (restart while a step is parked)', async () => {
    const log: Log = [];
    const wf = () => defineWorkflow<TestState>({ name: 'otel-moved', steps: [recordingStep('W', log, { run: waitsFor('paid') }), recordingStep('B', log)] });

    // Process one starts the instance; the step parks; the process stops.
    const otelOne = telemetry.observer({ now: () => clock.now() });
    const one = run(otelOne, { workflows: [wf()] });
    await one.runtime.start('otel-moved', { trail: [] }, { id: 'order-4' });
    await one.runtime.idle();
    await one.runtime.close();
    otelOne.endOpenSpans();

    // Process two, with its own SDK and observer, resumes it from the store.
    const second = new Telemetry();
    try {
      const otelTwo = second.observer({ now: () => clock.now() });
      const two = run(otelTwo, { workflows: [wf()], store: one.runtime.store });
      await two.runtime.start();
      await clock.advance('1m');
      await two.runtime.publish({ topic: 'paid' });
      await two.runtime.handle('order-4').result();

      expect(telemetry.spans.map((s) => s.name)).toEqual(['W run', 'saga otel-moved']);
      expect(second.spans.map((s) => s.name)).toEqual(['W run', 'B run', 'saga otel-moved']);
      const all = [...telemetry.spans, ...second.spans];
      expect(new Set(all.map(traceId))).toEqual(new Set([sagaTraceId('order-4')]));

      const sagaOne = telemetry.span('saga otel-moved');
      const sagaTwo = second.span('saga otel-moved');
      expect(parentId(sagaOne)).toBe(sagaRootSpanId('order-4'));
      expect(parentId(sagaTwo)).toBe(sagaRootSpanId('order-4'));
      expect(sagaOne.attributes).toMatchObject({ 'sagaflow.interrupted': true });
      expect(sagaTwo.attributes).toMatchObject({ 'sagaflow.recovered': true, 'sagaflow.status': 'completed' });
      expect(telemetry.span('W run').attributes).toMatchObject({ 'sagaflow.interrupted': true });

      const resumedW = second.span('W run');
      expect(parentId(resumedW)).toBe(spanId(sagaTwo));
      expect(parentId(second.span('B run'))).toBe(spanId(sagaTwo));
      expect(resumedW.attributes).toMatchObject({ 'sagaflow.recovered': true, 'sagaflow.handler': 'runHandleInfo', 'sagaflow.continued': true });
      // The parked time is unknown to a process that did not see the step start.
      expect(resumedW.events.map((e) => [e.name, e.attributes])).toEqual([['resumed', { 'sagaflow.handler': 'runHandleInfo' }]]);
      expect(otelTwo.openSpans).toBe(0);
    } finally {
      await second.shutdown();
    }
  });

  it('gives the same trace id to the same instance in two observers, and different ones to different instances', () => {
    const first = telemetry.observer();
    const other = telemetry.observer();
    const flow = { instanceId: 'same', workflow: 'wf', stepName: 'S', direction: 'up' as const, stepFunc: 'run' as const };
    const a = trace.getSpanContext(first.stepContext(flow))!;
    const b = trace.getSpanContext(other.stepContext(flow))!;
    const c = trace.getSpanContext(other.stepContext({ ...flow, instanceId: 'different' }))!;
    expect(a.traceId).toBe(sagaTraceId('same'));
    expect(b.traceId).toBe(a.traceId);
    expect(c.traceId).not.toBe(a.traceId);
    expect(a.spanId).not.toBe(b.spanId);
    first.endOpenSpans();
    other.endOpenSpans();
  });

  it('nests the user’s own spans under the step span while the handler runs, with or without withStepContext', async () => {
    const log: Log = [];
    const otel = telemetry.observer({ now: () => clock.now() });
    const charge = recordingStep('charge', log, {
      run: (state, ctx) => {
        telemetry.userTracer.startSpan('without the helper').end();
        otel.activeStepSpan(ctx)?.setAttribute('payment.provider', 'acme');
        return otel.withStepContext(ctx, () =>
          telemetry.userTracer.startActiveSpan('charge card', (span) => {
            telemetry.userTracer.startSpan('http POST /charges').end();
            span.end();
            return ok(state);
          }),
        );
      },
    });
    const wf = defineWorkflow<TestState>({ name: 'otel-nest', steps: [charge] });
    const { runtime } = run(otel, { workflows: [wf] });
    await (await runtime.start(wf, { trail: [] }, { id: 'order-5' })).result();

    const step = telemetry.span('charge run');
    const mine = telemetry.span('charge card');
    expect(parentId(mine)).toBe(spanId(step));
    expect(traceId(mine)).toBe(sagaTraceId('order-5'));
    expect(parentId(telemetry.span('http POST /charges'))).toBe(spanId(mine));
    expect(step.attributes['payment.provider']).toBe('acme');
    // The runtime calls the observer's wrapStep around the handler, so the step span is active without the helper.
    expect(parentId(telemetry.span('without the helper'))).toBe(spanId(step));
  });

  it('marks the resumption when runHandleInfo asks for the step context, so the parked time excludes the handler', async () => {
    const log: Log = [];
    let extra = 0;
    const otel = telemetry.observer({ now: () => clock.now() + extra });
    const w = recordingStep('W', log, {
      run: waitsFor('paid'),
      runHandleInfo: (state, ctx) =>
        otel.withStepContext(ctx, () => {
          extra += 700; // the handler takes 700 ms
          return ok(state);
        }),
    });
    const wf = defineWorkflow<TestState>({ name: 'otel-resume', steps: [w] });
    const { runtime } = run(otel, { workflows: [wf] });
    const handle = await runtime.start(wf, { trail: [] });
    await runtime.idle();
    await clock.advance('30s');
    await runtime.publish({ topic: 'paid' });
    await handle.result();
    const span = telemetry.span('W run');
    expect(span.events.map((e) => e.attributes?.['sagaflow.parked_ms'])).toEqual([30_000]);
    expect(ms(span.endTime) - ms(span.startTime)).toBe(30_700);
  });

  it('records each attempt of a retried step as its own span, with the attempt and the delay before it', async () => {
    const log: Log = [];
    const otel = telemetry.observer({ now: () => clock.now() });
    let calls = 0;
    const flaky = recordingStep('charge', log, { run: (state) => (++calls < 2 ? fail({ code: 'UNAVAILABLE', message: 'try later' }, state) : ok(state)) });
    const wf = defineWorkflow<TestState>({ name: 'otel-retry', steps: [flaky] });
    const { runtime } = run(otel, { workflows: [wf], defaults: { retry: { maxAttempts: 2, backoff: 'fixed', initialDelay: '5s' } } });
    const handle = await runtime.start(wf, { trail: [] });
    await clock.advance('5s');
    await handle.result();
    const attempts = telemetry.spans.filter((s) => s.name === 'charge run');
    expect(attempts.map((s) => [s.attributes['sagaflow.attempt'], s.attributes['sagaflow.retry_delay_ms'], s.status.code])).toEqual([
      [1, undefined, SpanStatusCode.ERROR],
      [2, 5000, SpanStatusCode.UNSET],
    ]);
  });

  it('nests the steps of a parallel group under a group span, with the group and branch as attributes', async () => {
    const log: Log = [];
    const otel = telemetry.observer({ now: () => clock.now() });
    const wf = defineWorkflow<TestState>({ name: 'otel-group', steps: [recordingStep('A', log), parallel('G', [recordingStep('B', log), recordingStep('C', log)])] });
    const { runtime } = run(otel, { workflows: [wf] });
    await (await runtime.start(wf, { trail: [] })).result();

    const saga = telemetry.span('saga otel-group');
    const group = telemetry.span('G run');
    expect(parentId(group)).toBe(spanId(saga));
    expect(group.attributes).toMatchObject({ 'sagaflow.node_kind': 'group', 'sagaflow.group': 'G', 'sagaflow.direction': 'up' });
    for (const name of ['B run', 'C run']) {
      const span = telemetry.span(name);
      expect(parentId(span)).toBe(spanId(group));
      expect(span.attributes).toMatchObject({ 'sagaflow.group': 'G', 'sagaflow.branch': expect.any(String) });
    }
    expect(parentId(telemetry.span('A run'))).toBe(spanId(saga));
  });

  it('counts step calls by outcome and finished instances, and measures step durations, through the metrics API', async () => {
    const log: Log = [];
    let extra = 0;
    const otel = telemetry.observer({ now: () => clock.now() + extra });
    const slow = recordingStep('slow', log, {
      run: (state) => {
        extra += 250;
        return ok(state);
      },
    });
    const ok2 = defineWorkflow<TestState>({ name: 'm-ok', steps: [slow] });
    const failing = defineWorkflow<TestState>({ name: 'm-fail', steps: [recordingStep('A', log), recordingStep('E', log, { run: fails() })] });
    const stuck = defineWorkflow<TestState>({ name: 'm-stuck', steps: [recordingStep('R', log, { rollback: fails() }), recordingStep('X', log, { run: fails() })] });
    const { runtime } = run(otel, { workflows: [ok2, failing, stuck] });
    for (const wf of [ok2, ok2, failing, stuck]) await (await runtime.start(wf, { trail: [] })).result();

    const steps = await telemetry.metric('sagaflow.steps');
    expect(steps?.descriptor.unit).toBe('{call}');
    const count = (workflow: string, step: string, direction: string, outcome: string) =>
      point<number>(steps, { 'sagaflow.workflow': workflow, 'sagaflow.step': step, 'sagaflow.direction': direction, 'sagaflow.outcome': outcome });
    expect(count('m-ok', 'slow', 'up', 'ok')).toBe(2);
    expect(count('m-fail', 'E', 'up', 'error')).toBe(1);
    expect(count('m-fail', 'A', 'down', 'ok')).toBe(1);
    expect(count('m-stuck', 'R', 'down', 'error')).toBe(1);

    const duration = await telemetry.metric('sagaflow.step.duration');
    expect(duration?.descriptor.unit).toBe('ms');
    expect(point<Histogram>(duration, { 'sagaflow.step': 'slow' })).toMatchObject({ count: 2, sum: 500, min: 250, max: 250 });

    const total = async (name: string, workflow: string) => point<number>(await telemetry.metric(name), { 'sagaflow.workflow': workflow });
    expect(await total('sagaflow.instances.started', 'm-ok')).toBe(2);
    expect(await total('sagaflow.instances.completed', 'm-ok')).toBe(2);
    expect(await total('sagaflow.instances.rolled_back', 'm-fail')).toBe(1);
    expect(await total('sagaflow.instances.compensation_failed', 'm-stuck')).toBe(1);
    expect(steps?.dataPoints.some((p) => 'sagaflow.instance_id' in p.attributes)).toBe(false);
  });

  it('links the instance span to the span that was active when the instance started', async () => {
    const log: Log = [];
    const otel = telemetry.observer({ now: () => clock.now() });
    const wf = defineWorkflow<TestState>({ name: 'otel-link', steps: [recordingStep('A', log)] });
    const { runtime } = run(otel, { workflows: [wf] });
    const request = telemetry.userTracer.startSpan('POST /orders');
    const handle = await context.with(trace.setSpan(context.active(), request), () => runtime.start(wf, { trail: [] }, { id: 'order-6' }));
    request.end();
    await handle.result();
    const saga = telemetry.span('saga otel-link');
    expect(saga.links.map((l) => [l.context.spanId, l.attributes])).toEqual([[request.spanContext().spanId, { 'sagaflow.link': 'started_by' }]]);
    expect(traceId(saga)).toBe(sagaTraceId('order-6'));
    expect(traceId(saga)).not.toBe(request.spanContext().traceId);
  });

  it('records no span for an instance the sample option declines, but still counts it', async () => {
    const log: Log = [];
    const otel = telemetry.observer({ sample: (id) => id !== 'quiet' });
    const wf = defineWorkflow<TestState>({ name: 'otel-sampled', steps: [recordingStep('A', log)] });
    const { runtime } = run(otel, { workflows: [wf] });
    await (await runtime.start(wf, { trail: [] }, { id: 'quiet' })).result();
    await (await runtime.start(wf, { trail: [] }, { id: 'loud' })).result();
    expect(telemetry.spans.map((s) => [s.name, s.attributes['sagaflow.instance_id']])).toEqual([
      ['A run', 'loud'],
      ['saga otel-sampled', 'loud'],
    ]);
    expect(point<number>(await telemetry.metric('sagaflow.instances.completed'), { 'sagaflow.workflow': 'otel-sampled' })).toBe(2);
  });

  it('uses the global providers by default, including a meter provider registered after the observer was built', async () => {
    const log: Log = [];
    const otel = new OpenTelemetryObserver({ now: () => clock.now() });
    trace.setGlobalTracerProvider(telemetry.tracerProvider);
    metrics.setGlobalMeterProvider(telemetry.meterProvider);
    try {
      const wf = defineWorkflow<TestState>({ name: 'otel-global', steps: [recordingStep('A', log)] });
      const { runtime } = run(otel, { workflows: [wf] });
      await (await runtime.start(wf, { trail: [] })).result();
      expect(telemetry.spans.map((s) => [s.name, s.instrumentationScope.name])).toEqual([
        ['A run', 'sagaflow'],
        ['saga otel-global', 'sagaflow'],
      ]);
      expect(point<number>(await telemetry.metric('sagaflow.instances.completed'), { 'sagaflow.workflow': 'otel-global' })).toBe(1);
    } finally {
      trace.disable();
      metrics.disable();
    }
  });

  it('ends the span of a call whose after-hook never came when the instance finishes, so nothing stays open', async () => {
    const log: Log = [];
    const otel = telemetry.observer({ now: () => clock.now() });
    const guard: Observer<TestState> = { handleBeforeStep: (_s, flow) => (flow.stepName === 'B' && flow.direction === 'up' ? fail('no B') : undefined) };
    const wf = defineWorkflow<TestState>({ name: 'otel-veto', steps: [recordingStep('A', log), recordingStep('B', log)], observers: [otel, guard] });
    const { runtime } = testRuntime({ clock, workflows: [wf] });
    expect((await (await runtime.start(wf, { trail: [] })).result()).status).toBe('rolled_back');
    expect(telemetry.span('B run').attributes).toMatchObject({ 'sagaflow.interrupted': true });
    expect(otel.openSpans).toBe(0);
  });
});
