import type { BranchRun, GroupRun, InstanceRecord, TrackFlow } from '../engine/instance-record';

/**
 * A copy of a record that the engine may go on changing in place while the copy stays as it was. Only what the
 * engine changes in place is copied: the flow fields of the main line and of each branch (their compensation stacks
 * are pushed and popped), the group (its branches, finished forEach items and compensation queue) and the list of
 * compensation failures. Everything else is shared, because the engine replaces it rather than changing it: states
 * (see `Track.state`), stack entries, waits, errors, a forEach's items, loop and retry counters. It costs a few
 * object copies per transition, not a walk of the record. The copy carries `version` (the record's own by default).
 */
export function snapshotRecord(record: InstanceRecord, version = record.version): InstanceRecord {
  return {
    ...record,
    version,
    flow: copyFlow(record.flow),
    group: record.group === null ? null : copyGroup(record.group),
    compensationFailures: record.compensationFailures.slice(),
  };
}

function copyFlow(flow: TrackFlow): TrackFlow {
  return { ...flow, stack: flow.stack.slice() };
}

function copyGroup(group: GroupRun): GroupRun {
  const out: GroupRun = { ...group, branches: group.branches.map(copyBranch) };
  // A forEach's finished items, [index, state, settle order, stack]: the stack becomes a branch's again later.
  if (group.done !== undefined) out.done = group.done.map((d) => [d[0], d[1], d[2], d[3].slice()]);
  if (group.queue !== undefined) out.queue = group.queue.slice();
  return out;
}

function copyBranch(branch: BranchRun): BranchRun {
  return { ...branch, flow: copyFlow(branch.flow) };
}
