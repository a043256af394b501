/**
 * Operator requests as data: an operator act (retry or skip a failed compensation, cancel, resume a blocked
 * instance) written to the store by any process, without the workflow's code, and applied by the worker that holds
 * or next takes the instance — which records who, why and when in its history and marks the request done.
 */
import { isFinalStatus } from '../core/flow-fields';
import type { InstanceRecord } from '../engine/instance-record';
import { InvalidArgumentError, InvalidOperationError, UnknownInstanceError } from '../errors/runtime-errors';
import { SagaflowError } from '../errors/sagaflow-error';
import { quote, type SerializedError } from '../errors/serialized-error';

/** What an operator may ask of an instance. */
export const OperatorRequestKind = {
  /** Call the failed compensations of a `compensation_failed` instance again. */
  RetryCompensation: 'retry-compensation',
  /** Give up on them and go on with the earlier compensations. */
  SkipCompensation: 'skip-compensation',
  /** Roll the instance back (a reason is required). */
  Cancel: 'cancel',
  /** Let a `blocked` instance go on, when its definition is registered again. */
  Resume: 'resume',
} as const;
export type OperatorRequestKind = (typeof OperatorRequestKind)[keyof typeof OperatorRequestKind];

const KINDS: readonly string[] = Object.values(OperatorRequestKind);

/** A request as asked: which instance, what, by whom and why. */
export interface OperatorRequestInput {
  readonly instanceId: string;
  readonly kind: OperatorRequestKind;
  /** Who asks (a person or a system). */
  readonly by?: string;
  /** Why (required for `cancel`). */
  readonly reason?: string;
}

/** A stored request. */
export interface OperatorRequest extends OperatorRequestInput {
  readonly id: string;
  /** When it was written (ms since epoch). */
  readonly requestedAt: number;
  /** `pending` until a worker applied it (`done`) or could not (`failed`, with `error`). */
  readonly state: 'pending' | 'done' | 'failed';
  readonly error?: SerializedError;
  /** When it was applied or failed. */
  readonly doneAt?: number;
}

/**
 * The error a failed request was recorded with, as a typed error naming the request; `context` leads its message.
 */
export function requestFailure(request: OperatorRequest, context = ''): SagaflowError {
  const e = request.error;
  return new SagaflowError(e?.code ?? 'ERROR', `${context}${e?.message ?? 'no reason was recorded'}`, { ...(e?.details ?? {}), requestId: request.id });
}

/**
 * Checks the shape of a request.
 * @throws InvalidArgumentError `INVALID_ARGUMENT`
 */
export function checkRequestInput(input: OperatorRequestInput, where = 'request'): void {
  const bad = (argument: string, problem: string): never => {
    throw new InvalidArgumentError(where, argument, problem);
  };
  if (typeof input !== 'object' || input === null) bad('the request', `must be { instanceId, kind, by?, reason? }, got ${quote(input, 80)}`);
  if (typeof input.instanceId !== 'string' || input.instanceId.length === 0) bad('the instance id', `must be a non-empty string, got ${quote(input.instanceId, 80)}`);
  if (!KINDS.includes(input.kind)) bad('kind', `must be one of ${KINDS.join(', ')}, got ${quote(input.kind, 80)}`);
  if (input.by !== undefined && typeof input.by !== 'string') bad('by', `must be a string, got ${quote(input.by, 80)}`);
  if (input.reason !== undefined && typeof input.reason !== 'string') bad('reason', `must be a string, got ${quote(input.reason, 80)}`);
  if (input.kind === 'cancel' && (input.reason === undefined || input.reason.trim() === '')) bad('reason', 'is required to cancel an instance (it is recorded in its history)');
}

/**
 * Refuses a request that does not apply to the instance as it is stored: none (`UNKNOWN_INSTANCE`), ended
 * (`INSTANCE_FINISHED`), or not in the state the act needs (`INVALID_OPERATION`).
 */
export function checkRequestApplies(input: OperatorRequestInput, record: InstanceRecord | undefined): void {
  const id = input.instanceId;
  if (record === undefined) throw new UnknownInstanceError(id);
  const status = record.flow.status;
  const action = input.kind;
  switch (input.kind) {
    case 'retry-compensation':
    case 'skip-compensation': {
      if (status !== 'compensation_failed') throw new InvalidOperationError(action, id, status, 'only a compensation_failed instance has failed compensations');
      const leftovers = record.flow.stack.length > 0 || (record.group?.branches.some((b) => b.phase === 'compensation_failed') ?? false);
      if (!leftovers) throw new InvalidOperationError(action, id, status, 'no compensation is left to act on (the rollback went past its failures, which are listed in compensationFailures)');
      return;
    }
    case 'cancel':
      if (status === 'completed' || status === 'rolled_back') {
        throw new SagaflowError('INSTANCE_FINISHED', `instance ${quote(id, 120)} has ended (${status}); there is nothing in flight to cancel`, { instanceId: id, status });
      }
      if (isFinalStatus(status)) throw new InvalidOperationError(action, id, status, 'it is already compensating: retry or skip its failed compensation');
      return;
    case 'resume':
      if (status !== 'blocked') throw new InvalidOperationError(action, id, status, 'only a blocked instance waits to be resumed');
      return;
  }
}
