import type { SagaEvent } from '../bus/event';
import { serializeError, type SerializedError } from '../errors/serialized-error';
import type { FlowView } from '../observers/observer';
import type { ObserverRunner } from '../observers/observer-runner';
import type { StateCodec } from '../state/state-codec';
import type { BaseStep } from '../steps/base-step';
import type { StepContext } from '../steps/step-context';
import { checkResult, type StepResult } from '../steps/step-result';
import type { Outcome } from './decide';
import type { StepFunc } from './flow-fields';

/** Everything one handler call needs. */
export interface Invocation {
  readonly step: BaseStep<unknown>;
  readonly func: StepFunc;
  readonly storedState: unknown;
  readonly event: SagaEvent | null;
  readonly view: FlowView;
  readonly ctx: StepContext;
  readonly codec: StateCodec;
  readonly observers: ObserverRunner;
  readonly validateAfter: boolean;
}

function callHandler(inv: Invocation, state: unknown): unknown {
  const { step, func, event, ctx } = inv;
  switch (func) {
    case 'run':
      return step.run(state, ctx);
    case 'rollback':
      return step.rollback(state, ctx);
    case 'runHandleInfo':
      return step.runHandleInfo(event as SagaEvent, state, ctx);
    case 'rollbackHandleInfo':
      return step.rollbackHandleInfo(event as SagaEvent, state, ctx);
  }
}

function stateOf(codec: StateCodec, state: unknown, where: string): { state: unknown } | { error: SerializedError } {
  try {
    return { state: codec.dehydrate(state, where) };
  } catch (e) {
    return { error: serializeError(e) };
  }
}

/**
 * Performs one handler call the way DESIGN §4 orders it: before-hooks (for `run`/`rollback`), the handler,
 * after-hooks (unless it continued), then turns the result into an {@link Outcome} with stored state.
 * Never throws: every failure is an error outcome.
 */
export async function invokeStep(inv: Invocation): Promise<Outcome> {
  const { codec, observers, view, func } = inv;
  const up = func === 'run' || func === 'runHandleInfo';
  const where = `step ${JSON.stringify(view.stepName)} ${func}`;
  let state = codec.hydrate(inv.storedState);

  if ((func === 'run' || func === 'rollback') && observers.has('handleBeforeStep')) {
    const before = await observers.run('handleBeforeStep', state, view, up ? 'veto' : 'report');
    state = before.state;
    if (before.veto !== null) {
      const stored = stateOf(codec, state, `after handleBeforeStep of ${where}`);
      return 'state' in stored
        ? { kind: 'error', error: before.veto, state: stored.state, started: false }
        : { kind: 'error', error: before.veto, started: false };
    }
  }

  let result: StepResult<unknown>;
  try {
    let raw = callHandler(inv, state);
    if (raw instanceof Promise) raw = await (raw as Promise<unknown>);
    result = checkResult(raw, where);
  } catch (thrown) {
    result = { kind: 'error', reason: thrown };
  }

  if (result.kind === 'continue') {
    const stored = stateOf(codec, result.state, `returned by ${where}`);
    return 'state' in stored ? { kind: 'continue', state: stored.state, wait: result.wait } : { kind: 'error', error: stored.error, started: true };
  }

  let next: unknown = result.kind === 'error' ? (result.state ?? state) : result.state;
  let error: SerializedError | null = result.kind === 'error' ? serializeError(result.reason) : null;

  if (observers.has('handleAfterStep')) {
    const summary = { kind: result.kind, step: view.stepName ?? '', func };
    const afterView: FlowView = { ...view, lastResult: error === null ? summary : { ...summary, code: error.code } };
    const after = await observers.run('handleAfterStep', next, afterView, up ? 'veto' : 'report');
    next = after.state;
    if (after.veto !== null && error === null) error = after.veto;
  }

  const stored = stateOf(codec, next, `returned by ${where}`);
  if (!('state' in stored)) return { kind: 'error', error: error ?? stored.error, started: true };
  if (error !== null) return { kind: 'error', error, state: stored.state, started: true };

  if (inv.validateAfter && up) {
    const invalid = await codec.check(stored.state);
    if (invalid.length > 0) {
      return {
        kind: 'error',
        error: {
          code: 'STATE_INVALID',
          name: 'StateValidationError',
          message: `the state ${where} returned is invalid: ${invalid.map((p) => p.property).join(', ')}`,
          details: { properties: invalid.map((p) => ({ property: p.property, constraints: p.constraints })) },
        },
        state: stored.state,
        started: true,
      };
    }
  }
  return result.kind === 'goto' ? { kind: 'goto', target: result.target, state: stored.state } : { kind: 'ok', state: stored.state };
}
