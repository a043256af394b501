/**
 * The identity of an SQLite database file (device and inode), taken when the store opens it: a file deleted or
 * replaced under a running store would take every later write with it, so each commit checks it first.
 */
import { statSync } from 'node:fs';
import { SagaflowError } from '../../errors/sagaflow-error';

/** The store's SQLite file was deleted or replaced while the store had it open: writes since cannot be read back. */
export class StoreFileChangedError extends SagaflowError {
  constructor(file: string, reason: 'deleted' | 'replaced') {
    super(
      'STORE_FILE_CHANGED',
      `the SQLite database ${file} was ${reason} while the store had it open, so a write now would be lost; the write was not acknowledged. Restore the file, or restart the process to open the file as it is now`,
      { file, reason },
    );
  }
}

export class DatabaseFile {
  private identity: { readonly dev: number; readonly ino: number } | null = null;

  constructor(readonly path: string) {}

  /** Remembers the file as it is now (after the store opened it). */
  remember(): void {
    const stat = statSync(this.path);
    this.identity = { dev: stat.dev, ino: stat.ino };
  }

  /**
   * Checks that the path still names the file the store opened.
   * @throws StoreFileChangedError
   */
  check(): void {
    if (this.identity === null) return;
    let stat: { dev: number; ino: number };
    try {
      stat = statSync(this.path);
    } catch {
      throw new StoreFileChangedError(this.path, 'deleted');
    }
    if (stat.ino !== this.identity.ino || stat.dev !== this.identity.dev) throw new StoreFileChangedError(this.path, 'replaced');
  }
}
