import { serializeError, serializeThrown, type SerializedError } from '../errors/serialized-error';
import { checkResult } from '../steps/step-result';
import type { Maybe } from '../core/maybe';
import type { ObserverEntry } from '../workflow/workflow-definition';
import { OBSERVER_HOOKS, type FlowView, type Observer, type ObserverHook } from '../observers/observer';

/** What a round of hooks produced: the (possibly changed) state and the first veto, if any. */
export interface HookRound {
  readonly state: unknown;
  readonly veto: SerializedError | null;
}

/** A hook that threw, returned something malformed, or vetoed where vetoes are ignored. */
export interface HookProblem {
  readonly observer: string;
  readonly hook: ObserverHook | 'wrapStep';
  readonly error: SerializedError;
  readonly flow: FlowView;
}

/** One round of a hook over the observers that have it. */
interface Round {
  readonly list: readonly Bound[];
  readonly hook: ObserverHook;
  readonly flow: FlowView;
  readonly mode: 'veto' | 'report';
  readonly extra: unknown;
}

interface Bound {
  readonly label: string;
  readonly critical: boolean;
  readonly call: (state: unknown, flow: FlowView, extra: unknown) => unknown;
}

const HOOK_RESULT_KINDS = new Set(['ok', 'error'] as const);

/**
 * Calls one hook on every observer that has it, in registration order. Throws are isolated (reported),
 * except for critical observers, whose throws become vetoes. `mode: 'veto'` stops at the first veto;
 * `mode: 'report'` reports vetoes and goes on.
 */
export class ObserverRunner {
  private readonly byHook = new Map<ObserverHook, Bound[]>();
  private readonly wrappers: { readonly label: string; readonly wrap: <T>(flow: FlowView, call: () => Promise<T>) => Promise<T> }[] = [];

  constructor(
    entries: readonly ObserverEntry[],
    resolve: (cls: new (...args: never[]) => Observer) => Observer,
    private readonly report: (problem: HookProblem) => void,
  ) {
    for (const entry of entries) {
      const observer: Observer = typeof entry.observer === 'function' ? resolve(entry.observer) : entry.observer;
      const wrapStep: unknown = (observer as Record<string, unknown>).wrapStep;
      if (typeof wrapStep === 'function') {
        const fn = wrapStep as (this: Observer, flow: FlowView, call: () => Promise<unknown>) => Promise<unknown>;
        this.wrappers.push({ label: entry.label, wrap: <T>(flow: FlowView, call: () => Promise<T>) => fn.call(observer, flow, call) as Promise<T> });
      }
      for (const hook of OBSERVER_HOOKS) {
        const fn: unknown = (observer as Record<string, unknown>)[hook];
        if (typeof fn !== 'function') continue;
        let list = this.byHook.get(hook);
        if (list === undefined) this.byHook.set(hook, (list = []));
        list.push({ label: entry.label, critical: entry.critical, call: (state, flow, extra) => (fn as (this: Observer, s: unknown, f: FlowView, x: unknown) => unknown).call(observer, state, flow, extra) });
      }
    }
  }

  /** True when some observer wraps handler calls. */
  get wraps(): boolean {
    return this.wrappers.length > 0;
  }

  /**
   * Makes `call` inside every observer's `wrapStep`, the first-registered outermost. The result is always `call`'s
   * own; a wrapper that fails is reported, and `call` is made (once) all the same.
   */
  wrap<T>(flow: FlowView, call: () => Promise<T>): Promise<T> {
    let inner = call;
    for (let i = this.wrappers.length - 1; i >= 0; i -= 1) {
      const { label, wrap } = this.wrappers[i] as (typeof this.wrappers)[number];
      const next = inner;
      inner = async () => {
        let made: Promise<T> | undefined;
        const once = (): Promise<T> => (made ??= next());
        try {
          await wrap(flow, once);
        } catch (thrown) {
          this.report({ observer: label, hook: 'wrapStep', error: serializeThrown(thrown), flow });
        }
        return once();
      };
    }
    return inner();
  }

  /** True when some observer has this hook. */
  has(hook: ObserverHook): boolean {
    return this.byHook.has(hook);
  }

  /**
   * Calls `hook` on every observer that has it; `extra` is its third argument (the outcome, for `handleFinish`).
   * Synchronous while the hooks are: a promise only once a hook returns one.
   */
  run(hook: ObserverHook, state: unknown, flow: FlowView, mode: 'veto' | 'report', extra?: unknown): Maybe<HookRound> {
    const list = this.byHook.get(hook);
    if (list === undefined) return { state, veto: null };
    return this.runFrom({ list, hook, flow, mode, extra }, 0, state);
  }

  private runFrom(round: Round, from: number, state: unknown): Maybe<HookRound> {
    let current = state;
    for (let i = from; i < round.list.length; i += 1) {
      const bound = round.list[i] as Bound;
      let raw: unknown;
      try {
        raw = bound.call(current, round.flow, round.extra);
      } catch (thrown) {
        const next = this.take(round, bound, current, { thrown });
        if ('done' in next) return next.done;
        current = next.state;
        continue;
      }
      if (raw instanceof Promise) return this.awaitHook(round, i, current, raw as Promise<unknown>);
      const next = this.take(round, bound, current, { raw });
      if ('done' in next) return next.done;
      current = next.state;
    }
    return { state: current, veto: null };
  }

  /** Waits for the hook at `at` (it returned a promise), then goes on with the next ones. */
  private async awaitHook(round: Round, at: number, current: unknown, pending: Promise<unknown>): Promise<HookRound> {
    let settled: { raw: unknown } | { thrown: unknown };
    try {
      settled = { raw: await pending };
    } catch (thrown) {
      settled = { thrown };
    }
    const next = this.take(round, round.list[at] as Bound, current, settled);
    return 'done' in next ? next.done : this.runFrom(round, at + 1, next.state);
  }

  /**
   * What one hook's answer means: go on with this state, or stop the round (a veto in `veto` mode). A throw, a
   * malformed result, or a veto in `report` mode is reported (a critical observer's throw vetoes in `veto` mode).
   */
  private take(round: Round, bound: Bound, current: unknown, settled: { raw: unknown } | { thrown: unknown }): { done: HookRound } | { state: unknown } {
    const { hook, flow, mode } = round;
    let result;
    try {
      if ('thrown' in settled) throw settled.thrown;
      if (settled.raw === undefined) return { state: current };
      result = checkResult(settled.raw, `observer ${bound.label} ${hook}`, HOOK_RESULT_KINDS);
    } catch (thrown) {
      const error = serializeThrown(thrown);
      if (bound.critical && mode === 'veto') return { done: { state: current, veto: error } };
      this.report({ observer: bound.label, hook, error, flow });
      return { state: current };
    }
    if (result.kind === 'ok') return { state: result.state };
    if (result.kind !== 'error') return { state: current };
    const reason = serializeError(result.reason);
    const veto: SerializedError = {
      ...reason,
      code: reason.code === 'ERROR' ? 'OBSERVER_VETO' : reason.code,
      details: { ...(reason.details ?? {}), observer: bound.label, hook },
    };
    const state = result.state !== undefined ? result.state : current;
    if (mode === 'veto') return { done: { state, veto } };
    this.report({ observer: bound.label, hook, error: veto, flow });
    return { state };
  }
}
