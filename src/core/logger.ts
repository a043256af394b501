/**
 * The logger shape sagaflow writes to: pino's method shape (an object first, then a message),
 * so a pino logger works as it is.
 */
export interface Logger {
  /** Detail for tracing a run (the runtime writes none by default). */
  debug(obj: Record<string, unknown>, msg?: string): void;
  /** Normal progress. */
  info(obj: Record<string, unknown>, msg?: string): void;
  /** A problem sagaflow survived (a throwing observer, a dropped event, a retried store write). */
  warn(obj: Record<string, unknown>, msg?: string): void;
  /** A failure that needs attention (a compensation that failed for good). */
  error(obj: Record<string, unknown>, msg?: string): void;
}

/** Writes warnings and errors to the console; debug and info are dropped. The runtime's default. */
export const consoleLogger: Logger = {
  debug: () => undefined,
  info: () => undefined,
  warn: (obj, msg) => console.warn(`[sagaflow] ${msg ?? ''}`, obj),
  error: (obj, msg) => console.error(`[sagaflow] ${msg ?? ''}`, obj),
};

/** A logger that drops everything. */
export const silentLogger: Logger = {
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
};
