import type { FlowView, Observer, ObserverHook } from '../observers/observer';

/** One hook call as the {@link RecordingObserver} saw it. */
export interface RecordedHook {
  readonly hook: ObserverHook;
  readonly flow: FlowView;
  readonly state: unknown;
}

/** Short names for hooks in {@link RecordingObserver.lines}. */
const SHORT: Record<ObserverHook, string> = {
  handleInit: 'init',
  handleBeforeStep: 'before',
  handleAfterStep: 'after',
  handleStartRollback: 'startRollback',
  handleWorkflowSuccess: 'success',
  handleWorkflowFailure: 'failure',
  handleCompensationFailed: 'compensationFailed',
  handleFinish: 'finish',
  handleGroupStart: 'groupStart',
  handleGroupEnd: 'groupEnd',
};

/**
 * An observer that records every hook call (with a structured clone of the state) and changes nothing — every hook
 * but `handleFinish`, which repeats the end its status-specific hook already records.
 * Give several the same `log` array to see their order.
 *
 * @example
 * const log: string[] = [];
 * const o1 = new RecordingObserver('O1', log);
 * // ... run a workflow with observers: [o1]
 * expect(log).toEqual(['O1.init', 'O1.before A', 'O1.after A', 'O1.success']);
 */
export class RecordingObserver implements Observer {
  /** Every call, in order. */
  readonly calls: RecordedHook[] = [];

  constructor(
    readonly label = 'observer',
    private readonly log: string[] = [],
  ) {}

  /** `label.hook step` lines, e.g. `O1.before A`, in call order (shared with other recorders given the same log). */
  get lines(): readonly string[] {
    return this.log;
  }

  private record(hook: ObserverHook, state: unknown, flow: FlowView): void {
    this.calls.push({ hook, flow, state: structuredClone(state) });
    const step = hook === 'handleBeforeStep' || hook === 'handleAfterStep' ? ` ${flow.stepName ?? ''}` : hook === 'handleGroupStart' || hook === 'handleGroupEnd' ? ` ${flow.group ?? ''}` : '';
    this.log.push(`${this.label}.${SHORT[hook]}${step}`);
  }

  handleInit(state: unknown, flow: FlowView): void {
    this.record('handleInit', state, flow);
  }
  handleBeforeStep(state: unknown, flow: FlowView): void {
    this.record('handleBeforeStep', state, flow);
  }
  handleAfterStep(state: unknown, flow: FlowView): void {
    this.record('handleAfterStep', state, flow);
  }
  handleStartRollback(state: unknown, flow: FlowView): void {
    this.record('handleStartRollback', state, flow);
  }
  handleWorkflowSuccess(state: unknown, flow: FlowView): void {
    this.record('handleWorkflowSuccess', state, flow);
  }
  handleWorkflowFailure(state: unknown, flow: FlowView): void {
    this.record('handleWorkflowFailure', state, flow);
  }
  handleCompensationFailed(state: unknown, flow: FlowView): void {
    this.record('handleCompensationFailed', state, flow);
  }
  handleGroupStart(state: unknown, flow: FlowView): void {
    this.record('handleGroupStart', state, flow);
  }
  handleGroupEnd(state: unknown, flow: FlowView): void {
    this.record('handleGroupEnd', state, flow);
  }
}
