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

/** Quote any value for an error message: short, never throws. */
export function quote(value: unknown, max = 200): string {
  let text: string;
  if (value === undefined) text = 'undefined';
  else if (typeof value === 'function') text = `[function ${value.name || 'anonymous'}]`;
  else if (typeof value === 'symbol' || typeof value === 'bigint') text = String(value);
  else if (typeof value === 'string') text = JSON.stringify(value);
  else {
    try {
      text = JSON.stringify(value) ?? Object.prototype.toString.call(value);
    } catch {
      text = Object.prototype.toString.call(value);
    }
  }
  return text.length > max ? `${text.slice(0, max)}…` : text;
}

function isSerializedError(value: unknown): value is SerializedError {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Record<string, unknown>;
  return typeof v.code === 'string' && typeof v.name === 'string' && typeof v.message === 'string';
}

function jsonDetails(details: unknown): Record<string, unknown> | undefined {
  if (typeof details !== 'object' || details === null) return undefined;
  try {
    return JSON.parse(JSON.stringify(details)) as Record<string, unknown>;
  } catch {
    return { unserializable: quote(details) };
  }
}

/**
 * Turns anything a step threw or returned as an error reason into a {@link SerializedError}.
 * Errors keep their `code` when they have a string one; strings become messages;
 * other values are quoted under the code `NON_ERROR_THROWN`.
 */
export function serializeError(reason: unknown): SerializedError {
  if (reason instanceof Error) {
    const withCode = reason as Error & { code?: unknown; details?: unknown };
    const code = typeof withCode.code === 'string' ? withCode.code : 'ERROR';
    const details = jsonDetails(withCode.details);
    return details === undefined
      ? { code, name: reason.name, message: reason.message }
      : { code, name: reason.name, message: reason.message, details };
  }
  if (isSerializedError(reason)) {
    const details = jsonDetails(reason.details);
    return details === undefined
      ? { code: reason.code, name: reason.name, message: reason.message }
      : { code: reason.code, name: reason.name, message: reason.message, details };
  }
  if (typeof reason === 'string') return { code: 'ERROR', name: 'Error', message: reason };
  if (typeof reason === 'object' && reason !== null) {
    const r = reason as Record<string, unknown>;
    if (typeof r.code === 'string' || typeof r.message === 'string') {
      const code = typeof r.code === 'string' ? r.code : 'ERROR';
      const message = typeof r.message === 'string' ? r.message : code;
      const details = jsonDetails(r.details);
      return details === undefined
        ? { code, name: typeof r.name === 'string' ? r.name : 'Error', message }
        : { code, name: typeof r.name === 'string' ? r.name : 'Error', message, details };
    }
  }
  return {
    code: 'NON_ERROR_THROWN',
    name: 'NonErrorThrown',
    message: `a value that is not an Error was thrown or returned as a reason: ${quote(reason)}`,
    details: { value: quote(reason) },
  };
}
