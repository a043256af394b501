import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Inject, Injectable, Module, Scope, type Provider } from '@nestjs/common';
import { ModuleRef } from '@nestjs/core';
import { Test, type TestingModule } from '@nestjs/testing';
import {
  BaseStep,
  MemoryStore,
  SagaflowError,
  Step,
  Workflow,
  continueWith,
  ok,
  silentLogger,
  type FlowView,
  type Observer,
  type SagaEvent,
  type StepContext,
  type StepResult,
} from '../src';
import { SagaRuntime, SagaflowModule, NotAProviderError, nestResolver, type SagaflowModuleOptions } from '../src/nestjs';
import { SimulatedClock, flushMicrotasks } from '../src/testing';
import { runNestjsSample } from '../samples/nestjs/app';

interface OrderState {
  orderId: string;
  charged?: boolean;
  delivered?: boolean;
  packed?: boolean;
}

// ---- services and the steps and observers that use them -------------------------------------------------

@Injectable()
class PaymentsService {
  readonly charges: string[] = [];
  charge(orderId: string, key: string): void {
    this.charges.push(`${orderId} (${key})`);
  }
}

@Injectable()
@Step({ name: 'charge-payment' })
class ChargePayment extends BaseStep<OrderState> {
  constructor(@Inject(PaymentsService) private readonly payments: PaymentsService) {
    super();
  }
  override run(state: OrderState, ctx: StepContext): StepResult<OrderState> {
    this.payments.charge(state.orderId, ctx.idempotencyKey);
    return ok({ ...state, charged: true });
  }
}

/** Not a provider anywhere, and needs nothing: made with `new PackParcel()`. */
@Step({ name: 'pack-parcel' })
class PackParcel extends BaseStep<OrderState> {
  override run(state: OrderState): StepResult<OrderState> {
    return ok({ ...state, packed: true });
  }
}

@Workflow<OrderState>({ name: 'nest-checkout', steps: [ChargePayment, PackParcel] })
class Checkout {}

@Injectable()
class AuditLog {
  readonly lines: string[] = [];
}

@Injectable()
class AuditObserver implements Observer<OrderState> {
  constructor(@Inject(AuditLog) private readonly audit: AuditLog) {}
  handleAfterStep(state: OrderState, flow: FlowView): void {
    this.audit.lines.push(`after ${flow.stepName ?? '?'} of ${state.orderId}`);
  }
  handleWorkflowSuccess(state: OrderState): void {
    this.audit.lines.push(`success of ${state.orderId}`);
  }
}

@Injectable()
class Ledger {
  readonly entries: string[] = [];
}

@Step({ name: 'await-delivery' })
class AwaitDelivery extends BaseStep<OrderState> {
  override run(state: OrderState): StepResult<OrderState> {
    return continueWith(state, { topic: 'parcel.delivered', match: { orderId: state.orderId }, timeout: '10m' });
  }
  override runHandleInfo(_event: SagaEvent, state: OrderState): StepResult<OrderState> {
    return ok({ ...state, delivered: true });
  }
}

@Injectable()
@Step({ name: 'close-order' })
class CloseOrder extends BaseStep<OrderState> {
  constructor(@Inject(Ledger) private readonly ledger: Ledger) {
    super();
  }
  override run(state: OrderState): StepResult<OrderState> {
    this.ledger.entries.push(`closed ${state.orderId}`);
    return ok(state);
  }
}

@Workflow<OrderState>({ name: 'nest-delivery', steps: [AwaitDelivery, CloseOrder] })
class Delivery {}

/** Lets a test hold a step in flight, then let it finish. */
@Injectable()
class Gate {
  readonly events: string[] = [];
  private release!: () => void;
  private enter!: () => void;
  readonly opened = new Promise<void>((resolve) => (this.release = resolve));
  readonly entered = new Promise<void>((resolve) => (this.enter = resolve));
  open(): void {
    this.release();
  }
  arrive(): void {
    this.enter();
  }
}

@Injectable()
@Step({ name: 'slow-step' })
class SlowStep extends BaseStep<OrderState> {
  constructor(@Inject(Gate) private readonly gate: Gate) {
    super();
  }
  override async run(state: OrderState, ctx: StepContext): Promise<StepResult<OrderState>> {
    this.gate.events.push('started');
    this.gate.arrive();
    const aborted = new Promise<void>((resolve) => ctx.signal.addEventListener('abort', () => resolve()));
    await Promise.race([this.gate.opened, aborted]);
    this.gate.events.push(ctx.signal.aborted ? 'aborted' : 'finished');
    return ok({ ...state, charged: true });
  }
}

@Workflow<OrderState>({ name: 'nest-slow', steps: [SlowStep] })
class Slow {}

/** Needs a service but is listed in no module's providers. */
@Step({ name: 'unlisted-step' })
class UnlistedStep extends BaseStep<OrderState> {
  constructor(@Inject(PaymentsService) readonly payments: PaymentsService) {
    super();
  }
}

@Workflow<OrderState>({ name: 'nest-unlisted', steps: [UnlistedStep] })
class Unlisted {}

@Injectable({ scope: Scope.TRANSIENT })
@Step({ name: 'transient-step' })
class TransientStep extends BaseStep<OrderState> {}

@Workflow<OrderState>({ name: 'nest-transient', steps: [TransientStep] })
class WithTransient {}

// ---- helpers ---------------------------------------------------------------------------------------------

const apps: TestingModule[] = [];

/** Compiles a testing module importing `SagaflowModule.forRoot(options)` with `providers`; silent, in memory, on a simulated clock. */
async function compile(options: Partial<SagaflowModuleOptions>, providers: Provider[] = []): Promise<TestingModule> {
  const app = await Test.createTestingModule({
    imports: [SagaflowModule.forRoot({ workflows: [], logger: silentLogger, store: new MemoryStore(), clock: new SimulatedClock(), ...options })],
    providers,
  }).compile();
  apps.push(app);
  return app;
}

async function boot(options: Partial<SagaflowModuleOptions>, providers: Provider[] = []): Promise<TestingModule> {
  const app = await compile(options, providers);
  await app.init();
  return app;
}

/** An application whose init failed: Nest's close() would only throw the init error again. */
function forget(app: TestingModule): void {
  apps.splice(apps.indexOf(app), 1);
}

afterEach(async () => {
  // close() is idempotent for the runtime; closing twice is harmless.
  await Promise.all(apps.splice(0).map((app) => app.close()));
});

// ---- tests -----------------------------------------------------------------------------------------------

describe('SagaflowModule (NestJS)', () => {
  it('runs a step provider with its injected service, and makes a step that is no provider with new', async () => {
    const app = await boot({ workflows: [Checkout] }, [PaymentsService, ChargePayment]);
    const runtime = app.get(SagaRuntime);
    expect(runtime).toBeInstanceOf(SagaRuntime);

    const result = await (await runtime.start(Checkout, { orderId: 'o-1' }, { id: 'nest-1' })).result();

    expect(result.status).toBe('completed');
    expect(result.state).toEqual({ orderId: 'o-1', charged: true, packed: true });
    expect(app.get(PaymentsService).charges).toEqual(['o-1 (nest-1:charge-payment:up:1)']);
  });

  it('uses observer providers, with their own injected services', async () => {
    const app = await boot({ workflows: [Checkout], observers: [AuditObserver] }, [PaymentsService, ChargePayment, AuditLog, AuditObserver]);
    const runtime = app.get(SagaRuntime);

    await (await runtime.start(Checkout, { orderId: 'o-2' })).result();

    expect(app.get(AuditLog).lines).toEqual(['after charge-payment of o-2', 'after pack-parcel of o-2', 'success of o-2']);
  });

  it('resumes on bootstrap an instance a previous application left unfinished in the store', async () => {
    const store = new MemoryStore();
    const clock = new SimulatedClock();
    const providers = [Ledger, CloseOrder];

    // A first process starts the saga; it parks, waiting for the delivery, and the process goes away.
    const first = await boot({ workflows: [Delivery], store, clock }, providers);
    const handle = await first.get(SagaRuntime).start(Delivery, { orderId: 'o-3' }, { id: 'nest-3' });
    await first.get(SagaRuntime).idle();
    await first.close();
    expect((await store.load('nest-3'))?.flow.status).toBe('waiting');

    // The next process, on the same store, resumes it when it bootstraps.
    const unfinished = jest.spyOn(store, 'unfinished');
    const second = await boot({ workflows: [Delivery], store, clock }, providers);
    expect(unfinished).toHaveBeenCalledTimes(1);
    const runtime = second.get(SagaRuntime);
    expect((await runtime.publish({ topic: 'parcel.delivered', payload: { orderId: 'o-3' } })).delivered).toBe(1);

    const result = await runtime.handle(handle.id).result();
    expect(result.status).toBe('completed');
    expect(result.state).toMatchObject({ delivered: true });
    expect(second.get(Ledger).entries).toEqual(['closed o-3']);
    expect(first.get(Ledger).entries).toEqual([]);
  });

  it('re-arms the timers of the resumed instances on bootstrap, and leaves them alone with recoverOnBootstrap: false', async () => {
    const store = new MemoryStore();
    const clock = new SimulatedClock();
    const first = await boot({ workflows: [Delivery], store, clock }, [Ledger, CloseOrder]);
    await first.get(SagaRuntime).start(Delivery, { orderId: 'o-4' }, { id: 'nest-4' });
    await first.get(SagaRuntime).idle();
    await first.close();

    const lazy = await boot({ workflows: [Delivery], store, clock, recoverOnBootstrap: false }, [Ledger, CloseOrder]);
    await clock.advance('11m');
    expect((await store.load('nest-4'))?.flow.status).toBe('waiting');
    await lazy.close();

    const eager = await boot({ workflows: [Delivery], store, clock }, [Ledger, CloseOrder]);
    await clock.advance(0);
    const result = await eager.get(SagaRuntime).handle('nest-4').result();
    expect(result.status).toBe('rolled_back');
    expect(result.error?.code).toBe('TIMEOUT');
  });

  it('forRootAsync makes the options with injected providers, and isGlobal lets every module inject the runtime', async () => {
    @Injectable()
    class SagaConfig {
      readonly store = new MemoryStore();
      readonly clock = new SimulatedClock();
    }
    @Module({ providers: [SagaConfig], exports: [SagaConfig] })
    class SagaConfigModule {}

    @Injectable()
    class OrdersService {
      constructor(@Inject(SagaRuntime) private readonly runtime: SagaRuntime) {}
      async place(orderId: string): Promise<string> {
        const result = await (await this.runtime.start(Checkout, { orderId })).result();
        return result.status;
      }
    }
    // Imports nothing from sagaflow: the runtime comes from the global module.
    @Module({ providers: [PaymentsService, ChargePayment, OrdersService], exports: [OrdersService] })
    class OrdersModule {}

    const app = await Test.createTestingModule({
      imports: [
        SagaflowModule.forRootAsync({
          isGlobal: true,
          imports: [SagaConfigModule],
          inject: [SagaConfig],
          useFactory: async (config: SagaConfig) => {
            await Promise.resolve();
            return { workflows: [Checkout], store: config.store, clock: config.clock, logger: silentLogger, drainTimeout: '1s' };
          },
        }),
        OrdersModule,
      ],
    }).compile();
    apps.push(app);
    await app.init();

    const runtime = app.get(SagaRuntime);
    expect(runtime.store).toBe(app.get(SagaConfig).store);
    expect(runtime.clock).toBe(app.get(SagaConfig).clock);
    expect(await app.get(OrdersService).place('o-5')).toBe('completed');
    expect(app.get(PaymentsService).charges).toHaveLength(1);
  });

  it('on shutdown lets a step in flight finish and saves its result before closing', async () => {
    const store = new MemoryStore();
    const app = await boot({ workflows: [Slow], store, drainTimeout: '5s' }, [Gate, SlowStep]);
    const runtime = app.get(SagaRuntime);
    const gate = app.get(Gate);
    await runtime.start(Slow, { orderId: 'o-6' }, { id: 'nest-6' });
    await gate.entered;

    let closed = false;
    const closing = app.close().then(() => (closed = true));
    await flushMicrotasks();
    expect(closed).toBe(false);
    // Draining: no new work.
    await expect(runtime.start(Slow, { orderId: 'o-7' })).rejects.toMatchObject({ code: 'RUNTIME_CLOSED' });

    gate.open();
    await closing;
    expect(gate.events).toEqual(['started', 'finished']);
    const record = await store.load('nest-6');
    expect(record?.flow.status).toBe('completed');
    expect(record?.state).toMatchObject({ charged: true });
  });

  it('on shutdown aborts a step still in flight at the drain deadline; the next application runs it again', async () => {
    const store = new MemoryStore();
    const clock = new SimulatedClock();
    const warnings: string[] = [];
    const logger = { ...silentLogger, warn: (_obj: Record<string, unknown>, msg?: string) => void warnings.push(msg ?? '') };
    const app = await boot({ workflows: [Slow], store, clock, logger, drainTimeout: '5s' }, [Gate, SlowStep]);
    const gate = app.get(Gate);
    await app.get(SagaRuntime).start(Slow, { orderId: 'o-8' }, { id: 'nest-8' });
    await gate.entered;

    let closed = false;
    const closing = app.close().then(() => (closed = true));
    await clock.advance('4.9s');
    expect(closed).toBe(false);
    await clock.advance('100ms');
    await closing;
    expect(gate.events).toEqual(['started', 'aborted']);
    expect(warnings).toEqual([expect.stringContaining('1 step call(s) were still running at the drain deadline')]);
    expect((await store.load('nest-8'))?.flow.status).toBe('running');

    const next = await compile({ workflows: [Slow], store, clock }, [Gate, SlowStep]);
    next.get(Gate).open();
    await next.init();
    const result = await next.get(SagaRuntime).handle('nest-8').result();
    expect(result.status).toBe('completed');
    expect(next.get(Gate).events).toEqual(['started', 'finished']);
  });

  it('fails the application init with NOT_A_PROVIDER for a step that needs constructor arguments but is no provider', async () => {
    const app = await compile({ workflows: [Unlisted] }, [PaymentsService]);
    const failure: unknown = await app.init().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(failure).toBeInstanceOf(NotAProviderError);
    expect(failure).toBeInstanceOf(SagaflowError);
    expect(failure).toMatchObject({ code: 'NOT_A_PROVIDER', className: 'UnlistedStep', details: { className: 'UnlistedStep' } });
    expect((failure as Error).message).toMatch(/add UnlistedStep to the providers/);
    forget(app);
  });

  it('the resolver itself throws the typed errors: NOT_A_PROVIDER, and SCOPED_PROVIDER for a transient provider', async () => {
    const app = await compile({ workflows: [] }, [PaymentsService, ChargePayment, TransientStep]);
    const resolve = nestResolver(app.get(ModuleRef));
    expect(resolve(ChargePayment)).toBe(app.get(ChargePayment));
    expect(resolve(PackParcel)).toBe(resolve(PackParcel));
    expect(() => resolve(UnlistedStep)).toThrow(NotAProviderError);
    expect(() => resolve(TransientStep)).toThrow(expect.objectContaining({ code: 'SCOPED_PROVIDER' }));

    const scoped = await compile({ workflows: [WithTransient] }, [TransientStep]);
    await expect(scoped.init()).rejects.toMatchObject({ code: 'SCOPED_PROVIDER' });
    forget(scoped);
  });

  it("registers the workflows before the application's own onModuleInit hooks, which may start sagas", async () => {
    @Injectable()
    class StartsOnInit {
      status: string | undefined;
      constructor(@Inject(SagaRuntime) private readonly runtime: SagaRuntime) {}
      async onModuleInit(): Promise<void> {
        this.status = (await (await this.runtime.start(Checkout, { orderId: 'o-9' })).result()).status;
      }
    }
    const app = await boot({ workflows: [Checkout] }, [PaymentsService, ChargePayment, StartsOnInit]);
    expect(app.get(StartsOnInit).status).toBe('completed');
  });

  it('the samples/nestjs sample places one order and rolls back the declined one', async () => {
    const lines: string[] = [];
    await runNestjsSample((line) => lines.push(line));
    expect(lines).toEqual(['order-1 completed', 'order-2 rolled_back (CARD_DECLINED)', 'reservations held: 1, charges: order-1']);
  });

  it('checks its options when the module is defined', () => {
    expect(() => SagaflowModule.forRoot({ workflows: [], drainTimeout: 'soon' })).toThrow(expect.objectContaining({ code: 'BAD_OPTION' }));
    expect(() => SagaflowModule.forRoot({} as SagaflowModuleOptions)).toThrow(/workflows/);
  });

  it('is a separate entry point: nothing outside src/nestjs imports NestJS', () => {
    const root = join(__dirname, '..', 'src');
    const offenders: string[] = [];
    const walk = (dir: string): void => {
      for (const entry of readdirSync(dir, { withFileTypes: true })) {
        const path = join(dir, entry.name);
        if (entry.isDirectory()) {
          if (path !== join(root, 'nestjs')) walk(path);
        } else if (/\.ts$/.test(entry.name) && /from '@nestjs\/|require\('@nestjs\//.test(readFileSync(path, 'utf8'))) {
          offenders.push(path);
        }
      }
    };
    walk(root);
    expect(offenders).toEqual([]);
    const pkg = JSON.parse(readFileSync(join(__dirname, '..', 'package.json'), 'utf8')) as {
      exports: Record<string, { types: string; default: string }>;
      peerDependenciesMeta: Record<string, { optional?: boolean }>;
    };
    expect(pkg.exports['./nestjs']).toEqual({ types: './dist/src/nestjs/index.d.ts', default: './dist/src/nestjs/index.js' });
    expect(pkg.peerDependenciesMeta['@nestjs/common']?.optional).toBe(true);
    expect(pkg.peerDependenciesMeta['@nestjs/core']?.optional).toBe(true);
  });
});
