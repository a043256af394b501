import type { SagaEvent } from '../bus/event';
import type { FlowView } from '../observers/observer';
import { serializeError, serializeThrown, type SerializedError, quote } from '../errors/serialized-error';
import { StateHydrationError } from '../errors/state-errors';
import { isNotStarted } from '../errors/step-errors';
import type { StateCodec } from '../state/state-codec';
import type { BaseStep } from '../steps/base-step';
import type { StepContext } from '../steps/step-context';
import { checkResult, ROLLBACK_KINDS, type RollbackResult } from '../steps/step-result';
import { toMillis } from '../time/duration';
import type { Outcome } from './decide';
import { TimeoutError } from '../errors/step-errors';
import type { Clock } from '../time/clock';
import { directionOf, type StepFunc } from '../core/flow-fields';
import type { Maybe } from '../core/maybe';
import type { HookRound, ObserverRunner } from './observer-runner';
import { withLastResult } from './flow-view';
import { copyJson } from '../core/safe-json';

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

/**
 * Calls the handler. A `*HandleInfo` handler gets its own copy of the event: the record keeps the event it handles
 * (`handling`, shared with the MemoryStore's snapshot and read again by a retry), and user code may change what it gets.
 */
function callHandler(inv: Invocation, state: unknown): unknown {
  const { step, func, event, ctx } = inv;
  switch (func) {
    case 'run':
      return step.run(state, ctx);
    case 'rollback':
      return step.rollback(state, ctx);
    case 'runHandleInfo':
      return step.runHandleInfo(copyJson(event as SagaEvent), state, ctx);
    case 'rollbackHandleInfo':
      return step.rollbackHandleInfo(copyJson(event as SagaEvent), state, ctx);
  }
}

function stateOf(codec: StateCodec, state: unknown, where: string): { state: unknown } | { error: SerializedError } {
  try {
    return { state: codec.dehydrate(state, where) };
  } catch (e) {
    return { error: serializeThrown(e) };
  }
}

/**
 * What a handler call gave: its checked result, or a failure already in its stored form (it threw, returned
 * something malformed, or timed out), which is not serialised a second time.
 */
type CallResult = RollbackResult<unknown> | { readonly kind: 'failed'; readonly error: SerializedError };

function failed(thrown: unknown): CallResult {
  return { kind: 'failed', error: serializeThrown(thrown) };
}

/** Races a handler call against its timeout on the injected clock. */
async function withTimeout(inv: Invocation, pending: Promise<CallResult>, where: string): Promise<CallResult> {
  const ms = inv.timeoutMs ?? 0;
  let timedOut = false;
  let handle: ReturnType<Clock['setTimeout']> | undefined;
  const timeout = new Promise<CallResult>((resolve) => {
    handle = inv.clock.setTimeout(() => {
      timedOut = true;
      const error = new TimeoutError(where, ms);
      inv.abort(error);
      resolve({ kind: 'failed', error: serializeError(error) });
    }, ms);
  });
  const result = await Promise.race([pending, timeout]);
  if (!timedOut) {
    if (handle !== undefined) inv.clock.clearTimeout(handle);
    return result;
  }
  void pending.then((late) => inv.onLateSettle(late.kind === 'failed' ? { kind: 'error', reason: late.error } : late));
  return result;
}

/** `step "name" func`, for messages: made once per step and function, not per call. */
const wheres = new Map<string | null, Partial<Record<StepFunc, string>>>();
function whereOf(stepName: string | null, func: StepFunc): string {
  let byFunc = wheres.get(stepName);
  if (byFunc === undefined) {
    byFunc = {};
    if (wheres.size < 10_000) wheres.set(stepName, byFunc);
  }
  return (byFunc[func] ??= `step ${quote(stepName)} ${func}`);
}

/**
 * Performs one handler call the way DESIGN §4 orders it: before-hooks (for `run`/`rollback`), the handler,
 * after-hooks (unless it continued), then turns the result into an {@link Outcome} with stored state.
 * Never throws: whatever user code returns or throws — or a state that cannot be read back — is an error outcome.
 * Synchronous (no promise) while the handler, the hooks and the state check are; a promise once one of them is not.
 */
export function invokeStep(inv: Invocation): Maybe<Outcome> {
  try {
    const outcome = callStep(inv);
    return outcome instanceof Promise ? outcome.catch(failedOutcome) : outcome;
  } catch (thrown) {
    return failedOutcome(thrown);
  }
}

/** Only user values reach here (a state class whose transform throws, say): the step fails with the reason. */
function failedOutcome(thrown: unknown): Outcome {
  return { kind: 'error', error: serializeThrown(thrown), started: true };
}

function callStep(inv: Invocation): Maybe<Outcome> {
  const { codec, observers, view, func } = inv;
  const up = isUp(func);
  const where = whereOf(view.stepName, func);
  let state: unknown;
  try {
    state = codec.hydrate(inv.storedState);
  } catch (thrown) {
    return { kind: 'error', error: serializeError(new StateHydrationError(`for ${where}`, serializeThrown(thrown).message)), started: false };
  }
  if ((func === 'run' || func === 'rollback') && observers.has('handleBeforeStep')) {
    const round = observers.run('handleBeforeStep', state, view, up ? 'veto' : 'report');
    return round instanceof Promise ? round.then((before) => afterBeforeHooks(inv, before, where)) : afterBeforeHooks(inv, round, where);
  }
  return callHandlerAt(inv, state, where);
}

/** Calls the handler unless a before-hook vetoed (then the step never started). */
function afterBeforeHooks(inv: Invocation, before: HookRound, where: string): Maybe<Outcome> {
  if (before.veto === null) return callHandlerAt(inv, before.state, where);
  const stored = stateOf(inv.codec, before.state, `after handleBeforeStep of ${where}`);
  return 'state' in stored
    ? { kind: 'error', error: before.veto, state: stored.state, started: false }
    : { kind: 'error', error: before.veto, started: false };
}

/**
 * Calls the handler (inside the observers' wrappers, against its timeout), then finishes with its result. No
 * closure is made when everything answers at once.
 */
function callHandlerAt(inv: Invocation, state: unknown, where: string): Maybe<Outcome> {
  const result = inv.observers.wraps ? inv.observers.wrap(inv.view, () => Promise.resolve(callChecked(inv, state, where))) : callChecked(inv, state, where);
  if (!(result instanceof Promise)) return finish(inv, state, result, where);
  // A handler that answered at once cannot time out; one that returned a promise races its timeout.
  const settled = inv.timeoutMs === null ? result : withTimeout(inv, result, where);
  return settled.then((r) => finish(inv, state, r, where));
}

/** The handler's answer, checked: a throw, a rejection or a malformed result is a failure in its stored form. */
function callChecked(inv: Invocation, state: unknown, where: string): Maybe<CallResult> {
  let raw: unknown;
  try {
    raw = callHandler(inv, state);
  } catch (thrown) {
    return failed(thrown);
  }
  return raw instanceof Promise ? (raw as Promise<unknown>).then((value) => checked(inv, value, where), failed) : checked(inv, raw, where);
}

function checked(inv: Invocation, raw: unknown, where: string): CallResult {
  try {
    return isUp(inv.func) ? checkResult(raw, where) : checkResult(raw, where, ROLLBACK_KINDS);
  } catch (thrown) {
    return failed(thrown);
  }
}

function isUp(func: StepFunc): boolean {
  return directionOf(func) === 'up';
}

/** The after-hooks (unless the call continued), then the outcome with the state in its stored form. */
function finish(inv: Invocation, state: unknown, result: CallResult, where: string): Maybe<Outcome> {
  const { codec, observers, view, func } = inv;
  if (result.kind === 'continue') {
    const stored = stateOf(codec, result.state, `returned by ${where}`);
    return 'state' in stored ? { kind: 'continue', state: stored.state, wait: result.wait } : { kind: 'error', error: stored.error, started: true };
  }
  const next: unknown = result.kind === 'failed' ? state : result.kind === 'error' || result.kind === 'abort' ? (result.state ?? state) : result.state;
  const error: SerializedError | null = result.kind === 'failed' ? result.error : result.kind === 'error' ? serializeError(result.reason) : null;
  const started = !(result.kind === 'error' && isNotStarted(result.reason));
  if (!observers.has('handleAfterStep')) return stored(inv, result, next, error, started, where);
  const kind = result.kind === 'failed' ? 'error' : result.kind;
  const summary = { kind, step: view.stepName ?? '', func };
  const afterView = withLastResult(view, error === null ? summary : { ...summary, code: error.code });
  const round = observers.run('handleAfterStep', next, afterView, isUp(func) ? 'veto' : 'report');
  const done = (after: HookRound): Maybe<Outcome> => stored(inv, result, after.state, after.veto !== null && error === null ? after.veto : error, started, where);
  return round instanceof Promise ? round.then(done) : done(round);
}

/** The outcome of a call that did not continue, its state stored (and validated, when the workflow asks). */
function stored(inv: Invocation, result: Exclude<CallResult, { kind: 'continue' }>, next: unknown, error: SerializedError | null, started: boolean, where: string): Maybe<Outcome> {
  const kept = stateOf(inv.codec, next, `returned by ${where}`);
  if (!('state' in kept)) return { kind: 'error', error: error ?? kept.error, started };
  if (error !== null) return { kind: 'error', error, state: kept.state, started };
  const up = isUp(inv.func);
  if (!inv.validateAfter || !up) return outcomeOf(result, kept.state);
  return inv.codec.check(kept.state).then((invalid): Outcome => {
    if (invalid.length === 0) return outcomeOf(result, kept.state);
    return {
      kind: 'error',
      error: {
        code: 'STATE_INVALID',
        name: 'StateValidationError',
        message: `the state ${where} returned is invalid: ${invalid.map((p) => p.property).join(', ')}`,
        details: { properties: invalid.map((p) => ({ property: p.property, constraints: p.constraints })) },
      },
      state: kept.state,
      started: true,
    };
  });
}

function outcomeOf(result: Exclude<CallResult, { kind: 'continue' }>, state: unknown): Outcome {
  switch (result.kind) {
    case 'goto':
      return { kind: 'goto', target: result.target, state };
    case 'retryForward':
      return { kind: 'retryForward', state, maxRetries: result.maxRetries, backoffMs: result.backoff === undefined ? 0 : toMillis(result.backoff) };
    case 'recover':
      return { kind: 'recover', state };
    case 'abort':
      return { kind: 'abort', state, reason: serializeError(result.reason) };
    default:
      return { kind: 'ok', state };
  }
}
