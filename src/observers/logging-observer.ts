import { quote, type SerializedError } from '../errors/serialized-error';
import { DefinitionError } from '../errors/definition-error';
import { checkBoolean, checkOptions, optionKeys } from '../input/known-keys';
import { REDACTED, Redaction } from './redaction';
import type { Logger } from '../core/logger';
import type { FlowView, Observer } from './observer';

/** A level of the {@link Logger} shape, or `'off'` to log nothing at that point. */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

/** The points a {@link LoggingObserver} logs, each at its own (configurable) level. */
export type LoggedPoint =
  | 'init'
  | 'stepStart'
  | 'stepEnd'
  | 'stepFailed'
  | 'startRollback'
  | 'success'
  | 'failure'
  | 'compensationFailed'
  | 'groupStart'
  | 'groupEnd';

/** The `event` field of each line: stable names to filter logs on. */
export const LoggedEvent = {
  init: 'saga.started',
  stepStart: 'step.started',
  stepEnd: 'step.finished',
  stepFailed: 'step.failed',
  startRollback: 'saga.rolling_back',
  success: 'saga.completed',
  failure: 'saga.rolled_back',
  compensationFailed: 'saga.compensation_failed',
  groupStart: 'group.started',
  groupEnd: 'group.ended',
} as const satisfies Record<LoggedPoint, string>;
export type LoggedEvent = (typeof LoggedEvent)[keyof typeof LoggedEvent];

const LOGGING_OPTION_KEYS = optionKeys<LoggingObserverOptions>()(['logger', 'levels', 'logState', 'redact', 'now']);
const LOGGED_POINTS = Object.keys(LoggedEvent);

/** The default level of each point. */
export const DEFAULT_LOG_LEVELS: Readonly<Record<LoggedPoint, LogLevel>> = Object.freeze({
  init: 'info',
  stepStart: 'debug',
  stepEnd: 'debug',
  stepFailed: 'debug',
  startRollback: 'warn',
  success: 'info',
  failure: 'warn',
  compensationFailed: 'error',
  groupStart: 'debug',
  groupEnd: 'debug',
});

export { REDACTED };

/** Options of a {@link LoggingObserver}. */
export interface LoggingObserverOptions {
  /**
   * Where the lines go: any object with pino's method shape (`logger.info(obj, msg)`), so a pino logger (or a child
   * of one) works as it is.
   * @default jsonLineLogger() — one JSON object per line on stdout, `info` and above
   */
  readonly logger?: Logger;
  /**
   * The level of each point, or `'off'` to skip it. Points left out keep their default: step calls (`stepStart`,
   * `stepEnd`, `stepFailed`) and group hooks at `debug`, `init` and `success` at `info`, `startRollback` and
   * `failure` at `warn`, `compensationFailed` at `error`. Raise `stepFailed` to `warn` to see every failed attempt
   * (retries included) without turning on debug.
   * @default DEFAULT_LOG_LEVELS
   */
  readonly levels?: Partial<Record<LoggedPoint, LogLevel | 'off'>>;
  /**
   * Adds the state (a JSON copy, as the hook received it) to every line as `state`. Off by default because the
   * state may hold personal data; combine with {@link LoggingObserverOptions.redact}.
   * @default false
   */
  readonly logState?: boolean;
  /**
   * Dot paths into the state whose values are replaced by `'[redacted]'` in the logged copy (the real state is never
   * touched). A `*` segment matches every key of an object or every item of an array:
   * `['customer.email', 'cards.*.number']`. Paths that do not exist are ignored. Only used with `logState: true`.
   * @default []
   */
  readonly redact?: readonly string[];
  /**
   * The time source for step durations, in milliseconds. Inject the runtime's clock (`() => clock.now()`) to make
   * durations follow a `SimulatedClock` in tests.
   * @default Date.now
   */
  readonly now?: () => number;
}

/** Options of {@link jsonLineLogger}. */
export interface JsonLineLoggerOptions {
  /** The lowest level written. @default 'info' */
  readonly level?: LogLevel;
  /** Where each line (without its newline) goes. @default writes the line and a newline to `process.stdout` */
  readonly write?: (line: string) => void;
  /** The time put in each line's `time` field (ms since the epoch). @default Date.now */
  readonly now?: () => number;
}

const LEVEL_RANK: Readonly<Record<LogLevel, number>> = { debug: 20, info: 30, warn: 40, error: 50 };

/**
 * A {@link Logger} that writes one JSON object per line — `{"level":"info","time":…,"msg":"…",…fields}` — the shape
 * log shippers read without configuration (pino's, with the level as a word). The {@link LoggingObserver}'s default.
 *
 * @example
 * const logger = jsonLineLogger({ level: 'debug' });
 * const runtime = new SagaRuntime({ observers: [new LoggingObserver({ logger })] });
 */
export function jsonLineLogger(options: JsonLineLoggerOptions = {}): Logger {
  checkOptions(options, ['level', 'write', 'now'], 'jsonLineLogger');
  if (options.level !== undefined && !(options.level in LEVEL_RANK)) {
    throw new DefinitionError('BAD_OPTION', `jsonLineLogger: level must be 'debug', 'info', 'warn' or 'error', got ${quote(options.level)}`, { field: 'level' });
  }
  const min = LEVEL_RANK[options.level ?? 'info'];
  const write = options.write ?? ((line: string) => void process.stdout.write(`${line}\n`));
  const now = options.now ?? Date.now;
  const line = (level: LogLevel) => (obj: Record<string, unknown>, msg?: string): void => {
    if (LEVEL_RANK[level] < min) return;
    let text: string;
    try {
      text = JSON.stringify({ level, time: now(), ...obj, msg: msg ?? '' });
    } catch {
      text = JSON.stringify({ level, time: now(), msg: msg ?? '', unserializable: true });
    }
    write(text);
  };
  return { debug: line('debug'), info: line('info'), warn: line('warn'), error: line('error') };
}

/** The fields every line about a flow carries. */
function flowFields(flow: FlowView): Record<string, unknown> {
  const fields: Record<string, unknown> = {
    instanceId: flow.instanceId,
    workflow: flow.workflow,
    status: flow.status,
    direction: flow.direction,
  };
  if (flow.group !== undefined) fields.group = flow.group;
  if (flow.branch !== undefined) fields.branch = flow.branch;
  return fields;
}

function errorFields(error: SerializedError | null): Record<string, unknown> {
  return error === null ? {} : { code: error.code, error: { code: error.code, name: error.name, message: error.message } };
}

/** True for the handlers that follow a `continue`. */
function isResumeHandler(flow: FlowView): boolean {
  return flow.stepFunc === 'runHandleInfo' || flow.stepFunc === 'rollbackHandleInfo';
}

/** The key of one step call: the same for `run` and the `runHandleInfo` that follows a continue. */
function callKey(flow: FlowView): string {
  return `${flow.branch ?? ''}\u0000${flow.stepName ?? ''}\u0000${flow.direction}`;
}

/**
 * An observer that writes a structured line for every lifecycle point and step call, to any logger with pino's
 * method shape (pino itself works as it is; the default writes JSON lines to stdout).
 *
 * Every line has `event` (see {@link LoggedEvent}), `instanceId`, `workflow`, `status`, `direction` and, inside a
 * parallel group, `group` and `branch`. Step lines add `step`, `stepIndex`, `handler` (`run`, `rollback`,
 * `runHandleInfo`, …), `attempt` (and `retryDelayMs` on a retry); `step.finished` / `step.failed` add `result`
 * (`ok`, `error`, `goto`), `code` for errors, and `durationMs`: the time from the before-hook to the after-hook,
 * read from `now`. For a step that continued, the after-hook comes when `runHandleInfo` resolves, so its line has
 * `continued: true` and a `durationMs` that spans the whole wait; when that happens in another process than the one
 * that started the step (after a restart), the start is unknown and `durationMs` is left out. `saga.rolling_back`,
 * `saga.rolled_back` and `saga.compensation_failed` add `code` and `error: { code, name, message }`.
 *
 * The state is not logged unless `logState: true` (it may hold personal data); `redact` blanks fields of the logged
 * copy. Start times are kept per call in memory and dropped when the call ends or the instance finishes, so
 * nothing accumulates.
 *
 * @example
 * import pino from 'pino';
 * const runtime = new SagaRuntime({
 *   observers: [new LoggingObserver({ logger: pino({ level: 'debug' }), logState: true, redact: ['customer.email'] })],
 * });
 * // {"level":20,"event":"step.finished","instanceId":"o-1","workflow":"order","step":"charge","handler":"run",
 * //  "attempt":1,"result":"ok","durationMs":84,…,"msg":"step charge run finished: ok"}
 */
export class LoggingObserver implements Observer<unknown> {
  private readonly logger: Logger;
  private readonly levels: Readonly<Record<LoggedPoint, LogLevel | 'off'>>;
  private readonly logState: boolean;
  private readonly redaction: Redaction;
  private readonly now: () => number;
  /** Start time of each call in flight, by instance, then by {@link callKey}. */
  private readonly started = new Map<string, Map<string, number>>();

  constructor(options: LoggingObserverOptions = {}) {
    const where = 'new LoggingObserver';
    checkOptions(options, LOGGING_OPTION_KEYS, where);
    checkOptions(options.levels, LOGGED_POINTS, `${where}: levels`);
    for (const [point, level] of Object.entries(options.levels ?? {})) {
      if (level !== 'off' && !(typeof level === 'string' && level in LEVEL_RANK)) {
        throw new DefinitionError('BAD_OPTION', `${where}: levels.${point} must be 'debug', 'info', 'warn', 'error' or 'off', got ${quote(level)}`, { where, field: `levels.${point}` });
      }
    }
    checkBoolean(options.logState, 'logState', where);
    this.logger = options.logger ?? jsonLineLogger();
    this.levels = { ...DEFAULT_LOG_LEVELS, ...options.levels };
    this.logState = options.logState ?? false;
    this.redaction = Redaction.of(options.redact, where);
    this.now = options.now ?? Date.now;
  }

  /** How many step calls have a start time kept (for tests and leak checks). */
  get pendingCalls(): number {
    let n = 0;
    for (const calls of this.started.values()) n += calls.size;
    return n;
  }

  handleInit(state: unknown, flow: FlowView): void {
    this.write('init', state, flow, {}, `saga ${flow.workflow} started`);
  }

  handleBeforeStep(state: unknown, flow: FlowView): void {
    let calls = this.started.get(flow.instanceId);
    if (calls === undefined) this.started.set(flow.instanceId, (calls = new Map<string, number>()));
    calls.set(callKey(flow), this.now());
    this.write('stepStart', state, flow, this.stepFields(flow), `step ${flow.stepName ?? ''} ${flow.stepFunc} started`);
  }

  handleAfterStep(state: unknown, flow: FlowView): void {
    const calls = this.started.get(flow.instanceId);
    const key = callKey(flow);
    const start = calls?.get(key);
    calls?.delete(key);
    if (calls?.size === 0) this.started.delete(flow.instanceId);
    const result = flow.lastResult;
    const fields = this.stepFields(flow);
    fields.result = result?.kind ?? null;
    if (result?.code !== undefined) fields.code = result.code;
    if (start !== undefined) fields.durationMs = this.now() - start;
    if (isResumeHandler(flow)) fields.continued = true;
    const failed = result?.kind === 'error';
    const outcome = failed ? `failed: ${result.code ?? 'ERROR'}` : `finished: ${result?.kind ?? 'unknown'}`;
    this.write(failed ? 'stepFailed' : 'stepEnd', state, flow, fields, `step ${flow.stepName ?? ''} ${flow.stepFunc} ${outcome}`);
  }

  handleStartRollback(state: unknown, flow: FlowView): void {
    const fields = { ...errorFields(flow.errorReason), ...(flow.stepName === null ? {} : { step: flow.stepName }) };
    this.write('startRollback', state, flow, fields, `saga ${flow.workflow} rolling back: ${flow.errorReason?.code ?? 'no reason'}`);
  }

  handleWorkflowSuccess(state: unknown, flow: FlowView): void {
    this.forget(flow.instanceId);
    this.write('success', state, flow, {}, `saga ${flow.workflow} completed`);
  }

  handleWorkflowFailure(state: unknown, flow: FlowView): void {
    this.forget(flow.instanceId);
    this.write('failure', state, flow, errorFields(flow.errorReason), `saga ${flow.workflow} rolled back`);
  }

  handleCompensationFailed(state: unknown, flow: FlowView): void {
    this.forget(flow.instanceId);
    this.write('compensationFailed', state, flow, errorFields(flow.errorReason), `saga ${flow.workflow} stopped: a compensation failed`);
  }

  handleGroupStart(state: unknown, flow: FlowView): void {
    this.write('groupStart', state, flow, {}, `group ${flow.group ?? ''} started`);
  }

  handleGroupEnd(state: unknown, flow: FlowView): void {
    this.write('groupEnd', state, flow, {}, `group ${flow.group ?? ''} ended`);
  }

  private stepFields(flow: FlowView): Record<string, unknown> {
    const fields: Record<string, unknown> = { step: flow.stepName, stepIndex: flow.stepIndex, handler: flow.stepFunc, attempt: flow.attempt };
    if (flow.retryDelay !== null) fields.retryDelayMs = flow.retryDelay;
    return fields;
  }

  /** Drops the start times of an instance that finished (calls whose after-hook never came: a vetoed before-hook). */
  private forget(instanceId: string): void {
    this.started.delete(instanceId);
  }

  private write(point: LoggedPoint, state: unknown, flow: FlowView, fields: Record<string, unknown>, msg: string): void {
    const level = this.levels[point];
    if (level === 'off') return;
    const obj: Record<string, unknown> = { event: LoggedEvent[point], ...flowFields(flow), ...fields };
    if (this.logState) obj.state = this.redaction.copy(state);
    this.logger[level](obj, msg);
  }
}
