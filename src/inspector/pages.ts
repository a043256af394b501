/** The inspector's pages, rendered on the server from what the store holds (every value escaped). */
import { InstanceStatus } from '../core/flow-fields';
import type { HistoryEntry } from '../engine/history-entry';
import type { InstanceRecord } from '../engine/instance-record';
import type { InstanceSummary, StoredOutline } from '../store/instance-store';
import { errorText, historyOutcome, historySubject, instanceFacts, isoTime, shortDuration, timeline } from '../operating/instance-view';
import { describeOutline } from '../workflow/describe';
import { diagramSvg, marksOf } from './diagram';
import { enc, esc, page } from './html';

const STATUSES: readonly string[] = Object.values(InstanceStatus);
/** The most instances the list page reads. */
export const LIST_CAP = 10_000;
/** The most rows its table shows. */
const TABLE_ROWS = 500;

function statusBadge(status: string): string {
  return `<span class="status status-${esc(status)}">${esc(status)}</span>`;
}

/** What the list page shows. */
export interface ListView {
  readonly database: string;
  /** The newest instances (of the workflow filter), at most {@link LIST_CAP}. */
  readonly instances: readonly InstanceSummary[];
  readonly workflow?: string;
  readonly status?: string;
  /** Workflow names to offer in the filter. */
  readonly workflows: readonly string[];
}

/** The instances page: counts by status, filters, the table. */
export function listPage(view: ListView): string {
  const capped = view.instances.length >= LIST_CAP;
  const counts = new Map<string, number>();
  for (const i of view.instances) counts.set(i.status, (counts.get(i.status) ?? 0) + 1);
  const link = (status: string | undefined): string => {
    const q = new URLSearchParams();
    if (view.workflow !== undefined) q.set('workflow', view.workflow);
    if (status !== undefined) q.set('status', status);
    const s = q.toString();
    return `/${s === '' ? '' : `?${s}`}`;
  };
  const shown = view.instances.filter((i) => view.status === undefined || i.status === view.status);
  const countLinks = [`<a href="${esc(link(undefined))}">all <b>${view.instances.length}</b></a>`, ...STATUSES.filter((s) => counts.has(s)).map((s) => `<a href="${esc(link(s))}" data-count="${esc(s)}">${statusBadge(s)} <b>${counts.get(s) ?? 0}</b></a>`)];
  const option = (value: string, selected: string | undefined): string => `<option value="${esc(value)}"${value === selected ? ' selected' : ''}>${esc(value)}</option>`;
  const rows = shown
    .slice(0, TABLE_ROWS)
    .map(
      (i) =>
        `<tr data-id="${esc(i.id)}"><td><a href="/instances/${enc(i.id)}">${esc(i.id)}</a></td><td>${esc(i.workflow)}</td><td class="num">${i.version}</td><td>${statusBadge(i.status)}</td><td>${esc(isoTime(i.updatedAt))}</td><td>${esc(isoTime(i.createdAt))}</td></tr>`,
    )
    .join('');
  return page(
    'instances',
    `<h1>Instances</h1><p class="note">database ${esc(view.database)}${capped ? ` · counts over the newest ${LIST_CAP.toLocaleString('en-US')} instances only` : ''}</p>
<p class="counts">${countLinks.join(' ')}</p>
<form class="filters" method="get" action="/">
<label>workflow<select name="workflow"><option value="">any</option>${view.workflows.map((w) => option(w, view.workflow)).join('')}</select></label>
<label>status<select name="status"><option value="">any</option>${STATUSES.map((s) => option(s, view.status)).join('')}</select></label>
<button type="submit">filter</button></form>
<table id="instances"><thead><tr><th>id</th><th>workflow</th><th>version</th><th>status</th><th>updated</th><th>created</th></tr></thead><tbody>${rows}</tbody></table>
<p class="note">${shown.length === 0 ? 'no instances match' : `${Math.min(shown.length, TABLE_ROWS)} of ${shown.length} shown, newest update first`}</p>`,
  );
}

/** The outline to draw an instance with: its own fingerprint's, else its version's, else the newest. */
export function outlineFor(record: InstanceRecord, stored: readonly StoredOutline[]): { outline: StoredOutline; exact: boolean } | undefined {
  const mine = stored.filter((s) => s.outline.name === record.workflow);
  const version = record.workflowVersion ?? 1;
  const exact = mine.find((s) => record.fingerprint !== undefined && s.outline.fingerprint === record.fingerprint);
  if (exact !== undefined) return { outline: exact, exact: true };
  const same = mine.find((s) => s.outline.version === version) ?? mine[0];
  return same === undefined ? undefined : { outline: same, exact: record.fingerprint === undefined && same.outline.version === version };
}

/** What the instance page shows. */
export interface InstanceView {
  readonly record: InstanceRecord;
  readonly history: readonly HistoryEntry[];
  readonly outlines: readonly StoredOutline[];
  /** Extra HTML after the facts (the operator buttons), already escaped. */
  readonly actions?: string;
  /** A message to show at the top (the outcome of an operator request), plain text. */
  readonly flash?: string;
}

/** An instance: facts, diagram, failures, timeline with durations and state patches, state. */
export function instancePage(view: InstanceView): string {
  const { record, history } = view;
  const facts = instanceFacts(record)
    .map(([label, value]) => `<tr><th>${esc(label)}</th><td>${label === 'status' ? statusBadge(value) : esc(value)}</td></tr>`)
    .join('');
  const chosen = outlineFor(record, view.outlines);
  let diagram: string;
  if (chosen === undefined) {
    diagram = `<p class="note" id="no-diagram">No diagram: no outline of workflow ${esc(record.workflow)} is stored in this database. A runtime stores the outline of every workflow it registers once its store opens (runtimes from before the inspector did not); start the application once and reload.</p>`;
  } else {
    const o = chosen.outline.outline;
    const warning = chosen.exact ? '' : `<p class="note">Drawn from version ${o.version} (${esc(o.fingerprint)}): the outline of the structure this instance started on (${esc(record.fingerprint ?? 'unknown')}) is not stored.</p>`;
    diagram = `${warning}<p class="legend"><span>■ <b style="color:#2e7d32">ran</b></span><span><b style="color:#c62828">failed</b></span><span><b style="color:#7e57c2">↩ compensated</b></span><span><b style="color:#c62828">✗ compensation failed</b></span><span><b style="color:#1f6feb">▭ current position</b></span></p>
<div class="diagram" id="diagram">${diagramSvg(o, marksOf(record, history))}</div>
<details><summary>as text</summary><pre>${esc(describeOutline(o))}</pre></details>`;
  }
  const failures = [
    ...(record.flow.errorReason === null ? [] : [`<div class="failure"><b>why it went down</b>: ${esc(errorText(record.flow.errorReason))}</div>`]),
    ...record.compensationFailures.map((c) => `<div class="failure"><b>compensation of ${esc(c.branch === undefined ? c.step : `${c.branch}/${c.step}`)} failed</b>: ${esc(errorText(c.error))}</div>`),
    ...history.filter((h) => h.code !== undefined && h.kind === 'step-result').map((h) => `<div class="failure">${esc(isoTime(h.at))} · ${esc(historySubject(h))}: <b>${esc(h.code)}</b>${h.note === undefined ? '' : ` — ${esc(h.note)}`}</div>`),
  ];
  const lines = timeline(history)
    .map(({ entry: h, sincePrevious, sinceStart }) => {
      const patch = h.stateChange === undefined ? '' : `<details><summary>${h.stateChange.length} change${h.stateChange.length === 1 ? '' : 's'}</summary><pre>${esc(JSON.stringify(h.stateChange, null, 2))}</pre></details>`;
      return `<tr class="kind-${esc(h.kind)}"><td>${esc(isoTime(h.at))}</td><td class="num">+${esc(shortDuration(sincePrevious))}</td><td class="num">${esc(shortDuration(sinceStart))}</td><td>${esc(h.kind)}</td><td>${esc(historySubject(h))}</td><td>${esc(historyOutcome(h))}</td><td>${statusBadge(h.status)}</td><td>${patch}</td></tr>`;
    })
    .join('');
  return page(
    record.id,
    `<h1>${esc(record.id)} ${statusBadge(record.flow.status)}</h1>${view.flash === undefined ? '' : `<p class="failure" id="flash" style="border-color:#1f6feb;background:#eef4ff">${esc(view.flash)}</p>`}
<table class="facts">${facts}</table>${view.actions ?? ''}
<h2>Workflow</h2>${diagram}
<h2>Failures</h2>${failures.length === 0 ? '<p class="note">none</p>' : failures.join('')}
<h2>Timeline</h2><table id="timeline"><thead><tr><th>at</th><th>after previous</th><th>since start</th><th>kind</th><th>where</th><th>outcome</th><th>status</th><th>state patch</th></tr></thead><tbody>${lines}</tbody></table>
${history.some((h) => h.stateChange !== undefined) ? '' : '<p class="note">No state patches: the workflow records them with a HistoryObserver.</p>'}
<h2>State</h2><pre id="state">${esc(JSON.stringify(record.state, null, 2))}</pre>`,
  );
}

/** A page saying what went wrong (escaped). */
export function messagePage(title: string, message: string): string {
  return page(title, `<h1>${esc(title)}</h1><p>${esc(message)}</p><p><a href="/">back to the instances</a></p>`);
}
