import { quote } from './serialized-error';
import { SagaflowError } from './sagaflow-error';

/** A step or hook returned something that is not one of the results `ok`, `error`, `continueWith`, `goto`. */
export class MalformedResultError extends SagaflowError {
  constructor(where: string, received: unknown, problem?: string) {
    super(
      'MALFORMED_RESULT',
      `${where} returned ${quote(received)}, which is not a step result${problem === undefined ? '' : ` (${problem})`}; return ok(state), error(reason, state?), continueWith(state, wait) or goto(step, state)`,
      problem === undefined ? { where, received: quote(received) } : { where, received: quote(received), problem },
    );
  }
}

/** A wait deadline or a step timeout passed. */
export class TimeoutError extends SagaflowError {
  constructor(where: string, afterMs?: number) {
    super('TIMEOUT', `${where} timed out${afterMs === undefined ? '' : ` after ${afterMs} ms`}`, { where });
  }
}

/** The instance was asked to roll back from outside (`runtime.rollback(id, reason)`). */
export class RollbackRequestedError extends SagaflowError {
  constructor(reason: string) {
    super('ROLLBACK_REQUESTED', `rollback requested: ${reason}`, { reason });
  }
}


/**
 * A step's reason for failing before it did anything (a child step whose child could not be started): the step
 * counts as not started, so it is not compensated. Internal to sagaflow's own steps.
 * @internal
 */
export class NotStartedError extends SagaflowError {}

/** True when a step's error reason says the step never started. Never throws. */
export function isNotStarted(reason: unknown): boolean {
  try {
    return reason instanceof NotStartedError;
  } catch {
    return false;
  }
}
