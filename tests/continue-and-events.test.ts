import { MemoryStore, defineWorkflow, ok, error as fail } from '../src';
import { recordingStep, waitsFor, type Log, type TestState } from './support/steps';
import { testRuntime } from './support/runtime';

describe('a step that continues and waits for an event', () => {
  it('parks the instance as waiting and resumes it through runHandleInfo when a matching event arrives', async () => {
    const log: Log = [];
    const wf = defineWorkflow<TestState>({
      name: 'aw',
      steps: [recordingStep('A', log), recordingStep('W', log, { run: waitsFor('payment.captured', { orderId: 'o-1' }) })],
    });
    const { runtime } = testRuntime({ workflows: [wf] });
    const handle = await runtime.start(wf, { trail: [] });
    await runtime.idle();
    expect((await runtime.get(handle.id)).status).toBe('waiting');
    const receipt = await runtime.publish({ topic: 'payment.captured', payload: { orderId: 'o-1', paymentId: 'p-9' } });
    expect(receipt).toMatchObject({ delivered: 1, retained: false });
    const result = await handle.result();
    expect(result.status).toBe('completed');
    expect(log).toEqual(['A.run', 'W.run', 'W.runHandleInfo']);
  });

  it('hands runHandleInfo the event it waited for', async () => {
    const log: Log = [];
    let seen: unknown;
    const wf = defineWorkflow<TestState>({
      name: 'event-read',
      steps: [
        recordingStep('W', log, {
          run: waitsFor('payment.captured', { orderId: 'o-1' }),
          runHandleInfo: (state, _ctx, event) => {
            seen = event?.payload;
            return ok({ ...state, paymentId: event?.payload.paymentId });
          },
        }),
      ],
    });
    const { runtime } = testRuntime({ workflows: [wf] });
    const handle = await runtime.start(wf, { trail: [] });
    await runtime.publish({ topic: 'payment.captured', payload: { orderId: 'o-1', paymentId: 'p-9' } });
    const result = await handle.result();
    expect(seen).toEqual({ orderId: 'o-1', paymentId: 'p-9' });
    expect(result.state.paymentId).toBe('p-9');
  });

  it('never delivers events whose topic or match fields differ', async () => {
    const log: Log = [];
    const wf = defineWorkflow<TestState>({ name: 'strict', steps: [recordingStep('W', log, { run: waitsFor('payment.captured', { orderId: 'o-1' }) })] });
    const { runtime } = testRuntime({ workflows: [wf], eventRetention: 0 });
    const handle = await runtime.start(wf, { trail: [] });
    const other = defineWorkflow<TestState>({ name: 'other', steps: [recordingStep('O', [], { run: waitsFor('shipment.left') })] });
    runtime.register(other);
    await runtime.start(other, { trail: [] }, { id: 'someone-else' });
    await runtime.idle();
    expect((await runtime.publish({ topic: 'payment.captured', payload: { orderId: 'o-2' } })).delivered).toBe(0);
    expect((await runtime.publish({ topic: 'payment.failed', payload: { orderId: 'o-1' } })).delivered).toBe(0);
    expect((await runtime.publish({ topic: 'payment.captured', payload: {} })).delivered).toBe(0);
    expect((await runtime.publish({ topic: 'payment.captured', payload: { orderId: 'o-1' }, instanceId: 'someone-else' })).delivered).toBe(0);
    expect(log).toEqual(['W.run']);
    expect((await runtime.get(handle.id)).status).toBe('waiting');
  });

  it('matches on nested payload fields named with dots', async () => {
    const log: Log = [];
    const wf = defineWorkflow<TestState>({ name: 'nested', steps: [recordingStep('W', log, { run: waitsFor('shipped', { 'order.id': 7 }) })] });
    const { runtime } = testRuntime({ workflows: [wf] });
    const handle = await runtime.start(wf, { trail: [] });
    await runtime.publish({ topic: 'shipped', payload: { order: { id: 7 } } });
    expect((await handle.result()).status).toBe('completed');
  });

  it('may keep waiting by continuing again from runHandleInfo', async () => {
    const log: Log = [];
    let parts = 0;
    const wf = defineWorkflow<TestState>({
      name: 'multi',
      steps: [
        recordingStep('W', log, {
          run: waitsFor('part'),
          runHandleInfo: (state) => {
            parts += 1;
            return parts < 3 ? { kind: 'continue', state, wait: { topic: 'part' } } : ok(state);
          },
        }),
      ],
    });
    const { runtime } = testRuntime({ workflows: [wf] });
    const handle = await runtime.start(wf, { trail: [] });
    for (let i = 0; i < 3; i += 1) await runtime.publish({ topic: 'part' });
    expect((await handle.result()).status).toBe('completed');
    expect(log).toEqual(['W.run', 'W.runHandleInfo', 'W.runHandleInfo', 'W.runHandleInfo']);
  });

  it('rolls back X, W and A when X continues and its event handler fails', async () => {
    const log: Log = [];
    const wf = defineWorkflow<TestState>({
      name: 'awx',
      steps: [
        recordingStep('A', log),
        recordingStep('W', log),
        recordingStep('X', log, { run: waitsFor('x.done'), runHandleInfo: (s) => fail({ code: 'X_REJECTED', message: 'rejected' }, s) }),
      ],
    });
    const { runtime } = testRuntime({ workflows: [wf] });
    const handle = await runtime.start(wf, { trail: [] });
    await runtime.publish({ topic: 'x.done' });
    const result = await handle.result();
    expect(result.status).toBe('rolled_back');
    expect(result.error?.code).toBe('X_REJECTED');
    expect(log).toEqual(['A.run', 'W.run', 'X.run', 'X.runHandleInfo', 'X.rollback', 'W.rollback', 'A.rollback']);
  });

  it('fails the step with TIMEOUT when its wait deadline passes, and rolls back', async () => {
    const log: Log = [];
    const wf = defineWorkflow<TestState>({
      name: 'deadline',
      steps: [recordingStep('A', log), recordingStep('W', log, { run: waitsFor('never', {}, '5m') })],
    });
    const { runtime, clock } = testRuntime({ workflows: [wf] });
    const handle = await runtime.start(wf, { trail: [] });
    await clock.advance('4m');
    expect((await runtime.get(handle.id)).status).toBe('waiting');
    await clock.advance('1m');
    const result = await handle.result();
    expect(result.status).toBe('rolled_back');
    expect(result.error?.code).toBe('TIMEOUT');
    expect(log).toEqual(['A.run', 'W.run', 'W.rollback', 'A.rollback']);
  });

  it('resumes a continued rollback through rollbackHandleInfo', async () => {
    const log: Log = [];
    const wf = defineWorkflow<TestState>({
      name: 'async-undo',
      steps: [recordingStep('R', log, { rollback: waitsFor('refund.settled') }), recordingStep('E', log, { run: (s) => fail('nope', s) })],
    });
    const { runtime } = testRuntime({ workflows: [wf] });
    const handle = await runtime.start(wf, { trail: [] });
    await runtime.idle();
    const snap = await runtime.get(handle.id);
    expect(snap.status).toBe('waiting');
    expect(snap.flow.direction).toBe('down');
    await runtime.publish({ topic: 'refund.settled' });
    expect((await handle.result()).status).toBe('rolled_back');
    expect(log).toEqual(['R.run', 'E.run', 'E.rollback', 'R.rollback', 'R.rollbackHandleInfo']);
  });

  it('resumes a step whose event was published before run returned continue (a fast reply)', async () => {
    const log: Log = [];
    const wf = defineWorkflow<TestState>({
      name: 'fast-reply',
      steps: [
        recordingStep('W', log, {
          run: async (state, ctx) => {
            await ctx.publish({ topic: 'reply', payload: { to: ctx.instanceId } });
            return { kind: 'continue', state, wait: { topic: 'reply', match: { to: ctx.instanceId } } };
          },
        }),
      ],
    });
    const { runtime } = testRuntime({ workflows: [wf] });
    const handle = await runtime.start(wf, { trail: [] });
    expect((await handle.result()).status).toBe('completed');
    expect(log).toEqual(['W.run', 'W.runHandleInfo']);
  });

  it('forgets an unmatched event after the retention window, and reports it as dropped', async () => {
    const log: Log = [];
    const wf = defineWorkflow<TestState>({ name: 'late-wait', steps: [recordingStep('W', log, { run: waitsFor('reply', {}, '1h') })] });
    const { runtime, clock, problems } = testRuntime({ workflows: [wf], eventRetention: '10s' });
    const { eventId, retained } = await runtime.publish({ topic: 'reply' });
    expect(retained).toBe(true);
    await clock.advance('11s');
    await runtime.idle();
    expect(problems.filter((p) => p.kind === 'event-dropped').map((p) => [p.error.code, p.message.includes(eventId)])).toEqual([['EVENT_EXPIRED', true]]);
    const handle = await runtime.start(wf, { trail: [] });
    await runtime.idle();
    expect((await runtime.get(handle.id)).status).toBe('waiting');
    expect(log).toEqual(['W.run']);
  });

  it('keeps an event published to an instance that does not wait for it yet in its inbox, past the retention window, until a wait takes it', async () => {
    const log: Log = [];
    const wf = defineWorkflow<TestState>({
      name: 'early-approval',
      steps: [recordingStep('S', log, { run: waitsFor('stock.ok') }), recordingStep('W', log, { run: waitsFor('approved') })],
    });
    const { runtime, clock } = testRuntime({ workflows: [wf], eventRetention: '10s' });
    const handle = await runtime.start(wf, { trail: [] }, { id: 'o-1' });
    await runtime.idle();
    expect(await runtime.publish({ topic: 'approved', instanceId: 'o-1', id: 'a-1' })).toEqual({ eventId: 'a-1', delivered: 0, retained: false, held: true });
    await clock.advance('1h');
    await runtime.publish({ topic: 'stock.ok' });
    expect((await handle.result()).status).toBe('completed');
    expect(log).toEqual(['S.run', 'S.runHandleInfo', 'W.run', 'W.runHandleInfo']);
  });

  it('reports an event published to an instance as never consumed when the instance ends without taking it', async () => {
    const wf = defineWorkflow<TestState>({ name: 'ends-first', steps: [recordingStep('S', [], { run: waitsFor('stock.ok') })] });
    const { runtime, problems } = testRuntime({ workflows: [wf] });
    const handle = await runtime.start(wf, { trail: [] }, { id: 'o-2' });
    await runtime.idle();
    expect((await runtime.publish({ topic: 'approved', instanceId: 'o-2', id: 'a-2' })).held).toBe(true);
    await runtime.publish({ topic: 'stock.ok' });
    await handle.result();
    await runtime.idle();
    const dropped = problems.filter((p) => p.kind === 'event-dropped');
    expect(dropped.map((p) => [p.instanceId, p.error.code])).toEqual([['o-2', 'EVENT_NOT_CONSUMED']]);
    expect(dropped[0]?.message).toContain('a-2');
  });

  it('refuses an event published to an unknown instance with UNKNOWN_INSTANCE, and reports one published to an ended instance as dropped', async () => {
    const wf = defineWorkflow<TestState>({ name: 'quick', steps: [recordingStep('A', [])] });
    const { runtime, problems } = testRuntime({ workflows: [wf] });
    await (await runtime.start(wf, { trail: [] }, { id: 'done' })).result();
    await expect(runtime.publish({ topic: 'x', instanceId: 'nobody' })).rejects.toMatchObject({ code: 'UNKNOWN_INSTANCE' });
    expect(await runtime.publish({ topic: 'x', instanceId: 'done', id: 'late' })).toEqual({ eventId: 'late', delivered: 0, retained: false, held: false });
    expect(problems.filter((p) => p.kind === 'event-dropped').map((p) => p.error.code)).toEqual(['INSTANCE_FINISHED']);
  });

  it('delivers an event addressed to an instance only to that instance', async () => {
    const log: Log = [];
    const wf = defineWorkflow<TestState>({ name: 'addressed', steps: [recordingStep('W', log, { run: waitsFor('go') })] });
    const { runtime } = testRuntime({ workflows: [wf], eventRetention: 0 });
    const first = await runtime.start(wf, { trail: [] }, { id: 'first' });
    const second = await runtime.start(wf, { trail: [] }, { id: 'second' });
    await runtime.idle();
    expect((await runtime.publish({ topic: 'go', instanceId: 'second' })).delivered).toBe(1);
    expect((await runtime.get(second.id)).status).toBe('completed');
    expect((await runtime.get(first.id)).status).toBe('waiting');
  });

  it('delivers one event to every instance whose wait matches it', async () => {
    const log: Log = [];
    const wf = defineWorkflow<TestState>({ name: 'broadcast', steps: [recordingStep('W', log, { run: waitsFor('market.open') })] });
    const { runtime } = testRuntime({ workflows: [wf] });
    const handles = await Promise.all([1, 2, 3].map(() => runtime.start(wf, { trail: [] })));
    await runtime.idle();
    expect((await runtime.publish({ topic: 'market.open' })).delivered).toBe(3);
    for (const h of handles) expect((await h.result()).status).toBe('completed');
  });
});

describe('rolling back from outside', () => {
  it('rolls back a parked instance: the parked step and the earlier ones, without calling runHandleInfo', async () => {
    const log: Log = [];
    const wf = defineWorkflow<TestState>({ name: 'ext', steps: [recordingStep('A', log), recordingStep('W', log, { run: waitsFor('go') })] });
    const { runtime } = testRuntime({ workflows: [wf] });
    const handle = await runtime.start(wf, { trail: [] });
    await runtime.idle();
    await runtime.rollback(handle.id, 'customer cancelled');
    const result = await handle.result();
    expect(result.status).toBe('rolled_back');
    expect(result.error).toMatchObject({ code: 'ROLLBACK_REQUESTED' });
    expect(result.error?.message).toContain('customer cancelled');
    await runtime.publish({ topic: 'go' });
    expect(log).toEqual(['A.run', 'W.run', 'W.rollback', 'A.rollback']);
  });

  it("fires a running step's AbortSignal and compensates it once it settles", async () => {
    const log: Log = [];
    let aborted = false;
    let started!: () => void;
    const running = new Promise<void>((r) => (started = r));
    const wf = defineWorkflow<TestState>({
      name: 'ext-running',
      steps: [
        recordingStep('A', log),
        recordingStep('L', log, {
          run: (state, ctx) =>
            new Promise((resolve) => {
              started();
              ctx.signal.addEventListener('abort', () => {
                aborted = true;
                resolve(ok(state));
              });
            }),
        }),
        recordingStep('C', log),
      ],
    });
    const { runtime } = testRuntime({ workflows: [wf] });
    const handle = await runtime.start(wf, { trail: [] });
    await running;
    await runtime.rollback(handle.id, 'stop');
    const result = await handle.result();
    expect(aborted).toBe(true);
    expect(result.status).toBe('rolled_back');
    expect(log).toEqual(['A.run', 'L.run', 'L.rollback', 'A.rollback']);
  });

  it('changes nothing when asked again while already going down', async () => {
    const log: Log = [];
    const wf = defineWorkflow<TestState>({
      name: 'twice',
      steps: [recordingStep('R', log, { rollback: waitsFor('undo.done') }), recordingStep('W', log, { run: waitsFor('go') })],
    });
    const { runtime } = testRuntime({ workflows: [wf] });
    const handle = await runtime.start(wf, { trail: [] });
    await runtime.idle();
    await runtime.rollback(handle.id, 'first');
    await runtime.rollback(handle.id, 'second');
    await runtime.publish({ topic: 'undo.done' });
    const result = await handle.result();
    expect(result.error?.message).toContain('first');
    expect(log).toEqual(['R.run', 'W.run', 'W.rollback', 'R.rollback', 'R.rollbackHandleInfo']);
  });

  it('refuses to roll back a completed instance with INSTANCE_FINISHED', async () => {
    const log: Log = [];
    const wf = defineWorkflow<TestState>({ name: 'done', steps: [recordingStep('A', log)] });
    const { runtime } = testRuntime({ workflows: [wf] });
    const handle = await runtime.start(wf, { trail: [] });
    await handle.result();
    await expect(runtime.rollback(handle.id, 'late')).rejects.toMatchObject({ code: 'INSTANCE_FINISHED' });
    expect(log).toEqual(['A.run']);
  });

  it('rejects unknown ids with UNKNOWN_INSTANCE', async () => {
    const { runtime } = testRuntime();
    await expect(runtime.rollback('nope', 'x')).rejects.toMatchObject({ code: 'UNKNOWN_INSTANCE' });
    await expect(runtime.get('nope')).rejects.toMatchObject({ code: 'UNKNOWN_INSTANCE' });
    await expect(runtime.handle('nope').result()).rejects.toMatchObject({ code: 'UNKNOWN_INSTANCE' });
  });

  it('reports only committed states: get() never shows a transition whose save is still under way', async () => {
    const log: Log = [];
    let hold: (() => void) | undefined;
    class SlowStore extends MemoryStore {
      override async save(...args: Parameters<MemoryStore['save']>): Promise<number> {
        if (args[0].flow.wait !== null) await new Promise<void>((r) => (hold = r));
        return super.save(...args);
      }
    }
    const wf = defineWorkflow<TestState>({ name: 'committed', steps: [recordingStep('W', log, { run: waitsFor('go') })] });
    const { runtime } = testRuntime({ workflows: [wf], store: new SlowStore() });
    const handle = await runtime.start(wf, { trail: [] });
    while (hold === undefined) await new Promise<void>((r) => setImmediate(r));
    expect((await runtime.get(handle.id)).status).toBe('running');
    hold();
    await runtime.idle();
    expect((await runtime.get(handle.id)).status).toBe('waiting');
  });
});
