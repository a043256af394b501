import { copyJson, parseJsonSafe, sanitizeJson } from '../src/core/safe-json';
import { seededRandom } from './support/seeded';

describe('reading JSON safely', () => {
  it('drops a __proto__ key spelled out', () => {
    const value = parseJsonSafe('{"a":1,"__proto__":{"polluted":true}}') as Record<string, unknown>;
    expect(Object.prototype.hasOwnProperty.call(value, '__proto__')).toBe(false);
    expect(value).toEqual({ a: 1 });
  });

  it('drops a __proto__ key written with unicode escapes', () => {
    const value = parseJsonSafe('{"a":1,"\\u005f_proto__":{"polluted":true},"b":{"\\u005F\\u005Fproto__":1}}') as Record<string, unknown>;
    expect(Object.prototype.hasOwnProperty.call(value, '__proto__')).toBe(false);
    expect(Object.prototype.hasOwnProperty.call(value.b, '__proto__')).toBe(false);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('reads ordinary JSON unchanged, escapes included', () => {
    expect(parseJsonSafe('{"name":"caf\\u00e9","n":[1,2]}')).toEqual({ name: 'café', n: [1, 2] });
  });

  it('copies plain JSON deeply, without undefined properties or an own __proto__ key', () => {
    const source: Record<string, unknown> = { a: [1, { b: 'x' }], c: null, d: undefined };
    Object.defineProperty(source, '__proto__', { value: { polluted: true }, enumerable: true });
    const copy = copyJson(source);
    expect(copy).toEqual({ a: [1, { b: 'x' }], c: null });
    expect(Object.prototype.hasOwnProperty.call(copy, '__proto__')).toBe(false);
    expect(Object.prototype.hasOwnProperty.call(copy, 'd')).toBe(false);
    expect(copy.a).not.toBe(source.a);
    expect((copy.a as unknown[])[1]).not.toBe((source.a as unknown[])[1]);
  });
});


class Money {
  constructor(readonly cents: number) {}
}

/** A random value of what states hold, odd corners of JSON included. */
function randomValue(next: () => number, depth: number): unknown {
  const pick = Math.floor(next() * (depth > 3 ? 9 : 14));
  switch (pick) {
    case 0:
      return Math.floor(next() * 1000) - 500;
    case 1:
      return [-0, Number.NaN, Number.POSITIVE_INFINITY, 1.5e300, 0.1][Math.floor(next() * 5)];
    case 2:
      return ['', 'café', 'a"b\\c', '\ud800', 'line\nbreak'][Math.floor(next() * 5)];
    case 3:
      return next() < 0.5;
    case 4:
      return null;
    case 5:
      return undefined;
    case 6:
      return () => 1;
    case 7:
      return Symbol('s');
    case 8:
      return new Date(Math.floor(next() * 1e12));
    case 9:
    case 10: {
      const list: unknown[] = [];
      for (let i = Math.floor(next() * 4); i > 0; i -= 1) list.push(randomValue(next, depth + 1));
      return list;
    }
    case 11:
      return new Money(Math.floor(next() * 100));
    case 12:
      return { toJSON: () => ({ wrapped: true }) };
    default: {
      const object: Record<string, unknown> = {};
      for (let i = Math.floor(next() * 4); i > 0; i -= 1) {
        const key = ['a', 'b', '10', '2', 'constructor', '__proto__'][Math.floor(next() * 6)] as string;
        // An own property (even one named __proto__), as JSON.parse would make it.
        Object.defineProperty(object, key, { value: randomValue(next, depth + 1), enumerable: true, writable: true, configurable: true });
      }
      return object;
    }
  }
}

describe('copying a value as JSON would', () => {
  it('gives what a JSON round trip gives for thousands of generated values (seeded)', () => {
    const next = seededRandom(Number(process.env.SAGAFLOW_FUZZ_SEED ?? 1606));
    for (let i = 0; i < 3000; i += 1) {
      const value = randomValue(next, 0);
      const text = JSON.stringify(value);
      if (text === undefined) {
        expect(() => sanitizeJson(value)).toThrow(TypeError);
        continue;
      }
      const copy = sanitizeJson(value);
      expect(copy).toEqual(parseJsonSafe(text));
      expect(JSON.stringify(copy)).toBe(JSON.stringify(parseJsonSafe(text)));
      if (typeof copy === 'number') expect(Object.is(copy, -0)).toBe(false);
    }
  });

  it('throws as JSON does for a cycle and a BigInt, and never shares an object with the value', () => {
    const cyclic: Record<string, unknown> = { a: 1 };
    cyclic.self = cyclic;
    expect(() => sanitizeJson(cyclic)).toThrow(TypeError);
    expect(() => sanitizeJson({ n: 1n })).toThrow(TypeError);
    const nested = { list: [{ x: 1 }] };
    const copy = sanitizeJson(nested) as typeof nested;
    expect(copy).toEqual(nested);
    expect(copy.list).not.toBe(nested.list);
    expect(copy.list[0]).not.toBe(nested.list[0]);
  });

  it('writes an array with its own toJSON as that toJSON gives it, as JSON does', () => {
    const list: number[] & { toJSON?: () => string } = [1, 2];
    list.toJSON = () => 'a list';
    expect(sanitizeJson({ list })).toEqual({ list: 'a list' });
  });

  it('keeps no own __proto__ key and reads a throwing getter as JSON does', () => {
    const source: Record<string, unknown> = { a: 1 };
    Object.defineProperty(source, '__proto__', { value: { polluted: true }, enumerable: true });
    expect(Object.prototype.hasOwnProperty.call(sanitizeJson(source), '__proto__')).toBe(false);
    const throwing = {};
    Object.defineProperty(throwing, 'bad', { enumerable: true, get: () => { throw new Error('no reading'); } });
    expect(() => sanitizeJson(throwing)).toThrow('no reading');
  });
});
