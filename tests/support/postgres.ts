import { freePort } from './free-port';
import { execFileSync, spawnSync } from 'node:child_process';
import { accessSync, chownSync, constants, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import * as path from 'node:path';
import { Client } from 'pg';

/** The environment variable that carries the test cluster's URL (an admin URL, database `postgres`). */
export const PG_URL_ENV = 'SAGAFLOW_TEST_PG_URL';

/** Where the PostgreSQL 15 server programs are (override with SAGAFLOW_PG_BIN). */
export function pgBinDir(): string {
  return process.env.SAGAFLOW_PG_BIN ?? '/usr/lib/postgresql/15/bin';
}

/** A throwaway PostgreSQL cluster on loopback. */
export interface PgCluster {
  /** Admin URL (superuser `postgres`, database `postgres`, trust auth). */
  readonly url: string;
  readonly port: number;
  readonly dir: string;
  /** Stops the server (immediate shutdown) and removes its files. */
  stop(): void;
}


/**
 * Starts a throwaway cluster: initdb into a fresh temporary directory, trust auth, listening on 127.0.0.1 only
 * on a free port. As root, the server programs run as the `postgres` user (initdb refuses root).
 * `durable: false` (the default, for tests) turns fsync off; benchmarks pass `durable: true`.
 * @throws Error with what to install when the PostgreSQL server programs are missing.
 */
export async function startCluster(options: { durable?: boolean } = {}): Promise<PgCluster> {
  const bin = pgBinDir();
  const initdb = path.join(bin, 'initdb');
  const pgCtl = path.join(bin, 'pg_ctl');
  for (const program of [initdb, pgCtl, path.join(bin, 'postgres')]) {
    try {
      accessSync(program, constants.X_OK);
    } catch {
      throw new Error(
        `PostgreSQL server programs are missing: ${program} is not there. The PostgreSQL tests need PostgreSQL 15 ` +
          `(Debian: apt-get install -y postgresql-15), or SAGAFLOW_PG_BIN pointing at another bin directory, or ${PG_URL_ENV} ` +
          'set to the URL of a server you provide.',
      );
    }
  }
  const asRoot = process.getuid?.() === 0;
  const dir = mkdtempSync(path.join(tmpdir(), 'sagaflow-pg-'));
  const data = path.join(dir, 'data');
  if (asRoot) {
    let uid: number;
    let gid: number;
    try {
      uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
      gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
    } catch {
      rmSync(dir, { recursive: true, force: true });
      throw new Error('the tests run as root, and initdb refuses root, but there is no `postgres` user to run PostgreSQL as (the postgresql-15 package creates it)');
    }
    chownSync(dir, uid, gid);
  }
  const run = (program: string, args: string[]): void => {
    const [file, argv] = asRoot ? ['runuser', ['-u', 'postgres', '--', program, ...args]] : [program, args];
    const result = spawnSync(file, argv, { encoding: 'utf8', cwd: dir });
    if (result.status !== 0) {
      let log = '';
      try {
        log = readFileSync(path.join(dir, 'server.log'), 'utf8').slice(-2000);
      } catch {
        // no log yet
      }
      throw new Error(`${path.basename(program)} ${args.join(' ')} failed (${result.status ?? result.signal}): ${result.stderr}${result.stdout}${log}`);
    }
  };
  const port = await freePort();
  const superuser = asRoot ? 'postgres' : userInfo().username;
  run(initdb, ['-D', data, '-A', 'trust', '-U', superuser, '-E', 'UTF8', '--locale=C', '-N', '--no-instructions']);
  const settings = [
    '-c listen_addresses=127.0.0.1',
    `-c port=${port}`,
    `-c unix_socket_directories=${dir}`,
    '-c max_connections=300',
    ...(options.durable === true ? [] : ['-c fsync=off', '-c synchronous_commit=off', '-c full_page_writes=off']),
  ];
  run(pgCtl, ['-D', data, '-l', path.join(dir, 'server.log'), '-w', '-t', '60', '-s', '-o', settings.join(' '), 'start']);
  let stopped = false;
  return {
    url: `postgres://${superuser}@127.0.0.1:${port}/postgres`,
    port,
    dir,
    stop() {
      if (stopped) return;
      stopped = true;
      try {
        run(pgCtl, ['-D', data, '-m', 'immediate', '-s', '-w', 'stop']);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}

/** The test cluster's admin URL, set by the jest global setup. */
export function testPgUrl(): string {
  const url = process.env[PG_URL_ENV];
  if (url === undefined || url.length === 0) {
    throw new Error(`${PG_URL_ENV} is not set: the jest global setup (tests/support/pg-global-setup.ts) starts PostgreSQL and sets it`);
  }
  return url;
}

/** `url` with another database name. */
export function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}

let counter = 0;

/** Creates database `name` on the server of `url`. */
export async function createDatabase(url: string, name: string): Promise<void> {
  const client = new Client({ connectionString: withDatabase(url, 'postgres') });
  await client.connect();
  try {
    await client.query(`CREATE DATABASE "${name.replace(/"/g, '""')}"`);
  } finally {
    await client.end();
  }
}

/** Creates a fresh database in the test cluster (one per test file, so files run in parallel) and returns its URL. */
export async function createTestDatabase(prefix: string): Promise<string> {
  const admin = testPgUrl();
  counter += 1;
  const name = `${prefix.toLowerCase().replace(/[^a-z0-9_]/g, '_')}_${process.pid}_${counter}_${Math.random().toString(36).slice(2, 8)}`;
  await createDatabase(admin, name);
  return withDatabase(admin, name);
}

/** Drops a database made by {@link createTestDatabase} (closing whatever still connects to it). */
export async function dropTestDatabase(url: string): Promise<void> {
  const name = new URL(url).pathname.slice(1);
  const client = new Client({ connectionString: testPgUrl() });
  await client.connect();
  try {
    await client.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
  } finally {
    await client.end();
  }
}
