import { SagaflowError } from './sagaflow-error';
import { quote } from './serialized-error';

/** No instance with this id exists in the store. */
export class UnknownInstanceError extends SagaflowError {
  readonly instanceId: string;
  constructor(instanceId: string) {
    super('UNKNOWN_INSTANCE', `no saga instance with id ${quote(instanceId, 120)} exists; check the id or list instances`, {
      instanceId: quote(instanceId, 120),
    });
    this.instanceId = instanceId;
  }
}

/** An argument of a runtime or store call is not what the call takes (an id that is not a string, a bad filter). */
export class InvalidArgumentError extends SagaflowError {
  readonly argument: string;
  constructor(where: string, argument: string, problem: string) {
    super('INVALID_ARGUMENT', `${where}: ${argument} ${problem}`, { where, argument });
    this.argument = argument;
  }
}

/** The workflow was never registered with this runtime. */
export class UnknownWorkflowError extends SagaflowError {
  readonly workflow: string;
  constructor(workflow: string, where: string) {
    super(
      'UNKNOWN_WORKFLOW',
      `workflow ${quote(workflow, 120)} is not registered with this runtime (${where}); call runtime.register(...) first`,
      { workflow },
    );
    this.workflow = workflow;
  }
}

/** An event handed to the runtime or the bus does not have the shape of a saga event. */
export class InvalidEventError extends SagaflowError {
  constructor(message: string, details: Record<string, unknown> = {}) {
    super('INVALID_EVENT', message, details);
  }
}

/** A record was changed by someone else since it was loaded (optimistic concurrency). */
export class VersionConflictError extends SagaflowError {
  constructor(instanceId: string, expected: number, actual: number | undefined) {
    super(
      'VERSION_CONFLICT',
      `instance ${quote(instanceId, 120)} was changed concurrently: expected version ${expected}, found ${actual ?? 'none'}`,
      { instanceId, expected, actual },
    );
  }
}

/** A stored record cannot be read: corrupted JSON, a missing field, or a newer schema version. */
export class CorruptRecordError extends SagaflowError {
  constructor(instanceId: string, reason: string) {
    super('CORRUPT_RECORD', `stored instance ${quote(instanceId, 120)} cannot be read: ${reason}`, { instanceId });
  }
}

/** An operator action that does not apply to the instance as it is (retrying a completed instance, …). */
export class InvalidOperationError extends SagaflowError {
  constructor(action: string, instanceId: string, status: string, hint: string) {
    super('INVALID_OPERATION', `${action} does not apply to instance ${quote(instanceId, 120)}, which is ${status}: ${hint}`, {
      action,
      instanceId,
      status,
    });
  }
}

/** Another worker holds the instance's lease; this runtime cannot run it now. */
export class LeasedElsewhereError extends SagaflowError {
  constructor(instanceId: string) {
    super(
      'LEASED_ELSEWHERE',
      `instance ${quote(instanceId, 120)} is leased by another worker; call again on that worker, or after its lease expires`,
      { instanceId },
    );
  }
}

/** The runtime was closed; it accepts no more work. */
export class RuntimeClosedError extends SagaflowError {
  constructor(action: string) {
    super('RUNTIME_CLOSED', `the runtime is closed and cannot ${action}; create a new runtime`);
  }
}

/**
 * The instance cannot run here: its workflow version is not registered (`UNKNOWN_VERSION`), or the definition
 * registered as that version has another structure than the one it started on (`DEFINITION_CHANGED`). It is
 * `blocked` — nothing of it runs or is compensated — until that definition is registered again or it is migrated.
 */
export class InstanceBlockedError extends SagaflowError {
  declare readonly code: 'UNKNOWN_VERSION' | 'DEFINITION_CHANGED';
  readonly instanceId: string;
  constructor(instanceId: string, reason: { readonly code: 'UNKNOWN_VERSION' | 'DEFINITION_CHANGED'; readonly message: string; readonly fingerprint: string | null; readonly registered: string | null }) {
    super(reason.code, reason.message, { instanceId: quote(instanceId, 120), fingerprint: reason.fingerprint, registered: reason.registered });
    this.instanceId = instanceId;
  }
}

/** `migrate` found parts of the instance the target version lacks; nothing was changed. */
export class MigrationRefusedError extends SagaflowError {
  readonly missing: readonly string[];
  constructor(instanceId: string, version: number, missing: readonly string[]) {
    super('MIGRATION_REFUSED', `instance ${quote(instanceId, 120)} cannot move to version ${version}: ${missing.join('; ')} (give renames in map, or keep its version registered)`, {
      instanceId: quote(instanceId, 120),
      version,
      missing: [...missing],
    });
    this.missing = missing;
  }
}
