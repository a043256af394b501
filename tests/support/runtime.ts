import { MemoryStore, SagaRuntime, silentLogger, type SagaRuntimeOptions, type RuntimeProblem } from '../../src';
import { SimulatedClock } from '../../src/testing';

/** A runtime on a simulated clock with a silent logger, and the problems it reported. */
export function testRuntime(options: SagaRuntimeOptions = {}): { runtime: SagaRuntime; clock: SimulatedClock; problems: RuntimeProblem[] } {
  const clock = (options.clock as SimulatedClock | undefined) ?? new SimulatedClock();
  const runtime = new SagaRuntime({ logger: silentLogger, store: new MemoryStore(), ...options, clock });
  const problems: RuntimeProblem[] = [];
  runtime.errors$.subscribe((p) => problems.push(p));
  return { runtime, clock, problems };
}
