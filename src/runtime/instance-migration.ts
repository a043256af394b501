/**
 * Moving instances in flight to another version of their workflow (`migrate`, `migrateAll`): refused, with what
 * the target lacks, unless their position and compensation stack exist there.
 */
import { isFinalStatus, type InstanceStatus } from '../core/flow-fields';
import type { HistoryEntry } from '../engine/history-entry';
import { versionOf, type InstanceRecord } from '../engine/instance-record';
import { InvalidArgumentError, InvalidOperationError, LeasedElsewhereError, MigrationRefusedError, UnknownInstanceError } from '../errors/runtime-errors';
import { quote, serializeThrown, type SerializedError } from '../errors/serialized-error';
import { checkOptions } from '../input/known-keys';
import { checkInstanceId } from '../store/instance-filter';
import { planMigration } from '../versions/migrate-record';
import type { Blocking } from './blocking';
import type { Instances } from './instances';
import type { OperatorApi } from './operator-api';
import { checkMigrateOptions, checkVersionArgument, noteText } from './operator-input';
import type { Recovery } from './recovery';
import type { Registry } from './registry';
import type { RuntimeContext } from './runtime-context';
import type { MigrateAllOptions, MigrateAllReport, MigrateOptions } from './runtime-options';

export class InstanceMigration {
  constructor(
    private readonly ctx: RuntimeContext,
    private readonly registry: Registry,
    private readonly instances: Instances,
    private readonly blocking: Blocking,
    private readonly recovery: Recovery,
    private readonly operator: OperatorApi,
  ) {}

  /**
   * Moves an instance to version `options.to`.
   * @throws MigrationRefusedError; InvalidOperationError; UnknownInstanceError; UnknownWorkflowError; LeasedElsewhereError
   */
  async migrate(id: string, options: MigrateOptions): Promise<void> {
    const ctx = this.ctx;
    checkInstanceId(id, 'migrate');
    const { to, map } = checkMigrateOptions(options);
    ctx.assertOpen('migrate');
    await ctx.ready();
    const busy = this.instances.live(id);
    if (busy !== undefined && !busy.idle) throw new InvalidOperationError('migrate', id, busy.record.flow.status, 'it has a handler call in flight; migrate it once it parks');
    if (ctx.shared && !(await ctx.acquire(id))) throw new LeasedElsewhereError(id);
    const record = await ctx.store.load(id);
    if (record === undefined) throw new UnknownInstanceError(id);
    const status = record.flow.status;
    if (status === 'completed' || status === 'rolled_back') throw new InvalidOperationError('migrate', id, status, 'an ended instance stays on the version it ran on');
    const active = [record.flow, ...(record.group?.branches.map((b) => b.flow) ?? [])];
    if (record.blocked === undefined && active.some((f) => f.inFlight)) throw new InvalidOperationError('migrate', id, status, 'it has a handler call in flight; migrate it once it parks');
    const target = this.registry.services(record.workflow, 'migrate', to).def;
    if (record.blocked === undefined && versionOf(record) === to && record.fingerprint === target.fingerprint) {
      throw new InvalidOperationError('migrate', id, status, `it already runs on version ${to}`);
    }
    const plan = planMigration(record, target, map);
    if ('missing' in plan) throw new MigrationRefusedError(id, to, plan.missing);
    const now = ctx.clock.now();
    const moved: InstanceRecord = { ...plan.record, updatedAt: now };
    const who = noteText(options);
    const from = `version ${versionOf(record)} (${record.fingerprint ?? 'no fingerprint'})`;
    const f = moved.flow;
    const line: HistoryEntry = {
      at: now,
      kind: 'migrated',
      step: f.stepName,
      direction: f.direction,
      func: f.stepFunc,
      attempt: f.attempt,
      outcome: `version ${to}`,
      status: f.status,
      note: `${who === '' ? '' : `${who}; `}from ${from} to version ${to} (${target.fingerprint})`,
    };
    const lease = this.instances.host.lease(id);
    await ctx.store.save(moved, lease === undefined ? { history: [line] } : { history: [line], lease });
    if (this.instances.live(id) !== undefined) this.instances.forget(id);
    this.blocking.unblocked(id);
    if (!isFinalStatus(moved.flow.status)) await this.recovery.resumeWithInbox(id);
  }

  /** Migrates every unfinished (or `compensation_failed`) instance of a workflow at one version, each on its own. */
  async migrateAll(options: MigrateAllOptions): Promise<MigrateAllReport> {
    checkOptions(options, ['workflow', 'from', 'to', 'map', 'by', 'reason'], 'migrateAll');
    const { workflow, from, ...rest } = options;
    if (typeof workflow !== 'string' || workflow.length === 0) throw new InvalidArgumentError('migrateAll', 'workflow', `must be a workflow name, got ${quote(workflow, 80)}`);
    checkVersionArgument(from, 'from', 'migrateAll');
    checkMigrateOptions(rest);
    const statuses: InstanceStatus[] = ['running', 'waiting', 'rolling_back', 'blocked', 'compensation_failed'];
    const ids = (await this.operator.list({ workflow, version: from, status: statuses, limit: Number.MAX_SAFE_INTEGER })).map((s) => s.id);
    const migrated: string[] = [];
    const refused: { id: string; error: SerializedError }[] = [];
    for (const id of ids) {
      try {
        await this.migrate(id, rest);
        migrated.push(id);
      } catch (error) {
        refused.push({ id, error: serializeThrown(error) });
      }
    }
    return { migrated, refused };
  }
}
