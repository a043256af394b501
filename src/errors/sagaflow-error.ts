/**
 * The base of every error sagaflow throws. Assert on {@link SagaflowError.code}, which is stable;
 * messages may be reworded.
 */
export class SagaflowError extends Error {
  /** A stable, machine-readable code. */
  readonly code: string;
  /** Structured data about where it happened (instance id, step name, …). */
  readonly details: Readonly<Record<string, unknown>>;

  constructor(code: string, message: string, details: Record<string, unknown> = {}) {
    super(message);
    this.name = new.target.name;
    this.code = code;
    this.details = Object.freeze({ ...details });
  }
}
