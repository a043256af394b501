import { EventEmitter } from 'node:events';
import type { SagaEvent } from '../src';
import { EventEmitterAdapter, type AdapterProblem } from '../src/bus/adapters';
import { flushMicrotasks } from '../src/testing';
import { testRuntime } from './support/runtime';
import { waitThenShip } from './support/bus-saga';
import type { Log } from './support/steps';

/** A runtime with a saga that waits for order.paid (o-1) then publishes order.shipped, and an adapter on a real emitter. */
function setup(options: ConstructorParameters<typeof EventEmitterAdapter>[2] = {}) {
  const log: Log = [];
  const wf = waitThenShip('emitter-saga', log);
  const t = testRuntime({ workflows: [wf] });
  const emitter = new EventEmitter();
  const adapter = new EventEmitterAdapter(t.runtime.bus, emitter, options);
  const problems: AdapterProblem[] = [];
  adapter.problems$.subscribe((p) => problems.push(p));
  const out: SagaEvent[] = [];
  emitter.on(options.eventName ?? 'sagaflow:event', (e: SagaEvent) => out.push(e));
  return { ...t, wf, log, emitter, adapter, problems, out };
}

async function started(s: ReturnType<typeof setup>) {
  await s.adapter.start();
  const handle = await s.runtime.start(s.wf, { trail: [] });
  await s.runtime.idle();
  return handle;
}

describe('EventEmitterAdapter', () => {
  it('an app event emitted as a whole event under the event name resumes a waiting saga', async () => {
    const s = setup();
    const handle = await started(s);
    s.emitter.emit('sagaflow:event', { topic: 'order.paid', payload: { orderId: 'o-1' } });
    expect((await handle.result()).status).toBe('completed');
    expect(s.log).toEqual(['Wait.run', 'Wait.runHandleInfo', 'Ship.run']);
    await s.adapter.stop();
  });

  it('an app event emitted as (topic, payload) for a listed topic resumes a waiting saga', async () => {
    const s = setup({ topics: ['order.paid'] });
    const handle = await started(s);
    s.emitter.emit('order.paid', { orderId: 'o-2' }); // no match: the saga keeps waiting
    s.emitter.emit('order.paid', { orderId: 'o-1' });
    expect((await handle.result()).status).toBe('completed');
    await s.adapter.stop();
  });

  it('emits every event the saga bus accepted: from ctx.publish and from runtime.publish', async () => {
    const s = setup({ topics: ['order.paid'], emitTopics: true });
    const byTopic: unknown[][] = [];
    s.emitter.on('order.shipped', (...args: unknown[]) => byTopic.push(args));
    const handle = await started(s);
    await s.runtime.publish({ topic: 'audit.note', payload: { n: 1 }, id: 'note-1' });
    s.emitter.emit('order.paid', { orderId: 'o-1' });
    await handle.result();
    expect(s.out.map((e) => [e.topic, e.payload])).toEqual([
      ['audit.note', { n: 1 }],
      ['order.shipped', { orderId: 'o-1' }],
    ]);
    expect(s.out[0]).toMatchObject({ id: 'note-1', publishedAt: expect.any(Number) });
    expect(byTopic).toEqual([[{ orderId: 'o-1' }, s.out[1]]]);
    await s.adapter.stop();
  });

  it('reports and drops malformed app events, and later good ones still flow', async () => {
    const s = setup({ topics: ['order.paid'] });
    const handle = await started(s);
    s.emitter.emit('sagaflow:event', 'not an event');
    s.emitter.emit('sagaflow:event', { topic: 42 });
    s.emitter.emit('sagaflow:event', { topic: 'order.paid', payload: [1, 2] });
    s.emitter.emit('order.paid', 'a string payload');
    s.emitter.emit('sagaflow:event', { topic: 'order.paid', payload: { orderId: 'o-1' } });
    expect((await handle.result()).status).toBe('completed');
    expect(s.problems.map((p) => [p.adapter, p.kind, (p.error as { code?: string }).code])).toEqual([
      ['event-emitter', 'malformed-message', 'INVALID_EVENT'],
      ['event-emitter', 'malformed-message', 'INVALID_EVENT'],
      ['event-emitter', 'malformed-message', 'INVALID_EVENT'],
      ['event-emitter', 'malformed-message', 'INVALID_EVENT'],
    ]);
    expect((s.problems[3]?.error as Error).message).toContain('emitter event order.paid');
    await s.adapter.stop();
  });

  it('does not loop: app events are not emitted back, and its own emits (or copies of them) are not taken in', async () => {
    const s = setup({ topics: ['order.paid', 'order.shipped'], emitTopics: true });
    const accepted: SagaEvent[] = [];
    s.runtime.bus.on((e) => accepted.push(e));
    // An app listener that re-emits a copy of each saga event it hears, like a naive bridge would.
    const copied = new Set<string>();
    s.emitter.on('sagaflow:event', (e: SagaEvent) => {
      if (e.publishedAt === undefined || copied.has(e.id)) return;
      copied.add(e.id);
      s.emitter.emit('sagaflow:event', { ...e });
    });
    const handle = await started(s);
    s.emitter.emit('sagaflow:event', { topic: 'order.paid', payload: { orderId: 'o-1' }, id: 'app-1' });
    await handle.result();
    await s.runtime.idle();
    await flushMicrotasks();
    // The app event went in once and was not sent back; the saga's event went out once and did not come back in.
    expect(accepted.map((e) => e.id)).toEqual(['app-1', expect.any(String)]);
    expect(accepted[1]?.topic).toBe('order.shipped');
    expect(s.out.filter((e) => e.topic === 'order.paid')).toEqual([{ topic: 'order.paid', payload: { orderId: 'o-1' }, id: 'app-1' }]);
    expect(s.out.filter((e) => e.topic === 'order.shipped')).toHaveLength(2); // ours, and the app's copy of it
    expect(s.problems).toEqual([]);
    await s.adapter.stop();
  });

  it('gives an app event without an id one of its own, so it is not echoed either', async () => {
    const s = setup();
    const accepted: SagaEvent[] = [];
    s.runtime.bus.on((e) => accepted.push(e));
    await s.adapter.start();
    s.emitter.emit('sagaflow:event', { topic: 'ping' });
    await flushMicrotasks();
    expect(accepted).toHaveLength(1);
    expect(accepted[0]?.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    expect(s.out).toEqual([{ topic: 'ping' }]); // only what the app itself emitted
    await s.adapter.stop();
  });

  it('reports an app listener that throws and keeps sending later events', async () => {
    const s = setup();
    let fail = true;
    s.emitter.prependListener('sagaflow:event', () => {
      if (fail) throw new Error('listener bug');
    });
    await s.adapter.start();
    await s.runtime.publish({ topic: 'one', id: 'e-1' });
    fail = false;
    await s.runtime.publish({ topic: 'two', id: 'e-2' });
    expect(s.out.map((e) => e.id)).toEqual(['e-2']);
    expect(s.problems).toEqual([{ adapter: 'event-emitter', kind: 'delivery-failed', error: new Error('listener bug'), eventId: 'e-1' }]);
    await s.adapter.stop();
  });

  it("runs one direction only when asked, and filters what goes out", async () => {
    const inOnly = setup({ direction: 'in' });
    await inOnly.adapter.start();
    await inOnly.runtime.publish({ topic: 'x' });
    expect(inOnly.out).toEqual([]);
    await inOnly.adapter.stop();

    const outOnly = setup({ direction: 'out', filter: (e) => e.topic !== 'secret' });
    const accepted: SagaEvent[] = [];
    outOnly.runtime.bus.on((e) => accepted.push(e));
    await outOnly.adapter.start();
    outOnly.emitter.emit('sagaflow:event', { topic: 'ignored' });
    await outOnly.runtime.publish({ topic: 'secret' });
    await outOnly.runtime.publish({ topic: 'public' });
    expect(accepted.map((e) => e.topic)).toEqual(['secret', 'public']);
    expect(outOnly.out.map((e) => e.topic)).toEqual(['ignored', 'public']);
    await outOnly.adapter.stop();
  });

  it('stop() removes its listeners, waits for app events in flight, and cannot be restarted', async () => {
    const s = setup({ topics: ['a', 'b'], eventName: 'bus' });
    const before = s.emitter.eventNames().map((n) => [n, s.emitter.listenerCount(n)]);
    await s.adapter.start();
    expect(s.emitter.listenerCount('a')).toBe(1);
    const accepted: string[] = [];
    s.runtime.bus.on((e) => accepted.push(e.topic));
    s.emitter.emit('a', {});
    await s.adapter.stop();
    expect(accepted).toEqual(['a']);
    expect(s.emitter.eventNames().map((n) => [n, s.emitter.listenerCount(n)])).toEqual(before);
    await s.runtime.publish({ topic: 'after-stop' });
    expect(s.out).toEqual([]);
    await expect(s.adapter.start()).rejects.toMatchObject({ code: 'ADAPTER_STOPPED' });
    await s.adapter.stop(); // idempotent
  });

  it('reports an app event the runtime refuses (closed) as publish-failed', async () => {
    const s = setup();
    await s.adapter.start();
    await s.runtime.close();
    s.emitter.emit('sagaflow:event', { topic: 'late', id: 'late-1' });
    await s.adapter.stop();
    expect(s.problems.map((p) => [p.kind, p.eventId])).toEqual([['publish-failed', 'late-1']]);
  });

  it('refuses bad options with BAD_OPTION', () => {
    const { runtime } = testRuntime();
    const emitter = new EventEmitter();
    expect(() => new EventEmitterAdapter(runtime.bus, emitter, { eventName: 'error' })).toThrow(expect.objectContaining({ code: 'BAD_OPTION' }));
    expect(() => new EventEmitterAdapter(runtime.bus, emitter, { topics: [''] })).toThrow(expect.objectContaining({ code: 'BAD_OPTION' }));
    expect(() => new EventEmitterAdapter(runtime.bus, emitter, { direction: 'sideways' as never })).toThrow(expect.objectContaining({ code: 'BAD_OPTION' }));
    expect(() => new EventEmitterAdapter(runtime.bus, emitter, { rememberIds: 0 })).toThrow(expect.objectContaining({ code: 'BAD_OPTION' }));
  });
});
