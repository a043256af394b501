import 'reflect-metadata';
import { MemoryStore, SagaRuntime, silentLogger } from '../../src';
import { SimulatedClock } from '../../src/testing';
import { Ledger } from '../ledger';
import { collectProblems, expectNoProblems, expectThat, resolverOf, runWhenMain, type SampleOptions } from '../support';
import { TimelineObserver, type Print } from '../timeline-observer';
import { ChargeCard, HoldRoom, QuoteFare, Travel, TripBooking, type Trip } from './workflow';

/**
 * Controlling compensation, Sage style: a circuit breaker and a retry from a compensation.
 * - trip-lisbon: the live fare service is down; `quote-fare`'s compensation recovers with the cached fare and the
 *   trip goes on. The card network is busy twice: each time `hold-room`'s compensation releases the room and retries
 *   forward; the third attempt is charged.
 * - trip-oslo: no cached fare either: the compensation aborts, the trip rolls back, and `onExit` shows the customer
 *   TRIP_NOT_BOOKED instead of the internal code.
 */
export async function runTripBooking(print: Print, options: SampleOptions = {}): Promise<void> {
  const suffix = options.idSuffix ?? '';
  const ledger = new Ledger();
  const travel = new Travel(ledger, { lisbon: 180 });
  const clock = new SimulatedClock(Date.UTC(2026, 11, 9, 8, 0, 0));
  const runtime = new SagaRuntime({
    ...(options.store === undefined ? {} : { store: options.store }),
    clock,
    logger: silentLogger,
    workflows: [TripBooking],
    observers: [TimelineObserver],
    resolver: resolverOf([new QuoteFare(travel), new HoldRoom(travel), new ChargeCard(travel), new TimelineObserver(print, { idWidth: 14 })]),
  });
  const problems = collectProblems(runtime);
  try {
    await runtime.start();
    const lisbon = `trip-lisbon${suffix}`;
    travel.failChargesOf(lisbon, 2);
    const handle = await runtime.start<Trip>(TripBooking, { tripId: lisbon, city: 'lisbon' }, { id: lisbon });
    await runtime.idle();
    await clock.advance('5s');
    await runtime.idle();
    await clock.advance('5s');
    const booked = await handle.result();
    expectThat(booked.status === 'completed', `${lisbon} to be booked, got ${booked.status}`);
    print(`${lisbon}: ${booked.status}, fare ${booked.state.fare ?? '-'} (${booked.state.fareSource ?? '-'}), room ${booked.state.hotel ?? '-'}`);
    const decisions = (await runtime.history(lisbon)).filter((h) => h.kind === 'control').map((h) => `${h.outcome ?? ''} at ${h.step ?? ''}`);
    print(`  compensations decided: ${decisions.join(', ')}`);
    expectThat(decisions.join(',') === 'recover at quote-fare,retryForward at hold-room,retryForward at hold-room', `lisbon's decisions, got ${decisions.join(', ')}`);
    for (const line of ledger.lines(lisbon)) print(`  ${lisbon}${line}`);

    const oslo = `trip-oslo${suffix}`;
    const refused = await (await runtime.start<Trip>(TripBooking, { tripId: oslo, city: 'oslo' }, { id: oslo })).result();
    expectThat(refused.status === 'rolled_back' && refused.error?.code === 'TRIP_NOT_BOOKED', `${oslo} to roll back as TRIP_NOT_BOOKED, got ${refused.status} ${refused.error?.code ?? ''}`);
    print(`${oslo}: ${refused.status}: ${refused.error?.message ?? ''}`);
    expectNoProblems(problems);
  } finally {
    await runtime.close();
  }
}

runWhenMain(module, (print) => runTripBooking(print, { store: new MemoryStore() }));
