/**
 * Restate (`@restatedev/restate-server`, the server binary from its npm package, and `@restatedev/restate-sdk`)
 * running the happy 5-step saga of ../workload: a Restate service handler whose steps are durable `ctx.run` calls
 * of the workload's step functions (each step's result is journaled by the server before the next runs).
 *
 * The server is started for the run in a temporary directory, every port on 127.0.0.1 (ingress, admin, node
 * to node; TCP only, no unix sockets), its default durability (RocksDB and its log with WAL fsync on), and
 * killed afterwards (also on failure or exit). The service endpoint is an HTTP/2 server in this process on
 * 127.0.0.1, registered with the admin API. Each saga is one HTTP call to the ingress
 * (`POST /BenchOrder/run`, the state as body) with its own `idempotency-key`, whose response (the final state) is
 * checked.
 */
import { freePort } from '../../../tests/support/free-port';
import './with-resolvers';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, openSync, closeSync, readFileSync, rmSync } from 'node:fs';
import * as http2 from 'node:http2';
import { arch, platform, tmpdir } from 'node:os';
import * as path from 'node:path';
import * as restate from '@restatedev/restate-sdk';
import { assertOutcome, EXPECTED_HAPPY, HAPPY_STEPS, initialState, type OrderState } from '../workload';
import { packageVersion } from './steady';

export const RESTATE_NAME = 'Restate';
const SERVICE = 'BenchOrder';

/** The versions in use: server (npm package) and SDK. */
export function restateVersions(): string {
  return `restate-server ${packageVersion('@restatedev/restate-server')}, restate-sdk ${packageVersion('@restatedev/restate-sdk')}`;
}

// A service handler rather than a Restate `workflow`: the ingress refuses an idempotency key on workflow handlers
// ("the handler invocation will already be idempotent by the workflow key itself"), and the bench gives every saga
// an idempotency key, as a client that needs exactly-once sagas would; Restate then keeps the result for that key.
const orderSaga = restate.service({
  name: SERVICE,
  handlers: {
    run: async (ctx: restate.Context, input: OrderState): Promise<OrderState> => {
      let state = input;
      for (const step of HAPPY_STEPS) {
        const current = state;
        state = await ctx.run(step.name, () => step.invoke(current));
      }
      return state;
    },
  },
});

/** Only warnings and errors from the SDK (its default console logger prints every invocation). */
const quietLogger: restate.LoggerTransport = (meta, message: unknown, ...rest: unknown[]) => {
  // RestateLogLevel is a type-only export at run time: compare with its string values.
  const level: string = meta.level;
  if (level === 'warn' || level === 'error') console.error('[restate-sdk]', message, ...rest);
};


function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** The server binary shipped in the platform package (`@restatedev/restate-server-<os>-<arch>`). */
function serverBinary(): string {
  const name = `@restatedev/restate-server-${platform()}-${arch()}`;
  try {
    return require.resolve(`${name}/bin/restate-server`);
  } catch {
    throw new Error(`the Restate server binary for ${platform()}-${arch()} is not installed (${name}, an optional dependency of @restatedev/restate-server)`);
  }
}

/** A non-2xx answer of the ingress. */
class IngressError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = 'IngressError';
  }
}

/** A Restate server and a service endpoint for the saga, both on 127.0.0.1. */
export class RestatePeer {
  private child: ChildProcess | undefined;
  private endpoint: http2.Http2Server | undefined;
  private dir: string | undefined;
  private ingress = '';
  private exited: string | undefined;
  private readonly killOnExit = (): void => {
    this.child?.kill('SIGKILL');
  };
  /** On Ctrl-C or SIGTERM: kill the server, then let the signal do what it would have done. */
  private readonly killOnSignal = (signal: NodeJS.Signals): void => {
    this.killOnExit();
    if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
  };

  /** Starts the server, serves the endpoint and registers it; resolves when the saga can be invoked. */
  async open(timeoutMs = 60_000): Promise<void> {
    const binary = serverBinary();
    const dir = mkdtempSync(path.join(tmpdir(), 'sagaflow-restate-'));
    this.dir = dir;
    const [ingressPort, adminPort, nodePort] = [await freePort(), await freePort(), await freePort()];
    const log = openSync(path.join(dir, 'server.log'), 'a');
    try {
      this.child = spawn(binary, ['--no-logo', '--base-dir', path.join(dir, 'data'), '--node-name', 'bench', '--listen-mode', 'tcp'], {
        cwd: dir,
        stdio: ['ignore', log, log],
        env: {
          PATH: process.env.PATH ?? '/usr/bin:/bin',
          HOME: dir,
          RESTATE_BIND_IP: '127.0.0.1',
          RESTATE_BIND_PORT: String(nodePort),
          RESTATE_INGRESS__BIND_PORT: String(ingressPort),
          RESTATE_ADMIN__BIND_PORT: String(adminPort),
          RESTATE_LOG_FILTER: 'warn',
          RESTATE_LOG_DISABLE_ANSI_CODES: 'true',
          // Telemetry off. The server also checks for a newer release at start; route every outbound HTTP(S)
          // request to a closed port on this machine, so that check fails here and nothing leaves loopback.
          RESTATE_DISABLE_TELEMETRY: 'true',
          DO_NOT_TRACK: '1',
          HTTP_PROXY: 'http://127.0.0.1:9',
          HTTPS_PROXY: 'http://127.0.0.1:9',
          ALL_PROXY: 'http://127.0.0.1:9',
          http_proxy: 'http://127.0.0.1:9',
          https_proxy: 'http://127.0.0.1:9',
          NO_PROXY: '127.0.0.1,localhost',
          no_proxy: '127.0.0.1,localhost',
        },
      });
    } finally {
      closeSync(log);
    }
    process.once('exit', this.killOnExit);
    process.once('SIGINT', this.killOnSignal);
    process.once('SIGTERM', this.killOnSignal);
    this.child.once('exit', (code, signal) => {
      this.exited = `exited (${code ?? signal})`;
    });
    this.child.once('error', (e) => {
      this.exited = `could not start: ${e.message}`;
    });
    this.ingress = `http://127.0.0.1:${ingressPort}`;
    const admin = `http://127.0.0.1:${adminPort}`;

    const endpoint = http2.createServer(restate.createEndpointHandler({ services: [orderSaga], logger: quietLogger }));
    this.endpoint = endpoint;
    const endpointPort = await new Promise<number>((resolve, reject) => {
      endpoint.once('error', reject);
      endpoint.listen(0, '127.0.0.1', () => {
        const address = endpoint.address();
        resolve(typeof address === 'object' && address !== null ? address.port : 0);
      });
    });

    // Register the deployment once the admin API answers (retrying while the server starts).
    const deadline = Date.now() + timeoutMs;
    let last = '';
    for (;;) {
      const exited = this.exitReason();
      if (exited !== undefined) throw new Error(`restate-server ${exited}: ${this.logTail()}`);
      if (Date.now() > deadline) throw new Error(`restate-server not ready in ${timeoutMs} ms (${last}): ${this.logTail()}`);
      try {
        const response = await fetch(`${admin}/deployments`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ uri: `http://127.0.0.1:${endpointPort}`, force: true }),
        });
        if (response.ok) break;
        last = `register: ${response.status} ${await response.text()}`;
      } catch (e) {
        last = e instanceof Error ? e.message : String(e);
      }
      await sleep(200);
    }
    // The ingress may need a moment to see the new deployment (404 or 5xx until then): run sagas until one succeeds.
    for (;;) {
      try {
        await this.one();
        return;
      } catch (e) {
        if (e instanceof IngressError && e.status >= 400 && e.status < 500 && e.status !== 404) throw e;
        last = e instanceof Error ? e.message : String(e);
        const exited = this.exitReason();
        if (exited !== undefined) throw new Error(`restate-server ${exited}: ${this.logTail()}`);
        if (Date.now() > deadline) throw new Error(`Restate ingress not ready in ${timeoutMs} ms (${last}): ${this.logTail()}`);
        await sleep(200);
      }
    }
  }

  /** Runs one saga through the ingress, with its own idempotency key, and checks its result. */
  readonly one = async (): Promise<void> => {
    const key = randomUUID();
    const response = await fetch(`${this.ingress}/${SERVICE}/run`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'idempotency-key': key },
      body: JSON.stringify(initialState()),
    });
    const text = await response.text();
    if (!response.ok) throw new IngressError(response.status, `${RESTATE_NAME}: ingress answered ${response.status}: ${text.slice(0, 300)}`);
    assertOutcome(RESTATE_NAME, 'durable happy path', JSON.parse(text) as OrderState, EXPECTED_HAPPY);
  };

  /** Why the server process is gone (set by its exit or error event), or undefined while it runs. */
  private exitReason(): string | undefined {
    return this.exited;
  }

  private logTail(): string {
    try {
      return this.dir === undefined ? '' : readFileSync(path.join(this.dir, 'server.log'), 'utf8').slice(-1500);
    } catch {
      return '(no server log)';
    }
  }

  /** Stops the endpoint and kills the server; removes its files. Safe to call more than once. */
  async close(): Promise<void> {
    const child = this.child;
    this.child = undefined;
    if (child !== undefined && child.exitCode === null && child.signalCode === null) {
      const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await gone;
      clearTimeout(timer);
    }
    process.removeListener('exit', this.killOnExit);
    process.removeListener('SIGINT', this.killOnSignal);
    process.removeListener('SIGTERM', this.killOnSignal);
    const endpoint = this.endpoint;
    this.endpoint = undefined;
    if (endpoint !== undefined) await new Promise<void>((resolve) => endpoint.close(() => resolve()));
    if (this.dir !== undefined) rmSync(this.dir, { recursive: true, force: true });
    this.dir = undefined;
  }
}
