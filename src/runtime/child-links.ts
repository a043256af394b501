/**
 * The links between parent and child instances: what a child-workflow step asks of the runtime (start, status,
 * undo), and telling a parent when its child ends — even when the child ended before the parent began to wait.
 */
import type { PublishReceipt } from '../core/publish-receipt';
import type { SagaEventInput } from '../bus/event';
import { isFinalStatus, type Wait } from '../core/flow-fields';
import type { InstanceRecord } from '../engine/instance-record';
import { RuntimeClosedError } from '../errors/runtime-errors';
import type { SerializedError } from '../errors/serialized-error';
import { CHILD_ENDED_TOPIC, type ChildEnded, type ChildHost } from '../workflow/child';
import type { WorkflowDefinition } from '../workflow/workflow-definition';
import type { RuntimeContext } from './runtime-context';

/** What a parent learns of a child instance. */
function childEnded(record: InstanceRecord): ChildEnded {
  return {
    childId: record.id,
    status: record.flow.status,
    direction: record.flow.direction,
    output: record.state,
    error: record.flow.errorReason,
  };
}

/** What child links need of the rest of the runtime. */
export interface ChildRuntime {
  /** Starts an instance linked to its parent (an existing id is left as it is). */
  start(def: WorkflowDefinition, input: unknown, id: string, parentId: string): Promise<void>;
  publish(event: SagaEventInput): Promise<PublishReceipt>;
  /** The record of an instance as committed, or undefined. */
  current(id: string): Promise<InstanceRecord | undefined>;
  /** Rolls an instance back (or compensates a completed one). */
  undo(id: string, reason: SerializedError): Promise<void>;
}

export class ChildLinks {
  /** What child-workflow steps use to start, watch and undo their children. */
  readonly host: ChildHost;

  constructor(
    private readonly ctx: RuntimeContext,
    private readonly runtime: ChildRuntime,
  ) {
    this.host = {
      start: (def, input, id, parentId) => runtime.start(def, input, id, parentId),
      status: async (id) => {
        const record = await runtime.current(id);
        return record === undefined ? undefined : childEnded(record);
      },
      undo: (id, reason) => runtime.undo(id, reason),
    };
  }

  /** Tells a parent that its child ended (either way); a parent not waiting yet finds out when its wait begins. */
  async tellParent(record: InstanceRecord): Promise<void> {
    if (record.parent === undefined || this.ctx.closed) return;
    const ended = childEnded(record);
    try {
      await this.runtime.publish({ topic: CHILD_ENDED_TOPIC, instanceId: record.parent, payload: { ...ended } });
    } catch (e) {
      if (!(e instanceof RuntimeClosedError)) this.ctx.report('instance-failed', `parent ${record.parent} could not be told that child ${record.id} ended`, e, record.parent);
    }
  }

  /** Answers a wait at once when it is for a child that has already ended (before the wait began, or before a crash). */
  watch(instanceId: string, wait: Wait): void {
    if (!wait.topics.includes(CHILD_ENDED_TOPIC)) return;
    this.answerChildWait(wait).catch((e: unknown) => this.ctx.report('instance-failed', `the child wait of ${instanceId} could not be checked`, e, instanceId));
  }

  private async answerChildWait(wait: Wait): Promise<void> {
    const id = wait.match.childId;
    if (typeof id !== 'string') return;
    const record = await this.runtime.current(id);
    if (record === undefined || !isFinalStatus(record.flow.status)) return;
    if (wait.match.direction !== undefined && wait.match.direction !== record.flow.direction) return;
    await this.tellParent(record);
  }
}
