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
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { timeOrderedId } from '../core/time-ordered-id';
import { SagaflowError } from '../errors/sagaflow-error';
import type { OperatorRequestKind } from '../store/operator-request';
import { ACTIONS, actionButtons, confirmPage } from './operator-forms';

/** The body of a form post, at most 64 kB. */
function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => {
      body += chunk;
      if (body.length > 65_536) req.destroy(new Error('the form is too large'));
    });
    req.on('end', () => resolve(body));
    req.on('error', reject);
  });
}

/** An instance id from its path segment, or undefined when the segment is not valid percent-encoding. */
function decodedId(segment: string): string | undefined {
  try {
    return decodeURIComponent(segment);
  } catch {
    return undefined;
  }
}

/** Options of {@link startInspector}. */
export interface InspectorOptions {
  /** Where the instances are (opened by the caller, who closes it). */
  readonly store: InstanceStore;
  /** The port; 0 picks a free one. @default 0 */
  readonly port?: number;
  /** The database's name, shown on the pages. @default '' */
  readonly database?: string;
  /** Show operator buttons that write requests (the store must be writable). @default false */
  readonly requests?: boolean;
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
    'referrer-policy': 'same-origin',
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
  const writable = options.requests === true && store.request !== undefined;
  /** Every form carries it: a page from another origin cannot post to the inspector without it. */
  const token = randomBytes(24).toString('hex');
  let port = 0;

  const tokenOk = (given: string | null): boolean => {
    const a = Buffer.from(given ?? '');
    const b = Buffer.from(token);
    return a.length === b.length && timingSafeEqual(a, b);
  };

  const post = async (req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> => {
    const match = /^\/instances\/([^/]+)\/(confirm|requests)$/.exec(url.pathname);
    const origin = req.headers.origin;
    if (!writable || match === null) {
      send(res, 405, messagePage('Method not allowed', 'this inspector takes no requests here'));
      return;
    }
    const form = new URLSearchParams(await readBody(req));
    if (!tokenOk(form.get('token')) || (origin !== undefined && origin !== `http://127.0.0.1:${port}` && origin !== `http://localhost:${port}`)) {
      send(res, 403, messagePage('Forbidden', 'the form did not come from this inspector (reload the instance page and try again)'));
      return;
    }
    const id = decodedId(match[1] as string);
    if (id === undefined) {
      send(res, 400, messagePage('Bad address', 'the instance id in this address is not valid percent-encoding'));
      return;
    }
    const kind = form.get('kind') ?? '';
    const record = await store.load(id);
    if (record === undefined) throw new UnknownInstanceError(id);
    if (!Object.hasOwn(ACTIONS, kind)) {
      send(res, 400, messagePage('Unknown request', `no such operator request: ${kind}`));
      return;
    }
    const k = kind as OperatorRequestKind;
    if (match[2] === 'confirm') {
      send(res, 200, confirmPage(record, k, token));
      return;
    }
    const by = form.get('by') ?? '';
    const reason = form.get('reason') ?? '';
    try {
      const request = await (store.request as NonNullable<InstanceStore['request']>)({ instanceId: id, kind: k, ...(by === '' ? {} : { by }), ...(reason === '' ? {} : { reason }) }, timeOrderedId(), Date.now());
      res.writeHead(303, { location: `/instances/${encodeURIComponent(id)}?request=${encodeURIComponent(request.id)}` });
      res.end();
    } catch (error) {
      if (!(error instanceof SagaflowError) || error instanceof UnknownInstanceError) throw error;
      send(res, 409, messagePage('Refused', `${error.message} (${error.code})`));
    }
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const host = (req.headers.host ?? '').toLowerCase();
    if (host !== `127.0.0.1:${port}` && host !== `localhost:${port}`) {
      send(res, 421, messagePage('Misdirected request', `this inspector answers only http://127.0.0.1:${port}/ and http://localhost:${port}/`));
      return;
    }
    const url = new URL(req.url ?? '/', `http://${host}`);
    if (req.method === 'POST') {
      await post(req, res, url);
      return;
    }
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
      const id = decodedId(match[1] as string);
      if (id === undefined) {
        send(res, 400, messagePage('Bad address', 'the instance id in this address is not valid percent-encoding'));
        return;
      }
      const record = await store.load(id);
      if (record === undefined) throw new UnknownInstanceError(id);
      const [history, outlines] = await Promise.all([store.history(id), store.outlines?.(record.workflow) ?? Promise.resolve([])]);
      const asked = url.searchParams.get('request');
      const request = asked === null ? undefined : await store.requestById?.(asked);
      const flash =
        request === undefined
          ? undefined
          : `request ${request.kind} (${request.id}) ${request.state === 'pending' ? 'is pending: the runtime that runs this instance applies it (reload to see)' : request.state === 'done' ? 'was applied' : `failed: ${request.error?.message ?? ''}`}`;
      send(res, 200, instancePage({ record, history, outlines, ...(writable ? { actions: actionButtons(record, token) } : {}), ...(flash === undefined ? {} : { flash }) }));
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
