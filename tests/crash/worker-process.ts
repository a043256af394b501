import { spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync, closeSync, openSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import type { ParentMessage, WorkerConfig, WorkerMessage } from './protocol';

const REPO = path.resolve(__dirname, '..', '..');
const REGISTER = path.join(__dirname, 'register.js');
const WORKER = path.join(__dirname, 'worker.ts');

/** How a worker process ended. */
export interface WorkerExit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  /** When the parent saw it end (ms since epoch): the process was dead by then. */
  readonly at: number;
}

const alive = new Set<ChildProcess>();

/** SIGKILLs every worker process still running (for `afterAll`, and on the test process's exit). */
export function killAllWorkers(): void {
  for (const child of alive) child.kill('SIGKILL');
}
process.once('exit', killAllWorkers);

/**
 * A worker process (tests/crash/worker.ts) started through register.js, with its stdout and stderr appended to
 * `logFile`. It knows its parent through an IPC channel: it exits by itself when the parent goes away.
 */
export class WorkerProcess {
  /** Resolves true when the worker has its store open (it then waits for {@link go}), false when it exited before. */
  readonly ready: Promise<boolean>;
  /** Resolves when the process has ended. */
  readonly exited: Promise<WorkerExit>;
  private doneSeen = false;

  private constructor(
    readonly config: WorkerConfig,
    private readonly child: ChildProcess,
  ) {
    alive.add(child);
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        alive.delete(child);
        resolve({ code, signal, at: Date.now() });
      });
      // A process that could not be started emits no exit.
      child.once('error', () => {
        if (child.pid !== undefined) return;
        alive.delete(child);
        resolve({ code: null, signal: null, at: Date.now() });
      });
    });
    this.ready = new Promise((resolve) => {
      child.on('message', (message: WorkerMessage) => {
        if (message.type === 'ready') {
          resolve(true);
        } else if (message.type === 'done') {
          this.doneSeen = true;
        }
      });
      void this.exited.then(() => resolve(false));
    });
  }

  static spawn(config: WorkerConfig, logFile: string): WorkerProcess {
    const out = openSync(logFile, 'a');
    try {
      const child = spawn(process.execPath, ['--enable-source-maps', '-r', REGISTER, WORKER, JSON.stringify(config)], {
        cwd: REPO,
        stdio: ['ignore', out, out, 'ipc'],
        env: { ...process.env, NODE_OPTIONS: '' },
      });
      return new WorkerProcess(config, child);
    } finally {
      closeSync(out);
    }
  }

  get workerId(): string {
    return this.config.workerId;
  }

  /** True once the worker said every saga of the run is final. */
  get done(): boolean {
    return this.doneSeen;
  }

  /** Lets the worker (ready, waiting for it) recover and work. */
  go(): void {
    const message: ParentMessage = { type: 'go' };
    if (this.child.connected) this.child.send(message, () => undefined);
  }

  /** SIGKILLs the process (when still running) and resolves once it is dead. */
  kill(): Promise<WorkerExit> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
    return this.exited;
  }

  /** Resolves how it ended, or null when it is still running after `ms`. */
  async exitWithin(ms: number): Promise<WorkerExit | null> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<null>((resolve) => (timer = setTimeout(() => resolve(null), ms)));
    try {
      return await Promise.race([this.exited, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }
}

/** Adds a line from the test (the parent) to the workers' log, e.g. when it kills one. */
export function note(logFile: string, line: string): void {
  appendFileSync(logFile, `${new Date().toISOString()} test: ${line}\n`);
}

/** The last `lines` lines of a log file (or why it cannot be read). */
export function logTail(logFile: string, lines = 150): string {
  try {
    const all = readFileSync(logFile, 'utf8').trimEnd().split('\n');
    return `${all.length > lines ? `… (${all.length - lines} earlier lines in ${logFile})\n` : ''}${all.slice(-lines).join('\n')}`;
  } catch (e) {
    return `(cannot read ${logFile}: ${String(e)})`;
  }
}

/**
 * Runs `body`; when it throws, adds the tail of the workers' log to the error message, so a failure shows what
 * the processes did.
 */
export async function withLogOnFailure<T>(logFile: string, body: () => Promise<T>): Promise<T> {
  try {
    return await body();
  } catch (e) {
    if (e instanceof Error) {
      e.message = `${e.message}\n\n── worker log (${logFile}) ──\n${logTail(logFile)}`;
      throw e;
    }
    throw new Error(`${String(e)}\n\n── worker log (${logFile}) ──\n${logTail(logFile)}`);
  }
}
