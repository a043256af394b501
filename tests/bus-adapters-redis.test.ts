import { Redis, type RedisOptions } from 'ioredis';
import { silentLogger, type SagaEvent } from '../src';
import { RedisAdapter, type AdapterProblem, type RedisAdapterOptions } from '../src/bus/adapters';
import { startRedis, tcpGate, type RedisServer, type TcpGate } from './support/redis';
import { testRuntime } from './support/runtime';
import { waitThenShip } from './support/bus-saga';
import type { Log } from './support/steps';

jest.setTimeout(30_000);

let redis: RedisServer;
beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  await redis?.dispose();
});

async function waitUntil(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

let channelNo = 0;
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** An app-side ioredis client straight to the server (quits after the test). */
function appClient(options: RedisOptions = {}): Redis {
  const client = new Redis({ host: '127.0.0.1', port: redis.port, retryStrategy: () => 20, disconnectTimeout: 200, ...options });
  client.on('error', () => undefined); // the restart test drops it on purpose
  cleanups.push(async () => {
    if (client.status === 'ready') await client.quit();
    else client.disconnect();
  });
  return client;
}

/** An app subscriber collecting what arrives on `channel`, parsed. */
async function appSubscriber(channel: string): Promise<{ client: Redis; received: SagaEvent[] }> {
  const client = appClient();
  const received: SagaEvent[] = [];
  client.on('message', (ch: string, message: string) => {
    if (ch !== channel) return;
    try {
      received.push(JSON.parse(message) as SagaEvent);
    } catch {
      received.push({ topic: '(not json)', payload: {}, id: message, publishedAt: 0 });
    }
  });
  await client.subscribe(channel);
  return { client, received };
}

async function subscribers(admin: Redis, channel: string): Promise<number> {
  const reply = (await admin.call('PUBSUB', 'NUMSUB', channel)) as [string, number];
  return Number(reply[1]);
}

/** A runtime whose saga waits for order.paid (o-1) then publishes order.shipped, and a started adapter. */
async function setup(options: RedisAdapterOptions = {}) {
  channelNo += 1;
  const channel = `test:events:${channelNo}`;
  const log: Log = [];
  const wf = waitThenShip('redis-saga', log);
  const t = testRuntime({ workflows: [wf] });
  const adapter = new RedisAdapter(t.runtime.bus, {
    connection: { host: '127.0.0.1', port: redis.port, retryStrategy: () => 50 },
    channel,
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
  const app = await appSubscriber(channel);
  const publisher = appClient();
  await adapter.start();
  const admin = appClient();
  return { ...t, wf, log, channel, adapter, problems, accepted, app, publisher, admin };
}

describe('RedisAdapter (real redis-server)', () => {
  it('a JSON message the app publishes resumes a waiting saga', async () => {
    const s = await setup();
    const handle = await s.runtime.start(s.wf, { trail: [] });
    await s.runtime.idle();
    await s.publisher.publish(s.channel, JSON.stringify({ topic: 'order.paid', payload: { orderId: 'o-1' }, id: 'app-1' }));
    expect((await handle.result()).status).toBe('completed');
    expect(s.log).toEqual(['Wait.run', 'Wait.runHandleInfo', 'Ship.run']);
  });

  it('a saga-published event (ctx.publish or runtime.publish) arrives on the app channel as JSON', async () => {
    const s = await setup();
    const handle = await s.runtime.start(s.wf, { trail: [] });
    await s.runtime.idle();
    await s.runtime.publish({ topic: 'order.paid', payload: { orderId: 'o-1' }, id: 'from-runtime' });
    await handle.result();
    await waitUntil('both events arrived', () => s.app.received.length >= 2);
    expect(s.app.received.map((e) => [e.topic, e.payload])).toEqual([
      ['order.paid', { orderId: 'o-1' }],
      ['order.shipped', { orderId: 'o-1' }],
    ]);
    expect(s.app.received[0]).toEqual({ ...s.accepted[0] });
    expect(s.app.received[0]).toMatchObject({ id: 'from-runtime', publishedAt: expect.any(Number) });
  });

  it('reports malformed messages (bad JSON, wrong shape) and drops them; later good ones still flow', async () => {
    const s = await setup();
    const handle = await s.runtime.start(s.wf, { trail: [] });
    await s.runtime.idle();
    await s.publisher.publish(s.channel, '{not json');
    await s.publisher.publish(s.channel, '"a string"');
    await s.publisher.publish(s.channel, JSON.stringify({ topic: '' }));
    await s.publisher.publish(s.channel, JSON.stringify({ topic: 'order.paid', payload: 'nope' }));
    await s.publisher.publish(s.channel, JSON.stringify({ topic: 'order.paid', payload: { orderId: 'o-1' } }));
    expect((await handle.result()).status).toBe('completed');
    expect(s.problems.map((p) => [p.adapter, p.kind, (p.error as { code?: string }).code])).toEqual([
      ['redis', 'malformed-message', 'MALFORMED_MESSAGE'],
      ['redis', 'malformed-message', 'INVALID_EVENT'],
      ['redis', 'malformed-message', 'INVALID_EVENT'],
      ['redis', 'malformed-message', 'INVALID_EVENT'],
    ]);
    expect((s.problems[0]?.error as Error).message).toContain(`redis channel ${s.channel}`);
  });

  it('does not loop with one channel both ways: app events are not published back, its own messages are not taken in', async () => {
    const s = await setup();
    const handle = await s.runtime.start(s.wf, { trail: [] });
    await s.runtime.idle();
    await s.publisher.publish(s.channel, JSON.stringify({ topic: 'order.paid', payload: { orderId: 'o-1' }, id: 'app-1' }));
    await handle.result();
    await waitUntil('the shipped event arrived', () => s.app.received.some((e) => e.topic === 'order.shipped'));
    // Give an echo time to show up, were there one.
    await s.publisher.publish(s.channel, JSON.stringify({ topic: 'marker', id: 'marker-1' }));
    await waitUntil('the marker arrived', () => s.accepted.some((e) => e.id === 'marker-1') && s.app.received.some((e) => e.id === 'marker-1'));
    // The app saw its own message once (pub/sub) and the saga's event once; nothing came back twice.
    expect(s.app.received.map((e) => e.id)).toEqual(['app-1', s.accepted[1]?.id, 'marker-1']);
    // The saga bus accepted the app event once and did not take its own published event in again.
    expect(s.accepted.map((e) => e.topic)).toEqual(['order.paid', 'order.shipped', 'marker']);
    expect(s.problems).toEqual([]);
  });

  it('reads app events from a pattern subscription', async () => {
    const s = await setup({ subscribePattern: 'test:orders:*' });
    const handle = await s.runtime.start(s.wf, { trail: [] });
    await s.runtime.idle();
    await s.publisher.publish('test:orders:eu', JSON.stringify({ topic: 'order.paid', payload: { orderId: 'o-1' } }));
    expect((await handle.result()).status).toBe('completed');
  });

  it('reconnects after CLIENT KILL of both its connections, re-subscribes, and both directions flow', async () => {
    const s = await setup();
    const list = (await s.admin.call('CLIENT', 'LIST')) as string;
    const ids = list
      .split('\n')
      .filter((line) => / name=sagaflow-bus-(in|out) /.test(line))
      .map((line) => /^id=(\d+)/.exec(line)?.[1]);
    expect(ids).toHaveLength(2);
    for (const id of ids) await s.admin.call('CLIENT', 'KILL', 'ID', id as string);
    // Published right after the kill: queued or sent, never lost (the app's subscriber is still connected).
    for (let i = 1; i <= 5; i += 1) await s.runtime.publish({ topic: 'tick', id: `tick-${i}` });
    await waitUntil('reconnected and re-subscribed', async () => s.adapter.connected && (await subscribers(s.admin, s.channel)) === 2);
    expect(s.problems.some((p) => p.kind === 'connection-error')).toBe(true);
    const handle = await s.runtime.start(s.wf, { trail: [] });
    await s.runtime.idle();
    await s.publisher.publish(s.channel, JSON.stringify({ topic: 'order.paid', payload: { orderId: 'o-1' } }));
    expect((await handle.result()).status).toBe('completed');
    await waitUntil('everything arrived', () => s.app.received.some((e) => e.topic === 'order.shipped'));
    expect(s.app.received.filter((e) => e.topic === 'tick').map((e) => e.id)).toEqual(['tick-1', 'tick-2', 'tick-3', 'tick-4', 'tick-5']);
    await waitUntil('nothing is pending', () => s.adapter.pending === 0); // the app may see a message before its PUBLISH reply
  });

  it('does not cut a burst while connected: maxQueued bounds outages only', async () => {
    const s = await setup({ maxQueued: 3 });
    // runtime.publish on a MemoryStore never yields to I/O, so all of these wait before the first PUBLISH reply.
    for (let i = 1; i <= 50; i += 1) await s.runtime.publish({ topic: 'burst', id: `b-${i}` });
    await waitUntil('the burst arrived', () => s.app.received.length === 50);
    expect(s.app.received.map((e) => e.id)).toEqual(Array.from({ length: 50 }, (_, i) => `b-${i + 1}`));
    expect(s.problems).toEqual([]);
  });

  describe('behind a connection the test can cut', () => {
    let gate: TcpGate;
    beforeEach(async () => {
      gate = await tcpGate(redis.port);
    });
    afterEach(async () => {
      await gate.close();
    });

    it('survives a redis-server restart: accepted events wait while it is down and arrive in order; app events flow again', async () => {
      const s = await setup({ connection: { host: '127.0.0.1', port: gate.port, retryStrategy: () => 50 } });
      await s.runtime.publish({ topic: 'before', id: 'before-1' });
      await waitUntil('the first event arrived', () => s.app.received.length === 1);

      await gate.cut(); // the adapter loses its connections and cannot reconnect until mended
      await waitUntil('the adapter saw the drop', () => !s.adapter.connected);
      await redis.restart();
      for (let i = 1; i <= 3; i += 1) await s.runtime.publish({ topic: 'while-down', id: `down-${i}` });
      expect(s.adapter.pending).toBe(3);
      // The app's own subscriber (direct) is back before the adapter is, so nothing published later is missed.
      await waitUntil('the app re-subscribed', async () => s.app.client.status === 'ready' && (await subscribers(s.admin, s.channel)) === 1);

      await gate.mend();
      await waitUntil('the queued events arrived', () => s.app.received.length === 4);
      expect(s.app.received.map((e) => e.id)).toEqual(['before-1', 'down-1', 'down-2', 'down-3']);
      await waitUntil('nothing is pending', () => s.adapter.pending === 0);
      expect(s.problems.filter((p) => p.kind === 'connection-error').length).toBeGreaterThanOrEqual(1);
      expect(s.problems.filter((p) => p.kind !== 'connection-error')).toEqual([]);

      await waitUntil('the adapter re-subscribed', async () => (await subscribers(s.admin, s.channel)) === 2);
      const handle = await s.runtime.start(s.wf, { trail: [] });
      await s.runtime.idle();
      await s.publisher.publish(s.channel, JSON.stringify({ topic: 'order.paid', payload: { orderId: 'o-1' } }));
      expect((await handle.result()).status).toBe('completed');
    });

    it('keeps at most maxQueued events while disconnected: the oldest are dropped and reported', async () => {
      const s = await setup({ connection: { host: '127.0.0.1', port: gate.port, retryStrategy: () => 50 }, maxQueued: 3 });
      await gate.cut();
      await waitUntil('the adapter saw the drop', () => !s.adapter.connected);
      for (let i = 1; i <= 5; i += 1) await s.runtime.publish({ topic: 'burst', id: `b-${i}` });
      expect(s.adapter.pending).toBe(3);
      expect(s.problems.filter((p) => p.kind === 'event-dropped').map((p) => [p.eventId, (p.error as { code?: string }).code])).toEqual([
        ['b-1', 'EVENT_DROPPED'],
        ['b-2', 'EVENT_DROPPED'],
      ]);
      await gate.mend();
      await waitUntil('the kept events arrived', () => s.app.received.length === 3);
      expect(s.app.received.map((e) => e.id)).toEqual(['b-3', 'b-4', 'b-5']);
    });

    it('stop() while disconnected reports the waiting events as dropped and leaves nothing open', async () => {
      const s = await setup({ connection: { host: '127.0.0.1', port: gate.port, retryStrategy: () => 50 } });
      await gate.cut();
      await waitUntil('the adapter saw the drop', () => !s.adapter.connected);
      await s.runtime.publish({ topic: 'stranded', id: 's-1' });
      await s.adapter.stop();
      expect(s.problems.filter((p) => p.kind === 'event-dropped').map((p) => p.eventId)).toEqual(['s-1']);
    });

    it('start() waits while Redis is unreachable (events queue meanwhile), and stop() ends the wait', async () => {
      await gate.cut();
      const { runtime } = testRuntime();
      const adapter = new RedisAdapter(runtime.bus, {
        connection: { host: '127.0.0.1', port: gate.port, retryStrategy: () => 50 },
        logger: silentLogger,
      });
      const problems: AdapterProblem[] = [];
      adapter.problems$.subscribe((p) => problems.push(p));
      const starting = adapter.start().then(
        () => 'started',
        (error: unknown) => error,
      );
      await runtime.publish({ topic: 'early', id: 'early-1' });
      expect(adapter.pending).toBe(1);
      await waitUntil('a connection error was reported', () => problems.some((p) => p.kind === 'connection-error'));
      await adapter.stop();
      expect(await starting).toMatchObject({ code: 'ADAPTER_STOPPED' });
      expect(problems.filter((p) => p.kind === 'event-dropped').map((p) => p.eventId)).toEqual(['early-1']);
      await runtime.close();
    });
  });

  it('uses a given ioredis client only as a template, and refuses bad options', async () => {
    const template = new Redis({ host: '127.0.0.1', port: redis.port, lazyConnect: true });
    const { runtime } = testRuntime();
    const adapter = new RedisAdapter(runtime.bus, { connection: template, channel: 'test:template', logger: silentLogger });
    await adapter.start();
    expect(template.status).toBe('wait'); // never connected
    await adapter.stop();
    template.disconnect();
    await runtime.close();
    expect(() => new RedisAdapter(runtime.bus, { channel: '' })).toThrow(expect.objectContaining({ code: 'BAD_OPTION' }));
    expect(() => new RedisAdapter(runtime.bus, { maxQueued: 0 })).toThrow(expect.objectContaining({ code: 'BAD_OPTION' }));
  });
});
