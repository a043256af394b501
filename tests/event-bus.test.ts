import { Subject } from 'rxjs';
import { EventBus, defineWorkflow, type SagaEvent, type BusProblem } from '../src';
import { recordingStep, waitsFor, type Log, type TestState } from './support/steps';
import { testRuntime } from './support/runtime';
import { flushMicrotasks } from '../src/testing';

function setup() {
  const log: Log = [];
  const wf = defineWorkflow<TestState>({ name: 'bus', steps: [recordingStep('W', log, { run: waitsFor('order.paid', { orderId: 'o-1' }) })] });
  const bus = new EventBus();
  const t = testRuntime({ workflows: [wf], bus });
  const problems: BusProblem[] = [];
  bus.problems$.subscribe((p) => problems.push(p));
  return { ...t, wf, bus, log, problems };
}

describe('the event bus', () => {
  it('is an Observable of every event the runtime accepted', async () => {
    const { runtime, bus } = setup();
    const seen: string[] = [];
    bus.subscribe((e: SagaEvent) => seen.push(e.topic));
    await runtime.publish({ topic: 'a' });
    await bus.publish({ topic: 'b' });
    expect(seen).toEqual(['a', 'b']);
  });

  it('resumes waiting instances from an application stream it is connected to', async () => {
    const { runtime, bus, wf } = setup();
    const app = new Subject<unknown>();
    bus.connect(app);
    const handle = await runtime.start(wf, { trail: [] });
    await runtime.idle();
    app.next({ topic: 'order.paid', payload: { orderId: 'o-1' } });
    expect((await handle.result()).status).toBe('completed');
  });

  it('reports and drops malformed events from a connected stream, and keeps flowing', async () => {
    const { runtime, bus, wf, problems } = setup();
    const app = new Subject<unknown>();
    bus.connect(app);
    const handle = await runtime.start(wf, { trail: [] });
    await runtime.idle();
    app.next('not an event');
    app.next({ topic: 42 });
    app.next({ topic: 'order.paid', payload: 'nope' });
    app.next({ topic: 'order.paid', payload: { orderId: 'o-1' } });
    expect((await handle.result()).status).toBe('completed');
    expect(problems.map((p) => p.kind)).toEqual(['malformed-event', 'malformed-event', 'malformed-event']);
  });

  it('reports a failing source and keeps serving the others', async () => {
    const { runtime, bus, wf, problems } = setup();
    const broken = new Subject<unknown>();
    const healthy = new Subject<unknown>();
    bus.connect(broken);
    bus.connect(healthy);
    const handle = await runtime.start(wf, { trail: [] });
    await runtime.idle();
    broken.error(new Error('connection reset'));
    healthy.next({ topic: 'order.paid', payload: { orderId: 'o-1' } });
    expect((await handle.result()).status).toBe('completed');
    expect(problems.map((p) => p.kind)).toEqual(['source-failed']);
  });

  it('isolates a listener that throws: the others keep receiving', async () => {
    const { runtime, bus, problems } = setup();
    const seen: string[] = [];
    bus.on(() => {
      throw new Error('listener bug');
    });
    bus.on((e) => seen.push(e.topic));
    await runtime.publish({ topic: 'one' });
    await runtime.publish({ topic: 'two' });
    expect(seen).toEqual(['one', 'two']);
    expect(problems.map((p) => p.kind)).toEqual(['subscriber-threw', 'subscriber-threw']);
  });

  it('refuses a malformed event handed to publish with INVALID_EVENT', async () => {
    const { runtime } = setup();
    await expect(runtime.publish({ topic: '' })).rejects.toMatchObject({ code: 'INVALID_EVENT' });
    await expect(runtime.publish(null as never)).rejects.toMatchObject({ code: 'INVALID_EVENT' });
    await expect(runtime.publish({ topic: 't', payload: [1] as never })).rejects.toMatchObject({ code: 'INVALID_EVENT' });
    await expect(runtime.publish({ topic: 't', payload: { n: 1n } })).rejects.toMatchObject({ code: 'INVALID_EVENT' });
  });

  it.each([
    ['a string', 'card ending 4242'],
    ['null', null],
    ['an array', [1, 2]],
  ])('refuses a payload whose toJSON makes it %s with INVALID_EVENT', async (_what, json) => {
    const { runtime } = setup();
    await expect(runtime.publish({ topic: 'order.paid', payload: { orderId: 'o-1', toJSON: () => json } })).rejects.toMatchObject({ code: 'INVALID_EVENT' });
  });

  it('refuses an empty instanceId, a cyclic payload and a topic that is not a string with INVALID_EVENT', async () => {
    const { runtime } = setup();
    await expect(runtime.publish({ topic: 'order.paid', instanceId: '' })).rejects.toMatchObject({ code: 'INVALID_EVENT' });
    const cyclic: Record<string, unknown> = { a: 1 };
    cyclic.self = cyclic;
    await expect(runtime.publish({ topic: 'order.paid', payload: cyclic })).rejects.toMatchObject({ code: 'INVALID_EVENT' });
    const bad = { topic: 5, payload: cyclic };
    await expect(runtime.publish(bad as never)).rejects.toThrow('got 5');
  });

  it('gives an event published without an id a random UUID, so ids never collide across workers', async () => {
    const { runtime } = setup();
    const ids = new Set<string>();
    for (let i = 0; i < 50; i += 1) ids.add((await runtime.publish({ topic: 'tick' })).eventId);
    expect(ids.size).toBe(50);
    for (const id of ids) expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  });

  it('strips __proto__ keys from received payloads', async () => {
    const { runtime, bus } = setup();
    const seen: SagaEvent[] = [];
    bus.on((e) => seen.push(e));
    await runtime.publish({ topic: 't', payload: JSON.parse('{"a":1,"__proto__":{"polluted":true}}') as Record<string, unknown> });
    expect(Object.prototype.hasOwnProperty.call(seen[0]?.payload, '__proto__')).toBe(false);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('reports an event no instance waits for as retained, not as an error', async () => {
    const { runtime } = setup();
    expect(await runtime.publish({ topic: 'nobody.cares', id: 'e-1' })).toEqual({ eventId: 'e-1', delivered: 0, retained: true, held: false });
  });

  it('refuses publish before it is attached to a runtime with BUS_NOT_ATTACHED', async () => {
    await expect(new EventBus().publish({ topic: 'x' })).rejects.toMatchObject({ code: 'BUS_NOT_ATTACHED' });
    await flushMicrotasks(1);
  });

  it('cannot be attached to two runtimes', () => {
    const { bus } = setup();
    expect(() => testRuntime({ bus })).toThrow(expect.objectContaining({ code: 'BUS_ALREADY_ATTACHED' }));
  });
});
