import type { SagaRuntime, StopReport } from './saga-runtime';
import { checkBoolean, checkOptions, optionKeys } from '../input/known-keys';
import type { Duration } from '../time/duration';

/** Options of {@link stopOnSignals}. */
export interface StopOnSignalsOptions {
  /** The signals that stop the runtime. @default ['SIGTERM', 'SIGINT'] */
  readonly signals?: readonly NodeJS.Signals[];
  /** Passed to `runtime.stop`. @default '30s' */
  readonly drainTimeout?: Duration;
  /** Exit the process once stopped (code 0, or 1 when the stop failed). @default true */
  readonly exit?: boolean;
  /** Told when the stop is done (before any exit). @default nothing */
  readonly onStopped?: (report: StopReport | Error) => void;
}

/**
 * Stops `runtime` gracefully on SIGTERM/SIGINT: drains the calls in flight (up to `drainTimeout`), releases leases,
 * closes, then exits. A second signal during the drain is ignored (the drain already has a deadline). Returns a
 * function that removes the handlers.
 *
 * @example
 * const runtime = new SagaRuntime({ workflows: [OrderCheckout] });
 * await runtime.start();
 * stopOnSignals(runtime, { drainTimeout: '10s' });
 */
export function stopOnSignals(runtime: SagaRuntime, options: StopOnSignalsOptions = {}): () => void {
  checkOptions(options, optionKeys<StopOnSignalsOptions>()(['signals', 'drainTimeout', 'exit', 'onStopped']), 'stopOnSignals');
  checkBoolean(options.exit, 'exit', 'stopOnSignals');
  const signals = options.signals ?? ['SIGTERM', 'SIGINT'];
  let stopping = false;
  const handler = (): void => {
    if (stopping) return;
    stopping = true;
    runtime.stop(options.drainTimeout === undefined ? {} : { drainTimeout: options.drainTimeout }).then(
      (report) => {
        options.onStopped?.(report);
        if (options.exit ?? true) process.exit(0);
      },
      (error: unknown) => {
        options.onStopped?.(error instanceof Error ? error : new Error(String(error)));
        if (options.exit ?? true) process.exit(1);
      },
    );
  };
  for (const s of signals) process.on(s, handler);
  return () => {
    for (const s of signals) process.off(s, handler);
  };
}
