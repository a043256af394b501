// What an instance actor is given: the per-workflow services, the runtime it reports to, and the facts that come
// with a happening.
import type { SagaEventInput } from '../../bus/event';
import type { ObserverRunner } from '../observer-runner';
import type { StateChangeRecording } from '../../observers/history-observer';
import type { PolicyLookup } from '../../policies/step-policy';
import type { SlotLimiter } from '../../policies/rate-limiter';
import type { PublishReceipt } from '../../core/publish-receipt';
import type { Logger } from '../../core/logger';
import type { StateCodec } from '../../state/state-codec';
import type { BaseStep, StepClass } from '../../steps/base-step';
import type { InstanceStore } from '../../store/instance-store';
import type { Clock } from '../../time/clock';
import type { ChildHost } from '../../workflow/child';
import type { WorkflowDefinition } from '../../workflow/workflow-definition';
import type { Wait } from '../../core/flow-fields';
import type { InstanceActor } from '../instance-actor';
import type { InstanceRecord, TrackRef } from '../instance-record';

/** The per-workflow pieces an actor uses, built once per runtime and workflow. */
export interface WorkflowServices {
  readonly def: WorkflowDefinition;
  readonly codec: StateCodec;
  readonly observers: ObserverRunner;
  readonly policy: PolicyLookup;
  /** Set when a HistoryObserver asks for state changes in the history. */
  readonly stateChanges?: StateChangeRecording;
  /** The state codec of forEach item steps: their state is the item, plain JSON. */
  readonly itemCodec: StateCodec;
  /** The rate limiter of each step that has one, by step name. */
  readonly limiters: ReadonlyMap<string, SlotLimiter>;
}

/** What an actor needs from the runtime that owns it. */
export interface ActorHost {
  readonly store: InstanceStore;
  readonly clock: Clock;
  readonly logger: Logger;
  resolveStep(cls: StepClass): BaseStep<unknown>;
  publish(event: SagaEventInput): Promise<PublishReceipt>;
  /** A wait began; `inboxKept` when an inbox event was left for a track that was busy, to be tried on this wait. */
  watch(instanceId: string, track: TrackRef, wait: Wait, inboxKept: boolean): void;
  timer(instanceId: string, track: TrackRef, at: number): void;
  finished(record: InstanceRecord): void;
  idle(actor: InstanceActor): void;
  reportFailure(instanceId: string, message: string, error: unknown): void;
  /** True once the runtime closed: nothing more is written. */
  isClosed(): boolean;
  /** Whether this worker may still run the instance (takes or renews its lease on shared stores; true otherwise). */
  holds(instanceId: string): Promise<boolean>;
  /** True while the runtime drains before a stop: results are still saved, but no new handler call starts. */
  isStopping(): boolean;
  /**
   * The lease to take or renew with each write of this instance (shared stores), or undefined; taken only when no
   * other worker holds it (`ifFreeAt`).
   */
  lease(instanceId: string): { owner: string; until: number; ifFreeAt?: number } | undefined;
  /** The instance's write was refused because another worker holds its lease: this actor no longer runs it. */
  lost(actor: InstanceActor): void;
  /** What child-workflow steps use to start, watch and undo their children. */
  readonly children: ChildHost;
}

/** Extra facts about a happening that the record does not carry. */
export interface PostOptions {
  /** Who asked and why (operator actions), for the history. */
  readonly note?: string;
  /**
   * The happening is an event taken from the inbox: consume that delivery in the same transaction (or on its own
   * when it no longer applies, so it is handled exactly once either way).
   */
  readonly fromInbox?: boolean;
  /** The id of the operator request this happening applies: marked done in the same transaction as its history line. */
  readonly request?: string;
}
