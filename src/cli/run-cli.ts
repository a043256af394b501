/**
 * The `sagaflow` command: operating sagas against the database an application uses, without its code. Read commands
 * (`list`, `show`, `history`, `inspect`) open the database read-only and never resume anything; `purge` deletes
 * finished instances. {@link runCli} runs a command in-process (tests call it); bin.ts wires it to the process.
 */
import * as path from 'node:path';
import { Command, CommanderError, Option } from 'commander';
import { InstanceStatus } from '../core/flow-fields';
import { UnknownInstanceError } from '../errors/runtime-errors';
import { OperatingError } from '../errors/operating-errors';
import { SagaflowError } from '../errors/sagaflow-error';
import { parseDuration } from '../time/duration';
import type { InstanceFilter } from '../store/instance-store';
import { PURGEABLE_STATUSES } from '../store/purge-options';
import { requestFailure, type OperatorRequestKind } from '../store/operator-request';
import type { TypeormStore } from '../store/typeorm/typeorm-store';
import { databaseName, DEFAULT_DB, openDatabase, type DatabaseLocation } from '../operating/open-database';
import { historyOutcome, historySubject, instanceFacts, isoTime, shortDuration, timeline } from '../operating/instance-view';
import { describeOutline } from '../workflow/describe';
import { workflowDefinition } from '../workflow/workflow-decorator';
import { startInspector } from '../inspector/inspector-server';
import { ExitCode, exitCodeOf } from './exit-codes';
import { table } from './table';
import { timeOrderedId } from '../core/time-ordered-id';

/** Where a command writes and what it reads from its process. */
export interface CliIo {
  /** Standard output (text without a trailing newline is completed with one). */
  out(text: string): void;
  /** Standard error. */
  err(text: string): void;
  /** The environment (`SAGAFLOW_DB_URL`). */
  readonly env: Readonly<Record<string, string | undefined>>;
  /** The working directory (the default database is `.sagaflow/sagaflow.db` in it). */
  readonly cwd: string;
  /** `inspect` serves until this aborts. @default until the process ends */
  readonly signal?: AbortSignal;
  /** `inspect` calls it with the inspector's URL once it listens. */
  readonly listening?: (url: string) => void;
  /** The time (ms since epoch) `--since` and `--older-than` count back from. @default Date.now() */
  readonly now?: () => number;
}

const STATUSES: readonly string[] = Object.values(InstanceStatus);
/** The most ids a dry-run purge lists. */
const DRY_RUN_LIMIT = 10_000;

interface DbFlags {
  readonly db?: string;
  readonly url?: string;
  readonly schema?: string;
}

function location(flags: DbFlags): DatabaseLocation {
  return { ...(flags.db === undefined ? {} : { db: flags.db }), ...(flags.url === undefined ? {} : { url: flags.url }), ...(flags.schema === undefined ? {} : { schema: flags.schema }) };
}

function badArgument(message: string): never {
  throw new OperatingError('BAD_ARGUMENT', message);
}

/** `--status a,b --status c` as checked statuses. */
function statusList(values: readonly string[] | undefined, allowed: readonly string[], flag = '--status'): InstanceStatus[] | undefined {
  if (values === undefined) return undefined;
  const list = values.flatMap((v) => v.split(',')).map((v) => v.trim()).filter((v) => v !== '');
  for (const s of list) if (!allowed.includes(s)) badArgument(`${flag} ${JSON.stringify(s)} is not one of ${allowed.join(', ')}`);
  return list as InstanceStatus[];
}

/** A point in time: a duration back from now (`2h`, `7d`) or a date (`2026-01-31`, ISO). */
function timeArgument(value: string, flag: string, now: number): number {
  const ago = parseDuration(value);
  if (ago !== undefined) return now - ago;
  const at = Date.parse(value);
  if (Number.isNaN(at)) badArgument(`${flag} must be a duration back from now (30m, 2h, 7d) or a date (2026-01-31T12:00:00Z), got ${JSON.stringify(value)}`);
  return at;
}

function wholeNumber(value: string, flag: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(n) || n < 1) badArgument(`${flag} must be a whole number of at least 1, got ${JSON.stringify(value)}`);
  return n;
}

function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

/**
 * Runs the `sagaflow` command line `args` (without `node` and the script) and resolves its exit code: 0 ok,
 * 2 bad argument, 3 unknown instance, 4 no (sagaflow) database or unreachable, 5 schema older or newer than this
 * sagaflow, 6 bad module (`describe`), 7 an operator request refused, 1 anything else. Errors are written to `io.err`.
 * @example
 * process.exitCode = await runCli(process.argv.slice(2), { out: (t) => process.stdout.write(`${t}\n`), err: …, env: process.env, cwd: process.cwd() });
 */
export async function runCli(args: readonly string[], io: CliIo): Promise<number> {
  const now = io.now ?? Date.now;
  let code: number = ExitCode.Ok;
  const program = new Command('sagaflow')
    .description('Operate sagaflow instances in the database your application uses, without its code.')
    .exitOverride()
    .configureOutput({ writeOut: (t) => io.out(t.replace(/\n$/, '')), writeErr: (t) => io.err(t.replace(/\n$/, '')) })
    .showHelpAfterError(false);

  const withDb = (command: Command): Command =>
    command
      .option('--db <file>', `the SQLite file (default ${DEFAULT_DB})`)
      .option('--url <url>', 'a PostgreSQL URL (default: $SAGAFLOW_DB_URL)')
      .option('--schema <name>', 'the PostgreSQL schema of the sagaflow tables');

  /** Runs `body` on the store opened at the command's database, and closes it. */
  const withStore = async (flags: DbFlags, mode: 'read' | 'write', body: (store: TypeormStore) => Promise<void>): Promise<void> => {
    const store = await openDatabase(location(flags), mode, io.env, io.cwd);
    try {
      await body(store);
    } finally {
      await store.close();
    }
  };

  withDb(program.command('list').description('list instances, newest update first'))
    .option('--workflow <name>', 'only this workflow')
    .option('--status <status>', `only these statuses (${STATUSES.join(', ')}); repeat or separate with commas`, collect)
    .option('--version <n>', 'only instances on this version of their workflow')
    .option('--since <when>', 'only instances updated since then: a duration back from now (2h, 7d) or a date')
    .option('--limit <n>', 'at most this many', '50')
    .option('--json', 'print JSON (one array) for scripts')
    .action(async (flags: DbFlags & { workflow?: string; status?: string[]; version?: string; since?: string; limit: string; json?: boolean }) => {
      const statuses = statusList(flags.status, STATUSES);
      const filter: InstanceFilter = {
        limit: wholeNumber(flags.limit, '--limit'),
        ...(flags.workflow === undefined ? {} : { workflow: flags.workflow }),
        ...(statuses === undefined ? {} : { status: statuses }),
        ...(flags.version === undefined ? {} : { version: wholeNumber(flags.version, '--version') }),
        ...(flags.since === undefined ? {} : { since: timeArgument(flags.since, '--since', now()) }),
      };
      await withStore(flags, 'read', async (store) => {
        const rows = await store.list(filter);
        if (flags.json === true) {
          io.out(JSON.stringify(rows, null, 2));
          return;
        }
        if (rows.length === 0) {
          io.out('no instances match');
          return;
        }
        io.out(table(['ID', 'WORKFLOW', 'VERSION', 'STATUS', 'UPDATED', 'CREATED'], rows.map((r) => [r.id, r.workflow, String(r.version), r.status, isoTime(r.updatedAt), isoTime(r.createdAt)])));
        io.out(`${rows.length} instance${rows.length === 1 ? '' : 's'}${rows.length === filter.limit ? ` (the newest ${filter.limit}; --limit shows more)` : ''}`);
      });
    });

  withDb(program.command('show').description('show an instance: state, flow fields, wait, deadline, compensation stack, failures').argument('<id>', 'the instance id'))
    .option('--json', 'print the stored record as JSON')
    .action(async (id: string, flags: DbFlags & { json?: boolean }) => {
      await withStore(flags, 'read', async (store) => {
        const record = await store.load(id);
        if (record === undefined) throw new UnknownInstanceError(id);
        if (flags.json === true) {
          io.out(JSON.stringify(record, null, 2));
          return;
        }
        const facts = instanceFacts(record);
        const width = Math.max(...facts.map(([label]) => label.length));
        for (const [label, value] of facts) io.out(`${label.padEnd(width)}  ${value}`);
        io.out(`state\n${JSON.stringify(record.state, null, 2)}`);
      });
    });

  withDb(program.command('history').description('the timeline of an instance: every transition, retry and operator action').argument('<id>', 'the instance id'))
    .option('--json', 'print the history lines as JSON')
    .action(async (id: string, flags: DbFlags & { json?: boolean }) => {
      await withStore(flags, 'read', async (store) => {
        if ((await store.load(id)) === undefined) throw new UnknownInstanceError(id);
        const lines = timeline(await store.history(id));
        if (flags.json === true) {
          io.out(JSON.stringify(lines.map((l) => l.entry), null, 2));
          return;
        }
        io.out(
          table(
            ['AT', 'AFTER', 'KIND', 'WHERE', 'OUTCOME', 'STATUS'],
            lines.map((l) => [isoTime(l.entry.at), `+${shortDuration(l.sincePrevious)}`, l.entry.kind, historySubject(l.entry), historyOutcome(l.entry), l.entry.status]),
          ),
        );
      });
    });

  withDb(program.command('purge').description('delete finished instances (with their history and inbox) older than a given age'))
    .requiredOption('--older-than <age>', 'last updated longer ago than this: 30d, 12h, …')
    .option('--status <status>', `statuses to purge (${PURGEABLE_STATUSES.join(', ')}); default completed and rolled_back`, collect)
    .option('--dry-run', `only list what would go (at most ${DRY_RUN_LIMIT.toLocaleString('en-US')})`)
    .option('--batch-size <n>', 'instances deleted per transaction', '500')
    .action(async (flags: DbFlags & { olderThan: string; status?: string[]; dryRun?: boolean; batchSize: string }) => {
      const age = parseDuration(flags.olderThan);
      if (age === undefined) badArgument(`--older-than must be a duration such as 30d or 12h, got ${JSON.stringify(flags.olderThan)}`);
      const statuses = statusList(flags.status, STATUSES) ?? ['completed', 'rolled_back'];
      const batch = wholeNumber(flags.batchSize, '--batch-size');
      const before = now() - age;
      await withStore(flags, flags.dryRun === true ? 'read' : 'write', async (store) => {
        if (flags.dryRun === true) {
          const ids = await store.purge({ before, statuses, limit: DRY_RUN_LIMIT, dryRun: true });
          for (const id of ids) io.out(id);
          io.out(`${ids.length.toLocaleString('en-US')}${ids.length === DRY_RUN_LIMIT ? ' or more' : ''} instance${ids.length === 1 ? '' : 's'} (${statuses.join(', ')}, updated before ${isoTime(before)}) would be purged; nothing was deleted (--dry-run)`);
          return;
        }
        let deleted = 0;
        for (;;) {
          const ids = await store.purge({ before, statuses, limit: batch });
          deleted += ids.length;
          if (ids.length < batch) break;
        }
        io.out(`purged ${deleted.toLocaleString('en-US')} instance${deleted === 1 ? '' : 's'} (${statuses.join(', ')}, updated before ${isoTime(before)}) with their history and inbox`);
      });
    });

  withDb(program.command('inspect').description('serve the web inspector on 127.0.0.1 (nothing leaves the machine)'))
    .addOption(new Option('--port <port>', 'the port (0: any free one)').default('0'))
    .option('--read-only', 'open the database read-only: no operator buttons')
    .action(async (flags: DbFlags & { port: string; readOnly?: boolean }) => {
      const port = Number(flags.port);
      if (!/^\d+$/.test(flags.port) || port > 65535) badArgument(`--port must be a port number (0 for any free one), got ${JSON.stringify(flags.port)}`);
      // Opened for writing (never migrated) unless --read-only: its buttons write operator requests.
      const readOnly = flags.readOnly === true;
      await withStore(flags, readOnly ? 'read' : 'write', async (store) => {
        const inspector = await startInspector({ store, port, database: databaseName(location(flags), io.env, io.cwd), requests: !readOnly });
        io.out(`sagaflow inspector: ${inspector.url} (database ${databaseName(location(flags), io.env, io.cwd)}); Ctrl-C stops it`);
        io.listening?.(inspector.url);
        await new Promise<void>((resolve) => {
          if (io.signal === undefined) return; // serves until the process ends
          if (io.signal.aborted) resolve();
          else io.signal.addEventListener('abort', () => resolve(), { once: true });
        });
        await inspector.close();
      });
    });

  const REQUESTS: readonly { kind: OperatorRequestKind; what: string }[] = [
    { kind: 'retry-compensation', what: 'call the failed compensations of a compensation_failed instance again' },
    { kind: 'skip-compensation', what: 'give up on the failed compensations of a compensation_failed instance and go on with the earlier ones' },
    { kind: 'cancel', what: 'roll an instance back (--reason is required)' },
    { kind: 'resume', what: 'let a blocked instance go on once its definition is registered again' },
  ];
  for (const { kind, what } of REQUESTS) {
    const command = withDb(program.command(kind).description(`${what}: written as a request that the runtime running the instance applies`).argument('<id>', 'the instance id'))
      .option('--by <name>', 'who asks (recorded in the history)', `${io.env.USER ?? 'operator'} (sagaflow CLI)`)
      .option('--wait <seconds>', 'wait until the runtime applied it (exit 7 if it refused), at most this long', '0');
    if (kind === 'cancel') command.requiredOption('--reason <text>', 'why (recorded in the history)');
    else command.option('--reason <text>', 'why (recorded in the history)');
    command.action(async (id: string, flags: DbFlags & { by: string; reason?: string; wait: string }) => {
      const waitMs = Number(flags.wait) * 1000;
      if (!/^\d+(\.\d+)?$/.test(flags.wait)) badArgument(`--wait must be a number of seconds, got ${JSON.stringify(flags.wait)}`);
      await withStore(flags, 'write', async (store) => {
        const request = await store.request({ instanceId: id, kind, by: flags.by, ...(flags.reason === undefined ? {} : { reason: flags.reason }) }, timeOrderedId(), now());
        io.out(`requested ${kind} of ${id} (request ${request.id}); the runtime that runs the instance applies it and records it in its history`);
        if (waitMs <= 0) return;
        const until = Date.now() + waitMs;
        for (;;) {
          const current = await store.requestById(request.id);
          if (current?.state === 'done') {
            io.out(`applied at ${isoTime(current.doneAt ?? now())}`);
            return;
          }
          if (current?.state === 'failed') throw requestFailure(current, 'the runtime could not apply it: ');
          if (Date.now() >= until) {
            throw new OperatingError('REQUEST_PENDING', `request ${request.id} is still pending after ${flags.wait} s: no runtime that runs ${id} has picked it up yet (is the application running?); it stays, and is applied when one does`, { requestId: request.id });
          }
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
      });
    });
  }

  program
    .command('describe')
    .description("print the outline of the workflows a module exports (it loads the module: the workflow's code)")
    .argument('<module>', 'a JavaScript module (path) exporting @Workflow classes or defineWorkflow definitions')
    .option('--workflow <name>', 'only this workflow')
    .action((module: string, flags: { workflow?: string }) => {
      const file = path.resolve(io.cwd, module);
      let exported: Record<string, unknown>;
      try {
        // A CommonJS require (an ES module too, on Node 20.19+), so that it runs the same compiled and under test runners.
        // eslint-disable-next-line @typescript-eslint/no-require-imports
        exported = require(file) as Record<string, unknown>;
      } catch (error) {
        throw new OperatingError('BAD_MODULE', `describe: ${file} could not be loaded: ${error instanceof Error ? error.message : String(error)}`, { module: file });
      }
      const outlines = Object.values(exported).flatMap((value) => {
        try {
          return [workflowDefinition(value as never).outline];
        } catch {
          return [];
        }
      });
      const unique = [...new Map(outlines.map((o) => [`${o.name}@${o.version}`, o])).values()].filter((o) => flags.workflow === undefined || o.name === flags.workflow);
      if (unique.length === 0) throw new OperatingError('BAD_MODULE', `describe: ${file} exports no workflow${flags.workflow === undefined ? '' : ` named ${JSON.stringify(flags.workflow)}`}`, { module: file });
      io.out(unique.map(describeOutline).join('\n\n'));
    });

  try {
    await program.parseAsync([...args], { from: 'user' });
  } catch (error) {
    if (error instanceof CommanderError) {
      code = error.exitCode === 0 ? ExitCode.Ok : ExitCode.BadArgument;
    } else {
      code = exitCodeOf(error);
      const message = error instanceof Error ? error.message : String(error);
      io.err(`sagaflow: ${message}${error instanceof SagaflowError ? ` (${error.code})` : ''}`);
    }
  }
  return code;
}
