import type { FlowView } from '../observers/observer';
import type { InstanceRecord, TrackRef } from './instance-record';
import { findBranch, trackOf } from './instance-record';

/** The read-only flow view of one track of a record, as hooks receive it. */
export function flowView(record: InstanceRecord, ref: TrackRef): FlowView {
  const t = trackOf(record, ref) ?? record;
  const f = t.flow;
  const view: FlowView = {
    instanceId: record.id,
    workflow: record.workflow,
    direction: f.direction,
    status: record.flow.status,
    stepName: f.stepName,
    stepIndex: f.stepIndex,
    stepFunc: f.stepFunc,
    attempt: f.attempt,
    retryDelay: f.retryDelay,
    errorReason: ref === null ? f.errorReason : (f.errorReason ?? record.flow.errorReason),
    wait: f.wait,
    lastResult: f.lastResult,
  };
  if (ref === null || record.group === null) return Object.freeze(view);
  const branch = findBranch(record.group, ref);
  return Object.freeze({ ...view, group: record.group.name, branch: branch?.name ?? ref });
}

/** `view` with another `lastResult` (what after-hooks see), built field by field rather than spread. */
export function withLastResult(view: FlowView, lastResult: FlowView['lastResult']): FlowView {
  const next: { -readonly [K in keyof FlowView]: FlowView[K] } = {
    instanceId: view.instanceId,
    workflow: view.workflow,
    direction: view.direction,
    status: view.status,
    stepName: view.stepName,
    stepIndex: view.stepIndex,
    stepFunc: view.stepFunc,
    attempt: view.attempt,
    retryDelay: view.retryDelay,
    errorReason: view.errorReason,
    wait: view.wait,
    lastResult,
  };
  if (view.group !== undefined) next.group = view.group;
  if (view.branch !== undefined) next.branch = view.branch;
  return next;
}
