import { defineWorkflow, ok, type WorkflowDefinition } from '../../src';
import { recordingStep, waitsFor, type Log, type TestState } from './steps';

/** The adapters' test saga: `Wait` parks until `order.paid` for o-1, then `Ship` publishes `order.shipped`. */
export function waitThenShip(name: string, log: Log): WorkflowDefinition<TestState> {
  return defineWorkflow<TestState>({
    name,
    steps: [
      recordingStep('Wait', log, { run: waitsFor('order.paid', { orderId: 'o-1' }) }),
      recordingStep('Ship', log, {
        run: async (state, ctx) => {
          await ctx.publish({ topic: 'order.shipped', payload: { orderId: 'o-1' } });
          return ok(state);
        },
      }),
    ],
  });
}
