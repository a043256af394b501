import { MemoryStore } from '../src';
import { runOrderCheckout } from '../samples/order-checkout/run';
import { runUserOnboarding } from '../samples/user-onboarding/run';

describe('the samples', () => {
  it('order-checkout completes one order and undoes every effect of the one the carrier refuses', async () => {
    const lines: string[] = [];
    await runOrderCheckout((line) => lines.push(line), { store: new MemoryStore() });
    const text = lines.join('\n');
    expect(text).toMatch(/order-1001 +✓ +order-checkout +completed/);
    expect(text).toMatch(/order-1002 +↑ +ship +run +error NO_CARRIER_CAPACITY/);
    const undo = lines.filter((l) => l.startsWith('order-1002') && l.includes('↓')).map((l) => l.split(/ {2,}/)[2]);
    expect(undo).toEqual(['ship', 'charge-payment', 'reserve-inventory']);
    expect(text).toContain('every effect of order-1002 was undone');
    expect(text).toContain('STATE_INVALID');
  });

  it('user-onboarding undoes every parallel branch and then create-user when billing fails', async () => {
    const lines: string[] = [];
    await runUserOnboarding((line) => lines.push(line), { store: new MemoryStore() });
    const text = lines.join('\n');
    expect(text).toMatch(/signup-ada +✓ +user-onboarding +completed/);
    const undo = lines.filter((l) => l.startsWith('signup-bob') && l.includes('↓') && l.includes('rollback')).map((l) => l.split(/ {2,}/)[2]);
    expect(undo).toEqual(['provision/set-up-billing', 'provision/provision-workspace', 'provision/send-welcome-email', 'create-user']);
    expect(text).toContain('every effect of signup-bob was undone (4 of 4)');
  });
});
