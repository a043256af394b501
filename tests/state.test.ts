import 'reflect-metadata';
import { Type } from 'class-transformer';
import { IsInt, IsString, Min, IsOptional } from 'class-validator';
import { BaseStep, Step, defineWorkflow, ok, type StepResult } from '../src';
import { testRuntime } from './support/runtime';
import { recordingStep } from './support/steps';

class OrderState {
  @IsString()
  orderId!: string;

  @IsInt()
  @Min(1)
  quantity!: number;

  @IsOptional()
  @Type(() => Date)
  placedAt?: Date;

  @IsOptional()
  @IsString()
  note?: string;

  describe(): string {
    return `${this.orderId} x${this.quantity}`;
  }
}

const seen: string[] = [];

@Step({ name: 'inspect' })
class Inspect extends BaseStep<OrderState> {
  override run(state: OrderState): StepResult<OrderState> {
    seen.push(`${state instanceof OrderState} ${state.describe()} ${state.placedAt instanceof Date}`);
    return ok(state);
  }
}

@Step({ name: 'inspect-again' })
class InspectAgain extends Inspect {}

@Step({ name: 'break-it' })
class BreakIt extends BaseStep<OrderState> {
  override run(state: OrderState): StepResult<OrderState> {
    state.quantity = 0;
    return ok(state);
  }
}

@Step({ name: 'bigint' })
class BigIntStep extends BaseStep<OrderState> {
  override run(state: OrderState): StepResult<OrderState> {
    return ok({ ...state, note: 10n } as unknown as OrderState);
  }
}

describe('the workflow state', () => {
  beforeEach(() => seen.splice(0));

  it('is validated at start, and an invalid one is refused with every bad property listed and nothing stored', async () => {
    const wf = defineWorkflow<OrderState>({ name: 'validated', steps: [Inspect], state: OrderState });
    const { runtime } = testRuntime({ workflows: [wf] });
    const attempt = runtime.start(wf, { orderId: 42, quantity: 0 }, { id: 'bad-1' });
    await expect(attempt).rejects.toMatchObject({ code: 'STATE_INVALID' });
    await attempt.catch((e: { properties: { property: string }[] }) => {
      expect(e.properties.map((p) => p.property).sort()).toEqual(['orderId', 'quantity']);
    });
    expect(await runtime.store.load('bad-1')).toBeUndefined();
    expect(seen).toEqual([]);
  });

  it('is rehydrated into its class, nested types included, before each step', async () => {
    const wf = defineWorkflow<OrderState>({ name: 'rehydrated', steps: [Inspect, InspectAgain], state: OrderState });
    const { runtime } = testRuntime({ workflows: [wf] });
    const result = await (await runtime.start(wf, { orderId: 'o-1', quantity: 2, placedAt: new Date('2026-01-02T03:04:05Z') })).result();
    expect(seen).toEqual(['true o-1 x2 true', 'true o-1 x2 true']);
    expect(result.state).toBeInstanceOf(OrderState);
  });

  it('is stored as plain JSON', async () => {
    const wf = defineWorkflow<OrderState>({ name: 'plain', steps: [Inspect], state: OrderState });
    const { runtime } = testRuntime({ workflows: [wf] });
    const handle = await runtime.start(wf, { orderId: 'o-2', quantity: 1, placedAt: new Date('2026-01-02T03:04:05Z') });
    await handle.result();
    const record = await runtime.store.load(handle.id);
    expect(record?.state).toEqual({ orderId: 'o-2', quantity: 1, placedAt: '2026-01-02T03:04:05.000Z' });
  });

  it('is validated after every step when asked, failing the step that broke it', async () => {
    const wf = defineWorkflow<OrderState>({ name: 'checked', steps: [BreakIt], state: OrderState, validateStateAfterEachStep: true });
    const { runtime } = testRuntime({ workflows: [wf] });
    const result = await (await runtime.start(wf, { orderId: 'o-3', quantity: 1 })).result();
    expect(result.status).toBe('rolled_back');
    expect(result.error?.code).toBe('STATE_INVALID');
    expect(result.error?.message).toContain('quantity');
  });

  it('fails the step with STATE_NOT_SERIALIZABLE when a step returns a state that is not JSON', async () => {
    const wf = defineWorkflow<OrderState>({ name: 'unserializable', steps: [BigIntStep] });
    const { runtime } = testRuntime({ workflows: [wf] });
    const result = await (await runtime.start(wf, { orderId: 'o-4', quantity: 1 })).result();
    expect(result.status).toBe('rolled_back');
    expect(result.error?.code).toBe('STATE_NOT_SERIALIZABLE');
  });

  it('refuses an input that cannot be stored as JSON at start, storing nothing', async () => {
    const wf = defineWorkflow({ name: 'bad-input', steps: [Inspect] });
    const { runtime } = testRuntime({ workflows: [wf] });
    const cyclic: Record<string, unknown> = { orderId: 'x' };
    cyclic.self = cyclic;
    await expect(runtime.start(wf, cyclic, { id: 'cyclic' })).rejects.toMatchObject({ code: 'STATE_NOT_SERIALIZABLE' });
    expect(await runtime.store.load('cyclic')).toBeUndefined();
  });

  it('never lets a __proto__ key in the input reach an object prototype', async () => {
    const wf = defineWorkflow({ name: 'proto', steps: [recordingStep('P', [])] });
    const { runtime } = testRuntime({ workflows: [wf] });
    const input = JSON.parse('{"orderId":"o-5","quantity":1,"__proto__":{"polluted":true}}') as Record<string, unknown>;
    const handle = await runtime.start(wf, input);
    expect((await handle.result()).status).toBe('completed');
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    const record = await runtime.store.load(handle.id);
    expect(Object.prototype.hasOwnProperty.call(record?.state, '__proto__')).toBe(false);
    expect(record?.state).toEqual({ orderId: 'o-5', quantity: 1, trail: ['P.run'] });
  });

  describe('at start, checked for shape, then for JSON, then by class-validator, each with its own code', () => {
    const cyclic = (): Record<string, unknown> => {
      const value: Record<string, unknown> = { orderId: 42 };
      value.self = value;
      return value;
    };
    const deep = (): Record<string, unknown> => {
      let value: Record<string, unknown> = { orderId: 'o', quantity: 1 };
      for (let i = 0; i < 20_000; i += 1) value = { orderId: 'o', quantity: 1, inner: value };
      return value;
    };
    const cases: [string, () => unknown, string][] = [
      ['an array', () => [1, 2], 'BAD_STATE'],
      ['a Date', () => new Date(), 'BAD_STATE'],
      ['a Map', () => new Map([['orderId', 'o']]), 'BAD_STATE'],
      ['a number', () => 5, 'BAD_STATE'],
      ['null', () => null, 'BAD_STATE'],
      ['a key named constructor', () => ({ orderId: 'o', quantity: 1, constructor: 'x' }), 'BAD_STATE'],
      ['a nested key named hasOwnProperty', () => ({ orderId: 'o', quantity: 1, meta: { hasOwnProperty: 1 } }), 'BAD_STATE'],
      ['a cycle (and invalid fields)', cyclic, 'STATE_NOT_SERIALIZABLE'],
      ['a BigInt (and invalid fields)', () => ({ orderId: 42, quantity: 1n }), 'STATE_NOT_SERIALIZABLE'],
      ['20,000 levels of nesting', deep, 'STATE_NOT_SERIALIZABLE'],
      ['invalid fields', () => ({ orderId: 42, quantity: 1 }), 'STATE_INVALID'],
    ];
    it.each(cases)('refuses %s, storing nothing', async (what, input, code) => {
      const wf = defineWorkflow<OrderState>({ name: 'shaped', steps: [Inspect], state: OrderState });
      const { runtime } = testRuntime({ workflows: [wf] });
      const id = `bad-${what.replace(/\W+/g, '-')}`;
      const started = runtime.start(wf, input() as OrderState, { id });
      await expect(started).rejects.toMatchObject({ code });
      await started.catch((e: Error) => expect(e.message.length).toBeLessThan(600));
      expect(await runtime.store.load(id)).toBeUndefined();
      expect(seen).toEqual([]);
    });

    it('keeps a key named constructor when the workflow has no state class', async () => {
      const wf = defineWorkflow({ name: 'classless', steps: [recordingStep('P', [])] });
      const { runtime } = testRuntime({ workflows: [wf] });
      const result = await (await runtime.start(wf, { constructor: 'kept' })).result();
      expect(result.state).toEqual({ constructor: 'kept', trail: ['P.run'] });
    });
  });

  it('fails a step with BAD_STATE, not STATE_NOT_SERIALIZABLE, when it returns a state with a key the state class cannot hold, or an array', async () => {
    for (const returned of [{ orderId: 'o', quantity: 1, constructor: 'x' }, [1, 2]]) {
      @Step({ name: 'reshape' })
      class Reshape extends BaseStep<OrderState> {
        override run(): StepResult<OrderState> {
          return ok(returned as unknown as OrderState);
        }
      }
      const wf = defineWorkflow<OrderState>({ name: 'reshaped', steps: [Reshape], state: OrderState });
      const { runtime } = testRuntime({ workflows: [wf] });
      const result = await (await runtime.start(wf, { orderId: 'o-6', quantity: 1 })).result();
      expect(result.status).toBe('rolled_back');
      expect(result.error?.code).toBe('BAD_STATE');
    }
  });
});
