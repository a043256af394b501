import { existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { sagaflow, type Ran } from './support/cli';
import { TypeormStore } from '../src/store/typeorm';
import { createTestDatabase, dropTestDatabase } from './support/postgres';
import { sampleDatabase } from './support/operating-fixture';

const DAY = 86_400_000;
let dir: string;
let sqliteFile: string;
let pgUrl: string;

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'sagaflow-cli-'));
  sqliteFile = path.join(dir, 'app.db');
  const sqlite = TypeormStore.sqlite({ file: sqliteFile });
  pgUrl = await createTestDatabase('cli');
  const pg = TypeormStore.postgres({ url: pgUrl, poolSize: 4 });
  try {
    await sampleDatabase(sqlite);
    await sampleDatabase(pg);
  } finally {
    await Promise.all([sqlite.close(), pg.close()]);
  }
}, 120_000);

afterAll(async () => {
  rmSync(dir, { recursive: true, force: true });
  await dropTestDatabase(pgUrl);
});

const databases: readonly [string, () => string[], () => Record<string, string>][] = [
  ['SQLite (--db)', () => ['--db', sqliteFile], () => ({})],
  ['PostgreSQL (SAGAFLOW_DB_URL)', () => [], () => ({ SAGAFLOW_DB_URL: pgUrl })],
];

describe.each(databases)('sagaflow on a database the samples made: %s', (name, db, env) => {
  const sqlite = name.startsWith('SQLite');
  /** order-checkout 2, user-onboarding 2, refund-1, and on SQLite branching-order's 10. */
  const total = sqlite ? 15 : 5;
  const run = (args: readonly string[], now?: number): Promise<Ran> => sagaflow([...args, ...db()], { env: env(), ...(now === undefined ? {} : { now }) });

  it('list prints a table of every instance, newest update first, with its workflow, version and status', async () => {
    const r = await run(['list']);
    expect(r.code).toBe(0);
    expect(r.out.split('\n')[0]).toMatch(/^ID +WORKFLOW +VERSION +STATUS +UPDATED +CREATED$/);
    expect(r.out).toMatch(/order-1001 +order-checkout +1 +completed/);
    expect(r.out).toMatch(/order-1002 +order-checkout +1 +rolled_back/);
    expect(r.out).toMatch(/refund-1 +payment-with-receipt +1 +compensation_failed/);
    expect(r.out).toContain(`${total} instances`);
  });

  it('list filters by workflow, status, version and since, and prints JSON for scripts', async () => {
    const byWorkflow = JSON.parse((await run(['list', '--workflow', 'order-checkout', '--json'])).out) as { id: string }[];
    expect(byWorkflow.map((i) => i.id).sort()).toEqual(['order-1001', 'order-1002']);
    const byStatus = JSON.parse((await run(['list', '--status', 'rolled_back,compensation_failed', '--json'])).out) as { id: string; status: string }[];
    expect(byStatus.map((i) => i.id).sort()).toEqual([...(sqlite ? ['ord-3002', 'ord-3002:payment'] : []), 'order-1002', 'refund-1', 'signup-bob']);
    expect(JSON.parse((await run(['list', '--version', '2', '--json'])).out)).toEqual([]);
    expect((JSON.parse((await run(['list', '--version', '1', '--json'])).out) as unknown[]).length).toBe(total);
    // The branching-order sample runs on a simulated clock set in 2026-11; the others on the real clock.
    const recent = JSON.parse((await run(['list', '--since', '2026-12-01', '--json'])).out) as { id: string }[];
    expect(recent.map((i) => i.id).sort()).toEqual(['order-1001', 'order-1002', 'refund-1', 'signup-ada', 'signup-bob']);
  });

  it('show prints the state, the flow fields, the compensation stack and the failures of an instance', async () => {
    const r = await run(['show', 'refund-1']);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/status +compensation_failed/);
    expect(r.out).toMatch(/position +debit-account · rollback · attempt 1/);
    expect(r.out).toMatch(/compensation stack +debit-account/);
    expect(r.out).toMatch(/error +MAIL_DOWN: the mail server is down/);
    expect(r.out).toMatch(/compensation failed +debit-account: BANK_REFUSED/);
    expect(r.out).toContain('"account": "acc-7"');
    const record = JSON.parse((await run(['show', 'order-1001', '--json'])).out) as { flow: { status: string } };
    expect(record.flow.status).toBe('completed');
  });

  it('history prints the timeline with the time between transitions', async () => {
    const r = await run(['history', 'order-1002']);
    expect(r.code).toBe(0);
    const lines = r.out.split('\n');
    expect(lines[0]).toMatch(/^AT +AFTER +KIND +WHERE +OUTCOME +STATUS$/);
    expect(r.out).toMatch(/\+\d+ ms +step-result +↑ ship run +error NO_CARRIER_CAPACITY +rolling_back/);
    expect(lines.filter((l) => /step-result +↓/.test(l)).map((l) => /↓ (\S+)/.exec(l)?.[1])).toEqual(['ship', 'charge-payment', 'reserve-inventory']);
    const json = JSON.parse((await run(['history', 'order-1001', '--json'])).out) as { kind: string; stateChange?: unknown[] }[];
    expect(json.some((h) => h.stateChange !== undefined)).toBe(true);
  });

  it('exits 3 with a clear message for an unknown instance', async () => {
    for (const command of ['show', 'history']) {
      const r = await run([command, 'no-such-order']);
      expect(r.code).toBe(3);
      expect(r.err).toMatch(/no saga instance with id "no-such-order".*\(UNKNOWN_INSTANCE\)/);
    }
  });

  it('never changes anything with a read command: the waiting and failed instances stay as they were', async () => {
    const before = JSON.parse((await run(['show', 'refund-1', '--json'])).out) as { version: number };
    await run(['list']);
    await run(['history', 'refund-1']);
    const after = JSON.parse((await run(['show', 'refund-1', '--json'])).out) as { version: number };
    expect(after.version).toBe(before.version);
  });

  it('purge --dry-run lists what would go and deletes nothing; purge deletes finished instances with their history, never a compensation_failed one by default', async () => {
    const later = Date.now() + 400 * DAY;
    const dry = await run(['purge', '--older-than', '30d', '--dry-run'], later);
    expect(dry.code).toBe(0);
    expect(dry.out).toContain('order-1001');
    expect(dry.out).not.toContain('refund-1');
    expect(dry.out).toMatch(new RegExp(`${total - 1} instances \\(completed`));
    expect(dry.out).toMatch(/instances \(completed, rolled_back, updated before .*\) would be purged; nothing was deleted/);
    expect((await run(['show', 'order-1001'])).code).toBe(0);

    const notYet = await run(['purge', '--older-than', '30d']);
    expect(notYet.out).toContain('purged 0 instances');

    const purged = await run(['purge', '--older-than', '30d', '--status', 'completed', '--batch-size', '3'], later);
    expect(purged.out).toMatch(new RegExp(`purged ${sqlite ? 10 : 2} instances \\(completed, updated before`));
    expect((await run(['show', 'order-1001'])).code).toBe(3);
    expect((await run(['history', 'order-1001'])).code).toBe(3);
    expect((await run(['show', 'order-1002'])).code).toBe(0);
    expect((await run(['show', 'refund-1'])).code).toBe(0);
  });

  it('refuses to purge unfinished instances (exit 2, NOT_PURGEABLE) and bad arguments (exit 2)', async () => {
    const r = await run(['purge', '--older-than', '1d', '--status', 'blocked']);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/"blocked" instances are never purged.*\(NOT_PURGEABLE\)/);
    expect((await run(['purge', '--older-than', 'soon'])).code).toBe(2);
    expect((await run(['list', '--status', 'done'])).err).toMatch(/--status "done" is not one of running, waiting/);
    expect((await run(['list', '--limit', '0'])).code).toBe(2);
    expect((await run(['list', '--since', 'yesterday-ish'])).code).toBe(2);
  });
});

describe('sagaflow refuses databases it cannot read', () => {
  it('exits 4 for a missing SQLite file and does not create it', async () => {
    const missing = path.join(dir, 'nothing-here', 'app.db');
    const r = await sagaflow(['list', '--db', missing]);
    expect(r.code).toBe(4);
    expect(r.err).toMatch(/no database file at .*nothing-here.*\(NO_DATABASE\)/);
    expect(existsSync(path.dirname(missing))).toBe(false);
    const write = await sagaflow(['purge', '--older-than', '1d', '--db', missing]);
    expect(write.code).toBe(4);
    expect(existsSync(path.dirname(missing))).toBe(false);
  });

  it('uses .sagaflow/sagaflow.db in the working directory by default', async () => {
    const cwd = mkdtempSync(path.join(dir, 'cwd-'));
    const r = await sagaflow(['list'], { cwd });
    expect(r.code).toBe(4);
    expect(r.err).toContain(path.join(cwd, '.sagaflow', 'sagaflow.db'));
  });

  it('exits 4 for an SQLite database without sagaflow tables, and for a file that is not a database', async () => {
    const other = path.join(dir, 'other.db');
    const plain = TypeormStore.sqlite({ file: other, runMigrations: false });
    await plain.dataSource.initialize();
    await plain.dataSource.query('CREATE TABLE invoices (id integer)');
    await plain.dataSource.destroy();
    const r = await sagaflow(['list', '--db', other]);
    expect(r.code).toBe(4);
    expect(r.err).toMatch(/has no sagaflow tables.*\(NOT_SAGAFLOW_DATABASE\)/);
    const text = path.join(dir, 'notes.txt');
    writeFileSync(text, 'not a database, just some text that is long enough to have a header '.repeat(20));
    const size = statSync(text).size;
    const t = await sagaflow(['list', '--db', text]);
    expect(t.code).toBe(4);
    expect(t.err).toMatch(/NOT_SAGAFLOW_DATABASE/);
    expect(statSync(text).size).toBe(size);
  });

  it('exits 5 for a schema newer than it knows, or older', async () => {
    for (const [change, expected] of [
      [`INSERT INTO sagaflow_migrations ("timestamp", "name") VALUES (1799999999999, 'SagaflowFuture1799999999999')`, /newer sagaflow.*SagaflowFuture1799999999999.*\(SCHEMA_TOO_NEW\)/],
      [`DELETE FROM sagaflow_migrations WHERE name = 'SagaflowOperating1764000000000'`, /older than this sagaflow \(SagaflowOperating1764000000000 not run\).*\(SCHEMA_OUTDATED\)/],
    ] as const) {
      const file = path.join(dir, `schema-${expected.source.length}.db`);
      const store = TypeormStore.sqlite({ file });
      await store.init();
      await store.dataSource.query(change);
      await store.close();
      const r = await sagaflow(['list', '--db', file]);
      expect(r.code).toBe(5);
      expect(r.err).toMatch(expected);
    }
  });

  it('exits 4 when PostgreSQL cannot be reached, and 2 for a URL that is not PostgreSQL', async () => {
    const down = await sagaflow(['list', '--url', 'postgres://nobody@127.0.0.1:1/none']);
    expect(down.code).toBe(4);
    expect(down.err).toMatch(/DATABASE_UNREACHABLE/);
    expect((await sagaflow(['list', '--url', 'mysql://x@y/z'])).code).toBe(2);
  });

  it('exits 2 on a usage error (an unknown command or option, a missing argument)', async () => {
    expect((await sagaflow(['frobnicate'])).code).toBe(2);
    expect((await sagaflow(['list', '--colour'])).code).toBe(2);
    expect((await sagaflow(['show'])).code).toBe(2);
    expect((await sagaflow(['--help'])).code).toBe(0);
  });
});

describe('sagaflow describe', () => {
  it('prints the outline of the workflows a module exports', async () => {
    const r = await sagaflow(['describe', path.resolve(__dirname, '../samples/branching-order/workflow.ts')]);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^workflow branching-order · version 1 · fingerprint [0-9a-f]{16}$/m);
    expect(r.out).toMatch(/^ {2}when express\?$/m);
    expect(r.out).toMatch(/step payment \(starts child take-payment/);
    expect(r.out).toMatch(/^workflow take-payment/m);
  });

  it('exits 6 for a module that cannot be loaded or exports no workflow', async () => {
    const r = await sagaflow(['describe', path.join(dir, 'missing.js')]);
    expect(r.code).toBe(6);
    expect(r.err).toMatch(/could not be loaded.*\(BAD_MODULE\)/);
    const empty = path.join(dir, 'empty.js');
    writeFileSync(empty, 'exports.answer = 42;');
    expect((await sagaflow(['describe', empty])).err).toMatch(/exports no workflow/);
  });
});
