import { request } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Browser } from 'playwright-core';
import { runCli } from '../src/cli/run-cli';
import { TypeormStore } from '../src/store/typeorm';
import { launchChromium } from './support/chromium';
import { bank, compensationFailedInstance, fixtureRuntime, PaymentWithReceipt, sampleDatabase } from './support/operating-fixture';

/** A GET with a chosen Host header: status and body. */
function get(url: string, host?: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const req = request({ host: '127.0.0.1', port: u.port, path: `${u.pathname}${u.search}`, headers: { host: host ?? u.host } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** A form POST: status and body. */
function post(url: string, form: Record<string, string>, headers: Record<string, string> = {}): Promise<{ status: number; body: string; location?: string }> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const body = new URLSearchParams(form).toString();
    const req = request(
      { method: 'POST', host: '127.0.0.1', port: u.port, path: u.pathname, headers: { host: u.host, 'content-type': 'application/x-www-form-urlencoded', 'content-length': String(Buffer.byteLength(body)), ...headers } },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (text += chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text, ...(res.headers.location === undefined ? {} : { location: res.headers.location }) }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/** `sagaflow inspect --db file --port 0`, in-process: its URL, and a stop. */
async function inspect(file: string, ...flags: string[]): Promise<{ url: string; stop: () => Promise<number> }> {
  const abort = new AbortController();
  let listening!: (url: string) => void;
  const url = new Promise<string>((resolve) => (listening = resolve));
  const done = runCli(['inspect', '--db', file, '--port', '0', ...flags], { out: () => undefined, err: (t) => console.error(t), env: {}, cwd: tmpdir(), signal: abort.signal, listening });
  const first = await Promise.race([url, done.then((code) => `exited ${code}`)]);
  if (!first.startsWith('http')) throw new Error(`sagaflow inspect ${first}`);
  return { url: first, stop: () => (abort.abort(), done) };
}

const HOSTILE = '<img src=x onerror="alert(1)">';
let dir: string;
let file: string;
let server: { url: string; stop: () => Promise<number> };

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'sagaflow-inspector-'));
  file = path.join(dir, 'app.db');
  const store = TypeormStore.sqlite({ file });
  try {
    await sampleDatabase(store);
    const runtime = fixtureRuntime(store);
    await (await runtime.start(PaymentWithReceipt, { account: HOSTILE }, { id: HOSTILE })).result();
    await runtime.close();
  } finally {
    await store.close();
  }
  server = await inspect(file);
}, 120_000);

afterAll(async () => {
  await server.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('the inspector over HTTP', () => {
  it('serves on 127.0.0.1 only and refuses other Host headers with 421 (DNS rebinding)', async () => {
    expect(server.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
    expect((await get(server.url)).status).toBe(200);
    expect((await get(server.url, `localhost:${new URL(server.url).port}`)).status).toBe(200);
    const rebound = await get(server.url, 'evil.example:80');
    expect(rebound.status).toBe(421);
    expect(rebound.body).not.toContain('order-1001');
  });

  it('lists instances with counts by status and filters them by workflow and status', async () => {
    const all = (await get(server.url)).body;
    expect(all).toMatch(/data-count="completed">.*?<b>10<\/b>/s);
    expect(all).toMatch(/data-count="compensation_failed">.*?<b>2<\/b>/s);
    expect(all).toContain('href="/instances/order-1002"');
    const failed = (await get(`${server.url}?status=compensation_failed`)).body;
    expect(failed).toContain('data-id="refund-1"');
    expect(failed).not.toContain('data-id="order-1001"');
    const orders = (await get(`${server.url}?workflow=order-checkout`)).body;
    expect(orders).toContain('data-id="order-1001"');
    expect(orders).not.toContain('data-id="refund-1"');
  });

  it('escapes everything read from the database', async () => {
    const list = (await get(server.url)).body;
    expect(list).not.toContain(HOSTILE);
    expect(list).toContain('&lt;img src=x onerror=&quot;alert(1)&quot;&gt;');
    const page = (await get(`${server.url}instances/${encodeURIComponent(HOSTILE)}`)).body;
    expect(page).not.toContain('<img src=x');
    expect(page).toContain('&quot;account&quot;: &quot;&lt;img src=x');
  });

  it('draws an instance: its steps with what ran, failed and was compensated, failures, a timeline with durations and state patches', async () => {
    const { status, body } = await get(`${server.url}instances/order-1002`);
    expect(status).toBe(200);
    expect(body).toMatch(/<g class="step up-ran down-compensated" data-step="reserve-inventory">/);
    expect(body).toMatch(/<g class="step up-failed down-compensated" data-step="ship">/);
    expect(body).toContain('NO_CARRIER_CAPACITY');
    expect(body).toMatch(/<td class="num">\+\d+(\.\d)? (ms|s)<\/td>/);
    expect(body).toContain('&quot;op&quot;: &quot;');
    const branching = (await get(`${server.url}instances/ord-3002`)).body;
    expect(branching).toMatch(/class="when" data-node="express\?"/);
    expect(branching).toMatch(/class="parallel"/);
    expect(branching).toContain('child take-payment');
  });

  it('marks the current position of a compensation_failed instance and its failed compensation', async () => {
    const body = (await get(`${server.url}instances/refund-1`)).body;
    expect(body).toMatch(/<g class="step up-ran down-compensation-failed current" data-step="debit-account">/);
    expect(body).toContain('BANK_REFUSED');
  });

  it('shows operator buttons for a compensation_failed instance, and none for an ended one', async () => {
    expect((await get(`${server.url}instances/refund-1`)).body).toMatch(/data-action="retry-compensation".*data-action="skip-compensation"/s);
    expect((await get(`${server.url}instances/order-1001`)).body).not.toContain('data-action=');
  });

  it('opened --read-only, shows no buttons and takes no form', async () => {
    const readOnly = await inspect(file, '--read-only');
    try {
      const body = (await get(`${readOnly.url}instances/refund-1`)).body;
      expect(body).toContain('BANK_REFUSED');
      expect(body).not.toContain('data-action=');
      expect((await post(`${readOnly.url}instances/refund-1/requests`, { kind: 'skip-compensation', token: 'x' })).status).toBe(405);
    } finally {
      await readOnly.stop();
    }
  });

  it('answers 404 for an unknown instance or page', async () => {
    expect((await get(`${server.url}instances/nope`)).status).toBe(404);
    expect((await get(`${server.url}nothing`)).status).toBe(404);
  });

  it('says why there is no diagram when no outline of the workflow is stored', async () => {
    const bare = path.join(dir, 'bare.db');
    const store = TypeormStore.sqlite({ file: bare });
    await sampleDatabase(store);
    await store.dataSource.query('DELETE FROM sagaflow_definitions');
    await store.close();
    const other = await inspect(bare);
    try {
      const body = (await get(`${other.url}instances/order-1001`)).body;
      expect(body).toContain('id="no-diagram"');
      expect(body).not.toContain('<svg');
    } finally {
      await other.stop();
    }
  });
});

describe('the inspector in a real browser (headless Chromium)', () => {
  let browser: Browser;
  beforeAll(async () => {
    browser = await launchChromium();
  }, 60_000);
  afterAll(async () => {
    await browser.close();
  });

  it('loads the list, follows an instance, and shows its diagram with its steps', async () => {
    const page = await browser.newPage();
    await page.goto(server.url);
    expect(await page.locator('#instances tbody tr').count()).toBe(16);
    await page.click('a[href="/instances/order-1002"]');
    await page.waitForSelector('svg.workflow-diagram');
    const steps = await page.locator('svg.workflow-diagram g.step').evaluateAll((gs: readonly { getAttribute(name: string): string | null }[]) => gs.map((g) => [g.getAttribute('data-step'), g.getAttribute('class')]));
    expect(steps).toEqual([
      ['reserve-inventory', 'step up-ran down-compensated'],
      ['charge-payment', 'step up-ran down-compensated'],
      ['ship', 'step up-failed down-compensated'],
    ]);
    await page.close();
  });
});

describe('the inspector writes operator requests', () => {
  let appFile: string;
  let app: ReturnType<typeof fixtureRuntime>;
  let store: TypeormStore;
  let inspector: { url: string; stop: () => Promise<number> };
  let browser: Browser;

  beforeAll(async () => {
    appFile = path.join(dir, 'app-running.db');
    store = TypeormStore.sqlite({ file: appFile });
    await compensationFailedInstance(store, 'refund-9');
    await compensationFailedInstance(store, 'refund-10');
    await compensationFailedInstance(store, 'refund-11');
    // The application runs, with the workflow's code, on the same file; the inspector is another connection.
    app = fixtureRuntime(store, { pollInterval: '50ms' });
    await app.start();
    inspector = await inspect(appFile);
    browser = await launchChromium();
  }, 60_000);

  afterAll(async () => {
    await browser.close();
    await inspector.stop();
    await app.close();
    await store.close();
  });

  it('refuses a form without the token, or from another origin, with 403', async () => {
    const page = (await get(`${inspector.url}instances/refund-10`)).body;
    const token = /name="token" value="([0-9a-f]+)"/.exec(page)?.[1] ?? '';
    expect(token).toHaveLength(48);
    const target = `${inspector.url}instances/refund-10/requests`;
    expect((await post(target, { kind: 'skip-compensation' })).status).toBe(403);
    expect((await post(target, { kind: 'skip-compensation', token: 'f'.repeat(48) })).status).toBe(403);
    expect((await post(target, { kind: 'skip-compensation', token }, { origin: 'http://evil.example' })).status).toBe(403);
    expect((await post(target, { kind: 'cancel', token, reason: 'x' })).status).toBe(409);
    expect((await store.pendingRequests('refund-10')).length).toBe(0);
    const confirmed = await post(target, { kind: 'skip-compensation', token, by: 'ops', reason: 'refunded by hand' });
    expect(confirmed.status).toBe(303);
    expect(confirmed.location).toMatch(/^\/instances\/refund-10\?request=/);
    for (let i = 0; i < 200 && (await store.load('refund-10'))?.flow.status !== 'rolled_back'; i += 1) await new Promise((r) => setTimeout(r, 50));
    expect((await store.history('refund-10')).find((h) => h.kind === 'operator')).toMatchObject({ outcome: 'skipCompensation', note: 'by ops: refunded by hand' });
  });

  it('answers 400, not an error page, for a request kind named like an Object member or an address that is not valid percent-encoding', async () => {
    const page = (await get(`${inspector.url}instances/refund-11`)).body;
    const token = /name="token" value="([0-9a-f]+)"/.exec(page)?.[1] ?? '';
    expect(token).toHaveLength(48);
    for (const kind of ['toString', 'constructor', '__proto__']) {
      expect((await post(`${inspector.url}instances/refund-11/confirm`, { kind, token })).status).toBe(400);
      expect((await post(`${inspector.url}instances/refund-11/requests`, { kind, token })).status).toBe(400);
    }
    expect((await post(`${inspector.url}instances/%E0%A4%A/confirm`, { kind: 'cancel', token })).status).toBe(400);
    expect((await get(`${inspector.url}instances/%E0%A4%A`)).status).toBe(400);
  });

  it('a click on retry, confirmed, moves a compensation_failed instance on while the application runs (headless Chromium)', async () => {
    bank.refusing = false;
    const page = await browser.newPage();
    await page.goto(`${inspector.url}instances/refund-9`);
    expect(await page.locator('h1 .status').textContent()).toBe('compensation_failed');
    await page.click('button[data-action="retry-compensation"]');
    await page.waitForSelector('#confirm');
    await page.fill('input[name="reason"]', 'the bank is back');
    await page.click('#confirm');
    await page.waitForSelector('#flash');
    expect(await page.locator('#flash').textContent()).toMatch(/request retry-compensation \(.+\) (is pending|was applied)/);
    let status = '';
    for (let i = 0; i < 100 && status !== 'rolled_back'; i += 1) {
      await new Promise((r) => setTimeout(r, 100));
      await page.reload();
      status = (await page.locator('h1 .status').textContent()) ?? '';
    }
    expect(status).toBe('rolled_back');
    expect(await page.locator('#timeline').textContent()).toContain('by inspector: the bank is back');
    await page.close();
  }, 30_000);
});
