import { serializeError, serializeThrown, type SerializedError } from '../errors/serialized-error';
import { checkResult } from '../steps/step-result';
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

  /** Calls `hook` on every observer that has it; `extra` is its third argument (the outcome, for `handleFinish`). */
  async run(hook: ObserverHook, state: unknown, flow: FlowView, mode: 'veto' | 'report', extra?: unknown): Promise<HookRound> {
    const list = this.byHook.get(hook);
    if (list === undefined) return { state, veto: null };
    let current = state;
    for (const bound of list) {
      let raw: unknown;
      try {
        raw = bound.call(current, flow, extra);
        if (raw instanceof Promise) raw = await raw;
      } catch (thrown) {
        const error = serializeThrown(thrown);
        if (bound.critical && mode === 'veto') return { state: current, veto: error };
        this.report({ observer: bound.label, hook, error, flow });
        continue;
      }
      if (raw === undefined) continue;
      let result;
      try {
        result = checkResult(raw, `observer ${bound.label} ${hook}`, HOOK_RESULT_KINDS);
      } catch (malformed) {
        const error = serializeThrown(malformed);
        if (bound.critical && mode === 'veto') return { state: current, veto: error };
        this.report({ observer: bound.label, hook, error, flow });
        continue;
      }
      if (result.kind === 'ok') {
        current = result.state;
        continue;
      }
      if (result.kind !== 'error') continue;
      const reason = serializeError(result.reason);
      const veto: SerializedError = {
        ...reason,
        code: reason.code === 'ERROR' ? 'OBSERVER_VETO' : reason.code,
        details: { ...(reason.details ?? {}), observer: bound.label, hook },
      };
      if (result.state !== undefined) current = result.state;
      if (mode === 'veto') return { state: current, veto };
      this.report({ observer: bound.label, hook, error: veto, flow });
    }
    return { state: current, veto: null };
  }
}
