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
}
