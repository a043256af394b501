import { BaseStep, MemoryStore, Step, defineWorkflow, error as fail, ok, type StepContext, type StepResult } from '../src';
import { backoffDelay, unitHash } from '../src/policies/backoff';
import { resolveRetryPolicy } from '../src/policies/retry-policy';
import { RecordingObserver } from '../src/testing';
import { recordingStep, type Log, type TestState } from './support/steps';
import { testRuntime } from './support/runtime';

interface Call {
  attempt: number;
  key: string;
  base: string;
  at: number;
}

/** A step that fails `failures` times with `code`, then succeeds; it records each call. */
function flaky(name: string, failures: number, calls: Call[], code = 'UNAVAILABLE', options: Record<string, unknown> = {}) {
  @Step({ name, retry: { maxAttempts: 3, backoff: 'exponential', initialDelay: '1s', coefficient: 2, maxDelay: '1m' }, ...options })
  class Flaky extends BaseStep<TestState> {
    override run(state: TestState, ctx: StepContext): StepResult<TestState> {
      calls.push({ attempt: ctx.attempt, key: ctx.idempotencyKey, base: ctx.idempotencyKeyBase, at: ctx.clock.now() });
      return calls.length <= failures ? fail({ code, message: `try ${calls.length} failed` }, state) : ok(state);
    }
  }
  return Flaky;
}

describe('backoff math', () => {
  const policy = resolveRetryPolicy({ maxAttempts: 10, backoff: 'exponential', initialDelay: 100, coefficient: 3, maxDelay: 2_000 }, 'test');

  it('grows exponentially from the initial delay and stops at the maximum', () => {
    expect([1, 2, 3, 4, 5].map((a) => backoffDelay(policy, a, 0))).toEqual([100, 300, 900, 2_000, 2_000]);
  });

  it('stays at the initial delay when fixed', () => {
    const fixed = resolveRetryPolicy({ backoff: 'fixed', initialDelay: '250ms' }, 'test');
    expect([1, 2, 3].map((a) => backoffDelay(fixed, a, 0.9))).toEqual([250, 250, 250]);
  });

  it('lowers a delay by at most the jitter fraction, the same way for the same seed', () => {
    const jittery = resolveRetryPolicy({ initialDelay: 1_000, jitter: 0.5 }, 'test');
    const seed = unitHash('i-1:charge:up:1');
    expect(backoffDelay(jittery, 1, seed)).toBe(backoffDelay(jittery, 1, unitHash('i-1:charge:up:1')));
    for (const u of [0, 0.25, 0.5, 0.999]) {
      const d = backoffDelay(jittery, 1, u);
      expect(d).toBeGreaterThan(500);
      expect(d).toBeLessThanOrEqual(1_000);
    }
  });

  it('refuses nonsense policies with BAD_OPTION', () => {
    expect(() => resolveRetryPolicy({ maxAttempts: 0 }, 'x')).toThrow(expect.objectContaining({ code: 'BAD_OPTION' }));
    expect(() => resolveRetryPolicy({ jitter: 2 }, 'x')).toThrow(expect.objectContaining({ code: 'BAD_OPTION' }));
    expect(() => resolveRetryPolicy({ initialDelay: '1m', maxDelay: '1s' }, 'x')).toThrow(expect.objectContaining({ code: 'BAD_OPTION' }));
  });

  it('refuses a bad policy on @Step when the class is decorated', () => {
    expect(() =>
      Step({ name: 'bad', retry: { backoff: 'sometimes' as never } })(
        class extends BaseStep {},
      ),
    ).toThrow(expect.objectContaining({ code: 'BAD_OPTION' }));
  });
});

describe('retrying a failing step', () => {
  it('completes when a step fails twice and succeeds on its third attempt, with delays that follow the policy exactly', async () => {
    const calls: Call[] = [];
    const wf = defineWorkflow<TestState>({ name: 'retry-3', steps: [flaky('charge', 2, calls)] });
    const { runtime, clock } = testRuntime({ workflows: [wf] });
    const t0 = clock.now();
    const handle = await runtime.start(wf, { trail: [] }, { id: 'r3' });
    await runtime.idle();
    expect((await runtime.get('r3')).status).toBe('waiting');
    await clock.advance('999ms');
    expect(calls).toHaveLength(1);
    await clock.advance('1ms');
    expect(calls).toHaveLength(2);
    await clock.advance('2s');
    const result = await handle.result();
    expect(result.status).toBe('completed');
    expect(calls.map((c) => c.attempt)).toEqual([1, 2, 3]);
    expect(calls.map((c) => c.at - t0)).toEqual([0, 1_000, 3_000]);
    expect(new Set(calls.map((c) => c.base))).toEqual(new Set(['r3:charge:up']));
    expect(calls.map((c) => c.key)).toEqual(['r3:charge:up:1', 'r3:charge:up:2', 'r3:charge:up:3']);
  });

  it('rolls back once the attempts are spent', async () => {
    const calls: Call[] = [];
    const log: Log = [];
    const wf = defineWorkflow<TestState>({ name: 'retry-spent', steps: [recordingStep('A', log), flaky('charge', 9, calls)] });
    const { runtime, clock } = testRuntime({ workflows: [wf] });
    const handle = await runtime.start(wf, { trail: [] });
    await clock.advance('1m');
    const result = await handle.result();
    expect(result.status).toBe('rolled_back');
    expect(result.error?.code).toBe('UNAVAILABLE');
    expect(calls).toHaveLength(3);
    expect(log).toEqual(['A.run', 'A.rollback']);
  });

  it('fails at once and rolls back on a non-retryable error code', async () => {
    const calls: Call[] = [];
    const log: Log = [];
    const wf = defineWorkflow<TestState>({
      name: 'non-retryable',
      steps: [
        recordingStep('A', log),
        flaky('charge', 9, calls, 'CARD_DECLINED', { retry: { maxAttempts: 5, initialDelay: '1s', nonRetryable: ['CARD_DECLINED'] } }),
      ],
    });
    const { runtime } = testRuntime({ workflows: [wf] });
    const result = await (await runtime.start(wf, { trail: [] })).result();
    expect(result.status).toBe('rolled_back');
    expect(calls).toHaveLength(1);
    expect(log).toEqual(['A.run', 'A.rollback']);
  });

  it('asks a predicate whether an error may be retried', async () => {
    const calls: Call[] = [];
    const wf = defineWorkflow<TestState>({
      name: 'predicate',
      steps: [flaky('charge', 9, calls, 'HTTP_404', { retry: { maxAttempts: 5, nonRetryable: (e: { code: string }) => e.code.startsWith('HTTP_4') } })],
    });
    const { runtime } = testRuntime({ workflows: [wf] });
    expect((await (await runtime.start(wf, { trail: [] })).result()).status).toBe('rolled_back');
    expect(calls).toHaveLength(1);
  });

  it('continues at the next attempt after a restart between attempts', async () => {
    const calls: Call[] = [];
    const wf = defineWorkflow<TestState>({ name: 'retry-restart', steps: [flaky('charge', 2, calls)] });
    const store = new MemoryStore();
    const first = testRuntime({ workflows: [wf], store });
    await first.runtime.start(wf, { trail: [] }, { id: 'rr' });
    await first.clock.advance('1s');
    expect(calls.map((c) => c.attempt)).toEqual([1, 2]);
    await first.runtime.close();
    const record = store.exportJson('rr')!;
    const fresh = new MemoryStore();
    fresh.importJson(record);
    const second = testRuntime({ workflows: [wf], store: fresh, clock: first.clock });
    await second.runtime.start();
    await second.clock.advance('2s');
    expect((await second.runtime.handle('rr').result()).status).toBe('completed');
    expect(calls.map((c) => c.attempt)).toEqual([1, 2, 3]);
    expect(calls[2]?.key).toBe('rr:charge:up:3');
  });

  it('uses the runtime defaults for steps without a policy of their own', async () => {
    let tries = 0;
    const wf = defineWorkflow<TestState>({
      name: 'defaults',
      steps: [recordingStep('S', [], { run: (s) => (++tries < 2 ? fail('flaky', s) : ok(s)) })],
    });
    const { runtime, clock } = testRuntime({ workflows: [wf], defaults: { retry: { maxAttempts: 2, backoff: 'fixed', initialDelay: '5s' } } });
    const handle = await runtime.start(wf, { trail: [] });
    await clock.advance('5s');
    expect((await handle.result()).status).toBe('completed');
    expect(tries).toBe(2);
  });

  it('retries a failing rollback under its own policy', async () => {
    let undoTries = 0;
    const log: Log = [];
    @Step({ name: 'refund', rollbackRetry: { maxAttempts: 2, backoff: 'fixed', initialDelay: '10s' } })
    class Refund extends BaseStep<TestState> {
      override rollback(state: TestState): StepResult<TestState> {
        log.push('refund.rollback');
        return ++undoTries < 2 ? fail('gateway down', state) : ok(state);
      }
    }
    const wf = defineWorkflow<TestState>({ name: 'undo-retry', steps: [Refund, recordingStep('E', log, { run: (s) => fail('boom', s) })] });
    const { runtime, clock } = testRuntime({ workflows: [wf] });
    const handle = await runtime.start(wf, { trail: [] });
    await clock.advance('10s');
    expect((await handle.result()).status).toBe('rolled_back');
    expect(log).toEqual(['E.run', 'E.rollback', 'refund.rollback', 'refund.rollback']);
  });

  it('retries a failing runHandleInfo with the same event', async () => {
    const seen: string[] = [];
    @Step({ name: 'await-payment', retry: { maxAttempts: 2, backoff: 'fixed', initialDelay: '1s' } })
    class AwaitPayment extends BaseStep<TestState> {
      override run(state: TestState) {
        return { kind: 'continue' as const, state, wait: { topic: 'paid' } };
      }
      override runHandleInfo(event: { id: string }, state: TestState): StepResult<TestState> {
        seen.push(event.id);
        return seen.length < 2 ? fail('ledger busy', state) : ok(state);
      }
    }
    const wf = defineWorkflow<TestState>({ name: 'handle-retry', steps: [AwaitPayment] });
    const { runtime, clock } = testRuntime({ workflows: [wf] });
    const handle = await runtime.start(wf, { trail: [] });
    await runtime.idle();
    await runtime.publish({ topic: 'paid', id: 'evt-7' });
    await clock.advance('1s');
    expect((await handle.result()).status).toBe('completed');
    expect(seen).toEqual(['evt-7', 'evt-7']);
  });

  it('shows observers each attempt with its number and the delay before it, and records the retry in the history', async () => {
    const calls: Call[] = [];
    const o = new RecordingObserver('O');
    const wf = defineWorkflow<TestState>({ name: 'observed-retry', steps: [flaky('charge', 1, calls)], observers: [o] });
    const { runtime, clock } = testRuntime({ workflows: [wf] });
    const handle = await runtime.start(wf, { trail: [] });
    await clock.advance('1s');
    await handle.result();
    const befores = o.calls.filter((c) => c.hook === 'handleBeforeStep').map((c) => [c.flow.attempt, c.flow.retryDelay]);
    expect(befores).toEqual([
      [1, null],
      [2, 1_000],
    ]);
    const history = await runtime.history(handle.id);
    expect(history.filter((h) => h.kind === 'retry-scheduled').map((h) => h.note)).toEqual(['attempt 2 in 1000 ms']);
    expect(history.filter((h) => h.kind === 'step-result').map((h) => `${h.step} ${h.attempt} ${h.outcome ?? ''} ${h.code ?? ''}`.trim())).toEqual([
      'charge 1 error UNAVAILABLE',
      'charge 2 ok',
    ]);
  });
});
