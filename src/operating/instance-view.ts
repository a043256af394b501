/**
 * What an operator sees of an instance, read from its stored record and history alone (never the workflow's code):
 * shared by `sagaflow show` / `sagaflow history` and the inspector's pages.
 */
import type { HistoryEntry } from '../engine/history-entry';
import { versionOf, type InstanceRecord } from '../engine/instance-record';
import type { StackEntry } from '../core/flow-fields';
import type { SerializedError } from '../errors/serialized-error';

/** A time as an ISO string (ms since epoch in). */
export function isoTime(ms: number): string {
  return Number.isFinite(ms) ? new Date(ms).toISOString() : String(ms);
}

/** A duration in ms, short: `850 ms`, `12.3 s`, `4 min 5 s`, `2 h 3 min`, `3 d 4 h`. */
export function shortDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const s = Math.round(ms / 1000);
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  if (s < 86_400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  return `${Math.floor(s / 86_400)} d ${Math.floor((s % 86_400) / 3600)} h`;
}

/** One entry of a compensation stack as text: `charge-payment`, `group provision [mail: send-welcome]`, `when express? (then)`. */
export function stackText(entry: StackEntry): string {
  switch (entry.kind) {
    case 'step':
      return entry.name;
    case 'when':
      return `when ${entry.name} (${entry.branch})`;
    case 'group':
      return `group ${entry.name} [${entry.branches.map((b) => `${b.name}: ${b.stack.map(stackText).join(' → ') || '—'}`).join('; ')}]`;
  }
}

/** An error as one line: `CODE: message`. */
export function errorText(error: SerializedError): string {
  return `${error.code}: ${error.message}`;
}

/** The facts of an instance, as label/value pairs in display order. */
export function instanceFacts(record: InstanceRecord): [string, string][] {
  const f = record.flow;
  const facts: [string, string][] = [
    ['id', record.id],
    ['workflow', `${record.workflow} · version ${versionOf(record)}${record.fingerprint === undefined ? '' : ` · fingerprint ${record.fingerprint}`}`],
    ['status', f.status],
  ];
  if (record.blocked !== undefined) facts.push(['blocked', `${record.blocked.code} since ${isoTime(record.blocked.since)} (was ${record.blocked.status}): ${record.blocked.message}`]);
  facts.push(
    ['direction', f.direction === 'up' ? 'up (running forward)' : 'down (compensating)'],
    ['position', f.stepName === null ? '—' : `${f.stepName} · ${f.stepFunc} · attempt ${f.attempt}${f.inFlight ? ' · call in flight' : ''}`],
  );
  if (f.lastResult !== null) facts.push(['last result', `${f.lastResult.kind} from ${f.lastResult.step} ${f.lastResult.func}${f.lastResult.code === undefined ? '' : ` (${f.lastResult.code})`}`]);
  if (f.wait !== null) {
    const match = Object.keys(f.wait.match).length === 0 ? '' : ` matching ${JSON.stringify(f.wait.match)}`;
    facts.push(['waits for', `${f.wait.topics.join(', ')}${match}${f.wait.deadline === null ? '' : ` until ${isoTime(f.wait.deadline)}`}`]);
  }
  if (f.retryAt !== null) facts.push(['retry at', isoTime(f.retryAt)]);
  if (record.deadline !== null) facts.push(['deadline', isoTime(record.deadline)]);
  if (record.group !== null) {
    facts.push(['group', `${record.group.name} (${record.group.mode}): ${record.group.branches.map((b) => `${b.name} ${b.phase}`).join(', ') || 'no branch started'}`]);
  }
  facts.push(['compensation stack', f.stack.length === 0 ? '— (nothing to compensate)' : f.stack.map(stackText).join(' → ')]);
  if (f.errorReason !== null) facts.push(['error', errorText(f.errorReason)]);
  for (const c of record.compensationFailures) facts.push(['compensation failed', `${c.branch === undefined ? '' : `${c.branch}/`}${c.step}: ${errorText(c.error)}`]);
  if (record.parent !== undefined) facts.push(['parent', record.parent]);
  facts.push(['created', isoTime(record.createdAt)], ['updated', isoTime(record.updatedAt)]);
  return facts;
}

/** A history line with how long after the previous one (and after the start) it came. */
export interface TimelineLine {
  readonly entry: HistoryEntry;
  /** ms since the previous line (0 for the first). */
  readonly sincePrevious: number;
  /** ms since the first line. */
  readonly sinceStart: number;
}

/** The history with durations. */
export function timeline(history: readonly HistoryEntry[]): TimelineLine[] {
  const first = history[0]?.at ?? 0;
  return history.map((entry, i) => ({ entry, sincePrevious: i === 0 ? 0 : entry.at - (history[i - 1] as HistoryEntry).at, sinceStart: entry.at - first }));
}

/** What a history line is about, as text: `↑ charge-payment run #2` or `provision/mail ↓ send rollback`. */
export function historySubject(h: HistoryEntry): string {
  const where = [h.group, h.branch].filter((x) => x !== undefined).join('/');
  const arrow = h.direction === 'up' ? '↑' : '↓';
  const step = h.step === null ? '' : ` ${h.step}`;
  const call = h.func === null ? '' : ` ${h.func}${h.attempt > 1 ? ` #${h.attempt}` : ''}`;
  return `${where === '' ? '' : `${where} `}${arrow}${step}${call}`;
}

/** What came of a history line: its outcome, code and note. */
export function historyOutcome(h: HistoryEntry): string {
  return [h.outcome, h.code, h.note === undefined ? undefined : `— ${h.note}`].filter((x) => x !== undefined).join(' ');
}
