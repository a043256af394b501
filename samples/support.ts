import type { InstanceSnapshot, InstanceStore, Resolver, RuntimeProblem, SagaRuntime } from '../src';

/** Options every sample's run function accepts. */
export interface SampleOptions {
  /** Where the sample's runtime keeps instances. @default the runtime's default store (in memory) */
  readonly store?: InstanceStore;
}

/** Thrown by a sample when something it expected did not happen; the demo turns it into exit code 1. */
export class SampleExpectationError extends Error {
  override readonly name = 'SampleExpectationError';
}

/** Throws {@link SampleExpectationError} saying `what` when `condition` is false. */
export function expectThat(condition: boolean, what: string): void {
  if (!condition) throw new SampleExpectationError(`expected ${what}`);
}

/**
 * A tiny dependency-injection container for the runtime's `resolver` option: it hands out the instance given
 * for each class, so steps can take their services through their constructors.
 */
export function resolverOf(instances: readonly object[]): Resolver {
  const byClass = new Map<unknown, unknown>(instances.map((instance) => [instance.constructor, instance]));
  return <T>(cls: new (...args: never[]) => T): T => {
    const found = byClass.get(cls);
    if (found === undefined) throw new Error(`the sample's container has no instance of ${cls.name}`);
    return found as T;
  };
}

/** Collects the problems a runtime reported and survived (a throwing observer, a dropped event, …). */
export function collectProblems(runtime: SagaRuntime): RuntimeProblem[] {
  const problems: RuntimeProblem[] = [];
  runtime.errors$.subscribe((p) => problems.push(p));
  return problems;
}

/** Throws when the runtime reported any problem: the samples expect none. */
export function expectNoProblems(problems: readonly RuntimeProblem[]): void {
  expectThat(problems.length === 0, `no runtime problems, got: ${problems.map((p) => `${p.kind}: ${p.message} (${p.error.code})`).join('; ')}`);
}

/**
 * Resolves once the instance has parked on a wait (or finished), with its snapshot and the awaited topics.
 * Steps run in the background after `start` returns, so the sample lets pending work settle turn by turn.
 */
export async function untilParked(runtime: SagaRuntime, id: string): Promise<{ snapshot: InstanceSnapshot<unknown>; topics: readonly string[] }> {
  for (let turn = 0; turn < 1000; turn += 1) {
    const snapshot = await runtime.get(id);
    if (snapshot.status === 'waiting') {
      const record = await runtime.store.load(id);
      return { snapshot, topics: record?.flow.wait?.topics ?? [] };
    }
    expectThat(
      snapshot.status === 'running',
      `instance ${id} to park on a wait, but it is ${snapshot.status}${snapshot.error === null ? '' : ` (${snapshot.error.code}: ${snapshot.error.message})`}`,
    );
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
  throw new SampleExpectationError(`expected instance ${id} to park on a wait, but it was still running after 1000 turns`);
}
