import { defineWorkflow, MemoryStore, ok, RateLimiter, SagaRuntime, silentLogger, type InstanceStore, type RuntimeProblem, type StepContext } from '../src';
import { SimulatedClock } from '../src/testing';
import type { ResolvedRateLimit } from '../src/policies/rate-limiter';
import { TypeormStore } from '../src/store/typeorm';
import { createTestDatabase, dropTestDatabase } from './support/postgres';
import { recordingStep, type Log, type TestState } from './support/steps';

/** A store that books rate-limit slots, with the means to close it. */
interface SlotStore {
  readonly store: InstanceStore;
  reserve(limiter: string, spec: ResolvedRateLimit, key: string, now: number): Promise<number>;
}

let pgUrl = '';
let schemas = 0;

beforeAll(async () => {
  pgUrl = await createTestDatabase('shared_rate');
});
afterAll(async () => dropTestDatabase(pgUrl));

function slotsOf(store: InstanceStore): SlotStore {
  const reserveSlot = store.reserveSlot?.bind(store);
  if (reserveSlot === undefined) throw new Error('the store books no slots');
  return { store, reserve: reserveSlot };
}

const stores: { name: string; make: () => Promise<SlotStore> }[] = [
  { name: 'a shared MemoryStore', make: () => Promise.resolve(slotsOf(new MemoryStore({ shared: true }))) },
  {
    name: 'TypeormStore.sqlite (in memory)',
    make: async () => {
      const store = TypeormStore.sqlite({ file: ':memory:' });
      await store.init();
      return slotsOf(store);
    },
  },
  {
    name: 'TypeormStore.postgres',
    make: async () => {
      const store = TypeormStore.postgres({ url: pgUrl, schema: `slots_${++schemas}`, poolSize: 2 });
      await store.init();
      return slotsOf(store);
    },
  },
];

/** A small seeded generator (mulberry32), so a failing sequence can be replayed. */
function seeded(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe.each(stores)('the slots of a rate limiter booked in $name', ({ make }) => {
  let slots: SlotStore | null = null;
  afterEach(async () => {
    await slots?.store.close();
    slots = null;
  });

  it('grants the first `limit` callers at once and books the rest so that no window holds more than `limit`', async () => {
    slots = await make();
    const spec = { limit: 3, perMs: 1000 };
    const times: number[] = [];
    for (const key of ['a', 'b', 'c', 'd', 'e', 'f', 'g']) times.push(await slots.reserve('jira', spec, key, 0));

    expect(times).toEqual([0, 0, 0, 1000, 1000, 1000, 2000]);
  });

  it('returns a caller its booking when it asks early, grants it once its time has come, and then books anew', async () => {
    slots = await make();
    const spec = { limit: 1, perMs: 1000 };
    await slots.reserve('api', spec, 'a', 0);

    expect(await slots.reserve('api', spec, 'b', 10)).toBe(1000);
    expect(await slots.reserve('api', spec, 'b', 500)).toBe(1000);
    expect(await slots.reserve('api', spec, 'b', 1000)).toBe(1000);
    expect(await slots.reserve('api', spec, 'b', 1001)).toBe(2000);
  });

  it('keeps the slots of limiters with different names apart', async () => {
    slots = await make();
    const spec = { limit: 1, perMs: 1000 };

    expect(await slots.reserve('one', spec, 'a', 0)).toBe(0);
    expect(await slots.reserve('two', spec, 'a', 0)).toBe(0);
    expect(await slots.reserve('one', spec, 'b', 0)).toBe(1000);
  });

  it('answers every seeded sequence of callers and returns exactly as the in-process RateLimiter does', async () => {
    slots = await make();
    for (const seed of [1, 2, 3]) {
      const random = seeded(seed);
      const spec = { limit: 1 + Math.floor(random() * 4), perMs: 100 + Math.floor(random() * 900) };
      const local = new RateLimiter(`fuzz-${seed}`, spec);
      let now = 0;
      for (let i = 0; i < 40; i += 1) {
        now += Math.floor(random() * 300);
        const key = `caller-${Math.floor(random() * 8)}`;
        const expected = local.reserve(key, now);
        expect({ seed, i, at: await slots.reserve(`fuzz-${seed}`, spec, key, now) }).toEqual({ seed, i, at: expected });
      }
    }
  });
});

describe('a rate limiter shared by two workers on one PostgreSQL database', () => {
  it('holds the calls of both workers together to its limit in any window, and makes every call', async () => {
    const schema = `workers_rate_${++schemas}`;
    const calls: number[] = [];
    const log: Log = [];
    const limited = recordingStep('call-partner', log, {
      run: (state: TestState, ctx: StepContext) => {
        calls.push(ctx.clock.now());
        return ok(state);
      },
    }, { rateLimit: 'partner' });
    const workflow = defineWorkflow<TestState>({ name: 'rate-shared', steps: [limited] });
    const problems: RuntimeProblem[] = [];
    const stores: TypeormStore[] = [];
    /** The slots the database granted (a booking taken at its time, or a slot free at once), as they were granted. */
    const granted: number[] = [];
    const recordingGrants = (store: TypeormStore): InstanceStore =>
      new Proxy(store, {
        get(target, property) {
          if (property !== 'reserveSlot') return Reflect.get(target, property, target) as unknown;
          return async (limiter: string, spec: ResolvedRateLimit, key: string, now: number): Promise<number> => {
            const at = await target.reserveSlot(limiter, spec, key, now);
            if (at <= now) granted.push(at);
            return at;
          };
        },
      });
    const worker = (id: string): SagaRuntime => {
      const store = TypeormStore.postgres({ url: pgUrl, schema, poolSize: 4 });
      stores.push(store);
      const runtime = new SagaRuntime({
        store: recordingGrants(store),
        workflows: [workflow],
        workerId: id,
        logger: silentLogger,
        pollInterval: '100ms',
        rateLimiters: { partner: { limit: 2, per: '1s' } },
      });
      runtime.errors$.subscribe((p) => problems.push(p));
      return runtime;
    };
    const a = worker('a');
    const b = worker('b');
    try {
      await a.start();
      await b.start();
      const handles = await Promise.all(
        Array.from({ length: 8 }, (_, i) => (i % 2 === 0 ? a : b).start(workflow, { trail: [] }, { id: `rate-${i}` })),
      );
      const results = await Promise.all(handles.map((h) => h.result()));

      expect(results.map((r) => r.status)).toEqual(Array.from({ length: 8 }, () => 'completed'));
      expect(calls).toHaveLength(8);
      // Each worker alone would let 2 calls through per second (4 together); shared, no second holds more than 2
      // grants, so the 8 calls take 4 windows. (Grants are checked, not the calls' start times, which trail their
      // slots by whatever the event loop adds on a busy machine.)
      const busiest = Math.max(...granted.map((t) => granted.filter((u) => u >= t && u < t + 1000).length));
      expect(granted).toHaveLength(8);
      expect(busiest).toBe(2);
      expect(Math.max(...granted) - Math.min(...granted)).toBeGreaterThanOrEqual(3000);
      expect(problems).toEqual([]);
    } finally {
      await Promise.all([a.close(), b.close()]);
      await Promise.all(stores.map((s) => s.close()));
    }
  }, 20_000);
});

/** A shared MemoryStore whose first `failures` slot bookings fail, as a database that is down would. */
class FlakySlotStore extends MemoryStore {
  constructor(private failures: number) {
    super({ shared: true });
  }

  override reserveSlot(limiter: string, spec: ResolvedRateLimit, key: string, now: number): Promise<number> {
    if (this.failures > 0) {
      this.failures -= 1;
      return Promise.reject(new Error('the database is down'));
    }
    return super.reserveSlot(limiter, spec, key, now);
  }
}

describe('a rate limiter whose store cannot book a slot', () => {
  it('reports each failed booking, keeps the instance parked, asks again a window later and then makes the call', async () => {
    const clock = new SimulatedClock();
    const log: Log = [];
    const limited = recordingStep('call-partner', log, {}, { rateLimit: { limit: 1, per: '10s' } });
    const workflow = defineWorkflow<TestState>({ name: 'rate-flaky', steps: [limited] });
    const store = new FlakySlotStore(2);
    const runtime = new SagaRuntime({ store, clock, workflows: [workflow], logger: silentLogger, pollInterval: '1h' });
    const problems: RuntimeProblem[] = [];
    runtime.errors$.subscribe((p) => problems.push(p));
    try {
      await runtime.start();
      const handle = await runtime.start(workflow, { trail: [] }, { id: 'flaky-1' });
      await runtime.idle();

      expect(log).toEqual([]);
      expect((await runtime.get('flaky-1')).status).toBe('waiting');
      await clock.advance('10s');
      await runtime.idle();
      expect(log).toEqual([]);
      await clock.advance('10s');
      await runtime.idle();

      expect(log).toEqual(['call-partner.run']);
      expect((await handle.result()).status).toBe('completed');
      expect(problems.map((p) => [p.kind, p.error.message])).toEqual([
        ['instance-failed', 'the database is down'],
        ['instance-failed', 'the database is down'],
      ]);
    } finally {
      await runtime.close();
    }
  });
});
