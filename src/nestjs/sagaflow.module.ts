import {
  Inject,
  Module,
  type BeforeApplicationShutdown,
  type DynamicModule,
  type OnApplicationBootstrap,
  type OnApplicationShutdown,
  type OnModuleDestroy,
  type OnModuleInit,
  type Provider,
} from '@nestjs/common';
import { ModuleRef } from '@nestjs/core';
import { SagaflowError } from '../errors/sagaflow-error';
import { quote } from '../errors/serialized-error';
import { checkBoolean, checkKnownKeys, optionKeys } from '../input/known-keys';
import { RUNTIME_OPTION_KEYS, SagaRuntime, type Resolver, type SagaRuntimeOptions } from '../runtime/saga-runtime';
import { toMillis } from '../time/duration';
import { workflowDefinition } from '../workflow/workflow-decorator';
import { nestResolver } from './provider-resolver';
import { SAGAFLOW_MODULE_OPTIONS, type SagaflowModuleAsyncOptions, type SagaflowModuleExtras, type SagaflowModuleOptions } from './sagaflow-options';

/** The injection token of the resolver the runtime makes its steps and observers with. */
const SAGAFLOW_RESOLVER = Symbol('sagaflow:resolver');

/** The module's options: the runtime's but the resolver, its own, and `forRoot`'s `isGlobal`. */
const MODULE_OPTION_KEYS: readonly string[] = [
  ...RUNTIME_OPTION_KEYS.filter((k) => k !== 'resolver'),
  ...optionKeys<Omit<SagaflowModuleOptions, keyof SagaRuntimeOptions>>()(['recoverOnBootstrap', 'drainTimeout']),
  'isGlobal',
];

/** Checks the options a factory made (plain JavaScript callers and `forRootAsync` factories included). */
function checkOptions(options: SagaflowModuleOptions): SagaflowModuleOptions {
  if (typeof options !== 'object' || options === null) {
    throw new SagaflowError('BAD_OPTION', `SagaflowModule: the options must be an object, got ${quote(options)}`);
  }
  checkKnownKeys(options, MODULE_OPTION_KEYS, 'SagaflowModule');
  checkBoolean((options as SagaflowModuleExtras).isGlobal, 'isGlobal', 'SagaflowModule');
  if (!Array.isArray(options.workflows)) {
    throw new SagaflowError('BAD_OPTION', 'SagaflowModule: `workflows` must be an array of @Workflow classes or defineWorkflow definitions');
  }
  if (options.recoverOnBootstrap !== undefined && typeof options.recoverOnBootstrap !== 'boolean') {
    throw new SagaflowError('BAD_OPTION', 'SagaflowModule: `recoverOnBootstrap` must be a boolean');
  }
  toMillis(options.drainTimeout ?? '30s', 'SagaflowModule drainTimeout');
  return options;
}

/** The providers every form of the module has: the resolver and the runtime. */
const CORE_PROVIDERS: Provider[] = [
  {
    provide: SAGAFLOW_RESOLVER,
    inject: [ModuleRef],
    useFactory: (moduleRef: ModuleRef): Resolver => nestResolver(moduleRef),
  },
  {
    provide: SagaRuntime,
    inject: [SAGAFLOW_MODULE_OPTIONS, SAGAFLOW_RESOLVER],
    useFactory: (options: SagaflowModuleOptions, resolver: Resolver): SagaRuntime => {
      // Workflows are registered in onModuleInit, once every provider is made: registering resolves the
      // observers, and a provider the container has not made yet would come back without its dependencies.
      const { workflows: _workflows, recoverOnBootstrap: _recover, drainTimeout: _drain, ...runtimeOptions } = options;
      return new SagaRuntime({ ...runtimeOptions, resolver });
    },
  },
];

/**
 * The NestJS module of sagaflow (`sagaflow/nestjs`). Provides the {@link SagaRuntime} (inject it by class), makes
 * steps and observers through the Nest container (register them as providers to have their dependencies
 * injected), registers the workflows once every provider is made, resumes unfinished instances on application
 * bootstrap, and drains the runtime on shutdown (`runtime.stop({ drainTimeout })`): no new work, calls in flight
 * finish until the deadline and are aborted then.
 *
 * @example
 * ‍@Module({
 *   imports: [SagaflowModule.forRoot({ workflows: [OrderCheckout], store: TypeormStore.postgres({ url }) })],
 *   providers: [PaymentsService, ChargePayment, ReserveInventory],
 * })
 * class AppModule {}
 *
 * const app = await NestFactory.create(AppModule);
 * app.enableShutdownHooks(); // SIGTERM drains the runtime
 */
@Module({})
export class SagaflowModule implements OnModuleInit, OnApplicationBootstrap, OnModuleDestroy, BeforeApplicationShutdown, OnApplicationShutdown {
  private stopping: Promise<void> | null = null;

  constructor(
    @Inject(SAGAFLOW_MODULE_OPTIONS) private readonly options: SagaflowModuleOptions,
    @Inject(SagaRuntime) private readonly runtime: SagaRuntime,
    @Inject(SAGAFLOW_RESOLVER) private readonly resolver: Resolver,
  ) {}

  /**
   * The module with options given here.
   * @example SagaflowModule.forRoot({ workflows: [OrderCheckout], store, isGlobal: true })
   */
  static forRoot(options: SagaflowModuleOptions & SagaflowModuleExtras): DynamicModule {
    const { isGlobal, ...moduleOptions } = checkOptions(options) as SagaflowModuleOptions & SagaflowModuleExtras;
    return {
      module: SagaflowModule,
      global: isGlobal ?? false,
      providers: [{ provide: SAGAFLOW_MODULE_OPTIONS, useValue: moduleOptions }, ...CORE_PROVIDERS],
      exports: [SagaRuntime, SAGAFLOW_MODULE_OPTIONS],
    };
  }

  /**
   * The module with options made by a factory, with injected dependencies.
   * @example
   * SagaflowModule.forRootAsync({
   *   imports: [ConfigModule],
   *   inject: [ConfigService],
   *   useFactory: (config: ConfigService) => ({ workflows: [OrderCheckout], store: TypeormStore.postgres({ url: config.get('DB_URL') }) }),
   * })
   */
  static forRootAsync(options: SagaflowModuleAsyncOptions): DynamicModule {
    if (typeof options?.useFactory !== 'function') {
      throw new SagaflowError('BAD_OPTION', 'SagaflowModule.forRootAsync: `useFactory` must be a function returning the module options');
    }
    const { useFactory } = options;
    return {
      module: SagaflowModule,
      global: options.isGlobal ?? false,
      imports: options.imports ?? [],
      providers: [
        ...(options.extraProviders ?? []),
        {
          provide: SAGAFLOW_MODULE_OPTIONS,
          inject: options.inject ?? [],
          useFactory: async (...args: unknown[]) => checkOptions(await useFactory(...args)),
        },
        ...CORE_PROVIDERS,
      ],
      exports: [SagaRuntime, SAGAFLOW_MODULE_OPTIONS],
    };
  }

  /**
   * Registers the workflows and makes every step once, so a step or observer class that cannot be made (not a
   * provider and needing constructor arguments, or request-scoped) fails the application's init, not a saga.
   */
  onModuleInit(): void {
    this.runtime.register(...this.options.workflows);
    for (const ref of this.options.workflows) {
      for (const step of workflowDefinition(ref).steps.values()) this.resolver(step.cls as unknown as new () => unknown);
    }
  }

  /** Resumes every unfinished instance in the store, unless `recoverOnBootstrap` is false. */
  async onApplicationBootstrap(): Promise<void> {
    if (this.options.recoverOnBootstrap === false) return;
    await this.runtime.start();
  }

  /**
   * Starts draining at the first shutdown hook Nest calls on this module (`onModuleDestroy` comes before
   * `beforeApplicationShutdown` and `onApplicationShutdown`), so the steps in flight finish while the providers
   * they use are still up; the later hooks wait for the same drain.
   */
  async onModuleDestroy(): Promise<void> {
    await this.stop();
  }

  /** Waits for the drain that {@link SagaflowModule.onModuleDestroy} started (or starts it). */
  async beforeApplicationShutdown(): Promise<void> {
    await this.stop();
  }

  /** Waits for the drain that {@link SagaflowModule.onModuleDestroy} started (or starts it). */
  async onApplicationShutdown(): Promise<void> {
    await this.stop();
  }

  private stop(): Promise<void> {
    this.stopping ??= this.runtime.stop({ drainTimeout: this.options.drainTimeout ?? '30s' }).then(({ drained, abandoned }) => {
      if (!drained) {
        this.runtime.logger.warn(
          { abandoned },
          `sagaflow: ${abandoned} step call(s) were still running at the drain deadline and were aborted; they run again when their instances are resumed`,
        );
      }
    });
    return this.stopping;
  }
}
