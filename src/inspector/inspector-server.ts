/**
 * The web inspector: a small HTTP server on 127.0.0.1 serving server-rendered pages read from the store. It never
 * listens on another interface, and it answers only requests addressed to 127.0.0.1 or localhost on its port (other
 * Host headers get 421: a DNS-rebinding page cannot read it).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { UnknownInstanceError } from '../errors/runtime-errors';
import { InstanceStatus } from '../core/flow-fields';
import type { InstanceStore } from '../store/instance-store';
import { instancePage, LIST_CAP, listPage, messagePage } from './pages';

/** Options of {@link startInspector}. */
export interface InspectorOptions {
  /** Where the instances are (opened by the caller, who closes it). */
  readonly store: InstanceStore;
  /** The port; 0 picks a free one. @default 0 */
  readonly port?: number;
  /** The database's name, shown on the pages. @default '' */
  readonly database?: string;
}

/** A running inspector. */
export interface Inspector {
  /** `http://127.0.0.1:<port>/` */
  readonly url: string;
  readonly port: number;
  /** Stops serving. */
  close(): Promise<void>;
}

const STATUSES: readonly string[] = Object.values(InstanceStatus);

function send(res: ServerResponse, status: number, html: string): void {
  res.writeHead(status, {
    'content-type': 'text/html; charset=utf-8',
    'cache-control': 'no-store',
    'x-content-type-options': 'nosniff',
    'x-frame-options': 'DENY',
    'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'self'; frame-ancestors 'none'",
    'referrer-policy': 'no-referrer',
  });
  res.end(html);
}

/**
 * Serves the inspector for `store` on 127.0.0.1.
 * @example
 * const inspector = await startInspector({ store: TypeormStore.sqlite({ file, readOnly: true }) });
 * console.log(inspector.url);
 */
export async function startInspector(options: InspectorOptions): Promise<Inspector> {
  const { store } = options;
  const database = options.database ?? '';
  let port = 0;

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const host = (req.headers.host ?? '').toLowerCase();
    if (host !== `127.0.0.1:${port}` && host !== `localhost:${port}`) {
      send(res, 421, messagePage('Misdirected request', `this inspector answers only http://127.0.0.1:${port}/ and http://localhost:${port}/`));
      return;
    }
    const url = new URL(req.url ?? '/', `http://${host}`);
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      send(res, 405, messagePage('Method not allowed', `${req.method ?? ''} is not served here`));
      return;
    }
    if (url.pathname === '/') {
      const workflow = url.searchParams.get('workflow') ?? '';
      const status = url.searchParams.get('status') ?? '';
      const all = await store.list({ limit: LIST_CAP });
      const instances = workflow === '' ? all : await store.list({ workflow, limit: LIST_CAP });
      const workflows = [...new Set(all.map((i) => i.workflow))].sort();
      send(res, 200, listPage({ database, instances, workflows, ...(workflow === '' ? {} : { workflow }), ...(STATUSES.includes(status) ? { status } : {}) }));
      return;
    }
    const match = /^\/instances\/([^/]+)$/.exec(url.pathname);
    if (match !== null) {
      const id = decodeURIComponent(match[1] as string);
      const record = await store.load(id);
      if (record === undefined) throw new UnknownInstanceError(id);
      const [history, outlines] = await Promise.all([store.history(id), store.outlines?.(record.workflow) ?? Promise.resolve([])]);
      send(res, 200, instancePage({ record, history, outlines }));
      return;
    }
    send(res, 404, messagePage('Not found', `nothing at ${url.pathname}`));
  };

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      if (error instanceof UnknownInstanceError) send(res, 404, messagePage('Unknown instance', error.message));
      else send(res, 500, messagePage('Error', error instanceof Error ? error.message : String(error)));
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/`,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
