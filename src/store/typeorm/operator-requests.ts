/** `sagaflow_requests`: operator requests written by any process and applied by the worker that runs the instance. */
import type { SerializedError } from '../../errors/serialized-error';
import { parseJsonSafe } from '../../core/safe-json';
import type { RunnableDefinition } from '../instance-store';
import { checkRequestApplies, checkRequestInput, type OperatorRequest, type OperatorRequestInput, type OperatorRequestKind } from '../operator-request';
import { stackRowsColumn, storedRecordOf } from './stack-rows';
import { runnablePredicate, type Dialect, type Exec } from './dialect';
import { num, numOrNull } from './rows';

/** Checks the request against the stored instance (locked on PostgreSQL) and writes it; run inside one transaction. */
export async function writeRequest(x: Exec, dialect: Dialect, input: OperatorRequestInput, id: string, now: number): Promise<OperatorRequest> {
  checkRequestInput(input);
  const { rows } = await x(
    `SELECT ${dialect.jsonText('record')} AS record, ${stackRowsColumn(dialect, 'id')} AS stack FROM ${dialect.t('instances')} WHERE id = ?${dialect.kind === 'postgres' ? ' FOR UPDATE' : ''}`,
    [input.instanceId],
  );
  checkRequestApplies(input, storedRecordOf(rows[0], input.instanceId)?.record);
  await x(`INSERT INTO ${dialect.t('requests')} (id, instance_id, kind, requested_by, reason, requested_at, state) VALUES (?, ?, ?, ?, ?, ?, 'pending')`, [
    id,
    input.instanceId,
    input.kind,
    input.by ?? null,
    input.reason ?? null,
    now,
  ]);
  return { id, ...input, requestedAt: now, state: 'pending' };
}

const COLUMNS = 'id, instance_id, kind, requested_by, reason, requested_at, state, error, done_at';

function fromRow(row: Record<string, unknown>): OperatorRequest {
  let error: SerializedError | undefined;
  if (typeof row.error === 'string') {
    try {
      error = parseJsonSafe(row.error) as SerializedError;
    } catch {
      error = { code: 'ERROR', name: 'Error', message: row.error };
    }
  }
  const doneAt = numOrNull(row.done_at);
  return {
    id: String(row.id),
    instanceId: String(row.instance_id),
    kind: String(row.kind) as OperatorRequestKind,
    ...(typeof row.requested_by === 'string' ? { by: row.requested_by } : {}),
    ...(typeof row.reason === 'string' ? { reason: row.reason } : {}),
    requestedAt: num(row.requested_at),
    state: String(row.state) as OperatorRequest['state'],
    ...(error === undefined ? {} : { error }),
    ...(doneAt === null ? {} : { doneAt }),
  };
}

/** A request by id. */
export async function readRequest(x: Exec, dialect: Dialect, id: string): Promise<OperatorRequest | undefined> {
  const { rows } = await x(`SELECT ${COLUMNS} FROM ${dialect.t('requests')} WHERE id = ?`, [id]);
  return rows[0] === undefined ? undefined : fromRow(rows[0]);
}

/** The pending requests of an instance, oldest first. */
export async function pendingRequests(x: Exec, dialect: Dialect, instanceId: string): Promise<OperatorRequest[]> {
  const { rows } = await x(`SELECT ${COLUMNS} FROM ${dialect.t('requests')} WHERE instance_id = ? AND state = 'pending' ORDER BY requested_at, id`, [instanceId]);
  return rows.map(fromRow);
}

/** Instances with pending requests, oldest request first; only `runnable` ones when given. */
export async function requestInstances(x: Exec, dialect: Dialect, limit: number, runnable?: readonly RunnableDefinition[]): Promise<string[]> {
  const params: unknown[] = [];
  const only = runnable === undefined ? '' : ` AND instance_id IN (SELECT id FROM ${dialect.t('instances')} WHERE ${runnablePredicate(runnable, params)})`;
  const { rows } = await x(`SELECT instance_id FROM ${dialect.t('requests')} WHERE state = 'pending'${only} GROUP BY instance_id ORDER BY MIN(requested_at), instance_id LIMIT ?`, [
    ...params,
    Math.max(0, Math.floor(limit)),
  ]);
  return rows.map((r) => String(r.instance_id));
}

/** Marks a pending request done (error null) or failed. */
export async function finishRequest(x: Exec, dialect: Dialect, id: string, error: SerializedError | null, now: number): Promise<void> {
  await x(`UPDATE ${dialect.t('requests')} SET state = ?, error = ?, done_at = ? WHERE id = ? AND state = 'pending'`, [error === null ? 'done' : 'failed', error === null ? null : JSON.stringify(error), now, id]);
}
