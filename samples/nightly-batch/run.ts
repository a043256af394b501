import 'reflect-metadata';
import { MemoryStore, SagaRuntime, silentLogger } from '../../src';
import { SimulatedClock } from '../../src/testing';
import { Ledger } from '../ledger';
import { collectProblems, expectNoProblems, expectThat, resolverOf, type SampleOptions, runWhenMain } from '../support';
import { TimelineObserver, type Print } from '../timeline-observer';
import { Billing, ChargeInvoice, LoadInvoices, MailReport, NightlyInvoicing, type NightlyState } from './workflow';

const CUSTOMERS = ['acme', 'globex', 'initech', 'umbrella', 'hooli', 'stark', 'wayne'];

/**
 * Runs the nightly batch: `runtime.schedule` starts `nightly-invoicing` at 02:00 Paris time on a simulated
 * clock, two nights in a row. Each night charges its invoices with a forEach (3 at a time, through the shared
 * `card-network` limiter of 5 charges a second, so some charges wait for a slot); on the second night one card
 * is declined, which (onItemError 'continue') does not stop the others and shows in the report.
 *
 * Deterministic: the schedule is named after `options.idSuffix`, so its instance ids are fresh per run.
 */
export async function runNightlyBatch(print: Print, options: SampleOptions = {}): Promise<void> {
  const suffix = options.idSuffix ?? '';
  const ledger = new Ledger();
  const billing = new Billing(ledger, (night) => CUSTOMERS.map((customer, i) => ({ invoiceId: `inv-${night.slice(5)}-${i + 1}`, customer, cents: 1_000 * (i + 1) })));
  const clock = new SimulatedClock(Date.UTC(2026, 10, 20, 12, 0, 0));
  const runtime = new SagaRuntime({
    ...(options.store === undefined ? {} : { store: options.store }),
    logger: silentLogger,
    clock,
    workflows: [NightlyInvoicing],
    rateLimiters: { 'card-network': { limit: 5, per: '1s' } },
    resolver: resolverOf([new LoadInvoices(billing), new ChargeInvoice(billing), new MailReport(billing), new TimelineObserver(print, { idWidth: 8 })]),
  });
  const problems = collectProblems(runtime);
  try {
    await runtime.start();
    const name = `nightly${suffix}`;
    const schedule = await runtime.schedule<NightlyState>(NightlyInvoicing, {
      name,
      cron: '0 2 * * *',
      timezone: 'Europe/Paris',
      input: (tick) => ({ night: tick.toISOString().slice(0, 10) }),
    });
    print(`schedule ${schedule.name}: 02:00 Europe/Paris; the clock says ${new Date(clock.now()).toISOString()}, next run ${schedule.nextRun()?.toISOString() ?? '-'}`);
    for (const night of ['2026-11-21', '2026-11-22']) {
      if (night === '2026-11-22') billing.decline('hooli');
      print('');
      const tick = schedule.nextRun();
      expectThat(tick !== null, 'the schedule to have a next run');
      await clock.advance((tick?.getTime() ?? 0) - clock.now());
      const id = `schedule:${name}:${tick?.toISOString() ?? ''}`;
      await runtime.idle();
      const throttled = (await runtime.history(id)).filter((h) => h.kind === 'throttled').length;
      await clock.advance('2s'); // the charges that waited for a card-network slot go out
      const result = await runtime.handle<NightlyState>(id).result();
      expectThat(result.status === 'completed', `${id} to complete, got ${result.status}`);
      const { collected = [], declined = [] } = result.state;
      print(`${id}: ${collected.length} collected, ${declined.length} declined (${declined.join(', ') || 'none'}); ${throttled} charges waited for a card-network slot`);
      for (const line of ledger.lines(night)) print(line);
      expectThat(collected.length + declined.length === CUSTOMERS.length, `every invoice of ${night} to be tried once`);
      expectThat(declined.length === (night === '2026-11-22' ? 1 : 0), `the declined count of ${night} to be right, got ${declined.length}`);
      expectThat(throttled > 0, `some charges of ${night} to wait for the rate limiter`);
    }
    expectNoProblems(problems);
  } finally {
    await runtime.close();
  }
}

// `node dist/samples/nightly-batch/run.js` runs it on its own, on a MemoryStore.
runWhenMain(module, (print) => runNightlyBatch(print, { store: new MemoryStore() }));
