// Results meet retries, and times come due: a failed call retried after its backoff, a wait that passed its
// deadline, the workflow deadline.
import type { SagaEvent } from '../../bus/event';
import { quote } from '../../errors/serialized-error';
import { backoffDelay, unitHash } from '../../policies/backoff';
import { isRetryable } from '../../policies/retry-policy';
import { isFinalStatus } from '../../core/flow-fields';
import { findBranch, trackOf, type Track, type TrackRef } from '../instance-record';
import type { Ctx } from './context';
import { resolveBranch } from './groups';
import { resolveMain } from './main-line';
import { requestRollback } from './requests';
import { invoke, policyOf, summarize } from './track';
import type { Outcome } from './types';

export function resolve(c: Ctx, ref: TrackRef, t: Track, outcome: Outcome, event: SagaEvent | null = null): void {
  if (outcome.state !== undefined) t.state = outcome.state;
  summarize(t, outcome);
  if (outcome.kind === 'error' && scheduleRetry(c, ref, t, outcome, event)) return;
  if (ref === null) resolveMain(c, outcome);
  else resolveBranch(c, ref, outcome);
}

/** True when the track is still meant to go on where it is (a retry would not be thrown away at once). */
function stillWanted(c: Ctx, ref: TrackRef): boolean {
  if (ref === null) return c.rec.rollbackRequested === null;
  const g = c.rec.group;
  const b = g === null ? undefined : findBranch(g, ref);
  if (g === null || b === undefined) return false;
  return b.phase === 'compensating' || (b.phase === 'running' && g.mode === 'up');
}

/**
 * When the step's policy allows another attempt, parks the track until the backoff delay has passed, with the
 * attempt number and the retry time in the record (so a restart keeps both), and says so.
 */
function scheduleRetry(c: Ctx, ref: TrackRef, t: Track, outcome: Extract<Outcome, { kind: 'error' }>, event: SagaEvent | null): boolean {
  if (!outcome.started || outcome.retryable === false || !stillWanted(c, ref)) return false;
  const retry = policyOf(c, t).retry;
  const f = t.flow;
  if (retry === null || f.attempt >= retry.maxAttempts || !isRetryable(retry, outcome.error)) return false;
  const delay = backoffDelay(retry, f.attempt, unitHash(`${c.rec.id}:${f.stepName ?? ''}:${f.direction}:${f.attempt}`));
  f.attempt += 1;
  f.retryAt = c.env.now + delay;
  f.retryDelay = delay;
  f.handling = event;
  c.effects.push({ type: 'timer', track: ref, at: f.retryAt });
  return true;
}

/** A wait deadline, a retry time or the workflow deadline has come. */
export function due(c: Ctx, ref: TrackRef, at: number): boolean {
  const rec = c.rec;
  if (ref === null && rec.deadline === at) {
    if (isFinalStatus(rec.flow.status) || rec.flow.direction === 'down') return false;
    return requestRollback(c, {
      code: 'TIMEOUT',
      name: 'TimeoutError',
      message: `workflow ${quote(rec.workflow)} passed its deadline before it completed`,
      details: { deadline: at, scope: 'workflow' },
    });
  }
  const t = trackOf(rec, ref);
  if (t === undefined) return false;
  const f = t.flow;
  if (f.retryAt === at && !f.inFlight) {
    // A branch that stopped (its group settles, it was aborted or queued) is never called again.
    if (!stillWanted(c, ref)) return false;
    f.retryAt = null;
    invoke(c, ref, t, f.stepFunc, f.handling);
    return true;
  }
  if (f.wait === null || f.wait.deadline !== at) return false;
  const topics = f.wait.topics.join(', ');
  f.wait = null;
  resolve(c, ref, t, {
    kind: 'error',
    error: {
      code: 'TIMEOUT',
      name: 'TimeoutError',
      message: `step ${quote(f.stepName)} waited for ${topics} until its deadline and timed out`,
      details: { step: f.stepName, topics, deadline: at, scope: 'wait' },
    },
    started: true,
    retryable: false,
  });
  return true;
}
