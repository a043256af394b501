import type { Logger } from '../core/logger';
import type { InstanceStore } from '../store/instance-store';
import type { Clock } from '../time/clock';

/** What the scheduler needs of its runtime. */
export interface SchedulerHost {
  readonly clock: Clock;
  readonly store: InstanceStore;
  readonly logger: Logger;
  /** Resolves once the store is ready. */
  ready(): Promise<void>;
  /** False once the runtime stops or closes: due ticks then start nothing. */
  isOpen(): boolean;
  /** The runtime's own start path (idempotent: an existing id returns that instance and creates nothing). */
  start(workflow: string, input: unknown, id: string): Promise<unknown>;
  /** Reports a problem the schedule survived (the runtime's logger and `errors$`). */
  report(message: string, error: unknown, instanceId?: string): void;
}
