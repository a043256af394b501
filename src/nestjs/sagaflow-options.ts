import type { DynamicModule, FactoryProvider, ModuleMetadata } from '@nestjs/common';
import type { SagaRuntimeOptions } from '../runtime/saga-runtime';
import type { Duration } from '../time/duration';
import type { WorkflowRef } from '../workflow/workflow-decorator';

/** The injection token of the module's resolved {@link SagaflowModuleOptions} (exported by the module). */
export const SAGAFLOW_MODULE_OPTIONS = Symbol('sagaflow:module-options');

/**
 * Options of {@link SagaflowModule}: the runtime's options (but the resolver, which the module provides: steps and
 * observers come from the Nest container), plus when to recover and how long to drain on shutdown.
 */
export interface SagaflowModuleOptions extends Omit<SagaRuntimeOptions, 'resolver' | 'workflows'> {
  /** The workflows to register (`@Workflow` classes or `defineWorkflow` definitions). */
  readonly workflows: readonly WorkflowRef[];
  /**
   * Resume every unfinished instance in the store (`runtime.start()`) when the application bootstraps; with
   * `false`, call `runtime.start()` yourself. @default true
   */
  readonly recoverOnBootstrap?: boolean;
  /**
   * On shutdown, how long handler calls in flight may take to finish before they are aborted (they run again when
   * their instances are resumed). @default '30s'
   */
  readonly drainTimeout?: Duration;
}

/** What `forRoot` and `forRootAsync` take besides the options. */
export interface SagaflowModuleExtras {
  /** Register the module globally: every module can inject `SagaRuntime` without importing it. @default false */
  readonly isGlobal?: boolean;
}

/** Options of `SagaflowModule.forRootAsync`: the options made by a factory with injected dependencies. */
export interface SagaflowModuleAsyncOptions extends SagaflowModuleExtras {
  /** Modules exporting the providers `inject` names. */
  readonly imports?: ModuleMetadata['imports'];
  /** Providers passed to `useFactory`, in order. */
  readonly inject?: FactoryProvider['inject'];
  /** Makes the options. */
  readonly useFactory: (...args: any[]) => SagaflowModuleOptions | Promise<SagaflowModuleOptions>; // eslint-disable-line @typescript-eslint/no-explicit-any
  /** More providers for the module (for instance ones `inject` names). */
  readonly extraProviders?: NonNullable<DynamicModule['providers']>;
}
