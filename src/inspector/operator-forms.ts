/**
 * The inspector's operator buttons: each posts a small form to a confirmation page, whose form writes the operator
 * request. Both carry the server's random token (a page of another origin cannot know it), and the server answers
 * only 127.0.0.1 / localhost Host headers.
 */
import type { InstanceRecord } from '../engine/instance-record';
import type { OperatorRequestKind } from '../store/operator-request';
import { enc, esc, page } from './html';

/** What each button asks, in the words of its confirmation. */
export const ACTIONS: Readonly<Record<OperatorRequestKind, { readonly label: string; readonly confirm: string }>> = {
  'retry-compensation': { label: 'Retry compensation', confirm: 'call its failed compensations again (from attempt 1), then go on compensating' },
  'skip-compensation': { label: 'Skip compensation', confirm: 'give up on its failed compensations and go on with the earlier ones' },
  cancel: { label: 'Cancel (roll back)', confirm: 'roll it back: the current step is compensated, then the ones before it' },
  resume: { label: 'Resume', confirm: 'let it go on where it was blocked, on a runtime that has its definition registered again' },
};

/** The requests that apply to an instance in its status. */
export function actionsFor(record: InstanceRecord): OperatorRequestKind[] {
  switch (record.flow.status) {
    case 'compensation_failed':
      return ['retry-compensation', 'skip-compensation'];
    case 'running':
    case 'waiting':
    case 'rolling_back':
      return ['cancel'];
    case 'blocked':
      return ['resume'];
    default:
      return [];
  }
}

/** The buttons of an instance page (nothing for an ended instance). */
export function actionButtons(record: InstanceRecord, token: string): string {
  const kinds = actionsFor(record);
  if (kinds.length === 0) return '';
  const forms = kinds
    .map(
      (kind) =>
        `<form method="post" action="/instances/${enc(record.id)}/confirm"><input type="hidden" name="token" value="${esc(token)}"><input type="hidden" name="kind" value="${esc(kind)}"><button type="submit" data-action="${esc(kind)}">${esc(ACTIONS[kind].label)}…</button></form>`,
    )
    .join('');
  return `<p class="actions">${forms}<span class="note">each asks for confirmation, then writes a request that the runtime running the instance applies</span></p>`;
}

/** The confirmation page of a request. */
export function confirmPage(record: InstanceRecord, kind: OperatorRequestKind, token: string): string {
  const reasonRequired = kind === 'cancel';
  return page(
    `confirm ${kind}`,
    `<h1>${esc(ACTIONS[kind].label)}: ${esc(record.id)}?</h1>
<p>This will ask the runtime that runs <b>${esc(record.id)}</b> (${esc(record.workflow)}, now ${esc(record.flow.status)}) to ${esc(ACTIONS[kind].confirm)}. Who and why are recorded in its history.</p>
<form method="post" action="/instances/${enc(record.id)}/requests" class="filters">
<input type="hidden" name="token" value="${esc(token)}"><input type="hidden" name="kind" value="${esc(kind)}">
<label>who<input name="by" value="inspector"></label>
<label>why${reasonRequired ? ' (required)' : ''}<input name="reason"${reasonRequired ? ' required' : ''} size="50"></label>
<button type="submit" id="confirm">Confirm: ${esc(ACTIONS[kind].label.toLowerCase())}</button></form>
<p><a href="/instances/${enc(record.id)}">back, changing nothing</a></p>`,
  );
}
