import { setImmediate as nextTurn, setTimeout as sleep } from 'node:timers/promises';
import { MemoryStore, defineWorkflow, ok, type InstanceStore, type SagaRuntimeOptions } from '../src';
import { TypeormStore } from '../src/store/typeorm';
import { SimulatedClock } from '../src/testing';
import { createTestDatabase, dropTestDatabase } from './support/postgres';
import { recordingStep, waitsFor, type Log, type TestState } from './support/steps';
import { testRuntime } from './support/runtime';

/**
 * A store that counts its calls in flight, so a test can wait until the work a clock step started has reached
 * the database and come back (real I/O on PostgreSQL takes real time; a simulated clock does not wait for it).
 */
function tracked(store: InstanceStore, counter: { inflight: number }): InstanceStore {
  return new Proxy(store, {
    get(target, property) {
      const value: unknown = Reflect.get(target, property, target);
      if (typeof value !== 'function') return value;
      return (...args: unknown[]): unknown => {
        const result: unknown = (value as (...a: unknown[]) => unknown).apply(target, args);
        if (result instanceof Promise) {
          counter.inflight += 1;
          const done = (): void => {
            counter.inflight -= 1;
          };
          result.then(done, done);
        }
        return result;
      };
    },
  });
}

/** Two stores on one set of fresh shared tables: one per worker (one object for the in-memory store). */
interface SharedTables {
  readonly a: InstanceStore;
  readonly b: InstanceStore;
  close(): Promise<void>;
}

interface StoreFactory {
  readonly name: string;
  make(): Promise<SharedTables>;
}

let pgUrl = '';
let schemas = 0;

const factories: StoreFactory[] = [
  {
    name: 'a shared MemoryStore',
    make: () => {
      const store = new MemoryStore({ shared: true });
      return Promise.resolve({ a: store, b: store, close: () => store.close() });
    },
  },
  {
    name: 'TypeormStore.postgres (one store per worker, a fresh schema per test)',
    make: async () => {
      const schema = `workers_${++schemas}`;
      const a = TypeormStore.postgres({ url: pgUrl, schema, poolSize: 4 });
      const b = TypeormStore.postgres({ url: pgUrl, schema, poolSize: 4 });
      await a.init();
      await b.init();
      return { a, b, close: async () => void (await Promise.all([a.close(), b.close()])) };
    },
  },
];

beforeAll(async () => {
  pgUrl = await createTestDatabase('workers');
});
afterAll(async () => dropTestDatabase(pgUrl));

describe.each(factories)('several workers on $name', (factory) => {
  let tables: SharedTables | null = null;
  const counter = { inflight: 0 };
  afterEach(async () => {
    await tables?.close();
    tables = null;
  });

  /** Two workers (runtimes), each on its store, on one clock. */
  async function twoWorkers(workflows: SagaRuntimeOptions['workflows'], extra: Partial<SagaRuntimeOptions> = {}) {
    tables = await factory.make();
    const clock = new SimulatedClock();
    const options = { workflows, clock, leaseDuration: '30s', pollInterval: '1s', ...extra } as const;
    return {
      store: tables.a,
      clock,
      a: testRuntime({ ...options, store: tracked(tables.a, counter), workerId: 'A' }),
      b: testRuntime({ ...options, store: tracked(tables.b, counter), workerId: 'B' }),
    };
  }

  /** Resolves once no store call has been in flight for a few turns of the event loop. */
  async function settle(): Promise<void> {
    for (let quiet = 0; quiet < 5; ) {
      await nextTurn();
      if (counter.inflight === 0) {
        quiet += 1;
      } else {
        quiet = 0;
        await sleep(1);
      }
    }
  }

  /** Moves the clock one poll interval (1s) at a time, letting each poll's store calls finish before the next. */
  async function advance(clock: SimulatedClock, seconds: number): Promise<void> {
    await settle();
    for (let i = 0; i < seconds; i += 1) {
      await clock.advance('1s');
      await settle();
    }
  }

  it('never run an instance on two workers at once while its lease is held', async () => {
    const log: Log = [];
    let release!: () => void;
    const wf = defineWorkflow<TestState>({
      name: 'held',
      steps: [recordingStep('S', log, { run: (s) => new Promise((r) => (release = () => r(ok(s)))) })],
    });
    const { a, b, clock } = await twoWorkers([wf]);
    await a.runtime.start();
    const handle = await a.runtime.start(wf, { trail: [] }, { id: 'one' });
    await b.runtime.start();
    await advance(clock, 20);
    expect(log).toEqual(['S.run']);
    release();
    expect((await handle.result()).status).toBe('completed');
    await advance(clock, 60);
    expect(log).toEqual(['S.run']);
    await a.runtime.close();
    await b.runtime.close();
  });

  it("take over a dead worker's instance after its lease expires, re-running the step with the same idempotency key", async () => {
    const keys: string[] = [];
    let hang = true;
    const wf = defineWorkflow<TestState>({
      name: 'takeover',
      steps: [
        recordingStep('A', []),
        recordingStep('S', [], {
          run: (s, ctx) => {
            keys.push(`${ctx.idempotencyKey}`);
            return hang ? new Promise(() => undefined) : ok(s);
          },
        }),
      ],
    });
    const { a, b, clock } = await twoWorkers([wf]);
    await a.runtime.start();
    await a.runtime.start(wf, { trail: [] }, { id: 'orphan' });
    await advance(clock, 1);
    expect(keys).toEqual(['orphan:S:up:1']);
    await a.runtime.close(); // the worker dies with the lease held and S in flight
    hang = false;
    await b.runtime.start();
    // A's lease was last written with S's intent at 0s (a poll renews only a lease half spent): it runs out at 30s.
    await advance(clock, 28);
    expect(keys).toHaveLength(1);
    await advance(clock, 2);
    expect((await b.runtime.handle('orphan').result()).status).toBe('completed');
    expect(keys).toEqual(['orphan:S:up:1', 'orphan:S:up:1']);
    await b.runtime.close();
  });

  it('renew a lease in a poll only once half of it is spent, since every transition renews it too', async () => {
    const wf = defineWorkflow<TestState>({ name: 'slow', steps: [recordingStep('S', [], { run: () => new Promise(() => undefined) })] });
    const { a, store, clock } = await twoWorkers([wf]);
    const acquired: number[] = [];
    const start = clock.now();
    const acquire = store.acquire.bind(store);
    store.acquire = (id, owner, until, now) => {
      if (id === 'slow-1') acquired.push(now - start);
      return acquire(id, owner, until, now);
    };
    await a.runtime.start();
    await a.runtime.start(wf, { trail: [] }, { id: 'slow-1' });
    await advance(clock, 14);
    expect(acquired).toEqual([]);
    await advance(clock, 1);
    expect(acquired).toEqual([15_000]);
    await advance(clock, 5);
    expect(acquired).toEqual([15_000]);
    await a.runtime.close();
  });

  it('apply an event to a parked instance no worker holds in one write: read without the lease, taken by the transition', async () => {
    const log: Log = [];
    const wf = defineWorkflow<TestState>({ name: 'one-commit', steps: [recordingStep('W', log, { run: waitsFor('paid', { orderId: 'o-9' }) })] });
    const { a, b, clock } = await twoWorkers([wf]);
    await a.runtime.start();
    await b.runtime.start();
    const handle = await a.runtime.start(wf, { trail: [] }, { id: 'parked' });
    await a.runtime.idle();
    await settle();
    await a.runtime.close(); // its lease runs out; b has never held the instance
    await advance(clock, 31);
    const store = b.runtime.store;
    const calls: string[] = [];
    for (const method of ['acquire', 'save', 'acceptEvent'] as const) {
      const original = store[method].bind(store) as (...args: unknown[]) => Promise<unknown>;
      (store as unknown as Record<string, unknown>)[method] = (...args: unknown[]) => {
        calls.push(method);
        return original(...args);
      };
    }
    const receipt = await b.runtime.publish({ topic: 'paid', payload: { orderId: 'o-9' }, id: 'evt-9' });
    expect(receipt.delivered).toBe(1);
    expect((await b.runtime.handle('parked').result()).status).toBe('completed');
    // The event's transition (which took the lease) and then runHandleInfo's result: no lease write of its own.
    expect(calls).toEqual(['save', 'save']);
    expect(log).toEqual(['W.run', 'W.runHandleInfo']);
    expect(handle.id).toBe('parked');
    await b.runtime.close();
  });

  it('hand an event published on one worker to the worker holding the instance, through the inbox, exactly once', async () => {
    const log: Log = [];
    const wf = defineWorkflow<TestState>({ name: 'inbox', steps: [recordingStep('W', log, { run: waitsFor('paid', { orderId: 'o-1' }) })] });
    const { a, b, store } = await twoWorkers([wf]);
    await a.runtime.start();
    await b.runtime.start();
    const handle = await a.runtime.start(wf, { trail: [] }, { id: 'mine' });
    await a.runtime.idle();
    await settle();
    const receipt = await b.runtime.publish({ topic: 'paid', payload: { orderId: 'o-1' }, id: 'evt-1' });
    expect(receipt.delivered).toBe(1);
    expect((await handle.result()).status).toBe('completed');
    await a.runtime.idle();
    expect(log).toEqual(['W.run', 'W.runHandleInfo']);
    expect(await store.pendingEvents('mine')).toEqual([]);
    await a.runtime.close();
    await b.runtime.close();
  });

  it('wake the worker holding an instance as soon as an event for it lands in its inbox, without waiting for a poll', async () => {
    const log: Log = [];
    const wf = defineWorkflow<TestState>({ name: 'wake', steps: [recordingStep('W', log, { run: waitsFor('paid', { orderId: 'o-2' }) })] });
    // Polls an hour apart: only the inbox notification (LISTEN/NOTIFY on PostgreSQL) can bring the event over.
    const { a, b, clock, store } = await twoWorkers([wf], { pollInterval: '1h' });
    await a.runtime.start();
    await b.runtime.start();
    const handle = await a.runtime.start(wf, { trail: [] }, { id: 'sleeper' });
    await a.runtime.idle();
    await settle();
    const before = clock.now();
    const receipt = await b.runtime.publish({ topic: 'paid', payload: { orderId: 'o-2' }, id: 'evt-2' });
    expect(receipt.delivered).toBe(1);
    expect((await handle.result()).status).toBe('completed');
    await a.runtime.idle();
    expect(clock.now()).toBe(before); // no simulated time passed: no poll ran
    expect(log).toEqual(['W.run', 'W.runHandleInfo']);
    expect(await store.pendingEvents('sleeper')).toEqual([]);
    expect((await store.history('sleeper')).filter((h) => h.kind === 'step-result').map((h) => `${h.func} ${h.outcome}`)).toEqual([
      'run continue',
      'runHandleInfo ok',
    ]);
    await a.runtime.close();
    await b.runtime.close();
  });

  it('apply an inbox delivery left by a dead worker once its lease expires', async () => {
    const log: Log = [];
    const wf = defineWorkflow<TestState>({ name: 'inbox-takeover', steps: [recordingStep('W', log, { run: waitsFor('paid') })] });
    const { a, b, clock, store } = await twoWorkers([wf]);
    await a.runtime.start();
    await a.runtime.start(wf, { trail: [] }, { id: 'left' });
    await a.runtime.idle();
    await a.runtime.close();
    await b.runtime.start();
    expect((await b.runtime.publish({ topic: 'paid' })).delivered).toBe(1);
    expect(await store.pendingEvents('left')).toHaveLength(1);
    await advance(clock, 31);
    expect((await b.runtime.handle('left').result()).status).toBe('completed');
    await b.runtime.idle();
    expect(log).toEqual(['W.run', 'W.runHandleInfo']);
    expect(await store.pendingEvents('left')).toEqual([]);
    await b.runtime.close();
  });

  it('fire due wait deadlines on a surviving worker', async () => {
    const log: Log = [];
    const wf = defineWorkflow<TestState>({ name: 'due', steps: [recordingStep('A', log), recordingStep('W', log, { run: waitsFor('never', {}, '1m') })] });
    const { a, b, clock } = await twoWorkers([wf]);
    await a.runtime.start();
    await a.runtime.start(wf, { trail: [] }, { id: 'late' });
    await a.runtime.idle();
    await a.runtime.close();
    await b.runtime.start();
    await advance(clock, 61);
    const result = await b.runtime.handle('late').result();
    expect(result.error?.code).toBe('TIMEOUT');
    expect(log).toEqual(['A.run', 'W.run', 'W.rollback', 'A.rollback']);
    await b.runtime.close();
  });

  it('settle a result() waiter on one worker when another worker finishes the instance', async () => {
    const log: Log = [];
    const wf = defineWorkflow<TestState>({ name: 'finished-elsewhere', steps: [recordingStep('W', log, { run: waitsFor('paid') })] });
    const { a, b, clock } = await twoWorkers([wf]);
    await a.runtime.start();
    await b.runtime.start();
    const handle = await a.runtime.start(wf, { trail: [] }, { id: 'elsewhere' });
    await a.runtime.idle();
    const settled = handle.result();
    await advance(clock, 40); // A no longer runs the parked instance, and its lease lapses
    await b.runtime.publish({ topic: 'paid' });
    await advance(clock, 2); // A's next poll sees it finished
    expect((await settled).status).toBe('completed');
    expect(log).toEqual(['W.run', 'W.runHandleInfo']);
    await a.runtime.close();
    await b.runtime.close();
  });

  it('refuse operator calls on an instance another live worker holds with LEASED_ELSEWHERE', async () => {
    const wf = defineWorkflow<TestState>({ name: 'leased', steps: [recordingStep('W', [], { run: waitsFor('go') })] });
    const { a, b } = await twoWorkers([wf]);
    await a.runtime.start();
    await a.runtime.start(wf, { trail: [] }, { id: 'busy' });
    await a.runtime.idle();
    await expect(b.runtime.rollback('busy', 'x')).rejects.toMatchObject({ code: 'LEASED_ELSEWHERE' });
    await expect(b.runtime.rollback('missing', 'x')).rejects.toMatchObject({ code: 'UNKNOWN_INSTANCE' });
    await a.runtime.close();
    await b.runtime.close();
  });
});
