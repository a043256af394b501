/**
 * A bounded, seeded fuzz of what users hand in: thousands of generated handler results and throws, events, start
 * inputs and options, on memory and SQLite. It asserts that no instance hangs (every one ends once the clock has
 * passed every timeout), that nothing untyped comes out (every rejection is a SagaflowError with a code, every
 * stored reason has a code), and that nothing is lost (every call made was recorded as started, every instance
 * started is stored and ends). Set SAGAFLOW_FUZZ_SEED to try other seeds.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import {
  BaseStep,
  MemoryStore,
  SagaRuntime,
  SagaflowError,
  Step,
  continueWith,
  defineWorkflow,
  error,
  forEach,
  goto,
  ok,
  parallel,
  silentLogger,
  type InstanceStore,
  type RuntimeProblem,
  type SagaEvent,
  type StepContext,
  type StepClass,
} from '../src';
import { TypeormStore } from '../src/store/typeorm';
import { SimulatedClock } from '../src/testing';
import { seededRandom } from './support/seeded';

const SEED = Number(process.env.SAGAFLOW_FUZZ_SEED ?? 20261205);


class Fuzz {
  private readonly next: () => number;
  constructor(seed: number) {
    this.next = seededRandom(seed);
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  pick<T>(list: readonly T[]): T {
    return list[this.int(list.length)] as T;
  }
  /** Picks by weight: `[[weight, value], …]`. */
  weighted<T>(choices: readonly (readonly [number, T])[]): T {
    let roll = this.next() * choices.reduce((sum, [w]) => sum + w, 0);
    for (const [w, value] of choices) {
      roll -= w;
      if (roll < 0) return value;
    }
    return (choices[choices.length - 1] as readonly [number, T])[1];
  }
}

/** Values users throw or give as reasons, the odd ones included. */
function oddValue(f: Fuzz): unknown {
  const revoked = Proxy.revocable({}, {});
  revoked.revoke();
  const cyclic: Record<string, unknown> = { code: 'CYCLE' };
  cyclic.self = cyclic;
  const getter = new Error('getter');
  Object.defineProperty(getter, 'code', {
    get() {
      throw new Error('no code');
    },
  });
  return f.pick<unknown>([
    'plain string',
    '',
    42,
    null,
    undefined,
    10n,
    Symbol('s'),
    { code: 'OBJ', message: 'an object reason' },
    { nothing: true },
    new Error('a plain Error'),
    Object.assign(new Error('coded'), { code: 'CODED' }),
    revoked.proxy,
    cyclic,
    getter,
    [1, 2, 3],
    () => 'a function',
  ]);
}

const TOPICS = ['t1', 't2', 't3'] as const;

function wait(f: Fuzz): unknown {
  const valid = { topic: f.pick(TOPICS), match: { k: f.pick(['a', 'b']) }, ...(f.chance(0.5) ? { timeout: f.pick(['5m', 1000, '2h']) } : {}) };
  if (f.chance(0.8)) return valid;
  return f.pick<unknown>([
    { ...valid, timeout: '10 parsecs' },
    { ...valid, timeout: -5 },
    { ...valid, timeout: Number.NaN },
    { ...valid, match: { k: Number.NaN } },
    { ...valid, match: { k: { nested: 1 } } },
    { topic: '' },
    { topic: [] },
    { ...valid, timout: '1s' },
    null,
    'a wait',
  ]);
}

/** What one handler call does, drawn when it is made. */
function behave(f: Fuzz, state: Record<string, unknown>, down: boolean): unknown {
  const act = f.weighted<() => unknown>([
    [down ? 60 : 40, () => ok(state)],
    [8, () => ok({ ...state, n: f.int(1000), tag: f.pick(['x', 'y']) })],
    [down ? 4 : 10, () => error(oddValue(f), state)],
    [down ? 3 : 8, () => {
      throw oddValue(f);
    }],
    [10, () => continueWith(state, wait(f) as never)],
    [3, () => goto(f.pick(['s2', 's3', 'nowhere', 'g']), state)],
    [5, () => f.pick<unknown>([undefined, null, 5, 'ok', { kind: 'weird' }, { kind: 'ok' }, ok([1, 2]), ok({ constructor: 'x' })])],
    [8, () => Promise.resolve().then(() => ok(state))],
    // A handler's promise may reject with anything at all, as a user's code may.
    [3, () => Promise.reject(oddValue(f))], // eslint-disable-line @typescript-eslint/prefer-promise-reject-errors
    [1, () => new Promise(() => undefined)],
  ]);
  return act();
}

interface Calls {
  made: Map<string, number>;
}

function fuzzStep(name: string, f: Fuzz, calls: Calls, options: { retry?: boolean; goto?: readonly string[] } = {}): StepClass {
  const count = (ctx: StepContext): void => {
    calls.made.set(ctx.instanceId, (calls.made.get(ctx.instanceId) ?? 0) + 1);
  };
  @Step({
    name,
    timeout: '1m',
    rollbackTimeout: '1m',
    ...(options.retry === true ? { retry: { maxAttempts: 2, backoff: 'fixed', initialDelay: '10s' } } : {}),
    ...(options.goto === undefined ? {} : { goto: options.goto }),
  })
  class Fuzzed extends BaseStep<Record<string, unknown>> {
    override run(state: Record<string, unknown>, ctx: StepContext): never {
      count(ctx);
      return behave(f, state, false) as never;
    }
    override rollback(state: Record<string, unknown>, ctx: StepContext): never {
      count(ctx);
      return behave(f, state, true) as never;
    }
    override runHandleInfo(_event: SagaEvent, state: Record<string, unknown>, ctx: StepContext): never {
      count(ctx);
      return behave(f, state, false) as never;
    }
    override rollbackHandleInfo(_event: SagaEvent, state: Record<string, unknown>, ctx: StepContext): never {
      count(ctx);
      return behave(f, state, true) as never;
    }
  }
  return Fuzzed;
}

function startInput(f: Fuzz): unknown {
  if (f.chance(0.85)) return { trail: [], k: f.pick(['a', 'b']), items: [1, 2, 3].slice(0, f.int(4)) };
  const cyclic: Record<string, unknown> = {};
  cyclic.self = cyclic;
  return f.pick<unknown>([[1, 2], new Date(), 5, null, cyclic, { n: 10n }, 'text']);
}

function eventInput(f: Fuzz, ids: readonly string[]): unknown {
  const base = { topic: f.pick(TOPICS), payload: { k: f.pick(['a', 'b']) } };
  return f.weighted<unknown>([
    [70, base],
    [10, { ...base, instanceId: ids.length > 0 ? f.pick(ids) : 'none' }],
    [5, { ...base, instanceId: 'no-such-instance' }],
    [5, { ...base, payload: { toJSON: () => 'a string' } }],
    [5, { topic: 5 }],
    [5, null],
  ]);
}

/** Every rejection of a public call must be a SagaflowError with a code. */
async function typed(call: () => Promise<unknown>, untyped: unknown[]): Promise<void> {
  try {
    await call();
  } catch (e) {
    if (!(e instanceof SagaflowError) || typeof e.code !== 'string' || e.code.length === 0) untyped.push(e);
  }
}

const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

const stores: [string, number, () => { store: InstanceStore; done: () => Promise<void> }][] = [
  ['memory', 800, () => ({ store: new MemoryStore(), done: () => Promise.resolve() })],
  [
    'SQLite',
    250,
    () => {
      const dir = mkdtempSync(path.join(tmpdir(), 'sagaflow-fuzz-'));
      const store = TypeormStore.sqlite({ file: path.join(dir, 'fuzz.db') });
      return { store, done: async () => (await store.close(), rmSync(dir, { recursive: true, force: true })) };
    },
  ],
];

describe.each(stores)('fuzzed handlers, events and inputs (%s)', (name, instances, make) => {
  it(`leave no instance hung, nothing untyped and nothing lost (seed ${SEED})`, async () => {
    const f = new Fuzz(SEED + name.length);
    const calls: Calls = { made: new Map() };
    const s1 = fuzzStep('s1', f, calls);
    const s2 = fuzzStep('s2', f, calls, { retry: true, goto: ['s3'] });
    const s3 = fuzzStep('s3', f, calls);
    const b1 = fuzzStep('b1', f, calls, { retry: true });
    const b2 = fuzzStep('b2', f, calls);
    const item = fuzzStep('item', f, calls);
    const wf = defineWorkflow({
      name: 'fuzzed',
      steps: [s1, s2, parallel('g', [b1, b2], { onError: f.pick(['failFast', 'completeAll'] as const) }), forEach('each', (s: { items: unknown[] }) => s.items, item), s3],
      deadline: '3h',
    });
    const made = make();
    const clock = new SimulatedClock();
    const runtime = new SagaRuntime({ store: made.store, clock, logger: silentLogger, workflows: [wf], defaults: { waitTimeout: '1h' } });
    const problems: RuntimeProblem[] = [];
    runtime.errors$.subscribe((p) => problems.push(p));
    const untyped: unknown[] = [];
    const started: string[] = [];
    try {
      for (let i = 0; i < instances; i += 1) {
        const input = startInput(f);
        await typed(async () => started.push((await runtime.start(wf, input as never, { id: `i-${i}` })).id), untyped);
        for (let k = f.int(3); k > 0; k -= 1) await typed(() => runtime.publish(eventInput(f, started) as never), untyped);
        if (f.chance(0.05) && started.length > 0) await typed(() => runtime.rollback(f.pick(started), 'fuzzed rollback'), untyped);
        if (f.chance(0.3)) await clock.advance(f.pick([1000, 60_000, 600_000]));
        await turn();
      }
      // Past every wait, retry, step timeout and deadline: everything must have ended.
      for (let hour = 0; hour < 12; hour += 1) {
        for (let k = 0; k < 6; k += 1) {
          await clock.advance('10m');
          for (let t = 0; t < 5; t += 1) await turn();
        }
      }
      await runtime.idle();

      expect(untyped).toEqual([]);
      expect(started.length).toBeGreaterThan(instances / 2);
      const hung: string[] = [];
      for (const id of started) {
        const snapshot = await runtime.get(id);
        if (!['completed', 'rolled_back', 'compensation_failed'].includes(snapshot.status)) hung.push(`${id}: ${snapshot.status} at ${String(snapshot.flow.stepName)}`);
        for (const reason of [snapshot.error, ...snapshot.compensationFailures.map((c) => c.error)]) {
          if (reason !== null) expect(reason).toEqual(expect.objectContaining({ code: expect.any(String), message: expect.any(String) }));
        }
        // Every handler call made was recorded as started (intent before effect), and none was made unrecorded.
        const startedLines = (await runtime.history(id)).filter((h) => h.kind === 'step-started').length;
        expect([id, calls.made.get(id) ?? 0]).toEqual([id, startedLines]);
      }
      expect(hung).toEqual([]);
      const statuses = new Map<string, number>();
      for (const { status } of await runtime.list({ limit: 100_000 })) statuses.set(status, (statuses.get(status) ?? 0) + 1);
      const total = [...calls.made.values()].reduce((a, b) => a + b, 0);
      // The run went deep: thousands of handler results, every way an instance can end.
      expect(total).toBeGreaterThan(instances * 3);
      expect([...statuses.keys()].sort()).toEqual(['compensation_failed', 'completed', 'rolled_back']);
      for (const p of problems) expect(typeof p.error.code).toBe('string');
      expect((await runtime.list({ limit: 100_000 })).length).toBe(started.length);
    } finally {
      await runtime.close();
      await made.done();
    }
  }, 120_000);
});

describe('fuzzed options', () => {
  const mutate = (f: Fuzz, options: Record<string, unknown>): Record<string, unknown> => {
    const copy = { ...options };
    const keys = Object.keys(copy);
    switch (f.int(5)) {
      case 0:
        copy[`${f.pick(keys)}x`] = 1;
        break;
      case 1:
        copy[f.pick(keys)] = f.pick<unknown>([10n, Number.NaN, -1, 'yes', null, {}, [], () => 1, Symbol('s')]);
        break;
      case 2:
        delete copy[f.pick(keys)];
        break;
      case 3:
        copy[f.pick(keys)] = oddValue(f);
        break;
      default:
        break;
    }
    return copy;
  };

  it(`either accepts an option set or refuses it with a typed error (seed ${SEED})`, () => {
    const f = new Fuzz(SEED);
    const untyped: unknown[] = [];
    const attempt = (make: () => unknown): void => {
      try {
        make();
      } catch (e) {
        if (!(e instanceof SagaflowError) || e.code.length === 0) untyped.push((e as Error).stack?.split("\n").slice(0, 4).join(" / "));
      }
    };
    const A = fuzzStep('opt-a', f, { made: new Map() });
    for (let i = 0; i < 2000; i += 1) {
      const step = { name: `s-${i}`, timeout: '1s', retry: { maxAttempts: 3, initialDelay: '1s', maxDelay: '1m', nonRetryable: ['X'] }, waitTimeout: '1m' };
      attempt(() => Step(mutate(f, step) as never)(class extends BaseStep {}));
      attempt(() => Step({ name: `r-${i}`, retry: mutate(f, step.retry) })(class extends BaseStep {}));
      attempt(() => defineWorkflow(mutate(f, { name: `w-${i}`, steps: [A], deadline: '1h', onCompensationError: 'halt', version: 1 }) as never));
      attempt(() => defineWorkflow({ name: `p-${i}`, steps: [parallel('g', [A], mutate(f, { onError: 'failFast', join: 'all', maxConcurrency: 2 }) as never)] }));
      attempt(() => new SagaRuntime(mutate(f, { store: new MemoryStore(), eventRetention: '1s', leaseDuration: '30s', logger: silentLogger })));
    }
    expect(untyped).toEqual([]);
  });
});
