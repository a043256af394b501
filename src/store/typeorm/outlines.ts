/**
 * `sagaflow_definitions`: the outlines of the definitions runtimes registered, read by tools that do not load the
 * workflows' code.
 */
import { parseJsonSafe } from '../../core/safe-json';
import type { WorkflowOutline } from '../../workflow/workflow-outline';
import type { StoredOutline } from '../instance-store';
import type { Dialect, Exec } from './dialect';
import { num } from './rows';

/** Stores `outline` unless its workflow, version and fingerprint are there; resolves whether it was new. */
export async function saveOutline(x: Exec, dialect: Dialect, outline: WorkflowOutline, registeredAt: number): Promise<boolean> {
  const { affected } = await x(
    `INSERT INTO ${dialect.t('definitions')} (workflow, version, fingerprint, outline, registered_at) VALUES (?, ?, ?, ${dialect.jsonParam()}, ?)
     ON CONFLICT (workflow, version, fingerprint) DO NOTHING`,
    [outline.name, outline.version, outline.fingerprint, JSON.stringify(outline), registeredAt],
  );
  return affected > 0;
}

/** The stored outlines (of `workflow` when given), newest first; an unreadable row is skipped. */
export async function readOutlines(x: Exec, dialect: Dialect, workflow?: string): Promise<StoredOutline[]> {
  const { rows } = await x(
    `SELECT ${dialect.jsonText('outline')} AS outline, registered_at FROM ${dialect.t('definitions')}${workflow === undefined ? '' : ' WHERE workflow = ?'}
     ORDER BY registered_at DESC, workflow, version DESC`,
    workflow === undefined ? [] : [workflow],
  );
  const out: StoredOutline[] = [];
  for (const row of rows) {
    const outline = readOutline(row.outline);
    if (outline !== undefined) out.push({ outline, registeredAt: num(row.registered_at) });
  }
  return out;
}

/** A stored outline's JSON as an outline, or undefined when it does not have the shape of one. */
export function readOutline(text: unknown): WorkflowOutline | undefined {
  let value: unknown;
  try {
    value = typeof text === 'string' ? parseJsonSafe(text) : undefined;
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null) return undefined;
  const o = value as Record<string, unknown>;
  const ok = typeof o.name === 'string' && typeof o.version === 'number' && typeof o.fingerprint === 'string' && Array.isArray(o.nodes);
  return ok ? (value as WorkflowOutline) : undefined;
}
