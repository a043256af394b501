import 'reflect-metadata';
import { MemoryStore, SagaRuntime, silentLogger, type InstanceStore, type WorkflowDefinition } from '../../src';
import { SimulatedClock, checkCompatible } from '../../src/testing';
import { Ledger } from '../ledger';
import { collectProblems, expectThat, resolverOf, type SampleOptions, runWhenMain } from '../support';
import type { Print } from '../timeline-observer';
import { AwaitApproval, CheckCredit, Disburse, Lender, LoanV1, LoanV2, ScoreFraud, type Application } from './workflow';

/**
 * Deploying a changed workflow while instances wait, three releases on one database:
 * 1. Monday (version 1): two loan applications park, waiting for a loan officer.
 * 2. Tuesday: version 2 adds a fraud check. `checkCompatible` says a waiting version-1 application would skip it if
 *    moved, so the deploy keeps version 1 registered beside version 2: the waiting ones finish on version 1, new
 *    ones start on version 2.
 * 3. Wednesday: a deploy that drops version 1 while one application still waits on it. That application is
 *    `blocked` (nothing of it runs), and an operator moves it to version 2 with `migrate`, recording who and why.
 */
export async function runVersionedDeploy(print: Print, options: SampleOptions = {}): Promise<void> {
  const suffix = options.idSuffix ?? '';
  const ledger = new Ledger();
  const lender = new Lender(ledger);
  const clock = new SimulatedClock(Date.UTC(2026, 11, 7, 9, 0, 0));
  const store: InstanceStore | undefined = options.store;
  const problems: string[] = [];
  const release = async (day: string, workflows: WorkflowDefinition[]): Promise<SagaRuntime> => {
    const runtime = new SagaRuntime({
      ...(store === undefined ? {} : { store }),
      clock,
      logger: silentLogger,
      workflows,
      resolver: resolverOf([new CheckCredit(lender), new ScoreFraud(lender), new AwaitApproval(), new Disburse(lender)]),
    });
    collectProblems(runtime);
    runtime.errors$.subscribe((p) => problems.push(`${p.kind} ${p.instanceId ?? ''} ${p.error.code}`));
    await runtime.start();
    print(`${day}: deployed ${workflows.map((w) => `${w.name} v${w.version} (${w.fingerprint})`).join(' and ')}`);
    return runtime;
  };
  const id = (n: number): string => `loan-${n}${suffix}`;
  const apply = async (runtime: SagaRuntime, n: number, applicant: string): Promise<void> => {
    await runtime.start<Application>('loan-application', { applicationId: id(n), applicant, amount: n * 1000 }, { id: id(n) });
    await runtime.idle();
    const snapshot = await runtime.get(id(n));
    print(`  ${id(n)} (${applicant}) starts on version ${snapshot.version} and ${snapshot.status === 'waiting' ? 'waits for a loan officer' : snapshot.status}`);
  };
  const approve = async (runtime: SagaRuntime, n: number): Promise<void> => {
    await runtime.publish({ topic: 'loan.approved', payload: { applicationId: id(n), officer: 'grace' } });
    const result = await runtime.handle<Application>(id(n)).result();
    expectThat(result.status === 'completed', `${id(n)} to complete, got ${result.status}`);
    print(`  ${id(n)} approved and ${result.status} on version ${(await runtime.get(id(n))).version}; fraud check ${result.state.fraudChecked === true ? 'ran' : 'did not run'}`);
  };

  let runtime = await release('monday', [LoanV1]);
  await apply(runtime, 1, 'ada');
  await apply(runtime, 2, 'alan');
  await runtime.close();

  print('');
  const report = checkCompatible(LoanV1, LoanV2);
  print(`checkCompatible(v1, v2): ${report.compatible ? 'every position can move' : 'not every position can move as it is'}`);
  for (const p of report.positions.filter((q) => !q.compatible)) print(`  ${p.position}: ${p.reasons.join('; ')}`);
  runtime = await release('tuesday', [LoanV1, LoanV2]);
  await apply(runtime, 3, 'grace');
  await approve(runtime, 1);
  await approve(runtime, 3);
  await runtime.close();

  print('');
  runtime = await release('wednesday', [LoanV2]);
  const blocked = await runtime.get(id(2));
  expectThat(blocked.status === 'blocked' && blocked.blocked?.code === 'UNKNOWN_VERSION', `${id(2)} to be blocked for want of version 1, got ${blocked.status}`);
  print(`  ${id(2)} is ${blocked.status} (${blocked.blocked?.code ?? ''}): nothing of it runs until version 1 is back or it is migrated`);
  await runtime.migrate(id(2), { to: 2, by: 'ops', reason: 'version 1 is retired' });
  print(`  runtime.migrate(${id(2)}, { to: 2 }) → it waits again, on version ${(await runtime.get(id(2))).version}`);
  await approve(runtime, 2);
  const history = (await runtime.history(id(2))).filter((h) => ['blocked', 'migrated', 'unblocked'].includes(h.kind));
  for (const h of history) print(`  history of ${id(2)}: ${h.kind}${h.code === undefined ? '' : ` ${h.code}`}${h.note === undefined ? '' : ` — ${h.note}`}`);
  await runtime.close();

  print('');
  for (const n of [1, 2, 3]) for (const line of ledger.lines(id(n))) print(`${id(n)}${line}`);
  const expected = problems.filter((p) => p.startsWith('instance-blocked'));
  expectThat(problems.length === expected.length && expected.length === 1, `only ${id(2)}'s block to be reported, got: ${problems.join('; ')}`);
}

// `node dist/samples/versioned-deploy/run.js` runs it on its own, on a MemoryStore.
runWhenMain(module, (print) => runVersionedDeploy(print, { store: new MemoryStore() }));
