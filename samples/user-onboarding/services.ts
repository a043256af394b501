/**
 * In-memory fakes of the services a sign-up touches. Calls are asynchronous, undo calls are safe to repeat,
 * and every effect (and its undo) is written to a {@link Ledger}.
 */
import { type Ledger, ServiceError } from '../ledger';

/** User accounts. */
export class UserDirectory {
  private readonly users = new Map<string, { email: string; deleted: boolean }>();

  constructor(private readonly ledger: Ledger) {}

  async create(signupId: string, name: string, email: string): Promise<string> {
    await Promise.resolve();
    const id = `usr-${this.users.size + 1}`;
    this.users.set(id, { email, deleted: false });
    this.ledger.record(signupId, 'users', id, `created the account of ${name}`);
    return id;
  }

  async delete(userId: string): Promise<void> {
    await Promise.resolve();
    const user = this.users.get(userId);
    if (user === undefined || user.deleted) return;
    user.deleted = true;
    this.ledger.undo(userId, 'deleted');
  }
}

/** Outgoing mail. A sent mail cannot be unsent; it is compensated by a follow-up. */
export class Mailer {
  private sent = 0;
  private readonly followedUp = new Set<string>();

  constructor(private readonly ledger: Ledger) {}

  async send(signupId: string, to: string, subject: string): Promise<string> {
    await Promise.resolve();
    this.sent += 1;
    const id = `msg-${this.sent}`;
    this.ledger.record(signupId, 'mail', id, `mailed "${subject}" to ${to}`);
    return id;
  }

  /** Sends a correction for an earlier mail (once). */
  async followUp(messageId: string, subject: string): Promise<void> {
    await Promise.resolve();
    if (this.followedUp.has(messageId)) return;
    this.followedUp.add(messageId);
    this.sent += 1;
    this.ledger.undo(messageId, `followed up with "${subject}"`);
  }
}

/** Team workspaces. */
export class Workspaces {
  private readonly workspaces = new Map<string, { archived: boolean }>();

  constructor(private readonly ledger: Ledger) {}

  async create(signupId: string, owner: string): Promise<string> {
    await Promise.resolve();
    const id = `ws-${this.workspaces.size + 1}`;
    this.workspaces.set(id, { archived: false });
    this.ledger.record(signupId, 'workspaces', id, `created a workspace for ${owner}`);
    return id;
  }

  async remove(workspaceId: string): Promise<void> {
    await Promise.resolve();
    const ws = this.workspaces.get(workspaceId);
    if (ws === undefined || ws.archived) return;
    ws.archived = true;
    this.ledger.undo(workspaceId, 'removed');
  }
}

/** Customers and subscriptions. Tell it to decline a sign-up's card with {@link Billing.decline}. */
export class Billing {
  private readonly customers = new Map<string, { email: string; deleted: boolean }>();
  private readonly declined = new Set<string>();

  constructor(private readonly ledger: Ledger) {}

  /** From now on, subscriptions for `signupId` fail with `CARD_DECLINED`. */
  decline(signupId: string): void {
    this.declined.add(signupId);
  }

  async createCustomer(signupId: string, email: string): Promise<string> {
    await Promise.resolve();
    const id = `cus-${this.customers.size + 1}`;
    this.customers.set(id, { email, deleted: false });
    this.ledger.record(signupId, 'billing', id, `created a billing customer`);
    return id;
  }

  async subscribe(signupId: string, customerId: string, plan: string): Promise<void> {
    await Promise.resolve();
    if (this.declined.has(signupId)) throw new ServiceError('CARD_DECLINED', `the card of ${customerId} was declined for the ${plan} plan`);
  }

  /** Deletes the customer and any subscription it has. */
  async deleteCustomer(customerId: string): Promise<void> {
    await Promise.resolve();
    const customer = this.customers.get(customerId);
    if (customer === undefined || customer.deleted) return;
    customer.deleted = true;
    this.ledger.undo(customerId, 'deleted');
  }
}
