/** Span and metric attribute keys the {@link OpenTelemetryObserver} sets. */
export const SagaAttributes = {
  InstanceId: 'sagaflow.instance_id',
  Workflow: 'sagaflow.workflow',
  Step: 'sagaflow.step',
  StepIndex: 'sagaflow.step_index',
  Direction: 'sagaflow.direction',
  /** The handler that started the call: `run` or `rollback` (or `*HandleInfo` when the span was recovered). */
  Handler: 'sagaflow.handler',
  Attempt: 'sagaflow.attempt',
  RetryDelayMs: 'sagaflow.retry_delay_ms',
  Group: 'sagaflow.group',
  Branch: 'sagaflow.branch',
  /** `step` or `group`, on child spans. */
  NodeKind: 'sagaflow.node_kind',
  /** What the call resolved with: `ok`, `error` or `goto`. */
  Result: 'sagaflow.result',
  /** On step spans and metrics: the step continued (`continue`) and resolved in its `*HandleInfo` handler. */
  Continued: 'sagaflow.continued',
  /** Final status of the instance, on the instance span. */
  Status: 'sagaflow.status',
  /** Metric attribute of `sagaflow.steps` and `sagaflow.step.duration`: `ok`, `error` or `goto`. */
  Outcome: 'sagaflow.outcome',
  ErrorCode: 'sagaflow.error.code',
  ErrorName: 'sagaflow.error.name',
  ErrorMessage: 'sagaflow.error.message',
  /** On a `resumed` event: ms from the step's start to the moment its resumption was seen. */
  ParkedMs: 'sagaflow.parked_ms',
  /**
   * The span was started by a process that did not see the instance (or the step) start — after a restart or on
   * another worker — so its start time is when this process first heard of it.
   */
  Recovered: 'sagaflow.recovered',
  /** The span was ended without its closing hook: the instance finished (or the observer shut down) first. */
  Interrupted: 'sagaflow.interrupted',
} as const;
/** One of the attribute names in {@link SagaAttributes}. */
export type SagaAttribute = (typeof SagaAttributes)[keyof typeof SagaAttributes];

/** Names of the span events the {@link OpenTelemetryObserver} adds. */
export const SagaSpanEvents = {
  /** On a step span: the continued step resumed (its `*HandleInfo` handler was called). */
  Resumed: 'resumed',
  /** On the instance span: the direction turned down. */
  RollbackStarted: 'rollback started',
  /** The OpenTelemetry exception event (as `recordException` writes it). */
  Exception: 'exception',
} as const;

/** Names of the instruments the {@link OpenTelemetryObserver} records to. */
export const SagaMetrics = {
  /** Counter of handler calls that resolved, by workflow, step, direction, outcome. */
  Steps: 'sagaflow.steps',
  /** Histogram (ms) of step calls, from before-hook to after-hook, by workflow, step, direction, outcome. */
  StepDuration: 'sagaflow.step.duration',
  /** Counter of instances started, by workflow. */
  InstancesStarted: 'sagaflow.instances.started',
  /** Counter of instances that completed, by workflow. */
  InstancesCompleted: 'sagaflow.instances.completed',
  /** Counter of instances that finished rolling back, by workflow. */
  InstancesRolledBack: 'sagaflow.instances.rolled_back',
  /** Counter of instances that stopped in `compensation_failed`, by workflow. */
  InstancesCompensationFailed: 'sagaflow.instances.compensation_failed',
} as const;
