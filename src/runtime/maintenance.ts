/**
 * The runtime's housekeeping once its store is open: storing the outline of every registered definition (for the
 * `sagaflow` CLI and the inspector) and, with a `retention` option, purging finished instances past their age.
 * Failures are reported as `maintenance-failed` and never keep an instance from starting.
 */
import { DefinitionError } from '../errors/definition-error';
import type { WorkflowOutline } from '../workflow/workflow-outline';
import { OutlineRecorder } from './outline-recorder';
import { Retention, retentionPolicy } from './retention';
import type { RuntimeContext } from './runtime-context';
import type { SagaRuntimeOptions } from './runtime-options';

export class Maintenance {
  private readonly outlines: OutlineRecorder;
  private readonly retention: Retention | null;

  constructor(options: SagaRuntimeOptions, private readonly ctx: RuntimeContext) {
    const report = (message: string, error: unknown): void => {
      if (!ctx.closed) ctx.report('maintenance-failed', message, error);
    };
    if (options.retention !== undefined && ctx.store.purge === undefined) {
      throw new DefinitionError('BAD_OPTION', 'new SagaRuntime: retention needs a store that can purge (MemoryStore, TypeormStore); this store has no purge method', { field: 'retention' });
    }
    this.retention =
      options.retention === undefined ? null : new Retention(retentionPolicy(options.retention), { store: ctx.store, clock: ctx.clock, isOpen: () => ctx.open, report });
    this.outlines = new OutlineRecorder(ctx.store, ctx.clock, report);
  }

  /** A definition was registered: its outline is stored (now, or once the store opens). */
  registered(outline: WorkflowOutline): void {
    this.outlines.add(outline);
  }

  /** The store is open: store the outlines registered so far, start retention's rounds. */
  opened(): void {
    this.outlines.opened();
    this.retention?.start();
  }

  /** Runs a retention round now; resolves how many instances it deleted (0 without a `retention` option). */
  purgeNow(): Promise<number> {
    return this.retention?.runRound() ?? Promise.resolve(0);
  }

  /** No more rounds. */
  stop(): void {
    this.retention?.stop();
  }
}
