import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { defineWorkflow, MemoryStore, SagaRuntime, silentLogger, type HistoryEntry } from '../src';
import { TypeormStore } from '../src/store/typeorm';
import { HistoryLog, historyLogOf, packedWrites, TAKES_HISTORY_LOG } from '../src/engine/history-log';
import type { TransitionWrites } from '../src/store/instance-store';
import { SimulatedClock } from '../src/testing';
import { newRecord, type InstanceRecord } from '../src/engine/instance-record';
import { seededRandom } from './support/seeded';
import { fails, recordingStep, type TestState } from './support/steps';

const KINDS: HistoryEntry['kind'][] = ['started', 'step-started', 'step-result', 'event', 'timeout', 'finished', 'control', 'migrated'];

function pick<T>(next: () => number, values: readonly T[]): T {
  return values[Math.floor(next() * values.length)] as T;
}

/** A random history line, odd corners included: values no code covers, huge attempts, fractional and far times. */
function randomLine(next: () => number, previousAt: number): HistoryEntry {
  const at = pick(next, [previousAt, previousAt + Math.floor(next() * 1000), 1.5e12 + next(), 4e9 * next(), -5, previousAt + 0.1]);
  const line: { -readonly [K in keyof HistoryEntry]?: HistoryEntry[K] } = {
    at,
    kind: next() < 0.1 ? ('some-future-kind' as HistoryEntry['kind']) : pick(next, KINDS),
    step: pick(next, [null, 'reserve', 'pay', '']),
    direction: next() < 0.05 ? ('sideways' as HistoryEntry['direction']) : pick(next, ['up', 'down'] as const),
    func: next() < 0.05 ? ('unknownFunc' as HistoryEntry['func']) : pick(next, [null, 'run', 'rollback', 'runHandleInfo', 'rollbackHandleInfo'] as const),
    attempt: pick(next, [0, 1, 2, 510, 511, 100_000, -1, 2.5]),
    status: next() < 0.05 ? ('paused' as HistoryEntry['status']) : pick(next, ['running', 'waiting', 'completed', 'rolled_back', 'blocked'] as const),
  };
  if (next() < 0.3) line.group = 'shipping';
  if (next() < 0.3) line.branch = pick(next, ['a', 'b']);
  if (next() < 0.5) line.outcome = pick(next, ['ok', 'error', 'order.paid']);
  if (next() < 0.3) line.code = 'PAYMENT_DECLINED';
  if (next() < 0.3) line.note = 'by ops: stuck';
  if (next() < 0.2) line.stateChange = [{ op: 'replace', path: '/n', value: { deep: [1, 2] } }];
  return line as HistoryEntry;
}

function randomLines(seed: number, count: number): HistoryEntry[] {
  const next = seededRandom(seed);
  const lines: HistoryEntry[] = [];
  let at = 1_764_000_000_000;
  for (let i = 0; i < count; i++) {
    const line = randomLine(next, at);
    at = line.at;
    lines.push(line);
  }
  return lines;
}

describe('history kept packed', () => {
  it('gives back every line as it was appended, for 200 seeded runs of odd lines', () => {
    for (let seed = 1; seed <= 200; seed++) {
      const lines = randomLines(seed, 1 + (seed % 40));
      const log = HistoryLog.of(lines, 1_764_000_000_000);
      expect({ seed, lines: log.entries() }).toEqual({ seed, lines });
      expect(log.length).toBe(lines.length);
    }
  });

  it('appends another log with the same base or another base, and keeps the lines when trimmed', () => {
    for (let seed = 1; seed <= 50; seed++) {
      const first = randomLines(seed, 10);
      const second = randomLines(seed + 1000, 10);
      const same = HistoryLog.of(first, 7);
      same.addAll(HistoryLog.of(second, 7));
      const other = HistoryLog.of(first, 7);
      other.addAll(HistoryLog.of(second, 123_456));
      same.trim();
      expect(same.entries()).toEqual([...first, ...second]);
      expect(other.entries()).toEqual([...first, ...second]);
      expect(same.length).toBe(20);
    }
  });

  it('keeps the keys of every line in one order, leaving out the fields a line does not have', () => {
    const log = new HistoryLog(100);
    log.add(100, 'started', null, 'up', null, 0, 'running');
    log.add(100, 'step-result', 'pay', 'up', 'run', 1, 'running', 'g', 'b', 'ok', undefined, 'n');
    const [first, second] = log.entries();
    expect(Object.keys(first!)).toEqual(['at', 'kind', 'step', 'direction', 'func', 'attempt', 'status']);
    expect(Object.keys(second!)).toEqual(['at', 'kind', 'step', 'direction', 'func', 'attempt', 'status', 'group', 'branch', 'outcome', 'note']);
  });

  it('hands out fresh lines: changing what was read, a state change included, changes nothing kept', () => {
    const change = [{ op: 'add' as const, path: '/a', value: { b: 1 } }];
    const log = HistoryLog.of([{ at: 1, kind: 'step-result', step: 's', direction: 'up', func: 'run', attempt: 1, status: 'running', stateChange: change }]);
    const read = log.entries();
    (read[0] as { step: string }).step = 'mutated';
    ((read[0]!.stateChange![0] as { value: { b: number } }).value).b = 2;
    expect(log.entries()[0]!.step).toBe('s');
    expect(log.entries()[0]!.stateChange).toEqual([{ op: 'add', path: '/a', value: { b: 1 } }]);
  });

  it('gives a store that takes packed lines the log itself, and any other store the lines as objects', async () => {
    const seen: string[] = [];
    class Watched extends MemoryStore {
      constructor(packed: boolean) {
        super();
        Object.defineProperty(this, TAKES_HISTORY_LOG, { value: packed });
      }
      override save(record: InstanceRecord, writes?: TransitionWrites): Promise<number> {
        seen.push(`${this[TAKES_HISTORY_LOG]}: ${historyLogOf(writes ?? {}) === undefined ? 'objects' : 'packed'}`);
        return super.save(record, writes);
      }
    }
    const histories: HistoryEntry[][] = [];
    for (const store of [new Watched(true), new Watched(false)]) {
      const wf = defineWorkflow<TestState>({ name: 'watched', steps: [recordingStep('a', [])] });
      const runtime = new SagaRuntime({ store, logger: silentLogger, clock: new SimulatedClock(5_000) });
      runtime.register(wf);
      const handle = await runtime.start(wf, { trail: [] }, { id: 'w' });
      await handle.result();
      histories.push(await runtime.history('w'));
      await runtime.close();
    }
    expect([...new Set(seen)]).toEqual(['true: packed', 'false: objects']);
    expect(histories[0]).toHaveLength(4);
    expect(histories[0]).toEqual(histories[1]);
  });

  it('lets a wrapper around the memory store read the lines of the writes it passes on, and serialise them', async () => {
    const inner = new MemoryStore();
    const audited: unknown[] = [];
    const store = new Proxy(inner, {
      get(target, key) {
        if (key === 'save' || key === 'create') {
          return (record: InstanceRecord, writes: TransitionWrites) => {
            audited.push(...(writes.history ?? []));
            expect((JSON.parse(JSON.stringify(writes)) as { history: unknown }).history).toEqual(writes.history);
            return key === 'save' ? target.save(record, writes) : target.create(record, writes);
          };
        }
        const value: unknown = Reflect.get(target, key, target);
        return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
      },
    });
    const wf = defineWorkflow<TestState>({ name: 'audited', steps: [recordingStep('a', []), recordingStep('b', [])] });
    const runtime = new SagaRuntime({ store, logger: silentLogger, clock: new SimulatedClock(5_000) });
    runtime.register(wf);
    const handle = await runtime.start(wf, { trail: [] }, { id: 'a-1' });
    await handle.result();
    expect(audited).toEqual(await runtime.history('a-1'));
    expect(audited).toHaveLength(6);
    await runtime.close();
  });

  it('keeps a line of another shape whole, as the SQL stores keep unknown fields', async () => {
    const store = new MemoryStore();
    const odd = { at: 7, kind: 'started', step: null, direction: 'up', func: null, attempt: 0, status: 'running', future: 'kept' } as unknown as HistoryEntry;
    const partial = { at: 8, kind: 'resumed', direction: 'up', status: 'running', note: undefined } as unknown as HistoryEntry;
    await store.create(newRecord('h', 'wf', {}, 0), { history: [odd, partial] });
    (odd as unknown as { future: string }).future = 'changed after the save';
    const read = await store.history('h');
    expect(read[0]).toEqual({ ...odd, future: 'kept' });
    expect(read[1]).toStrictEqual({ at: 8, kind: 'resumed', direction: 'up', status: 'running', note: undefined });
    expect(Object.keys(read[1]!)).toEqual(['at', 'kind', 'direction', 'status', 'note']);
  });

  it('appends a log to itself once, and times the next line right after an append', () => {
    const log = new HistoryLog(0);
    log.add(5, 'started', null, 'up', null, 0, 'running');
    log.addAll(log);
    expect(log.entries().map((e) => e.at)).toEqual([5, 5]);
    const other = new HistoryLog(0);
    other.add(9, 'finished', null, 'up', null, 1, 'completed');
    log.addAll(other);
    log.add(5, 'resumed', null, 'up', null, 1, 'completed');
    log.add(5, 'resumed', null, 'up', null, 1, 'completed');
    log.add(12, 'resumed', null, 'up', null, 1, 'completed');
    expect(log.entries().map((e) => e.at)).toEqual([5, 5, 9, 5, 5, 12]);
  });

  it('lets the memory store append the engine lines without building them', async () => {
    const store = new MemoryStore();
    const record = newRecord('r', 'wf', {}, 1_000);
    const log = new HistoryLog(record.createdAt);
    log.add(1_000, 'started', null, 'up', null, 0, 'running');
    const entries = jest.spyOn(log, 'entries');
    await store.create(record, packedWrites(log));
    await store.save({ ...record, version: 1 }, { history: [{ at: 1_001, kind: 'resumed', step: null, direction: 'up', func: null, attempt: 0, status: 'running', note: 'by ops' }] });
    expect(entries).not.toHaveBeenCalled();
    expect(await store.history('r')).toEqual([
      { at: 1_000, kind: 'started', step: null, direction: 'up', func: null, attempt: 0, status: 'running' },
      { at: 1_001, kind: 'resumed', step: null, direction: 'up', func: null, attempt: 0, status: 'running', note: 'by ops' },
    ]);
  });

  it('reads the same history of a saga that rolled back from the memory store as from SQLite, which builds the lines', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'sagaflow-history-'));
    try {
      const histories: Omit<HistoryEntry, 'at'>[][] = [];
      for (const store of [new MemoryStore(), TypeormStore.sqlite({ file: path.join(dir, 'h.db') })]) {
        const wf = defineWorkflow<TestState>({
          name: 'packed',
          steps: [recordingStep('a', []), recordingStep('b', [], { run: fails('DECLINED') })],
        });
        const runtime = new SagaRuntime({ store, logger: silentLogger });
        runtime.register(wf);
        const handle = await runtime.start(wf, { trail: [] }, { id: 'same' });
        expect((await handle.result()).status).toBe('rolled_back');
        histories.push((await runtime.history(handle.id)).map(({ at: _at, ...rest }) => rest));
        await runtime.close();
      }
      expect(histories[0]!.map((h) => h.kind)).toEqual(['started', 'step-started', 'step-result', 'step-started', 'step-result', 'step-started', 'step-result', 'step-started', 'step-result', 'finished']);
      expect(histories[0]).toContainEqual({ kind: 'step-result', step: 'b', direction: 'up', func: 'run', attempt: 1, status: 'rolling_back', outcome: 'error', code: 'DECLINED' });
      expect(histories[0]).toEqual(histories[1]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
