import type { InstanceSnapshot, InstanceStore, Resolver, RuntimeProblem, SagaRuntime } from '../src';

/** Options every sample's run function accepts. */
export interface SampleOptions {
  /**
   * Where the sample's runtime keeps instances; the sample leaves it open (closing it is the caller's job).
   * @default the runtime's default store: the embedded SQLite file `.sagaflow/sagaflow.db`, made and closed by the runtime
   */
  readonly store?: InstanceStore;
  /**
   * Appended to every instance id the sample starts (and to the order or sign-up id it carries), e.g. `-r2`, so
   * that a run against a durable store that already holds an earlier run starts new instances: `start` with an
   * id that exists returns the existing instance instead. @default '' (the fixed ids: order-1001, signup-ada, …)
   */
  readonly idSuffix?: string;
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
 * Resolves once the instance has parked on a wait, with its snapshot and the awaited topics. Steps run in the
 * background after `start` returns, so the sample lets pending work settle turn by turn.
 *
 * It goes by the record in the store, not by `runtime.get`: the runtime may already show the instance waiting
 * while the transition that parks it is still being committed (a durable store commits writes in batches), and
 * an event published before that commit finds no stored wait to deliver to. Once the store holds the wait, a
 * `publish` is delivered to it.
 */
export async function untilParked(runtime: SagaRuntime, id: string): Promise<{ snapshot: InstanceSnapshot<unknown>; topics: readonly string[] }> {
  const deadline = Date.now() + 10_000;
  for (let turn = 0; Date.now() < deadline; turn += 1) {
    const stored = await runtime.store.load(id);
    const status = stored?.flow.status ?? 'running';
    const wait = stored?.flow.wait ?? null;
    if (status === 'waiting' && wait !== null) return { snapshot: await runtime.get(id), topics: wait.topics };
    if (status !== 'running' && status !== 'waiting') {
      const error = stored?.flow.errorReason ?? null;
      expectThat(false, `instance ${id} to park on a wait, but it is ${status}${error === null ? '' : ` (${error.code}: ${error.message})`}`);
    }
    // A durable store's commit takes a little real time: after the first turns, wait a millisecond per turn.
    await new Promise<void>((resolve) => (turn < 100 ? setImmediate(resolve) : setTimeout(resolve, 1)));
  }
  throw new SampleExpectationError(`expected instance ${id} to park on a wait, but it was still running after 10 s`);
}

/**
 * Runs a sample when its file is the program, `node dist/samples/<name>/run.js`: prints its timeline to stdout and
 * sets exit code 1 (with the error on stderr) when an outcome was not the expected one. When the file is imported
 * (by the demo or a test), it does nothing.
 *
 * @example
 * runWhenMain(module, (print) => runOrderCheckout(print, { store: new MemoryStore() }));
 */
export function runWhenMain(mod: NodeJS.Module, run: (print: (line: string) => void) => Promise<void>): void {
  if (require.main !== mod) return;
  run((line) => console.log(line)).catch((e: unknown) => {
    console.error(e instanceof Error ? (e.stack ?? e.message) : String(e));
    process.exitCode = 1;
  });
}
