import { setImmediate as nextTurn } from 'node:timers/promises';
import type { Exec } from './dialect';

/** Counters of a {@link WriteQueue}, for tests and benchmarks. */
export interface WriteStats {
  /** Transactions committed (or attempted). */
  transactions: number;
  /** Writes run (each save, create, accepted event, lease operation, …). */
  writes: number;
  /** The most writes one transaction carried. */
  largestBatch: number;
}

interface Job {
  run(exec: Exec): Promise<unknown>;
  resolve(value: unknown): void;
  reject(error: unknown): void;
}

/**
 * The single writer of an SQLite database, with group commit. Writes queue up; the queue runs them in FIFO
 * order, as many as are waiting (up to `maxBatch`) in ONE transaction, while new ones accumulate for the next.
 * Each write runs inside its own savepoint, so one that fails (a version conflict, a bad row) is rolled back
 * alone and the others still commit. Nobody hears about a write until the transaction that holds it commits.
 */
export class WriteQueue {
  readonly stats: WriteStats = { transactions: 0, writes: 0, largestBatch: 0 };
  private pending: Job[] = [];
  private draining: Promise<void> | null = null;

  /**
   * @param checkCommitted Runs after each COMMIT, before anyone hears of it; a throw fails the whole batch (the
   * database file vanished, say: what was written cannot be read back).
   */
  constructor(
    private readonly exec: Exec,
    private readonly maxBatch: number,
    private readonly checkCommitted: () => void = () => undefined,
  ) {}

  /** Queues a write; resolves with its result once its transaction has committed. */
  submit<T>(run: (exec: Exec) => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.pending.push({ run, resolve: resolve, reject });
      this.draining ??= this.drain();
    });
  }

  /** Resolves once every write queued so far has been committed (or has failed). */
  async idle(): Promise<void> {
    while (this.draining !== null) await this.draining;
  }

  private async drain(): Promise<void> {
    try {
      while (this.pending.length > 0) {
        // Let every caller that is about to write (promise continuations, I/O callbacks) queue first. (The
        // timers module's own setImmediate: a test's fake timers replace only the global one.)
        await nextTurn();
        const batch = this.pending.splice(0, this.maxBatch);
        await this.commit(batch);
      }
    } finally {
      this.draining = null;
    }
  }

  private async commit(batch: Job[]): Promise<void> {
    const exec = this.exec;
    const outcomes: { ok: boolean; value: unknown }[] = [];
    this.stats.transactions += 1;
    this.stats.writes += batch.length;
    this.stats.largestBatch = Math.max(this.stats.largestBatch, batch.length);
    try {
      await exec('BEGIN IMMEDIATE');
    } catch (error) {
      for (const job of batch) job.reject(error);
      return;
    }
    const savepoints = batch.length > 1;
    try {
      for (const job of batch) {
        if (savepoints) await exec('SAVEPOINT sagaflow_write');
        try {
          const value = await job.run(exec);
          if (savepoints) await exec('RELEASE sagaflow_write');
          outcomes.push({ ok: true, value });
        } catch (error) {
          if (!savepoints) {
            // A lone write: undo whatever it did by rolling its (one-write) transaction back.
            await exec('ROLLBACK');
            job.reject(error);
            return;
          }
          await exec('ROLLBACK TO sagaflow_write');
          await exec('RELEASE sagaflow_write');
          outcomes.push({ ok: false, value: error });
        }
      }
      await exec('COMMIT');
    } catch (error) {
      await exec('ROLLBACK').catch(() => undefined);
      for (const job of batch) job.reject(error);
      return;
    }
    try {
      this.checkCommitted();
    } catch (error) {
      for (const job of batch) job.reject(error);
      return;
    }
    batch.forEach((job, i) => {
      const outcome = outcomes[i];
      if (outcome?.ok === true) job.resolve(outcome.value);
      else job.reject(outcome?.value);
    });
  }
}
