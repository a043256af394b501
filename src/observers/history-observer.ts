import type { Observer } from './observer';
import { Redaction } from './redaction';
import { checkOptions } from '../input/known-keys';

/** Options of {@link HistoryObserver}. */
export interface HistoryObserverOptions {
  /**
   * Dot paths of state fields whose values never reach the history (personal data, secrets): a change to them is
   * recorded with the value `'[redacted]'`. A `*` segment matches every key of an object or every item of an array:
   * `['customer.email', 'cards.*.number']` — the same paths as the LoggingObserver's `redact`. @default []
   */
  readonly redact?: readonly string[];
}

/** How a workflow's history records state changes: with this redaction. @internal */
export interface StateChangeRecording {
  readonly redaction: Redaction;
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
  readonly [RECORDS_STATE_CHANGES]: StateChangeRecording;

  constructor(options: HistoryObserverOptions = {}) {
    checkOptions(options, ['redact'], 'new HistoryObserver');
    this[RECORDS_STATE_CHANGES] = { redaction: Redaction.of(options.redact, 'new HistoryObserver') };
  }

  /** The observer does its work inside the transition; its hooks change nothing. */
  handleInit(): void {
    return undefined;
  }
}

/** The state-change recording of the first HistoryObserver among `observers`, or undefined. @internal */
export function stateChangeOptions(observers: readonly unknown[]): StateChangeRecording | undefined {
  for (const o of observers) {
    if (o === HistoryObserver) return { redaction: Redaction.none };
    if (typeof o === 'object' && o !== null && RECORDS_STATE_CHANGES in o) return (o as HistoryObserver)[RECORDS_STATE_CHANGES];
  }
  return undefined;
}
