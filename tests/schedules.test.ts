import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { MemoryStore, defineWorkflow, type InstanceStore, type SagaRuntime, type SagaRuntimeOptions } from '../src';
import { planCatchUp } from '../src/schedule/catch-up';
import { TypeormStore } from '../src/store/typeorm';
import { SimulatedClock, flushMicrotasks } from '../src/testing';
import type { TimerHandle } from '../src/time/clock';
import { recordingStep, type Log, type TestState } from './support/steps';
import { testRuntime } from './support/runtime';

const at = (iso: string): number => Date.parse(iso);
const idOf = (name: string, iso: string): string => `schedule:${name}:${new Date(iso).toISOString()}`;

function reportWorkflow(log: Log, name = 'report') {
  return defineWorkflow<TestState>({ name, steps: [recordingStep('Report', log)] });
}

/** The ids of every instance in the store, sorted. */
async function instanceIds(runtime: SagaRuntime): Promise<string[]> {
  return (await runtime.list()).map((s) => s.id).sort();
}

/** Lets the work a clock step started settle. */
async function settle(...runtimes: SagaRuntime[]): Promise<void> {
  await flushMicrotasks();
  for (const runtime of runtimes) await runtime.idle();
}

/** A runtime on a simulated clock starting at `start`. */
function scheduling(start: string, options: SagaRuntimeOptions = {}) {
  return testRuntime({ clock: new SimulatedClock(at(start)), ...options });
}

/** A MemoryStore whose next `advanceSchedule` calls fail. */
class FlakyStore extends MemoryStore {
  failures = 0;
  override advanceSchedule(name: string, expected: number | undefined, tick: number, now: number): Promise<boolean> {
    if (this.failures > 0) {
      this.failures -= 1;
      return Promise.reject(new Error('disk full'));
    }
    return super.advanceSchedule(name, expected, tick, now);
  }
}

/** A shared MemoryStore that, once gated, holds every `scheduleTick` read until two are waiting (two workers firing at once). */
class GatedStore extends MemoryStore {
  gated = false;
  private readonly held: (() => void)[] = [];
  constructor() {
    super({ shared: true });
  }
  override async scheduleTick(name: string): Promise<number | undefined> {
    if (this.gated) {
      await new Promise<void>((resolve) => {
        this.held.push(resolve);
        if (this.held.length === 2) for (const release of this.held.splice(0)) release();
      });
    }
    return super.scheduleTick(name);
  }
}

/** A simulated clock whose timers, like Node's, cannot wait longer than `maxDelay` ms: longer ones fire early. */
class CappedClock extends SimulatedClock {
  constructor(
    start: number,
    private readonly maxDelay: number,
  ) {
    super(start);
  }
  override setTimeout(callback: () => void, delayMs: number): TimerHandle {
    return super.setTimeout(callback, Math.min(delayMs, this.maxDelay));
  }
}

describe('cron schedules', () => {
  it('start one instance per tick of a quarter-hour schedule, with the id of its tick, and run each to completion', async () => {
    const log: Log = [];
    const wf = reportWorkflow(log);
    const { runtime, clock, problems } = scheduling('2026-01-01T00:00:00Z', { workflows: [wf] });
    const handle = await runtime.schedule(wf, { cron: '*/15 * * * *', input: { trail: [] } });
    expect(handle.name).toBe('report');
    expect(handle.nextRun()).toEqual(new Date('2026-01-01T00:15:00Z'));
    expect(clock.pendingTimers).toBe(1); // one timer for the next tick, never one per tick

    await clock.advance('1h');
    await settle(runtime);

    expect(await instanceIds(runtime)).toEqual(
      ['00:15', '00:30', '00:45', '01:00'].map((hm) => idOf('report', `2026-01-01T${hm}:00Z`)),
    );
    expect((await runtime.list()).map((s) => s.status)).toEqual(['completed', 'completed', 'completed', 'completed']);
    expect(log).toEqual(['Report.run', 'Report.run', 'Report.run', 'Report.run']);
    expect(handle.nextRun()).toEqual(new Date('2026-01-01T01:15:00Z'));
    expect(await runtime.store.scheduleTick!('report')).toBe(at('2026-01-01T01:00:00Z'));
    expect(clock.pendingTimers).toBe(1);
    expect(problems).toEqual([]);
    await runtime.close();
  });

  it('read a 6-field expression with seconds first', async () => {
    const wf = reportWorkflow([]);
    const { runtime, clock } = scheduling('2026-01-01T00:00:00Z', { workflows: [wf] });
    await runtime.schedule(wf, { cron: '*/20 * * * * *', input: { trail: [] } });
    await clock.advance('1m');
    await settle(runtime);
    expect(await instanceIds(runtime)).toEqual(['00:00:20', '00:00:40', '00:01:00'].map((t) => idOf('report', `2026-01-01T${t}Z`)));
    await runtime.close();
  });

  it('read the expression in the given time zone, daylight saving time included, and in UTC by default', async () => {
    const wf = reportWorkflow([]);
    const winter = scheduling('2026-01-01T00:00:00Z', { workflows: [wf] });
    const paris = await winter.runtime.schedule(wf, { cron: '0 9 * * *', timezone: 'Europe/Paris', input: { trail: [] } });
    expect(paris.nextRun()).toEqual(new Date('2026-01-01T08:00:00Z'));
    await winter.clock.advance('8h');
    await settle(winter.runtime);
    expect(await instanceIds(winter.runtime)).toEqual([idOf('report', '2026-01-01T08:00:00Z')]);
    await winter.runtime.close();

    const summer = scheduling('2026-07-01T00:00:00Z', { workflows: [wf] });
    const parisInSummer = await summer.runtime.schedule(wf, { cron: '0 9 * * *', timezone: 'Europe/Paris', input: { trail: [] } });
    const utc = await summer.runtime.schedule(wf, { cron: '0 9 * * *', name: 'utc', input: { trail: [] } });
    expect(parisInSummer.nextRun()).toEqual(new Date('2026-07-01T07:00:00Z'));
    expect(utc.nextRun()).toEqual(new Date('2026-07-01T09:00:00Z'));
    await summer.clock.advance('9h');
    await settle(summer.runtime);
    expect(await instanceIds(summer.runtime)).toEqual([idOf('report', '2026-07-01T07:00:00Z'), idOf('utc', '2026-07-01T09:00:00Z')]);
    await summer.runtime.close();
  });

  it('give an input function the time of its tick', async () => {
    const wf = reportWorkflow([]);
    const { runtime, clock } = scheduling('2026-01-01T00:00:00Z', { workflows: [wf] });
    const ticks: Date[] = [];
    await runtime.schedule(wf, {
      cron: '0 * * * *',
      input: (tick) => {
        ticks.push(tick);
        return { trail: [], tick: tick.toISOString() };
      },
    });
    await clock.advance('2h');
    await settle(runtime);
    expect(ticks).toEqual([new Date('2026-01-01T01:00:00Z'), new Date('2026-01-01T02:00:00Z')]);
    const second = await runtime.get<TestState>(idOf('report', '2026-01-01T02:00:00Z'));
    expect(second.state.tick).toBe('2026-01-01T02:00:00.000Z');
    await runtime.close();
  });

  it('wait out a tick further away than the clock can set a timer for', async () => {
    const wf = reportWorkflow([]);
    const clock = new CappedClock(at('2026-01-01T00:00:00Z'), 24 * 3_600_000);
    const { runtime } = testRuntime({ clock, workflows: [wf] });
    await runtime.schedule(wf, { cron: '0 0 1 * *', input: { trail: [] } });
    await clock.advance('30d');
    await settle(runtime);
    expect(await instanceIds(runtime)).toEqual([]);
    await clock.advance('1d');
    await settle(runtime);
    expect(await instanceIds(runtime)).toEqual([idOf('report', '2026-02-01T00:00:00Z')]);
    await runtime.close();
  });

  describe('with two runtimes on one store', () => {
    it('start one instance per tick', async () => {
      const log: Log = [];
      const wf = reportWorkflow(log);
      const store = new MemoryStore({ shared: true });
      const clock = new SimulatedClock(at('2026-01-01T00:00:00Z'));
      const a = testRuntime({ clock, store, workflows: [wf], workerId: 'A' });
      const b = testRuntime({ clock, store, workflows: [wf], workerId: 'B' });
      await a.runtime.schedule(wf, { cron: '*/15 * * * *', input: { trail: [] } });
      await b.runtime.schedule(wf, { cron: '*/15 * * * *', input: { trail: [] } });
      await clock.advance('1h');
      await settle(a.runtime, b.runtime);
      expect(await instanceIds(a.runtime)).toEqual(['00:15', '00:30', '00:45', '01:00'].map((hm) => idOf('report', `2026-01-01T${hm}:00Z`)));
      expect(log).toHaveLength(4);
      expect([...a.problems, ...b.problems]).toEqual([]);
      await a.runtime.close();
      await b.runtime.close();
    });

    it('start one instance when both fire the same tick at the same moment', async () => {
      const log: Log = [];
      const wf = reportWorkflow(log);
      const store = new GatedStore();
      const clock = new SimulatedClock(at('2026-01-01T00:00:00Z'));
      const a = testRuntime({ clock, store, workflows: [wf], workerId: 'A' });
      const b = testRuntime({ clock, store, workflows: [wf], workerId: 'B' });
      await a.runtime.schedule(wf, { cron: '0 * * * *', input: { trail: [] } });
      await b.runtime.schedule(wf, { cron: '0 * * * *', input: { trail: [] } });
      store.gated = true; // both read the last tick before either has started the tick's instance
      await clock.advance('1h');
      await settle(a.runtime, b.runtime);
      expect(await instanceIds(a.runtime)).toEqual([idOf('report', '2026-01-01T01:00:00Z')]);
      expect(log).toEqual(['Report.run']);
      store.gated = false;
      expect(await store.scheduleTick('report')).toBe(at('2026-01-01T01:00:00Z'));
      expect([...a.problems, ...b.problems]).toEqual([]);
      await a.runtime.close();
      await b.runtime.close();
    });
  });

  describe('after a restart', () => {
    /** Runs an hourly schedule from 00:00 to 01:00 on `store`, then closes the runtime and moves the clock to 05:30. */
    async function runThenStop(store: InstanceStore, clock: SimulatedClock): Promise<void> {
      const wf = reportWorkflow([]);
      const { runtime } = testRuntime({ clock, store, workflows: [wf] });
      await runtime.schedule(wf, { cron: '0 * * * *', input: { trail: [] } });
      await clock.advance('1h');
      await settle(runtime);
      await runtime.close();
      await clock.advance('4.5h'); // 02:00, 03:00, 04:00 and 05:00 pass with no runtime
    }

    it('start one instance for the latest of several missed ticks (runOnce, the default), then go on with the next tick', async () => {
      const store = new MemoryStore();
      const clock = new SimulatedClock(at('2026-01-01T00:00:00Z'));
      await runThenStop(store, clock);
      const log: Log = [];
      const wf = reportWorkflow(log);
      const { runtime, problems } = testRuntime({ clock, store, workflows: [wf] });
      await runtime.schedule(wf, { cron: '0 * * * *', input: { trail: [] } });
      await settle(runtime);
      expect(await instanceIds(runtime)).toEqual([idOf('report', '2026-01-01T01:00:00Z'), idOf('report', '2026-01-01T05:00:00Z')]);
      expect(log).toEqual(['Report.run']);
      expect(await store.scheduleTick('report')).toBe(at('2026-01-01T05:00:00Z'));
      await clock.advance('30m');
      await settle(runtime);
      expect(await instanceIds(runtime)).toEqual(['01', '05', '06'].map((h) => idOf('report', `2026-01-01T${h}:00:00Z`)));
      expect(problems).toEqual([]);
      await runtime.close();
    });

    it('start nothing for missed ticks (skip), then go on with the next tick', async () => {
      const store = new MemoryStore();
      const clock = new SimulatedClock(at('2026-01-01T00:00:00Z'));
      await runThenStop(store, clock);
      const log: Log = [];
      const wf = reportWorkflow(log);
      const { runtime, problems } = testRuntime({ clock, store, workflows: [wf] });
      await runtime.schedule(wf, { cron: '0 * * * *', missed: 'skip', input: { trail: [] } });
      await settle(runtime);
      expect(await instanceIds(runtime)).toEqual([idOf('report', '2026-01-01T01:00:00Z')]);
      expect(log).toEqual([]);
      expect(await store.scheduleTick('report')).toBe(at('2026-01-01T05:00:00Z'));
      await clock.advance('30m');
      await settle(runtime);
      expect(await instanceIds(runtime)).toEqual([idOf('report', '2026-01-01T01:00:00Z'), idOf('report', '2026-01-01T06:00:00Z')]);
      expect(log).toEqual(['Report.run']);
      expect(problems).toEqual([]);
      await runtime.close();
    });

    it('keep the last tick in an SQLite store, so a new process catches up from it', async () => {
      const dir = mkdtempSync(path.join(tmpdir(), 'sagaflow-schedules-'));
      const file = path.join(dir, 'schedules.db');
      const clock = new SimulatedClock(at('2026-01-01T00:00:00Z'));
      try {
        const first = TypeormStore.sqlite({ file });
        const wf = reportWorkflow([]);
        const one = testRuntime({ clock, store: first, workflows: [wf] });
        await one.runtime.schedule(wf, { cron: '0 * * * *', input: { trail: [] } });
        await clock.advance('1h');
        await until(async () => (await first.scheduleTick('report')) === at('2026-01-01T01:00:00Z'));
        await until(async () => (await one.runtime.list({ status: 'completed' })).length === 1);
        await one.runtime.close();
        await first.close();

        await clock.advance('3.5h');
        const second = TypeormStore.sqlite({ file });
        expect(await second.scheduleTick('report')).toBe(at('2026-01-01T01:00:00Z'));
        const two = testRuntime({ clock, store: second, workflows: [wf] });
        await two.runtime.schedule(wf, { cron: '0 * * * *', input: { trail: [] } });
        expect(await instanceIds(two.runtime)).toEqual([idOf('report', '2026-01-01T01:00:00Z'), idOf('report', '2026-01-01T04:00:00Z')]);
        expect(await second.scheduleTick('report')).toBe(at('2026-01-01T04:00:00Z'));
        await two.runtime.idle();
        await two.runtime.close();
        await second.close();
        expect([...one.problems, ...two.problems]).toEqual([]);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });

  it('never fire a brand-new schedule for ticks before it was created', async () => {
    const wf = reportWorkflow([]);
    const { runtime, clock } = scheduling('2026-01-01T05:30:00Z', { workflows: [wf] });
    const handle = await runtime.schedule(wf, { cron: '0 * * * *', input: { trail: [] } });
    await settle(runtime);
    expect(await instanceIds(runtime)).toEqual([]);
    expect(await runtime.store.scheduleTick!('report')).toBe(at('2026-01-01T05:30:00Z'));
    expect(handle.nextRun()).toEqual(new Date('2026-01-01T06:00:00Z'));
    await clock.advance('30m');
    await settle(runtime);
    expect(await instanceIds(runtime)).toEqual([idOf('report', '2026-01-01T06:00:00Z')]);
    await runtime.close();
  });

  describe('rejects bad input before storing anything', () => {
    const wf = reportWorkflow([]);

    async function rejected(options: Record<string, unknown>, workflow: Parameters<SagaRuntime['schedule']>[0] = wf) {
      const { runtime, clock } = scheduling('2026-01-01T00:00:00Z', { workflows: [wf] });
      const error: unknown = await runtime.schedule(workflow, { cron: '0 * * * *', input: { trail: [] }, ...options }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(await runtime.store.scheduleTick!(typeof options.name === 'string' ? options.name : 'report')).toBeUndefined();
      expect(clock.pendingTimers).toBe(0);
      await runtime.close();
      return error as { code?: string; message?: string };
    }

    it.each(['61 * * * *', 'every monday', '* * * *', '0 0 0 * * * *', ''])('an invalid cron expression %j with BAD_CRON, quoting it and the reason', async (cron) => {
      const error = await rejected({ cron });
      expect(error.code).toBe('BAD_CRON');
      expect(error.message).toContain(JSON.stringify(cron));
      expect(error.message).toMatch(/is invalid \(.+\)/);
    });

    it('an unknown time zone with BAD_TIMEZONE', async () => {
      const error = await rejected({ timezone: 'Mars/Olympus' });
      expect(error.code).toBe('BAD_TIMEZONE');
      expect(error.message).toContain('"Mars/Olympus"');
    });

    it('a workflow the runtime does not know with UNKNOWN_WORKFLOW', async () => {
      expect((await rejected({}, 'nope')).code).toBe('UNKNOWN_WORKFLOW');
      expect((await rejected({}, reportWorkflow([], 'unregistered'))).code).toBe('UNKNOWN_WORKFLOW');
    });

    it.each([
      ['a missed policy it does not know', { missed: 'sometimes' }],
      ['an empty name', { name: '' }],
      ['no input', { input: undefined }],
    ])('%s with BAD_OPTION', async (_what, options) => {
      expect((await rejected(options)).code).toBe('BAD_OPTION');
    });

    it('a second schedule of the same name on one runtime with DUPLICATE_SCHEDULE, and another name is fine', async () => {
      const { runtime, clock } = scheduling('2026-01-01T00:00:00Z', { workflows: [wf] });
      await runtime.schedule(wf, { cron: '0 * * * *', input: { trail: [] } });
      await expect(runtime.schedule(wf, { cron: '30 * * * *', input: { trail: [] } })).rejects.toMatchObject({ code: 'DUPLICATE_SCHEDULE' });
      await expect(runtime.schedule(wf, { cron: '30 * * * *', name: 'report', input: { trail: [] } })).rejects.toMatchObject({ code: 'DUPLICATE_SCHEDULE' });
      const other = await runtime.schedule(wf, { cron: '30 * * * *', name: 'half-past', input: { trail: [] } });
      expect(other.nextRun()).toEqual(new Date('2026-01-01T00:30:00Z'));
      expect(clock.pendingTimers).toBe(2);
      await runtime.close();
    });
  });

  describe('survives problems', () => {
    it('reports an instance that cannot start on errors$ and goes on with the next tick', async () => {
      const wf = reportWorkflow([]);
      const { runtime, clock, problems } = scheduling('2026-01-01T00:00:00Z', { workflows: [wf] });
      let calls = 0;
      await runtime.schedule(wf, {
        cron: '0 * * * *',
        input: () => {
          calls += 1;
          if (calls === 1) throw new Error('no data for this hour');
          return { trail: [] };
        },
      });
      await clock.advance('2h');
      await settle(runtime);
      expect(await instanceIds(runtime)).toEqual([idOf('report', '2026-01-01T02:00:00Z')]);
      expect(problems).toHaveLength(1);
      expect(problems[0]).toMatchObject({ kind: 'instance-failed', instanceId: idOf('report', '2026-01-01T01:00:00Z'), error: { message: 'no data for this hour' } });
      expect(problems[0]?.message).toContain('schedule "report"');
      await runtime.close();
    });

    it('reports a store that cannot record a tick on errors$ and goes on with the next tick', async () => {
      const wf = reportWorkflow([]);
      const store = new FlakyStore();
      const { runtime, clock, problems } = scheduling('2026-01-01T00:00:00Z', { workflows: [wf], store });
      await runtime.schedule(wf, { cron: '0 * * * *', input: { trail: [] } });
      store.failures = 1;
      await clock.advance('2h');
      await settle(runtime);
      expect(await instanceIds(runtime)).toEqual([idOf('report', '2026-01-01T01:00:00Z'), idOf('report', '2026-01-01T02:00:00Z')]);
      expect(problems.map((p) => p.error.message)).toEqual(['disk full']);
      expect(await store.scheduleTick('report')).toBe(at('2026-01-01T02:00:00Z'));
      await runtime.close();
    });
  });

  describe('stops', () => {
    it('when cancelled: its timer goes, nothing more starts, and its name is free again', async () => {
      const wf = reportWorkflow([]);
      const { runtime, clock } = scheduling('2026-01-01T00:00:00Z', { workflows: [wf] });
      const handle = await runtime.schedule(wf, { cron: '0 * * * *', input: { trail: [] } });
      await clock.advance('1h');
      await settle(runtime);
      handle.cancel();
      expect(handle.nextRun()).toBeNull();
      expect(clock.pendingTimers).toBe(0);
      await clock.advance('3h');
      await settle(runtime);
      expect(await instanceIds(runtime)).toEqual([idOf('report', '2026-01-01T01:00:00Z')]);
      const again = await runtime.schedule(wf, { cron: '0 * * * *', input: { trail: [] } });
      expect(again.nextRun()).toEqual(new Date('2026-01-01T05:00:00Z'));
      await runtime.close();
    });

    it.each(['close', 'stop'] as const)('when the runtime is told to %s: the timers go and nothing more starts', async (how) => {
      const wf = reportWorkflow([]);
      const store = new MemoryStore();
      const { runtime, clock } = scheduling('2026-01-01T00:00:00Z', { workflows: [wf], store });
      const hourly = await runtime.schedule(wf, { cron: '0 * * * *', input: { trail: [] } });
      const daily = await runtime.schedule(wf, { cron: '0 0 * * *', name: 'daily', input: { trail: [] } });
      expect(clock.pendingTimers).toBe(2);
      await (how === 'close' ? runtime.close() : runtime.stop());
      expect(clock.pendingTimers).toBe(0);
      expect(hourly.nextRun()).toBeNull();
      expect(daily.nextRun()).toBeNull();
      await clock.advance('2d');
      await flushMicrotasks();
      expect(await store.list()).toEqual([]);
    });
  });

  describe('catch-up decision', () => {
    const now = at('2026-01-01T05:30:00Z');
    const latest = at('2026-01-01T05:00:00Z');

    it('remembers now as the baseline of a schedule that never ran anywhere', () => {
      expect(planCatchUp(undefined, now, latest, 'runOnce')).toEqual({ kind: 'baseline', record: now });
    });

    it('does nothing when no tick passed since the last one', () => {
      expect(planCatchUp(latest, now, latest, 'runOnce')).toEqual({ kind: 'none' });
      expect(planCatchUp(latest + 1, now, latest, 'runOnce')).toEqual({ kind: 'none' });
      expect(planCatchUp(latest, now, null, 'runOnce')).toEqual({ kind: 'none' });
    });

    it('records the latest missed tick, starting it only for runOnce', () => {
      expect(planCatchUp(at('2026-01-01T01:00:00Z'), now, latest, 'runOnce')).toEqual({ kind: 'missed', tick: latest, start: true });
      expect(planCatchUp(at('2026-01-01T01:00:00Z'), now, latest, 'skip')).toEqual({ kind: 'missed', tick: latest, start: false });
    });
  });
});

/** Resolves once `condition` holds (checked every 5 ms of real time), or fails after 10 s. */
async function until(condition: () => Promise<boolean>): Promise<void> {
  const end = Date.now() + 10_000;
  while (!(await condition())) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}
