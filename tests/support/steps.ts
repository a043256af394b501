import { BaseStep, Step, continueWith, error, ok, type SagaEvent, type StepClass, type StepContext, type StepOptions, type StepResult } from '../../src';

/** A shared log of effects, in call order. */
export type Log = string[];

export interface TestState {
  trail: string[];
  [key: string]: unknown;
}

type Behaviour = (state: TestState, ctx: StepContext, event?: SagaEvent) => StepResult<TestState> | Promise<StepResult<TestState>>;

export interface Script {
  run?: Behaviour;
  rollback?: Behaviour;
  runHandleInfo?: Behaviour;
  rollbackHandleInfo?: Behaviour;
}

/**
 * Makes a step class named `name` that records `name.run`, `name.rollback`, … in `log` and appends the same to
 * `state.trail`, then does what `script` says (ok by default).
 */
export function recordingStep(name: string, log: Log, script: Script = {}, options: Omit<StepOptions, 'name'> = {}): StepClass<TestState> {
  const note = (func: string, state: TestState): TestState => {
    log.push(`${name}.${func}`);
    return { ...state, trail: [...(state.trail ?? []), `${name}.${func}`] };
  };
  @Step({ ...options, name })
  class Recorded extends BaseStep<TestState> {
    override async run(state: TestState, ctx: StepContext): Promise<StepResult<TestState>> {
      const next = note('run', state);
      return script.run ? script.run(next, ctx) : ok(next);
    }
    override async rollback(state: TestState, ctx: StepContext): Promise<StepResult<TestState>> {
      const next = note('rollback', state);
      return script.rollback ? script.rollback(next, ctx) : ok(next);
    }
    override async runHandleInfo(event: SagaEvent, state: TestState, ctx: StepContext): Promise<StepResult<TestState>> {
      const next = note('runHandleInfo', state);
      return script.runHandleInfo ? script.runHandleInfo(next, ctx, event) : ok(next);
    }
    override async rollbackHandleInfo(event: SagaEvent, state: TestState, ctx: StepContext): Promise<StepResult<TestState>> {
      const next = note('rollbackHandleInfo', state);
      return script.rollbackHandleInfo ? script.rollbackHandleInfo(next, ctx, event) : ok(next);
    }
  }
  Object.defineProperty(Recorded, 'name', { value: name.replace(/[^A-Za-z0-9]/g, '') || 'Recorded' });
  return Recorded;
}

/** Behaviours used often. */
export const fails = (code = 'BOOM', message = 'it failed'): Behaviour => (state) => error({ code, message }, state);
export const throws = (value: unknown): Behaviour => () => {
  throw value;
};
export const waitsFor = (topic: string, match: Record<string, string | number | boolean | null> = {}, timeout?: string | number): Behaviour => (state) =>
  continueWith(state, timeout === undefined ? { topic, match } : { topic, match, timeout });
