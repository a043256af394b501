/**
 * The events a TypeormStore keeps: inbox deliveries for waiting tracks (and who hears of them: LISTEN/NOTIFY on
 * PostgreSQL), and retained events that a wait beginning later may take.
 */
import type { SagaEvent } from '../../bus/event';
import type { WaiterRef } from '../../bus/wait-index';
import { eventMatchesWait } from '../../bus/wait-match';
import type { Wait } from '../../core/flow-fields';
import type { TrackRef } from '../../engine/instance-record';
import { consoleLogger } from '../../core/logger';
import { KEEP_FOR_INSTANCE, type PendingEvent, type RunnableDefinition } from '../instance-store';
import { Dialect, runnablePredicate, type Exec } from './dialect';
import { inboxChannel, listenClientConfig, MAX_NOTIFY_ID_BYTES, PgInboxListener, type PgListenOptions } from './pg-listener';
import { decodeEvent, encodeEvent, trackColumn, trackRef } from './rows';
import { StoreClosedError, StorePart } from './store-session';

/** Ended instances whose dropped events a store keeps for their `dropEvents` call, at most. */
const REMEMBERED_ENDED = 10_000;

/** Stores accepted events as inbox deliveries or retained events, hands them out, and wakes inbox listeners. */
export class StoreEvents extends StorePart {
  private readonly inboxListeners = new Set<(instanceId: string) => void>();
  private listener: PgInboxListener | null = null;
  /**
   * SQLite: the events that the final transition of an instance deleted in its own write, until {@link dropEvents}
   * answers them; `recheck` when an event was accepted for it afterwards (its drop then looks again).
   */
  private readonly endedEvents = new Map<string, { readonly events: readonly SagaEvent[]; recheck: boolean; committed: boolean }>();

  /** True while the PostgreSQL LISTEN connection is up. */
  get listening(): boolean {
    return this.listener?.listening ?? false;
  }

  /** How many times the LISTEN connection was established (1 + reconnections); 0 when none was. */
  get listenConnects(): number {
    return this.listener?.connects ?? 0;
  }

  acceptEvent(event: SagaEvent, deliveries: readonly WaiterRef[], retainUntil: number | null): Promise<void> {
    this.keptFor(event.instanceId);
    for (const d of deliveries) this.keptFor(d.instanceId);
    if (deliveries.length === 0 && retainUntil === null) return this.run('accept an event', 'read', () => Promise.resolve());
    const json = encodeEvent(event);
    if (deliveries.length === 0) {
      return this.run('accept an event', 'write', async (x) => {
        await x(
          `INSERT INTO ${this.dialect.t('retained')} (event_id, topic, event, published_at, retain_until, instance_id) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (event_id) DO NOTHING`,
          [event.id, event.topic, json, event.publishedAt, retainUntil, event.instanceId ?? null],
        );
      });
    }
    if (this.setup.kind === 'postgres') {
      // One statement (one transaction): the deliveries, and a notification per instance that got one.
      const params: unknown[] = [];
      const values = deliveries.map((d) => {
        params.push(d.instanceId, trackColumn(d.track));
        return '(CAST(? AS varchar), CAST(? AS varchar))';
      });
      params.push(event.id, json, event.publishedAt, inboxChannel(this.setup.schema), MAX_NOTIFY_ID_BYTES);
      const sql = `WITH d(instance_id, track) AS (VALUES ${values.join(', ')}),
        ins AS (INSERT INTO ${this.dialect.t('inbox')} (event_id, instance_id, track, event, accepted_at)
          SELECT ?, d.instance_id, d.track, CAST(? AS jsonb), CAST(? AS BIGINT) FROM d
          WHERE EXISTS (SELECT 1 FROM ${this.dialect.t('instances')} i WHERE i.id = d.instance_id)
          ON CONFLICT DO NOTHING RETURNING instance_id)
        SELECT pg_notify(CAST(? AS text), CASE WHEN octet_length(n.instance_id) <= CAST(? AS integer) THEN n.instance_id ELSE '' END) AS notified
        FROM (SELECT DISTINCT instance_id FROM ins) AS n`;
      return this.run('accept an event', 'write', async (x) => {
        await x(sql, params);
      });
    }
    return this.run('accept an event', deliveries.length > 1 ? 'tx' : 'write', async (x) => {
      const stored = new Set<string>();
      for (const d of deliveries) {
        const { affected } = await x(
          `INSERT INTO ${this.dialect.t('inbox')} (event_id, instance_id, track, event, accepted_at)
           SELECT ?, ?, ?, ?, CAST(? AS BIGINT) WHERE EXISTS (SELECT 1 FROM ${this.dialect.t('instances')} WHERE id = ?)
           ON CONFLICT DO NOTHING`,
          [event.id, d.instanceId, trackColumn(d.track), json, event.publishedAt, d.instanceId],
        );
        if (affected > 0) stored.add(d.instanceId);
      }
      return stored;
    }).then((stored) => {
      // The queue resolves once the transaction committed: now the deliveries are there for whoever looks.
      for (const id of stored) this.notifyInbox(id);
    });
  }

  inboxInstances(limit: number, runnable?: readonly RunnableDefinition[]): Promise<string[]> {
    return this.run('list inbox instances', 'read', async (x) => {
      const params: unknown[] = [];
      const only = runnable === undefined ? '' : ` WHERE instance_id IN (SELECT id FROM ${this.dialect.t('instances')} WHERE ${runnablePredicate(runnable, params)})`;
      const { rows } = await x(
        `SELECT instance_id FROM ${this.dialect.t('inbox')}${only} GROUP BY instance_id ORDER BY MIN(accepted_at), instance_id LIMIT ?`,
        [...params, Math.max(0, Math.floor(limit))],
      );
      return rows.map((r) => String(r.instance_id));
    });
  }

  onInbox(listener: (instanceId: string) => void): () => void {
    if (this.session.closed) throw new StoreClosedError('listen to the inbox');
    this.inboxListeners.add(listener);
    if (this.setup.kind === 'postgres' && this.setup.notifications !== false) this.startListening(this.setup.notifications ?? {});
    return () => {
      this.inboxListeners.delete(listener);
      if (this.inboxListeners.size === 0 && this.listener !== null) {
        const listening = this.listener;
        this.listener = null;
        void listening.stop();
      }
    };
  }

  pendingEvents(instanceId: string): Promise<PendingEvent[]> {
    return this.run('read an inbox', 'read', async (x) => {
      const { rows } = await x(
        `SELECT event_id, track, ${this.dialect.jsonText('event')} AS event FROM ${this.dialect.t('inbox')} WHERE instance_id = ? ORDER BY accepted_at, event_id`,
        [instanceId],
      );
      return rows.map((r) => ({ event: decodeEvent(r.event, instanceId, String(r.event_id)), track: trackRef(r.track) }));
    });
  }

  takeRetained(instanceId: string, wait: Wait, now: number): Promise<SagaEvent | undefined> {
    if (wait.topics.length === 0) return this.run('take a retained event', 'read', () => Promise.resolve(undefined));
    return this.run('take a retained event', 'write', async (x) => {
      await x(`DELETE FROM ${this.dialect.t('retained')} WHERE retain_until < ?`, [now]);
      return this.takeMatchingRetained(x, instanceId, wait, now);
    });
  }

  moveRetainedToInbox(instanceId: string, track: TrackRef, wait: Wait, now: number): Promise<SagaEvent | undefined> {
    this.keptFor(instanceId);
    if (wait.topics.length === 0) return this.run('move a retained event', 'read', () => Promise.resolve(undefined));
    return this.run('move a retained event', 'tx', async (x) => {
      const event = await this.takeMatchingRetained(x, instanceId, wait, now);
      if (event === undefined) return undefined;
      // In the same transaction the event becomes a delivery in the instance's inbox.
      await x(
        `INSERT INTO ${this.dialect.t('inbox')} (event_id, instance_id, track, event, accepted_at)
         SELECT ?, ?, ?, ${this.setup.kind === 'postgres' ? 'CAST(? AS jsonb)' : '?'}, CAST(? AS BIGINT) WHERE EXISTS (SELECT 1 FROM ${this.dialect.t('instances')} WHERE id = ?)
         ON CONFLICT DO NOTHING`,
        [event.id, instanceId, trackColumn(track), encodeEvent(event), event.publishedAt, instanceId],
      );
      return event;
    });
  }

  /** Deletes and returns the oldest live retained event that `wait` of `instanceId` matches (inside `x`'s transaction). */
  private async takeMatchingRetained(x: Exec, instanceId: string, wait: Wait, now: number): Promise<SagaEvent | undefined> {
    const topics = [...new Set(wait.topics)];
    const r = this.dialect.t('retained');
    const { rows } = await x(
      `SELECT event_id, ${this.dialect.jsonText('event')} AS event FROM ${r}
       WHERE topic IN (${Dialect.marks(topics.length)}) AND retain_until >= ? AND (instance_id IS NULL OR instance_id = ?) ORDER BY published_at, event_id`,
      [...topics, now, instanceId],
    );
    for (const row of rows) {
      let event: SagaEvent;
      try {
        event = decodeEvent(row.event, `retained:${String(row.event_id)}`, String(row.event_id));
      } catch {
        continue; // an unreadable retained event matches nothing; it goes when it expires
      }
      if (!eventMatchesWait(event, wait, instanceId)) continue;
      // Whoever deletes it takes it (another worker may have been first).
      if ((await x(`DELETE FROM ${r} WHERE event_id = ?`, [row.event_id])).affected === 1) return event;
    }
    return undefined;
  }

  retainedEvents(now: number, limit: number): Promise<SagaEvent[]> {
    return this.run('list retained events', 'read', async (x) => {
      const { rows } = await x(
        `SELECT event_id, ${this.dialect.jsonText('event')} AS event FROM ${this.dialect.t('retained')} WHERE retain_until >= ? ORDER BY published_at DESC, event_id LIMIT ?`,
        [now, Math.max(0, Math.floor(limit))],
      );
      return readableEvents(rows);
    });
  }

  expireRetained(now: number, limit: number): Promise<SagaEvent[]> {
    return this.run('expire retained events', 'write', async (x) => {
      const r = this.dialect.t('retained');
      const { rows } = await x(
        `DELETE FROM ${r} WHERE event_id IN (SELECT event_id FROM ${r} WHERE retain_until < ? ORDER BY retain_until LIMIT ?)
         RETURNING event_id, published_at, ${this.dialect.jsonText('event')} AS event`,
        [now, Math.max(0, Math.floor(limit))],
      );
      return readableEvents(rows).sort((a, b) => a.publishedAt - b.publishedAt);
    });
  }

  dropEvents(instanceId: string): Promise<SagaEvent[]> {
    const ended = this.endedEvents.get(instanceId);
    if (ended?.committed === true) {
      this.endedEvents.delete(instanceId);
      // The final transition removed them; look again only if something may have been kept for it since.
      if (!ended.recheck) return Promise.resolve([...ended.events]);
      return this.dropEvents(instanceId).then((later) => [...ended.events, ...later]);
    }
    if (this.setup.kind === 'postgres') {
      // One statement (it then shares a round trip with the batch it goes in).
      const sql = `WITH k AS (DELETE FROM ${this.dialect.t('retained')} WHERE instance_id = ? AND retain_until = ? RETURNING event_id, ${this.dialect.jsonText('event')} AS event),
        p AS (DELETE FROM ${this.dialect.t('inbox')} WHERE instance_id = ? RETURNING event_id, ${this.dialect.jsonText('event')} AS event)
        SELECT event_id, event FROM k UNION ALL SELECT event_id, event FROM p`;
      return this.session.runStatement('drop the events of an instance', { sql, params: [instanceId, KEEP_FOR_INSTANCE, instanceId], read: ({ rows }) => readableEvents(rows) });
    }
    return this.run('drop the events of an instance', 'tx', (x) => this.deleteKept(x, instanceId));
  }

  /**
   * Deletes what is kept for `instanceId` (events published to it, inbox deliveries) inside `x`'s transaction and
   * returns those events: the final transition of an instance on SQLite does it in its own write, and
   * {@link ended} then keeps them for the {@link dropEvents} call that follows.
   */
  async deleteKept(x: Exec, instanceId: string): Promise<SagaEvent[]> {
    const kept = await x(
      `DELETE FROM ${this.dialect.t('retained')} WHERE instance_id = ? AND retain_until = ? RETURNING event_id, ${this.dialect.jsonText('event')} AS event`,
      [instanceId, KEEP_FOR_INSTANCE],
    );
    const pending = await x(`DELETE FROM ${this.dialect.t('inbox')} WHERE instance_id = ? RETURNING event_id, ${this.dialect.jsonText('event')} AS event`, [instanceId]);
    return readableEvents([...kept.rows, ...pending.rows]);
  }

  /**
   * A final transition of `instanceId` that deletes what is kept for it ({@link deleteKept}) is queued: false (do
   * not) while this store remembers too many ended instances whose {@link dropEvents} has not come yet. Events
   * accepted for it from now on may be written after that delete: its drop looks again for them.
   */
  ending(instanceId: string): boolean {
    if (this.endedEvents.size >= REMEMBERED_ENDED) return false;
    const before = this.endedEvents.get(instanceId);
    this.endedEvents.set(instanceId, { events: before?.events ?? [], recheck: before?.recheck ?? false, committed: false });
    return true;
  }

  /** The final transition {@link ending} announced committed (with the events it deleted) or failed (`undefined`). */
  ended(instanceId: string, events: readonly SagaEvent[] | undefined): void {
    const entry = this.endedEvents.get(instanceId);
    if (entry === undefined) return;
    if (events === undefined) {
      if (entry.events.length === 0) this.endedEvents.delete(instanceId);
      else entry.committed = true;
      return;
    }
    this.endedEvents.set(instanceId, { events: [...entry.events, ...events], recheck: entry.recheck, committed: true });
  }

  /** An event was just kept or delivered for `instanceId`: if it had ended, its {@link dropEvents} looks again. */
  private keptFor(instanceId: string | undefined): void {
    const ended = instanceId === undefined ? undefined : this.endedEvents.get(instanceId);
    if (ended !== undefined) ended.recheck = true;
  }

  /** Forgets every listener and stops the LISTEN connection (the store is closing). */
  async stopListening(): Promise<void> {
      this.inboxListeners.clear();
      const listening = this.listener;
      this.listener = null;
      await listening?.stop();
  }

  private startListening(options: PgListenOptions): void {
    if (this.listener !== null) return;
    const logger = this.setup.logger ?? consoleLogger;
    this.listener = new PgInboxListener(
      async () => {
        await this.session.init();
        return listenClientConfig(this.setup.dataSource);
      },
      inboxChannel(this.setup.schema),
      {
        notified: (id) => {
          if (id !== '') {
            this.notifyInbox(id);
            return;
          }
          // An id too long for a notification: look at the whole inbox.
          this.resyncInbox().catch((error: unknown) => logger.warn({ error }, 'could not list the inbox after a notification'));
        },
        resync: () => this.resyncInbox(),
        problem: (error, action) => logger.warn({ error: error instanceof Error ? error.message : String(error) }, `could not ${action}; retrying`),
      },
      options,
    );
    this.listener.start();
  }

  /** Calls the inbox listeners for every instance with pending deliveries. */
  private async resyncInbox(): Promise<void> {
    if (this.inboxListeners.size === 0 || this.session.closed) return;
    const ids = await this.run('list inbox instances', 'read', async (x) => {
      const { rows } = await x(`SELECT DISTINCT instance_id FROM ${this.dialect.t('inbox')}`);
      return rows.map((r) => String(r.instance_id));
    });
    for (const id of ids) this.notifyInbox(id);
  }

  private notifyInbox(instanceId: string): void {
    for (const listener of [...this.inboxListeners]) {
      try {
        listener(instanceId);
      } catch {
        // a throwing listener neither fails the write that woke it nor keeps the others from hearing it
      }
    }
  }
}

/** The events of retained or inbox rows that can be read; an unreadable one matches nothing and is skipped. */
function readableEvents(rows: readonly Record<string, unknown>[]): SagaEvent[] {
  const events: SagaEvent[] = [];
  for (const row of rows) {
    try {
      events.push(decodeEvent(row.event, `retained:${String(row.event_id)}`, String(row.event_id)));
    } catch {
      // an unreadable stored event matches nothing; it goes when it expires or its instance ends
    }
  }
  return events;
}
