/**
 * sagaflow/opentelemetry — traces and metrics for sagas through `@opentelemetry/api` (an optional peer dependency:
 * install it, and your SDK, to use this entry point; the main `sagaflow` entry never loads it).
 *
 * - {@link OpenTelemetryObserver}: register it as an observer; a span per instance, per step call and per group,
 *   counters and a duration histogram.
 * - {@link sagaTraceId}: the trace id of an instance, the same in every process.
 * - {@link SagaAttributes}, {@link SagaMetrics}, {@link SagaSpanEvents}: the names it writes.
 *
 * @module sagaflow/opentelemetry
 */
export { OpenTelemetryObserver } from './opentelemetry-observer';
export { SAGAFLOW_INSTRUMENTATION_SCOPE, type OpenTelemetryObserverOptions, type StepRef } from './observer-parts';
export { sagaTraceId, sagaRootSpanId, sagaRootSpanContext } from './saga-trace-ids';
export { SagaAttributes, SagaMetrics, SagaSpanEvents, type SagaAttribute } from './saga-telemetry-names';
