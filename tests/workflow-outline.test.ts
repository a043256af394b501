import { BaseStep, Step, child, defineWorkflow, forEach, parallel, when, branch } from '../src';

@Step({ name: 'reserve' })
class Reserve extends BaseStep {}
@Step({ name: 'charge', retry: { maxAttempts: 3 } })
class Charge extends BaseStep {}
@Step({ name: 'charge-no-retry' })
class ChargePlain extends BaseStep {}
@Step({ name: 'ship' })
class Ship extends BaseStep {}
@Step({ name: 'mail' })
class Mail extends BaseStep {}
@Step({ name: 'skip-ahead', goto: ['items'] })
class SkipAhead extends BaseStep {}

const Payment = defineWorkflow({ name: 'payment', steps: [Charge] });

describe('the outline of a definition', () => {
  it('nests when blocks, groups, forEach items and children as they were written', () => {
    const def = defineWorkflow({
      name: 'order',
      steps: [
        Reserve,
        when(() => true, [parallel('rush', [Mail, branch('pay', [child(Payment, { input: () => ({}) })], { returns: 'paid' })])], [SkipAhead], { name: 'express?' }),
        forEach('items', () => [], [Ship]),
      ],
    });
    expect(def.outline).toEqual({
      name: 'order',
      version: 1,
      fingerprint: def.fingerprint,
      nodes: [
        { kind: 'step', name: 'reserve' },
        {
          kind: 'when',
          name: 'express?',
          then: [
            {
              kind: 'parallel',
              name: 'rush',
              branches: [
                { name: 'mail', key: 'mail', steps: [{ kind: 'step', name: 'mail' }] },
                { name: 'pay', key: 'paid', steps: [{ kind: 'step', name: 'child:payment', child: 'payment' }] },
              ],
              onError: 'failFast',
              join: 'all',
              compensation: 'parallel',
              maxConcurrency: null,
            },
          ],
          else: [{ kind: 'step', name: 'skip-ahead', goto: ['items'] }],
        },
        { kind: 'forEach', name: 'items', steps: [{ kind: 'step', name: 'ship' }], onItemError: 'failFast', compensation: 'parallel', maxConcurrency: 10 },
      ],
    });
  });

  it('has the same fingerprint for the same structure, whatever the policies and the version', () => {
    const a = defineWorkflow({ name: 'wf', steps: [Reserve, parallel('g', [Mail, Ship], { maxConcurrency: 1 })] });
    const b = defineWorkflow({ name: 'wf', version: 2, steps: [Reserve, parallel('g', [Mail, Ship], { onError: 'completeAll' })], deadline: '1h' });
    expect(a.fingerprint).toMatch(/^[0-9a-f]{16}$/);
    expect(b.fingerprint).toBe(a.fingerprint);
  });

  it('changes the fingerprint when a step is added, removed, renamed or moved', () => {
    const base = defineWorkflow({ name: 'wf', steps: [Reserve, Charge, Ship] }).fingerprint;
    const variants = [
      [Reserve, Charge, Ship, Mail],
      [Reserve, Ship],
      [Reserve, ChargePlain, Ship],
      [Charge, Reserve, Ship],
      [Reserve, parallel('g', [Charge]), Ship],
    ];
    const prints = variants.map((steps) => defineWorkflow({ name: 'wf', steps }).fingerprint);
    expect(new Set([base, ...prints]).size).toBe(variants.length + 1);
  });

  it('refuses a version that is not a positive integer', () => {
    for (const version of [0, -1, 1.5, '2', Number.NaN]) {
      expect(() => defineWorkflow({ name: 'wf', version: version as number, steps: [Reserve] })).toThrow(expect.objectContaining({ code: 'BAD_OPTION' }));
    }
  });
});
