import type { ModuleRef } from '@nestjs/core';
import { InvalidClassScopeException, UnknownElementException } from '@nestjs/core/errors/exceptions';
import { SagaflowError } from '../errors/sagaflow-error';
import type { Resolver } from '../runtime/saga-runtime';

/**
 * A step or observer class that needs constructor arguments is not a Nest provider, so nothing can make it.
 * Add the class to the `providers` of a module of the application.
 */
export class NotAProviderError extends SagaflowError {
  /** The class's name. */
  readonly className: string;
  constructor(className: string) {
    super(
      'NOT_A_PROVIDER',
      `${className} needs constructor arguments but is not a Nest provider: add ${className} to the providers of a module ` +
        `(and mark it @Injectable()), so sagaflow can get it through the ModuleRef with its dependencies injected`,
      { className },
    );
    this.className = className;
  }
}

/**
 * A step or observer class is a request-scoped or transient provider (or depends on one). The runtime makes its
 * steps and observers without a request, once per class: make it a default-scoped (singleton) provider.
 */
export class ScopedProviderError extends SagaflowError {
  /** The class's name. */
  readonly className: string;
  constructor(className: string) {
    super(
      'SCOPED_PROVIDER',
      `${className} is a request-scoped or transient provider, or depends on one: sagaflow needs one instance per class ` +
        `(steps run outside any request), so make ${className} and its dependencies default-scoped`,
      { className },
    );
    this.className = className;
  }
}

type Constructor<T> = new (...args: never[]) => T;

/** True when making `cls` takes constructor arguments (declared ones, or the ones decorator metadata lists). */
function needsArguments(cls: Constructor<unknown>): boolean {
  const paramTypes: unknown = Reflect.getMetadata('design:paramtypes', cls);
  return cls.length > 0 || (Array.isArray(paramTypes) && paramTypes.length > 0);
}

/**
 * A {@link Resolver} that takes step and observer instances from a Nest application: `moduleRef.get(cls, { strict: false })`,
 * so a class registered as a provider in any module gets its dependencies injected. A class that is not a provider
 * is made with `new Cls()`, once, when it has no constructor parameters.
 * @throws NotAProviderError (`NOT_A_PROVIDER`) for a class that is not a provider and needs constructor arguments;
 * ScopedProviderError (`SCOPED_PROVIDER`) for a request-scoped or transient provider.
 */
export function nestResolver(moduleRef: ModuleRef): Resolver {
  const made = new Map<unknown, unknown>();
  return <T>(cls: Constructor<T>): T => {
    try {
      return moduleRef.get<T>(cls, { strict: false });
    } catch (e) {
      if (e instanceof InvalidClassScopeException) throw new ScopedProviderError(cls.name);
      if (!(e instanceof UnknownElementException)) throw e;
    }
    let instance = made.get(cls) as T | undefined;
    if (instance === undefined) {
      if (needsArguments(cls)) throw new NotAProviderError(cls.name);
      instance = new cls();
      made.set(cls, instance);
    }
    return instance;
  };
}
