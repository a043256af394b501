/**
 * sagaflow/nestjs — the NestJS module: `SagaflowModule.forRoot({...})` / `forRootAsync({...})`.
 *
 * - Inject the {@link SagaRuntime} by its class.
 * - Register steps and observers as providers: they are taken from the Nest container, with their dependencies
 *   injected. A class that is not a provider is made with `new Cls()` when it has no constructor parameters;
 *   otherwise the application's init fails with {@link NotAProviderError} (`NOT_A_PROVIDER`).
 * - On application bootstrap the runtime resumes unfinished instances; on shutdown (`app.close()`, or SIGTERM with
 *   `app.enableShutdownHooks()`) it drains: `runtime.stop({ drainTimeout })`.
 *
 * Needs `@nestjs/common` and `@nestjs/core` 11 (optional peer dependencies of sagaflow; the core never loads them).
 *
 * @module sagaflow/nestjs
 */
export { SagaflowModule } from './sagaflow.module';
export {
  SAGAFLOW_MODULE_OPTIONS,
  type SagaflowModuleOptions,
  type SagaflowModuleAsyncOptions,
  type SagaflowModuleExtras,
} from './sagaflow-options';
export { nestResolver, NotAProviderError, ScopedProviderError } from './provider-resolver';
export { SagaRuntime } from '../runtime/saga-runtime';
