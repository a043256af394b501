import 'reflect-metadata';
import { IsArray, IsBoolean } from 'class-validator';
import {
  defineWorkflow,
  DefinitionError,
  forEach,
  goto,
  MemoryStore,
  ok,
  parallel,
  when,
  type SagaRuntime,
  type StepContext,
  type StepResult,
} from '../src';
import { fails, recordingStep, waitsFor, type Log, type TestState } from './support/steps';
import { testRuntime } from './support/runtime';

/** The code of the DefinitionError `fn` throws (undefined when it throws nothing). */
function definitionCode(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(DefinitionError);
    return (e as DefinitionError).code;
  }
  return undefined;
}

/** The `when` entries of an instance's stored compensation stack. */
async function whenEntries(runtime: SagaRuntime, id: string): Promise<unknown[]> {
  const record = await runtime.store.load(id);
  return (record?.flow.stack ?? []).filter((e) => e.kind === 'when').map((e) => (e.kind === 'when' ? { kind: e.kind, name: e.name, branch: e.branch } : e));
}

/** The `branch-taken` lines of an instance's history, as [when, block]. */
async function branchesTaken(runtime: SagaRuntime, id: string): Promise<unknown[]> {
  return (await runtime.history(id)).filter((h) => h.kind === 'branch-taken').map((h) => [h.step, h.outcome]);
}

/** Moves an instance's stored record into a fresh store, as a process that stopped and started again would find it. */
function restartedStore(runtime: SagaRuntime, id: string): MemoryStore {
  const store = new MemoryStore();
  store.importJson((runtime.store as MemoryStore).exportJson(id)!);
  return store;
}

/** A step behaviour that jumps to `target`. */
const jumpsTo =
  (target: string) =>
  (state: TestState): StepResult<TestState> =>
    goto(target, state);

describe('goto', () => {
  it('skips the steps between, and a later failure compensates only the steps that ran, in reverse', async () => {
    const log: Log = [];
    const wf = defineWorkflow<TestState>({
      name: 'skip-two',
      steps: [
        recordingStep('A', log),
        recordingStep('B', log, { run: jumpsTo('E') }, { goto: ['E'] }),
        recordingStep('C', log),
        recordingStep('D', log),
        recordingStep('E', log),
        recordingStep('F', log, { run: fails('F_FAILED') }),
      ],
    });
    const { runtime } = testRuntime({ workflows: [wf] });
    const result = await (await runtime.start(wf, { trail: [] })).result();

    expect(result.status).toBe('rolled_back');
    expect(result.error?.code).toBe('F_FAILED');
    expect(log).toEqual(['A.run', 'B.run', 'E.run', 'F.run', 'F.rollback', 'E.rollback', 'B.rollback', 'A.rollback']);
  });

  it('completes after skipping the steps between when nothing fails', async () => {
    const log: Log = [];
    const wf = defineWorkflow<TestState>({
      name: 'skip-and-complete',
      steps: [recordingStep('A', log, { run: jumpsTo('D') }, { goto: ['D'] }), recordingStep('B', log), recordingStep('C', log), recordingStep('D', log)],
    });
    const { runtime } = testRuntime({ workflows: [wf] });
    const result = await (await runtime.start(wf, { trail: [] })).result();

    expect(result.status).toBe('completed');
    expect(log).toEqual(['A.run', 'D.run']);
    expect(result.state.trail).toEqual(['A.run', 'D.run']);
  });

  it('fails the step with UNDECLARED_GOTO_TARGET when it jumps to a step it did not declare, rolling back from that step', async () => {
    const log: Log = [];
    const wf = defineWorkflow<TestState>({
      name: 'undeclared',
      steps: [
        recordingStep('A', log),
        recordingStep('B', log, { run: jumpsTo('C') }, { goto: ['D'] }),
        recordingStep('C', log),
        recordingStep('D', log),
      ],
    });
    const { runtime } = testRuntime({ workflows: [wf] });
    const result = await (await runtime.start(wf, { trail: [] })).result();

    expect(result.status).toBe('rolled_back');
    expect(result.error).toMatchObject({ code: 'UNDECLARED_GOTO_TARGET', details: { target: 'C', from: 'B', declared: ['D'] } });
    expect(log).toEqual(['A.run', 'B.run', 'B.rollback', 'A.rollback']);
  });

  it('lets a step inside a when block jump forward out of it to a step of the enclosing list', async () => {
    const log: Log = [];
    const wf = defineWorkflow<TestState>({
      name: 'out-of-block',
      steps: [
        when(() => true, [recordingStep('T1', log, { run: jumpsTo('Z') }, { goto: ['Z'] }), recordingStep('T2', log)], [recordingStep('E1', log)]),
        recordingStep('Y', log),
        recordingStep('Z', log, { run: fails('Z_FAILED') }),
      ],
    });
    const { runtime } = testRuntime({ workflows: [wf] });
    const result = await (await runtime.start(wf, { trail: [] })).result();

    expect(result.error?.code).toBe('Z_FAILED');
    expect(log).toEqual(['T1.run', 'Z.run', 'Z.rollback', 'T1.rollback']);
  });

  it('jumps to where a parallel group’s into says, skipping the steps between', async () => {
    const log: Log = [];
    const wf = defineWorkflow<TestState>({
      name: 'into-goto',
      steps: [
        recordingStep('S', log),
        parallel('G', [recordingStep('A', log), recordingStep('B', log)], { goto: ['T'], into: (state) => goto('T', { ...state, merged: true }) }),
        recordingStep('X', log),
        recordingStep('Y', log),
        recordingStep('T', log, { run: fails('T_FAILED') }),
      ],
    });
    const { runtime } = testRuntime({ workflows: [wf] });
    const result = await (await runtime.start(wf, { trail: [] })).result();

    expect(result.status).toBe('rolled_back');
    expect(log.slice(0, 4)).toEqual(['S.run', 'A.run', 'B.run', 'T.run']);
    expect(log.slice(4, 5)).toEqual(['T.rollback']);
    expect(log.slice(5, 7).sort()).toEqual(['A.rollback', 'B.rollback']);
    expect(log.slice(7)).toEqual(['S.rollback']);
  });

  it('passes the state into returned on to the step it jumped to', async () => {
    const log: Log = [];
    let seenByT: TestState | undefined;
    const wf = defineWorkflow<TestState>({
      name: 'into-goto-state',
      steps: [
        parallel('G', [recordingStep('A', log)], { goto: ['T'], into: (state) => goto('T', { ...state, merged: true }) }),
        recordingStep('X', log),
        recordingStep('T', log, {
          run: (state) => {
            seenByT = structuredClone(state);
            return ok(state);
          },
        }),
      ],
    });
    const { runtime } = testRuntime({ workflows: [wf] });
    const result = await (await runtime.start(wf, { trail: [] })).result();

    expect(result.status).toBe('completed');
    expect(log).toEqual(['A.run', 'T.run']);
    expect(seenByT).toEqual({ trail: ['T.run'], merged: true });
  });

  describe('backward, with allowLoop', () => {
    /** A, then B, then C jumping back to B while `state.passes` is below `until`, then D (which may fail). */
    function loop(log: Log, runs: Record<string, string[]>, options: { until: number; max: number; dFails?: boolean }) {
      const remember = (name: string) => (state: TestState, ctx: StepContext) => {
        (runs[name] ??= []).push(`${ctx.runKey} ${ctx.idempotencyKey}`);
        return ok(state);
      };
      return defineWorkflow<TestState>({
        name: 'loop',
        steps: [
          recordingStep('A', log),
          recordingStep('B', log, { run: remember('B.run'), rollback: remember('B.rollback') }),
          recordingStep(
            'C',
            log,
            {
              run: (state) => {
                const passes = typeof state.passes === 'number' ? state.passes : 0;
                return passes < options.until ? goto('B', { ...state, passes: passes + 1 }) : ok(state);
              },
            },
            { goto: ['B'], allowLoop: { max: options.max } },
          ),
          recordingStep('D', log, options.dFails === true ? { run: fails('D_FAILED') } : {}),
        ],
      });
    }

    it('runs the loop and goes on after it', async () => {
      const log: Log = [];
      const wf = loop(log, {}, { until: 2, max: 2 });
      const { runtime } = testRuntime({ workflows: [wf] });
      const result = await (await runtime.start(wf, { trail: [] })).result();

      expect(result.status).toBe('completed');
      expect(log).toEqual(['A.run', 'B.run', 'C.run', 'B.run', 'C.run', 'B.run', 'C.run', 'D.run']);
      expect(result.state.passes).toBe(2);
    });

    it('puts every pass’s steps on the compensation stack and compensates each run once, in reverse', async () => {
      const log: Log = [];
      const wf = loop(log, {}, { until: 2, max: 2, dFails: true });
      const { runtime } = testRuntime({ workflows: [wf] });
      const result = await (await runtime.start(wf, { trail: [] })).result();

      expect(result.status).toBe('rolled_back');
      expect(result.error?.code).toBe('D_FAILED');
      expect(log).toEqual([
        'A.run',
        'B.run',
        'C.run',
        'B.run',
        'C.run',
        'B.run',
        'C.run',
        'D.run',
        'D.rollback',
        'C.rollback',
        'B.rollback',
        'C.rollback',
        'B.rollback',
        'C.rollback',
        'B.rollback',
        'A.rollback',
      ]);
    });

    it('gives each pass its own run key and idempotency key, the second pass marked #2, in both directions', async () => {
      const log: Log = [];
      const runs: Record<string, string[]> = {};
      const wf = loop(log, runs, { until: 2, max: 2, dFails: true });
      const { runtime } = testRuntime({ workflows: [wf] });
      await (await runtime.start(wf, { trail: [] }, { id: 'l-1' })).result();

      expect(runs['B.run']).toEqual(['l-1:B l-1:B:up:1', 'l-1:B#2 l-1:B#2:up:1', 'l-1:B#3 l-1:B#3:up:1']);
      expect(runs['B.rollback']).toEqual(['l-1:B#3 l-1:B#3:down:1', 'l-1:B#2 l-1:B#2:down:1', 'l-1:B l-1:B:down:1']);
    });

    it('fails with LOOP_LIMIT_EXCEEDED on one jump back more than max, and compensates everything that ran', async () => {
      const log: Log = [];
      const wf = loop(log, {}, { until: Number.POSITIVE_INFINITY, max: 2 });
      const { runtime } = testRuntime({ workflows: [wf] });
      const result = await (await runtime.start(wf, { trail: [] })).result();

      expect(result.status).toBe('rolled_back');
      expect(result.error).toMatchObject({ code: 'LOOP_LIMIT_EXCEEDED', details: { target: 'B', from: 'C', max: 2 } });
      expect(log).toEqual([
        'A.run',
        'B.run',
        'C.run',
        'B.run',
        'C.run',
        'B.run',
        'C.run',
        'C.rollback',
        'B.rollback',
        'C.rollback',
        'B.rollback',
        'C.rollback',
        'B.rollback',
        'A.rollback',
      ]);
    });
  });

  describe('targets, checked when the workflow is defined', () => {
    it('refuses a declared target that is not in the workflow with UNKNOWN_GOTO_TARGET', () => {
      const log: Log = [];
      const steps = [recordingStep('A', log, {}, { goto: ['Nowhere'] }), recordingStep('B', log)];
      expect(definitionCode(() => defineWorkflow({ name: 'unknown-target', steps }))).toBe('UNKNOWN_GOTO_TARGET');
    });

    it('refuses a backward target without allowLoop with GOTO_BACKWARD', () => {
      const log: Log = [];
      const steps = [recordingStep('A', log), recordingStep('B', log, {}, { goto: ['A'] }), recordingStep('C', log)];
      expect(definitionCode(() => defineWorkflow({ name: 'backward', steps }))).toBe('GOTO_BACKWARD');
    });

    it('refuses a step that declares itself as its target without allowLoop with GOTO_BACKWARD', () => {
      const log: Log = [];
      const steps = [recordingStep('A', log), recordingStep('B', log, {}, { goto: ['B'] })];
      expect(definitionCode(() => defineWorkflow({ name: 'self', steps }))).toBe('GOTO_BACKWARD');
    });

    it('accepts a backward target declared with allowLoop', () => {
      const log: Log = [];
      const steps = [recordingStep('A', log), recordingStep('B', log, {}, { goto: ['A'], allowLoop: { max: 1 } })];
      expect(definitionCode(() => defineWorkflow({ name: 'loop-ok', steps }))).toBeUndefined();
    });

    it('refuses a target inside another when block with UNREACHABLE_GOTO_TARGET: from the else-block into the then-block', () => {
      const log: Log = [];
      const steps = [when(() => true, [recordingStep('T1', log)], [recordingStep('E1', log, {}, { goto: ['T1'], allowLoop: { max: 1 } })])];
      expect(definitionCode(() => defineWorkflow({ name: 'else-to-then', steps }))).toBe('UNREACHABLE_GOTO_TARGET');
    });

    it('refuses a target inside another when block with UNREACHABLE_GOTO_TARGET: from the then-block into the else-block', () => {
      const log: Log = [];
      const steps = [when(() => true, [recordingStep('T1', log, {}, { goto: ['E1'] })], [recordingStep('E1', log)])];
      expect(definitionCode(() => defineWorkflow({ name: 'then-to-else', steps }))).toBe('UNREACHABLE_GOTO_TARGET');
    });

    it('refuses a target inside a when block from outside it with UNREACHABLE_GOTO_TARGET', () => {
      const log: Log = [];
      const steps = [recordingStep('A', log, {}, { goto: ['T2'] }), when(() => true, [recordingStep('T1', log), recordingStep('T2', log)])];
      expect(definitionCode(() => defineWorkflow({ name: 'into-block', steps }))).toBe('UNREACHABLE_GOTO_TARGET');
    });

    it('refuses goto declared on a step inside a parallel branch with GOTO_NOT_ALLOWED', () => {
      const log: Log = [];
      const steps = [parallel('G', [recordingStep('A', log, {}, { goto: ['T'] }), recordingStep('B', log)]), recordingStep('T', log)];
      expect(definitionCode(() => defineWorkflow({ name: 'goto-in-branch', steps }))).toBe('GOTO_NOT_ALLOWED');
    });

    it('refuses goto declared on a step of a forEach item with GOTO_NOT_ALLOWED', () => {
      const log: Log = [];
      const steps = [forEach('each', (s: TestState) => s.trail.map((entry) => ({ trail: [entry] })), recordingStep('I', log, {}, { goto: ['T'] })), recordingStep('T', log)];
      expect(definitionCode(() => defineWorkflow({ name: 'goto-in-item', steps }))).toBe('GOTO_NOT_ALLOWED');
    });

    it('refuses a goto that is not an array with BAD_OPTION', () => {
      expect(definitionCode(() => recordingStep('A', [], {}, { goto: 'B' as unknown as string[] }))).toBe('BAD_OPTION');
      expect(definitionCode(() => recordingStep('A', [], {}, { goto: [''] }))).toBe('BAD_OPTION');
      const steps = [parallel('G', [recordingStep('A', [])], { goto: 'T' as unknown as string[] }), recordingStep('T', [])];
      expect(definitionCode(() => defineWorkflow({ name: 'group-goto-string', steps }))).toBe('BAD_OPTION');
    });

    it('refuses allowLoop without a positive integer max with BAD_OPTION', () => {
      expect(definitionCode(() => recordingStep('A', [], {}, { goto: ['A'], allowLoop: { max: 0 } }))).toBe('BAD_OPTION');
      expect(definitionCode(() => recordingStep('A', [], {}, { goto: ['A'], allowLoop: { max: 1.5 } }))).toBe('BAD_OPTION');
      expect(definitionCode(() => recordingStep('A', [], {}, { goto: ['A'], allowLoop: 3 as unknown as { max: number } }))).toBe('BAD_OPTION');
    });
  });
});

class ShippingState {
  @IsArray()
  trail!: string[];

  @IsBoolean()
  express!: boolean;

  isExpress(): boolean {
    return this.express;
  }
}

describe('when', () => {
  it.each([
    [true, ['A.run', 'T1.run', 'T2.run', 'Z.run']],
    [false, ['A.run', 'E1.run', 'Z.run']],
  ])('with a predicate of %s runs that block only, then goes on with the step after', async (express, expected) => {
    const log: Log = [];
    const seen: unknown[] = [];
    const wf = defineWorkflow<ShippingState>({
      name: 'shipping',
      state: ShippingState,
      steps: [
        recordingStep('A', log),
        when(
          (s: ShippingState) => {
            seen.push([s instanceof ShippingState, s.trail]);
            return s.isExpress();
          },
          [recordingStep('T1', log), recordingStep('T2', log)],
          [recordingStep('E1', log)],
        ),
        recordingStep('Z', log),
      ],
    });
    const { runtime } = testRuntime({ workflows: [wf] });
    const result = await (await runtime.start(wf, { trail: [], express })).result();

    expect(result.status).toBe('completed');
    expect(log).toEqual(expected);
    expect(seen).toEqual([[true, ['A.run']]]);
  });

  it('passes a plain state to the predicate when the workflow has no state class', async () => {
    const log: Log = [];
    const seen: unknown[] = [];
    const wf = defineWorkflow<TestState>({
      name: 'plain',
      steps: [
        recordingStep('A', log, { run: (state) => ok({ ...state, go: true }) }),
        when(
          (s: TestState) => {
            seen.push(structuredClone(s));
            return s.go === true;
          },
          recordingStep('T', log),
        ),
      ],
    });
    const { runtime } = testRuntime({ workflows: [wf] });
    await (await runtime.start(wf, { trail: [] })).result();

    expect(seen).toEqual([{ trail: ['A.run'], go: true }]);
    expect(log).toEqual(['A.run', 'T.run']);
  });

  it('skips the block when the predicate is false and there is no else-block', async () => {
    const log: Log = [];
    const wf = defineWorkflow<TestState>({
      name: 'no-else',
      steps: [recordingStep('A', log), when(() => false, [recordingStep('T1', log), recordingStep('T2', log)]), recordingStep('Z', log, { run: fails() })],
    });
    const { runtime } = testRuntime({ workflows: [wf] });
    const result = await (await runtime.start(wf, { trail: [] }, { id: 'n-1' })).result();

    expect(result.status).toBe('rolled_back');
    expect(log).toEqual(['A.run', 'Z.run', 'Z.rollback', 'A.rollback']);
    expect(await branchesTaken(runtime, 'n-1')).toEqual([['when@1', 'else']]);
  });

  it('runs a when that is the last node and completes after its block', async () => {
    const log: Log = [];
    const wf = defineWorkflow<TestState>({
      name: 'last',
      steps: [recordingStep('A', log), when(() => false, [recordingStep('T1', log)], [recordingStep('E1', log), recordingStep('E2', log)])],
    });
    const { runtime } = testRuntime({ workflows: [wf] });
    const result = await (await runtime.start(wf, { trail: [] })).result();

    expect(result.status).toBe('completed');
    expect(log).toEqual(['A.run', 'E1.run', 'E2.run']);
  });

  it.each([
    [true, ['TA.rollback', 'TB.rollback'], ['S.run', 'TA.run', 'TB.run', 'T2.run', 'F.run', 'F.rollback', 'T2.rollback']],
    [false, ['EA.rollback', 'EB.rollback'], ['S.run', 'EA.run', 'EB.run', 'F.run', 'F.rollback']],
  ])(
    'with a predicate of %s compensates the parallel group of that block only, after a later failure, then the steps before',
    async (express, groupRollbacks, before) => {
      const log: Log = [];
      const wf = defineWorkflow<TestState>({
        name: 'groups-in-blocks',
        steps: [
          recordingStep('S', log),
          when(
            (s: TestState) => s.express === true,
            [parallel('TG', [recordingStep('TA', log), recordingStep('TB', log)]), recordingStep('T2', log)],
            [parallel('EG', [recordingStep('EA', log), recordingStep('EB', log)])],
          ),
          recordingStep('F', log, { run: fails('F_FAILED') }),
        ],
      });
      const { runtime } = testRuntime({ workflows: [wf] });
      const result = await (await runtime.start(wf, { trail: [], express })).result();

      expect(result.status).toBe('rolled_back');
      expect(result.error?.code).toBe('F_FAILED');
      expect(log.slice(0, before.length)).toEqual(before);
      expect(log.slice(before.length, before.length + 2).sort()).toEqual(groupRollbacks);
      expect(log.slice(before.length + 2)).toEqual(['S.rollback']);
    },
  );

  it('records which block ran: a branch-taken history line and a when entry on the compensation stack', async () => {
    const log: Log = [];
    const wf = defineWorkflow<TestState>({
      name: 'recorded',
      steps: [
        recordingStep('A', log),
        when(() => true, recordingStep('T1', log), recordingStep('E1', log), { name: 'first' }),
        when(() => false, recordingStep('T2', log), recordingStep('E2', log), { name: 'second' }),
      ],
    });
    const { runtime } = testRuntime({ workflows: [wf] });
    const result = await (await runtime.start(wf, { trail: [] }, { id: 'h-1' })).result();

    expect(result.status).toBe('completed');
    expect(log).toEqual(['A.run', 'T1.run', 'E2.run']);
    const history = await runtime.history('h-1');
    expect(history.filter((h) => h.kind === 'branch-taken')).toEqual([
      expect.objectContaining({ kind: 'branch-taken', step: 'first', outcome: 'then' }),
      expect.objectContaining({ kind: 'branch-taken', step: 'second', outcome: 'else' }),
    ]);
    const record = await runtime.store.load('h-1');
    expect(record?.flow.stack.map((e) => (e.kind === 'when' ? { kind: e.kind, name: e.name, branch: e.branch } : { kind: e.kind, name: e.name }))).toEqual([
      { kind: 'step', name: 'A' },
      { kind: 'when', name: 'first', branch: 'then' },
      { kind: 'step', name: 'T1' },
      { kind: 'when', name: 'second', branch: 'else' },
      { kind: 'step', name: 'E2' },
    ]);
  });

  it('runs a when nested inside a when block, and compensates exactly the steps of the blocks that ran', async () => {
    const log: Log = [];
    const wf = defineWorkflow<TestState>({
      name: 'nested',
      steps: [
        recordingStep('A', log),
        when(
          () => true,
          [recordingStep('T1', log), when(() => false, [recordingStep('IT', log)], [recordingStep('IE', log)]), recordingStep('T2', log)],
          [recordingStep('E1', log)],
        ),
        recordingStep('Z', log, { run: fails() }),
      ],
    });
    const { runtime } = testRuntime({ workflows: [wf] });
    const result = await (await runtime.start(wf, { trail: [] }, { id: 'nest-1' })).result();

    expect(result.status).toBe('rolled_back');
    expect(log).toEqual(['A.run', 'T1.run', 'IE.run', 'T2.run', 'Z.run', 'Z.rollback', 'T2.rollback', 'IE.rollback', 'T1.rollback', 'A.rollback']);
    // Flattened: A is 0, the outer when 1, T1 2, the inner when 3.
    expect(await branchesTaken(runtime, 'nest-1')).toEqual([
      ['when@1', 'then'],
      ['when@3', 'else'],
    ]);
  });

  it('rolls back with WHEN_FAILED when the predicate throws, compensating the steps before it', async () => {
    const log: Log = [];
    const wf = defineWorkflow<TestState>({
      name: 'throwing-predicate',
      steps: [
        recordingStep('A', log),
        recordingStep('B', log),
        when(
          () => {
            throw new Error('no idea');
          },
          [recordingStep('T1', log)],
          [recordingStep('E1', log)],
        ),
        recordingStep('Z', log),
      ],
    });
    const { runtime } = testRuntime({ workflows: [wf] });
    const result = await (await runtime.start(wf, { trail: [] })).result();

    expect(result.status).toBe('rolled_back');
    expect(result.error).toMatchObject({ code: 'WHEN_FAILED', details: { when: 'when@2' } });
    expect(log).toEqual(['A.run', 'B.run', 'B.rollback', 'A.rollback']);
  });

  it.each([
    ['a promise', () => Promise.resolve(true)],
    ['a truthy number', () => 1],
    ['undefined', () => undefined],
  ])('rolls back with WHEN_FAILED when the predicate returns %s instead of a boolean', async (_what, predicate) => {
    const log: Log = [];
    const wf = defineWorkflow<TestState>({
      name: 'non-boolean-predicate',
      steps: [recordingStep('A', log), when(predicate as unknown as (s: TestState) => boolean, [recordingStep('T1', log)], [recordingStep('E1', log)])],
    });
    const { runtime } = testRuntime({ workflows: [wf] });
    const result = await (await runtime.start(wf, { trail: [] })).result();

    expect(result.status).toBe('rolled_back');
    expect(result.error?.code).toBe('WHEN_FAILED');
    expect(log).toEqual(['A.run', 'A.rollback']);
  });

  it('can be a goto target under its name, and the jump evaluates it', async () => {
    const log: Log = [];
    const wf = defineWorkflow<TestState>({
      name: 'goto-when',
      steps: [
        recordingStep('A', log, { run: (state) => goto('is-express', { ...state, express: true }) }, { goto: ['is-express'] }),
        recordingStep('B', log),
        when((s: TestState) => s.express === true, [recordingStep('T1', log)], [recordingStep('E1', log)], { name: 'is-express' }),
        recordingStep('Z', log),
      ],
    });
    const { runtime } = testRuntime({ workflows: [wf] });
    const result = await (await runtime.start(wf, { trail: [] }, { id: 'g-1' })).result();

    expect(result.status).toBe('completed');
    expect(log).toEqual(['A.run', 'T1.run', 'Z.run']);
    expect(await branchesTaken(runtime, 'g-1')).toEqual([['is-express', 'then']]);
  });

  it('can be a goto target under its default name when@<index>', async () => {
    const log: Log = [];
    const wf = defineWorkflow<TestState>({
      name: 'goto-default-when',
      steps: [
        recordingStep('A', log, { run: jumpsTo('when@2') }, { goto: ['when@2'] }),
        recordingStep('B', log),
        when(() => false, [recordingStep('T1', log)], [recordingStep('E1', log)]),
      ],
    });
    const { runtime } = testRuntime({ workflows: [wf] });
    const result = await (await runtime.start(wf, { trail: [] }, { id: 'g-2' })).result();

    expect(result.status).toBe('completed');
    expect(log).toEqual(['A.run', 'E1.run']);
    expect(await whenEntries(runtime, 'g-2')).toEqual([{ kind: 'when', name: 'when@2', branch: 'else' }]);
  });

  it('refuses a when with an empty then-block with NO_STEPS', () => {
    const steps = [recordingStep('A', []), when(() => true, [], [recordingStep('E1', [])])];
    expect(definitionCode(() => defineWorkflow({ name: 'empty-then', steps }))).toBe('NO_STEPS');
  });

  it('refuses the same name in both blocks with DUPLICATE_NAME', () => {
    const steps = [when(() => true, [recordingStep('Ship', [])], [recordingStep('Ship', [])])];
    expect(definitionCode(() => defineWorkflow({ name: 'dup-across-blocks', steps }))).toBe('DUPLICATE_NAME');
  });

  it('refuses a when named like a step with DUPLICATE_NAME', () => {
    const steps = [recordingStep('A', []), when(() => true, [recordingStep('T1', [])], [], { name: 'A' })];
    expect(definitionCode(() => defineWorkflow({ name: 'dup-when-name', steps }))).toBe('DUPLICATE_NAME');
  });

  describe('across a restart', () => {
    /** A, then a when whose else-block waits for `go` in E1, then E2; then Z (which may fail). */
    function parked(log: Log, predicateCalls: string[], options: { express: boolean; zFails?: boolean }) {
      return defineWorkflow<TestState>({
        name: 'parked-in-else',
        steps: [
          recordingStep('A', log),
          when(
            () => {
              predicateCalls.push('called');
              return options.express;
            },
            [recordingStep('T1', log), recordingStep('T2', log)],
            [recordingStep('E1', log, { run: waitsFor('go', { k: 1 }) }), recordingStep('E2', log)],
            { name: 'is-express' },
          ),
          recordingStep('Z', log, options.zFails === true ? { run: fails('Z_FAILED') } : {}),
        ],
      });
    }

    it('resumes a workflow parked in the else-block from its JSON and runs only the else-block', async () => {
      const log: Log = [];
      const calls: string[] = [];
      const first = testRuntime({ workflows: [parked(log, calls, { express: false })] });
      await first.runtime.start('parked-in-else', { trail: [] }, { id: 'p-1' });
      await first.runtime.idle();
      expect(log).toEqual(['A.run', 'E1.run']);
      const store = restartedStore(first.runtime, 'p-1');
      await first.runtime.close();

      // The new process's predicate would choose the other block: the stored choice must stand.
      const second = testRuntime({ workflows: [parked(log, calls, { express: true })], store });
      await second.runtime.start();
      expect((await second.runtime.publish({ topic: 'go', payload: { k: 1 } })).delivered).toBe(1);
      const result = await second.runtime.handle('p-1').result();

      expect(result.status).toBe('completed');
      expect(log).toEqual(['A.run', 'E1.run', 'E1.runHandleInfo', 'E2.run', 'Z.run']);
      expect(calls).toEqual(['called']);
      expect(await whenEntries(second.runtime, 'p-1')).toEqual([{ kind: 'when', name: 'is-express', branch: 'else' }]);
    });

    it('compensates only the else-block steps after a later failure, once resumed from JSON', async () => {
      const log: Log = [];
      const calls: string[] = [];
      const first = testRuntime({ workflows: [parked(log, calls, { express: false, zFails: true })] });
      await first.runtime.start('parked-in-else', { trail: [] }, { id: 'p-2' });
      await first.runtime.idle();
      const store = restartedStore(first.runtime, 'p-2');
      await first.runtime.close();

      const second = testRuntime({ workflows: [parked(log, calls, { express: true, zFails: true })], store });
      await second.runtime.start();
      expect((await second.runtime.publish({ topic: 'go', payload: { k: 1 } })).delivered).toBe(1);
      const result = await second.runtime.handle('p-2').result();

      expect(result.status).toBe('rolled_back');
      expect(result.error?.code).toBe('Z_FAILED');
      expect(log).toEqual(['A.run', 'E1.run', 'E1.runHandleInfo', 'E2.run', 'Z.run', 'Z.rollback', 'E2.rollback', 'E1.rollback', 'A.rollback']);
      expect(calls).toEqual(['called']);
    });
  });
});

