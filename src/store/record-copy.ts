import type { InstanceRecord } from '../engine/instance-record';

/**
 * A copy of a record that the engine may go on changing in place while the copy stays as it was, sharing the parts
 * the engine never changes in place: states (a track's state is replaced, never changed: see `Track.state`), the
 * entries of compensation stacks (readonly; only the arrays holding them are pushed and popped) and a forEach's
 * items. It costs a pointer copy per stack entry, not a serialisation of the record.
 */
export function snapshotRecord(record: InstanceRecord): InstanceRecord {
  return copyValue(record) as InstanceRecord;
}

function copyValue(value: unknown): unknown {
  if (typeof value !== 'object' || value === null) return value;
  if (Array.isArray(value)) return value.map(copyValue);
  const out: Record<string, unknown> = {};
  for (const key in value) {
    if (key === '__proto__' || !Object.prototype.hasOwnProperty.call(value, key)) continue;
    const v = (value as Record<string, unknown>)[key];
    if (v !== undefined) out[key] = copyPart(key, v);
  }
  return out;
}

/** `value` under `key` of a record (or of a part of it), copied as deep as {@link snapshotRecord} needs. */
function copyPart(key: string, value: unknown): unknown {
  if (key === 'state') return value;
  if (!Array.isArray(value)) return copyValue(value);
  if (key === 'stack' || key === 'items') return value.slice();
  // A forEach's finished items, [index, state, settle order, stack]: the stack becomes a branch's again later.
  if (key === 'done') return value.map((d: unknown[]) => [d[0], d[1], d[2], (d[3] as unknown[]).slice()]);
  return value.map(copyValue);
}


