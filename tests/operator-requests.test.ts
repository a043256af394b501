import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { MemoryStore, SagaRuntime, defineWorkflow, silentLogger, type InstanceStore } from '../src';
import { recordingStep, waitsFor, type Log, type TestState } from './support/steps';
import { sagaflow } from './support/cli';
import { TypeormStore } from '../src/store/typeorm';
import { bank, compensationFailedInstance, fixtureRuntime, PaymentWithReceipt } from './support/operating-fixture';
import { createTestDatabase, dropTestDatabase } from './support/postgres';

function cli(args: readonly string[], env: Record<string, string> = {}): ReturnType<typeof sagaflow> {
  return sagaflow(args, { env: { USER: 'alice', ...env } });
}

async function until(condition: () => Promise<boolean>, what: string): Promise<void> {
  for (let i = 0; i < 200; i += 1) {
    if (await condition()) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`timed out waiting for ${what}`);
}

let dir: string;
let pgUrl: string;
beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'sagaflow-requests-'));
  pgUrl = await createTestDatabase('requests');
});
afterAll(async () => {
  rmSync(dir, { recursive: true, force: true });
  await dropTestDatabase(pgUrl);
});

let n = 0;
const stores: readonly [string, () => { store: InstanceStore; db: string[]; env: Record<string, string> }][] = [
  ['memory', () => ({ store: new MemoryStore(), db: [], env: {} })],
  [
    'SQLite',
    () => {
      const file = path.join(dir, `r${++n}.db`);
      return { store: TypeormStore.sqlite({ file }), db: ['--db', file], env: {} };
    },
  ],
  [
    'PostgreSQL',
    () => {
      const schema = `r_${++n}`;
      return { store: TypeormStore.postgres({ url: pgUrl, schema, poolSize: 4 }), db: ['--url', pgUrl, '--schema', schema], env: {} };
    },
  ],
];

describe.each(stores)('operator requests in the store: %s', (_name, make) => {
  it('are written only for an instance in a state where they apply, with the existing codes', async () => {
    const { store } = make();
    await compensationFailedInstance(store, 'stuck');
    const runtime = fixtureRuntime(store);
    bank.refusing = false;
    await expect(store.request?.({ instanceId: 'nope', kind: 'retry-compensation' }, 'q1', 1)).rejects.toMatchObject({ code: 'UNKNOWN_INSTANCE' });
    await expect(store.request?.({ instanceId: 'stuck', kind: 'resume' }, 'q2', 1)).rejects.toMatchObject({ code: 'INVALID_OPERATION' });
    await expect(store.request?.({ instanceId: 'stuck', kind: 'cancel' }, 'q3', 1)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    const written = await store.request?.({ instanceId: 'stuck', kind: 'retry-compensation', by: 'ops', reason: 'bank is back' }, 'q4', 5);
    expect(written).toMatchObject({ id: 'q4', state: 'pending', requestedAt: 5, by: 'ops' });
    expect((await store.pendingRequests?.('stuck'))?.map((r) => r.id)).toEqual(['q4']);
    expect(await store.requestInstances?.(10)).toEqual(['stuck']);
    await store.finishRequest?.('q4', null, 9);
    expect(await store.requestById?.('q4')).toMatchObject({ state: 'done', doneAt: 9 });
    expect(await store.pendingRequests?.('stuck')).toEqual([]);
    // A purge takes an instance's requests with it.
    expect(await store.purge?.({ before: Number.MAX_SAFE_INTEGER, statuses: ['compensation_failed'], limit: 10 })).toEqual(['stuck']);
    expect(await store.requestById?.('q4')).toBeUndefined();
    await (await runtime.start(PaymentWithReceipt, { account: 'x' }, { id: 'fine' })).result().catch(() => undefined);
    await runtime.close();
    await store.close();
  });

  it("go through the runtime's own operator methods: retryCompensation writes a request, applies it and marks it done", async () => {
    const { store } = make();
    await compensationFailedInstance(store, 'stuck');
    const runtime = fixtureRuntime(store);
    const request = jest.spyOn(store, 'request');
    bank.refusing = false;
    await runtime.retryCompensation('stuck', { by: 'ops', reason: 'bank is back' });
    expect((await runtime.handle('stuck').result()).status).toBe('rolled_back');
    expect(request).toHaveBeenCalledWith({ instanceId: 'stuck', kind: 'retry-compensation', by: 'ops', reason: 'bank is back' }, expect.any(String), expect.any(Number));
    const id = (request.mock.calls[0] as unknown[])[1] as string;
    expect(await store.requestById?.(id)).toMatchObject({ state: 'done' });
    expect((await runtime.history('stuck')).find((h) => h.kind === 'operator')).toMatchObject({ outcome: 'retryCompensation', note: 'by ops: bank is back' });
    await expect(runtime.cancel('stuck', 'too late')).rejects.toMatchObject({ code: 'INSTANCE_FINISHED' });
    await runtime.close();
    await store.close();
  });
});

describe.each(stores)('an operator request applied by a runtime: %s', (_name, make) => {
  it('is marked done in the same transaction as the history line of the act it asked for', async () => {
    const { store } = make();
    await compensationFailedInstance(store, 'stuck');
    const runtime = fixtureRuntime(store);
    const request = jest.spyOn(store, 'request');
    // The separate write after the act fails: the request is done all the same, with the transition that applied it.
    jest.spyOn(store, 'finishRequest').mockRejectedValue(new Error('disk full'));
    bank.refusing = false;
    await runtime.skipCompensation('stuck', { by: 'ops' });
    const id = (request.mock.calls[0] as unknown[])[1] as string;
    const line = (await store.history('stuck')).find((h) => h.kind === 'operator');
    expect(await store.requestById?.(id)).toMatchObject({ state: 'done', doneAt: line?.at });
    await runtime.close();
    await store.close();
  });
});

describe.each(stores.slice(1))('the sagaflow CLI writes operator requests that a running application applies: %s', (_name, make) => {
  it('retry-compensation moves a compensation_failed instance on, with who and why in its history', async () => {
    const { store, db, env } = make();
    await compensationFailedInstance(store, 'stuck');
    bank.refusing = false;
    const app = fixtureRuntime(store, { pollInterval: '50ms' });
    await app.start();
    const r = await cli(['retry-compensation', 'stuck', '--reason', 'the bank is back', '--wait', '10', ...db], env);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/requested retry-compensation of stuck \(request [0-9a-f-]{36}\); the runtime that runs the instance applies it/);
    expect(r.out).toMatch(/applied at /);
    await until(async () => (await store.load('stuck'))?.flow.status === 'rolled_back', 'the retry to finish');
    expect((await store.history('stuck')).find((h) => h.kind === 'operator')).toMatchObject({ outcome: 'retryCompensation', note: 'by alice (sagaflow CLI): the bank is back' });
    await app.close();
    await store.close();
  });

  it('exits 8 when no running application applied the request before --wait ran out, and leaves the request pending', async () => {
    const { store, db, env } = make();
    await compensationFailedInstance(store, 'stuck');
    const r = await cli(['retry-compensation', 'stuck', '--wait', '0.3', ...db], env);

    expect(r.code).toBe(8);
    expect(r.err).toMatch(/still pending after 0\.3 s.*\(REQUEST_PENDING\)/);
    expect((await store.pendingRequests?.('stuck'))?.map((q) => q.kind)).toEqual(['retry-compensation']);
    await store.close();
  });

  it('exits 7 for a refused request (cancel of a compensation_failed instance, resume of one not blocked, skip once it moved on), 3 for an unknown instance, 2 without a reason to cancel', async () => {
    const { store, db, env } = make();
    await compensationFailedInstance(store, 'stuck');
    const app = fixtureRuntime(store, { pollInterval: '50ms' });
    await app.start();
    expect((await cli(['cancel', 'stuck', '--reason', 'x', ...db], env)).code).toBe(7);
    expect((await cli(['resume', 'stuck', ...db], env)).err).toMatch(/only a blocked instance waits to be resumed.*\(INVALID_OPERATION\)/);
    expect((await cli(['retry-compensation', 'ghost', ...db], env)).code).toBe(3);
    expect((await cli(['cancel', 'stuck', ...db], env)).code).toBe(2);
    bank.refusing = false;
    await app.retryCompensation('stuck');
    const again = await cli(['skip-compensation', 'stuck', ...db], env);
    expect(again.code).toBe(7);
    expect(again.err).toMatch(/INVALID_OPERATION/);
    await app.close();
    await store.close();
  });
});

describe('resume as an operator request', () => {
  it('lets a blocked instance go on with who and why in its history once a runtime can run it, and is refused while it cannot', async () => {
    const log: Log = [];
    const v1 = defineWorkflow<TestState>({ name: 'loan', steps: [recordingStep('apply', log, { run: waitsFor('go') }), recordingStep('grant', log)] });
    const v2 = defineWorkflow<TestState>({ name: 'loan', version: 2, steps: [recordingStep('apply', log, { run: waitsFor('go') }), recordingStep('score', log), recordingStep('grant', log)] });
    const store = new MemoryStore();
    const first = new SagaRuntime({ store, logger: silentLogger, workflows: [v1] });
    await first.start(v1, { trail: [] }, { id: 'loan-1' });
    await first.idle();
    await first.close();
    // A deploy with version 2 only: loan-1 (version 1) is blocked.
    const second = new SagaRuntime({ store, logger: silentLogger, workflows: [v2] });
    await second.start();
    await second.idle();
    expect((await store.load('loan-1'))?.flow.status).toBe('blocked');
    await expect(second.resume('loan-1', { by: 'ops' })).rejects.toMatchObject({ code: 'UNKNOWN_VERSION' });
    expect((await store.pendingRequests('loan-1')).map((r) => r.kind)).toEqual(['resume']);
    await second.close();
    // A runtime with version 1 again applies the pending request as it takes the instance.
    const third = new SagaRuntime({ store, logger: silentLogger, workflows: [v1] });
    await third.resume('loan-1', { by: 'ops', reason: 'v1 is back' });
    expect((await store.load('loan-1'))?.flow.status).toBe('waiting');
    expect((await store.pendingRequests('loan-1'))).toEqual([]);
    // The pending request resumed it; the second found it going on and had nothing left to do (done, no second resume).
    expect((await third.history('loan-1')).filter((h) => h.kind === 'resumed').map((h) => h.note)).toEqual(['by ops']);
    await expect(third.resume('loan-1')).rejects.toMatchObject({ code: 'INVALID_OPERATION' });
    await third.publish({ topic: 'go', payload: {} });
    expect((await third.handle('loan-1').result()).status).toBe('completed');
    await third.close();
  });
});

describe('operator requests applied against the odds', () => {
  it('takes a stale resume of an instance that went on as done, without calling its step in flight a second time', async () => {
    const log: Log = [];
    let release: (() => void) | undefined;
    const slow = {
      run: async (state: TestState) => {
        await new Promise<void>((resolve) => {
          release = resolve;
        });
        return { kind: 'ok' as const, state };
      },
    };
    const v1 = defineWorkflow<TestState>({ name: 'loan-stale', steps: [recordingStep('charge', log, slow), recordingStep('grant', log)] });
    const v2 = defineWorkflow<TestState>({ name: 'loan-stale', version: 2, steps: [recordingStep('charge', log, slow), recordingStep('score', log), recordingStep('grant', log)] });
    const store = new MemoryStore();
    const first = new SagaRuntime({ store, logger: silentLogger, workflows: [v1] });
    await first.start(v1, { trail: [] }, { id: 'loan-s' });
    await until(async () => log.includes('charge.run'), 'charge to start');
    await first.close(); // charge.run in flight: its intent is saved
    log.length = 0;
    const second = new SagaRuntime({ store, logger: silentLogger, workflows: [v2] });
    await second.start();
    await expect(second.resume('loan-s', { by: 'ops-1' })).rejects.toMatchObject({ code: 'UNKNOWN_VERSION' });
    await second.close();
    const third = new SagaRuntime({ store, logger: silentLogger, workflows: [v1] });
    try {
      // ops-1's request, still pending, resumes it; ops-2's then finds it going on: nothing is left to do.
      await third.resume('loan-s', { by: 'ops-2' });
      await until(async () => log.includes('charge.run'), 'charge to run again after the resume');
      await new Promise((resolve) => setTimeout(resolve, 50));

      expect(log.filter((entry) => entry === 'charge.run')).toHaveLength(1);
      release?.();
      await third.idle();
      expect((await third.get('loan-s')).status).toBe('completed');
    } finally {
      release?.();
      await third.close();
    }
  });

  it('keeps each of two concurrent retries waiting for its own request, and rejects the one the instance refused', async () => {
    const store = new MemoryStore();
    await compensationFailedInstance(store, 'stuck-twice');
    const runtime = fixtureRuntime(store);
    bank.refusing = false;
    try {
      const results = await Promise.allSettled([runtime.retryCompensation('stuck-twice', { by: 'a' }), runtime.retryCompensation('stuck-twice', { by: 'b' })]);

      expect(results.map((r) => r.status).sort()).toEqual(['fulfilled', 'rejected']);
      expect(results.find((r) => r.status === 'rejected')).toMatchObject({ reason: { code: 'INVALID_OPERATION' } });
    } finally {
      await runtime.close();
    }
  });

  it('keeps waiting for its own request when an older one of the instance waits for the worker that holds it', async () => {
    const store = new MemoryStore({ shared: true });
    await compensationFailedInstance(store, 'stuck-held');
    const runtime = new SagaRuntime({ store, logger: silentLogger, workflows: [PaymentWithReceipt], pollInterval: '50ms' });
    await store.acquire('stuck-held', 'other-worker', Date.now() + 3_600_000, Date.now());
    await store.request({ instanceId: 'stuck-held', kind: 'retry-compensation', by: 'cli' }, 'older', Date.now() - 1000);
    const asked = runtime.skipCompensation('stuck-held', { by: 'me' });
    const early = await Promise.race([asked.then(() => 'settled', () => 'settled'), new Promise((resolve) => setTimeout(() => resolve('waiting'), 300))]);

    expect(early).toBe('waiting');
    await runtime.close();
    await expect(asked).rejects.toMatchObject({ code: 'RUNTIME_CLOSED' });
  });
});
