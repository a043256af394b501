import type { Observer } from './observer';

/** Options of {@link HistoryObserver}. */
export interface HistoryObserverOptions {
  /**
   * Dot paths of state fields whose values never reach the history (personal data, secrets): a change to them is
   * recorded with the value `'[redacted]'`. @default []
   */
  readonly redact?: readonly string[];
}

/** Marks the observers that turn on state-change recording (read by the runtime). @internal */
export const RECORDS_STATE_CHANGES: unique symbol = Symbol('sagaflow.recordsStateChanges');

/**
 * Tracks state changes as an observer: with it registered, every step result in the instance's history
 * (`runtime.history(id)`) carries `stateChange`, the JSON Patch (RFC 6902) from the state the step received to the
 * state it returned — a diff, not a copy. The lines are written in the same transaction as the transition, into the
 * store's history (the `sagaflow_history` table with the TypeORM store).
 *
 * @example
 * ‍@Workflow({ name: 'order-checkout', steps: [...], observers: [new HistoryObserver({ redact: ['card.number'] })] })
 * class OrderCheckout {}
 * // later
 * const changes = (await runtime.history(id)).filter((h) => h.stateChange);
 */
export class HistoryObserver implements Observer {
  readonly [RECORDS_STATE_CHANGES]: HistoryObserverOptions;

  constructor(options: HistoryObserverOptions = {}) {
    this[RECORDS_STATE_CHANGES] = { redact: [...(options.redact ?? [])] };
  }

  /** The observer does its work inside the transition; its hooks change nothing. */
  handleInit(): void {
    return undefined;
  }
}

/** The state-change options of the first HistoryObserver among `observers`, or undefined. @internal */
export function stateChangeOptions(observers: readonly unknown[]): HistoryObserverOptions | undefined {
  for (const o of observers) {
    if (o === HistoryObserver) return {};
    if (typeof o === 'object' && o !== null && RECORDS_STATE_CHANGES in o) return (o as HistoryObserver)[RECORDS_STATE_CHANGES];
  }
  return undefined;
}
