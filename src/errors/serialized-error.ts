/**
 * The persisted form of an error: plain JSON, no stack (stacks stay in memory and logs).
 */
export interface SerializedError {
  /** A stable, machine-readable code such as `TIMEOUT` or `MALFORMED_RESULT`. */
  readonly code: string;
  /** The error's class name, e.g. `TypeError`. */
  readonly name: string;
  /** What happened, for people. */
  readonly message: string;
  /** Structured extra data (JSON only). */
  readonly details?: Readonly<Record<string, unknown>>;
}

/** What stands for a value that could not be read (a revoked Proxy, a getter that throws). */
const UNREADABLE = '[unreadable]';

/** Runs `read`, giving `fallback` when it throws: user values may be Proxies or have throwing getters. */
function attempt<T>(read: () => T, fallback: T): T {
  try {
    return read();
  } catch {
    return fallback;
  }
}

/**
 * Writes `value` as JSON-like text into `out`, stopping once `budget` characters are written: cycles show as
 * `[Circular]`, BigInts as `12n`, functions and symbols by name, anything unreadable as `[unreadable]`.
 */
function render(value: unknown, out: string[], budget: { left: number }, ancestors: object[]): void {
  const put = (text: string): void => {
    out.push(text);
    budget.left -= text.length;
  };
  switch (typeof value) {
    case 'undefined':
      put('undefined');
      return;
    case 'string':
      put(JSON.stringify(value.length > budget.left ? value.slice(0, Math.max(0, budget.left)) : value));
      return;
    case 'number':
    case 'boolean':
      put(String(value));
      return;
    case 'bigint':
      put(`${value}n`);
      return;
    case 'symbol':
      put(attempt(() => value.toString(), 'Symbol()'));
      return;
    case 'function':
      put(`[function ${attempt(() => stringField(value, 'name'), undefined) || 'anonymous'}]`);
      return;
  }
  if (value === null) {
    put('null');
    return;
  }
  const object: object = value as object;
  if (ancestors.includes(object)) {
    put('[Circular]');
    return;
  }
  const toJSON = attempt(() => (object as { toJSON?: unknown }).toJSON, undefined);
  if (typeof toJSON === 'function') {
    const json = attempt(() => (toJSON as (this: object) => unknown).call(object), UNREADABLE as unknown);
    if (json !== object) {
      render(json, out, budget, [...ancestors, object]);
      return;
    }
  }
  const keys = attempt(() => (Array.isArray(object) ? null : Object.keys(object)), undefined);
  if (keys === undefined) {
    put(UNREADABLE);
    return;
  }
  const inner = [...ancestors, object];
  if (keys === null) {
    const list = object as unknown[];
    put('[');
    for (let i = 0; i < list.length && budget.left > 0; i += 1) {
      if (i > 0) put(',');
      render(attempt(() => list[i], UNREADABLE as unknown), out, budget, inner);
    }
    put(']');
    return;
  }
  put('{');
  keys.forEach((key, i) => {
    if (budget.left <= 0) return;
    if (i > 0) put(',');
    put(`${JSON.stringify(key)}:`);
    render(attempt(() => (object as Record<string, unknown>)[key], UNREADABLE as unknown), out, budget, inner);
  });
  put('}');
}

/**
 * Quotes any value for an error message: JSON-like, at most `max` characters (longer text ends with `…`), and
 * never throws — whatever the value (cycles, BigInts, Proxies, throwing getters).
 */
export function quote(value: unknown, max = 200): string {
  const out: string[] = [];
  render(value, out, { left: max + 1 }, []);
  const text = out.join('');
  return text.length > max ? `${text.slice(0, max)}…` : text;
}

/** A string field of `source`, or undefined when it is absent, not a string or cannot be read. */
function stringField(source: unknown, key: string): string | undefined {
  const value = attempt(() => (source as Record<string, unknown>)[key], undefined);
  return typeof value === 'string' ? value : undefined;
}

/** A JSON copy of `details` (an object), or a quote of it when it is not JSON; undefined when absent. */
function jsonDetails(source: unknown): Record<string, unknown> | undefined {
  const details = attempt(() => (source as { details?: unknown }).details, UNREADABLE as unknown);
  if (typeof details !== 'object' || details === null) return details === UNREADABLE ? { unserializable: UNREADABLE } : undefined;
  try {
    const copy: unknown = JSON.parse(JSON.stringify(details) ?? 'null');
    return typeof copy === 'object' && copy !== null && !Array.isArray(copy) ? (copy as Record<string, unknown>) : { value: copy };
  } catch {
    return { unserializable: quote(details) };
  }
}

function withDetails(base: SerializedError, source: unknown): SerializedError {
  const details = jsonDetails(source);
  return details === undefined ? base : { ...base, details };
}

/** True for an `Error` (of this realm or another); false for anything else, Proxies whose traps throw included. */
export function isErrorValue(value: unknown): value is Error {
  return attempt(() => value instanceof Error || (typeof value === 'object' && value !== null && Object.prototype.toString.call(value) === '[object Error]'), false);
}

function fromError(error: Error): SerializedError {
  return withDetails(
    {
      code: stringField(error, 'code') ?? 'ERROR',
      name: stringField(error, 'name') ?? 'Error',
      message: stringField(error, 'message') ?? UNREADABLE,
    },
    error,
  );
}

function nonErrorThrown(value: unknown, how: 'thrown' | 'given as an error reason'): SerializedError {
  const quoted = quote(value);
  return {
    code: 'NON_ERROR_THROWN',
    name: 'NonErrorThrown',
    message: `a value that is not an Error was ${how}: ${quoted}; use an Error (with a string code), or error({ code, message })`,
    details: { value: quoted },
  };
}

/**
 * Turns an error *reason* — what a handler returned in `error(reason)`, an `into`, or an observer's veto — into a
 * {@link SerializedError}: an Error keeps its string `code`; `{ code, message }` objects keep theirs; a string
 * becomes the message (code `ERROR`); anything else is quoted under `NON_ERROR_THROWN`. Never throws.
 */
export function serializeError(reason: unknown): SerializedError {
  if (isErrorValue(reason)) return fromError(reason);
  if (typeof reason === 'string') return { code: 'ERROR', name: 'Error', message: reason };
  if (typeof reason === 'object' && reason !== null) {
    const code = stringField(reason, 'code');
    const message = stringField(reason, 'message');
    if (code !== undefined || message !== undefined) {
      return withDetails({ code: code ?? 'ERROR', name: stringField(reason, 'name') ?? 'Error', message: message ?? code ?? '' }, reason);
    }
  }
  return nonErrorThrown(reason, 'given as an error reason');
}

/**
 * Turns a *thrown* value into a {@link SerializedError}: an Error as {@link serializeError} does, anything else —
 * a string, a number, a plain object, a Proxy — under `NON_ERROR_THROWN`, quoting it. Never throws.
 */
export function serializeThrown(thrown: unknown): SerializedError {
  return isErrorValue(thrown) ? fromError(thrown) : nonErrorThrown(thrown, 'thrown');
}
