import 'reflect-metadata';
import { Transform } from 'class-transformer';
import { IsString } from 'class-validator';
import { BaseStep, Step, continueWith, defineWorkflow, error, ok, type StepResult } from '../src';
import { recordingStep, type Log, type TestState } from './support/steps';
import { testRuntime } from './support/runtime';

/** [A, X]: A records, X does what `behave` says. */
function twoSteps(name: string, log: Log, behave: (state: TestState) => unknown) {
  return defineWorkflow<TestState>({
    name,
    steps: [recordingStep('A', log), recordingStep('X', log, { run: (state) => behave(state) as StepResult<TestState> })],
  });
}

describe('a malformed wait is a failure of its step, never a hung instance', () => {
  const badTimeouts: [string, unknown][] = [
    ['a unit it does not know', '10 parsecs'],
    ['a negative number', -5],
    ['NaN', Number.NaN],
    ['null', null],
    ['an empty string', ''],
    ['an object', {}],
    ['a BigInt', 10n],
  ];
  it.each(badTimeouts)('rolls back with MALFORMED_RESULT when the timeout is %s', async (_what, timeout) => {
    const log: Log = [];
    const wf = twoSteps('bad-timeout', log, (s) => continueWith(s, { topic: 't', timeout: timeout as string }));
    const { runtime } = testRuntime({ workflows: [wf] });
    const result = await (await runtime.start(wf, { trail: [] })).result();
    expect(result.status).toBe('rolled_back');
    expect(result.error).toMatchObject({ code: 'MALFORMED_RESULT' });
    expect(result.error?.message).toContain('timeout');
    expect(log).toEqual(['A.run', 'X.run', 'X.rollback', 'A.rollback']);
  });

  it.each([
    ['a match value that is NaN', { topic: 't', match: { n: Number.NaN } }, 'match value for "n"'],
    ['a match value that is Infinity', { topic: 't', match: { n: Number.POSITIVE_INFINITY } }, 'match value for "n"'],
    ['a match value that is an object', { topic: 't', match: { n: { deep: 1 } } }, 'match value for "n"'],
    ['an empty topic list', { topic: [] }, 'topic'],
    ['a misspelt key', { topic: 't', timout: '1s' }, 'did you mean "timeout"'],
  ])('rolls back with MALFORMED_RESULT for %s', async (_what, wait, said) => {
    const log: Log = [];
    const wf = twoSteps('bad-wait', log, (s) => continueWith(s, wait as never));
    const { runtime } = testRuntime({ workflows: [wf] });
    const result = await (await runtime.start(wf, { trail: [] })).result();
    expect(result.status).toBe('rolled_back');
    expect(result.error?.code).toBe('MALFORMED_RESULT');
    expect(result.error?.message).toContain(said);
  });
});

describe('whatever a handler throws, the instance moves on', () => {
  const revoked = Proxy.revocable({}, {});
  revoked.revoke();
  const trap = new Proxy(
    {},
    {
      get() {
        throw new Error('trap');
      },
      getPrototypeOf() {
        throw new Error('trap');
      },
      ownKeys() {
        throw new Error('trap');
      },
    },
  );
  const getterError = (field: 'code' | 'message' | 'name'): Error => {
    const e = new Error('boom');
    Object.defineProperty(e, field, {
      get() {
        throw new Error(`no ${field}`);
      },
    });
    return e;
  };
  const thrown: [string, unknown, string][] = [
    ['a revoked Proxy', revoked.proxy, 'NON_ERROR_THROWN'],
    ['a Proxy whose every trap throws', trap, 'NON_ERROR_THROWN'],
    ['an Error whose code getter throws', getterError('code'), 'ERROR'],
    ['an Error whose message getter throws', getterError('message'), 'ERROR'],
    ['an Error whose name getter throws', getterError('name'), 'ERROR'],
  ];
  it.each(thrown)('rolls back when a run throws %s', async (_what, value, code) => {
    const log: Log = [];
    const wf = twoSteps('throws', log, () => {
      throw value;
    });
    const { runtime } = testRuntime({ workflows: [wf] });
    const result = await (await runtime.start(wf, { trail: [] })).result();
    expect(result.status).toBe('rolled_back');
    expect(result.error?.code).toBe(code);
    expect(typeof result.error?.message).toBe('string');
    expect(log).toEqual(['A.run', 'X.run', 'X.rollback', 'A.rollback']);
  });

  it.each([
    ['a revoked Proxy', revoked.proxy],
    ['a Proxy whose every trap throws', trap],
  ])('rolls back when a run returns %s, or an error with it as the reason', async (_what, value) => {
    for (const returned of [value, error(value)]) {
      const log: Log = [];
      const wf = twoSteps('returns', log, () => returned);
      const { runtime } = testRuntime({ workflows: [wf] });
      const result = await (await runtime.start(wf, { trail: [] })).result();
      expect(result.status).toBe('rolled_back');
      expect(log).toEqual(['A.run', 'X.run', 'X.rollback', 'A.rollback']);
    }
  });

  it('calls a thrown string NON_ERROR_THROWN, quoting it, and a returned one a plain ERROR', async () => {
    const log: Log = [];
    const threw = twoSteps('threw-string', log, () => {
      throw 'card declined'; // eslint-disable-line @typescript-eslint/only-throw-error
    });
    const returned = twoSteps('returned-string', log, () => error('card declined'));
    const { runtime } = testRuntime({ workflows: [threw, returned] });
    const a = await (await runtime.start(threw, { trail: [] })).result();
    const b = await (await runtime.start(returned, { trail: [] })).result();
    expect(a.error).toMatchObject({ code: 'NON_ERROR_THROWN', details: { value: '"card declined"' } });
    expect(a.error?.message).toContain('"card declined"');
    expect(b.error).toMatchObject({ code: 'ERROR', message: 'card declined' });
  });

  it('fails a step with STATE_HYDRATION_FAILED when the state class cannot be made from the stored state, and compensates the steps before', async () => {
    class Money {
      @IsString() currency!: string;
      @Transform(({ value, obj }: { value: unknown; obj: { currency?: unknown } }) => {
        if (obj.currency === 'XXX') throw new Error('unknown currency');
        return value;
      })
      amount!: number;
    }
    const log: Log = [];
    @Step({ name: 'poison' })
    class Poison extends BaseStep<Money> {
      override run(state: Money): StepResult<Money> {
        log.push('poison.run');
        return ok({ ...state, currency: 'XXX' });
      }
      override rollback(state: Money): StepResult<Money> {
        log.push('poison.rollback');
        return ok(state);
      }
    }
    @Step({ name: 'after' })
    class After extends BaseStep<Money> {
      override run(state: Money): StepResult<Money> {
        log.push('after.run');
        return ok(state);
      }
    }
    const wf = defineWorkflow<Money>({ name: 'hydration', steps: [Poison, After], state: Money });
    const { runtime } = testRuntime({ workflows: [wf] });
    const result = await (await runtime.start(wf, { currency: 'EUR', amount: 5 })).result();
    expect(result.error?.code).toBe('STATE_HYDRATION_FAILED');
    expect(result.error?.message).toContain('unknown currency');
    expect(log).toEqual(['poison.run']);
    expect(result.status).toBe('compensation_failed');
  });
});
