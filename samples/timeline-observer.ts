import type { FlowView, Observer, ResultSummary } from '../src';

/** Where the timeline writes its lines. */
export type Print = (line: string) => void;

const COLUMNS = { instance: 11, step: 30, handler: 19 } as const;

/** Options of {@link TimelineObserver}. */
export interface TimelineOptions {
  /** Width of the instance column: ids up to this long are printed whole, longer ones (UUIDs) cut to 8 characters. @default 11 */
  readonly idWidth?: number;
}

/**
 * An observer that prints one aligned line per step call and per lifecycle point:
 *
 * ```text
 * order-1002  ▶  order-checkout                                     start
 * order-1002  ↑  reserve-inventory              run                 ok
 * order-1002  ↑  charge-payment                 run                 continue → waiting for payment.captured
 * order-1002  ↑  charge-payment                 runHandleInfo       ok
 * order-1002  ↑  ship                           run                 error NO_CARRIER_CAPACITY
 * order-1002  ↩  order-checkout                                     start of rollback: NO_CARRIER_CAPACITY (…)
 * order-1002  ↓  ship                           rollback            ok
 * order-1002  ↓  charge-payment                 rollback            ok
 * order-1002  ↓  reserve-inventory              rollback            ok
 * order-1002  ✗  order-checkout                                     rolled back
 * ```
 *
 * Step lines are printed from `handleAfterStep`, which carries the result in `flow.lastResult`. That hook does not
 * run when a handler returns `continue` (it runs once the continued step finally resolves), and no hook says that
 * an instance parked. So the observer notes each call in `handleBeforeStep`, and:
 * - whoever sees the instance park (here: the sample, from `runtime.get` and the stored wait) reports it with
 *   {@link TimelineObserver.waiting}, which prints `continue → waiting for <topic>`;
 * - otherwise, a call that got no result line by the time its track moves on (the event arrived, a rollback
 *   began, the instance finished) is printed then as `continue (waited for an event)`. Nothing is guessed.
 */
export class TimelineObserver implements Observer {
  /** Calls that began (`handleBeforeStep`) and have had no line yet, by instance and branch. */
  private readonly open = new Map<string, FlowView>();

  private readonly idWidth: number;

  constructor(
    private readonly print: Print = (line) => console.log(line),
    options: TimelineOptions = {},
  ) {
    this.idWidth = options.idWidth ?? COLUMNS.instance;
  }

  handleInit(_state: unknown, flow: FlowView): void {
    this.line(flow.instanceId, '▶', flow.workflow, '', 'start');
  }

  handleBeforeStep(_state: unknown, flow: FlowView): void {
    this.flush(trackOf(flow));
    this.open.set(trackOf(flow), flow);
  }

  handleAfterStep(_state: unknown, flow: FlowView): void {
    const result = flow.lastResult;
    const handler = result?.func ?? flow.stepFunc;
    if (this.open.get(trackOf(flow))?.stepFunc !== handler) this.flush(trackOf(flow));
    this.open.delete(trackOf(flow));
    const attempt = flow.attempt > 1 ? ` (attempt ${flow.attempt})` : '';
    this.line(flow.instanceId, arrow(flow), stepLabel(flow), handler, describe(result) + attempt);
  }

  handleStartRollback(_state: unknown, flow: FlowView): void {
    this.flush(`${flow.instanceId}/`);
    const why = flow.errorReason === null ? '' : `: ${flow.errorReason.code} (${flow.errorReason.message})`;
    this.line(flow.instanceId, '↩', flow.workflow, '', `start of rollback${why}`);
  }

  handleGroupStart(_state: unknown, flow: FlowView): void {
    this.line(flow.instanceId, arrow(flow), flow.group ?? '', '', 'group starts');
  }

  handleGroupEnd(_state: unknown, flow: FlowView): void {
    this.line(flow.instanceId, arrow(flow), flow.group ?? '', '', 'group ends');
  }

  handleWorkflowSuccess(_state: unknown, flow: FlowView): void {
    this.flushInstance(flow.instanceId);
    this.line(flow.instanceId, '✓', flow.workflow, '', 'completed');
  }

  handleWorkflowFailure(_state: unknown, flow: FlowView): void {
    this.flushInstance(flow.instanceId);
    this.line(flow.instanceId, '✗', flow.workflow, '', 'rolled back');
  }

  handleCompensationFailed(_state: unknown, flow: FlowView): void {
    this.flushInstance(flow.instanceId);
    this.line(flow.instanceId, '!', flow.workflow, '', 'compensation failed; an operator must retry or skip it');
  }

  /** Reports a step that returned `continue`: `flow` is the parked instance's flow view, `topics` what it awaits. */
  waiting(flow: FlowView, topics: readonly string[]): void {
    this.open.delete(trackOf(flow));
    this.line(flow.instanceId, arrow(flow), stepLabel(flow), flow.stepFunc, `continue → waiting for ${topics.join(' | ')}`);
  }

  /** A line about something outside the saga (a webhook arriving, a check), aligned with the rest. */
  note(instanceId: string, text: string): void {
    this.line(instanceId, '·', text, '', '');
  }

  /** Prints the open call of a track, which can only have continued, since it got no result line. */
  private flush(track: string): void {
    const call = this.open.get(track);
    if (call === undefined) return;
    this.open.delete(track);
    this.line(call.instanceId, arrow(call), stepLabel(call), call.stepFunc, 'continue (waited for an event)');
  }

  private flushInstance(instanceId: string): void {
    for (const track of [...this.open.keys()]) if (track.startsWith(`${instanceId}/`)) this.flush(track);
  }

  private line(instanceId: string, mark: string, subject: string, handler: string, result: string): void {
    const text = `${shortId(instanceId, this.idWidth).padEnd(this.idWidth)} ${mark}  ${subject.padEnd(COLUMNS.step)} ${handler.padEnd(COLUMNS.handler)} ${result}`;
    this.print(text.trimEnd());
  }
}

/** The main line (`id/`) or a parallel branch (`id/branch`) of an instance. */
function trackOf(flow: FlowView): string {
  return `${flow.instanceId}/${flow.branch ?? ''}`;
}

function arrow(flow: FlowView): string {
  return flow.direction === 'up' ? '↑' : '↓';
}

/** `step`, or `group/step` for a step inside a parallel group. */
function stepLabel(flow: FlowView): string {
  const step = flow.stepName ?? '?';
  return flow.group === undefined ? step : `${flow.group}/${step}`;
}

function describe(result: ResultSummary | null): string {
  if (result === null) return '?';
  return result.kind === 'error' ? `error ${result.code ?? ''}`.trimEnd() : result.kind;
}

/** Readable ids (`order-1001`) stay whole; long ones (UUIDs) are cut to their first 8 characters. */
function shortId(id: string, width: number): string {
  return id.length <= width ? id : id.slice(0, 8);
}
