import type { LedgerTarget } from './ledger';

/** Where a worker process keeps its sagas. */
export type StoreTarget = { readonly kind: 'sqlite'; readonly file: string } | { readonly kind: 'postgres'; readonly url: string };

/** What a worker process is told to do (its one command-line argument, as JSON). */
export interface WorkerConfig {
  /** The runtime's `workerId`; also the name in the ledger and the log. */
  readonly workerId: string;
  readonly store: StoreTarget;
  readonly ledger: LedgerTarget;
  /** How many sagas the run has (see `plannedSagas`). */
  readonly sagas: number;
  /** Seeds the process's random pauses. */
  readonly seed: number;
  /** The longest pause a step makes before and after its effect. */
  readonly maxPauseMs: number;
  /** At most this many sagas of the run are unfinished at a time (the worker starts the next one when fewer are). */
  readonly maxActive: number;
  /** The longest pause between two starts. */
  readonly maxStartGapMs: number;
  /** Starts the sagas from this index on (wrapping around), so several workers do not all start the same ones first. */
  readonly startOffset: number;
  /** The runtime's lease duration and poll interval (shared stores). */
  readonly leaseDuration?: string;
  readonly pollInterval?: string;
  /** The process exits on its own (code 3) after this long, should its parent never stop it. */
  readonly maxLifetimeMs: number;
}

/** What a worker process tells its parent over the IPC channel. */
export type WorkerMessage =
  /** The store is open (and migrated); the worker waits for `go`, then recovers and works. */
  | { readonly type: 'ready' }
  /** Every saga of the run is final; the process exits with code 0 next. */
  | { readonly type: 'done' };

/** What the parent tells a worker process: `go` once every worker of a run is ready, so none has a head start. */
export type ParentMessage = { readonly type: 'go' };

/** Exit codes of a worker process besides 0 (done) and 1 (an uncaught error). */
export const EXIT_ORPHANED = 2;
export const EXIT_TOO_OLD = 3;
