import { defineWorkflow, MemoryStore, ok, SagaRuntime, silentLogger } from '../src';
import { recordingStep, type TestState } from './support/steps';
import { newRecord, type InstanceRecord } from '../src/engine/instance-record';
import { storeContract } from './support/store-contract';

function waiting(id: string): InstanceRecord {
  const r = newRecord(id, 'wf', { id }, 0);
  r.flow.wait = { topics: ['paid'], match: {}, deadline: null };
  r.flow.status = 'waiting';
  return r;
}

function running(id: string): InstanceRecord {
  const r = newRecord(id, 'wf', { id }, 0);
  r.flow.inFlight = true;
  return r;
}

describe('the in-memory store', () => {
  storeContract(() => Promise.resolve(new MemoryStore()));

  it('is shared only when made so (several runtimes in one process)', () => {
    expect(new MemoryStore().shared).toBe(false);
    expect(new MemoryStore({ shared: true }).shared).toBe(true);
  });

  describe('records kept as objects', () => {
    it('keeps what was saved when the writer goes on changing its record in place', async () => {
      const store = new MemoryStore();
      const record = running('r');
      record.flow.stack.push({ kind: 'step', name: 'a', index: 0 });
      await store.create(record);
      record.flow.stack.push({ kind: 'step', name: 'b', index: 1 });
      record.flow.status = 'rolling_back';
      record.state = { id: 'changed' };
      const stored = (await store.load('r'))!;
      expect(stored.flow.stack).toEqual([{ kind: 'step', name: 'a', index: 0 }]);
      expect(stored.flow.status).toBe('running');
      expect(stored.state).toEqual({ id: 'r' });
    });

    it('hands out copies: changing a loaded record, its state or its stack changes nothing stored', async () => {
      const store = new MemoryStore();
      const record = running('r');
      record.flow.stack.push({ kind: 'step', name: 'a', index: 0 });
      await store.create(record);
      const first = (await store.load('r'))!;
      (first.state as { id: string }).id = 'mutated';
      first.flow.stack.pop();
      first.flow.inFlight = false;
      const second = (await store.load('r'))!;
      expect(second.state).toEqual({ id: 'r' });
      expect(second.flow.stack).toHaveLength(1);
      expect(second.flow.inFlight).toBe(true);
    });

    it('exports the saved record as JSON that imports back to the same record', async () => {
      const store = new MemoryStore();
      await store.create(waiting('w'));
      const json = store.exportJson('w')!;
      const fresh = new MemoryStore();
      fresh.importJson(json);
      expect(await fresh.load('w')).toEqual(await store.load('w'));
      expect(await fresh.findWaiting({ id: 'e', topic: 'paid', payload: {}, publishedAt: 0 })).toEqual([{ instanceId: 'w', track: null }]);
    });
  });

  it('is never read by a runtime that starts an instance with a generated id and awaits its result while it runs', async () => {
    const store = new MemoryStore();
    let loads = 0;
    const load = store.load.bind(store);
    store.load = (id) => {
      loads += 1;
      return load(id);
    };
    let finish: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => (finish = resolve));
    const wf = defineWorkflow<TestState>({ name: 'unread', steps: [recordingStep('A', [], { run: async (s) => (await gate, ok(s)) }), recordingStep('B', [])] });
    const runtime = new SagaRuntime({ store, workflows: [wf], logger: silentLogger });
    const handle = await runtime.start(wf, { trail: [] });
    const result = handle.result();
    finish();
    expect((await result).state.trail).toEqual(['A.run', 'B.run']);
    expect(loads).toBe(0);
    await runtime.close();
  });

  describe('leases written with transitions', () => {
    it('takes the lease with create and renews it with save, in the same write', async () => {
      const store = new MemoryStore({ shared: true });
      expect(await store.create(running('r'), { lease: { owner: 'A', until: 1_000 } })).toBe(true);
      expect(await store.acquire('r', 'B', 2_000, 999)).toBe(false);
      const loaded = (await store.load('r'))!;
      expect(await store.save(loaded, { lease: { owner: 'A', until: 5_000 } })).toBe(2);
      expect(await store.acquire('r', 'B', 6_000, 4_999)).toBe(false);
      expect(await store.claimStale('B', 6_000, 4_999, 10)).toEqual([]);
      expect(await store.claimStale('B', 6_000, 5_000, 10)).toEqual(['r']);
    });

    it('keeps the lease when a save carries none, and changes nothing when a save is refused', async () => {
      const store = new MemoryStore({ shared: true });
      await store.create(running('r'), { lease: { owner: 'A', until: 1_000 } });
      const loaded = (await store.load('r'))!;
      await store.save(loaded);
      expect(await store.acquire('r', 'B', 2_000, 999)).toBe(false);
      await expect(store.save(loaded, { lease: { owner: 'B', until: 9_000 } })).rejects.toMatchObject({ code: 'VERSION_CONFLICT' });
      expect(await store.create(running('r'), { lease: { owner: 'B', until: 9_000 } })).toBe(false);
      expect(await store.acquire('r', 'B', 2_000, 999)).toBe(false);
      expect(await store.acquire('r', 'B', 2_000, 1_000)).toBe(true);
    });
  });

  describe('the inbox', () => {
    it('lists the instances with pending deliveries up to the limit', async () => {
      const store = new MemoryStore({ shared: true });
      for (const id of ['a', 'b', 'c']) await store.create(waiting(id));
      expect(await store.inboxInstances(10)).toEqual([]);
      await store.acceptEvent({ topic: 'paid', payload: {}, id: 'e1', publishedAt: 1 }, [{ instanceId: 'b', track: null }, { instanceId: 'c', track: null }], null);
      expect((await store.inboxInstances(10)).sort()).toEqual(['b', 'c']);
      expect(await store.inboxInstances(1)).toHaveLength(1);
      const b = (await store.load('b'))!;
      await store.save(b, { consumed: [{ eventId: 'e1', track: null }] });
      expect(await store.inboxInstances(10)).toEqual(['c']);
    });

    it('calls inbox listeners for every stored delivery until they unsubscribe', async () => {
      const store = new MemoryStore({ shared: true });
      await store.create(waiting('a'));
      const heard: string[] = [];
      const stop = store.onInbox((id) => heard.push(id));
      await store.acceptEvent({ topic: 'paid', payload: {}, id: 'e1', publishedAt: 1 }, [{ instanceId: 'a', track: null }], null);
      await store.acceptEvent({ topic: 'paid', payload: {}, id: 'e2', publishedAt: 1 }, [], 100);
      expect(heard).toEqual(['a']);
      stop();
      await store.acceptEvent({ topic: 'paid', payload: {}, id: 'e3', publishedAt: 1 }, [{ instanceId: 'a', track: null }], null);
      expect(heard).toEqual(['a']);
      expect((await store.pendingEvents('a')).map((p) => p.event.id)).toEqual(['e1', 'e3']);
    });
  });
});
