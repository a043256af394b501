import 'reflect-metadata';
import { IsBoolean, IsNotEmpty, IsOptional, IsString } from 'class-validator';
import { BaseStep, Step, Workflow, continueWith, error, ok, type SagaEvent, type StepContext, type StepResult } from '../../src';
import type { Ledger } from './ledger';
import { sleep, type Random } from './random';

/**
 * The saga the crash tests run in their child processes: four steps, each with an effect on the durable
 * {@link Ledger} keyed by its idempotency key, each rollback undoing it; `charge` waits for the
 * `payment.captured` event of its order; `confirm` declines some orders after its effect, so they roll back.
 * Every handler call is recorded in the ledger's `runs`, and pauses a little (randomly) before and after its
 * effect, so kills land at different moments.
 */

/** The topic `charge` waits for. */
export const PAYMENT_CAPTURED = 'payment.captured';

/** The steps, in order; every one has an effect. */
export const STEPS = ['reserve', 'charge', 'ship', 'confirm'] as const;

/** The code with which `confirm` declines an order. */
export const DECLINED = 'CONFIRM_DECLINED';

/** One order of a run. */
export interface PlannedSaga {
  /** The instance id. */
  readonly id: string;
  /** Whether `confirm` declines it (then it rolls back). */
  readonly declines: boolean;
  /**
   * Whether its `payment.captured` is published as soon as `charge` has its effect, most often before the wait
   * is stored (a fast reply, which the runtime retains until the wait begins), rather than once it waits.
   */
  readonly early: boolean;
}

/** The `count` orders of a run: `order-000`, `order-001`, …; every third one is declined, every fourth one paid early. */
export function plannedSagas(count: number): PlannedSaga[] {
  return Array.from({ length: count }, (_, i) => ({ id: `order-${String(i).padStart(3, '0')}`, declines: i % 3 === 2, early: i % 4 === 1 }));
}

/** The state of one order. */
export class CrashOrder {
  @IsString()
  @IsNotEmpty()
  orderId!: string;

  @IsBoolean()
  declines!: boolean;

  /** Set when `payment.captured` arrives. */
  @IsOptional()
  @IsString()
  paymentId?: string;
}

/** What the steps of one process share: the ledger, the process's worker name and its random pauses. */
export class Services {
  constructor(
    readonly ledger: Ledger,
    readonly worker: string,
    private readonly random: Random,
    private readonly maxPauseMs: number,
  ) {}

  /** A random pause of 0 to `maxPauseMs` milliseconds. */
  pause(): Promise<void> {
    return sleep(this.random.int(0, this.maxPauseMs));
  }

  /** Runs a handler call, recording when it started and ended (a kill leaves it without an end). */
  async call<T>(ctx: StepContext, body: () => Promise<T>): Promise<T> {
    const run = await this.ledger.runStarted(ctx.instanceId, ctx.stepName, ctx.stepFunc, ctx.idempotencyKey, this.worker);
    try {
      return await body();
    } finally {
      await this.ledger.runEnded(run);
    }
  }
}

/** A step whose run has an effect and whose rollback undoes it, both idempotent. */
abstract class LedgerStep extends BaseStep<CrashOrder> {
  constructor(protected readonly services: Services) {
    super();
  }

  override run(state: CrashOrder, ctx: StepContext): Promise<StepResult<CrashOrder>> {
    return this.services.call(ctx, async () => {
      await this.services.pause();
      await this.services.ledger.effect(ctx.idempotencyKeyBase, ctx.instanceId, ctx.stepName, this.services.worker);
      await this.services.pause();
      return this.afterEffect(state);
    });
  }

  override rollback(state: CrashOrder, ctx: StepContext): Promise<StepResult<CrashOrder>> {
    return this.services.call(ctx, async () => {
      await this.services.pause();
      await this.services.ledger.compensate(ctx.idempotencyKeyBase, effectKey(ctx.instanceId, ctx.stepName), ctx.instanceId, ctx.stepName, this.services.worker);
      await this.services.pause();
      return ok(state);
    });
  }

  /** What `run` returns once its effect is recorded. */
  protected afterEffect(state: CrashOrder): StepResult<CrashOrder> {
    return ok(state);
  }
}

/** The ledger key of the effect of `step` of `saga`: the `idempotencyKeyBase` its run was given. */
export function effectKey(saga: string, step: string): string {
  return `${saga}:${step}:up`;
}

@Step({ name: 'reserve' })
export class Reserve extends LedgerStep {}

@Step({ name: 'charge' })
export class Charge extends LedgerStep {
  protected override afterEffect(state: CrashOrder): StepResult<CrashOrder> {
    return continueWith(state, { topic: PAYMENT_CAPTURED, match: { orderId: state.orderId } });
  }

  override runHandleInfo(event: SagaEvent, state: CrashOrder, ctx: StepContext): Promise<StepResult<CrashOrder>> {
    return this.services.call(ctx, async () => {
      await this.services.pause();
      await this.services.ledger.handled(ctx.instanceId, event.id, this.services.worker);
      const paymentId = event.payload.paymentId;
      if (typeof paymentId !== 'string') return error({ code: 'BAD_EVENT', message: `${event.id} has no paymentId` }, state);
      state.paymentId = paymentId;
      return ok(state);
    });
  }
}

@Step({ name: 'ship' })
export class Ship extends LedgerStep {}

@Step({ name: 'confirm' })
export class Confirm extends LedgerStep {
  protected override afterEffect(state: CrashOrder): StepResult<CrashOrder> {
    return state.declines ? error({ code: DECLINED, message: `order ${state.orderId} was declined at confirmation` }, state) : ok(state);
  }
}

@Workflow({ name: 'crash-checkout', steps: [Reserve, Charge, Ship, Confirm], state: CrashOrder })
export class CrashCheckout {}
