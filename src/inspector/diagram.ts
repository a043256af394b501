/**
 * The workflow of an instance drawn as inline SVG from its stored outline (no script, no library): steps top to
 * bottom, parallel groups with their branches side by side, forEach item steps, `when` blocks with the branch taken,
 * child workflows; each step coloured by what its history says happened, the current position outlined.
 */
import { isFinalStatus } from '../core/flow-fields';
import type { HistoryEntry } from '../engine/history-entry';
import type { InstanceRecord } from '../engine/instance-record';
import type { OutlineNode, OutlineStep, WorkflowOutline } from '../workflow/workflow-outline';
import { esc } from './html';

/** What happened to a step going up. */
export type UpMark = 'running' | 'ran' | 'failed';
/** What happened to it going down. */
export type DownMark = 'compensating' | 'compensated' | 'compensation-failed';

/** What the history says of each step (by name) and where the instance is. */
export interface DiagramMarks {
  readonly up: ReadonlyMap<string, UpMark>;
  readonly down: ReadonlyMap<string, DownMark>;
  /** The block each `when` took. */
  readonly taken: ReadonlyMap<string, string>;
  /** The steps the instance is at now (several in a parallel group); empty once it ended. */
  readonly current: ReadonlySet<string>;
}

/** The marks of an instance, from its record and history. */
export function marksOf(record: InstanceRecord, history: readonly HistoryEntry[]): DiagramMarks {
  const up = new Map<string, UpMark>();
  const down = new Map<string, DownMark>();
  const taken = new Map<string, string>();
  for (const h of history) {
    if (h.step === null) continue;
    if (h.kind === 'branch-taken' && h.outcome !== undefined) taken.set(h.step, h.outcome);
    if (h.kind === 'step-started' && h.direction === 'up') up.set(h.step, 'running');
    if (h.kind === 'step-started' && h.direction === 'down') down.set(h.step, 'compensating');
    if (h.kind !== 'step-result') continue;
    if (h.direction === 'up') up.set(h.step, h.outcome === 'error' ? 'failed' : h.outcome === 'continue' ? 'running' : 'ran');
    else down.set(h.step, h.outcome === 'error' ? 'compensation-failed' : h.outcome === 'continue' ? 'compensating' : 'compensated');
  }
  for (const c of record.compensationFailures) down.set(c.step, 'compensation-failed');
  const current = new Set<string>();
  if (!isFinalStatus(record.flow.status) || record.flow.status === 'compensation_failed') {
    if (record.flow.stepName !== null) current.add(record.flow.stepName);
    for (const b of record.group?.branches ?? []) if (b.flow.stepName !== null && (b.phase === 'running' || b.phase === 'compensating' || b.phase === 'compensation_failed')) current.add(b.flow.stepName);
  }
  return { up, down, taken, current };
}

interface Box {
  readonly w: number;
  readonly h: number;
  render(x: number, y: number): string;
}

const STEP_W = 210;
const STEP_H = 40;
const GAP = 18;
const PAD = 10;
const HEAD = 22;

const FILL: Readonly<Record<UpMark | 'none', string>> = { none: '#ffffff', running: '#d6e6f8', ran: '#d5f0dc', failed: '#f8d3d3' };
const DOWN_TEXT: Readonly<Record<DownMark, string>> = { compensating: '↩ compensating', compensated: '↩ compensated', 'compensation-failed': '✗ compensation failed' };

function cut(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

function stepBox(step: OutlineStep, marks: DiagramMarks): Box {
  const up = marks.up.get(step.name);
  const down = marks.down.get(step.name);
  const current = marks.current.has(step.name);
  const detail = [step.child === undefined ? undefined : `child ${step.child}`, step.goto === undefined ? undefined : `goto ${step.goto.join(', ')}`, down === undefined ? undefined : DOWN_TEXT[down]]
    .filter((x) => x !== undefined)
    .join(' · ');
  const classes = ['step', `up-${up ?? 'none'}`, ...(down === undefined ? [] : [`down-${down}`]), ...(current ? ['current'] : [])].join(' ');
  const stroke = current ? '#1f6feb' : down === 'compensation-failed' ? '#c62828' : down === 'compensated' ? '#7e57c2' : '#8a93a3';
  return {
    w: STEP_W,
    h: STEP_H,
    render: (x, y) =>
      `<g class="${classes}" data-step="${esc(step.name)}"><title>${esc(`${step.name}: ${up ?? 'not run'}${down === undefined ? '' : `, ${down}`}${current ? ' (current position)' : ''}`)}</title>` +
      `<rect x="${x}" y="${y}" width="${STEP_W}" height="${STEP_H}" rx="6" fill="${FILL[up ?? 'none']}" stroke="${stroke}" stroke-width="${current || down !== undefined ? 2.5 : 1}"${down === 'compensation-failed' ? ' stroke-dasharray="5 3"' : ''}/>` +
      `<text x="${x + STEP_W / 2}" y="${y + (detail === '' ? 25 : 17)}" text-anchor="middle" font-size="13" font-weight="600">${esc(cut(step.name, 28))}</text>` +
      (detail === '' ? '' : `<text x="${x + STEP_W / 2}" y="${y + 32}" text-anchor="middle" font-size="10.5" fill="#444">${esc(cut(detail, 36))}</text>`) +
      '</g>',
  };
}

/** Boxes one under the other, centred, joined by arrows. */
function sequence(boxes: readonly Box[]): Box {
  if (boxes.length === 0) return { w: STEP_W, h: 24, render: (x, y) => `<text x="${x + STEP_W / 2}" y="${y + 16}" text-anchor="middle" font-size="12" fill="#889">— nothing —</text>` };
  const w = Math.max(...boxes.map((b) => b.w));
  const h = boxes.reduce((sum, b) => sum + b.h, 0) + GAP * (boxes.length - 1);
  return {
    w,
    h,
    render: (x, y) => {
      let out = '';
      let at = y;
      boxes.forEach((b, i) => {
        if (i > 0) out += `<line x1="${x + w / 2}" y1="${at - GAP}" x2="${x + w / 2}" y2="${at - 3}" stroke="#8a93a3" marker-end="url(#arrow)"/>`;
        out += b.render(x + (w - b.w) / 2, at);
        at += b.h + GAP;
      });
      return out;
    },
  };
}

/** A dashed frame with a heading around columns laid side by side (a group's branches, a when's blocks). */
function frame(kind: string, name: string, label: string, columns: readonly { readonly title: string; readonly box: Box; readonly strong?: boolean }[]): Box {
  const colsW = columns.reduce((sum, c) => sum + c.box.w, 0) + GAP * Math.max(0, columns.length - 1);
  const colsH = Math.max(...columns.map((c) => c.box.h + 20));
  const w = Math.max(colsW, STEP_W) + 2 * PAD;
  const h = HEAD + colsH + 2 * PAD;
  return {
    w,
    h,
    render: (x, y) => {
      let out = `<g class="${kind}" data-node="${esc(name)}"><rect x="${x}" y="${y}" width="${w}" height="${h}" rx="8" fill="#fafbfc" stroke="#8a93a3" stroke-dasharray="6 4"/>`;
      out += `<text x="${x + PAD}" y="${y + 16}" font-size="12" font-weight="600" fill="#334">${esc(cut(label, 60))}</text>`;
      let at = x + PAD + (w - 2 * PAD - colsW) / 2;
      for (const c of columns) {
        out += `<text x="${at + c.box.w / 2}" y="${y + HEAD + PAD + 8}" text-anchor="middle" font-size="11" ${c.strong === true ? 'font-weight="700" fill="#1f6feb"' : 'fill="#667"'}>${esc(cut(c.title, 34))}</text>`;
        out += c.box.render(at, y + HEAD + PAD + 18);
        at += c.box.w + GAP;
      }
      return `${out}</g>`;
    },
  };
}

function nodeBox(node: OutlineNode, marks: DiagramMarks): Box {
  switch (node.kind) {
    case 'step':
      return stepBox(node, marks);
    case 'parallel':
      return frame('parallel', node.name, `parallel ${node.name} · ${node.onError}, join ${node.join}`, node.branches.map((b) => ({ title: `branch ${b.name}`, box: sequence(b.steps.map((s) => stepBox(s, marks))) })));
    case 'forEach':
      return frame('forEach', node.name, `forEach ${node.name} · per item, ${node.onItemError}`, [{ title: 'each item', box: sequence(node.steps.map((s) => stepBox(s, marks))) }]);
    case 'when': {
      const taken = marks.taken.get(node.name);
      return frame('when', node.name, `when ${node.name}${taken === undefined ? '' : ` · took ${taken}`}`, [
        { title: taken === 'then' ? 'then ✓' : 'then', box: sequence(node.then.map((n) => nodeBox(n, marks))), strong: taken === 'then' },
        { title: taken === 'else' ? 'else ✓' : 'else', box: sequence(node.else.map((n) => nodeBox(n, marks))), strong: taken === 'else' },
      ]);
    }
  }
}

/** The SVG of `outline` with `marks`. */
export function diagramSvg(outline: WorkflowOutline, marks: DiagramMarks): string {
  const body = sequence(outline.nodes.map((n) => nodeBox(n, marks)));
  const w = body.w + 2 * PAD;
  const h = body.h + 2 * PAD;
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" class="workflow-diagram" width="${w}" height="${h}" viewBox="0 0 ${w} ${h}" font-family="system-ui, sans-serif" role="img" aria-label="${esc(`workflow ${outline.name}`)}">` +
    '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="#8a93a3"/></marker></defs>' +
    `${body.render(PAD, PAD)}</svg>`
  );
}
