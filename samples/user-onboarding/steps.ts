import 'reflect-metadata';
import { BaseStep, Step, error, ok, type StepResult } from '../../src';
import { ServiceError } from '../ledger';
import { Billing, Mailer, UserDirectory, Workspaces } from './services';
import type { OnboardingState } from './state';

/** Creates the account; deletes it when the sign-up rolls back. */
@Step({ name: 'create-user' })
export class CreateUser extends BaseStep<OnboardingState> {
  constructor(private readonly users: UserDirectory) {
    super();
  }

  override async run(state: OnboardingState): Promise<StepResult<OnboardingState>> {
    state.userId = await this.users.create(state.signupId, state.name, state.email);
    return ok(state);
  }

  override async rollback(state: OnboardingState): Promise<StepResult<OnboardingState>> {
    if (state.userId !== undefined) await this.users.delete(state.userId);
    return ok(state);
  }
}

/** Sends the welcome mail. A mail cannot be unsent: its compensation is a follow-up mail. */
@Step({ name: 'send-welcome-email' })
export class SendWelcomeEmail extends BaseStep<OnboardingState> {
  constructor(private readonly mailer: Mailer) {
    super();
  }

  override async run(state: OnboardingState): Promise<StepResult<OnboardingState>> {
    state.welcomeMessageId = await this.mailer.send(state.signupId, state.email, `Welcome, ${state.name}!`);
    return ok(state);
  }

  override async rollback(state: OnboardingState): Promise<StepResult<OnboardingState>> {
    if (state.welcomeMessageId !== undefined) await this.mailer.followUp(state.welcomeMessageId, 'Sorry, your sign-up failed');
    return ok(state);
  }
}

/** Creates the user's workspace; removes it when the sign-up rolls back. */
@Step({ name: 'provision-workspace' })
export class ProvisionWorkspace extends BaseStep<OnboardingState> {
  constructor(private readonly workspaces: Workspaces) {
    super();
  }

  override async run(state: OnboardingState): Promise<StepResult<OnboardingState>> {
    state.workspaceId = await this.workspaces.create(state.signupId, state.name);
    return ok(state);
  }

  override async rollback(state: OnboardingState): Promise<StepResult<OnboardingState>> {
    if (state.workspaceId !== undefined) await this.workspaces.remove(state.workspaceId);
    return ok(state);
  }
}

/**
 * Creates a billing customer and subscribes it to the plan. When the subscription fails, the customer already
 * exists: the error result carries the state with `billingCustomerId`, so this step's own rollback (called
 * first, as the failing step) can delete it.
 */
@Step({ name: 'set-up-billing' })
export class SetUpBilling extends BaseStep<OnboardingState> {
  constructor(private readonly billing: Billing) {
    super();
  }

  override async run(state: OnboardingState): Promise<StepResult<OnboardingState>> {
    state.billingCustomerId = await this.billing.createCustomer(state.signupId, state.email);
    try {
      await this.billing.subscribe(state.signupId, state.billingCustomerId, state.plan);
    } catch (e) {
      if (e instanceof ServiceError) return error({ code: e.code, message: e.message }, state);
      throw e;
    }
    return ok(state);
  }

  override async rollback(state: OnboardingState): Promise<StepResult<OnboardingState>> {
    if (state.billingCustomerId !== undefined) await this.billing.deleteCustomer(state.billingCustomerId);
    return ok(state);
  }
}
