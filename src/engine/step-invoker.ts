import type { SagaEvent } from '../bus/event';
import { serializeError, serializeThrown, type SerializedError, quote } from '../errors/serialized-error';
import { StateHydrationError } from '../errors/state-errors';
import { isNotStarted } from '../errors/step-errors';
import type { FlowView } from '../observers/observer';
import type { ObserverRunner } from './observer-runner';
import type { StateCodec } from '../state/state-codec';
import type { BaseStep } from '../steps/base-step';
import type { StepContext } from '../steps/step-context';
import { checkResult, ROLLBACK_KINDS, type RollbackResult } from '../steps/step-result';
import { toMillis } from '../time/duration';
import type { Outcome } from './decide';
import { TimeoutError } from '../errors/step-errors';
import type { Clock } from '../time/clock';
import type { StepFunc } from '../core/flow-fields';

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
  /** A handler call that outlives this fails with `TIMEOUT` (and its signal fires). */
  readonly timeoutMs: number | null;
  readonly clock: Clock;
  /** Fires the call's AbortSignal. */
  readonly abort: (reason: Error) => void;
  /** Told when a call that already timed out settles after all (its result is ignored). */
  readonly onLateSettle: (result: RollbackResult<unknown>) => void;
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
    return { error: serializeThrown(e) };
  }
}

/** Races a handler call against its timeout on the injected clock. */
async function withTimeout(inv: Invocation, pending: Promise<RollbackResult<unknown>>, where: string): Promise<RollbackResult<unknown>> {
  const ms = inv.timeoutMs ?? 0;
  let timedOut = false;
  let handle: ReturnType<Clock['setTimeout']> | undefined;
  const timeout = new Promise<RollbackResult<unknown>>((resolve) => {
    handle = inv.clock.setTimeout(() => {
      timedOut = true;
      const error = new TimeoutError(where, ms);
      inv.abort(error);
      resolve({ kind: 'error', reason: error });
    }, ms);
  });
  const result = await Promise.race([pending, timeout]);
  if (!timedOut) {
    if (handle !== undefined) inv.clock.clearTimeout(handle);
    return result;
  }
  void pending.then(inv.onLateSettle);
  return result;
}

/**
 * Performs one handler call the way DESIGN §4 orders it: before-hooks (for `run`/`rollback`), the handler,
 * after-hooks (unless it continued), then turns the result into an {@link Outcome} with stored state.
 * Never throws: whatever user code returns or throws — or a state that cannot be read back — is an error outcome.
 */
export async function invokeStep(inv: Invocation): Promise<Outcome> {
  try {
    return await callStep(inv);
  } catch (thrown) {
    // Only user values reach here (a state class whose transform throws, say): the step fails with the reason.
    return { kind: 'error', error: serializeThrown(thrown), started: true };
  }
}

async function callStep(inv: Invocation): Promise<Outcome> {
  const { codec, observers, view, func } = inv;
  const up = func === 'run' || func === 'runHandleInfo';
  const where = `step ${quote(view.stepName)} ${func}`;
  let state: unknown;
  try {
    state = codec.hydrate(inv.storedState);
  } catch (thrown) {
    return { kind: 'error', error: serializeError(new StateHydrationError(`for ${where}`, serializeThrown(thrown).message)), started: false };
  }

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

  const call = async (): Promise<RollbackResult<unknown>> => {
    try {
      let raw = callHandler(inv, state);
      if (raw instanceof Promise) raw = await (raw as Promise<unknown>);
      return up ? checkResult(raw, where) : checkResult(raw, where, ROLLBACK_KINDS);
    } catch (thrown) {
      return { kind: 'error', reason: serializeThrown(thrown) };
    }
  };
  const wrapped = observers.wraps ? () => observers.wrap(view, call) : call;
  const result = inv.timeoutMs === null ? await wrapped() : await withTimeout(inv, wrapped(), where);

  if (result.kind === 'continue') {
    const stored = stateOf(codec, result.state, `returned by ${where}`);
    return 'state' in stored ? { kind: 'continue', state: stored.state, wait: result.wait } : { kind: 'error', error: stored.error, started: true };
  }

  let next: unknown = result.kind === 'error' || result.kind === 'abort' ? (result.state ?? state) : result.state;
  let error: SerializedError | null = result.kind === 'error' ? serializeError(result.reason) : null;
  const started = !(result.kind === 'error' && isNotStarted(result.reason));

  if (observers.has('handleAfterStep')) {
    const summary = { kind: result.kind, step: view.stepName ?? '', func };
    const afterView: FlowView = { ...view, lastResult: error === null ? summary : { ...summary, code: error.code } };
    const after = await observers.run('handleAfterStep', next, afterView, up ? 'veto' : 'report');
    next = after.state;
    if (after.veto !== null && error === null) error = after.veto;
  }

  const stored = stateOf(codec, next, `returned by ${where}`);
  if (!('state' in stored)) return { kind: 'error', error: error ?? stored.error, started };
  if (error !== null) return { kind: 'error', error, state: stored.state, started };

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
  switch (result.kind) {
    case 'goto':
      return { kind: 'goto', target: result.target, state: stored.state };
    case 'retryForward':
      return { kind: 'retryForward', state: stored.state, maxRetries: result.maxRetries, backoffMs: result.backoff === undefined ? 0 : toMillis(result.backoff) };
    case 'recover':
      return { kind: 'recover', state: stored.state };
    case 'abort':
      return { kind: 'abort', state: stored.state, reason: serializeError(result.reason) };
    default:
      return { kind: 'ok', state: stored.state };
  }
}
