// The lifecycle hooks a transition asks for (start of a rollback, the ends, a group's start and end), called on the
// observers before the transition is saved.
import type { FinishOutcome } from '../../observers/observer';
import type { Effect, LifecycleHook } from '../decide';
import { flowView } from '../flow-view';
import type { InstanceRecord } from '../instance-record';
import type { ActorHost, WorkflowServices } from './actor-host';
import type { Maybe } from '../../core/maybe';

/** The lifecycle hooks of an end; `handleFinish` follows each. */
const FINAL_HOOKS: ReadonlySet<LifecycleHook> = new Set(['handleWorkflowSuccess', 'handleWorkflowFailure', 'handleCompensationFailed']);

/** Calls an instance's lifecycle hooks on its workflow's observers; a hook that fails is reported, never thrown. */
export class LifecycleHooks {
  constructor(
    private readonly host: ActorHost,
    private readonly services: WorkflowServices,
  ) {}

  /**
   * Calls the observers' lifecycle hooks the effects ask for, in order, letting them change the draft's state.
   * Synchronous when no observer has a hook they ask for (the common case: a step's result, no end).
   */
  run(draft: InstanceRecord, effects: readonly Effect[]): Maybe<void> {
    const { observers } = this.services;
    const wanted = (hook: LifecycleHook): boolean => observers.has(hook) || (FINAL_HOOKS.has(hook) && observers.has('handleFinish'));
    if (!effects.some((e) => e.type === 'hook' && wanted(e.hook))) return undefined;
    return this.runAll(draft, effects);
  }

  private async runAll(draft: InstanceRecord, effects: readonly Effect[]): Promise<void> {
    const { observers } = this.services;
    for (const effect of effects) {
      if (effect.type !== 'hook') continue;
      if (observers.has(effect.hook)) await this.lifecycle(draft, effect.hook, effect.group);
      // Whatever the end, handleFinish follows the hook of that end.
      if (FINAL_HOOKS.has(effect.hook) && observers.has('handleFinish')) await this.lifecycle(draft, 'handleFinish', null);
    }
  }

  private async lifecycle(draft: InstanceRecord, hook: LifecycleHook, group: string | null): Promise<void> {
    const { observers, codec, def } = this.services;
    if (!observers.has(hook)) return;
    const base = flowView(draft, null);
    const view = group === null ? base : { ...base, group, stepName: group, stepIndex: def.nodeIndex.get(group) ?? base.stepIndex };
    const changesState = hook !== 'handleGroupStart' && hook !== 'handleGroupEnd';
    let state: unknown;
    try {
      state = codec.hydrate(draft.state);
    } catch (error) {
      this.host.reportFailure(draft.id, `${hook} was not called: the state could not be made into its class`, error);
      return;
    }
    const outcome: FinishOutcome | undefined =
      hook === 'handleFinish' ? { status: draft.flow.status as FinishOutcome['status'], error: draft.flow.errorReason } : undefined;
    const round = await observers.run(hook, state, view, 'report', outcome);
    if (!changesState) return;
    try {
      draft.state = codec.dehydrate(round.state, `returned by ${hook}`);
    } catch (error) {
      this.host.reportFailure(draft.id, `${hook} returned a state that cannot be stored; it was ignored`, error);
    }
  }
}
