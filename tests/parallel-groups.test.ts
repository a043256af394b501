import {
  branch,
  defineWorkflow,
  error as fail,
  goto,
  MemoryStore,
  ok,
  parallel,
  parallelOk,
  parallelResult,
  parallelResults,
  PARALLEL_RESULTS_KEY,
  type ParallelResults,
  type StepContext,
} from '../src';
import { flushMicrotasks, RecordingObserver } from '../src/testing';
import { fails, recordingStep, waitsFor, type Log, type TestState } from './support/steps';
import { testRuntime } from './support/runtime';

/** A promise the test opens when it wants a step to go on. */
interface Gate {
  readonly opened: Promise<void>;
  open(): void;
}

function gate(): Gate {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => (open = resolve));
  return { opened, open };
}

/** Resolves with the abort reason once the step's AbortSignal fires. */
function aborted(ctx: StepContext): Promise<unknown> {
  return new Promise((resolve) => {
    if (ctx.signal.aborted) resolve(ctx.signal.reason);
    else ctx.signal.addEventListener('abort', () => resolve(ctx.signal.reason), { once: true });
  });
}

/** The code of an abort reason (the engine aborts with a serialised error). */
function codeOf(reason: unknown): unknown {
  return typeof reason === 'object' && reason !== null ? (reason as { code?: unknown }).code : reason;
}

/** Copies of the state every rollback received, by step name. */
type Received = Record<string, TestState>;

function remembers(received: Received, name: string) {
  return (state: TestState) => {
    received[name] = structuredClone(state);
    return ok(state);
  };
}

/** A step that marks its own field in the state, so a sibling seeing it would show. */
function marks(field: string) {
  return (state: TestState) => ok({ ...state, [field]: true });
}

describe('a parallel group', () => {
  it('runs each branch on its own copy of the state and hands the next step their tagged results', async () => {
    const log: Log = [];
    const seenByBranch: Record<string, TestState> = {};
    let resultsSeenByT: ParallelResults | undefined;
    let readByT: unknown;
    const branchStep = (name: string) =>
      recordingStep(name, log, {
        run: (state) => {
          seenByBranch[name] = structuredClone(state);
          // Mutating a nested object in place must not reach the siblings.
          (state.shared as { touchedBy: string[] }).touchedBy.push(name);
          return ok({ ...state, [name.toLowerCase()]: `${name}-done` });
        },
      });
    const wf = defineWorkflow<TestState>({
      name: 'all-ok',
      steps: [
        recordingStep('S', log, { run: (state) => ok({ ...state, fromS: 1, shared: { touchedBy: [] } }) }),
        parallel('G', [branchStep('A'), branchStep('B'), branchStep('C')]),
        recordingStep('T', log, {
          run: (state) => {
            resultsSeenByT = parallelResults(state);
            readByT = { b: parallelResult(state, 'B'), aOk: parallelOk(state, 'A'), missing: parallelResult(state, 'Z'), missingOk: parallelOk(state, 'Z') };
            return ok(state);
          },
        }),
      ],
    });
    const { runtime } = testRuntime({ workflows: [wf] });
    const result = await (await runtime.start(wf, { trail: [] })).result();

    expect(result.status).toBe('completed');
    expect(log).toEqual(['S.run', 'A.run', 'B.run', 'C.run', 'T.run']);
    for (const name of ['A', 'B', 'C']) {
      expect(seenByBranch[name]).toEqual({ trail: ['S.run', `${name}.run`], fromS: 1, shared: { touchedBy: [] } });
    }
    expect(Object.keys(resultsSeenByT ?? {})).toEqual(['A', 'B', 'C']);
    expect(resultsSeenByT?.A).toEqual({ ok: true, value: { trail: ['S.run', 'A.run'], fromS: 1, shared: { touchedBy: ['A'] }, a: 'A-done' } });
    expect(resultsSeenByT?.C).toEqual({ ok: true, value: { trail: ['S.run', 'C.run'], fromS: 1, shared: { touchedBy: ['C'] }, c: 'C-done' } });
    expect(readByT).toEqual({
      b: { ok: true, value: { trail: ['S.run', 'B.run'], fromS: 1, shared: { touchedBy: ['B'] }, b: 'B-done' } },
      aOk: true,
      missing: undefined,
      missingOk: false,
    });
    expect(result.state.trail).toEqual(['S.run', 'T.run']);
    expect(result.state.shared).toEqual({ touchedBy: [] });
  });

  it('keys the results by each branch name or its returns key, and names sequences after their steps', async () => {
    const log: Log = [];
    let keys: string[] = [];
    const wf = defineWorkflow<TestState>({
      name: 'keys',
      steps: [
        parallel('G', [
          recordingStep('A', log),
          branch('billing', recordingStep('Bill', log), { returns: 'invoice' }),
          branch('mail', recordingStep('Mail', log)),
          [recordingStep('X1', log), recordingStep('X2', log)],
        ]),
        recordingStep('T', log, {
          run: (state) => {
            keys = Object.keys(parallelResults(state));
            return ok(state);
          },
        }),
      ],
    });
    const { runtime } = testRuntime({ workflows: [wf] });
    const result = await (await runtime.start(wf, { trail: [] })).result();
    expect(result.status).toBe('completed');
    expect(keys).toEqual(['A', 'invoice', 'mail', 'X1+X2']);
  });

  it('merges the results of a later group with those of an earlier one', async () => {
    const log: Log = [];
    const wf = defineWorkflow<TestState>({
      name: 'two-groups',
      steps: [parallel('G1', [recordingStep('A', log), recordingStep('B', log)]), parallel('G2', [recordingStep('C', log)])],
    });
    const { runtime } = testRuntime({ workflows: [wf] });
    const result = await (await runtime.start(wf, { trail: [] })).result();
    expect(Object.keys(parallelResults(result.state))).toEqual(['A', 'B', 'C']);
    expect(log).toEqual(['A.run', 'B.run', 'C.run']);
  });

  describe('with onError failFast (the default)', () => {
    it('never runs a branch again that was waiting for its next retry when a sibling failed, while the group settles', async () => {
      const log: Log = [];
      const bMayFail = gate();
      const cMayFinish = gate();
      const wf = defineWorkflow<TestState>({
        name: 'retry-then-settle',
        steps: [
          parallel('G', [
            recordingStep('A', log, { run: fails('FLAKY') }, { retry: { maxAttempts: 3, backoff: 'fixed', initialDelay: '10s' } }),
            recordingStep('B', log, {
              run: async (state) => {
                await bMayFail.opened;
                return fail({ code: 'CARD_DECLINED', message: 'declined' }, state);
              },
            }),
            recordingStep('C', log, {
              run: async (state) => {
                await cMayFinish.opened;
                return ok(state);
              },
            }),
          ]),
        ],
      });
      const { runtime, clock } = testRuntime({ workflows: [wf] });
      const handle = await runtime.start(wf, { trail: [] });
      await flushMicrotasks();
      expect((await runtime.history(handle.id)).map((h) => h.kind)).toContain('retry-scheduled');
      bMayFail.open();
      await flushMicrotasks();
      // The group now settles: C is still in flight, and A's retry time comes.
      await clock.advance('1m');
      await flushMicrotasks();
      cMayFinish.open();
      const result = await handle.result();
      expect(result.status).toBe('rolled_back');
      expect(result.error?.code).toBe('CARD_DECLINED');
      expect(log.filter((l) => l === 'A.run')).toHaveLength(1);
      expect([...log].sort()).toEqual(['A.rollback', 'A.run', 'B.rollback', 'B.run', 'C.rollback', 'C.run']);
    });

    it('aborts the running branches, starts no more, waits for them to settle, then compensates each with its own state and the steps before', async () => {
      const log: Log = [];
      const received: Received = {};
      const bMayFail = gate();
      const wf = defineWorkflow<TestState>({
        name: 'fail-fast',
        steps: [
          recordingStep('S', log, { rollback: remembers(received, 'S') }),
          parallel(
            'G',
            [
              recordingStep('A', log, {
                run: async (state, ctx) => {
                  const reason = await aborted(ctx);
                  log.push(`A saw its signal fire with ${String(codeOf(reason))}`);
                  return fail({ code: 'STOPPED', message: 'stopped early' }, { ...state, a: 'half-done' });
                },
                rollback: remembers(received, 'A'),
              }),
              recordingStep('B', log, {
                run: async (state) => {
                  await bMayFail.opened;
                  return fail({ code: 'CARD_DECLINED', message: 'declined' }, { ...state, b: 'charged-nothing' });
                },
                rollback: remembers(received, 'B'),
              }),
              recordingStep('C', log),
            ],
            { maxConcurrency: 2 },
          ),
          recordingStep('T', log),
        ],
      });
      const { runtime } = testRuntime({ workflows: [wf] });
      const handle = await runtime.start(wf, { trail: [] });
      await flushMicrotasks();
      expect(log).toEqual(['S.run', 'A.run', 'B.run']);

      bMayFail.open();
      const result = await handle.result();

      expect(result.status).toBe('rolled_back');
      expect(result.error).toMatchObject({ code: 'CARD_DECLINED', message: 'declined' });
      expect(log).toEqual(['S.run', 'A.run', 'B.run', 'A saw its signal fire with CARD_DECLINED', 'A.rollback', 'B.rollback', 'S.rollback']);
      expect(received.A).toEqual({ trail: ['S.run', 'A.run', 'A.rollback'], a: 'half-done' });
      expect(received.B).toEqual({ trail: ['S.run', 'B.run', 'B.rollback'], b: 'charged-nothing' });
      expect(received.S).toEqual({ trail: ['S.run', 'S.rollback'] });
    });

    it('fails the group when a branch returns goto, which is not allowed inside a branch', async () => {
      const log: Log = [];
      const wf = defineWorkflow<TestState>({
        name: 'goto-in-branch',
        steps: [
          recordingStep('S', log),
          parallel('G', [recordingStep('A', log, { run: (state) => goto('T', state) })]),
          recordingStep('T', log),
        ],
      });
      const { runtime } = testRuntime({ workflows: [wf] });
      const result = await (await runtime.start(wf, { trail: [] })).result();
      expect(result.status).toBe('rolled_back');
      expect(result.error).toMatchObject({ code: 'GOTO_NOT_ALLOWED', details: { target: 'T' } });
      expect(log).toEqual(['S.run', 'A.run', 'A.rollback', 'S.rollback']);
    });

    it('undoes a failing sequence branch from its failing step back to its first, inside that branch', async () => {
      const log: Log = [];
      const received: Received = {};
      const wf = defineWorkflow<TestState>({
        name: 'sequence-branch',
        steps: [
          recordingStep('S', log),
          parallel(
            'G',
            [
              recordingStep('A', log),
              branch('B', [
                recordingStep('B1', log, { run: marks('b1'), rollback: remembers(received, 'B1') }),
                recordingStep('B2', log, { run: fails('B2_FAILED'), rollback: remembers(received, 'B2') }),
              ]),
            ],
            { compensation: 'sequential' },
          ),
          recordingStep('T', log),
        ],
      });
      const { runtime } = testRuntime({ workflows: [wf] });
      const result = await (await runtime.start(wf, { trail: [] })).result();
      expect(result.status).toBe('rolled_back');
      expect(result.error?.code).toBe('B2_FAILED');
      // B settled last (it failed after A succeeded), so it is undone first: B2, then B1, then A.
      expect(log).toEqual(['S.run', 'A.run', 'B1.run', 'B2.run', 'B2.rollback', 'B1.rollback', 'A.rollback', 'S.rollback']);
      expect(received.B2).toEqual({ trail: ['S.run', 'B1.run', 'B2.run', 'B2.rollback'], b1: true });
      expect(received.B1).toEqual({ trail: ['S.run', 'B1.run', 'B2.run', 'B2.rollback', 'B1.rollback'], b1: true });
    });
  });

  describe('with onError completeAll', () => {
    it('lets every branch settle, undoes the failed one, and hands its error to the next step', async () => {
      const log: Log = [];
      let bSeenByT: unknown;
      let okSeenByT: unknown;
      const wf = defineWorkflow<TestState>({
        name: 'complete-all',
        steps: [
          recordingStep('S', log),
          parallel('G', [recordingStep('A', log), recordingStep('B', log, { run: fails('NO_WORKSPACE', 'no room') }), recordingStep('C', log)], {
            onError: 'completeAll',
          }),
          recordingStep('T', log, {
            run: (state) => {
              bSeenByT = parallelResult(state, 'B');
              okSeenByT = ['A', 'B', 'C'].map((k) => parallelOk(state, k));
              return ok(state);
            },
          }),
        ],
      });
      const { runtime } = testRuntime({ workflows: [wf] });
      const result = await (await runtime.start(wf, { trail: [] })).result();
      expect(result.status).toBe('completed');
      expect(log).toEqual(['S.run', 'A.run', 'B.run', 'C.run', 'B.rollback', 'T.run']);
      expect(bSeenByT).toEqual({ ok: false, error: { code: 'NO_WORKSPACE', name: 'Error', message: 'no room' } });
      expect(okSeenByT).toEqual([true, false, true]);
    });

    it('does not compensate the failed branch a second time when a later step fails', async () => {
      const log: Log = [];
      const wf = defineWorkflow<TestState>({
        name: 'complete-all-later-failure',
        steps: [
          recordingStep('S', log),
          parallel('G', [recordingStep('A', log), recordingStep('B', log, { run: fails() })], { onError: 'completeAll' }),
          recordingStep('T', log, { run: fails('LATER') }),
        ],
      });
      const { runtime } = testRuntime({ workflows: [wf] });
      const result = await (await runtime.start(wf, { trail: [] })).result();
      expect(result.status).toBe('rolled_back');
      expect(log).toEqual(['S.run', 'A.run', 'B.run', 'B.rollback', 'T.run', 'T.rollback', 'A.rollback', 'S.rollback']);
    });
  });

  describe('with into', () => {
    it('skips to the named step when into returns goto, and adds no results key', async () => {
      const log: Log = [];
      let intoSaw: { state: unknown; results: unknown } | undefined;
      const wf = defineWorkflow<TestState>({
        name: 'into-goto',
        steps: [
          recordingStep('S', log),
          parallel('G', [recordingStep('A', log, { run: marks('a') }), recordingStep('B', log)], {
            into: (state: TestState, results) => {
              intoSaw = { state: structuredClone(state), results: structuredClone(results) };
              return goto('U', { ...state, okCount: Object.values(results).filter((r) => r.ok).length });
            },
            goto: ['U'],
          }),
          recordingStep('T', log),
          recordingStep('U', log),
        ],
      });
      const { runtime } = testRuntime({ workflows: [wf] });
      const result = await (await runtime.start(wf, { trail: [] })).result();
      expect(result.status).toBe('completed');
      expect(log).toEqual(['S.run', 'A.run', 'B.run', 'U.run']);
      expect(intoSaw).toEqual({
        state: { trail: ['S.run'] },
        results: { A: { ok: true, value: { trail: ['S.run', 'A.run'], a: true } }, B: { ok: true, value: { trail: ['S.run', 'B.run'] } } },
      });
      expect(result.state).toEqual({ trail: ['S.run', 'U.run'], okCount: 2 });
      expect(PARALLEL_RESULTS_KEY in result.state).toBe(false);
    });

    it('replaces the default merge with the state into returns', async () => {
      const log: Log = [];
      let seenByT: TestState | undefined;
      const wf = defineWorkflow<TestState>({
        name: 'into-ok',
        steps: [
          parallel('G', [recordingStep('A', log), recordingStep('B', log)], { into: (state: TestState, results) => ok({ ...state, keys: Object.keys(results) }) }),
          recordingStep('T', log, {
            run: (state) => {
              seenByT = structuredClone(state);
              return ok(state);
            },
          }),
        ],
      });
      const { runtime } = testRuntime({ workflows: [wf] });
      await (await runtime.start(wf, { trail: [] })).result();
      expect(seenByT).toEqual({ trail: ['T.run'], keys: ['A', 'B'] });
    });

    it('rolls back every branch and the steps before when into returns error', async () => {
      const log: Log = [];
      const wf = defineWorkflow<TestState>({
        name: 'into-error',
        steps: [
          recordingStep('S', log),
          parallel('G', [recordingStep('A', log), recordingStep('B', log)], {
            into: () => fail({ code: 'NOT_ENOUGH', message: 'the results were not good enough' }),
          }),
          recordingStep('T', log),
        ],
      });
      const { runtime } = testRuntime({ workflows: [wf] });
      const result = await (await runtime.start(wf, { trail: [] })).result();
      expect(result.status).toBe('rolled_back');
      expect(result.error?.code).toBe('NOT_ENOUGH');
      // A settled first, B second: compensation starts in reverse settle order.
      expect(log).toEqual(['S.run', 'A.run', 'B.run', 'B.rollback', 'A.rollback', 'S.rollback']);
    });

    it('rolls back when into throws or jumps to a step that does not exist', async () => {
      const log: Log = [];
      const wf = (name: string, into: () => never) =>
        defineWorkflow<TestState>({ name, steps: [recordingStep(`S-${name}`, log), parallel('G', [recordingStep(`A-${name}`, log)], { into }), recordingStep(`T-${name}`, log)] });
      const throwing = wf('throws', () => {
        throw Object.assign(new Error('into broke'), { code: 'INTO_BROKE' });
      });
      const nowhere = wf('nowhere', () => goto('no-such-step', {}) as never);
      const { runtime } = testRuntime({ workflows: [throwing, nowhere] });
      const first = await (await runtime.start(throwing, { trail: [] })).result();
      const second = await (await runtime.start(nowhere, { trail: [] })).result();
      expect([first.status, first.error?.code]).toEqual(['rolled_back', 'INTO_BROKE']);
      expect([second.status, second.error?.code]).toEqual(['rolled_back', 'UNKNOWN_GOTO_TARGET']);
      expect(log).toEqual([
        'S-throws.run',
        'A-throws.run',
        'A-throws.rollback',
        'S-throws.rollback',
        'S-nowhere.run',
        'A-nowhere.run',
        'A-nowhere.rollback',
        'S-nowhere.rollback',
      ]);
    });
  });

  describe("with join 'any'", () => {
    it('lets the first branch to succeed win, aborts the others, compensates them and goes on', async () => {
      const log: Log = [];
      const bMayFinish = gate();
      const slow = (name: string) =>
        recordingStep(name, log, {
          run: async (state, ctx) => {
            const reason = await aborted(ctx);
            log.push(`${name} saw its signal fire with ${String(codeOf(reason))}`);
            return ok(state);
          },
        });
      let seenByT: ParallelResults | undefined;
      const wf = defineWorkflow<TestState>({
        name: 'join-any',
        steps: [
          recordingStep('S', log),
          parallel(
            'G',
            [
              slow('A'),
              recordingStep('B', log, {
                run: async (state) => {
                  await bMayFinish.opened;
                  return ok({ ...state, quote: 42 });
                },
              }),
              slow('C'),
            ],
            { join: 'any' },
          ),
          recordingStep('T', log, {
            run: (state) => {
              seenByT = parallelResults(state);
              return ok(state);
            },
          }),
        ],
      });
      const { runtime } = testRuntime({ workflows: [wf] });
      const handle = await runtime.start(wf, { trail: [] });
      await flushMicrotasks();
      expect(log).toEqual(['S.run', 'A.run', 'B.run', 'C.run']);
      bMayFinish.open();
      const result = await handle.result();
      expect(result.status).toBe('completed');
      expect(log).toEqual([
        'S.run',
        'A.run',
        'B.run',
        'C.run',
        'A saw its signal fire with ABORTED',
        'C saw its signal fire with ABORTED',
        'C.rollback',
        'A.rollback',
        'T.run',
      ]);
      expect(seenByT?.B).toEqual({ ok: true, value: { trail: ['S.run', 'B.run'], quote: 42 } });
      expect(seenByT?.A).toMatchObject({ ok: false, error: { code: 'ABORTED' } });
      expect(seenByT?.C).toMatchObject({ ok: false, error: { code: 'ABORTED' } });
    });

    it('compensates only the winning branch when a later step fails', async () => {
      const log: Log = [];
      const wf = defineWorkflow<TestState>({
        name: 'join-any-later-failure',
        steps: [
          recordingStep('S', log),
          parallel('G', [recordingStep('A', log, { run: fails('A_DOWN') }), recordingStep('B', log), recordingStep('C', log, { run: fails('C_DOWN') })], { join: 'any' }),
          recordingStep('T', log, { run: fails('LATER') }),
        ],
      });
      const { runtime } = testRuntime({ workflows: [wf] });
      const result = await (await runtime.start(wf, { trail: [] })).result();
      expect(result.status).toBe('rolled_back');
      // A, B and C settle in that order; A and C failed, so they are undone (C first), B won.
      expect(log).toEqual(['S.run', 'A.run', 'B.run', 'C.run', 'C.rollback', 'A.rollback', 'T.run', 'T.rollback', 'B.rollback', 'S.rollback']);
    });

    it('fails with ALL_BRANCHES_FAILED listing every error when no branch succeeds', async () => {
      const log: Log = [];
      const wf = defineWorkflow<TestState>({
        name: 'join-any-none',
        steps: [
          recordingStep('S', log),
          parallel('G', [recordingStep('A', log, { run: fails('A_DOWN', 'a is down') }), recordingStep('B', log, { run: fails('B_DOWN', 'b is down') })], {
            join: 'any',
          }),
          recordingStep('T', log),
        ],
      });
      const { runtime } = testRuntime({ workflows: [wf] });
      const result = await (await runtime.start(wf, { trail: [] })).result();
      expect(result.status).toBe('rolled_back');
      expect(result.error).toMatchObject({
        code: 'ALL_BRANCHES_FAILED',
        details: {
          errors: [
            { branch: 'A', error: { code: 'A_DOWN', name: 'Error', message: 'a is down' } },
            { branch: 'B', error: { code: 'B_DOWN', name: 'Error', message: 'b is down' } },
          ],
        },
      });
      expect(log).toEqual(['S.run', 'A.run', 'B.run', 'B.rollback', 'A.rollback', 'S.rollback']);
    });
  });

  describe('when a step after the group fails', () => {
    /** [S, G(A, B, C), T]: the branches settle in the order B, C, A; T fails. */
    function laterFailure(name: string, log: Log, received: Received, compensation: 'parallel' | 'sequential', rollbacksMayEnd?: Gate) {
      const order = [gate(), gate(), gate()];
      const settlesAs = (field: string, turn: number) => async (state: TestState) => {
        await order[turn]!.opened;
        return ok({ ...state, [field]: true });
      };
      const undo = (step: string) => async (state: TestState) => {
        received[step] = structuredClone(state);
        if (rollbacksMayEnd !== undefined) await rollbacksMayEnd.opened;
        else await Promise.resolve();
        log.push(`${step}.rollback ended`);
        return ok(state);
      };
      const wf = defineWorkflow<TestState>({
        name,
        steps: [
          recordingStep('S', log, { rollback: remembers(received, 'S') }),
          parallel(
            'G',
            [
              recordingStep('A', log, { run: settlesAs('a', 2), rollback: undo('A') }),
              recordingStep('B', log, { run: settlesAs('b', 0), rollback: undo('B') }),
              recordingStep('C', log, { run: settlesAs('c', 1), rollback: undo('C') }),
            ],
            { compensation },
          ),
          recordingStep('T', log, { run: fails('LATER'), rollback: remembers(received, 'T') }),
        ],
      });
      const settleInOrder = async (): Promise<void> => {
        for (const turn of order) {
          turn.open();
          await flushMicrotasks();
        }
      };
      return { wf, settleInOrder };
    }

    it('undoes T, then every branch at once with its own output, in reverse settle order, then S', async () => {
      const log: Log = [];
      const received: Received = {};
      const rollbacksMayEnd = gate();
      const { wf, settleInOrder } = laterFailure('later-parallel', log, received, 'parallel', rollbacksMayEnd);
      const { runtime } = testRuntime({ workflows: [wf] });
      const handle = await runtime.start(wf, { trail: [] });
      await settleInOrder();
      // All three rollbacks started before any ended: they run at once.
      expect(log).toEqual(['S.run', 'A.run', 'B.run', 'C.run', 'T.run', 'T.rollback', 'A.rollback', 'C.rollback', 'B.rollback']);
      rollbacksMayEnd.open();
      const result = await handle.result();
      expect(result.status).toBe('rolled_back');
      expect(result.error?.code).toBe('LATER');
      expect(log.slice(9)).toEqual(['A.rollback ended', 'C.rollback ended', 'B.rollback ended', 'S.rollback']);
      expect(received.T).toMatchObject({ trail: ['S.run', 'T.run', 'T.rollback'] });
      expect(received.A).toEqual({ trail: ['S.run', 'A.run', 'A.rollback'], a: true });
      expect(received.B).toEqual({ trail: ['S.run', 'B.run', 'B.rollback'], b: true });
      expect(received.C).toEqual({ trail: ['S.run', 'C.run', 'C.rollback'], c: true });
      // S gets the main line's state as T's rollback left it (the branches' outputs live in the results).
      expect(received.S?.trail).toEqual(['S.run', 'T.run', 'T.rollback', 'S.rollback']);
    });

    it('undoes the branches one at a time in reverse completion order when compensation is sequential', async () => {
      const log: Log = [];
      const received: Received = {};
      const { wf, settleInOrder } = laterFailure('later-sequential', log, received, 'sequential');
      const { runtime } = testRuntime({ workflows: [wf] });
      const handle = await runtime.start(wf, { trail: [] });
      await settleInOrder();
      const result = await handle.result();
      expect(result.status).toBe('rolled_back');
      expect(log).toEqual([
        'S.run',
        'A.run',
        'B.run',
        'C.run',
        'T.run',
        'T.rollback',
        'A.rollback',
        'A.rollback ended',
        'C.rollback',
        'C.rollback ended',
        'B.rollback',
        'B.rollback ended',
        'S.rollback',
      ]);
      expect(received.A).toEqual({ trail: ['S.run', 'A.run', 'A.rollback'], a: true });
      expect(received.C).toEqual({ trail: ['S.run', 'C.run', 'C.rollback'], c: true });
    });
  });

  describe('with branches that wait for events', () => {
    it('parks the group until a continued branch gets its event, then goes on', async () => {
      const log: Log = [];
      const wf = defineWorkflow<TestState>({
        name: 'branch-waits',
        steps: [
          recordingStep('S', log),
          parallel('G', [
            recordingStep('A', log, {
              run: waitsFor('workspace.ready', { team: 't-1' }),
              runHandleInfo: (state, _ctx, event) => ok({ ...state, workspace: event?.payload.workspace }),
            }),
            recordingStep('B', log),
          ]),
          recordingStep('T', log),
        ],
      });
      const { runtime } = testRuntime({ workflows: [wf] });
      const handle = await runtime.start(wf, { trail: [] });
      await runtime.idle();
      expect((await runtime.get(handle.id)).status).toBe('waiting');
      expect(log).toEqual(['S.run', 'A.run', 'B.run']);
      expect((await runtime.publish({ topic: 'workspace.ready', payload: { team: 't-2' } })).delivered).toBe(0);
      expect((await runtime.publish({ topic: 'workspace.ready', payload: { team: 't-1', workspace: 'w-7' } })).delivered).toBe(1);
      const result = await handle.result();
      expect(result.status).toBe('completed');
      expect(log).toEqual(['S.run', 'A.run', 'B.run', 'A.runHandleInfo', 'T.run']);
      expect(parallelResult(result.state, 'A')).toEqual({ ok: true, value: { trail: ['S.run', 'A.run', 'A.runHandleInfo'], workspace: 'w-7' } });
    });

    it('fails fast when a branch wait times out: a waiting sibling is aborted at once and every branch is undone', async () => {
      const log: Log = [];
      const wf = defineWorkflow<TestState>({
        name: 'branch-timeout',
        steps: [
          recordingStep('S', log),
          parallel('G', [
            recordingStep('A', log, { run: waitsFor('a.done', {}, '5m') }),
            recordingStep('B', log),
            recordingStep('C', log, { run: waitsFor('c.done') }),
          ]),
          recordingStep('T', log),
        ],
      });
      const { runtime, clock } = testRuntime({ workflows: [wf] });
      const handle = await runtime.start(wf, { trail: [] });
      await runtime.idle();
      await clock.advance('4m');
      expect(log).toEqual(['S.run', 'A.run', 'B.run', 'C.run']);
      await clock.advance('1m');
      const result = await handle.result();
      expect(result.status).toBe('rolled_back');
      expect(result.error?.code).toBe('TIMEOUT');
      // B settled first, then A timed out, then C was aborted: C, A, B are undone in that order.
      expect(log).toEqual(['S.run', 'A.run', 'B.run', 'C.run', 'C.rollback', 'A.rollback', 'B.rollback', 'S.rollback']);
      expect((await runtime.publish({ topic: 'c.done' })).delivered).toBe(0);
    });

    it('resumes a waiting group from its record round-tripped through JSON in a new runtime', async () => {
      const log: Log = [];
      const wf = () =>
        defineWorkflow<TestState>({
          name: 'durable-group',
          steps: [
            recordingStep('S', log),
            parallel('G', [
              recordingStep('A', log, { run: waitsFor('a.done', { k: 1 }) }),
              [recordingStep('B1', log, { run: marks('b1') }), recordingStep('B2', log, { run: waitsFor('b.done', { k: 2 }) })],
              recordingStep('C', log),
            ]),
            recordingStep('T', log),
          ],
        });
      const first = testRuntime({ workflows: [wf()] });
      const handle = await first.runtime.start('durable-group', { trail: [] }, { id: 'g-1' });
      await first.runtime.idle();
      const json = (first.runtime.store as MemoryStore).exportJson('g-1')!;
      await first.runtime.close();

      const stored = JSON.parse(json) as { flow: { status: string }; group: { branches: { key: string; phase: string; flow: { wait: unknown; stack: unknown[] } }[] } };
      expect(stored.flow.status).toBe('waiting');
      expect(stored.group.branches.map((b) => [b.key, b.phase, b.flow.wait !== null, b.flow.stack.length])).toEqual([
        ['A', 'running', true, 1],
        ['B1+B2', 'running', true, 2],
        ['C', 'succeeded', false, 1],
      ]);

      const store = new MemoryStore();
      store.importJson(json);
      const second = testRuntime({ workflows: [wf()], store });
      await second.runtime.start();
      expect((await second.runtime.publish({ topic: 'b.done', payload: { k: 2 } })).delivered).toBe(1);
      expect((await second.runtime.publish({ topic: 'a.done', payload: { k: 1 } })).delivered).toBe(1);
      const result = await second.runtime.handle(handle.id).result();
      expect(result.status).toBe('completed');
      expect(log).toEqual(['S.run', 'A.run', 'B1.run', 'C.run', 'B2.run', 'B2.runHandleInfo', 'A.runHandleInfo', 'T.run']);
      expect(parallelResult(result.state, 'B1+B2')).toEqual({ ok: true, value: { trail: ['S.run', 'B1.run', 'B2.run', 'B2.runHandleInfo'], b1: true } });
    });
  });

  describe('after a restart', () => {
    /** Moves an instance's stored record into a fresh store, as a process that stopped and started again would find it. */
    function restartedStore(runtime: { store: unknown }, id: string): MemoryStore {
      const store = new MemoryStore();
      store.importJson((runtime.store as MemoryStore).exportJson(id)!);
      return store;
    }

    it('calls again the branch step that was in flight, with the same idempotency key', async () => {
      const log: Log = [];
      const keys: string[] = [];
      let hangs = true;
      const wf = defineWorkflow<TestState>({
        name: 'group-in-flight',
        steps: [
          recordingStep('S', log),
          parallel('G', [
            recordingStep('A', log),
            recordingStep('B', log, {
              run: (state, ctx) => {
                keys.push(ctx.idempotencyKey);
                return hangs ? new Promise(() => undefined) : ok({ ...state, b: true });
              },
            }),
          ]),
          recordingStep('T', log),
        ],
      });
      const first = testRuntime({ workflows: [wf] });
      await first.runtime.start(wf, { trail: [] }, { id: 'f-1' });
      await flushMicrotasks();
      const store = restartedStore(first.runtime, 'f-1');
      await first.runtime.close();

      hangs = false;
      const second = testRuntime({ workflows: [wf], store });
      await second.runtime.start();
      const result = await second.runtime.handle('f-1').result();
      expect(result.status).toBe('completed');
      expect(log).toEqual(['S.run', 'A.run', 'B.run', 'B.run', 'T.run']);
      expect(keys).toEqual(['f-1:B:up:1', 'f-1:B:up:1']);
      expect(parallelResult(result.state, 'B')).toEqual({ ok: true, value: { trail: ['S.run', 'B.run'], b: true } });
    });

    it('aborts again a branch that was still settling after a failure, then undoes the group', async () => {
      const log: Log = [];
      let firstProcess = true;
      const wf = defineWorkflow<TestState>({
        name: 'group-settling',
        steps: [
          recordingStep('S', log),
          parallel('G', [
            recordingStep('A', log, {
              run: async (state, ctx) => {
                if (firstProcess) return new Promise(() => undefined);
                const reason = await aborted(ctx);
                log.push(`A saw its signal fire with ${String(codeOf(reason))}`);
                return fail('stopped', state);
              },
            }),
            recordingStep('B', log, { run: fails('CARD_DECLINED') }),
          ]),
          recordingStep('T', log),
        ],
      });
      const first = testRuntime({ workflows: [wf] });
      await first.runtime.start(wf, { trail: [] }, { id: 's-1' });
      await flushMicrotasks();
      expect((await first.runtime.get('s-1')).status).toBe('rolling_back');
      const store = restartedStore(first.runtime, 's-1');
      await first.runtime.close();

      firstProcess = false;
      const second = testRuntime({ workflows: [wf], store });
      await second.runtime.start();
      const result = await second.runtime.handle('s-1').result();
      expect(result.status).toBe('rolled_back');
      expect(result.error?.code).toBe('CARD_DECLINED');
      expect(log).toEqual(['S.run', 'A.run', 'B.run', 'A.run', 'A saw its signal fire with CARD_DECLINED', 'A.rollback', 'B.rollback', 'S.rollback']);
    });
  });

  it('tells each branch step its group and branch in the step context', async () => {
    const log: Log = [];
    const contexts: unknown[] = [];
    const remember = (state: TestState, ctx: StepContext) => {
      contexts.push([ctx.stepName, ctx.group, ctx.branch, ctx.idempotencyKey]);
      return ok(state);
    };
    const wf = defineWorkflow<TestState>({
      name: 'contexts',
      steps: [recordingStep('S', log, { run: remember }), parallel('G', [branch('mail', [recordingStep('M1', log, { run: remember }), recordingStep('M2', log, { run: remember })])])],
    });
    const { runtime } = testRuntime({ workflows: [wf] });
    await (await runtime.start(wf, { trail: [] }, { id: 'c-1' })).result();
    expect(contexts).toEqual([
      ['S', undefined, undefined, 'c-1:S:up:1'],
      ['M1', 'G', 'mail', 'c-1:M1:up:1'],
      ['M2', 'G', 'mail', 'c-1:M2:up:1'],
    ]);
  });

  it('compensates every branch that started, and no other, when rolled back from outside while branches run and wait', async () => {
    const log: Log = [];
    const runsUntilAborted = (name: string) =>
      recordingStep(name, log, {
        run: async (state, ctx) => {
          const reason = await aborted(ctx);
          log.push(`${name} saw its signal fire with ${String(codeOf(reason))}`);
          return ok(state);
        },
      });
    const wf = defineWorkflow<TestState>({
      name: 'external-rollback',
      steps: [
        recordingStep('S', log),
        parallel('G', [recordingStep('D', log), recordingStep('A', log, { run: waitsFor('a.done') }), runsUntilAborted('B'), runsUntilAborted('C'), recordingStep('E', log)], {
          maxConcurrency: 3,
        }),
        recordingStep('T', log),
      ],
    });
    const { runtime } = testRuntime({ workflows: [wf] });
    const handle = await runtime.start(wf, { trail: [] });
    await flushMicrotasks();
    // D finished and C took its place: A waits, B and C run, E is held back by maxConcurrency.
    expect(log).toEqual(['S.run', 'D.run', 'A.run', 'B.run', 'C.run']);
    expect((await runtime.get(handle.id)).status).toBe('running');

    await runtime.rollback(handle.id, 'customer cancelled');
    const result = await handle.result();

    expect(result.status).toBe('rolled_back');
    expect(result.error).toMatchObject({ code: 'ROLLBACK_REQUESTED', details: { reason: 'customer cancelled' } });
    // Settled: D, then A (aborted at once, its runHandleInfo is never called), then B and C once their signals fired.
    expect(log).toEqual([
      'S.run',
      'D.run',
      'A.run',
      'B.run',
      'C.run',
      'B saw its signal fire with ROLLBACK_REQUESTED',
      'C saw its signal fire with ROLLBACK_REQUESTED',
      'C.rollback',
      'B.rollback',
      'A.rollback',
      'D.rollback',
      'S.rollback',
    ]);
    expect((await runtime.publish({ topic: 'a.done' })).delivered).toBe(0);
  });

  it('works with a single branch', async () => {
    const log: Log = [];
    const wf = defineWorkflow<TestState>({ name: 'one-branch', steps: [recordingStep('S', log), parallel('G', [recordingStep('A', log)]), recordingStep('T', log)] });
    const { runtime } = testRuntime({ workflows: [wf] });
    const result = await (await runtime.start(wf, { trail: [] })).result();
    expect(result.status).toBe('completed');
    expect(log).toEqual(['S.run', 'A.run', 'T.run']);
    expect(parallelResults(result.state)).toEqual({ A: { ok: true, value: { trail: ['S.run', 'A.run'] } } });
  });

  it('works with 200 branches and keeps the results in declaration order whatever order they settle in', async () => {
    const log: Log = [];
    const names = Array.from({ length: 200 }, (_, i) => `P${i}`);
    const steps = names.map((name, i) =>
      recordingStep(name, log, {
        run: async (state) => {
          for (let tick = 0; tick < (200 - i) % 7; tick += 1) await Promise.resolve();
          return ok({ ...state, n: i });
        },
      }),
    );
    const wf = defineWorkflow<TestState>({ name: 'wide', steps: [recordingStep('S', log), parallel('G', steps), recordingStep('T', log)] });
    const { runtime } = testRuntime({ workflows: [wf] });
    const handle = await runtime.start(wf, { trail: [] });
    const result = await handle.result();
    expect(result.status).toBe('completed');
    expect(log).toEqual(['S.run', ...names.map((n) => `${n}.run`), 'T.run']);
    const group = (await runtime.store.load(handle.id))?.flow.stack[1];
    const settleOrder = group?.kind === 'group' ? group.branches.map((b) => b.settledSeq) : [];
    expect([...settleOrder].sort((x, y) => x - y)).toEqual(names.map((_, i) => i));
    expect(settleOrder).not.toEqual(names.map((_, i) => i));
    const results = parallelResults<TestState>(result.state);
    expect(Object.keys(results)).toEqual(names);
    names.forEach((name, i) => expect(results[name]).toEqual({ ok: true, value: { trail: ['S.run', `${name}.run`], n: i } }));
  });

  it('never runs more branches at once than maxConcurrency, and starts the others as running ones finish', async () => {
    const log: Log = [];
    let running = 0;
    let most = 0;
    const steps = Array.from({ length: 10 }, (_, i) =>
      recordingStep(`M${i}`, log, {
        run: async (state) => {
          running += 1;
          most = Math.max(most, running);
          for (let tick = 0; tick < 1 + (i % 4); tick += 1) await new Promise<void>((resolve) => setImmediate(resolve));
          running -= 1;
          return ok(state);
        },
      }),
    );
    const wf = defineWorkflow<TestState>({ name: 'capped', steps: [parallel('G', steps, { maxConcurrency: 3 })] });
    const { runtime } = testRuntime({ workflows: [wf] });
    const result = await (await runtime.start(wf, { trail: [] })).result();
    expect(result.status).toBe('completed');
    expect(most).toBe(3);
    expect(log).toHaveLength(10);
    expect(Object.keys(parallelResults(result.state))).toEqual(steps.map((_, i) => `M${i}`));
  });

  it('shows observers each branch step with its group and branch, and the start and end of the group', async () => {
    const log: Log = [];
    const observer = new RecordingObserver('O', log);
    const wf = defineWorkflow<TestState>({
      name: 'observed',
      steps: [recordingStep('S', log), parallel('G', [recordingStep('A', log), branch('bee', recordingStep('B', log))]), recordingStep('T', log)],
      observers: [observer],
    });
    const { runtime } = testRuntime({ workflows: [wf] });
    await (await runtime.start(wf, { trail: [] })).result();
    expect(log).toEqual([
      'O.init',
      'O.before S',
      'S.run',
      'O.after S',
      'O.groupStart G',
      // Branches run concurrently: a branch whose hooks and handler answer at once is called through before the next.
      'O.before A',
      'A.run',
      'O.before B',
      'B.run',
      'O.after A',
      'O.after B',
      'O.groupEnd G',
      'O.before T',
      'T.run',
      'O.after T',
      'O.success',
    ]);
    const where = observer.calls.map((c) => [c.hook, c.flow.stepName, c.flow.group, c.flow.branch]);
    expect(where).toEqual([
      ['handleInit', null, undefined, undefined],
      ['handleBeforeStep', 'S', undefined, undefined],
      ['handleAfterStep', 'S', undefined, undefined],
      ['handleGroupStart', 'G', 'G', undefined],
      ['handleBeforeStep', 'A', 'G', 'A'],
      ['handleBeforeStep', 'B', 'G', 'bee'],
      ['handleAfterStep', 'A', 'G', 'A'],
      ['handleAfterStep', 'B', 'G', 'bee'],
      ['handleGroupEnd', 'G', 'G', undefined],
      ['handleBeforeStep', 'T', undefined, undefined],
      ['handleAfterStep', 'T', undefined, undefined],
      ['handleWorkflowSuccess', null, undefined, undefined],
    ]);
    const groupHooks = observer.calls.filter((c) => c.flow.branch === undefined && c.flow.group !== undefined);
    expect(groupHooks.map((c) => [c.hook, c.flow.stepName, c.flow.stepIndex, c.flow.direction])).toEqual([
      ['handleGroupStart', 'G', 1, 'up'],
      ['handleGroupEnd', 'G', 1, 'up'],
    ]);
  });

  it('shows observers the branch compensations, with their group and branch, going down', async () => {
    const log: Log = [];
    const observer = new RecordingObserver('O', log);
    const wf = defineWorkflow<TestState>({
      name: 'observed-down',
      steps: [parallel('G', [recordingStep('A', log), recordingStep('B', log, { run: fails() })]), recordingStep('T', log)],
      observers: [observer],
    });
    const { runtime } = testRuntime({ workflows: [wf] });
    await (await runtime.start(wf, { trail: [] })).result();
    expect(log).toEqual([
      'O.init',
      'O.groupStart G',
      // Branches run concurrently: a branch whose hooks and handler answer at once is called through before the next.
      'O.before A',
      'A.run',
      'O.before B',
      'B.run',
      'O.after A',
      'O.after B',
      'O.startRollback',
      'O.before B',
      'B.rollback',
      'O.before A',
      'A.rollback',
      'O.after B',
      'O.after A',
      'O.groupEnd G',
      'O.failure',
    ]);
    const rollbacks = observer.calls.filter((c) => c.flow.stepFunc === 'rollback').map((c) => [c.hook, c.flow.direction, c.flow.group, c.flow.branch]);
    expect(rollbacks).toEqual([
      ['handleBeforeStep', 'down', 'G', 'B'],
      ['handleBeforeStep', 'down', 'G', 'A'],
      ['handleAfterStep', 'down', 'G', 'B'],
      ['handleAfterStep', 'down', 'G', 'A'],
    ]);
    const groupEnd = observer.calls.find((c) => c.hook === 'handleGroupEnd');
    expect([groupEnd?.flow.stepName, groupEnd?.flow.stepIndex, groupEnd?.flow.direction]).toEqual(['G', 0, 'down']);
  });

  it('shows observers the group again, going down, when a later failure undoes its branches', async () => {
    const log: Log = [];
    const observer = new RecordingObserver('O', log);
    const wf = defineWorkflow<TestState>({
      name: 'observed-unwind',
      steps: [parallel('G', [recordingStep('A', log)]), recordingStep('T', log, { run: fails() })],
      observers: [observer],
    });
    const { runtime } = testRuntime({ workflows: [wf] });
    await (await runtime.start(wf, { trail: [] })).result();
    expect(log).toEqual([
      'O.init',
      'O.groupStart G',
      'O.before A',
      'A.run',
      'O.after A',
      'O.groupEnd G',
      'O.before T',
      'T.run',
      'O.after T',
      'O.startRollback',
      'O.before T',
      'T.rollback',
      'O.after T',
      'O.groupStart G',
      'O.before A',
      'A.rollback',
      'O.after A',
      'O.groupEnd G',
      'O.failure',
    ]);
    const groupHooks = observer.calls.filter((c) => c.hook === 'handleGroupStart' || c.hook === 'handleGroupEnd');
    expect(groupHooks.map((c) => [c.hook, c.flow.stepName, c.flow.direction])).toEqual([
      ['handleGroupStart', 'G', 'up'],
      ['handleGroupEnd', 'G', 'up'],
      ['handleGroupStart', 'G', 'down'],
      ['handleGroupEnd', 'G', 'down'],
    ]);
    const aRollback = observer.calls.filter((c) => c.flow.stepName === 'A' && c.flow.stepFunc === 'rollback');
    expect(aRollback.map((c) => [c.hook, c.flow.group, c.flow.branch])).toEqual([
      ['handleBeforeStep', 'G', 'A'],
      ['handleAfterStep', 'G', 'A'],
    ]);
  });
});
