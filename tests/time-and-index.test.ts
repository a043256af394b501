import { toMillis } from '../src';
import { WaitIndex } from '../src/bus/wait-index';
import { TimerQueue } from '../src/runtime/timer-queue';
import { SimulatedClock } from '../src/testing';

describe('durations', () => {
  it('accept milliseconds and strings like 30s, 5m and 1.5h', () => {
    expect(toMillis(250)).toBe(250);
    expect(toMillis('30s')).toBe(30_000);
    expect(toMillis('5m')).toBe(300_000);
    expect(toMillis('1.5h')).toBe(5_400_000);
  });

  it('refuse nonsense with BAD_OPTION', () => {
    expect(() => toMillis('soon')).toThrow(expect.objectContaining({ code: 'BAD_OPTION' }));
    expect(() => toMillis(-1)).toThrow(expect.objectContaining({ code: 'BAD_OPTION' }));
  });
});

describe('the simulated clock', () => {
  it('fires timers in time order only when advanced past them', async () => {
    const clock = new SimulatedClock(0);
    const fired: string[] = [];
    clock.setTimeout(() => fired.push('b'), 200);
    clock.setTimeout(() => fired.push('a'), 100);
    const cancelled = clock.setTimeout(() => fired.push('never'), 150);
    clock.clearTimeout(cancelled);
    await clock.advance(99);
    expect(fired).toEqual([]);
    await clock.advance(101);
    expect(fired).toEqual(['a', 'b']);
    expect(clock.now()).toBe(200);
  });
});

describe('the timer queue', () => {
  it('keeps one clock timer for many deadlines and fires each at its time', async () => {
    const clock = new SimulatedClock(0);
    const fired: number[] = [];
    const queue = new TimerQueue<number>(clock, (n) => fired.push(n));
    for (const at of [500, 100, 300, 200, 400]) queue.add(at, at);
    expect(clock.pendingTimers).toBe(1);
    await clock.advance(250);
    expect(fired).toEqual([100, 200]);
    await clock.advance(250);
    expect(fired).toEqual([100, 200, 300, 400, 500]);
    expect(queue.size).toBe(0);
  });
});

describe('the wait index', () => {
  it('finds the waiter of an event among many without scanning them', () => {
    const index = new WaitIndex();
    for (let i = 0; i < 10_000; i += 1) index.add({ instanceId: `i${i}`, track: null }, { topics: ['paid'], match: { orderId: `o${i}` }, deadline: null });
    expect(index.find({ topic: 'paid', payload: { orderId: 'o4242' }, id: 'e', publishedAt: 0 })).toEqual([{ instanceId: 'i4242', track: null }]);
    index.remove({ instanceId: 'i4242', track: null });
    expect(index.find({ topic: 'paid', payload: { orderId: 'o4242' }, id: 'e', publishedAt: 0 })).toEqual([]);
    expect(index.size).toBe(9_999);
  });

  it('serves waits with different match keys on one topic', () => {
    const index = new WaitIndex();
    index.add({ instanceId: 'by-order', track: null }, { topics: ['t'], match: { orderId: 1 }, deadline: null });
    index.add({ instanceId: 'by-user', track: 'b' }, { topics: ['t'], match: { userId: 'u' }, deadline: null });
    index.add({ instanceId: 'any', track: null }, { topics: ['t'], match: {}, deadline: null });
    const found = index.find({ topic: 't', payload: { orderId: 1, userId: 'u' }, id: 'e', publishedAt: 0 });
    expect(found.map((f) => f.instanceId).sort()).toEqual(['any', 'by-order', 'by-user']);
  });
});
