import { BaseStep, DefinitionError, Step, Workflow, defineWorkflow, type Observer } from '../src';
import { recordingStep } from './support/steps';
import { testRuntime } from './support/runtime';

const A = recordingStep('A', []);
const B = recordingStep('B', []);

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(DefinitionError);
    return (e as DefinitionError).code;
  }
  return undefined;
}

describe('defining a workflow', () => {
  it('refuses a workflow without steps with NO_STEPS', () => {
    expect(codeOf(() => defineWorkflow({ name: 'empty', steps: [] }))).toBe('NO_STEPS');
  });

  it('refuses two steps with the same name with DUPLICATE_NAME', () => {
    const A2 = recordingStep('A', []);
    expect(codeOf(() => defineWorkflow({ name: 'dup', steps: [A, A2] }))).toBe('DUPLICATE_NAME');
  });

  it('refuses a class that does not extend BaseStep with NOT_A_STEP, naming it', () => {
    class NotAStep {}
    let message = '';
    try {
      defineWorkflow({ name: 'not-step', steps: [A, NotAStep as never] });
    } catch (e) {
      message = (e as Error).message;
      expect((e as DefinitionError).code).toBe('NOT_A_STEP');
    }
    expect(message).toContain('NotAStep');
    expect(message).toContain('step 1');
  });

  it('refuses a step class without @Step with UNDECORATED_STEP', () => {
    class Bare extends BaseStep {}
    expect(codeOf(() => defineWorkflow({ name: 'bare', steps: [Bare] }))).toBe('UNDECORATED_STEP');
  });

  it('refuses @Step on a class that does not extend BaseStep', () => {
    expect(codeOf(() => Step({ name: 'x' })(class Plain {} as never))).toBe('NOT_A_STEP');
  });

  it('refuses @Step without a name', () => {
    expect(codeOf(() => Step({ name: '' })(class extends BaseStep {}))).toBe('BAD_OPTION');
  });

  it.each([
    ['a number', 42],
    ['an object without hooks', { hello: 1 }],
    ['an object whose hook is not a function', { handleBeforeStep: 'yes' }],
    ['a class without hooks', class Nothing {}],
    ['a registration with a non-boolean critical', { observer: { handleInit: () => undefined }, critical: 'yes' }],
  ])('refuses %s as an observer with BAD_OBSERVER', (_label, observer) => {
    expect(codeOf(() => defineWorkflow({ name: 'bad-observer', steps: [A], observers: [observer as Observer] }))).toBe('BAD_OBSERVER');
  });

  it('refuses a state that is not a class with BAD_STATE_CLASS', () => {
    expect(codeOf(() => defineWorkflow({ name: 'bad-state', steps: [A], state: {} as never }))).toBe('BAD_STATE_CLASS');
  });

  it('validates a @Workflow class when the class is defined', () => {
    expect(
      codeOf(() => {
        @Workflow({ name: 'decorated-empty', steps: [] })
        class Empty {}
        return Empty;
      }),
    ).toBe('NO_STEPS');
  });

  it('accepts a @Workflow class as the workflow to register and start', async () => {
    @Workflow({ name: 'decorated', steps: [A, B] })
    class Decorated {}
    const { runtime } = testRuntime({ workflows: [Decorated] });
    const result = await (await runtime.start(Decorated, { trail: [] })).result();
    expect(result.status).toBe('completed');
  });

  it('refuses a class that is not a workflow with NOT_A_WORKFLOW', () => {
    class Plain {}
    const { runtime } = testRuntime();
    expect(codeOf(() => runtime.register(Plain))).toBe('NOT_A_WORKFLOW');
  });

  it('refuses another definition under a registered name with DUPLICATE_NAME, and ignores the same one twice', () => {
    const wf = defineWorkflow({ name: 'once', steps: [A] });
    const { runtime } = testRuntime({ workflows: [wf] });
    expect(() => runtime.register(wf)).not.toThrow();
    expect(codeOf(() => runtime.register(defineWorkflow({ name: 'once', steps: [B] })))).toBe('DUPLICATE_NAME');
  });
});

describe('starting instances', () => {
  it('returns the same instance when started twice with the same id', async () => {
    const log: string[] = [];
    const wf = defineWorkflow({ name: 'idem', steps: [recordingStep('S', log)] });
    const { runtime } = testRuntime({ workflows: [wf] });
    const first = await runtime.start(wf, { trail: [] }, { id: 'order-1' });
    const second = await runtime.start(wf, { trail: ['other'] }, { id: 'order-1' });
    expect(second.id).toBe(first.id);
    expect((await second.result()).state).toEqual({ trail: ['S.run'] });
    expect(log).toEqual(['S.run']);
  });

  it('refuses a workflow that was not registered with UNKNOWN_WORKFLOW', async () => {
    const wf = defineWorkflow({ name: 'unregistered', steps: [A] });
    const { runtime } = testRuntime();
    await expect(runtime.start(wf, {})).rejects.toMatchObject({ code: 'UNKNOWN_WORKFLOW' });
    await expect(runtime.start('nothing-by-this-name', {})).rejects.toMatchObject({ code: 'UNKNOWN_WORKFLOW' });
  });

  it('makes steps through the resolver it was given, so a container can inject services', async () => {
    class Mailer {
      sent: string[] = [];
    }
    const mailer = new Mailer();
    @Step({ name: 'mail' })
    class Mail extends BaseStep<{ to: string }> {
      constructor(private readonly m: Mailer) {
        super();
      }
      override run(state: { to: string }) {
        this.m.sent.push(state.to);
        return { kind: 'ok' as const, state };
      }
    }
    const wf = defineWorkflow({ name: 'di', steps: [Mail] });
    const { runtime } = testRuntime({
      workflows: [wf],
      resolver: <T>(cls: new (...args: never[]) => T): T => (cls === (Mail as unknown) ? (new Mail(mailer) as T) : new (cls)()),
    });
    await (await runtime.start(wf, { to: 'ada@example.com' })).result();
    expect(mailer.sent).toEqual(['ada@example.com']);
  });

  it('fails the step with STEP_UNAVAILABLE, and rolls back, when the resolver cannot make it', async () => {
    const log: string[] = [];
    const A1 = recordingStep('A1', log);
    const Broken = recordingStep('Broken', log);
    const wf = defineWorkflow({ name: 'unresolvable', steps: [A1, Broken] });
    const { runtime } = testRuntime({
      workflows: [wf],
      resolver: <T>(cls: new (...args: never[]) => T): T => {
        if (cls === (Broken as unknown)) throw new Error('PaymentClient is not configured');
        return new (cls)();
      },
    });
    const result = await (await runtime.start(wf, { trail: [] })).result();
    expect(result.status).toBe('rolled_back');
    expect(result.error).toMatchObject({ code: 'STEP_UNAVAILABLE' });
    expect(result.error?.message).toContain('PaymentClient is not configured');
    expect(log).toEqual(['A1.run', 'A1.rollback']);
  });
});
