// How definition checks look at what they were given: the kind of a node spec, and any value described for a message.
import { quote } from '../errors/serialized-error';

export function describe(value: unknown): string {
  if (typeof value === 'function') return `class ${value.name || '(anonymous)'}`;
  if (Array.isArray(value)) return 'an array';
  if (value === null) return 'null';
  if (typeof value === 'object') return `an object ${quote(Object.keys(value))}`;
  return `${typeof value} ${quote(value)}`;
}

export function kindOf(node: unknown): unknown {
  return typeof node === 'object' && node !== null ? (node as { kind?: unknown }).kind : undefined;
}
