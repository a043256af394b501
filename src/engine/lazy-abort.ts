/**
 * An AbortController made only when someone reads its signal (most steps never do, and creating one per
 * handler call is a measurable cost). Aborting before that is remembered and the signal starts aborted.
 */
export class LazyAbort {
  private controller: AbortController | null = null;
  private abortReason: unknown = undefined;
  private aborted = false;

  /** The call's signal. */
  get signal(): AbortSignal {
    if (this.controller === null) {
      this.controller = new AbortController();
      if (this.aborted) this.controller.abort(this.abortReason);
    }
    return this.controller.signal;
  }

  /** True once {@link abort} was called. */
  get isAborted(): boolean {
    return this.aborted;
  }

  /** Why it was aborted (undefined until then). */
  get reason(): unknown {
    return this.abortReason;
  }

  /** Fires the signal (once; later calls are ignored). */
  abort(reason: unknown): void {
    if (this.aborted) return;
    this.aborted = true;
    this.abortReason = reason;
    this.controller?.abort(reason);
  }
}
