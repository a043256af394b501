import {
  branch,
  decide,
  defineWorkflow,
  error as fail,
  goto,
  ok,
  parallel,
  type DecideEnv,
  type Effect,
  type Happening,
  type InstanceRecord,
  type Outcome,
  type ParallelOptions,
  type SagaEvent,
  type SerializedError,
  type WorkflowDefinition,
} from '../src';
import { newRecord, trackOf, type TrackRef } from '../src/engine/instance-record';
import { recordingStep, type TestState } from './support/steps';

const NOW = Date.UTC(2026, 0, 1);

/** Steps are never called here: decide only names them. */
const unused: string[] = [];
const step = (name: string) => recordingStep(name, unused);

/** [S, G(A, B, C), T] with the given group options. */
function sgt(options: ParallelOptions<TestState> = {}, branches: Parameters<typeof parallel>[1] = [step('A'), step('B'), step('C')]) {
  return defineWorkflow<TestState>({ name: 'sgt', steps: [step('S'), parallel('G', branches, options), step('T'), step('U')] });
}

/** One short line per effect, so a transition reads as a list. */
function line(e: Effect): string {
  const on = (track: TrackRef) => (track === null ? 'main' : track);
  switch (e.type) {
    case 'invoke':
      return `${e.step}.${e.func} @${on(e.track)}`;
    case 'abort':
      return `abort ${on(e.track)} (${e.reason.code})`;
    case 'watch':
      return `watch ${on(e.track)} ${e.wait.topics.join('|')}${e.wait.deadline === null ? '' : ` until +${e.wait.deadline - NOW}`}`;
    case 'hook':
      return e.group === null ? `hook ${e.hook}` : `hook ${e.hook} ${e.group}`;
    case 'timer':
      return `timer ${on(e.track)} at +${e.at - NOW}`;
    case 'finished':
      return 'finished';
    case 'branched':
      return `branched ${e.when} ${e.branch}`;
    case 'unblocked':
      return 'unblocked';
    case 'controlled':
      return `${e.decision} @${on(e.track)}`;
    case 'problem':
      return `problem ${e.error.code}`;
  }
}

const okOut = (state: unknown): Outcome => ({ kind: 'ok', state });
const errOut = (code: string, state?: unknown): Outcome =>
  state === undefined
    ? { kind: 'error', error: { code, name: 'Error', message: code.toLowerCase() }, started: true }
    : { kind: 'error', error: { code, name: 'Error', message: code.toLowerCase() }, state, started: true };
const waitOut = (state: unknown, topic: string, timeout?: number): Outcome => ({
  kind: 'continue',
  state,
  wait: timeout === undefined ? { topic, match: { k: 1 } } : { topic, match: { k: 1 }, timeout },
});
const event = (topic: string, payload: Record<string, unknown> = { k: 1 }): SagaEvent => ({ topic, payload, id: `e-${topic}`, publishedAt: NOW });
const reason: SerializedError = { code: 'ROLLBACK_REQUESTED', name: 'RollbackRequestedError', message: 'rollback requested: cancelled' };

/**
 * Feeds happenings to the pure `decide` and keeps the record. Every call checks that decide left the record it
 * was given untouched.
 */
class Driver {
  record: InstanceRecord;
  constructor(
    readonly def: WorkflowDefinition,
    state: unknown = { trail: [] },
    public now = NOW,
  ) {
    this.record = newRecord('i-1', def.name, state, NOW);
  }

  env(): DecideEnv {
    return { def: this.def, now: this.now, hydrate: (s) => structuredClone(s), dehydrate: (s) => structuredClone(s) };
  }

  feed(h: Happening): string[] {
    const before = structuredClone(this.record);
    const t = decide(this.env(), this.record, h);
    expect(this.record).toEqual(before);
    this.record = t.record;
    this.changed = t.changed;
    return t.effects.map(line);
  }

  changed = false;

  /** The result of the handler in flight on `track`, with its current token. */
  settle(track: TrackRef, outcome: Outcome): string[] {
    const t = trackOf(this.record, track);
    if (t === undefined) throw new Error(`no track ${String(track)}`);
    return this.feed({ type: 'settled', track, token: t.flow.token, outcome });
  }

  get group() {
    const g = this.record.group;
    if (g === null) throw new Error('no group in progress');
    return g;
  }

  phases(): Record<string, string> {
    return Object.fromEntries(this.group.branches.map((b) => [b.key, b.phase]));
  }

  branchState(key: string): unknown {
    return this.group.branches.find((b) => b.key === key)?.state;
  }
}

/** Runs S and starts the group; returns the effects of starting it. */
function throughS(d: Driver, sOutput: unknown = { trail: ['S'] }): string[] {
  expect(d.feed({ type: 'begin' })).toEqual(['S.run @main']);
  return d.settle(null, okOut(sOutput));
}

describe('decide for a parallel group going up', () => {
  it('starts every branch, in declaration order, each from the state at the group start and isolated from its siblings', () => {
    const d = new Driver(sgt());
    expect(throughS(d, { trail: ['S'], nested: { list: [1] } })).toEqual(['hook handleGroupStart G', 'A.run @A', 'B.run @B', 'C.run @C']);
    expect(d.record.flow).toMatchObject({ stepName: 'G', stepIndex: 1, direction: 'up', status: 'running' });
    expect(d.group).toMatchObject({ name: 'G', index: 1, mode: 'up', failure: null, plan: null });
    expect(d.phases()).toEqual({ A: 'running', B: 'running', C: 'running' });
    const [a, b] = d.group.branches;
    expect(a!.state).toEqual({ trail: ['S'], nested: { list: [1] } });
    expect(b!.state).toEqual({ trail: ['S'], nested: { list: [1] } });
    expect(a!.flow.stack).toEqual([{ kind: 'step', name: 'A', index: 0 }]);
    // A branch's new state replaces its own, never a sibling's or the main line's. (Stored states are never changed
    // in place — user code gets hydrated copies — so the record may share one stored state between branches.)
    d.settle('A', okOut({ trail: ['S', 'A'], nested: { list: [1, 2] } }));
    expect(d.group.branches[0]!.state).toEqual({ trail: ['S', 'A'], nested: { list: [1, 2] } });
    expect(d.group.branches[1]!.state).toEqual({ trail: ['S'], nested: { list: [1] } });
    expect(d.record.state).toEqual({ trail: ['S'], nested: { list: [1] } });
  });

  it('merges the tagged results under __results__ once every branch succeeded, pushes the group on the stack and goes on', () => {
    const d = new Driver(sgt());
    throughS(d, { trail: ['S'], __results__: { earlier: { ok: true, value: 1 } } });
    expect(d.settle('C', okOut({ trail: ['S', 'C'] }))).toEqual([]);
    expect(d.settle('A', okOut({ trail: ['S', 'A'] }))).toEqual([]);
    expect(d.settle('B', okOut({ trail: ['S', 'B'] }))).toEqual(['hook handleGroupEnd G', 'T.run @main']);
    expect(d.record.group).toBeNull();
    expect(d.record.state).toEqual({
      trail: ['S'],
      __results__: {
        earlier: { ok: true, value: 1 },
        A: { ok: true, value: { trail: ['S', 'A'] } },
        B: { ok: true, value: { trail: ['S', 'B'] } },
        C: { ok: true, value: { trail: ['S', 'C'] } },
      },
    });
    expect(Object.keys((d.record.state as { __results__: object }).__results__)).toEqual(['earlier', 'A', 'B', 'C']);
    expect(d.record.flow.stack).toEqual([
      { kind: 'step', name: 'S', index: 0 },
      {
        kind: 'group',
        name: 'G',
        index: 1,
        branches: [
          { name: 'A', key: 'A', state: { trail: ['S', 'A'] }, stack: [{ kind: 'step', name: 'A', index: 0 }], settledSeq: 1 },
          { name: 'B', key: 'B', state: { trail: ['S', 'B'] }, stack: [{ kind: 'step', name: 'B', index: 0 }], settledSeq: 2 },
          { name: 'C', key: 'C', state: { trail: ['S', 'C'] }, stack: [{ kind: 'step', name: 'C', index: 0 }], settledSeq: 0 },
        ],
      },
      { kind: 'step', name: 'T', index: 2 },
    ]);
  });

  it('runs a sequence branch one step after another on that branch', () => {
    const d = new Driver(sgt({}, [step('A'), [step('B1'), step('B2')]]));
    expect(throughS(d)).toEqual(['hook handleGroupStart G', 'A.run @A', 'B1.run @B1+B2']);
    expect(d.settle('B1+B2', okOut({ trail: ['S', 'B1'] }))).toEqual(['B2.run @B1+B2']);
    expect(d.group.branches[1]!.flow).toMatchObject({ stepName: 'B2', stepIndex: 1, stack: [{ name: 'B1' }, { name: 'B2' }] });
    expect(d.settle('B1+B2', okOut({ trail: ['S', 'B1', 'B2'] }))).toEqual([]);
    expect(d.settle('A', okOut({ trail: ['S', 'A'] }))).toEqual(['hook handleGroupEnd G', 'T.run @main']);
  });

  it('starts no more than maxConcurrency branches, and the next one as a running one finishes', () => {
    const d = new Driver(sgt({ maxConcurrency: 2 }));
    expect(throughS(d)).toEqual(['hook handleGroupStart G', 'A.run @A', 'B.run @B']);
    expect(d.phases()).toEqual({ A: 'running', B: 'running', C: 'pending' });
    expect(d.settle('B', okOut({ trail: ['S', 'B'] }))).toEqual(['C.run @C']);
    expect(d.settle('C', okOut({ trail: ['S', 'C'] }))).toEqual([]);
    expect(d.settle('A', okOut({ trail: ['S', 'A'] }))).toEqual(['hook handleGroupEnd G', 'T.run @main']);
  });

  it('ignores a result with an old token, and a result for a branch that is not in flight', () => {
    const d = new Driver(sgt());
    throughS(d);
    const token = d.group.branches[0]!.flow.token;
    d.settle('A', okOut({ trail: ['S', 'A'] }));
    expect(d.feed({ type: 'settled', track: 'A', token, outcome: errOut('LATE') })).toEqual([]);
    expect(d.changed).toBe(false);
    expect(d.feed({ type: 'settled', track: 'nope', token: 1, outcome: errOut('LATE') })).toEqual([]);
    expect(d.changed).toBe(false);
  });

  it('fails a branch whose step returns goto with GOTO_NOT_ALLOWED', () => {
    const d = new Driver(sgt());
    throughS(d);
    expect(d.settle('A', { kind: 'goto', target: 'T', state: { trail: ['S', 'A'] } })).toEqual(['abort B (GOTO_NOT_ALLOWED)', 'abort C (GOTO_NOT_ALLOWED)', 'hook handleStartRollback']);
    expect(d.record.flow.errorReason).toMatchObject({ code: 'GOTO_NOT_ALLOWED', details: { target: 'T' } });
  });
});

describe('decide for a failFast group', () => {
  it('aborts the in-flight branches with the first error, starts no more, and turns down', () => {
    const d = new Driver(sgt({ maxConcurrency: 2 }));
    throughS(d);
    expect(d.settle('B', errOut('CARD_DECLINED', { trail: ['S', 'B'] }))).toEqual(['abort A (CARD_DECLINED)', 'hook handleStartRollback']);
    expect(d.record.flow).toMatchObject({ direction: 'down', status: 'rolling_back', errorReason: { code: 'CARD_DECLINED' } });
    expect(d.group.mode).toBe('settling');
    expect(d.phases()).toEqual({ A: 'running', B: 'failed', C: 'pending' });
    expect(d.group.branches[1]!.outcome).toEqual({ ok: false, error: { code: 'CARD_DECLINED', name: 'Error', message: 'card_declined' } });
  });

  it('waits for every branch to settle, then undoes each started branch with its own state in reverse settle order, then the steps before', () => {
    const d = new Driver(sgt({ maxConcurrency: 2 }));
    throughS(d);
    d.settle('B', errOut('CARD_DECLINED', { trail: ['S', 'B'] }));
    expect(d.settle('A', errOut('ABORTED', { trail: ['S', 'A'] }))).toEqual(['A.rollback @A', 'B.rollback @B']);
    expect(d.group.mode).toBe('down');
    expect(d.phases()).toEqual({ A: 'compensating', B: 'compensating', C: 'pending' });
    expect(d.branchState('A')).toEqual({ trail: ['S', 'A'] });
    expect(d.branchState('B')).toEqual({ trail: ['S', 'B'] });
    expect(d.settle('B', okOut({ trail: ['S', 'B', 'B.rb'] }))).toEqual([]);
    expect(d.phases()).toEqual({ A: 'compensating', B: 'compensated', C: 'pending' });
    expect(d.settle('A', okOut({ trail: ['S', 'A', 'A.rb'] }))).toEqual(['hook handleGroupEnd G', 'S.rollback @main']);
    expect(d.record.group).toBeNull();
    expect(d.record.state).toEqual({ trail: ['S'] });
    expect(d.settle(null, okOut({ trail: ['S', 'S.rb'] }))).toEqual(['hook handleWorkflowFailure', 'finished']);
    expect(d.record.flow.status).toBe('rolled_back');
  });

  it('compensates a branch that returned ok while the group settled, since its step ran', () => {
    const d = new Driver(sgt());
    throughS(d);
    d.settle('B', errOut('BOOM'));
    d.settle('A', okOut({ trail: ['S', 'A'] }));
    expect(d.group.branches[0]!.outcome).toMatchObject({ ok: false, error: { code: 'ABORTED' } });
    expect(d.settle('C', okOut({ trail: ['S', 'C'] }))).toEqual(['C.rollback @C', 'A.rollback @A', 'B.rollback @B']);
  });

  it('undoes one branch at a time when compensation is sequential', () => {
    const d = new Driver(sgt({ compensation: 'sequential' }));
    throughS(d);
    d.settle('C', okOut({ trail: ['S', 'C'] }));
    d.settle('A', errOut('BOOM'));
    expect(d.settle('B', okOut({ trail: ['S', 'B'] }))).toEqual(['B.rollback @B']);
    expect(d.phases()).toEqual({ A: 'queued', B: 'compensating', C: 'queued' });
    expect(d.settle('B', okOut({ trail: [] }))).toEqual(['A.rollback @A']);
    expect(d.settle('A', okOut({ trail: [] }))).toEqual(['C.rollback @C']);
    expect(d.settle('C', okOut({ trail: [] }))).toEqual(['hook handleGroupEnd G', 'S.rollback @main']);
  });

  it('undoes a failing sequence branch from its failing step back, on that branch', () => {
    const d = new Driver(sgt({}, [step('A'), [step('B1'), step('B2')]]));
    throughS(d);
    d.settle('A', okOut({ trail: ['S', 'A'] }));
    d.settle('B1+B2', okOut({ trail: ['S', 'B1'] }));
    expect(d.settle('B1+B2', errOut('B2_FAILED', { trail: ['S', 'B1', 'B2'] }))).toEqual(['hook handleStartRollback', 'B2.rollback @B1+B2', 'A.rollback @A']);
    expect(d.settle('B1+B2', okOut({ trail: ['S', 'B1', 'B2', 'B2.rb'] }))).toEqual(['B1.rollback @B1+B2']);
    expect(d.branchState('B1+B2')).toEqual({ trail: ['S', 'B1', 'B2', 'B2.rb'] });
  });

  it('does not compensate a branch step that a before-hook vetoed, since it never ran', () => {
    const d = new Driver(sgt({}, [step('A'), [step('B1'), step('B2')]]));
    throughS(d);
    d.settle('A', okOut({ trail: ['S', 'A'] }));
    d.settle('B1+B2', okOut({ trail: ['S', 'B1'] }));
    const veto: Outcome = { kind: 'error', error: { code: 'OBSERVER_VETO', name: 'Error', message: 'no' }, started: false };
    expect(d.settle('B1+B2', veto)).toEqual(['hook handleStartRollback', 'B1.rollback @B1+B2', 'A.rollback @A']);
  });

  it('stops in compensation_failed, naming the branch, once the other compensations settle, and leaves the steps before alone', () => {
    const d = new Driver(sgt({}, [step('A'), step('B')]));
    throughS(d);
    d.settle('A', okOut({ trail: ['S', 'A'] }));
    expect(d.settle('B', errOut('BOOM'))).toEqual(['hook handleStartRollback', 'B.rollback @B', 'A.rollback @A']);
    expect(d.settle('B', errOut('REFUND_FAILED'))).toEqual([]);
    expect(d.record.flow.status).toBe('rolling_back');
    expect(d.settle('A', okOut({ trail: [] }))).toEqual(['hook handleCompensationFailed', 'finished']);
    expect(d.record.flow.status).toBe('compensation_failed');
    expect(d.record.compensationFailures).toEqual([{ step: 'B', branch: 'B', error: expect.objectContaining({ code: 'REFUND_FAILED' }) as unknown }]);
    expect(d.phases()).toEqual({ A: 'compensated', B: 'compensation_failed' });
    expect(d.record.flow.stack).toEqual([{ kind: 'step', name: 'S', index: 0 }]);
  });
});

describe('decide for a completeAll group', () => {
  it('keeps the other branches running after a failure, then undoes the failed one before the next step', () => {
    const d = new Driver(sgt({ onError: 'completeAll' }));
    throughS(d);
    expect(d.settle('B', errOut('NO_ROOM', { trail: ['S', 'B'] }))).toEqual([]);
    expect(d.record.flow.direction).toBe('up');
    expect(d.group.mode).toBe('up');
    d.settle('A', okOut({ trail: ['S', 'A'] }));
    expect(d.settle('C', okOut({ trail: ['S', 'C'] }))).toEqual(['B.rollback @B']);
    expect(d.record.state).toEqual({ trail: ['S'] });
    expect(d.settle('B', okOut({ trail: ['S', 'B', 'B.rb'] }))).toEqual(['hook handleGroupEnd G', 'T.run @main']);
    expect((d.record.state as { __results__: unknown }).__results__).toEqual({
      A: { ok: true, value: { trail: ['S', 'A'] } },
      B: { ok: false, error: { code: 'NO_ROOM', name: 'Error', message: 'no_room' } },
      C: { ok: true, value: { trail: ['S', 'C'] } },
    });
    const entry = d.record.flow.stack[1];
    expect(entry?.kind === 'group' ? entry.branches.map((b) => b.key) : []).toEqual(['A', 'C']);
  });

  it('starts the next pending branch after a failure when maxConcurrency holds it back', () => {
    const d = new Driver(sgt({ onError: 'completeAll', maxConcurrency: 1 }));
    expect(throughS(d)).toEqual(['hook handleGroupStart G', 'A.run @A']);
    expect(d.settle('A', errOut('BOOM'))).toEqual(['B.run @B']);
  });

  it('undoes the kept branches too when a rollback is requested while the failed ones are being undone', () => {
    const d = new Driver(sgt({ onError: 'completeAll' }));
    throughS(d);
    d.settle('A', okOut({ trail: ['S', 'A'] }));
    d.settle('B', errOut('BOOM'));
    expect(d.settle('C', okOut({ trail: ['S', 'C'] }))).toEqual(['B.rollback @B']);
    expect(d.feed({ type: 'rollback', reason })).toEqual(['hook handleStartRollback', 'C.rollback @C', 'A.rollback @A']);
    expect(d.record.flow).toMatchObject({ direction: 'down', errorReason: { code: 'ROLLBACK_REQUESTED' } });
    d.settle('B', okOut({}));
    d.settle('A', okOut({}));
    expect(d.settle('C', okOut({}))).toEqual(['hook handleGroupEnd G', 'S.rollback @main']);
  });
});

describe("decide for a join 'any' group", () => {
  it('lets the first branch to succeed win, aborts the rest, undoes the losers, and keeps only the winner', () => {
    const d = new Driver(sgt({ join: 'any' }));
    throughS(d);
    expect(d.settle('B', okOut({ trail: ['S', 'B'] }))).toEqual(['abort A (ABORTED)', 'abort C (ABORTED)']);
    expect(d.group).toMatchObject({ winner: 'B', mode: 'settling' });
    expect(d.record.flow.direction).toBe('up');
    expect(d.settle('A', errOut('ABORTED', { trail: ['S', 'A'] }))).toEqual([]);
    expect(d.settle('C', okOut({ trail: ['S', 'C'] }))).toEqual(['C.rollback @C', 'A.rollback @A']);
    d.settle('C', okOut({}));
    expect(d.settle('A', okOut({}))).toEqual(['hook handleGroupEnd G', 'T.run @main']);
    const entry = d.record.flow.stack[1];
    expect(entry?.kind === 'group' ? entry.branches.map((b) => b.key) : []).toEqual(['B']);
    expect((d.record.state as { __results__: Record<string, { ok: boolean }> }).__results__).toMatchObject({
      A: { ok: false, error: { code: 'ABORTED' } },
      B: { ok: true, value: { trail: ['S', 'B'] } },
      C: { ok: false, error: { code: 'ABORTED' } },
    });
  });

  it('treats a failure as data while another branch may still succeed', () => {
    const d = new Driver(sgt({ join: 'any' }));
    throughS(d);
    expect(d.settle('A', errOut('A_DOWN'))).toEqual([]);
    expect(d.record.flow.direction).toBe('up');
    expect(d.settle('C', okOut({ trail: ['S', 'C'] }))).toEqual(['abort B (ABORTED)']);
  });

  it('fails with ALL_BRANCHES_FAILED, listing each branch error, when every branch fails', () => {
    const d = new Driver(sgt({ join: 'any' }));
    throughS(d);
    d.settle('A', errOut('A_DOWN'));
    d.settle('C', errOut('C_DOWN'));
    expect(d.settle('B', errOut('B_DOWN'))).toEqual(['hook handleStartRollback', 'B.rollback @B', 'C.rollback @C', 'A.rollback @A']);
    expect(d.record.flow.errorReason).toEqual({
      code: 'ALL_BRANCHES_FAILED',
      name: 'ParallelGroupError',
      message: 'every branch of group "G" failed: A: a_down; B: b_down; C: c_down',
      details: {
        errors: [
          { branch: 'A', error: { code: 'A_DOWN', name: 'Error', message: 'a_down' } },
          { branch: 'B', error: { code: 'B_DOWN', name: 'Error', message: 'b_down' } },
          { branch: 'C', error: { code: 'C_DOWN', name: 'Error', message: 'c_down' } },
        ],
      },
    });
  });

  it('undoes the winner too when a rollback is requested while the losers settle', () => {
    const d = new Driver(sgt({ join: 'any' }));
    throughS(d);
    d.settle('B', okOut({ trail: ['S', 'B'] }));
    expect(d.feed({ type: 'rollback', reason })).toEqual(['hook handleStartRollback']);
    d.settle('A', okOut({}));
    expect(d.settle('C', okOut({}))).toEqual(['C.rollback @C', 'A.rollback @A', 'B.rollback @B']);
  });
});

describe('decide for a group with into', () => {
  it('does not call into when the group fails fast', () => {
    let called = false;
    const d = new Driver(
      sgt({
        into: (state: TestState) => {
          called = true;
          return ok(state);
        },
      }, [step('A'), branch('bee', step('B'), { returns: 'b' })]),
    );
    throughS(d);
    d.settle('A', okOut({ trail: ['S', 'A'] }));
    expect(d.settle('b', errOut('NOPE'))).toEqual(['hook handleStartRollback', 'B.rollback @b', 'A.rollback @A']);
    expect(called).toBe(false);
  });

  it('stores the state into returns, without __results__', () => {
    const d = new Driver(
      sgt({ onError: 'completeAll', into: (state: TestState, results) => ok({ ...state, count: Object.keys(results).length }) }, [step('A'), branch('bee', step('B'), { returns: 'b' })]),
    );
    throughS(d);
    d.settle('A', okOut({ trail: ['S', 'A'] }));
    expect(d.settle('b', okOut({ trail: ['S', 'B'] }))).toEqual(['hook handleGroupEnd G', 'T.run @main']);
    expect(d.record.state).toEqual({ trail: ['S'], count: 2 });
  });

  it('passes the results keyed by returns key to into', () => {
    let seen: unknown;
    const d = new Driver(
      sgt({
        into: (state: TestState, results) => {
          seen = { state: structuredClone(state), results: structuredClone(results) };
          return ok(state);
        },
      }, [step('A'), branch('bee', step('B'), { returns: 'b' })]),
    );
    throughS(d);
    d.settle('b', okOut({ trail: ['S', 'B'] }));
    d.settle('A', okOut({ trail: ['S', 'A'] }));
    expect(seen).toEqual({ state: { trail: ['S'] }, results: { A: { ok: true, value: { trail: ['S', 'A'] } }, b: { ok: true, value: { trail: ['S', 'B'] } } } });
  });

  it('jumps forward when into returns goto, and keeps the group on the stack', () => {
    const d = new Driver(sgt({ into: (state: TestState) => goto('U', state), goto: ['U'] }));
    throughS(d);
    d.settle('A', okOut({}));
    d.settle('B', okOut({}));
    expect(d.settle('C', okOut({}))).toEqual(['hook handleGroupEnd G', 'U.run @main']);
    expect(d.record.flow.stack.map((e) => e.name)).toEqual(['S', 'G', 'U']);
  });

  it.each<[string, ParallelOptions<TestState>['into'], string]>([
    ['returns error', () => fail({ code: 'NOT_ENOUGH', message: 'not enough' }), 'NOT_ENOUGH'],
    ['throws', () => { throw Object.assign(new Error('broke'), { code: 'INTO_BROKE' }); }, 'INTO_BROKE'],
    ['returns goto to an unknown step', (s: TestState) => goto('nowhere', s), 'UNKNOWN_GOTO_TARGET'],
    ['returns goto to a step the group does not declare', (s: TestState) => goto('S', s), 'UNDECLARED_GOTO_TARGET'],
    ['returns something that is not a result', () => ({ kind: 'continue', state: {}, wait: { topic: 'x' } }) as never, 'MALFORMED_RESULT'],
  ])('undoes every branch and the steps before when into %s', (_label, into, code) => {
    const d = new Driver(sgt({ into }));
    throughS(d);
    d.settle('A', okOut({ trail: ['S', 'A'] }));
    d.settle('B', okOut({ trail: ['S', 'B'] }));
    expect(d.settle('C', okOut({ trail: ['S', 'C'] }))).toEqual(['hook handleStartRollback', 'C.rollback @C', 'B.rollback @B', 'A.rollback @A']);
    expect(d.record.flow.errorReason?.code).toBe(code);
    expect(d.group.plan).toEqual({ kind: 'fail' });
  });
});

describe('decide for a group when a later step fails', () => {
  function afterGroup(options: ParallelOptions<TestState>): Driver {
    const d = new Driver(sgt(options));
    throughS(d);
    d.settle('B', okOut({ trail: ['S', 'B'] }));
    d.settle('C', okOut({ trail: ['S', 'C'] }));
    d.settle('A', okOut({ trail: ['S', 'A'] }));
    expect(d.settle(null, errOut('LATER'))).toEqual(['hook handleStartRollback', 'T.rollback @main']);
    return d;
  }

  it('undoes every branch at once with its own output, in reverse settle order, then the steps before', () => {
    const d = afterGroup({});
    expect(d.settle(null, okOut({ trail: ['S', 'T.rb'] }))).toEqual(['hook handleGroupStart G', 'A.rollback @A', 'C.rollback @C', 'B.rollback @B']);
    expect(d.group).toMatchObject({ mode: 'down', plan: { kind: 'unwind' } });
    expect(d.branchState('A')).toEqual({ trail: ['S', 'A'] });
    expect(d.branchState('B')).toEqual({ trail: ['S', 'B'] });
    d.settle('A', okOut({}));
    d.settle('B', okOut({}));
    expect(d.settle('C', okOut({}))).toEqual(['hook handleGroupEnd G', 'S.rollback @main']);
    expect(d.record.flow.stack).toEqual([{ kind: 'step', name: 'S', index: 0 }]);
    expect(d.record.state).toEqual({ trail: ['S', 'T.rb'] });
  });

  it('undoes them one at a time in reverse completion order when compensation is sequential', () => {
    const d = afterGroup({ compensation: 'sequential' });
    expect(d.settle(null, okOut({}))).toEqual(['hook handleGroupStart G', 'A.rollback @A']);
    expect(d.settle('A', okOut({}))).toEqual(['C.rollback @C']);
    expect(d.settle('C', okOut({}))).toEqual(['B.rollback @B']);
    expect(d.settle('B', okOut({}))).toEqual(['hook handleGroupEnd G', 'S.rollback @main']);
  });
});

describe('decide for branches that wait', () => {
  it('parks a continued branch, reports the instance waiting once no branch is in flight, and delivers only matching events', () => {
    const d = new Driver(sgt());
    throughS(d);
    expect(d.settle('A', waitOut({ trail: ['S', 'A'] }, 'a.done', 60_000))).toEqual(['watch A a.done until +60000']);
    expect(d.record.flow.status).toBe('running');
    d.settle('B', okOut({ trail: ['S', 'B'] }));
    d.settle('C', waitOut({ trail: ['S', 'C'] }, 'c.done'));
    expect(d.record.flow.status).toBe('waiting');
    expect(d.group.branches.map((b) => b.flow.status)).toEqual(['waiting', 'completed', 'waiting']);

    expect(d.feed({ type: 'event', track: 'A', event: event('a.done', { k: 2 }) })).toEqual([]);
    expect(d.changed).toBe(false);
    expect(d.feed({ type: 'event', track: 'A', event: event('c.done') })).toEqual([]);
    expect(d.changed).toBe(false);
    expect(d.feed({ type: 'event', track: 'A', event: event('a.done') })).toEqual(['A.runHandleInfo @A']);
    expect(d.group.branches[0]!.flow).toMatchObject({ wait: null, inFlight: true, handling: { topic: 'a.done' } });
    expect(d.record.flow.status).toBe('running');
  });

  it('fails a branch whose wait passes its deadline with TIMEOUT, aborting a waiting sibling at once', () => {
    const d = new Driver(sgt());
    throughS(d);
    d.settle('A', waitOut({ trail: ['S', 'A'] }, 'a.done', 60_000));
    d.settle('B', okOut({ trail: ['S', 'B'] }));
    d.settle('C', waitOut({ trail: ['S', 'C'] }, 'c.done'));
    expect(d.feed({ type: 'due', track: 'A', at: NOW + 59_999 })).toEqual([]);
    expect(d.changed).toBe(false);
    d.now = NOW + 60_000;
    expect(d.feed({ type: 'due', track: 'A', at: NOW + 60_000 })).toEqual([
      'hook handleStartRollback',
      'C.rollback @C',
      'A.rollback @A',
      'B.rollback @B',
    ]);
    expect(d.record.flow.errorReason).toMatchObject({ code: 'TIMEOUT' });
    expect(d.group.branches[2]!.outcome).toMatchObject({ ok: false, error: { code: 'ABORTED' } });
    expect(d.group.branches.every((b) => b.flow.wait === null)).toBe(true);
  });

  it('resumes a rollback that continued through rollbackHandleInfo', () => {
    const d = new Driver(sgt({}, [step('A')]));
    throughS(d);
    d.settle('A', errOut('BOOM'));
    expect(d.settle('A', waitOut({}, 'refund.done'))).toEqual(['watch A refund.done']);
    expect(d.record.flow.status).toBe('waiting');
    expect(d.feed({ type: 'event', track: 'A', event: event('refund.done') })).toEqual(['A.rollbackHandleInfo @A']);
  });

  it('continues the same way from its record round-tripped through JSON', () => {
    const d = new Driver(sgt());
    throughS(d);
    d.settle('A', waitOut({ trail: ['S', 'A'] }, 'a.done'));
    d.settle('B', okOut({ trail: ['S', 'B'] }));
    d.record = JSON.parse(JSON.stringify(d.record)) as InstanceRecord;
    expect(d.feed({ type: 'resume' })).toEqual(['watch A a.done', 'C.run @C']);
    d.settle('C', okOut({ trail: ['S', 'C'] }));
    d.record = JSON.parse(JSON.stringify(d.record)) as InstanceRecord;
    expect(d.feed({ type: 'event', track: 'A', event: event('a.done') })).toEqual(['A.runHandleInfo @A']);
    expect(d.settle('A', okOut({ trail: ['S', 'A', 'A.hi'] }))).toEqual(['hook handleGroupEnd G', 'T.run @main']);
  });
});

describe('decide for a rollback requested from outside', () => {
  it('aborts in-flight branches with the request, settles waiting ones at once, then undoes all that started, maxConcurrency at a time', () => {
    const d = new Driver(sgt({ maxConcurrency: 3 }, [step('A'), step('B'), step('C'), step('D')]));
    throughS(d);
    d.settle('A', okOut({ trail: ['S', 'A'] }));
    d.settle('B', waitOut({ trail: ['S', 'B'] }, 'b.done'));
    expect(d.feed({ type: 'rollback', reason })).toEqual(['abort C (ROLLBACK_REQUESTED)', 'abort D (ROLLBACK_REQUESTED)', 'hook handleStartRollback']);
    expect(d.phases()).toEqual({ A: 'succeeded', B: 'aborted', C: 'running', D: 'running' });
    expect(d.record.flow).toMatchObject({ direction: 'down', errorReason: reason });
    expect(d.feed({ type: 'rollback', reason })).toEqual([]);
    expect(d.changed).toBe(false);
    d.settle('D', okOut({ trail: ['S', 'D'] }));
    expect(d.settle('C', errOut('ABORTED'))).toEqual(['C.rollback @C', 'D.rollback @D', 'B.rollback @B']);
    expect(d.settle('D', okOut({ trail: ['S', 'D'] }))).toEqual(['A.rollback @A']);
  });

  it('undoes the group at once when every running branch waits', () => {
    const d = new Driver(sgt({}, [step('A'), step('B')]));
    throughS(d);
    d.settle('A', waitOut({}, 'a.done'));
    d.settle('B', waitOut({}, 'b.done'));
    expect(d.feed({ type: 'rollback', reason })).toEqual(['hook handleStartRollback', 'B.rollback @B', 'A.rollback @A']);
    expect(d.feed({ type: 'event', track: 'A', event: event('a.done') })).toEqual([]);
    expect(d.changed).toBe(false);
  });
});

describe('decide when resuming a group', () => {
  it('calls again the branch handlers that were in flight, with their tokens, and watches the waiting branches', () => {
    const d = new Driver(sgt());
    throughS(d);
    d.settle('B', waitOut({}, 'b.done'));
    const tokens = d.group.branches.map((b) => b.flow.token);
    expect(d.feed({ type: 'resume' })).toEqual(['A.run @A', 'watch B b.done', 'C.run @C']);
    expect(d.group.branches.map((b) => b.flow.token)).toEqual(tokens);
    expect(d.settle('A', okOut({}))).toEqual([]);
  });

  it('aborts again the branches still in flight in a group that was settling', () => {
    const d = new Driver(sgt());
    throughS(d);
    d.settle('B', errOut('BOOM'));
    expect(d.feed({ type: 'resume' })).toEqual(['A.run @A', 'C.run @C', 'abort A (BOOM)', 'abort C (BOOM)']);
  });
});
