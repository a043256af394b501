import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { HistoryObserver, defineWorkflow, error as fail, ok, type InstanceStore } from '../src';
import { TypeormStore } from '../src/store/typeorm';
import { recordingStep, type TestState } from './support/steps';
import { testRuntime } from './support/runtime';

const steps = () => [
  recordingStep('Price', [], { run: (s) => ok({ ...s, total: 40, card: { number: '4111-1111', holder: 'Ada' } }) }),
  recordingStep('Discount', [], { run: (s) => ok({ ...s, total: 36 }) }),
];

describe('the history observer', () => {
  it('records each step’s state change as a JSON Patch, not a copy', async () => {
    const wf = defineWorkflow<TestState>({ name: 'hist', steps: steps(), observers: [new HistoryObserver()] });
    const { runtime } = testRuntime({ workflows: [wf] });
    const handle = await runtime.start(wf, { trail: [] });
    await handle.result();
    const changes = (await runtime.history(handle.id)).filter((h) => h.stateChange !== undefined).map((h) => [h.step, h.stateChange]);
    expect(changes).toEqual([
      [
        'Price',
        [
          { op: 'add', path: '/trail/0', value: 'Price.run' },
          { op: 'add', path: '/total', value: 40 },
          { op: 'add', path: '/card', value: { number: '4111-1111', holder: 'Ada' } },
        ],
      ],
      [
        'Discount',
        [
          { op: 'replace', path: '/total', value: 36 },
          { op: 'add', path: '/trail/1', value: 'Discount.run' },
        ],
      ],
    ]);
  });

  it('never writes the values of redacted fields', async () => {
    const wf = defineWorkflow<TestState>({ name: 'hist-redact', steps: steps(), observers: [new HistoryObserver({ redact: ['card.number'] })] });
    const { runtime } = testRuntime({ workflows: [wf] });
    const handle = await runtime.start(wf, { trail: [] });
    await handle.result();
    const text = JSON.stringify(await runtime.history(handle.id));
    expect(text).not.toContain('4111-1111');
    expect(text).toContain('[redacted]');
    expect(text).toContain('Ada');
  });

  it('honours the same * paths as the logging observer: no card number of a list reaches the history', async () => {
    const wallet = recordingStep('Wallet', [], {
      run: (s) => ok({ ...s, cards: [{ number: '4111-1111', holder: 'Ada' }, { number: '5500-0000', holder: 'Ada' }] }),
    });
    const renew = recordingStep('Renew', [], {
      run: (s) => ok({ ...s, cards: (s.cards as { number: string; holder: string }[]).map((c) => ({ ...c, number: `${c.number}-new` })) }),
    });
    const wf = defineWorkflow<TestState>({ name: 'wallet', steps: [wallet, renew], observers: [new HistoryObserver({ redact: ['cards.*.number'] })] });
    const { runtime } = testRuntime({ workflows: [wf] });
    const handle = await runtime.start(wf, { trail: [] });
    await handle.result();
    const text = JSON.stringify(await runtime.history(handle.id));
    expect(text).not.toContain('4111');
    expect(text).not.toContain('5500');
    expect(text).toContain('Ada');
    const renewed = (await runtime.history(handle.id)).find((h) => h.step === 'Renew' && h.stateChange !== undefined);
    expect(renewed?.stateChange).toEqual([{ op: 'add', path: '/trail/1', value: 'Renew.run' }]);
  });

  it('records the change a failing step returned, and the compensations’ changes', async () => {
    const wf = defineWorkflow<TestState>({
      name: 'hist-fail',
      steps: [recordingStep('A', []), recordingStep('E', [], { run: (s) => fail('no', { ...s, halfDone: true }) })],
      observers: [HistoryObserver],
    });
    const { runtime } = testRuntime({ workflows: [wf] });
    const handle = await runtime.start(wf, { trail: [] });
    await handle.result();
    const lines = (await runtime.history(handle.id)).filter((h) => h.stateChange !== undefined).map((h) => `${h.step ?? ''} ${h.direction} ${h.outcome ?? ''}`);
    expect(lines).toEqual(['A up ok', 'E up error', 'E down ok', 'A down ok']);
  });

  it('adds nothing to the history when it is not registered', async () => {
    const wf = defineWorkflow<TestState>({ name: 'hist-off', steps: steps() });
    const { runtime } = testRuntime({ workflows: [wf] });
    const handle = await runtime.start(wf, { trail: [] });
    await handle.result();
    expect((await runtime.history(handle.id)).some((h) => h.stateChange !== undefined)).toBe(false);
  });

  it('keeps the state changes in the durable store’s history table', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'sagaflow-hist-'));
    const store: InstanceStore = TypeormStore.sqlite({ file: path.join(dir, 'h.db') });
    try {
      const wf = defineWorkflow<TestState>({ name: 'hist-sqlite', steps: steps(), observers: [new HistoryObserver()] });
      const { runtime } = testRuntime({ workflows: [wf], store });
      const handle = await runtime.start(wf, { trail: [] });
      await handle.result();
      const changes = (await store.history(handle.id)).filter((h) => h.stateChange !== undefined);
      expect(changes.map((h) => h.step)).toEqual(['Price', 'Discount']);
      expect(changes[1]?.stateChange).toContainEqual({ op: 'replace', path: '/total', value: 36 });
      await runtime.close();
    } finally {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
