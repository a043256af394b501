import { compare, type Operation } from 'fast-json-patch';
import { Redaction } from '../observers/redaction';

/** One JSON Patch (RFC 6902) operation of a recorded state change. */
export type StateChangeOp = Operation;

/**
 * The JSON Patch from `before` to `after` (stored states, plain JSON), with the values the redaction names replaced
 * by `'[redacted]'` on both sides (so a change to them shows, but never their values).
 */
export function stateChange(before: unknown, after: unknown, redaction: Redaction = Redaction.none): StateChangeOp[] {
  if (before === after) return [];
  const a = redaction.empty ? before : redaction.copy(before);
  const b = redaction.empty ? after : redaction.copy(after);
  if (typeof a !== 'object' || a === null || typeof b !== 'object' || b === null) {
    return JSON.stringify(a) === JSON.stringify(b) ? [] : [{ op: 'replace', path: '', value: b }];
  }
  return compare(a, b);
}
