import { decide, defineWorkflow, type DecideEnv, type Effect, type InstanceRecord, type Outcome } from '../src';
import { newRecord } from '../src/engine/instance-record';
import { recordingStep } from './support/steps';

const def = defineWorkflow({
  name: 'pure',
  steps: [recordingStep('A', [], {}, { goto: ['C'] }), recordingStep('B', [], {}, { goto: ['A'], allowLoop: { max: 1 } }), recordingStep('C', [])],
});
const env: DecideEnv = { def, now: 1_000, hydrate: (s) => structuredClone(s), dehydrate: (s) => structuredClone(s) };

function invoked(effects: Effect[]): string[] {
  return effects.filter((e): e is Extract<Effect, { type: 'invoke' }> => e.type === 'invoke').map((e) => `${e.step}.${e.func}`);
}

function settle(record: InstanceRecord, outcome: Outcome) {
  return decide(env, record, { type: 'settled', track: null, token: record.flow.token, outcome });
}

describe('decide, the pure direction logic', () => {
  const start = newRecord('i', 'pure', { n: 0 }, 0);

  it('records the intent to run the first step before running it', () => {
    const { record, effects } = decide(env, start, { type: 'begin' });
    expect(invoked(effects)).toEqual(['A.run']);
    expect(record.flow).toMatchObject({ stepIndex: 0, stepName: 'A', stepFunc: 'run', inFlight: true, status: 'running', direction: 'up' });
    expect(record.flow.stack).toEqual([{ kind: 'step', name: 'A', index: 0 }]);
  });

  it('shares one frozen stack entry per step among instances (entries are pushed and popped, never changed)', () => {
    const first = decide(env, start, { type: 'begin' }).record;
    const second = decide(env, newRecord('j', 'pure', { n: 0 }, 0), { type: 'begin' }).record;
    expect(second.flow.stack[0]).toBe(first.flow.stack[0]);
    expect(Object.isFrozen(first.flow.stack[0])).toBe(true);
    const looped = settle(settle(first, { kind: 'ok', state: {} }).record, { kind: 'goto', target: 'A', state: {} }).record;
    expect(looped.flow.stack[2]).toEqual({ kind: 'step', name: 'A', index: 0, pass: 1 });
    expect(Object.isFrozen(looped.flow.stack[2])).toBe(false);
  });

  it('does not modify the record it is given', () => {
    const before = JSON.stringify(start);
    decide(env, start, { type: 'begin' });
    expect(JSON.stringify(start)).toBe(before);
  });

  it('moves to the next step on ok and completes after the last', () => {
    let r = decide(env, start, { type: 'begin' }).record;
    for (const next of ['B.run', 'C.run']) {
      const t = settle(r, { kind: 'ok', state: { n: 1 } });
      expect(invoked(t.effects)).toEqual([next]);
      r = t.record;
    }
    const done = settle(r, { kind: 'ok', state: { n: 3 } });
    expect(done.record.flow.status).toBe('completed');
    expect(done.effects).toEqual([{ type: 'hook', hook: 'handleWorkflowSuccess', group: null }, { type: 'finished' }]);
    expect(done.record.state).toEqual({ n: 3 });
  });

  it('turns down on error, calls startRollback, and compensates the failing step first', () => {
    let r = decide(env, start, { type: 'begin' }).record;
    r = settle(r, { kind: 'ok', state: {} }).record;
    const t = settle(r, { kind: 'error', error: { code: 'X', name: 'Error', message: 'x' }, started: true });
    expect(t.effects[0]).toEqual({ type: 'hook', hook: 'handleStartRollback', group: null });
    expect(invoked(t.effects)).toEqual(['B.rollback']);
    expect(t.record.flow).toMatchObject({ direction: 'down', status: 'rolling_back', errorReason: { code: 'X' } });
    const next = settle(t.record, { kind: 'ok', state: {} });
    expect(invoked(next.effects)).toEqual(['A.rollback']);
    const end = settle(next.record, { kind: 'ok', state: {} });
    expect(end.record.flow.status).toBe('rolled_back');
    expect(end.record.flow.stack).toEqual([]);
  });

  it('does not compensate a step whose before-hook vetoed it (it never started)', () => {
    let r = decide(env, start, { type: 'begin' }).record;
    r = settle(r, { kind: 'ok', state: {} }).record;
    const t = settle(r, { kind: 'error', error: { code: 'VETO', name: 'Error', message: 'no' }, started: false });
    expect(invoked(t.effects)).toEqual(['A.rollback']);
  });

  it('parks on continue with an absolute deadline, and turns an event into runHandleInfo', () => {
    const r = decide(env, start, { type: 'begin' }).record;
    const parked = settle(r, { kind: 'continue', state: {}, wait: { topic: 'go', match: { k: 1 }, timeout: '1m' } });
    expect(parked.record.flow.status).toBe('waiting');
    expect(parked.record.flow.wait).toEqual({ topics: ['go'], match: { k: 1 }, deadline: 61_000 });
    expect(parked.effects).toEqual([{ type: 'watch', track: null, wait: parked.record.flow.wait }]);
    const event = { topic: 'go', payload: { k: 1 }, id: 'e', publishedAt: 0 };
    const resumed = decide(env, parked.record, { type: 'event', track: null, event });
    expect(invoked(resumed.effects)).toEqual(['A.runHandleInfo']);
    expect(resumed.record.flow.handling).toEqual(event);
  });

  it('ignores an event that does not match the wait, and a stale result', () => {
    const r = decide(env, start, { type: 'begin' }).record;
    const parked = settle(r, { kind: 'continue', state: {}, wait: { topic: 'go', match: { k: 1 } } }).record;
    expect(decide(env, parked, { type: 'event', track: null, event: { topic: 'go', payload: { k: 2 }, id: 'e', publishedAt: 0 } }).changed).toBe(false);
    expect(decide(env, parked, { type: 'settled', track: null, token: 0, outcome: { kind: 'ok', state: {} } }).changed).toBe(false);
  });

  it('fails a wait with TIMEOUT only for the deadline it set', () => {
    const r = decide(env, start, { type: 'begin' }).record;
    const parked = settle(r, { kind: 'continue', state: {}, wait: { topic: 'go', timeout: 10 } }).record;
    expect(decide(env, parked, { type: 'due', track: null, at: 999 }).changed).toBe(false);
    const t = decide(env, parked, { type: 'due', track: null, at: 1_010 });
    expect(t.record.flow.errorReason?.code).toBe('TIMEOUT');
    expect(invoked(t.effects)).toEqual(['A.rollback']);
  });

  it('defers an external rollback of a running step until it settles, aborting it', () => {
    const r = decide(env, start, { type: 'begin' }).record;
    const asked = decide(env, r, { type: 'rollback', reason: { code: 'ROLLBACK_REQUESTED', name: 'E', message: 'stop' } });
    expect(asked.effects).toEqual([{ type: 'abort', track: null, reason: expect.objectContaining({ code: 'ROLLBACK_REQUESTED' }) }]);
    const t = settle(asked.record, { kind: 'ok', state: {} });
    expect(invoked(t.effects)).toEqual(['A.rollback']);
    expect(t.record.flow.errorReason?.code).toBe('ROLLBACK_REQUESTED');
  });

  it('jumps to a declared target and refuses undeclared or unknown ones', () => {
    const r = decide(env, start, { type: 'begin' }).record;
    expect(invoked(settle(r, { kind: 'goto', target: 'C', state: {} }).effects)).toEqual(['C.run']);
    expect(settle(r, { kind: 'goto', target: 'B', state: {} }).record.flow.errorReason?.code).toBe('UNDECLARED_GOTO_TARGET');
    expect(settle(r, { kind: 'goto', target: 'Z', state: {} }).record.flow.errorReason?.code).toBe('UNKNOWN_GOTO_TARGET');
  });

  it('jumps back as often as allowLoop.max allows, each pass on the stack, then fails with LOOP_LIMIT_EXCEEDED', () => {
    let r = settle(decide(env, start, { type: 'begin' }).record, { kind: 'ok', state: {} }).record;
    const back = settle(r, { kind: 'goto', target: 'A', state: {} });
    expect(invoked(back.effects)).toEqual(['A.run']);
    expect(back.record.flow.stack).toEqual([
      { kind: 'step', name: 'A', index: 0 },
      { kind: 'step', name: 'B', index: 1 },
      { kind: 'step', name: 'A', index: 0, pass: 1 },
    ]);
    expect(back.record.flow.pass).toBe(1);
    r = settle(back.record, { kind: 'ok', state: {} }).record;
    const again = settle(r, { kind: 'goto', target: 'A', state: {} });
    expect(again.record.flow.errorReason?.code).toBe('LOOP_LIMIT_EXCEEDED');
    expect(invoked(again.effects)).toEqual(['B.rollback']);
  });

  it('stops in compensation_failed with the remaining compensations kept when a rollback fails', () => {
    let r = decide(env, start, { type: 'begin' }).record;
    r = settle(r, { kind: 'ok', state: {} }).record;
    r = settle(r, { kind: 'error', error: { code: 'X', name: 'E', message: 'x' }, started: true }).record;
    const t = settle(r, { kind: 'error', error: { code: 'UNDO', name: 'E', message: 'undo failed' }, started: true });
    expect(t.record.flow.status).toBe('compensation_failed');
    expect(t.record.flow.stack.map((e) => e.name)).toEqual(['A', 'B']);
    expect(t.record.compensationFailures).toEqual([{ step: 'B', error: expect.objectContaining({ code: 'UNDO' }) }]);
    expect(t.effects).toContainEqual({ type: 'hook', hook: 'handleCompensationFailed', group: null });
  });

  it('re-issues the in-flight call on resume, with the same token and event', () => {
    const r = decide(env, start, { type: 'begin' }).record;
    const parked = settle(r, { kind: 'continue', state: {}, wait: { topic: 'go' } }).record;
    const handling = decide(env, parked, { type: 'event', track: null, event: { topic: 'go', payload: {}, id: 'e', publishedAt: 0 } }).record;
    const resumed = decide(env, JSON.parse(JSON.stringify(handling)) as InstanceRecord, { type: 'resume' });
    expect(resumed.effects).toEqual([
      { type: 'invoke', track: null, step: 'A', func: 'runHandleInfo', token: handling.flow.token, event: expect.objectContaining({ id: 'e' }) },
    ]);
  });

  it('aborts again, on resume, a running step whose rollback was requested before the restart', () => {
    const r = decide(env, start, { type: 'begin' }).record;
    const asked = decide(env, r, { type: 'rollback', reason: { code: 'ROLLBACK_REQUESTED', name: 'E', message: 'stop' } }).record;
    const resumed = decide(env, JSON.parse(JSON.stringify(asked)) as InstanceRecord, { type: 'resume' });
    expect(resumed.effects.map((e) => e.type)).toEqual(['invoke', 'abort']);
  });
});
