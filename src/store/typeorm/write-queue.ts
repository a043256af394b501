import { setImmediate as afterTurn } from 'node:timers';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { LeasedElsewhereError, VersionConflictError } from '../../errors/runtime-errors';
import type { Exec, ExecResult } from './dialect';

/** Counters of a {@link WriteQueue}, for tests and benchmarks. */
export interface WriteStats {
  /** Transactions committed (or attempted). */
  transactions: number;
  /** Writes run (each save, create, accepted event, lease operation, …). */
  writes: number;
  /** The most writes one transaction carried. */
  largestBatch: number;
}

/** A write that is one statement, whose result `read` interprets (it may throw a {@link VersionConflictError}). */
export interface Statement<T> {
  readonly sql: string;
  readonly params: readonly unknown[];
  readonly read: (result: ExecResult) => T;
}

interface Job {
  run(exec: Exec): Promise<unknown>;
  readonly statement?: Statement<unknown>;
  resolve(value: unknown): void;
  reject(error: unknown): void;
}

/** A connection a batch runs on: SQLite's one writer, or a connection taken from PostgreSQL's pool for one batch. */
export interface Lane {
  readonly exec: Exec;
  /**
   * Runs a whole batch of one-statement writes in one round trip — `BEGIN`, the statements, `COMMIT` — and answers
   * each statement's result (PostgreSQL). A failure leaves the transaction to be rolled back.
   */
  readonly pipeline?: (statements: readonly Statement<unknown>[]) => Promise<ExecResult[]>;
  /** Gives the connection back (a pooled one), once the batch is over. */
  release(): Promise<void> | void;
}

/** How a {@link WriteQueue} reaches its database. */
export interface WriteQueueOptions {
  /** A connection for one batch. */
  readonly connect: () => Promise<Lane>;
  /** At most this many writes in one transaction. */
  readonly maxBatch: number;
  /** How many batches may run at once, each on its own connection: 1 for SQLite's single writer. @default 1 */
  readonly lanes?: number;
  /** The statement that opens a batch's transaction. @default 'BEGIN' */
  readonly begin?: string;
  /**
   * Runs after each COMMIT, before anyone hears of it; a throw fails the whole batch (the database file vanished,
   * say: what was written cannot be read back).
   */
  readonly checkCommitted?: () => void;
}

/**
 * Group commit. Writes queue up; each free lane takes as many as are waiting (up to `maxBatch`), in FIFO order, and
 * runs them in ONE transaction, while new ones accumulate for the next batch. Nobody hears about a write until the
 * transaction that holds it commits.
 *
 * There is no savepoint per write. A write that finds a stale version (a {@link VersionConflictError}) or another
 * owner's lease ({@link LeasedElsewhereError}) has written nothing — the store's writes check both first — so it
 * fails alone and the batch goes on. Any other failure
 * (a constraint, a table gone, a deadlock) rolls the transaction back, fails that write, and runs the batch again
 * without it: the others still commit, as if each had been alone.
 */
export class WriteQueue {
  readonly stats: WriteStats = { transactions: 0, writes: 0, largestBatch: 0 };
  private pending: Job[] = [];
  private running = 0;
  /** Lanes committing a batch now. */
  private committing = 0;
  private readonly lanes: number;
  private readonly begin: string;
  private readonly idleWaiters: (() => void)[] = [];

  constructor(private readonly options: WriteQueueOptions) {
    this.lanes = Math.max(1, options.lanes ?? 1);
    this.begin = options.begin ?? 'BEGIN';
  }

  /**
   * Queues a write; resolves with its result once its transaction has committed. A write that is one `statement`
   * may go with others in one round trip (see {@link Lane.pipeline}); `run` must then do the same as it.
   */
  submit<T>(run: (exec: Exec) => Promise<T>, statement?: Statement<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.pending.push({ run, ...(statement === undefined ? {} : { statement }), resolve: resolve, reject });
      if (this.running < this.lanes) {
        this.running += 1;
        const loaded = this.recentlyBusy;
        this.markBusy();
        void this.lane(loaded);
      }
    });
  }

  /**
   * True from the start or the end of a lane's work until the next turn of the event loop: writes that arrive then
   * (others of the same burst, continuations of ones just committed: a load) wait a turn to share a batch; a write
   * that finds the queue idle longer goes at once.
   */
  private recentlyBusy = false;

  private markBusy(): void {
    if (this.recentlyBusy) return;
    this.recentlyBusy = true;
    afterTurn(() => {
      this.recentlyBusy = false;
    });
  }

  /** Resolves once every write queued so far has been committed (or has failed). */
  idle(): Promise<void> {
    if (this.running === 0) return Promise.resolve();
    return new Promise<void>((resolve) => this.idleWaiters.push(resolve));
  }

  /** One lane: batches until nothing is waiting; the first at once when the queue was `idle` (not just busy). */
  private async lane(loaded: boolean): Promise<void> {
    let wait = loaded;
    try {
      while (this.pending.length > 0) {
        // Under load, let every caller that is about to write (promise continuations, I/O callbacks) queue first.
        // (The timers module's own setImmediate: a test's fake timers replace only the global one.)
        if (wait) await nextTurn();
        wait = true;
        // Spread what waits over the lanes (each a connection the database serves in parallel); under load every
        // lane's batch still carries many writes.
        const share = Math.ceil(this.pending.length / (this.lanes - this.committing));
        const batch = this.pending.splice(0, Math.min(this.options.maxBatch, share));
        if (batch.length === 0) continue;
        this.committing += 1;
        try {
          await this.commit(batch);
        } finally {
          this.committing -= 1;
        }
      }
    } finally {
      this.running -= 1;
      this.markBusy();
      if (this.running === 0) for (const resolve of this.idleWaiters.splice(0)) resolve();
    }
  }

  private async commit(batch: Job[]): Promise<void> {
    let lane: Lane;
    try {
      lane = await this.options.connect();
    } catch (error) {
      for (const job of batch) job.reject(error);
      return;
    }
    try {
      let jobs = batch;
      if (lane.pipeline !== undefined && jobs.every((job) => job.statement !== undefined)) {
        if (await this.pipelined(lane, jobs)) return;
        // A statement failed: each write runs in a transaction of its own, so only the failing one fails.
        for (const job of jobs) await this.attempt(lane.exec, [job]);
        return;
      }
      while (jobs.length > 0) jobs = await this.attempt(lane.exec, jobs);
    } finally {
      await lane.release();
    }
  }

  /** Runs one-statement jobs in one round trip and one transaction; false (nothing answered) when it failed. */
  private async pipelined(lane: Lane, jobs: Job[]): Promise<boolean> {
    const pipeline = lane.pipeline as NonNullable<Lane['pipeline']>;
    this.stats.transactions += 1;
    this.stats.writes += jobs.length;
    this.stats.largestBatch = Math.max(this.stats.largestBatch, jobs.length);
    let results: ExecResult[];
    try {
      results = await pipeline(jobs.map((job) => job.statement as Statement<unknown>));
    } catch {
      await lane.exec('ROLLBACK').catch(() => undefined);
      return false;
    }
    try {
      this.options.checkCommitted?.();
    } catch (error) {
      for (const job of jobs) job.reject(error);
      return true;
    }
    jobs.forEach((job, i) => {
      try {
        job.resolve((job.statement as Statement<unknown>).read(results[i] as ExecResult));
      } catch (error) {
        job.reject(error);
      }
    });
    return true;
  }

  /**
   * Runs `jobs` in one transaction. Resolves with the jobs to run again (the batch without a write that failed and
   * rolled the transaction back), or none when every job has been answered.
   */
  private async attempt(exec: Exec, jobs: Job[]): Promise<Job[]> {
    this.stats.transactions += 1;
    this.stats.writes += jobs.length;
    this.stats.largestBatch = Math.max(this.stats.largestBatch, jobs.length);
    const outcomes: { ok: boolean; value: unknown }[] = [];
    try {
      await exec(this.begin);
    } catch (error) {
      for (const job of jobs) job.reject(error);
      return [];
    }
    try {
      for (let i = 0; i < jobs.length; i++) {
        const job = jobs[i] as Job;
        try {
          outcomes.push({ ok: true, value: await job.run(exec) });
        } catch (error) {
          if (error instanceof VersionConflictError || error instanceof LeasedElsewhereError) {
            outcomes.push({ ok: false, value: error });
            continue;
          }
          // What this write did (and the transaction) is undone: it fails, the others run again without it.
          await exec('ROLLBACK');
          job.reject(error);
          return jobs.filter((_, j) => j !== i);
        }
      }
      await exec('COMMIT');
    } catch (error) {
      await exec('ROLLBACK').catch(() => undefined);
      for (const job of jobs) job.reject(error);
      return [];
    }
    try {
      this.options.checkCommitted?.();
    } catch (error) {
      for (const job of jobs) job.reject(error);
      return [];
    }
    jobs.forEach((job, i) => {
      const outcome = outcomes[i];
      if (outcome?.ok === true) job.resolve(outcome.value);
      else job.reject(outcome?.value);
    });
    return [];
  }
}
