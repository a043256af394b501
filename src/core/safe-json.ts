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
