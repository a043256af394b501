import type { InstanceStore } from '../store/instance-store';
import type { Clock } from '../time/clock';
import type { WorkflowOutline } from '../workflow/workflow-outline';

/**
 * Stores the outline of every registered definition once the store is open, so that the `sagaflow` CLI and the
 * inspector can draw instances without the workflow's code. A failed save is reported, never thrown: it never
 * keeps an instance from starting.
 */
export class OutlineRecorder {
  private pending: WorkflowOutline[] = [];
  private open = false;

  constructor(
    private readonly store: InstanceStore,
    private readonly clock: Clock,
    private readonly report: (message: string, error: unknown) => void,
  ) {}

  /** Saves `outline` now when the store is open, else once it opens. */
  add(outline: WorkflowOutline): void {
    if (this.store.saveOutline === undefined) return;
    if (this.open) this.save(outline);
    else this.pending.push(outline);
  }

  /** The store is open: saves what was registered before. */
  opened(): void {
    if (this.open) return;
    this.open = true;
    const pending = this.pending;
    this.pending = [];
    for (const outline of pending) this.save(outline);
  }

  private save(outline: WorkflowOutline): void {
    this.store.saveOutline?.(outline, this.clock.now()).catch((error: unknown) => this.report(`the outline of ${outline.name} version ${outline.version} could not be stored`, error));
  }
}
