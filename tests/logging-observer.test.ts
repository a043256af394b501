import pino from 'pino';
import { defineWorkflow, error as fail, ok, parallel, type Observer } from '../src';
import { jsonLineLogger, LoggingObserver, REDACTED, type LoggingObserverOptions } from '../src/observers/logging-observer';
import { SimulatedClock } from '../src/testing';
import { fails, recordingStep, throws, waitsFor, type Log, type TestState } from './support/steps';
import { testRuntime } from './support/runtime';

/** One line pino wrote, parsed. */
type Line = Record<string, unknown> & { level: number; msg: string; event: string };

/** A pino logger at debug writing into memory, and the lines it wrote (parsed). */
function pinoInMemory(): { logger: pino.Logger; lines: Line[] } {
  const lines: Line[] = [];
  const logger = pino({ level: 'debug', base: null }, { write: (chunk: string) => void lines.push(JSON.parse(chunk) as Line) });
  return { logger, lines };
}

/** A clock the test moves by hand (steps move it to take time). */
function manualTime(start = 1_000): { now: () => number; pass: (ms: number) => void } {
  let t = start;
  return { now: () => t, pass: (ms) => void (t += ms) };
}

/** A LoggingObserver writing to pino in memory. */
function logged(options: Omit<LoggingObserverOptions, 'logger'> = {}): { observer: LoggingObserver; lines: Line[] } {
  const { logger, lines } = pinoInMemory();
  return { observer: new LoggingObserver({ logger, ...options }), lines };
}

const PINO_LEVEL = { debug: 20, info: 30, warn: 40, error: 50 } as const;

describe('LoggingObserver', () => {
  it('writes a pino line for every lifecycle point and step call, with the flow fields and the duration', async () => {
    const log: Log = [];
    const time = manualTime();
    const { observer, lines } = logged({ now: time.now });
    const slow = recordingStep('slow', log, {
      run: (state) => {
        time.pass(250);
        return ok(state);
      },
    });
    const wf = defineWorkflow<TestState>({ name: 'log-ok', steps: [recordingStep('A', log), slow] });
    const { runtime } = testRuntime({ workflows: [wf], observers: [observer] });
    await (await runtime.start(wf, { trail: [] }, { id: 'i-1' })).result();

    expect(lines.map((l) => [l.level, l.event, l.step ?? '-'])).toEqual([
      [30, 'saga.started', '-'],
      [20, 'step.started', 'A'],
      [20, 'step.finished', 'A'],
      [20, 'step.started', 'slow'],
      [20, 'step.finished', 'slow'],
      [30, 'saga.completed', '-'],
    ]);
    expect(lines[4]).toEqual({
      level: PINO_LEVEL.debug,
      time: expect.any(Number),
      event: 'step.finished',
      instanceId: 'i-1',
      workflow: 'log-ok',
      status: 'running',
      direction: 'up',
      step: 'slow',
      stepIndex: 1,
      handler: 'run',
      attempt: 1,
      result: 'ok',
      durationMs: 250,
      msg: 'step slow run finished: ok',
    });
    expect(lines[0]).toMatchObject({ event: 'saga.started', instanceId: 'i-1', workflow: 'log-ok', msg: 'saga log-ok started' });
    expect(lines[5]).toMatchObject({ event: 'saga.completed', status: 'completed', msg: 'saga log-ok completed' });
    expect(lines.some((l) => 'state' in l)).toBe(false);
  });

  it('logs a failing step with its code, the start of the rollback and the failure at warn, and the compensations', async () => {
    const log: Log = [];
    const { observer, lines } = logged();
    const wf = defineWorkflow<TestState>({
      name: 'log-fail',
      steps: [recordingStep('A', log), recordingStep('E', log, { run: fails('CARD_DECLINED', 'the card was declined') })],
    });
    const { runtime } = testRuntime({ workflows: [wf], observers: [observer] });
    await (await runtime.start(wf, { trail: [] })).result();

    expect(lines.map((l) => [l.level, l.event, l.step ?? '-', l.direction])).toEqual([
      [30, 'saga.started', '-', 'up'],
      [20, 'step.started', 'A', 'up'],
      [20, 'step.finished', 'A', 'up'],
      [20, 'step.started', 'E', 'up'],
      [20, 'step.failed', 'E', 'up'],
      [40, 'saga.rolling_back', 'E', 'down'],
      [20, 'step.started', 'E', 'down'],
      [20, 'step.finished', 'E', 'down'],
      [20, 'step.started', 'A', 'down'],
      [20, 'step.finished', 'A', 'down'],
      [40, 'saga.rolled_back', '-', 'down'],
    ]);
    expect(lines[4]).toMatchObject({ handler: 'run', result: 'error', code: 'CARD_DECLINED', msg: 'step E run failed: CARD_DECLINED' });
    expect(lines[5]).toMatchObject({
      code: 'CARD_DECLINED',
      error: { code: 'CARD_DECLINED', name: 'Error', message: 'the card was declined' },
      msg: 'saga log-fail rolling back: CARD_DECLINED',
    });
    expect(lines[7]).toMatchObject({ handler: 'rollback', result: 'ok' });
    expect(lines[10]).toMatchObject({ status: 'rolled_back', code: 'CARD_DECLINED' });
  });

  it('logs a step that threw as an error result with the code of the thrown error', async () => {
    const log: Log = [];
    const { observer, lines } = logged();
    const wf = defineWorkflow<TestState>({ name: 'log-throw', steps: [recordingStep('T', log, { run: throws(new TypeError('x is undefined')) })] });
    const { runtime } = testRuntime({ workflows: [wf], observers: [observer] });
    await (await runtime.start(wf, { trail: [] })).result();
    expect(lines.find((l) => l.event === 'step.failed')).toMatchObject({ step: 'T', result: 'error', code: 'ERROR' });
    expect(lines.find((l) => l.event === 'saga.rolling_back')).toMatchObject({ error: { code: 'ERROR', name: 'TypeError', message: 'x is undefined' } });
  });

  it('logs a compensation that failed at error', async () => {
    const log: Log = [];
    const { observer, lines } = logged();
    const wf = defineWorkflow<TestState>({
      name: 'log-comp',
      steps: [recordingStep('A', log, { rollback: fails('REFUND_FAILED', 'the refund bounced') }), recordingStep('E', log, { run: fails() })],
    });
    const { runtime } = testRuntime({ workflows: [wf], observers: [observer] });
    expect((await (await runtime.start(wf, { trail: [] })).result()).status).toBe('compensation_failed');
    const last = lines[lines.length - 1]!;
    expect(last).toMatchObject({ level: PINO_LEVEL.error, event: 'saga.compensation_failed', status: 'compensation_failed', msg: 'saga log-comp stopped: a compensation failed' });
    expect(lines.find((l) => l.event === 'step.failed' && l.direction === 'down')).toMatchObject({ step: 'A', handler: 'rollback', code: 'REFUND_FAILED' });
  });

  it('logs a continued step once it resolves, marked continued, with a duration that spans the wait', async () => {
    const log: Log = [];
    const clock = new SimulatedClock();
    const { observer, lines } = logged({ now: () => clock.now() });
    const wf = defineWorkflow<TestState>({ name: 'log-wait', steps: [recordingStep('W', log, { run: waitsFor('paid') })] });
    const { runtime } = testRuntime({ workflows: [wf], observers: [observer], clock });
    const handle = await runtime.start(wf, { trail: [] });
    await runtime.idle();
    expect(lines.map((l) => l.event)).toEqual(['saga.started', 'step.started']);
    expect(observer.pendingCalls).toBe(1);
    await clock.advance('90s');
    await runtime.publish({ topic: 'paid' });
    await handle.result();
    expect(lines.map((l) => l.event)).toEqual(['saga.started', 'step.started', 'step.finished', 'saga.completed']);
    expect(lines[2]).toMatchObject({ step: 'W', handler: 'runHandleInfo', result: 'ok', continued: true, durationMs: 90_000 });
    expect(observer.pendingCalls).toBe(0);
  });

  it('leaves the duration out when the step started in another process', async () => {
    const log: Log = [];
    const wf = defineWorkflow<TestState>({ name: 'log-restart', steps: [recordingStep('W', log, { run: waitsFor('paid') })] });
    const first = logged();
    const one = testRuntime({ workflows: [wf], observers: [first.observer] });
    await one.runtime.start(wf, { trail: [] }, { id: 'moved' });
    await one.runtime.idle();
    await one.runtime.close();

    const second = logged();
    const two = testRuntime({ workflows: [wf], observers: [second.observer], store: one.runtime.store, clock: one.clock });
    await two.runtime.start();
    await two.runtime.publish({ topic: 'paid' });
    await two.runtime.handle('moved').result();
    const finished = second.lines.find((l) => l.event === 'step.finished')!;
    expect(finished).toMatchObject({ instanceId: 'moved', step: 'W', handler: 'runHandleInfo', continued: true });
    expect('durationMs' in finished).toBe(false);
  });

  it('logs the state only when asked, with the redacted paths blanked in the copy and the real state untouched', async () => {
    const log: Log = [];
    const { observer, lines } = logged({ logState: true, redact: ['customer.email', 'cards.*.number', 'missing.path'] });
    const seen: unknown[] = [];
    const witness: Observer<TestState> = { handleWorkflowSuccess: (state) => void seen.push(state) };
    const wf = defineWorkflow<TestState>({ name: 'log-state', steps: [recordingStep('A', log)], observers: [witness] });
    const { runtime } = testRuntime({ workflows: [wf], observers: [observer] });
    const input = { trail: [], customer: { name: 'Ada', email: 'ada@example.com' }, cards: [{ number: '4111', brand: 'visa' }, { number: '5500', brand: 'mc' }] };
    const result = await (await runtime.start(wf, input)).result();

    const started = lines.find((l) => l.event === 'saga.started')!;
    expect(started.state).toEqual({
      trail: [],
      customer: { name: 'Ada', email: REDACTED },
      cards: [
        { number: REDACTED, brand: 'visa' },
        { number: REDACTED, brand: 'mc' },
      ],
    });
    expect(lines.find((l) => l.event === 'step.finished')!.state).toMatchObject({ trail: ['A.run'], customer: { email: REDACTED } });
    expect(result.state).toMatchObject({ customer: { email: 'ada@example.com' }, cards: [{ number: '4111' }, { number: '5500' }] });
    expect(seen[0]).toMatchObject({ customer: { email: 'ada@example.com' } });
    expect(input.customer.email).toBe('ada@example.com');
  });

  it('uses the levels it is given and skips points turned off', async () => {
    const log: Log = [];
    const { observer, lines } = logged({ levels: { stepStart: 'off', stepEnd: 'off', stepFailed: 'warn', init: 'debug', failure: 'error' } });
    const wf = defineWorkflow<TestState>({ name: 'log-levels', steps: [recordingStep('A', log), recordingStep('E', log, { run: fails() })] });
    const { runtime } = testRuntime({ workflows: [wf], observers: [observer] });
    await (await runtime.start(wf, { trail: [] })).result();
    expect(lines.map((l) => `${l.level} ${l.event}`)).toEqual(['20 saga.started', '40 step.failed', '40 saga.rolling_back', '50 saga.rolled_back']);
  });

  it('shows the attempt and the delay before it on a retry', async () => {
    const log: Log = [];
    const { observer, lines } = logged();
    let calls = 0;
    const flaky = recordingStep('charge', log, { run: (state) => (++calls < 2 ? fail({ code: 'UNAVAILABLE', message: 'try later' }, state) : ok(state)) });
    const wf = defineWorkflow<TestState>({ name: 'log-retry', steps: [flaky] });
    const { runtime, clock } = testRuntime({ workflows: [wf], observers: [observer], defaults: { retry: { maxAttempts: 2, backoff: 'fixed', initialDelay: '5s' } } });
    const handle = await runtime.start(wf, { trail: [] });
    await clock.advance('5s');
    await handle.result();
    const steps = lines.filter((l) => l.event.startsWith('step.')).map((l) => [l.event, l.attempt, l.retryDelayMs ?? null, l.code ?? null]);
    expect(steps).toEqual([
      ['step.started', 1, null, null],
      ['step.failed', 1, null, 'UNAVAILABLE'],
      ['step.started', 2, 5000, null],
      ['step.finished', 2, 5000, null],
    ]);
  });

  it('names the group and branch of steps inside a parallel group', async () => {
    const log: Log = [];
    const { observer, lines } = logged();
    const wf = defineWorkflow<TestState>({ name: 'log-group', steps: [parallel('G', [recordingStep('A', log), recordingStep('B', log)])] });
    const { runtime } = testRuntime({ workflows: [wf], observers: [observer] });
    await (await runtime.start(wf, { trail: [] })).result();
    expect(lines.filter((l) => l.event.startsWith('group.')).map((l) => `${l.event} ${String(l.group)}`)).toEqual(['group.started G', 'group.ended G']);
    expect(lines.find((l) => l.event === 'step.finished' && l.step === 'B')).toMatchObject({ group: 'G', branch: expect.any(String) });
  });

  it('keeps no start time once calls end, nor for a vetoed call once the instance finishes', async () => {
    const log: Log = [];
    const { observer } = logged();
    const guard: Observer<TestState> = { handleBeforeStep: (_s, flow) => (flow.stepName === 'B' && flow.direction === 'up' ? fail('no B') : undefined) };
    const wf = defineWorkflow<TestState>({ name: 'log-leak', steps: [recordingStep('A', log), recordingStep('B', log)], observers: [observer, guard] });
    const { runtime } = testRuntime({ workflows: [wf] });
    const result = await (await runtime.start(wf, { trail: [] })).result();
    expect(result.status).toBe('rolled_back');
    expect(observer.pendingCalls).toBe(0);
  });

  it('writes JSON lines at info and above to stdout by default', async () => {
    const written: string[] = [];
    const spy = jest.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
      written.push(String(chunk));
      return true;
    });
    try {
      const log: Log = [];
      const wf = defineWorkflow<TestState>({ name: 'log-default', steps: [recordingStep('A', log)] });
      const { runtime } = testRuntime({ workflows: [wf], observers: [new LoggingObserver()] });
      await (await runtime.start(wf, { trail: [] }, { id: 'd-1' })).result();
    } finally {
      spy.mockRestore();
    }
    const parsed = written.filter((w) => w.includes('"saga.')).map((w) => JSON.parse(w) as Line);
    expect(written.every((w) => w.endsWith('\n'))).toBe(true);
    expect(parsed.map((l) => [l.level, l.event, l.instanceId, l.msg])).toEqual([
      ['info', 'saga.started', 'd-1', 'saga log-default started'],
      ['info', 'saga.completed', 'd-1', 'saga log-default completed'],
    ]);
  });

  it('offers a JSON line logger with a minimum level and a sink', () => {
    const out: string[] = [];
    const logger = jsonLineLogger({ level: 'warn', write: (line) => out.push(line), now: () => 42 });
    logger.info({ a: 1 }, 'dropped');
    logger.warn({ a: 2 }, 'kept');
    logger.error({ cyclic: (() => {
      const o: Record<string, unknown> = {};
      o.self = o;
      return o;
    })() }, 'cannot be serialised');
    expect(out.map((l) => JSON.parse(l) as unknown)).toEqual([
      { level: 'warn', time: 42, a: 2, msg: 'kept' },
      { level: 'error', time: 42, msg: 'cannot be serialised', unserializable: true },
    ]);
  });
});
