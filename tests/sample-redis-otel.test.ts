import { execFile } from 'node:child_process';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { runRedisOtel } from '../samples/redis-otel/run';
import { startRedis, type RedisServer } from './support/redis';

jest.setTimeout(30_000);

let redis: RedisServer;
beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  await redis?.dispose();
});

describe('the redis-otel sample', () => {
  let lines: string[];
  beforeAll(async () => {
    lines = [];
    await runRedisOtel((line) => lines.push(line), { redisUrl: redis.url });
  });
  const block = (heading: string): string[] => {
    const start = lines.indexOf(heading);
    expect(start).toBeGreaterThanOrEqual(0);
    const end = lines.indexOf('', start);
    return lines.slice(start + 1, end === -1 ? undefined : end);
  };

  it('completes order-2001 once payment.captured comes in over redis', () => {
    expect(lines).toContain('order-2001: waiting for payment.captured');
    expect(lines).toContain('payment provider → redis shop:app-events: {"topic":"payment.captured","payload":{"orderId":"order-2001","paymentId":"pay-order-2001"}}');
    expect(lines).toContain('order-2001: completed — reservation res-order-2001, payment pay-order-2001, shipment shp-order-2001');
    expect(lines).toContain('  log info  order-2001  saga order completed');
  });

  it('compensates order-2002 in reverse order when shipping fails', () => {
    expect(lines).toContain('order-2002: rolled back (NO_CARRIER: no carrier delivers to Atlantis)');
    const undone = lines
      .filter((l) => l.includes('order-2002') && / rollback (started|finished)/.test(l))
      .map((l) => /step (\S+) rollback (\S+)/.exec(l)?.slice(1, 3).join(' '));
    expect(undone).toEqual(['ship started', 'ship finished:', 'charge started', 'charge finished:', 'reserve-stock started', 'reserve-stock finished:']);
  });

  it('publishes every event the saga bus accepted on the outgoing redis channel, without echoing payment.captured', () => {
    const outgoing = lines.filter((l) => l.startsWith('on redis shop:saga-events')).length;
    expect(outgoing).toBe(2);
    const topics = (id: string): string[] =>
      lines.filter((l) => l.startsWith('  ') && !l.startsWith('  log') && l.includes(`"orderId":"${id}"`) && !l.startsWith('    ')).map((l) => l.trim().split(' ')[0]!);
    expect(topics('order-2001')).toEqual(['stock.reserved', 'payment.requested', 'order.shipped']);
    expect(topics('order-2002')).toEqual(['stock.reserved', 'payment.requested', 'payment.refunded', 'stock.released']);
    expect(lines).toContain('  order.shipped {"orderId":"order-2001","shipmentId":"shp-order-2001","shipTo":"Lyon"}');
  });

  it('prints the spans as a tree: a saga root per order with its step and rollback spans', () => {
    // Spans that ended normally keep status UNSET (the OpenTelemetry convention); failures are ERROR.
    expect(block('spans:')).toEqual([
      '  saga order (order-2001)  [UNSET]',
      '    reserve-stock run  [UNSET]',
      '    charge run  [UNSET]',
      '    ship run  [UNSET]',
      '  saga order (order-2002)  [ERROR rolled back: NO_CARRIER: no carrier delivers to Atlantis]',
      '    reserve-stock run  [UNSET]',
      '    charge run  [UNSET]',
      '    ship run  [ERROR NO_CARRIER]',
      '    ship rollback  [UNSET]',
      '    charge rollback  [UNSET]',
      '    reserve-stock rollback  [UNSET]',
    ]);
  });
});

describe('the redis-otel sample on its own', () => {
  it('runs when its run file is the program, on the server REDIS_URL names, and exits 0', async () => {
    const root = path.resolve(__dirname, '..');
    const { stdout } = await promisify(execFile)(process.execPath, ['-r', './tests/crash/register.js', 'samples/redis-otel/run.ts'], {
      cwd: root,
      env: { ...process.env, REDIS_URL: redis.url },
      timeout: 25_000,
    });
    expect(stdout).toContain('order-2002: rolled back (NO_CARRIER: no carrier delivers to Atlantis)');
  });
});
