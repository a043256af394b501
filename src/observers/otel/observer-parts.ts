/** The OpenTelemetry observer's options and the small pieces its spans and instruments are made from. */
import { optionKeys } from '../../input/known-keys';
import type { Attributes, Context, Counter, Histogram, HrTime, MeterProvider, Span, TracerProvider } from '@opentelemetry/api';
import type { Direction, StepFunc } from '../../core/flow-fields';
import type { SerializedError } from '../../errors/serialized-error';
import { SagaAttributes as A } from './saga-telemetry-names';

/** The instrumentation scope name of the tracer and meter. */
export const SAGAFLOW_INSTRUMENTATION_SCOPE = 'sagaflow';

/** Options of an {@link OpenTelemetryObserver}. */
export interface OpenTelemetryObserverOptions {
  /** Where spans go. @default the global tracer provider (`trace.getTracerProvider()`) */
  readonly tracerProvider?: TracerProvider;
  /** Where metrics go. @default the global meter provider (`metrics.getMeterProvider()`) as it is at the first hook */
  readonly meterProvider?: MeterProvider;
  /**
   * The time source (ms since the epoch) for span start and end times, event times, step durations and parked
   * times. Inject the runtime's clock (`() => clock.now()`) to make them follow a `SimulatedClock` in tests.
   * @default Date.now
   */
  readonly now?: () => number;
  /**
   * Whether an instance's trace is sampled. It is asked with the instance id in every process and must answer the
   * same each time (the answer becomes the sampled flag of the instance's deterministic root, and with the SDK's
   * default parent-based sampler it decides for every span of the instance). Metrics are recorded either way.
   * @default () => true
   */
  readonly sample?: (instanceId: string, workflow: string) => boolean;
  /**
   * Links the instance span to the span that was active when the instance started (the HTTP request that called
   * `runtime.start`, say), so each trace leads to the other. The instance keeps its own trace.
   * @default true
   */
  readonly linkStartingSpan?: boolean;
}

export const OTEL_OPTION_KEYS = optionKeys<OpenTelemetryObserverOptions>()(['tracerProvider', 'meterProvider', 'now', 'sample', 'linkStartingSpan']);

/**
 * Which step call a helper is about: a `FlowView` (in a hook) or a `StepContext` (in a step handler) fit as
 * they are.
 */
export interface StepRef {
  readonly instanceId: string;
  readonly workflow: string;
  readonly stepName: string | null;
  readonly direction: Direction;
  /** The handler being called; from a `*HandleInfo` handler, marks the resumption of a continued step. */
  readonly stepFunc?: StepFunc;
  readonly attempt?: number;
  readonly group?: string;
  readonly branch?: string;
}

export interface Instruments {
  readonly steps: Counter;
  readonly stepDuration: Histogram;
  readonly started: Counter;
  readonly completed: Counter;
  readonly rolledBack: Counter;
  readonly compensationFailed: Counter;
}

export interface OpenCall {
  readonly span: Span;
  /** When the call started (ms, from `now`): its before-hook, or when this process first heard of it. */
  readonly start: number;
  /** Started by a process that did not see the before-hook: start time and durations are not the step's. */
  readonly recovered: boolean;
  resumed: boolean;
}

export interface OpenInstance {
  readonly span: Span;
  /** The instance span on an otherwise empty context: the parent of groups and steps. */
  readonly context: Context;
  /** Open step calls, by {@link callKey}. */
  readonly calls: Map<string, OpenCall>;
  /** Open group spans, by group name. */
  readonly groups: Map<string, Span>;
}

/** Milliseconds since the epoch (fractions allowed) as an OpenTelemetry `HrTime`. */
export function hrTime(ms: number): HrTime {
  const seconds = Math.floor(ms / 1000);
  const nanos = Math.round((ms - seconds * 1000) * 1e6);
  return nanos >= 1e9 ? [seconds + 1, nanos - 1e9] : [seconds, nanos];
}

/** The key of one step call: the same for `run` and the `runHandleInfo` that follows a continue. */
export function callKey(ref: StepRef): string {
  return `${ref.branch ?? ''}\u0000${ref.stepName ?? ''}\u0000${ref.direction}`;
}

export function isResumeHandler(func: StepFunc | undefined): boolean {
  return func === 'runHandleInfo' || func === 'rollbackHandleInfo';
}

export function spanName(node: string, direction: Direction): string {
  return `${node} ${direction === 'up' ? 'run' : 'rollback'}`;
}

export function errorAttributes(error: SerializedError): Attributes {
  return { [A.ErrorCode]: error.code, [A.ErrorName]: error.name, [A.ErrorMessage]: error.message };
}

