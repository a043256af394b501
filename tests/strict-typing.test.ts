import { typecheck } from './support/typecheck';

/**
 * Application code that a strict project (`exactOptionalPropertyTypes` included) must be able to write. A state is
 * stored as JSON, where an optional property set to `undefined` and a missing one are the same, so handing back
 * `{ ...state, optional: maybeUndefined }` is allowed wherever a state is returned.
 */

const STATES = `
import 'reflect-metadata';
import { BaseStep, Step, Workflow, defineWorkflow, child, parallel, forEach, ok, error, type Observer } from 'sagaflow';

export class Order {
  orderId!: string;
  paymentId?: string;
  note?: string;
}
export class Payment {
  orderId!: string;
  paymentId?: string;
}
export const maybe = (): string | undefined => (Math.random() > 0.5 ? 'x' : undefined);
`;

describe('a strict application (exactOptionalPropertyTypes)', () => {
  it('hands back states with optional properties set to a possibly-undefined value from steps, into functions and observers', () => {
    const source = `${STATES}
@Step({ name: 'note' })
class Note extends BaseStep<Order> {
  override run(state: Order) {
    return ok({ ...state, note: maybe() });
  }
  override rollback(state: Order) {
    return state.note === undefined ? error('nothing to undo', state) : ok({ ...state, note: undefined });
  }
}

@Step({ name: 'authorize' })
class Authorize extends BaseStep<Payment> {
  override run(state: Payment) {
    return ok({ ...state, paymentId: maybe() });
  }
}

@Workflow({ name: 'take-payment', steps: [Authorize], state: Payment })
class TakePayment {}

const audit: Observer<Order> = {
  handleAfterStep(state) {
    return ok({ ...state, note: maybe() });
  },
};

export const checkout = defineWorkflow<Order>({
  name: 'checkout',
  steps: [
    Note,
    child(TakePayment, {
      input: (o: Order) => ({ orderId: o.orderId }),
      into: (o: Order, paid: Payment) => ok({ ...o, paymentId: paid.paymentId }),
    }),
    parallel('notes', [Note], { into: (o: Order) => ok({ ...o, note: maybe() }) }),
    forEach('each', (o: Order) => [o], [Note], { into: (o: Order) => ok({ ...o, note: maybe() }) }),
  ],
  observers: [audit],
  state: Order,
});
`;
    expect(typecheck({ 'app.ts': source })).toEqual([]);
  });

  it('still refuses a required property set to a possibly-undefined value', () => {
    const source = `${STATES}
@Step({ name: 'lose-id' })
export class LoseId extends BaseStep<Order> {
  override run(state: Order) {
    return ok({ ...state, orderId: maybe() });
  }
}
`;
    expect(typecheck({ 'app.ts': source })).toEqual([expect.stringMatching(/^app\.ts\(\d+,\d+\): TS2416 Property 'run' in type 'LoseId' is not assignable/)]);
  });
});
