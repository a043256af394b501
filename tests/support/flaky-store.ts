import type { InstanceStore } from '../../src';

/** How a failing save fails: before it reaches the store (nothing written), or after it committed (the answer lost). */
export type SaveFailure = 'before' | 'after';

/**
 * An InstanceStore wrapper that fails the next `n` calls of `save` (or `load`) the way a full disk or a dropped
 * connection does, then behaves again. Everything else goes straight to the wrapped store.
 */
export class FlakyStore {
  readonly store: InstanceStore;
  private saves: { n: number; how: SaveFailure; thenLoads: number } = { n: 0, how: 'before', thenLoads: 0 };
  private loads = 0;
  /** Save failures and load failures thrown so far. */
  readonly thrown = { saves: 0, loads: 0 };

  constructor(private readonly inner: InstanceStore) {
    const save = (...args: Parameters<InstanceStore['save']>): Promise<number> => this.save(...args);
    const load = (...args: Parameters<InstanceStore['load']>): ReturnType<InstanceStore['load']> => this.load(...args);
    this.store = new Proxy(inner, {
      get(target, prop, receiver) {
        if (prop === 'save') return save;
        if (prop === 'load') return load;
        const value: unknown = Reflect.get(target, prop, receiver);
        return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
      },
    });
  }

  /** The next `n` saves fail; after the last of them, the next `thenLoads` loads fail too (the store stays down). */
  failSaves(n: number, how: SaveFailure = 'before', thenLoads = 0): void {
    this.saves = { n, how, thenLoads };
  }

  /** The next `n` loads fail. */
  failLoads(n: number): void {
    this.loads = n;
  }

  private async save(...args: Parameters<InstanceStore['save']>): Promise<number> {
    if (this.saves.n > 0) {
      this.saves.n -= 1;
      this.thrown.saves += 1;
      if (this.saves.how === 'after') await this.inner.save(...args);
      if (this.saves.n === 0) this.loads = this.saves.thenLoads;
      throw Object.assign(new Error('SQLITE_FULL: database or disk is full'), { code: 'SQLITE_FULL' });
    }
    return this.inner.save(...args);
  }

  private async load(...args: Parameters<InstanceStore['load']>): ReturnType<InstanceStore['load']> {
    if (this.loads > 0) {
      this.loads -= 1;
      this.thrown.loads += 1;
      throw Object.assign(new Error('connection terminated unexpectedly'), { code: 'ECONNRESET' });
    }
    return this.inner.load(...args);
  }
}
