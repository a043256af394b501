import { BaseStep, DefinitionError, Workflow, branch, defineWorkflow, ok, parallel, type ParallelOptions } from '../src';
import { recordingStep } from './support/steps';

const S = recordingStep('S', []);
const A = recordingStep('A', []);
const B = recordingStep('B', []);
const C = recordingStep('C', []);

/** The DefinitionError `fn` throws, or undefined when it throws nothing. */
function refusal(fn: () => unknown): DefinitionError | undefined {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(DefinitionError);
    return e as DefinitionError;
  }
  return undefined;
}

const withGroup = (...args: Parameters<typeof parallel>) => () => defineWorkflow({ name: 'wf', steps: [S, parallel(...args)] });

describe('defining a parallel group', () => {
  it('accepts step classes, sequences and named branches, and compiles them with their keys and defaults', () => {
    const wf = defineWorkflow({ name: 'ok', steps: [S, parallel('G', [A, [B, C], branch('bill', recordingStep('Bill', []), { returns: 'invoice' })])] });
    const group = wf.nodes[1];
    expect(group?.kind).toBe('group');
    if (group?.kind !== 'group') return;
    expect(group.branches.map((b) => [b.name, b.key, b.steps.map((s) => [s.name, s.index])])).toEqual([
      ['A', 'A', [['A', 0]]],
      ['B+C', 'B+C', [['B', 0], ['C', 1]]],
      ['bill', 'invoice', [['Bill', 0]]],
    ]);
    expect(group.options).toEqual({ onError: 'failFast', join: 'all', maxConcurrency: Number.POSITIVE_INFINITY, compensation: 'parallel', into: undefined });
    expect(wf.nodeIndex.get('G')).toBe(1);
    expect([...wf.steps.keys()]).toEqual(['S', 'A', 'B', 'C', 'Bill']);
  });

  it('refuses a group without branches with EMPTY_GROUP, naming the group', () => {
    const e = refusal(withGroup('setup', []));
    expect(e?.code).toBe('EMPTY_GROUP');
    expect(e?.details).toMatchObject({ group: 'setup' });
    expect(e?.message).toContain('"setup"');
  });

  it('refuses a group whose branches are not a list with EMPTY_GROUP', () => {
    expect(refusal(withGroup('G', undefined as never))?.code).toBe('EMPTY_GROUP');
  });

  it('refuses an empty sequence branch with EMPTY_GROUP, naming the branch', () => {
    const e = refusal(withGroup('G', [A, []]));
    expect(e?.code).toBe('EMPTY_GROUP');
    expect(e?.message).toContain('branch 1');
  });

  it('refuses a named branch without steps with EMPTY_GROUP', () => {
    expect(refusal(withGroup('G', [A, branch('nothing', [])]))?.code).toBe('EMPTY_GROUP');
  });

  it('refuses two branches with the same name with DUPLICATE_BRANCH_KEY', () => {
    const e = refusal(withGroup('G', [branch('x', A), branch('x', B)]));
    expect(e?.code).toBe('DUPLICATE_BRANCH_KEY');
    expect(e?.details).toMatchObject({ group: 'G', branch: 'x' });
  });

  it('refuses two branches with the same returns key with DUPLICATE_BRANCH_KEY', () => {
    const e = refusal(withGroup('G', [branch('x', A, { returns: 'k' }), branch('y', B, { returns: 'k' })]));
    expect(e?.code).toBe('DUPLICATE_BRANCH_KEY');
    expect(e?.details).toMatchObject({ group: 'G', key: 'k' });
  });

  it('refuses a returns key equal to another branch name with DUPLICATE_BRANCH_KEY', () => {
    expect(refusal(withGroup('G', [A, branch('y', B, { returns: 'A' })]))?.code).toBe('DUPLICATE_BRANCH_KEY');
  });

  it('refuses the same step in two branches with DUPLICATE_NAME, since a step name must be unique in the workflow', () => {
    expect(refusal(withGroup('G', [A, [B, A]]))?.code).toBe('DUPLICATE_NAME');
  });

  it('refuses a branch step named like a step outside the group, or a group named like a step, with DUPLICATE_NAME', () => {
    expect(refusal(withGroup('G', [S]))?.code).toBe('DUPLICATE_NAME');
    expect(refusal(withGroup('S', [A]))?.code).toBe('DUPLICATE_NAME');
  });

  it.each([
    ['a class that does not extend BaseStep', class NotAStep {}],
    ['a string', 'A'],
    ['null', null],
    ['a plain object', { run: () => ok({}) }],
    ['a nested group (not supported)', parallel('H', [B])],
  ])('refuses %s as a branch with NOT_A_STEP', (_label, value) => {
    const e = refusal(withGroup('G', [A, value as never]));
    expect(e?.code).toBe('NOT_A_STEP');
    expect(e?.message).toContain('group "G" branch 1');
  });

  it('refuses a non-step inside a sequence or a named branch with NOT_A_STEP', () => {
    expect(refusal(withGroup('G', [[A, 42 as never]]))?.code).toBe('NOT_A_STEP');
    expect(refusal(withGroup('G', [branch('b', [B, class Nope {} as never])]))?.code).toBe('NOT_A_STEP');
  });

  it('refuses a step class without @Step in a branch with UNDECORATED_STEP', () => {
    class Bare extends BaseStep {}
    expect(refusal(withGroup('G', [A, Bare]))?.code).toBe('UNDECORATED_STEP');
  });

  it.each<[string, ParallelOptions]>([
    ['onError', { onError: 'explode' as never }],
    ['join', { join: 'first' as never }],
    ['compensation', { compensation: 'random' as never }],
    ['maxConcurrency', { maxConcurrency: 0 }],
    ['maxConcurrency', { maxConcurrency: -1 }],
    ['maxConcurrency', { maxConcurrency: 1.5 }],
    ['maxConcurrency', { maxConcurrency: Number.NaN }],
    ['maxConcurrency', { maxConcurrency: '2' as never }],
    ['into', { into: 'merge' as never }],
  ])('refuses a bad %s option with BAD_OPTION, naming the field (%p)', (field, options) => {
    const e = refusal(withGroup('G', [A], options));
    expect(e?.code).toBe('BAD_OPTION');
    expect(e?.details).toMatchObject({ field });
  });

  it('refuses a group or a branch without a name with BAD_OPTION', () => {
    expect(refusal(withGroup('', [A]))?.code).toBe('BAD_OPTION');
    expect(refusal(withGroup('G', [branch('  ', A)]))?.code).toBe('BAD_OPTION');
  });

  it('refuses a bad group in a @Workflow class when the class is defined', () => {
    const e = refusal(() => {
      @Workflow({ name: 'decorated', steps: [S, parallel('G', [])] })
      class Decorated {}
      return Decorated;
    });
    expect(e?.code).toBe('EMPTY_GROUP');
  });
});

describe('parallel group options', () => {
  const S = recordingStep('opt-s', []);
  it('refuses an unknown option key with BAD_OPTION naming it', () => {
    expect(() => defineWorkflow({ name: 'typo', steps: [parallel('g', [S], { maxConcurency: 2 } as never)] })).toThrow(
      expect.objectContaining({ code: 'BAD_OPTION', message: expect.stringContaining('"maxConcurency"') }),
    );
  });

  it('refuses options that are not an object with BAD_OPTION', () => {
    expect(() => defineWorkflow({ name: 'not-object', steps: [parallel('g', [S], 3 as never)] })).toThrow(expect.objectContaining({ code: 'BAD_OPTION' }));
  });

  it('accepts Infinity as maxConcurrency', () => {
    expect(() => defineWorkflow({ name: 'inf', steps: [parallel('g', [S], { maxConcurrency: Number.POSITIVE_INFINITY })] })).not.toThrow();
  });

  it('refuses an empty returns key with BAD_OPTION', () => {
    expect(() => defineWorkflow({ name: 'empty-returns', steps: [parallel('g', [branch('b', S, { returns: '' })])] })).toThrow(expect.objectContaining({ code: 'BAD_OPTION' }));
  });

  it('explains that a group cannot be nested in a branch', () => {
    expect(() => defineWorkflow({ name: 'nested', steps: [parallel('g', [[S, parallel('inner', [S]) as never]])] })).toThrow(
      expect.objectContaining({ code: 'NOT_A_STEP', message: expect.stringContaining('cannot sit inside a branch') }),
    );
  });
});
