import { parseJsonSafe } from '../src/core/safe-json';

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
});
