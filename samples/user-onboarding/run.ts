import 'reflect-metadata';
import { MemoryStore, SagaRuntime, parallelResults, silentLogger, type SagaResult } from '../../src';
import { Ledger } from '../ledger';
import { collectProblems, expectNoProblems, expectThat, resolverOf, type SampleOptions, runWhenMain } from '../support';
import { TimelineObserver, type Print } from '../timeline-observer';
import { Billing, Mailer, UserDirectory, Workspaces } from './services';
import type { OnboardingState } from './state';
import { CreateUser, ProvisionWorkspace, SendWelcomeEmail, SetUpBilling } from './steps';
import { UserOnboarding } from './workflow';

type SignUp = Pick<OnboardingState, 'signupId' | 'name' | 'email' | 'plan'>;

/** The output fields each `provision` branch sets in its own copy of the state. */
const BRANCH_OUTPUT = {
  'send-welcome-email': 'welcomeMessageId',
  'provision-workspace': 'workspaceId',
  'set-up-billing': 'billingCustomerId',
} as const satisfies Record<string, keyof OnboardingState>;

/**
 * Runs the user-onboarding sample and prints its timeline:
 * 1. a sign-up that goes through: create-user, then the `provision` group's three branches, whose tagged
 *    results are read with `parallelResults`;
 * 2. a sign-up whose card is declined in the billing branch: every branch that started is compensated (the
 *    failing one first), then create-user; the ledger shows each effect undone.
 *
 * Deterministic: fixed ids (signup-ada, signup-bob, plus `options.idSuffix`), fresh fakes per call, no real
 * time. Throws `SampleExpectationError` when an outcome is not the expected one.
 */
export async function runUserOnboarding(print: Print, options: SampleOptions = {}): Promise<void> {
  const suffix = options.idSuffix ?? '';
  const ledger = new Ledger();
  const users = new UserDirectory(ledger);
  const billing = new Billing(ledger);
  const runtime = new SagaRuntime({
    ...(options.store === undefined ? {} : { store: options.store }),
    logger: silentLogger,
    workflows: [UserOnboarding],
    resolver: resolverOf([
      new CreateUser(users),
      new SendWelcomeEmail(new Mailer(ledger)),
      new ProvisionWorkspace(new Workspaces(ledger)),
      new SetUpBilling(billing),
      new TimelineObserver(print, { idWidth: 11 + suffix.length }),
    ]),
  });
  const problems = collectProblems(runtime);
  try {
    const ada: SignUp = { signupId: `signup-ada${suffix}`, name: 'Ada', email: 'ada@example.com', plan: 'team' };
    print(`${ada.signupId}: ${ada.name} <${ada.email}>, ${ada.plan} plan (goes through)`);
    const done = await signUp(runtime, ada);
    expectThat(done.status === 'completed', `${ada.signupId} to complete, got ${done.status}`);
    const results = parallelResults<Partial<OnboardingState>>(done.state);
    const summary = Object.entries(BRANCH_OUTPUT).map(([branch, field]) => {
      const outcome = results[branch];
      expectThat(outcome?.ok === true, `branch ${branch} of ${ada.signupId} to succeed`);
      return `${branch} ${outcome?.ok === true ? `ok (${outcome.value[field] ?? '?'})` : 'failed'}`;
    });
    print(`provision results (parallelResults): ${summary.join(', ')}`);
    print(`ledger of ${ada.signupId}:`);
    for (const line of ledger.lines(ada.signupId)) print(line);
    expectThat(ledger.standing(ada.signupId).length === 4, `the four effects of ${ada.signupId} to stand`);

    print('');
    const bob: SignUp = { signupId: `signup-bob${suffix}`, name: 'Bob', email: 'bob@example.com', plan: 'team' };
    billing.decline(bob.signupId);
    print(`${bob.signupId}: ${bob.name} <${bob.email}>, ${bob.plan} plan (the card is declined in the billing branch)`);
    const failed = await signUp(runtime, bob);
    expectThat(failed.status === 'rolled_back', `${bob.signupId} to roll back, got ${failed.status}`);
    expectThat(failed.error?.code === 'CARD_DECLINED', `${bob.signupId} to fail with CARD_DECLINED, got ${failed.error?.code}`);
    print(`ledger of ${bob.signupId}:`);
    for (const line of ledger.lines(bob.signupId)) print(line);
    const effects = ledger.of(bob.signupId);
    const standing = ledger.standing(bob.signupId);
    expectThat(effects.length === 4, `${bob.signupId} to have had 4 effects (account, mail, workspace, customer), got ${effects.length}`);
    expectThat(standing.length === 0, `every effect of ${bob.signupId} to be undone, still standing: ${standing.map((e) => e.ref).join(', ')}`);
    print(`every effect of ${bob.signupId} was undone (${effects.length} of ${effects.length})`);
    expectNoProblems(problems);
  } finally {
    await runtime.close();
  }
}

async function signUp(runtime: SagaRuntime, input: SignUp): Promise<SagaResult<OnboardingState>> {
  const handle = await runtime.start<OnboardingState>(UserOnboarding, input, { id: input.signupId });
  return handle.result();
}

// `node dist/samples/user-onboarding/run.js` runs it on its own, on a MemoryStore.
runWhenMain(module, (print) => runUserOnboarding(print, { store: new MemoryStore() }));
