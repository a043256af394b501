import { defineWorkflow, MemoryStore, SagaRuntime, silentLogger } from '../src';
import { timeOrderedId } from '../src/core/time-ordered-id';
import { recordingStep, type TestState } from './support/steps';

const V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

/** The milliseconds an id of version 7 carries in its first 48 bits. */
function timeOf(id: string): number {
  return parseInt(id.replace(/-/g, '').slice(0, 12), 16);
}

describe('time-ordered ids', () => {
  it('are UUIDs of version 7 carrying the time they were made', () => {
    const at = Date.UTC(2026, 11, 6, 8, 0, 0, 123);
    const id = timeOrderedId(at);
    expect(id).toMatch(V7);
    expect(timeOf(id)).toBe(at);
  });

  it('sort in the order they were made and never repeat, 20,000 made in a tight loop', () => {
    const ids = Array.from({ length: 20_000 }, () => timeOrderedId());
    expect(new Set(ids).size).toBe(ids.length);
    expect([...ids].sort()).toEqual(ids);
    for (const id of ids) expect(id).toMatch(V7);
  });

  it('still sort and stay unique when more are made in one millisecond than its counter holds (the time part moves on)', () => {
    const at = Date.UTC(2030, 0, 1);
    const ids = Array.from({ length: 10_000 }, () => timeOrderedId(at));
    expect(new Set(ids).size).toBe(ids.length);
    expect([...ids].sort()).toEqual(ids);
    expect(timeOf(ids[0]!)).toBe(at);
    expect(timeOf(ids[ids.length - 1]!)).toBeGreaterThan(at);
    // A later millisecond of the clock still sorts after the ids that ran ahead.
    expect(timeOrderedId(at + 1_000) > ids[ids.length - 1]!).toBe(true);
  });

  it('keep going up when the clock goes back (the last time is kept until the clock passes it)', () => {
    const at = Date.UTC(2031, 0, 1);
    const first = timeOrderedId(at);
    const after = timeOrderedId(at - 60_000);
    expect(after > first).toBe(true);
    expect(timeOf(after)).toBe(at);
  });

  it('sort in the order made when given times with fractions of a millisecond', () => {
    const at = Date.UTC(2032, 0, 1);
    const ids = [0.25, 0.75, 1.1, 1.9, 2].map((f) => timeOrderedId(at + f));
    expect([...ids].sort()).toEqual(ids);
    expect(timeOf(ids[0]!)).toBe(at);
  });

  it('are what instances started without an id get, in the order they started', async () => {
    const wf = defineWorkflow<TestState>({ name: 'ids', steps: [recordingStep('a', [])] });
    const runtime = new SagaRuntime({ store: new MemoryStore(), logger: silentLogger, workflows: [wf] });
    const ids: string[] = [];
    for (let i = 0; i < 50; i++) ids.push((await runtime.start(wf, { trail: [] })).id);
    for (const id of ids) expect(id).toMatch(V7);
    expect([...ids].sort()).toEqual(ids);
    expect((await runtime.start(wf, { trail: [] }, { id: 'order-1002' })).id).toBe('order-1002');
    await runtime.idle();
    await runtime.close();
  });
});
