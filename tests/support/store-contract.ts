import { KEEP_FOR_INSTANCE } from '../../src/store/instance-store';
import type { InstanceStore } from '../../src';
import { newRecord, type InstanceRecord } from '../../src/engine/instance-record';

function waiting(id: string, topic: string, match: Record<string, string>, deadline: number | null, updatedAt = 0): InstanceRecord {
  const r = newRecord(id, 'wf', { id }, updatedAt);
  r.flow.wait = { topics: [topic], match, deadline };
  r.flow.status = 'waiting';
  r.updatedAt = updatedAt;
  return r;
}

/** The behaviour every InstanceStore must have. Call inside a describe; `make` gives a fresh, empty store. */
export function storeContract(make: () => Promise<InstanceStore>): void {
  let store: InstanceStore;
  beforeEach(async () => {
    store = await make();
  });
  afterEach(async () => {
    await store.close();
  });

  it('creates a record at version 1 and refuses a second record with the same id', async () => {
    expect(await store.create(newRecord('a', 'wf', { n: 1 }, 0))).toBe(true);
    expect(await store.create(newRecord('a', 'wf', { n: 2 }, 0))).toBe(false);
    const loaded = await store.load('a');
    expect(loaded?.version).toBe(1);
    expect(loaded?.state).toEqual({ n: 1 });
  });

  it('loads undefined for an unknown id', async () => {
    expect(await store.load('missing')).toBeUndefined();
  });

  it('hands out copies: changing a loaded record changes nothing stored', async () => {
    await store.create(newRecord('a', 'wf', { n: 1 }, 0));
    const loaded = (await store.load('a'))!;
    (loaded.state as { n: number }).n = 99;
    expect((await store.load('a'))?.state).toEqual({ n: 1 });
  });

  it('saves with a version check and refuses a stale version with VERSION_CONFLICT', async () => {
    await store.create(newRecord('a', 'wf', { n: 1 }, 0));
    const loaded = (await store.load('a'))!;
    expect(await store.save({ ...loaded, state: { n: 2 } })).toBe(2);
    await expect(store.save({ ...loaded, state: { n: 3 } })).rejects.toMatchObject({ code: 'VERSION_CONFLICT' });
    expect((await store.load('a'))?.state).toEqual({ n: 2 });
  });

  it('finds waiting tracks by topic and match values', async () => {
    await store.create(waiting('w1', 'paid', { orderId: '1' }, null));
    await store.create(waiting('w2', 'paid', { orderId: '2' }, null));
    await store.create(waiting('w3', 'shipped', { orderId: '1' }, null));
    const found = await store.findWaiting({ topic: 'paid', payload: { orderId: '1' }, id: 'e', publishedAt: 0 });
    expect(found).toEqual([{ instanceId: 'w1', track: null }]);
  });

  it('stops finding a wait once a save clears it', async () => {
    await store.create(waiting('w1', 'paid', { orderId: '1' }, null));
    const loaded = (await store.load('w1'))!;
    loaded.flow.wait = null;
    loaded.flow.status = 'running';
    await store.save(loaded);
    expect(await store.findWaiting({ topic: 'paid', payload: { orderId: '1' }, id: 'e', publishedAt: 0 })).toEqual([]);
  });

  it('lists due waits, earliest first', async () => {
    await store.create(waiting('late', 't', {}, 300));
    await store.create(waiting('early', 't', {}, 100));
    await store.create(waiting('future', 't', {}, 10_000));
    await store.create(waiting('never', 't', {}, null));
    expect((await store.dueWaits(500, 10)).map((d) => d.instanceId)).toEqual(['early', 'late']);
  });

  it('lists unfinished instances for recovery', async () => {
    await store.create(newRecord('running', 'wf', {}, 0));
    const done = newRecord('done', 'wf', {}, 0);
    done.flow.status = 'completed';
    await store.create(done);
    expect(await store.unfinished()).toEqual(['running']);
  });

  it('lists summaries filtered by status, workflow and time, newest first', async () => {
    await store.create(waiting('old', 't', {}, null, 10));
    await store.create(waiting('new', 't', {}, null, 20));
    const other = newRecord('other', 'another', {}, 30);
    await store.create(other);
    expect((await store.list({ status: 'waiting' })).map((s) => s.id)).toEqual(['new', 'old']);
    expect((await store.list({ workflow: 'another' })).map((s) => s.id)).toEqual(['other']);
    expect((await store.list({ since: 15 })).map((s) => s.id)).toEqual(['other', 'new']);
    expect((await store.list({ limit: 1 })).map((s) => s.id)).toEqual(['other']);
  });

  it('appends history lines with each transition and returns them oldest first', async () => {
    const line = (outcome: string) => ({ at: 1, kind: 'step-result' as const, step: 'A', direction: 'up' as const, func: 'run' as const, attempt: 1, outcome, status: 'running' as const });
    await store.create(newRecord('h', 'wf', {}, 0), { history: [line('first')] });
    const loaded = (await store.load('h'))!;
    await store.save(loaded, { history: [line('second'), line('third')] });
    expect((await store.history('h')).map((h) => h.outcome)).toEqual(['first', 'second', 'third']);
    expect(await store.history('missing')).toEqual([]);
  });

  it('keeps accepted deliveries in the inbox until a transition consumes them', async () => {
    await store.create(waiting('w1', 'paid', { orderId: '1' }, null));
    const event = { topic: 'paid', payload: { orderId: '1' }, id: 'evt-1', publishedAt: 5 };
    await store.acceptEvent(event, [{ instanceId: 'w1', track: null }], null);
    expect(await store.pendingEvents('w1')).toEqual([{ event, track: null }]);
    const loaded = (await store.load('w1'))!;
    await store.save(loaded, { consumed: [{ eventId: 'evt-1', track: null }] });
    expect(await store.pendingEvents('w1')).toEqual([]);
  });

  it('retains an event nobody waited for until its time, for the first wait that matches it', async () => {
    const event = { topic: 'reply', payload: { to: 'i1' }, id: 'evt-2', publishedAt: 100 };
    await store.acceptEvent(event, [], 200);
    const wait = { topics: ['reply'], match: { to: 'i1' }, deadline: null };
    expect(await store.takeRetained('i1', { ...wait, match: { to: 'other' } }, 150)).toBeUndefined();
    expect(await store.takeRetained('i1', wait, 150)).toEqual(event);
    expect(await store.takeRetained('i1', wait, 150)).toBeUndefined();
    await store.acceptEvent({ ...event, id: 'evt-3' }, [], 200);
    expect(await store.takeRetained('i1', wait, 201)).toBeUndefined();
  });

  it('lets one owner hold a lease at a time until it expires or is released', async () => {
    await store.create(newRecord('l', 'wf', {}, 0));
    expect(await store.acquire('l', 'w1', 1_000, 0)).toBe(true);
    expect(await store.acquire('l', 'w2', 1_000, 500)).toBe(false);
    expect(await store.acquire('l', 'w1', 2_000, 500)).toBe(true);
    expect(await store.acquire('l', 'w2', 3_000, 2_001)).toBe(true);
    await store.release('l', 'w1');
    expect(await store.acquire('l', 'w1', 4_000, 2_500)).toBe(false);
    await store.release('l', 'w2');
    expect(await store.acquire('l', 'w1', 4_000, 2_500)).toBe(true);
  });

  it("reads an instance without its lease unless another owner holds it, and lets the first save take the lease only if free", async () => {
    const loadUnleased = store.loadUnleased?.bind(store);
    if (loadUnleased === undefined) return;
    await store.create(newRecord('u', 'wf', { n: 0 }, 0));
    expect(await loadUnleased('nobody', 'w1', 0)).toBeUndefined();
    const free = await loadUnleased('u', 'w1', 0);
    expect(free).toMatchObject({ id: 'u', version: 1 });
    expect(await store.acquire('u', 'w2', 1_000, 0)).toBe(true);
    expect(await loadUnleased('u', 'w1', 500)).toBe('leased');
    expect(await loadUnleased('u', 'w2', 500)).toMatchObject({ id: 'u' });
    const mine = free as InstanceRecord;
    await expect(store.save({ ...mine, state: { n: 1 } }, { lease: { owner: 'w1', until: 2_000, ifFreeAt: 500 } })).rejects.toMatchObject({ code: 'LEASED_ELSEWHERE' });
    expect((await store.load('u'))?.state).toEqual({ n: 0 });
    expect(await store.history('u')).toEqual([]);
    // Once w2's lease has expired, the save takes it: w2 cannot take it back.
    expect(await store.save({ ...mine, state: { n: 2 } }, { lease: { owner: 'w1', until: 2_000, ifFreeAt: 1_000 } })).toBe(2);
    expect(await store.acquire('u', 'w2', 3_000, 1_500)).toBe(false);
    expect(await loadUnleased('u', 'w2', 1_500)).toBe('leased');
  });

  it('claims stale unfinished instances with work to do, never parked or leased ones, once each', async () => {
    const inFlight = newRecord('busy', 'wf', {}, 0);
    inFlight.flow.inFlight = true;
    await store.create(inFlight);
    await store.create(waiting('parked', 't', {}, null));
    const leased = newRecord('leased', 'wf', {}, 0);
    leased.flow.inFlight = true;
    await store.create(leased);
    await store.acquire('leased', 'other', 10_000, 0);
    const done = newRecord('done', 'wf', {}, 0);
    done.flow.status = 'completed';
    await store.create(done);
    expect(await store.claimStale('me', 5_000, 100, 10)).toEqual(['busy']);
    expect(await store.claimStale('you', 5_000, 100, 10)).toEqual([]);
    expect((await store.claimStale('you', 20_000, 10_001, 10)).sort()).toEqual(['busy', 'leased']);
  });

  it('moves a retained event into the inbox of the wait that takes it, in one step, exactly once', async () => {
    await store.create(waiting('w1', 'reply', { to: 'w1' }, null));
    const event = { topic: 'reply', payload: { to: 'w1' }, id: 'evt-m', publishedAt: 100 };
    await store.acceptEvent(event, [], 500);
    const wait = { topics: ['reply'], match: { to: 'w1' }, deadline: null };
    expect(await store.moveRetainedToInbox('w1', null, wait, 200)).toEqual(event);
    expect(await store.moveRetainedToInbox('w1', null, wait, 200)).toBeUndefined();
    expect(await store.takeRetained('w1', wait, 200)).toBeUndefined();
    expect(await store.pendingEvents('w1')).toEqual([{ event, track: null }]);
  });

  it('lists the retained events that have not expired, newest first', async () => {
    await store.acceptEvent({ topic: 'a', payload: {}, id: 'r-2', publishedAt: 20 }, [], 1_000);
    await store.acceptEvent({ topic: 'b', payload: {}, id: 'r-1', publishedAt: 10 }, [], 1_000);
    await store.acceptEvent({ topic: 'c', payload: {}, id: 'r-old', publishedAt: 5 }, [], 50);
    expect((await store.retainedEvents(100, 10)).map((e) => e.id)).toEqual(['r-2', 'r-1']);
  });

  it('keeps an event published to one instance for that instance only, with no expiry', async () => {
    await store.create(waiting('w1', 'reply', { to: 'x' }, null));
    await store.create(waiting('w2', 'reply', { to: 'x' }, null));
    const event = { topic: 'reply', payload: { to: 'x' }, id: 'evt-kept', instanceId: 'w1', publishedAt: 100 };
    await store.acceptEvent(event, [], KEEP_FOR_INSTANCE);
    const wait = { topics: ['reply'], match: { to: 'x' }, deadline: null };
    expect(await store.expireRetained(Number.MAX_SAFE_INTEGER - 1, 10)).toEqual([]);
    expect(await store.moveRetainedToInbox('w2', null, wait, 10_000_000)).toBeUndefined();
    expect(await store.moveRetainedToInbox('w1', null, wait, 10_000_000)).toEqual(event);
    expect(await store.pendingEvents('w1')).toEqual([{ event, track: null }]);
  });

  it('expires retained events past their window, oldest first, and never one kept for an instance', async () => {
    await store.create(waiting('w1', 'reply', { to: 'x' }, null));
    await store.acceptEvent({ topic: 'a', payload: {}, id: 'r-late', publishedAt: 20 }, [], 60);
    await store.acceptEvent({ topic: 'b', payload: {}, id: 'r-early', publishedAt: 10 }, [], 50);
    await store.acceptEvent({ topic: 'c', payload: {}, id: 'r-live', publishedAt: 30 }, [], 1_000);
    await store.acceptEvent({ topic: 'd', payload: {}, id: 'r-kept', instanceId: 'w1', publishedAt: 40 }, [], KEEP_FOR_INSTANCE);
    expect((await store.expireRetained(100, 10)).map((e) => e.id)).toEqual(['r-early', 'r-late']);
    expect(await store.expireRetained(100, 10)).toEqual([]);
    expect((await store.retainedEvents(100, 10)).map((e) => e.id).sort()).toEqual(['r-kept', 'r-live']);
  });

  it('drops what an ended instance kept: events published to it and deliveries not consumed', async () => {
    await store.create(waiting('w1', 'reply', { to: 'x' }, null));
    await store.create(waiting('w2', 'reply', { to: 'x' }, null));
    await store.acceptEvent({ topic: 'late', payload: {}, id: 'e-kept', instanceId: 'w1', publishedAt: 1 }, [], KEEP_FOR_INSTANCE);
    await store.acceptEvent({ topic: 'reply', payload: { to: 'x' }, id: 'e-delivered', publishedAt: 2 }, [{ instanceId: 'w1', track: null }, { instanceId: 'w2', track: null }], null);
    expect((await store.dropEvents('w1')).map((e) => e.id).sort()).toEqual(['e-delivered', 'e-kept']);
    expect(await store.dropEvents('w1')).toEqual([]);
    expect(await store.pendingEvents('w1')).toEqual([]);
    expect((await store.pendingEvents('w2')).map((p) => p.event.id)).toEqual(['e-delivered']);
  });

  describe('versions', () => {
    const v = (id: string, version: number, fingerprint: string | undefined, parkedUntil: number | null = null): InstanceRecord => {
      const r = parkedUntil === null ? newRecord(id, 'wf', {}, 0) : waiting(id, 't', {}, parkedUntil);
      if (fingerprint !== undefined) {
        r.workflowVersion = version;
        r.fingerprint = fingerprint;
      }
      return r;
    };
    const runs = (version: number, fingerprint: string) => [{ workflow: 'wf', version, fingerprint }];

    it('lists by version and tells each summary its version (1 for records written before versions)', async () => {
      await store.create(v('one', 1, 'f1'));
      await store.create(v('two', 2, 'f2'));
      await store.create(v('old', 1, undefined));
      expect((await store.list({ version: 2 })).map((s) => s.id)).toEqual(['two']);
      expect((await store.list({ version: 1 })).map((s) => s.id).sort()).toEqual(['old', 'one']);
      expect((await store.list({})).find((s) => s.id === 'old')?.version).toBe(1);
    });

    it('claims, times out and drains only the instances of definitions a worker runs', async () => {
      await store.create(v('v1', 1, 'f1'));
      await store.create(v('v2', 2, 'f2'));
      await store.create(v('changed', 1, 'other'));
      await store.create(v('legacy', 1, undefined));
      expect((await store.claimStale('w', 100, 0, 10, runs(1, 'f1'))).sort()).toEqual(['legacy', 'v1']);
      expect(await store.claimStale('w2', 100, 0, 10, [])).toEqual([]);
      await store.create(v('due1', 1, 'f1', 5));
      await store.create(v('due2', 2, 'f2', 5));
      expect((await store.dueWaits(10, 10, runs(2, 'f2'))).map((d) => d.instanceId)).toEqual(['due2']);
      await store.acceptEvent({ topic: 't', payload: {}, id: 'e', publishedAt: 0 }, [{ instanceId: 'due1', track: null }, { instanceId: 'due2', track: null }], null);
      expect(await store.inboxInstances?.(10, runs(1, 'f1'))).toEqual(['due1']);
    });

    it('never leaves a blocked instance parked: a worker that can run it claims it', async () => {
      const blocked = v('b', 1, 'f1', 5);
      blocked.blocked = { code: 'DEFINITION_CHANGED', message: 'm', fingerprint: 'f1', registered: 'f9', status: 'waiting', since: 0 };
      blocked.flow.status = 'blocked';
      await store.create(blocked);
      expect(await store.dueWaits(10, 10)).toEqual([]);
      expect(await store.claimStale('w', 100, 0, 10, runs(1, 'f1'))).toEqual(['b']);
    });

    it('keeps worker heartbeats and lists the instances no live worker runs', async () => {
      await store.heartbeat?.('w1', runs(1, 'f1'), 100);
      await store.heartbeat?.('w2', runs(2, 'f2'), 50);
      expect(await store.liveRunners?.(60)).toEqual(runs(1, 'f1'));
      await store.retire?.('w1');
      expect(await store.liveRunners?.(0)).toEqual(runs(2, 'f2'));
      await store.create(v('v1', 1, 'f1'));
      await store.create(v('v2', 2, 'f2'));
      expect(await store.orphans?.(runs(2, 'f2'), 10)).toEqual(['v1']);
    });
  });

  describe('schedule ticks', () => {
    const first = Date.UTC(2026, 0, 1, 9);
    const second = Date.UTC(2026, 0, 1, 10);

    it('has no tick for a schedule that never ran, and records the first one only when none is stored', async () => {
      expect(await store.scheduleTick!('nightly')).toBeUndefined();
      expect(await store.advanceSchedule!('nightly', undefined, first, first + 5)).toBe(true);
      expect(await store.scheduleTick!('nightly')).toBe(first);
      expect(await store.advanceSchedule!('nightly', undefined, second, second)).toBe(false);
      expect(await store.scheduleTick!('nightly')).toBe(first);
      expect(await store.scheduleTick!('hourly')).toBeUndefined();
    });

    it('advances a tick only from the tick it expects (compare-and-set)', async () => {
      await store.advanceSchedule!('nightly', undefined, first, first);
      expect(await store.advanceSchedule!('nightly', first - 1, second, second)).toBe(false);
      expect(await store.scheduleTick!('nightly')).toBe(first);
      expect(await store.advanceSchedule!('nightly', first, second, second)).toBe(true);
      expect(await store.scheduleTick!('nightly')).toBe(second);
      expect(await store.advanceSchedule!('nightly', first, second + 1, second + 1)).toBe(false);
    });

    it('lets exactly one of two workers advancing from the same tick at once win', async () => {
      const [a, b] = await Promise.all([store.advanceSchedule!('race', undefined, first, 1), store.advanceSchedule!('race', undefined, first + 1, 2)]);
      expect([a, b].filter(Boolean)).toHaveLength(1);
      const stored = await store.scheduleTick!('race');
      expect(stored).toBe(a ? first : first + 1);
      const [c, d] = await Promise.all([store.advanceSchedule!('race', stored, second, 3), store.advanceSchedule!('race', stored, second + 1, 4)]);
      expect([c, d].filter(Boolean)).toHaveLength(1);
      expect(await store.scheduleTick!('race')).toBe(c ? second : second + 1);
    });
  });
}
