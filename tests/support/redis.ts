import { freePort } from './free-port';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import * as path from 'node:path';

/** Where redis-server is (override with SAGAFLOW_REDIS_SERVER). */
export function redisServerBin(): string {
  return process.env.SAGAFLOW_REDIS_SERVER ?? 'redis-server';
}

/** A throwaway redis-server on 127.0.0.1, owned by one test file. */
export interface RedisServer {
  readonly port: number;
  readonly url: string;
  /** Stops the server (SIGTERM) and waits for it to exit. */
  stop(): Promise<void>;
  /** Starts it again on the same port (after stop()). */
  start(): Promise<void>;
  /** stop() then start(). */
  restart(): Promise<void>;
  /** Stops it and removes its files. */
  dispose(): Promise<void>;
}


function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/**
 * Starts redis-server on 127.0.0.1 on a free port, in memory only (no RDB, no AOF), for one test file.
 * @throws Error saying what to install when redis-server is missing.
 */
export async function startRedis(): Promise<RedisServer> {
  const bin = redisServerBin();
  const probe = spawnSync(bin, ['--version'], { encoding: 'utf8' });
  if (probe.error !== undefined || probe.status !== 0) {
    throw new Error(
      `redis-server is missing (${bin}: ${probe.error?.message ?? probe.stderr}). The Redis adapter tests start a real one: ` +
        'run scripts/setup-test-services.sh (Debian: apt-get install -y redis-server), or set SAGAFLOW_REDIS_SERVER.',
    );
  }
  // When jest dies without its hooks running (killed, timed out), the server must not outlive it: setpriv
  // (util-linux) asks the kernel to send it SIGTERM when its parent goes.
  const setpriv = spawnSync('setpriv', ['--help'], { encoding: 'utf8' });
  const withDeathSignal = setpriv.status === 0 && setpriv.stdout.includes('--pdeathsig');
  const dir = mkdtempSync(path.join(tmpdir(), 'sagaflow-redis-'));
  const port = await freePort();
  let child: ChildProcess | null = null;
  let output = '';

  const start = async (): Promise<void> => {
    if (child !== null) return;
    output = '';
    const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, '--daemonize', 'no', '--loglevel', 'warning'];
    const proc = withDeathSignal
      ? spawn('setpriv', ['--pdeathsig', 'TERM', '--', bin, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
      : spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    child = proc;
    proc.stdout?.on('data', (d: Buffer) => (output += d.toString()));
    proc.stderr?.on('data', (d: Buffer) => (output += d.toString()));
    const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
    const deadline = Date.now() + 10_000;
    for (;;) {
      if (await canConnect(port)) return;
      const gone = await Promise.race([exited, new Promise<'running'>((resolve) => setTimeout(() => resolve('running'), 25))]);
      if (gone !== 'running' || Date.now() > deadline) {
        proc.kill('SIGKILL');
        child = null;
        throw new Error(`redis-server did not start on port ${port} (exit ${String(gone)}): ${output}`);
      }
    }
  };

  const stop = async (): Promise<void> => {
    const proc = child;
    if (proc === null) return;
    child = null;
    if (proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
    proc.kill('SIGTERM');
    await exited;
  };

  const killOnExit = (): void => {
    child?.kill('SIGKILL');
  };
  process.once('exit', killOnExit);
  await start();
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    stop,
    start,
    restart: async () => {
      await stop();
      await start();
    },
    dispose: async () => {
      await stop();
      process.removeListener('exit', killOnExit);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * A TCP pass-through to a local port that a test can cut — a network partition for whoever connects through it:
 * open connections are destroyed and new ones refused (the gate stops listening) — and mend (it listens again
 * on the same port).
 */
export interface TcpGate {
  readonly port: number;
  /** Destroys every connection through the gate and refuses new ones until {@link TcpGate.mend}. */
  cut(): Promise<void>;
  mend(): Promise<void>;
  close(): Promise<void>;
}

export async function tcpGate(targetPort: number): Promise<TcpGate> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    const upstream = connect({ host: '127.0.0.1', port: targetPort });
    sockets.add(client);
    sockets.add(upstream);
    const drop = (): void => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('error', drop);
    upstream.on('error', drop);
    client.on('close', drop);
    upstream.on('close', drop);
    client.pipe(upstream);
    upstream.pipe(client);
  });
  const listen = (port: number): Promise<void> =>
    new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
  const shut = (): Promise<void> =>
    new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy();
      sockets.clear();
      if (!server.listening) resolve();
      else server.close(() => resolve());
    });
  await listen(0);
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  return { port, cut: shut, mend: () => listen(port), close: shut };
}
