/**
 * Operator acts as requests in the store (DESIGN §11): the runtime's own operator methods write one and apply it at
 * once when they can; requests other processes wrote (the `sagaflow` CLI, the inspector, another runtime) are found by
 * a poll on the runtime's clock and applied by whichever worker runs the instance, which records who, why and when
 * in its history and marks the request done — or failed, with the error.
 */
import { InstanceBlockedError, LeasedElsewhereError, RuntimeClosedError } from '../errors/runtime-errors';
import { SagaflowError } from '../errors/sagaflow-error';
import { serializeThrown } from '../errors/serialized-error';
import { requestFailure, type OperatorRequest, type OperatorRequestInput } from '../store/operator-request';
import type { EventDelivery } from './event-delivery';
import type { Instances } from './instances';
import type { OperatorApi } from './operator-api';
import { noteText } from './operator-input';
import { PollLoop } from './poll-loop';
import type { Registry } from './registry';
import type { RuntimeContext } from './runtime-context';
import { timeOrderedId } from '../core/time-ordered-id';
import type { OperatorNote } from './runtime-options';

/**
 * Thrown by {@link OperatorRequests.apply} when this runtime cannot apply the request now (another worker runs the
 * instance, nobody can yet, the runtime closed, or the store failed for a moment): the request stays pending.
 */
class NotHere extends Error {
  constructor(readonly why: unknown) {
    super('not applicable here');
  }
}

/** The codes with which an instance refuses a request as it is: recorded on the request as its final answer. */
const REFUSALS: ReadonlySet<string> = new Set(['INVALID_OPERATION', 'INSTANCE_FINISHED', 'UNKNOWN_INSTANCE', 'INVALID_ARGUMENT', 'BAD_OPTION']);

export class OperatorRequests {
  private readonly polls: PollLoop;
  private started = false;
  /** Requests being applied, by instance: one instance's requests apply one after the other. */
  private readonly applying = new Map<string, Promise<void>>();

  constructor(
    private readonly ctx: RuntimeContext,
    private readonly registry: Registry,
    private readonly instances: Instances,
    private readonly events: EventDelivery,
    private readonly operator: OperatorApi,
  ) {
    this.polls = new PollLoop(ctx, () => this.pollRound(), 'operator requests could not be read; the next poll will try again');
  }

  /** True when requests can come from elsewhere: the store is shared, or other processes may open it. */
  private get watched(): boolean {
    const store = this.ctx.store;
    return store.requestInstances !== undefined && (store.shared === true || store.multiProcess === true);
  }

  /**
   * Writes a request (checked against the stored instance) and applies it here when this runtime can; resolves once
   * it is applied and recorded — by this runtime or, on a shared store, by the worker that holds the instance.
   * @throws UnknownInstanceError; SagaflowError `INSTANCE_FINISHED`; InvalidOperationError `INVALID_OPERATION`;
   * InstanceBlockedError when no runtime can run the instance yet (the request stays, for the one that will)
   */
  async ask(input: OperatorRequestInput): Promise<void> {
    const ctx = this.ctx;
    ctx.assertOpen(input.kind);
    await ctx.ready();
    const store = ctx.store;
    if (store.request === undefined || store.requestById === undefined || store.pendingRequests === undefined || store.finishRequest === undefined) {
      // A store that keeps no requests: the act is applied here directly.
      await this.act(input);
      return;
    }
    const request = await store.request(input, timeOrderedId(), ctx.clock.now());
    try {
      await this.applyPending(input.instanceId, request.id);
    } catch (error) {
      if (!(error instanceof NotHere)) throw error;
      if (!ctx.shared || !(error.why instanceof LeasedElsewhereError)) throw error.why;
      await this.waitFor(request);
    }
  }

  /** Starts looking for requests written elsewhere (once the runtime runs instances). */
  start(): void {
    if (this.started || !this.watched) return;
    this.started = true;
    void this.polls.run();
  }

  /** No more polls. */
  stop(): void {
    this.polls.stop();
  }

  /**
   * Applies the pending requests of an instance in order. With `mine`, rethrows that request's own error (or a
   * {@link NotHere}) instead of only recording it.
   */
  private async applyPending(instanceId: string, mine?: string): Promise<void> {
    const previous = this.applying.get(instanceId) ?? Promise.resolve();
    let failure: Error | undefined;
    let handledMine = false;
    let stopped: NotHere | undefined;
    const run = previous.then(async () => {
      for (const request of (await this.ctx.store.pendingRequests?.(instanceId)) ?? []) {
        if (request.id === mine) handledMine = true;
        try {
          await this.apply(request);
        } catch (error) {
          if (request.id === mine) failure = error instanceof Error ? error : new Error(String(error));
          if (error instanceof NotHere) {
            stopped = error;
            return; // the rest wait with it
          }
        }
      }
    });
    const settled = run.catch(() => undefined);
    this.applying.set(instanceId, settled);
    try {
      await run;
    } finally {
      if (this.applying.get(instanceId) === settled) this.applying.delete(instanceId);
    }
    if (failure !== undefined) throw failure;
    if (mine === undefined || handledMine) return;
    // Not reached (an older request of the instance cannot be applied here), or applied by another round meanwhile.
    if (stopped !== undefined) throw stopped;
    const request = await this.ctx.store.requestById?.(mine);
    if (request?.state === 'failed') throw requestFailure(request);
    if (request?.state === 'pending') throw new NotHere(new LeasedElsewhereError(instanceId));
  }

  /** Applies one request and records its outcome; throws its error after recording it, or {@link NotHere}. */
  private async apply(request: OperatorRequest): Promise<void> {
    const store = this.ctx.store;
    try {
      await this.act(request);
    } catch (error) {
      // Only the instance's refusal is an answer; anything else (another worker, a store failure) leaves it pending.
      if (!(error instanceof SagaflowError && REFUSALS.has(error.code))) throw new NotHere(error);
      await store.finishRequest?.(request.id, serializeThrown(error), this.ctx.clock.now());
      throw error;
    }
    // A runtime that closed while the act waited in the instance's queue applied nothing: the request stays pending.
    if (this.ctx.closed) throw new NotHere(new RuntimeClosedError(request.kind));
    // Marked done with the transition that applied it; this covers an act that changed nothing (already done).
    await store.finishRequest?.(request.id, null, this.ctx.clock.now()).catch((error: unknown) => this.ctx.report('instance-failed', `operator request ${request.id} could not be marked done`, error, request.instanceId));
  }

  /**
   * Does what a request asks, with who and why recorded in the instance's history; a stored request (with an id) is
   * marked done in the same transaction as that history line.
   */
  private async act(request: OperatorRequestInput & { readonly id?: string }): Promise<void> {
    const stored = request.id;
    const note: OperatorNote = { ...(request.by === undefined ? {} : { by: request.by }), ...(request.reason === undefined ? {} : { reason: request.reason }) };
    const id = request.instanceId;
    switch (request.kind) {
      case 'retry-compensation':
        return this.operator.operate(id, 'retryCompensation', note, stored);
      case 'skip-compensation':
        return this.operator.operate(id, 'skipCompensation', note, stored);
      case 'cancel':
        return this.operator.cancel(id, request.reason ?? 'cancelled by an operator', request.by === undefined ? {} : { by: request.by }, stored);
      case 'resume': {
        const actor = await this.instances.actor(id);
        // It went on since the request was written (an earlier request or a registration resumed it): nothing is left
        // to do — resuming a live instance would start its calls in flight a second time.
        if (actor.record.blocked === undefined) return;
        const text = noteText(note);
        await actor.post({ type: 'resume' }, { ...(text === '' ? {} : { note: text }), ...(stored === undefined ? {} : { request: stored }) });
        await this.events.drainInbox(id);
        return;
      }
    }
  }

  /**
   * Waits, a poll interval at a time on the clock, until the worker holding the instance applied `mine` — or its lease
   * ran out and this runtime applies it; rethrows its error.
   */
  private async waitFor(mine: OperatorRequest): Promise<void> {
    const ctx = this.ctx;
    for (;;) {
      ctx.assertOpen(mine.kind);
      await new Promise<void>((resolve) => ctx.clock.setTimeout(resolve, ctx.pollMs));
      const request = await ctx.store.requestById?.(mine.id);
      if (request === undefined) throw new SagaflowError('UNKNOWN_REQUEST', `operator request ${mine.id} is no longer in the store (its instance was purged)`, { requestId: mine.id });
      if (request.state === 'done') return;
      if (request.state === 'failed') throw requestFailure(request);
      try {
        await this.applyPending(mine.instanceId, mine.id);
        return;
      } catch (error) {
        if (!(error instanceof NotHere && error.why instanceof LeasedElsewhereError)) throw error instanceof NotHere ? error.why : error;
      }
    }
  }

  /** One round: the requests of instances this worker runs. */
  private async pollRound(): Promise<void> {
    const ctx = this.ctx;
    const runnable = this.registry.runnable();
    for (const id of (await ctx.store.requestInstances?.(100, runnable)) ?? []) {
      await this.applyPending(id).catch((error: unknown) => {
        // Refusals are recorded on their requests; another worker or a block is not a problem; the rest are.
        const why = error instanceof NotHere ? error.why : undefined;
        if (why !== undefined && !(why instanceof LeasedElsewhereError || why instanceof InstanceBlockedError || why instanceof RuntimeClosedError)) {
          ctx.report('instance-failed', `an operator request for ${id} could not be applied; the next poll will try again`, why, id);
        }
      });
    }
  }
}
