import 'reflect-metadata';
import { Workflow, parallel, HistoryObserver } from '../../src';
import { TimelineObserver } from '../timeline-observer';
import { OnboardingState } from './state';
import { CreateUser, ProvisionWorkspace, SendWelcomeEmail, SetUpBilling } from './steps';

/**
 * Create the user, then provision in parallel: the welcome mail, the workspace and billing, each branch on its
 * own copy of the state. When a branch fails (fail fast, the default), no more branches start, running ones
 * are aborted, every branch that started is compensated with its own state, then `create-user` is undone.
 */
@Workflow({
  name: 'user-onboarding',
  steps: [CreateUser, parallel('provision', [SendWelcomeEmail, ProvisionWorkspace, SetUpBilling])],
  observers: [TimelineObserver, new HistoryObserver()],
  state: OnboardingState,
})
export class UserOnboarding {}
