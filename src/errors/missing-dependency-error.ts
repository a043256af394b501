import { SagaflowError } from './sagaflow-error';

/**
 * A package sagaflow needs for what was asked is not installed, or is installed but does not load (a native
 * addon that was never built). The message names the package and the command that fixes it.
 *
 * @example
 * try {
 *   new SagaRuntime(); // the embedded SQLite store needs better-sqlite3
 * } catch (e) {
 *   if (e instanceof MissingDependencyError) console.error(e.command); // 'npm install better-sqlite3'
 * }
 */
export class MissingDependencyError extends SagaflowError {
  /** The npm package that is missing or does not load. */
  readonly packageName: string;
  /** The command that fixes it, e.g. `npm install better-sqlite3` or `npm rebuild better-sqlite3`. */
  readonly command: string;

  constructor(packageName: string, command: string, message: string, cause?: unknown) {
    super('MISSING_DEPENDENCY', message, { package: packageName, command });
    this.packageName = packageName;
    this.command = command;
    if (cause !== undefined) Object.defineProperty(this, 'cause', { value: cause, configurable: true, writable: true });
  }
}
