import { readFileSync } from 'node:fs';
import { programOf, README, snippets } from './support/readme-snippets';
import { typecheck } from './support/typecheck';

/** The README as a user reads it: what to install, what to set, and code that compiles as written. */

const text = readFileSync(README, 'utf8');
const all = snippets(text);

describe('the README', () => {
  it('type-checks every TypeScript snippet in a strict CommonJS application (exactOptionalPropertyTypes on)', () => {
    const files = Object.fromEntries(all.map((s) => [`readme-line-${s.line}.ts`, `${programOf(s, all)}\nexport {};\n`]));
    expect(Object.keys(files).length).toBeGreaterThan(10);
    expect(typecheck(files)).toEqual([]);
  });

  it('cheats in no snippet: no any, no casts through unknown, no @ts- comments', () => {
    const cheats = all.flatMap((s) =>
      s.code.split('\n').flatMap((line, i) => (/(:|\bas|<)\s*any\b|as unknown as|@ts-(ignore|expect-error|nocheck)/.test(line) ? [`line ${s.line + 1 + i}: ${line.trim()}`] : [])),
    );
    expect(cheats).toEqual([]);
  });

  it('lets a snippet go on only from an earlier one, and says so in its first line', () => {
    const ids = all.map((s) => s.id);
    for (const [i, s] of all.entries()) {
      if (s.continues === undefined) continue;
      expect(`line ${s.line}: ${ids.slice(0, i).includes(s.continues)}`).toBe(`line ${s.line}: true`);
      expect(`line ${s.line}: ${s.code.split('\n')[0] ?? ''}`).toMatch(new RegExp(`^line ${s.line}: // continues the first saga`));
    }
  });

  it('opens with the install line and the two decorator compiler options, then a first saga that stands alone', () => {
    const install = text.indexOf('npm install sagaflow reflect-metadata class-validator typeorm better-sqlite3');
    const options = text.indexOf('"experimentalDecorators": true');
    const first = all.find((s) => s.id === 'first-saga');
    expect(install).toBeGreaterThan(0);
    expect(text.indexOf('"emitDecoratorMetadata": true')).toBeGreaterThan(install);
    expect(options).toBeGreaterThan(install);
    expect(first).toMatchObject({ continues: undefined });
    expect(text.indexOf('```ts id=first-saga')).toBeGreaterThan(options);
    expect(first?.code).not.toMatch(/^await /m); // no top-level await: it compiles as CommonJS too
  });

  it("keeps the repository's own commands, in a Working on sagaflow section", () => {
    const section = text.slice(text.indexOf('## Working on sagaflow'));
    expect(section).toContain('npm install && npm run demo');
    expect(section).toContain('npm test');
  });
});
