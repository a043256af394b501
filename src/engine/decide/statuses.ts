// The instance's status (and each branch's), derived from its tracks after every change.
import { isFinalStatus, type InstanceStatus } from '../../core/flow-fields';
import type { BranchRun, InstanceRecord, Track } from '../instance-record';

function trackStatus(t: Track, up: InstanceStatus, down: InstanceStatus): InstanceStatus {
  if (t.flow.wait !== null || t.flow.retryAt !== null) return 'waiting';
  return t.flow.direction === 'up' ? up : down;
}

function branchStatus(b: BranchRun): InstanceStatus {
  switch (b.phase) {
    case 'succeeded':
      return 'completed';
    case 'compensated':
      return 'rolled_back';
    case 'compensation_failed':
      return 'compensation_failed';
    case 'failed':
    case 'aborted':
    case 'queued':
      return 'rolling_back';
    default:
      return trackStatus(b, 'running', 'rolling_back');
  }
}

/** Derives the instance status (and each branch's) from the tracks; final statuses are set where they happen. */
export function refreshStatuses(rec: InstanceRecord): void {
  const g = rec.group;
  if (g !== null) for (const b of g.branches) b.flow.status = branchStatus(b);
  if (isFinalStatus(rec.flow.status) && (rec.flow.status !== 'compensation_failed' || !anyActive(rec))) return;
  if (g === null) {
    rec.flow.status = trackStatus(rec, 'running', 'rolling_back');
    return;
  }
  const parked = (b: BranchRun): boolean => b.flow.wait !== null || b.flow.retryAt !== null;
  const active = g.branches.filter((b) => b.flow.inFlight || parked(b));
  const allWaiting = active.length > 0 && active.every(parked);
  rec.flow.status = allWaiting ? 'waiting' : rec.flow.direction === 'up' ? 'running' : 'rolling_back';
}

function anyActive(rec: InstanceRecord): boolean {
  return rec.group?.branches.some((b) => b.flow.inFlight) ?? rec.flow.inFlight;
}
