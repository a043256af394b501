import type { PublishReceipt } from '../core/publish-receipt';
import type { SagaEventInput } from '../bus/event';
import type { Direction, StepFunc } from '../core/flow-fields';
import type { Logger } from '../core/logger';
import type { Clock } from '../time/clock';

/** What a step handler knows about the call it is in. */
export interface StepContext {
  /** The instance's id. */
  readonly instanceId: string;
  /** The workflow's registered name. */
  readonly workflow: string;
  /** The step's registered name. */
  readonly stepName: string;
  /** `up` for run and runHandleInfo, `down` for rollback and rollbackHandleInfo. */
  readonly direction: Direction;
  /** The handler being called. */
  readonly stepFunc: StepFunc;
  /** Attempt number, from 1. */
  readonly attempt: number;
  /**
   * Names this run of the step in this instance, the same in both directions: `instanceId:stepName`, plus
   * `[i]` for item `i` of a forEach and `#n` when a loop (goto backwards) runs the step for the n-th time.
   */
  readonly runKey: string;
  /**
   * A key that stays the same when the same attempt is re-run after a crash:
   * `runKey:direction:attempt`. Pass it to the services you call.
   */
  readonly idempotencyKey: string;
  /** The idempotency key without the attempt (`runKey:direction`): the same for every retry. */
  readonly idempotencyKeyBase: string;
  /** Fires when the runtime gives up on this call: external rollback, a failing sibling branch, shutdown. */
  readonly signal: AbortSignal;
  /** The runtime's clock. */
  readonly clock: Clock;
  /** The runtime's logger. */
  readonly logger: Logger;
  /** The parallel group this step runs in, if any. */
  readonly group?: string;
  /** The branch of that group, if any. */
  readonly branch?: string;
  /** Publishes an event on the saga bus (it may resume other instances, or this one after it continues). */
  publish(event: SagaEventInput): Promise<PublishReceipt>;
}
