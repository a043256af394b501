import { EventEmitter } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import {
  BaseStep,
  EventBus,
  HistoryObserver,
  LoggingObserver,
  MemoryStore,
  SagaRuntime,
  Step,
  branch,
  child,
  defineWorkflow,
  ok,
  parallel,
  silentLogger,
  toMillis,
  when,
  type InstanceStore,
} from '../src';
import { EventEmitterAdapter } from '../src/bus/adapters';
import { resolveRetryPolicy } from '../src/policies/retry-policy';
import { TypeormStore } from '../src/store/typeorm';
import { SimulatedClock } from '../src/testing';
import { createTestDatabase, dropTestDatabase } from './support/postgres';
import { recordingStep, type TestState } from './support/steps';
import { testRuntime } from './support/runtime';

const A = recordingStep('A', []);
const aWorkflow = defineWorkflow<TestState>({ name: 'one-step', steps: [A] });

/** Expects `make` to throw a typed error with `code`, naming `key` and suggesting `suggestion` when given. */
function refuses(make: () => unknown, code: string, key: string, suggestion?: string): void {
  let thrown: unknown;
  try {
    make();
  } catch (e) {
    thrown = e;
  }
  expect(thrown).toMatchObject({ code });
  const message = (thrown as Error).message;
  expect(message).toContain(JSON.stringify(key));
  if (suggestion !== undefined) expect(message).toContain(`did you mean ${JSON.stringify(suggestion)}`);
}

describe('unknown option keys are refused with BAD_OPTION, naming the key and the nearest valid one', () => {
  it.each<[string, () => unknown, string, string | undefined]>([
    ['@Step options', () => Step({ name: 's', timeOut: '1s' } as never)(class extends BaseStep {}), 'timeOut', 'timeout'],
    ['a retry policy', () => Step({ name: 's', retry: { maxAtempts: 5 } as never })(class extends BaseStep {}), 'maxAtempts', 'maxAttempts'],
    ['a rollback retry policy', () => Step({ name: 's', rollbackRetry: { backof: 'fixed' } as never })(class extends BaseStep {}), 'backof', 'backoff'],
    ['defineWorkflow options', () => defineWorkflow({ name: 'w', steps: [A], deadlin: '1h' } as never), 'deadlin', 'deadline'],
    ['parallel options', () => defineWorkflow({ name: 'w', steps: [parallel('g', [A], { maxConcurency: 2 } as never)] }), 'maxConcurency', 'maxConcurrency'],
    ['when options', () => when(() => true, [A], [], { nam: 'x' } as never), 'nam', 'name'],
    ['branch options', () => branch('b', A, { return: 'k' } as never), 'return', 'returns'],
    ['child options', () => child(aWorkflow, { input: () => ({}), intoo: () => ok({}) } as never), 'intoo', 'into'],
    ['a rate limit', () => Step({ name: 's', rateLimit: { limit: 1, per: '1s', brust: 2 } as never })(class extends BaseStep {}), 'brust', undefined],
    ['runtime options', () => new SagaRuntime({ store: new MemoryStore(), eventRetension: '1s' } as never), 'eventRetension', 'eventRetention'],
    ['runtime defaults', () => new SagaRuntime({ store: new MemoryStore(), defaults: { waitTimout: '1m' } as never }), 'waitTimout', 'waitTimeout'],
    ['SQLite store options', () => TypeormStore.sqlite({ synchronus: 'FULL' } as never), 'synchronus', 'synchronous'],
    ['PostgreSQL store options', () => TypeormStore.postgres({ url: 'postgres://127.0.0.1/x', poolsize: 3 } as never), 'poolsize', 'poolSize'],
    ['LoggingObserver options', () => new LoggingObserver({ logstate: true } as never), 'logstate', 'logState'],
    ['LoggingObserver levels', () => new LoggingObserver({ levels: { stepStrat: 'info' } as never }), 'stepStrat', 'stepStart'],
    ['HistoryObserver options', () => new HistoryObserver({ redacted: [] } as never), 'redacted', 'redact'],
    ['EventEmitterAdapter options', () => new EventEmitterAdapter(new EventBus(), new EventEmitter(), { eventname: 'x' } as never), 'eventname', 'eventName'],
  ])('in %s', (_where, make, key, suggestion) => {
    refuses(make, 'BAD_OPTION', key, suggestion);
  });

  it('in start, stop and schedule options', async () => {
    const { runtime } = testRuntime({ workflows: [aWorkflow] });
    await expect(runtime.start(aWorkflow, { trail: [] }, { ID: 'x' } as never)).rejects.toMatchObject({ code: 'BAD_OPTION', message: expect.stringContaining('did you mean "id"') });
    await expect(runtime.schedule(aWorkflow, { cronn: '* * * * *', input: {} } as never)).rejects.toMatchObject({ code: 'BAD_OPTION' });
    await expect(runtime.stop({ drainTimout: '1s' } as never)).rejects.toMatchObject({ code: 'BAD_OPTION', message: expect.stringContaining('"drainTimeout"') });
  });

  it.each<[string, () => unknown]>([
    ['validateStateAfterEachStep', () => defineWorkflow({ name: 'w', steps: [A], validateStateAfterEachStep: 'yes' as never })],
    ['logState', () => new LoggingObserver({ logState: 1 as never })],
    ['runMigrations', () => TypeormStore.sqlite({ runMigrations: 'no' as never })],
    ['nonRetryable codes', () => resolveRetryPolicy({ nonRetryable: ['CARD_DECLINED', 5] as never }, 'here')],
    ['redact paths', () => new HistoryObserver({ redact: ['cards..number'] })],
  ])('refuses a value of the wrong type for %s', (_what, make) => {
    expect(make).toThrow(expect.objectContaining({ code: 'BAD_OPTION' }));
  });
});

describe('retry defaults never contradict the user', () => {
  it('accepts an initial delay above the default maximum delay, and waits it', async () => {
    expect(resolveRetryPolicy({ backoff: 'fixed', initialDelay: '10m' }, 'here').maxDelay).toBe(600_000);
    expect(() => resolveRetryPolicy({ initialDelay: '10m', maxDelay: '1m' }, 'here')).toThrow(expect.objectContaining({ code: 'BAD_OPTION' }));
    const log: string[] = [];
    let fail = true;
    const flaky = recordingStep('F', log, { run: (s) => (fail ? ((fail = false), { kind: 'error', reason: { code: 'X', message: 'x' } }) : ok(s)) }, { retry: { maxAttempts: 2, backoff: 'fixed', initialDelay: '10m' } });
    const wf = defineWorkflow<TestState>({ name: 'slow-retry', steps: [flaky] });
    const { runtime, clock } = testRuntime({ workflows: [wf] });
    const handle = await runtime.start(wf, { trail: [] });
    await runtime.idle();
    await clock.advance('9m');
    expect(log).toEqual(['F.run']);
    await clock.advance('1m');
    expect((await handle.result()).status).toBe('completed');
    expect(log).toEqual(['F.run', 'F.run']);
  });
});

describe('durations', () => {
  it('refuse a BigInt, NaN or garbage with BAD_OPTION quoting it, never a raw TypeError', () => {
    for (const value of [10n, Number.NaN, -1, '10 parsecs', {}, 'x'.repeat(500)]) {
      let thrown: unknown;
      try {
        toMillis(value as never, 'a test duration');
      } catch (e) {
        thrown = e;
      }
      expect(thrown).toMatchObject({ code: 'BAD_OPTION' });
      expect((thrown as Error).message.length).toBeLessThan(400);
    }
    expect(() => Step({ name: 's', timeout: 10n as never })(class extends BaseStep {})).toThrow(expect.objectContaining({ code: 'BAD_OPTION', message: expect.stringContaining('10n') }));
  });
});

describe('error messages quote what they received safely and briefly', () => {
  it('quote a cyclic or BigInt-holding result instead of [object Object]', async () => {
    const cyclic: Record<string, unknown> = { kind: 'done' };
    cyclic.self = cyclic;
    for (const [value, shown] of [[cyclic, '[Circular]'], [{ kind: 'done', total: 10n }, '10n']] as const) {
      const wf = defineWorkflow<TestState>({ name: 'odd-result', steps: [recordingStep('X', [], { run: () => value as never })] });
      const { runtime } = testRuntime({ workflows: [wf] });
      const result = await (await runtime.start(wf, { trail: [] })).result();
      expect(result.error?.code).toBe('MALFORMED_RESULT');
      expect(result.error?.message).toContain(shown);
      expect(result.error?.message).not.toContain('[object Object]');
    }
  });

  it('cut a 10,000-character id instead of repeating it', async () => {
    const { runtime } = testRuntime({ workflows: [aWorkflow] });
    const id = 'i'.repeat(10_000);
    await expect(runtime.get(id)).rejects.toMatchObject({ code: 'UNKNOWN_INSTANCE' });
    await runtime.get(id).catch((e: Error) => expect(e.message.length).toBeLessThan(300));
  });
});

const stores: [string, () => Promise<{ store: InstanceStore; done: () => Promise<void> }>][] = [
  ['memory', () => Promise.resolve({ store: new MemoryStore(), done: () => Promise.resolve() })],
  [
    'SQLite',
    () => {
      const dir = mkdtempSync(path.join(tmpdir(), 'sagaflow-args-'));
      const store = TypeormStore.sqlite({ file: path.join(dir, 'args.db') });
      return Promise.resolve({ store, done: async () => (await store.close(), rmSync(dir, { recursive: true, force: true })) });
    },
  ],
  [
    'PostgreSQL',
    async () => {
      const url = await createTestDatabase('bad_args');
      const store = TypeormStore.postgres({ url });
      return { store, done: async () => (await store.close(), await dropTestDatabase(url)) };
    },
  ],
];

describe.each(stores)('reads with bad arguments get INVALID_ARGUMENT, the same on every store (%s)', (_name, make) => {
  let runtime: SagaRuntime;
  let done: () => Promise<void>;
  beforeAll(async () => {
    const made = await make();
    done = made.done;
    runtime = new SagaRuntime({ store: made.store, clock: new SimulatedClock(), logger: silentLogger, workflows: [aWorkflow] });
    await runtime.start(aWorkflow, { trail: [] }, { id: 'known' });
    await runtime.idle();
  });
  afterAll(async () => {
    await runtime.close();
    await done();
  });

  it.each<[string, (r: SagaRuntime) => Promise<unknown>]>([
    ['get({})', (r) => r.get({} as never)],
    ['get(1n)', (r) => r.get(1n as never)],
    ['get("")', (r) => r.get('')],
    ['history(42)', (r) => r.history(42 as never)],
    ['rollback(null)', (r) => r.rollback(null as never, 'why')],
    ['rollback with a reason that is not a string', (r) => r.rollback('known', 5 as never)],
    ['retryCompensation([])', (r) => r.retryCompensation([] as never)],
    ['skipCompensation with a note.by that is not a string', (r) => r.skipCompensation('known', { by: 7 as never })],
    ['handle(5).result()', (r) => r.handle(5 as never).result()],
    ['list({ status: 5 })', (r) => r.list({ status: 5 as never })],
    ['list({ status: "runing" })', (r) => r.list({ status: 'runing' as never })],
    ['list(null)', (r) => r.list(null as never)],
    ['list({ limit: -1 })', (r) => r.list({ limit: -1 })],
    ['list({ limit: "x" })', (r) => r.list({ limit: 'x' as never })],
    ['list({ since: "yesterday" })', (r) => r.list({ since: 'yesterday' as never })],
    ['list({ workflw: "w" })', (r) => r.list({ workflw: 'w' } as never)],
  ])('%s', async (_call, call) => {
    await expect(call(runtime)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
  });

  it('refuses the same filters on the store itself', async () => {
    await expect(runtime.store.list({ limit: 0 })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(runtime.store.list({ status: ['completed', 'nope'] as never })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    expect((await runtime.store.list({ status: [], limit: 5 })).length).toBe(0);
    expect((await runtime.list({ status: 'completed' })).map((s) => s.id)).toEqual(['known']);
  });
});
