/**
 * Retention: finished instances are deleted once they are older than the policy says, in bounded batches, on the
 * runtime's clock. `compensation_failed` and `blocked` instances are never purged automatically (an operator has
 * something to look at); unfinished ones never at all.
 */
import { DefinitionError } from '../errors/definition-error';
import { quote } from '../errors/serialized-error';
import { checkOptions, optionKeys } from '../input/known-keys';
import type { InstanceStatus } from '../core/flow-fields';
import type { InstanceStore } from '../store/instance-store';
import type { Clock, TimerHandle } from '../time/clock';
import { toMillis, type Duration } from '../time/duration';

/** The `retention` option of the runtime: how long finished instances are kept. Unset statuses are kept for ever. */
export interface RetentionOptions {
  /** How long a `completed` instance is kept after its last update. @default for ever */
  readonly completed?: Duration;
  /** How long a `rolled_back` instance is kept after its last update. @default for ever */
  readonly rolledBack?: Duration;
  /** How often the runtime purges (the first round runs when the store opens). @default '1h' */
  readonly interval?: Duration;
  /** The most instances one transaction deletes; a round deletes batch after batch until a batch comes back short. @default 500 */
  readonly batchSize?: number;
}

/** The names of {@link RetentionOptions}. */
export const RETENTION_KEYS = optionKeys<RetentionOptions>()(['completed', 'rolledBack', 'interval', 'batchSize']);

/** A checked retention policy. */
export interface RetentionPolicy {
  readonly ages: readonly { readonly status: InstanceStatus; readonly ms: number }[];
  readonly intervalMs: number;
  readonly batchSize: number;
}

/**
 * Checks the `retention` option.
 * @throws DefinitionError `BAD_OPTION` (a `compensationFailed` or `blocked` key says those are purged by hand only)
 */
export function retentionPolicy(options: RetentionOptions, where = 'new SagaRuntime: retention'): RetentionPolicy {
  if (typeof options === 'object' && options !== null) {
    for (const never of ['compensationFailed', 'blocked']) {
      if (never in options) {
        throw new DefinitionError(
          'BAD_OPTION',
          never === 'blocked'
            ? `${where}: blocked instances are never purged (they are unfinished: an operator registers their version again, migrates or cancels them)`
            : `${where}: compensationFailed instances are never purged automatically (an operator has something to look at); purge them by hand with \`sagaflow purge --status compensation_failed\` once dealt with`,
          { where, field: never },
        );
      }
    }
  }
  checkOptions(options, RETENTION_KEYS, where);
  const ages: { status: InstanceStatus; ms: number }[] = [];
  if (options.completed !== undefined) ages.push({ status: 'completed', ms: toMillis(options.completed, `${where}: completed`) });
  if (options.rolledBack !== undefined) ages.push({ status: 'rolled_back', ms: toMillis(options.rolledBack, `${where}: rolledBack`) });
  const intervalMs = toMillis(options.interval ?? '1h', `${where}: interval`);
  if (intervalMs < 1) throw new DefinitionError('BAD_OPTION', `${where}: interval must be at least 1 ms, got ${quote(options.interval)}`, { where, field: 'interval' });
  const batchSize = options.batchSize ?? 500;
  if (!Number.isSafeInteger(batchSize) || batchSize < 1) throw new DefinitionError('BAD_OPTION', `${where}: batchSize must be a whole number of at least 1, got ${quote(options.batchSize)}`, { where, field: 'batchSize' });
  return { ages, intervalMs, batchSize };
}

/** What the runtime lends its retention. */
export interface RetentionHost {
  readonly store: InstanceStore;
  readonly clock: Clock;
  /** True while the runtime accepts work. */
  isOpen(): boolean;
  /** Reports a failed round (the next one tries again). */
  report(message: string, error: unknown): void;
}

/** Purges finished instances past their age, a round at every interval. */
export class Retention {
  private timer: TimerHandle | null = null;
  private round: Promise<number> | null = null;
  private started = false;

  constructor(
    private readonly policy: RetentionPolicy,
    private readonly host: RetentionHost,
  ) {}

  /** Runs the first round now and schedules the next ones (once; later calls do nothing). */
  start(): void {
    if (this.started) return;
    this.started = true;
    void this.runRound();
  }

  /** One round now (not overlapping a round in progress): resolves how many instances it deleted. */
  runRound(): Promise<number> {
    this.round ??= this.purgeAll()
      .catch((error: unknown) => {
        this.host.report('finished instances could not be purged; the next round will try again', error);
        return 0;
      })
      .finally(() => {
        this.round = null;
        this.schedule();
      });
    return this.round;
  }

  /** Cancels the next round. */
  stop(): void {
    if (this.timer !== null) this.host.clock.clearTimeout(this.timer);
    this.timer = null;
  }

  private schedule(): void {
    this.stop();
    if (this.host.isOpen()) this.timer = this.host.clock.setTimeout(() => void this.runRound(), this.policy.intervalMs);
  }

  private async purgeAll(): Promise<number> {
    const purge = this.host.store.purge?.bind(this.host.store);
    if (purge === undefined) return 0;
    let deleted = 0;
    for (const { status, ms } of this.policy.ages) {
      const before = this.host.clock.now() - ms;
      for (;;) {
        if (!this.host.isOpen()) return deleted;
        const ids = await purge({ before, statuses: [status], limit: this.policy.batchSize });
        deleted += ids.length;
        if (ids.length < this.policy.batchSize) break;
      }
    }
    return deleted;
  }
}
