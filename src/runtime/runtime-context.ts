/**
 * What every part of a runtime shares: its store, bus, clock and logger, this worker's name and leases, whether it
 * is closing, and the one place problems are reported.
 */
import { hostname } from 'node:os';
import { Subject } from 'rxjs';
import { EventBus } from '../bus/event-bus';
import { RuntimeClosedError } from '../errors/runtime-errors';
import { serializeError } from '../errors/serialized-error';
import type { InstanceStore } from '../store/instance-store';
import type { TypeormStore as TypeormStoreClass } from '../store/typeorm';
import { SystemClock, type Clock } from '../time/clock';
import { toMillis } from '../time/duration';
import { consoleLogger, type Logger } from '../core/logger';
import { requireDependency } from '../core/optional-dependency';
import type { RuntimeProblem, SagaRuntimeOptions } from './runtime-options';

/** A promise's two ends, kept by whoever settles it later. */
export interface Deferred<T> {
  resolve(value: T): void;
  reject(error: unknown): void;
}

/** A new random id (a UUID of version 4): for names that must not tell when they were made, such as a worker's. */
export function randomId(): string {
  return globalThis.crypto.randomUUID();
}

/**
 * The embedded SQLite store. TypeORM and better-sqlite3 are loaded only here, so an application that passes its
 * own store never loads them; when one is missing (or better-sqlite3's addon was never built) this throws a
 * `MissingDependencyError` naming the command that fixes it.
 */
function defaultStore(): InstanceStore {
  requireDependency('typeorm', 'the default store of new SagaRuntime() (SQLite through TypeORM)');
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { TypeormStore } = require('../store/typeorm') as { TypeormStore: typeof TypeormStoreClass };
  return TypeormStore.sqlite();
}

export class RuntimeContext {
  readonly store: InstanceStore;
  readonly bus: EventBus;
  readonly clock: Clock;
  readonly logger: Logger;
  /** This worker's name in leases. */
  readonly workerId: string;
  readonly leaseMs: number;
  readonly pollMs: number;
  /** How long an event no wait matched is kept. */
  readonly retentionMs: number;
  /** True when the runtime made its store (the embedded default) and so closes it. */
  readonly ownsStore: boolean;
  readonly problems = new Subject<RuntimeProblem>();
  /** Instances this worker has taken a lease on (released on stop; a lease not renewed simply expires). */
  readonly leased = new Set<string>();
  /** When this worker's lease on a live instance runs out, as last written (with a transition, or a renewal). */
  readonly leaseUntil = new Map<string, number>();
  closed = false;
  stopping = false;
  private readyPromise: Promise<void> | null = null;
  /** Called once the store has opened (the first time {@link ready} succeeds). */
  onReady: () => void = () => undefined;

  constructor(options: SagaRuntimeOptions) {
    this.ownsStore = options.store === undefined;
    this.store = options.store ?? defaultStore();
    this.bus = options.bus ?? new EventBus();
    this.clock = options.clock ?? new SystemClock();
    this.logger = options.logger ?? consoleLogger;
    this.workerId = options.workerId ?? `${hostname()}:${process.pid}:${randomId().slice(0, 8)}`;
    this.leaseMs = toMillis(options.leaseDuration ?? '30s', 'leaseDuration');
    this.pollMs = toMillis(options.pollInterval ?? '1s', 'pollInterval');
    this.retentionMs = toMillis(options.eventRetention ?? '30s', 'eventRetention');
  }

  /** True when several workers may share the store: leases, polling and the inbox are then in use. */
  get shared(): boolean {
    return this.store.shared === true;
  }

  /** True while the runtime takes new work. */
  get open(): boolean {
    return !this.closed && !this.stopping;
  }

  /** The store's init, once; a failed one is tried again by the next call (the database may come up later). */
  ready(): Promise<void> {
    this.readyPromise ??= (this.store.init?.() ?? Promise.resolve()).then(
      () => this.onReady(),
      (error: unknown) => {
        this.readyPromise = null;
        throw error;
      },
    );
    return this.readyPromise;
  }

  /** Takes (or renews) this worker's lease on an instance; false when another worker holds it. */
  acquire(id: string): Promise<boolean> {
    const now = this.clock.now();
    this.leased.add(id);
    const until = now + this.leaseMs;
    return this.store.acquire(id, this.workerId, until, now).then((held) => {
      if (held) this.leaseUntil.set(id, until);
      return held;
    });
  }

  /** @throws RuntimeClosedError once the runtime is stopping or closed. */
  assertOpen(action: string): void {
    if (!this.open) throw new RuntimeClosedError(action);
  }

  /** Logs a problem the runtime survived and publishes it on `errors$`. */
  report(kind: RuntimeProblem['kind'], message: string, error: unknown, instanceId?: string): void {
    const serialized = serializeError(error);
    const problem: RuntimeProblem = instanceId === undefined ? { kind, message, error: serialized } : { kind, message, error: serialized, instanceId };
    this.logger.warn({ kind, instanceId, error: serialized }, message);
    this.problems.next(problem);
  }
}
