import { Client, type Notification } from 'pg';
import { silentLogger, type SagaEvent } from '../src';
import { PostgresNotifyAdapter, type AdapterProblem, type PostgresNotifyAdapterOptions } from '../src/bus/adapters';
import { createTestDatabase, dropTestDatabase, testPgUrl } from './support/postgres';
import { testRuntime } from './support/runtime';
import { waitThenShip } from './support/bus-saga';
import type { Log } from './support/steps';

jest.setTimeout(30_000);

let url: string;
let dbName: string;
beforeAll(async () => {
  url = await createTestDatabase('bus_adapters');
  dbName = new URL(url).pathname.slice(1);
});
afterAll(async () => {
  if (url !== undefined) await dropTestDatabase(url);
});

async function waitUntil(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function client(connectionString = url): Promise<Client> {
  const c = new Client({ connectionString });
  c.on('error', () => undefined);
  await c.connect();
  cleanups.push(() => c.end().catch(() => undefined));
  return c;
}

/** Runs SQL on the cluster's admin database (for ALTER DATABASE and pg_terminate_backend). */
async function admin(sql: string, params: unknown[] = []): Promise<void> {
  const c = new Client({ connectionString: testPgUrl() });
  await c.connect();
  try {
    await c.query(sql, params);
  } finally {
    await c.end();
  }
}

let channelNo = 0;

/** A runtime whose saga waits for order.paid (o-1) then publishes order.shipped; an app listener and notifier; a started adapter. */
async function setup(options: PostgresNotifyAdapterOptions = {}) {
  channelNo += 1;
  const channel = `bus_test_${channelNo}`;
  const log: Log = [];
  const wf = waitThenShip('pg-saga', log);
  const t = testRuntime({ workflows: [wf] });
  const adapter = new PostgresNotifyAdapter(t.runtime.bus, {
    connection: { connectionString: url, application_name: 'sagaflow-bus-test' },
    channel,
    reconnectDelay: 20,
    maxReconnectDelay: 200,
    logger: silentLogger,
    ...options,
  });
  const problems: AdapterProblem[] = [];
  adapter.problems$.subscribe((p) => problems.push(p));
  const accepted: SagaEvent[] = [];
  t.runtime.bus.on((e) => accepted.push(e));
  cleanups.push(async () => {
    await adapter.stop();
    await t.runtime.close();
  });
  // The app: one session listening on the channel, another notifying on it.
  const listener = await client();
  const received: SagaEvent[] = [];
  listener.on('notification', (msg: Notification) => {
    if (msg.channel !== channel) return;
    try {
      received.push(JSON.parse(msg.payload ?? '') as SagaEvent);
    } catch {
      received.push({ topic: '(not json)', payload: {}, id: msg.payload ?? '', publishedAt: 0 });
    }
  });
  await listener.query(`LISTEN ${listener.escapeIdentifier(channel)}`);
  const notifier = await client();
  const notify = async (payload: string) => {
    await notifier.query('SELECT pg_notify($1, $2)', [channel, payload]);
  };
  await adapter.start();
  return { ...t, wf, log, channel, adapter, problems, accepted, received, notify };
}

describe('PostgresNotifyAdapter (real PostgreSQL)', () => {
  it('a JSON NOTIFY from the app resumes a waiting saga', async () => {
    const s = await setup();
    const handle = await s.runtime.start(s.wf, { trail: [] });
    await s.runtime.idle();
    await s.notify(JSON.stringify({ topic: 'order.paid', payload: { orderId: 'o-1' }, id: 'app-1' }));
    expect((await handle.result()).status).toBe('completed');
    expect(s.log).toEqual(['Wait.run', 'Wait.runHandleInfo', 'Ship.run']);
  });

  it('a saga-published event (ctx.publish or runtime.publish) arrives on the app channel as JSON', async () => {
    const s = await setup();
    const handle = await s.runtime.start(s.wf, { trail: [] });
    await s.runtime.idle();
    await s.runtime.publish({ topic: 'order.paid', payload: { orderId: 'o-1' }, id: 'from-runtime' });
    await handle.result();
    await waitUntil('both events arrived', () => s.received.length >= 2);
    expect(s.received.map((e) => [e.topic, e.payload])).toEqual([
      ['order.paid', { orderId: 'o-1' }],
      ['order.shipped', { orderId: 'o-1' }],
    ]);
    expect(s.received[0]).toEqual({ ...s.accepted[0] });
  });

  it('reports malformed payloads (bad JSON, empty, wrong shape) and drops them; later good ones still flow', async () => {
    const s = await setup();
    const handle = await s.runtime.start(s.wf, { trail: [] });
    await s.runtime.idle();
    await s.notify('{not json');
    await s.notify('');
    await s.notify('[1,2]');
    await s.notify(JSON.stringify({ topic: 'order.paid', payload: { orderId: 'o-1' }, instanceId: 7 }));
    await s.notify(JSON.stringify({ topic: 'order.paid', payload: { orderId: 'o-1' } }));
    expect((await handle.result()).status).toBe('completed');
    expect(s.problems.map((p) => [p.adapter, p.kind, (p.error as { code?: string }).code])).toEqual([
      ['postgres', 'malformed-message', 'MALFORMED_MESSAGE'],
      ['postgres', 'malformed-message', 'MALFORMED_MESSAGE'],
      ['postgres', 'malformed-message', 'INVALID_EVENT'],
      ['postgres', 'malformed-message', 'INVALID_EVENT'],
    ]);
    expect((s.problems[0]?.error as Error).message).toContain(`postgres channel ${s.channel}`);
  });

  it('does not loop with one channel both ways: app events are not notified back, its own notifications are not taken in', async () => {
    const s = await setup();
    const handle = await s.runtime.start(s.wf, { trail: [] });
    await s.runtime.idle();
    await s.notify(JSON.stringify({ topic: 'order.paid', payload: { orderId: 'o-1' }, id: 'app-1' }));
    await handle.result();
    await waitUntil('the shipped event arrived', () => s.received.some((e) => e.topic === 'order.shipped'));
    await s.notify(JSON.stringify({ topic: 'marker', id: 'marker-1' }));
    await waitUntil('the marker arrived', () => s.accepted.some((e) => e.id === 'marker-1') && s.received.some((e) => e.id === 'marker-1'));
    expect(s.received.map((e) => e.id)).toEqual(['app-1', s.accepted[1]?.id, 'marker-1']);
    expect(s.accepted.map((e) => e.topic)).toEqual(['order.paid', 'order.shipped', 'marker']);
    expect(s.problems).toEqual([]);
  });

  it('reports an event too large for NOTIFY (8000 bytes) instead of truncating it; the next one still goes out', async () => {
    const s = await setup();
    await s.runtime.publish({ topic: 'big', id: 'big-1', payload: { blob: 'x'.repeat(8000) } });
    await s.runtime.publish({ topic: 'small', id: 'small-1' });
    await waitUntil('the small event arrived', () => s.received.length === 1);
    expect(s.received.map((e) => e.id)).toEqual(['small-1']);
    expect(s.problems.map((p) => [p.kind, p.eventId, (p.error as { code?: string }).code])).toEqual([['event-too-large', 'big-1', 'EVENT_TOO_LARGE']]);
    expect((s.problems[0]?.error as { details: Record<string, unknown> }).details).toMatchObject({ limit: 7999 });
    // Right at the limit is fine: build an event whose JSON is exactly 7999 bytes.
    const base = JSON.stringify({ topic: 'edge', payload: { blob: '' }, id: 'edge-1', publishedAt: s.clock.now() });
    await s.runtime.publish({ topic: 'edge', id: 'edge-1', payload: { blob: 'y'.repeat(7999 - Buffer.byteLength(base)) } });
    await waitUntil('the edge event arrived', () => s.received.length === 2);
    expect(Buffer.byteLength(JSON.stringify(s.received[1]))).toBe(7999);
  });

  it('reconnects after pg_terminate_backend, LISTENs again, and both directions flow', async () => {
    const s = await setup();
    const pid = s.adapter.backendPid;
    expect(pid).toEqual(expect.any(Number));
    await admin('SELECT pg_terminate_backend($1)', [pid]);
    await waitUntil('it reconnected', () => s.adapter.connected && s.adapter.backendPid !== pid);
    expect(s.problems.map((p) => [p.kind, (p.error as { code?: string }).code])).toEqual([['connection-error', '57P01']]);
    const handle = await s.runtime.start(s.wf, { trail: [] });
    await s.runtime.idle();
    await s.notify(JSON.stringify({ topic: 'order.paid', payload: { orderId: 'o-1' } }));
    expect((await handle.result()).status).toBe('completed');
    await waitUntil('the shipped event arrived', () => s.received.some((e) => e.topic === 'order.shipped'));
  });

  it('keeps accepted events while it cannot reconnect and sends them in order once it can', async () => {
    const s = await setup();
    await s.runtime.publish({ topic: 'before', id: 'before-1' });
    await waitUntil('the first event arrived', () => s.received.length === 1);
    // New connections to the database are refused, and the adapter's own is terminated: a real outage for it only
    // (the app's sessions stay connected).
    await admin(`ALTER DATABASE "${dbName}" WITH ALLOW_CONNECTIONS false`);
    try {
      await admin(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'sagaflow-bus-test' AND datname = $1`, [dbName]);
      await waitUntil('the adapter saw the drop', () => !s.adapter.connected);
      for (let i = 1; i <= 3; i += 1) await s.runtime.publish({ topic: 'while-down', id: `down-${i}` });
      expect(s.adapter.pending).toBe(3);
      await new Promise((resolve) => setTimeout(resolve, 300)); // several refused attempts, with backoff
      expect(s.adapter.connected).toBe(false);
    } finally {
      await admin(`ALTER DATABASE "${dbName}" WITH ALLOW_CONNECTIONS true`);
    }
    await waitUntil('the queued events arrived', () => s.received.length === 4);
    expect(s.received.map((e) => e.id)).toEqual(['before-1', 'down-1', 'down-2', 'down-3']);
    await waitUntil('nothing is pending', () => s.adapter.pending === 0);
    // One outage, one report, although several attempts failed.
    expect(s.problems.map((p) => p.kind)).toEqual(['connection-error']);
    const handle = await s.runtime.start(s.wf, { trail: [] });
    await s.runtime.idle();
    await s.notify(JSON.stringify({ topic: 'order.paid', payload: { orderId: 'o-1' } }));
    expect((await handle.result()).status).toBe('completed');
  });

  it('stop() while disconnected reports the waiting events as dropped, ends the retries and leaves nothing open', async () => {
    const s = await setup();
    await admin(`ALTER DATABASE "${dbName}" WITH ALLOW_CONNECTIONS false`);
    try {
      await admin(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'sagaflow-bus-test' AND datname = $1`, [dbName]);
      await waitUntil('the adapter saw the drop', () => !s.adapter.connected);
      await s.runtime.publish({ topic: 'stranded', id: 's-1' });
      await s.adapter.stop();
    } finally {
      await admin(`ALTER DATABASE "${dbName}" WITH ALLOW_CONNECTIONS true`);
    }
    expect(s.problems.filter((p) => p.kind === 'event-dropped').map((p) => p.eventId)).toEqual(['s-1']);
  });

  it('start() waits while PostgreSQL is unreachable, and stop() ends the wait', async () => {
    const { runtime } = testRuntime();
    const unreachable = new URL(url);
    unreachable.port = '1'; // nothing listens there
    const adapter = new PostgresNotifyAdapter(runtime.bus, { connection: unreachable.toString(), reconnectDelay: 20, logger: silentLogger });
    const problems: AdapterProblem[] = [];
    adapter.problems$.subscribe((p) => problems.push(p));
    const starting = adapter.start().then(
      () => 'started',
      (error: unknown) => error,
    );
    await waitUntil('a connection error was reported', () => problems.length > 0);
    await adapter.stop();
    expect(await starting).toMatchObject({ code: 'ADAPTER_STOPPED' });
    expect(problems.map((p) => p.kind)).toEqual(['connection-error']);
    await runtime.close();
  });

  it('refuses bad options with BAD_OPTION', () => {
    const { runtime } = testRuntime();
    expect(() => new PostgresNotifyAdapter(runtime.bus, { channel: '' })).toThrow(expect.objectContaining({ code: 'BAD_OPTION' }));
    expect(() => new PostgresNotifyAdapter(runtime.bus, { channel: 'c'.repeat(64) })).toThrow(expect.objectContaining({ code: 'BAD_OPTION' }));
    expect(() => new PostgresNotifyAdapter(runtime.bus, { reconnectDelay: 'soon' })).toThrow(expect.objectContaining({ code: 'BAD_OPTION' }));
    expect(() => new PostgresNotifyAdapter(runtime.bus, { maxQueued: 1.5 })).toThrow(expect.objectContaining({ code: 'BAD_OPTION' }));
  });
});
