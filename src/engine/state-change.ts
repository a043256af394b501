import { compare, type Operation } from 'fast-json-patch';

/** One JSON Patch (RFC 6902) operation of a recorded state change. */
export type StateChangeOp = Operation;

function redactValue(value: unknown, paths: readonly string[][]): unknown {
  if (paths.length === 0 || typeof value !== 'object' || value === null) return value;
  const copy = structuredClone(value) as Record<string, unknown>;
  for (const path of paths) {
    let node: unknown = copy;
    for (let i = 0; i < path.length - 1 && typeof node === 'object' && node !== null; i += 1) node = (node as Record<string, unknown>)[path[i] as string];
    const last = path[path.length - 1] as string;
    if (typeof node === 'object' && node !== null && Object.prototype.hasOwnProperty.call(node, last)) (node as Record<string, unknown>)[last] = '[redacted]';
  }
  return copy;
}

/**
 * The JSON Patch from `before` to `after` (stored states, plain JSON), with the values at the `redact` dot paths
 * replaced by `'[redacted]'` on both sides (so a change to them shows, but never their values).
 */
export function stateChange(before: unknown, after: unknown, redact: readonly string[] = []): StateChangeOp[] {
  if (before === after) return [];
  const paths = redact.map((p) => p.split('.'));
  const a = redactValue(before, paths);
  const b = redactValue(after, paths);
  if (typeof a !== 'object' || a === null || typeof b !== 'object' || b === null) {
    return JSON.stringify(a) === JSON.stringify(b) ? [] : [{ op: 'replace', path: '', value: b }];
  }
  return compare(a, b);
}
