import { quote } from './serialized-error';
import { SagaflowError } from './sagaflow-error';

/** A step or hook returned something that is not one of the results `ok`, `error`, `continueWith`, `goto`. */
export class MalformedResultError extends SagaflowError {
  constructor(where: string, received: unknown) {
    super(
      'MALFORMED_RESULT',
      `${where} returned ${quote(received)}, which is not a step result; return ok(state), error(reason, state?), continueWith(state, wait) or goto(step, state)`,
      { where, received: quote(received) },
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

