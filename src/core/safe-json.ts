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
 * A deep JSON copy of `value` without `__proto__` keys: what `JSON.parse(JSON.stringify(value))` gives. Throws
 * (TypeError) when the value cannot be represented as JSON (BigInt, cycles). `undefined` properties are dropped, as
 * JSON does. Plain data (objects, arrays, strings, numbers, booleans, null, a few levels deep) is copied directly,
 * without making the text; anything else (a Date, a class instance, `toJSON`, a cycle, a value JSON turns into null
 * or refuses) goes through JSON itself, so the result and the errors are JSON's own.
 */
export function sanitizeJson(value: unknown): unknown {
  try {
    const copy = plainCopy(value, 0);
    if (copy !== NOT_PLAIN) return copy;
  } catch {
    // A getter or a Proxy trap threw: JSON.stringify below reads the value again and throws its own error.
  }
  const text = JSON.stringify(value);
  if (text === undefined) throw new TypeError(`${typeof value} is not representable as JSON`);
  return parseJsonSafe(text);
}

/** What {@link plainCopy} gives for a value it leaves to JSON. */
const NOT_PLAIN = Symbol('not plain JSON data');

/** Deeper than this, a value is left to JSON (which also finds the cycles). */
const PLAIN_DEPTH = 32;

/** The JSON copy of plain data, or {@link NOT_PLAIN} when JSON's own rules must decide. */
function plainCopy(value: unknown, depth: number): unknown {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return value;
    case 'number':
      // JSON writes NaN and the infinities as null, and -0 as 0.
      return Number.isFinite(value) ? (value === 0 ? 0 : value) : null;
    case 'object':
      break;
    default:
      return NOT_PLAIN;
  }
  if (value === null) return null;
  if (depth > PLAIN_DEPTH) return NOT_PLAIN;
  if (Array.isArray(value)) {
    if (Object.getPrototypeOf(value) !== Array.prototype || typeof (value as { toJSON?: unknown }).toJSON === 'function') return NOT_PLAIN;
    const out = new Array<unknown>(value.length);
    for (let i = 0; i < value.length; i += 1) {
      const item: unknown = value[i];
      const copy = item === undefined ? null : plainCopy(item, depth + 1);
      if (copy === NOT_PLAIN) return NOT_PLAIN;
      out[i] = copy;
    }
    return out;
  }
  const proto: unknown = Object.getPrototypeOf(value);
  if ((proto !== Object.prototype && proto !== null) || typeof (value as { toJSON?: unknown }).toJSON === 'function') return NOT_PLAIN;
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(value)) {
    if (FORBIDDEN_KEYS.has(key)) continue;
    const item: unknown = (value as Record<string, unknown>)[key];
    if (item === undefined || typeof item === 'function' || typeof item === 'symbol') continue;
    const copy = plainCopy(item, depth + 1);
    if (copy === NOT_PLAIN) return NOT_PLAIN;
    out[key] = copy;
  }
  return out;
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
