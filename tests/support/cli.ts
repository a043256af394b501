import { tmpdir } from 'node:os';
import { runCli, type CliIo } from '../../src/cli/run-cli';

/** What one in-process run of the `sagaflow` command printed, and its exit code. */
export interface Ran {
  readonly code: number;
  readonly out: string;
  readonly err: string;
}

/** Runs the `sagaflow` command in-process; `now` is what --since and --older-than count back from. */
export async function sagaflow(args: readonly string[], options: { cwd?: string; env?: Record<string, string>; now?: number } = {}): Promise<Ran> {
  const out: string[] = [];
  const err: string[] = [];
  const io: CliIo = {
    out: (t) => out.push(t),
    err: (t) => err.push(t),
    env: options.env ?? {},
    cwd: options.cwd ?? tmpdir(),
    ...(options.now === undefined ? {} : { now: () => options.now as number }),
  };
  const code = await runCli(args, io);
  return { code, out: out.join('\n'), err: err.join('\n') };
}
