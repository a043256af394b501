// forEach: its items read from the state, a branch run per item, and the finished items kept compactly until the
// group resolves.
import { serializeThrown, quote, type SerializedError } from '../../errors/serialized-error';
import { sanitizeJson } from '../../core/safe-json';
import type { CompiledGroup } from '../../workflow/workflow-definition';
import { freshFlow, type BranchRun, type GroupRun } from '../instance-record';
import type { Ctx } from './context';
import { branchRun } from './group-node';

/** The branch run of forEach item `i`: named `group[i]`, keyed by its index. */
export function itemRun(g: GroupRun, i: number, state: unknown): BranchRun {
  return branchRun(`${g.name}[${i}]`, String(i), state);
}

/** The items of a forEach, read from the state and stored, or the error saying why they could not be. */
export function readItems(c: Ctx, node: CompiledGroup): unknown[] | SerializedError {
  const fail = (message: string, details: Record<string, unknown> = {}): SerializedError => ({
    code: 'FOR_EACH_ITEMS_FAILED',
    name: 'ForEachError',
    message: `the items of forEach ${quote(node.name)} ${message}`,
    details: { group: node.name, ...details },
  });
  try {
    const items: unknown = node.each?.items(c.env.hydrate(c.rec.state));
    if (!Array.isArray(items)) return fail(`must be an array, got ${items === null ? 'null' : typeof items}`);
    const stored = sanitizeJson(items);
    return Array.isArray(stored) ? stored : fail('could not be stored');
  } catch (thrown) {
    const cause = serializeThrown(thrown);
    return fail(`could not be read: ${cause.message}`, { cause });
  }
}

/** Turns a forEach's compactly kept items back into branches, all in item order, for the group's resolution. */
export function restoreDone(g: GroupRun): void {
  if (g.done === undefined) return;
  const restored = g.done.map(([i, state, seq, stack]): BranchRun => ({
    ...itemRun(g, i, state),
    flow: { ...freshFlow(), stack, status: 'completed' },
    phase: 'succeeded',
    settledSeq: seq,
    outcome: { ok: true, value: state },
  }));
  g.branches = [...restored, ...g.branches].sort((x, y) => Number(x.key) - Number(y.key));
  delete g.done;
}
