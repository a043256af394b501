/** Keys that must never reach an object's prototype chain when JSON is read. */
const FORBIDDEN_KEYS = new Set(['__proto__']);

function reviver(key: string, value: unknown): unknown {
  return FORBIDDEN_KEYS.has(key) ? undefined : value;
}

/** Text in which a `__proto__` key may hide: spelled out, or written with escapes such as `\u005f`. */
const MAYBE_PROTO = /__proto__|\\u/;

/** `JSON.parse` that drops `__proto__` keys at every depth (the slower reviver runs only when one may be there). */
export function parseJsonSafe(text: string): unknown {
  return MAYBE_PROTO.test(text) ? JSON.parse(text, reviver) : JSON.parse(text);
}

/**
 * A deep JSON copy of `value` without `__proto__` keys. Throws (TypeError) when the value
 * cannot be represented as JSON (BigInt, cycles). `undefined` properties are dropped, as JSON does.
 */
export function sanitizeJson(value: unknown): unknown {
  const text = JSON.stringify(value);
  if (text === undefined) throw new TypeError(`${typeof value} is not representable as JSON`);
  return parseJsonSafe(text);
}

/**
 * A deep copy of a value that is plain JSON already (parsed, or stored by sagaflow): objects, arrays and primitives.
 * Cheaper than `structuredClone` or a JSON round trip; `__proto__` keys and `undefined` properties are left out.
 */
export function copyJson<T>(value: T): T {
  return copyValue(value) as T;
}

function copyValue(value: unknown): unknown {
  if (typeof value !== 'object' || value === null) return value;
  if (Array.isArray(value)) {
    const out = new Array<unknown>(value.length);
    for (let i = 0; i < value.length; i++) out[i] = copyValue(value[i]);
    return out;
  }
  const out: Record<string, unknown> = {};
  for (const key in value) {
    if (FORBIDDEN_KEYS.has(key) || !Object.prototype.hasOwnProperty.call(value, key)) continue;
    const v = (value as Record<string, unknown>)[key];
    if (v !== undefined) out[key] = copyValue(v);
  }
  return out;
}
