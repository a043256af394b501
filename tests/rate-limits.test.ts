import { BaseStep, DefinitionError, defineWorkflow, error, forEach, MemoryStore, ok, RateLimiter, SagaRuntime, silentLogger, Step, type RateLimit, type RateLimitSpec, type StepContext, type StepResult } from '../src';
import { SimulatedClock } from '../src/testing';
import { fails, recordingStep, waitsFor, type Log, type TestState } from './support/steps';
import { testRuntime } from './support/runtime';

/** One `run` call of a limited step: which instance, which step, and when (on the simulated clock). */
interface Call {
  readonly id: string;
  readonly step: string;
  readonly at: number;
}

/** A step that records each `run` call (and, through `log`, every call) and succeeds, optionally rate-limited. */
function timedStep(name: string, calls: Call[], log: Log, rateLimit?: RateLimit) {
  const record = (state: TestState, ctx: StepContext) => {
    calls.push({ id: ctx.instanceId, step: name, at: ctx.clock.now() });
    return ok(state);
  };
  return recordingStep(name, log, { run: record }, rateLimit === undefined ? {} : { rateLimit });
}

/** The largest number of times that fall in one window `[t, t + perMs)`. */
function busiestWindow(times: readonly number[], perMs: number): number {
  return Math.max(0, ...times.map((t) => times.filter((u) => u >= t && u < t + perMs).length));
}

/** The DefinitionError code `fn` throws, or undefined when it throws nothing. */
function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(DefinitionError);
    return (e as DefinitionError).code;
  }
  return undefined;
}

describe('the RateLimiter', () => {
  it('grants the first `limit` callers at once and books the rest so that no window holds more than `limit`', () => {
    const limiter = new RateLimiter('jira', { limit: 3, perMs: 1000 });
    const times = ['a', 'b', 'c', 'd', 'e', 'f', 'g'].map((key) => limiter.reserve(key, 0));

    expect(times).toEqual([0, 0, 0, 1000, 1000, 1000, 2000]);
    expect(limiter.waiting).toBe(4);
  });

  it('spaces callers that arrive one by one a full window after the call `limit` places before them', () => {
    const limiter = new RateLimiter('api', { limit: 2, perMs: 1000 });

    expect(limiter.reserve('a', 0)).toBe(0);
    expect(limiter.reserve('b', 100)).toBe(100);
    expect(limiter.reserve('c', 200)).toBe(1000);
    expect(limiter.reserve('d', 300)).toBe(1100);
    expect(limiter.reserve('e', 2500)).toBe(2500);
  });

  it('returns the same booking when a caller asks again before its time, without taking another slot', () => {
    const limiter = new RateLimiter('api', { limit: 1, perMs: 1000 });
    limiter.reserve('a', 0);

    expect(limiter.reserve('b', 0)).toBe(1000);
    expect(limiter.reserve('b', 400)).toBe(1000);
    expect(limiter.reserve('b', 999)).toBe(1000);
    expect(limiter.waiting).toBe(1);
    // Had the repeated asks taken slots, the next caller would be booked later than 2000.
    expect(limiter.reserve('c', 999)).toBe(2000);
  });

  it('grants a booking at or after its time and then forgets it', () => {
    const limiter = new RateLimiter('api', { limit: 1, perMs: 1000 });
    limiter.reserve('a', 0);
    limiter.reserve('b', 0);
    limiter.reserve('c', 0);

    expect(limiter.reserve('b', 1000)).toBe(1000);
    expect(limiter.reserve('c', 2500)).toBe(2000);
    expect(limiter.waiting).toBe(0);
    // Forgotten: the same key asking again is a new call, which waits for the window after c's slot.
    expect(limiter.reserve('b', 2500)).toBe(3000);
  });

  it('treats a booking more than a window old as spent: its caller, back that late, books anew', () => {
    const limiter = new RateLimiter('api', { limit: 1, perMs: 1000 });
    limiter.reserve('a', 0);
    limiter.reserve('b', 0);

    expect(limiter.reserve('c', 2500)).toBe(2500);
    expect(limiter.reserve('b', 2600)).toBe(3500);
  });

  it('books waiting callers first come, first served', () => {
    const limiter = new RateLimiter('api', { limit: 2, perMs: 1000 });
    const booked = new Map<string, number>();
    for (const [key, now] of [['a', 0], ['b', 0], ['c', 10], ['d', 20], ['e', 30], ['f', 40], ['g', 500]] as const) {
      booked.set(key, limiter.reserve(key, now));
    }

    expect([...booked.entries()]).toEqual([
      ['a', 0],
      ['b', 0],
      ['c', 1000],
      ['d', 1000],
      ['e', 2000],
      ['f', 2000],
      ['g', 3000],
    ]);
  });

  it('never lets a window hold more than `limit` granted calls, whenever callers arrive and come back', () => {
    const limiter = new RateLimiter('api', { limit: 3, perMs: 1000 });
    // A fixed, irregular stream of 60 arrivals; each caller comes back exactly at its booked time.
    const arrivals = Array.from({ length: 60 }, (_, i) => ({ key: `k${i}`, at: Math.floor(i * 97 + ((i * 7919) % 311)) })).sort((x, y) => x.at - y.at);
    const granted: { key: string; at: number }[] = [];
    const comebacks: { key: string; at: number }[] = [];
    for (const { key, at } of arrivals) {
      // Comebacks due before this arrival ask first, in their booked order.
      for (const back of comebacks.filter((b) => b.at <= at).sort((x, y) => x.at - y.at)) {
        expect(limiter.reserve(back.key, back.at)).toBe(back.at);
        granted.push(back);
        comebacks.splice(comebacks.indexOf(back), 1);
      }
      const slot = limiter.reserve(key, at);
      if (slot <= at) granted.push({ key, at });
      else comebacks.push({ key, at: slot });
    }
    for (const back of comebacks.sort((x, y) => x.at - y.at)) {
      expect(limiter.reserve(back.key, back.at)).toBe(back.at);
      granted.push(back);
    }

    expect(granted).toHaveLength(60);
    expect(busiestWindow(granted.map((g) => g.at), 1000)).toBeLessThanOrEqual(3);
    // First come, first served: calls are granted in the order their callers arrived.
    const order = arrivals.map((a) => a.key);
    expect([...granted].sort((x, y) => x.at - y.at || order.indexOf(x.key) - order.indexOf(y.key)).map((g) => g.key)).toEqual(order);
    expect(limiter.waiting).toBe(0);
  });
});

describe('rate-limited steps', () => {
  it('holds a limiter of 5 per second shared by two workflows to at most 5 calls in any second, and runs every call', async () => {
    const calls: Call[] = [];
    const log: Log = [];
    const billing = defineWorkflow<TestState>({ name: 'billing', steps: [timedStep('FileBillingTicket', calls, log, 'jira')] });
    const support = defineWorkflow<TestState>({ name: 'support', steps: [timedStep('FileSupportTicket', calls, log, 'jira')] });
    const { runtime, clock, problems } = testRuntime({ workflows: [billing, support], rateLimiters: { jira: { limit: 5, per: '1s' } } });
    const t0 = clock.now();

    const ids: string[] = [];
    for (let i = 0; i < 12; i += 1) {
      const handle = await runtime.start(i % 2 === 0 ? billing : support, { trail: [] }, { id: `ticket-${i}` });
      ids.push(handle.id);
    }
    await runtime.idle();
    expect(calls).toHaveLength(5);

    await clock.advance('3s');
    await runtime.idle();

    const statuses = await Promise.all(ids.map(async (id) => (await runtime.get(id)).status));
    expect(statuses).toEqual(Array(12).fill('completed'));
    expect(calls).toHaveLength(12);
    const times = calls.map((c) => c.at - t0);
    expect(busiestWindow(times, 1000)).toBeLessThanOrEqual(5);
    expect([...times].sort((a, b) => a - b)).toEqual([0, 0, 0, 0, 0, 1000, 1000, 1000, 1000, 1000, 2000, 2000]);
    // Both workflows drew on the one limiter, first come, first served: the instances get slots in the order they started.
    const idsAt = (ms: number) => calls.filter((c) => c.at - t0 === ms).map((c) => c.id).sort();
    expect(idsAt(0)).toEqual(ids.slice(0, 5).sort());
    expect(idsAt(1000)).toEqual(ids.slice(5, 10).sort());
    expect(idsAt(2000)).toEqual(ids.slice(10).sort());
    expect(new Set(calls.filter((c) => c.at - t0 === 0).map((c) => c.step))).toEqual(new Set(['FileBillingTicket', 'FileSupportTicket']));
    expect(problems).toEqual([]);
  });

  it('applies a step’s own limit across the instances of that step and leaves the steps without a limit undelayed', async () => {
    const calls: Call[] = [];
    const log: Log = [];
    const wf = defineWorkflow<TestState>({
      name: 'sync',
      steps: [timedStep('Prepare', calls, log), timedStep('Upload', calls, log, { limit: 2, per: '1m' }), timedStep('Notify', calls, log)],
    });
    const { runtime, clock } = testRuntime({ workflows: [wf] });
    const t0 = clock.now();

    await runtime.start(wf, { trail: [] }, { id: 's-1' });
    await runtime.start(wf, { trail: [] }, { id: 's-2' });
    await runtime.idle();
    // The limiter is now exhausted for a minute; a third instance still runs its unlimited first step at once.
    await runtime.start(wf, { trail: [] }, { id: 's-3' });
    await runtime.idle();

    const rel = (id: string) => calls.filter((c) => c.id === id).map((c) => `${c.step}@${c.at - t0}`);
    expect(rel('s-1')).toEqual(['Prepare@0', 'Upload@0', 'Notify@0']);
    expect(rel('s-2')).toEqual(['Prepare@0', 'Upload@0', 'Notify@0']);
    expect(rel('s-3')).toEqual(['Prepare@0']);
    expect((await runtime.get('s-3')).status).toBe('waiting');

    await clock.advance('59s');
    expect(rel('s-3')).toEqual(['Prepare@0']);

    await clock.advance('1s');
    await runtime.idle();
    expect(rel('s-3')).toEqual(['Prepare@0', 'Upload@60000', 'Notify@60000']);
    expect((await runtime.handle('s-3').result()).status).toBe('completed');
  });

  it('parks a throttled instance as waiting, with the booked slot stored as its retryAt and a throttled history line', async () => {
    const calls: Call[] = [];
    const log: Log = [];
    const wf = defineWorkflow<TestState>({ name: 'tickets', steps: [timedStep('FileTicket', calls, log, 'jira')] });
    const { runtime, clock } = testRuntime({ workflows: [wf], rateLimiters: { jira: { limit: 1, per: '10s' } } });
    const t0 = clock.now();

    await runtime.start(wf, { trail: [] }, { id: 'first' });
    await runtime.start(wf, { trail: [] }, { id: 'second' });
    await runtime.idle();

    expect(calls.map((c) => c.id)).toEqual(['first']);
    expect((await runtime.get('second')).status).toBe('waiting');
    const stored = await runtime.store.load('second');
    expect(stored?.flow).toMatchObject({ status: 'waiting', stepName: 'FileTicket', stepFunc: 'run', retryAt: t0 + 10_000, inFlight: false });
    const throttled = (await runtime.history('second')).filter((h) => h.kind === 'throttled');
    expect(throttled).toHaveLength(1);
    expect(throttled[0]).toMatchObject({ step: 'FileTicket', func: 'run', status: 'waiting' });
    expect(throttled[0]?.note).toContain('jira');

    await clock.advance('10s');
    await runtime.idle();
    expect(calls.map((c) => `${c.id}@${c.at - t0}`)).toEqual(['first@0', 'second@10000']);
    expect((await runtime.handle('second').result()).status).toBe('completed');
  });

  it('makes a throttled call at its slot after a restart from the stored record', async () => {
    const calls: Call[] = [];
    const log: Log = [];
    const wf = defineWorkflow<TestState>({ name: 'tickets', steps: [timedStep('FileTicket', calls, log, 'jira'), timedStep('Close', calls, log)] });
    const clock = new SimulatedClock();
    const t0 = clock.now();
    const first = testRuntime({ workflows: [wf], clock, rateLimiters: { jira: { limit: 1, per: '10s' } } });
    await first.runtime.start(wf, { trail: [] }, { id: 'early' });
    await first.runtime.start(wf, { trail: [] }, { id: 'late' });
    await first.runtime.idle();
    const json = (first.runtime.store as MemoryStore).exportJson('late');
    await first.runtime.close();
    expect(calls.map((c) => c.id)).toEqual(['early', 'early']);

    const store = new MemoryStore();
    store.importJson(json ?? '');
    const second = testRuntime({ workflows: [wf], clock, store, rateLimiters: { jira: { limit: 1, per: '10s' } } });
    await second.runtime.start();
    await second.runtime.idle();
    expect((await second.runtime.get('late')).status).toBe('waiting');
    expect(calls.map((c) => c.id)).toEqual(['early', 'early']);

    await clock.advance('10s');
    await second.runtime.idle();
    expect((await second.runtime.get('late')).status).toBe('completed');
    const result = await second.runtime.handle<TestState>('late').result();
    expect(result.status).toBe('completed');
    expect(result.state.trail).toEqual(['FileTicket.run', 'Close.run']);
    const late = calls.filter((c) => c.id === 'late');
    expect(late.map((c) => c.step)).toEqual(['FileTicket', 'Close']);
    expect(late[0]?.at).toBeGreaterThanOrEqual(t0 + 10_000);
    expect(second.problems).toEqual([]);
  });

  it('does not throttle rollbacks: a later failure compensates the limited step at once though its limiter is exhausted', async () => {
    const calls: Call[] = [];
    const log: Log = [];
    const rollbacksAt: number[] = [];
    const wf = defineWorkflow<TestState>({
      name: 'undo-now',
      steps: [
        recordingStep(
          'Reserve',
          log,
          {
            run: (state, ctx) => {
              calls.push({ id: ctx.instanceId, step: 'Reserve', at: ctx.clock.now() });
              return ok(state);
            },
            rollback: (state, ctx) => {
              rollbacksAt.push(ctx.clock.now());
              return ok(state);
            },
          },
          { rateLimit: { limit: 1, per: '1m' } },
        ),
        recordingStep('Charge', log, { run: fails('DECLINED') }),
      ],
    });
    const { runtime, clock } = testRuntime({ workflows: [wf] });
    const t0 = clock.now();

    await runtime.start(wf, { trail: [] }, { id: 'u-1' });
    await runtime.idle();

    expect((await runtime.get('u-1')).status).toBe('rolled_back');
    expect(log).toEqual(['Reserve.run', 'Charge.run', 'Charge.rollback', 'Reserve.rollback']);
    expect(rollbacksAt).toEqual([t0]);
    expect((await runtime.history('u-1')).some((h) => h.kind === 'throttled')).toBe(false);
  });

  it('does not throttle runHandleInfo: the event reaches a limited step at once though its limiter is exhausted', async () => {
    const log: Log = [];
    const wf = defineWorkflow<TestState>({
      name: 'await-reply',
      steps: [recordingStep('Ask', log, { run: waitsFor('reply', { to: 'q-1' }) }, { rateLimit: 'jira' }), recordingStep('Done', log)],
    });
    const { runtime } = testRuntime({ workflows: [wf], rateLimiters: { jira: { limit: 1, per: '1m' } } });

    await runtime.start(wf, { trail: [] }, { id: 'q-1' });
    await runtime.idle();
    expect((await runtime.publish({ topic: 'reply', payload: { to: 'q-1' } })).delivered).toBe(1);
    await runtime.idle();

    expect((await runtime.get('q-1')).status).toBe('completed');
    expect(log).toEqual(['Ask.run', 'Ask.runHandleInfo', 'Done.run']);
  });

  it('rolls back a throttled instance at once, never makes the throttled call, and does not compensate the step that never started', async () => {
    const log: Log = [];
    const wf = defineWorkflow<TestState>({
      name: 'cancel-while-throttled',
      steps: [recordingStep('Book', log), recordingStep('Notify', log, {}, { rateLimit: 'mail' }), recordingStep('Archive', log)],
    });
    const { runtime, clock, problems } = testRuntime({ workflows: [wf], rateLimiters: { mail: { limit: 1, per: '1m' } } });

    await (await runtime.start(wf, { trail: [] }, { id: 'takes-the-slot' })).result();
    log.length = 0;
    await runtime.start(wf, { trail: [] }, { id: 'cancelled' });
    await runtime.idle();
    expect((await runtime.get('cancelled')).status).toBe('waiting');
    expect(log).toEqual(['Book.run']);

    await runtime.rollback('cancelled', 'customer cancelled');
    await runtime.idle();
    const result = await runtime.handle('cancelled').result();
    expect(result.status).toBe('rolled_back');

    // Its slot comes and goes: the parked call is not made after the rollback.
    await clock.advance('2m');
    await runtime.idle();
    expect((await runtime.get('cancelled')).status).toBe('rolled_back');
    expect(log).not.toContain('Notify.run');
    // Notify's first call never got a slot, so Notify never started: it comes off the stack uncompensated (DESIGN §3,
    // a step that never started is never compensated), and only Book is undone.
    expect(log).toEqual(['Book.run', 'Book.rollback']);
    expect(problems).toEqual([]);
  });
});

describe('a rollback asked for while a step waits for its rate limiter', () => {
  it('never makes the call when the rollback is applied before the limiter parks the step, and does not compensate it', async () => {
    const log: Log = [];
    const wf = defineWorkflow<TestState>({
      name: 'rollback-before-throttled',
      steps: [recordingStep('Book', log), recordingStep('Notify', log, {}, { rateLimit: 'mail' })],
    });
    // The save of Notify's intent is held, so the rollback is queued before the limiter's answer (no slot free).
    let held: (() => void) | null = null;
    class HoldingStore extends MemoryStore {
      override save(...args: Parameters<MemoryStore['save']>): ReturnType<MemoryStore['save']> {
        const [record] = args;
        if (record.id !== 'cancelled' || record.flow.stepName !== 'Notify' || !record.flow.inFlight || held !== null) return super.save(...args);
        return new Promise((resolve, reject) => (held = () => void super.save(...args).then(resolve, reject)));
      }
    }
    const { runtime, problems } = testRuntime({ workflows: [wf], store: new HoldingStore(), rateLimiters: { mail: { limit: 1, per: '1m' } } });
    await (await runtime.start(wf, { trail: [] }, { id: 'takes-the-slot' })).result();
    log.length = 0;
    const handle = await runtime.start(wf, { trail: [] }, { id: 'cancelled' });
    for (let i = 0; i < 50 && held === null; i += 1) await new Promise((r) => setImmediate(r));
    expect(held).not.toBeNull();
    const asked = runtime.rollback('cancelled', 'customer cancelled');
    for (let i = 0; i < 5; i += 1) await new Promise((r) => setImmediate(r));
    (held as unknown as () => void)();
    await asked;
    const result = await handle.result();
    expect(result.status).toBe('rolled_back');
    expect(log).toEqual(['Book.run', 'Book.rollback']);
    expect(problems).toEqual([]);
  });
});

describe('rate limit definitions', () => {
  it('refuses to register a workflow whose step names a limiter the runtime does not have, with UNKNOWN_RATE_LIMITER', () => {
    const wf = defineWorkflow<TestState>({ name: 'unknown-limiter', steps: [recordingStep('Call', [], {}, { rateLimit: 'jira' })] });
    const { runtime } = testRuntime({ rateLimiters: { github: { limit: 5, per: '1s' } } });

    let caught: unknown;
    try {
      runtime.register(wf);
    } catch (e) {
      caught = e;
    }
    expect(caught).toBeInstanceOf(DefinitionError);
    expect(caught).toMatchObject({ code: 'UNKNOWN_RATE_LIMITER', details: { workflow: 'unknown-limiter', step: 'Call', limiter: 'jira' } });
    expect(codeOf(() => new SagaRuntime({ logger: silentLogger, store: new MemoryStore(), workflows: [wf] }))).toBe('UNKNOWN_RATE_LIMITER');
  });

  it.each([
    ['a limit of 0', { limit: 0, per: '1s' }],
    ['a fractional limit', { limit: 1.5, per: '1s' }],
    ['a window of 0s', { limit: 2, per: '0s' }],
    ['a window that is not a duration', { limit: 2, per: 'soon' }],
    ['a spec without a window', { limit: 2 }],
    ['an empty limiter name', ''],
  ])('refuses %s in @Step rateLimit with BAD_OPTION', (_label, rateLimit) => {
    expect(codeOf(() => recordingStep('Limited', [], {}, { rateLimit: rateLimit as RateLimit }))).toBe('BAD_OPTION');
  });

  it.each([
    ['a limit of 0', { limit: 0, per: '1s' }],
    ['a negative limit', { limit: -3, per: '1s' }],
    ['a window of 0s', { limit: 5, per: '0s' }],
    ['a window that is not a duration', { limit: 5, per: 'garbage' }],
    ['a spec without a window', { limit: 5 }],
  ])('refuses %s in the runtime’s rateLimiters with BAD_OPTION', (_label, spec) => {
    expect(codeOf(() => new SagaRuntime({ logger: silentLogger, store: new MemoryStore(), rateLimiters: { jira: spec as RateLimitSpec } }))).toBe('BAD_OPTION');
  });
});

/** A forEach of four items whose step has a rate limit of `limit` a minute; item 1 fails. */
function limitedItems(name: string, limit: number) {
  const log: string[] = [];
  @Step({ name: `${name}-item`, rateLimit: { limit, per: '1m' } })
  class LimitedItem extends BaseStep<number> {
    override run(n: number): StepResult<number> {
      log.push(`run ${n}`);
      return n === 1 ? error({ code: 'ITEM_FAILED', message: 'item 1 failed' }) : ok(n);
    }
    override rollback(n: number): StepResult<number> {
      log.push(`rollback ${n}`);
      return ok(n);
    }
  }
  const wf = defineWorkflow({ name, steps: [forEach('items', (s: { items: number[] }) => s.items, LimitedItem, { maxConcurrency: 4 })] });
  return { wf, log };
}

describe('rate-limited item steps', () => {
  it('does not compensate forEach items still waiting for their first slot when another item fails', async () => {
    const { wf, log } = limitedItems('limited-items', 2);
    const { runtime } = testRuntime({ workflows: [wf] });
    const result = await (await runtime.start(wf, { items: [0, 1, 2, 3] })).result();
    expect(result.status).toBe('rolled_back');
    expect(result.error?.code).toBe('ITEM_FAILED');
    // Items 2 and 3 were parked for a slot a minute away when item 1 failed: they never ran and are not undone.
    expect(log.filter((l) => l.startsWith('run')).sort()).toEqual(['run 0', 'run 1']);
    expect(log.filter((l) => l.startsWith('rollback')).sort()).toEqual(['rollback 0', 'rollback 1']);
  });

  it('settles a forEach item whose shared limiter answers after a sibling failed: it never runs, and the group ends', async () => {
    const { wf, log } = limitedItems('limited-shared-items', 10);
    const inner = new MemoryStore({ shared: true });
    // The store answers items 2 and 3 only once item 1's failure was applied (the group is settling by then).
    const held: (() => void)[] = [];
    const store = new Proxy(inner, {
      get(target, prop, receiver) {
        if (prop === 'reserveSlot') {
          return (...args: Parameters<MemoryStore['reserveSlot']>) => {
            const answer = target.reserveSlot(...args);
            if (!args[2].endsWith('\u00002') && !args[2].endsWith('\u00003')) return answer;
            return new Promise<number>((resolve) => held.push(() => void answer.then(resolve)));
          };
        }
        const value: unknown = Reflect.get(target, prop, receiver);
        return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
      },
    });
    const runtime = new SagaRuntime({ store, workflows: [wf], logger: silentLogger, pollInterval: '1h' });
    try {
      const handle = await runtime.start(wf, { items: [0, 1, 2, 3] }, { id: 'items-1' });
      for (let i = 0; i < 50 && (held.length < 2 || (await inner.load('items-1'))?.group?.mode !== 'settling'); i += 1) await new Promise((r) => setImmediate(r));
      expect((await inner.load('items-1'))?.group?.mode).toBe('settling');
      for (const release of held) release();
      const result = await handle.result();
      expect(result.status).toBe('rolled_back');
      expect(result.error?.code).toBe('ITEM_FAILED');
      expect(log.filter((l) => l.startsWith('run')).sort()).toEqual(['run 0', 'run 1']);
      expect(log.filter((l) => l.startsWith('rollback')).sort()).toEqual(['rollback 0', 'rollback 1']);
    } finally {
      await runtime.close();
    }
  });
});
