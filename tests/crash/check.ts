import type { InstanceStatus, InstanceStore } from '../../src';
import type { LedgerSnapshot, ProblemRow, RunRow } from './ledger';
import { DECLINED, STEPS, effectKey, type PlannedSaga } from './workload';

/** How a saga ended, as its store says. */
export interface SagaOutcome {
  readonly status: InstanceStatus;
  /** The code of the error it rolled back for, or null. */
  readonly errorCode: string | null;
}

const sorted = (items: Iterable<string>): string[] => [...items].sort();
const same = (a: Iterable<string>, b: Iterable<string>): boolean => sorted(a).join('|') === sorted(b).join('|');

/**
 * What is wrong with how the sagas ended and what their ledger says (empty when all is well):
 * - every saga ended as planned: `completed`, or `rolled_back` with {@link DECLINED} (none stuck, none
 *   `compensation_failed`);
 * - the ledger balances: every saga has the effect of each of its steps; a completed saga has no compensation;
 *   a rolled-back one has the compensation of every effect; no compensation is without its effect;
 * - no accepted event was lost or handled twice: every saga's waiting step received exactly one event, one
 *   published for it, and every saga a publisher has an acknowledgement for was resumed.
 */
export function sagaProblems(planned: readonly PlannedSaga[], outcomes: ReadonlyMap<string, SagaOutcome>, ledger: LedgerSnapshot): string[] {
  const problems: string[] = [];
  const known = new Set(planned.map((s) => s.id));
  const effectKeys = new Set(ledger.effects.map((e) => e.key));
  for (const saga of planned) {
    const outcome = outcomes.get(saga.id);
    const expected = saga.declines ? `rolled_back (${DECLINED})` : 'completed';
    const actual = outcome === undefined ? 'missing from the store' : `${outcome.status}${outcome.errorCode === null ? '' : ` (${outcome.errorCode})`}`;
    if (actual !== expected) problems.push(`${saga.id}: expected ${expected}, got ${actual}`);

    const effects = ledger.effects.filter((e) => e.saga === saga.id);
    if (!same(effects.map((e) => e.key), STEPS.map((step) => effectKey(saga.id, step)))) {
      problems.push(`${saga.id}: expected the effect of each of ${STEPS.join(', ')}, the ledger has ${JSON.stringify(sorted(effects.map((e) => e.step)))}`);
    }
    const compensated = ledger.compensations.filter((c) => c.saga === saga.id);
    const wanted = saga.declines ? STEPS : [];
    if (!same(compensated.map((c) => c.effectKey), wanted.map((step) => effectKey(saga.id, step)))) {
      problems.push(`${saga.id}: expected compensations of ${JSON.stringify(wanted)}, the ledger has ${JSON.stringify(sorted(compensated.map((c) => c.step)))}`);
    }

    const handled = ledger.handled.filter((h) => h.saga === saga.id);
    if (handled.length !== 1) problems.push(`${saga.id}: expected its waiting step to receive exactly one event, it received ${JSON.stringify(handled.map((h) => h.eventId))}`);
    for (const h of handled) if (!h.eventId.startsWith(`${saga.id}:captured:`)) problems.push(`${saga.id}: received ${h.eventId}, which was published for another saga`);
  }
  for (const c of ledger.compensations) {
    if (!effectKeys.has(c.effectKey)) problems.push(`${c.saga}: compensation ${c.key} (by ${c.worker}) undid ${c.effectKey}, which never happened`);
  }
  const resumed = new Set(ledger.handled.map((h) => h.saga));
  for (const ack of ledger.acks) {
    if (!resumed.has(ack.saga)) problems.push(`${ack.saga}: event ${ack.eventId} was acknowledged (delivered ${ack.delivered}${ack.retained ? ', retained' : ''}) but the saga was never resumed`);
  }
  for (const id of new Set([...ledger.effects, ...ledger.compensations, ...ledger.handled].map((row) => row.saga))) {
    if (!known.has(id)) problems.push(`${id}: the ledger has rows of a saga that was never planned`);
  }
  return problems;
}

/**
 * Handlers called again (a re-run after a crash) with another idempotency key than the first time (empty when
 * there is none): a re-run must keep its key, so the service it calls can tell it is the same call.
 */
export function changedKeys(runs: readonly RunRow[]): string[] {
  const first = new Map<string, RunRow>();
  const problems: string[] = [];
  for (const r of runs) {
    const call = `${r.saga} ${r.step}.${r.func}`;
    const earlier = first.get(call);
    if (earlier === undefined) first.set(call, r);
    else if (earlier.key !== r.key) problems.push(`${call}: called with ${earlier.key} on ${earlier.worker}, then with ${r.key} on ${r.worker}`);
  }
  return problems;
}

/**
 * Pairs of handler calls of one saga by two different workers at overlapping times (empty when there is none).
 * A call without an end belongs to a worker that died in it: it ends when that worker died (`deaths`), or, for
 * a worker that did not die, never.
 */
export function overlappingRuns(runs: readonly RunRow[], deaths: ReadonlyMap<string, number>): string[] {
  const end = (r: RunRow): number => r.endedAt ?? deaths.get(r.worker) ?? Number.POSITIVE_INFINITY;
  const bySaga = new Map<string, RunRow[]>();
  for (const r of runs) bySaga.set(r.saga, [...(bySaga.get(r.saga) ?? []), r]);
  const problems: string[] = [];
  for (const [saga, list] of bySaga) {
    for (let i = 0; i < list.length; i += 1) {
      for (let j = i + 1; j < list.length; j += 1) {
        const [a, b] = [list[i] as RunRow, list[j] as RunRow];
        if (a.worker === b.worker || a.startedAt >= end(b) || b.startedAt >= end(a)) continue;
        const show = (r: RunRow): string => `${r.step}.${r.func} on ${r.worker} [${r.startedAt}, ${r.endedAt ?? `${end(r)} (died)`}]`;
        problems.push(`${saga}: ${show(a)} overlaps ${show(b)}`);
      }
    }
  }
  return problems;
}

/** Counts that show where the kills landed. */
export interface CrashStats {
  /** Handler calls recorded. */
  readonly calls: number;
  /** Calls a kill cut short (no end recorded), by handler. */
  readonly cut: Readonly<Record<string, number>>;
  /** Calls of a handler already called before for the same saga and step (re-runs after a crash). */
  readonly reruns: number;
  /** Sagas whose calls ran on more than one worker (process). */
  readonly movedSagas: number;
  /** Calls started by each worker (process). */
  readonly callsByWorker: Readonly<Record<string, number>>;
}

export function crashStats(runs: readonly RunRow[]): CrashStats {
  const seen = new Set<string>();
  const workers = new Map<string, Set<string>>();
  let reruns = 0;
  for (const r of runs) {
    const key = `${r.saga}|${r.step}|${r.func}`;
    if (seen.has(key)) reruns += 1;
    seen.add(key);
    workers.set(r.saga, (workers.get(r.saga) ?? new Set()).add(r.worker));
  }
  return {
    calls: runs.length,
    cut: countBy(runs.filter((r) => r.endedAt === null), (r) => r.func),
    reruns,
    movedSagas: [...workers.values()].filter((w) => w.size > 1).length,
    callsByWorker: countBy(runs, (r) => r.worker),
  };
}

function countBy<T>(items: readonly T[], key: (item: T) => string): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const item of items) counts[key(item)] = (counts[key(item)] ?? 0) + 1;
  return counts;
}

/** How each planned saga ended, read from a store. */
export async function outcomesIn(store: InstanceStore, planned: readonly PlannedSaga[]): Promise<Map<string, SagaOutcome>> {
  const outcomes = new Map<string, SagaOutcome>();
  for (const saga of planned) {
    const record = await store.load(saga.id);
    if (record !== undefined) outcomes.set(saga.id, { status: record.flow.status, errorCode: record.flow.errorReason?.code ?? null });
  }
  return outcomes;
}

/**
 * The runtime problems that say something went wrong. Two workers may both publish `payment.captured` for one saga
 * before either records its acknowledgement (the publishers run in every worker, as at-least-once buses do): the
 * saga's wait takes one, and the other, left in its inbox, is reported `EVENT_NOT_CONSUMED` when the saga ends. That
 * report is the contract working, not a problem, when the saga's step received exactly one other event of its own
 * (checked by {@link sagaProblems}).
 */
export function unexpectedProblems(ledger: LedgerSnapshot): ProblemRow[] {
  return ledger.problems.filter((p) => {
    if (p.code !== 'EVENT_NOT_CONSUMED' || p.instanceId === null) return true;
    const dropped = /\(([^()]+)\)/.exec(p.message)?.[1];
    const handled = ledger.handled.filter((h) => h.saga === p.instanceId);
    const duplicate = dropped !== undefined && dropped.startsWith(`${p.instanceId}:captured:`) && handled.length === 1 && handled[0]?.eventId !== dropped;
    return !duplicate;
  });
}
