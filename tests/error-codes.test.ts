import { readdirSync, readFileSync, statSync } from 'node:fs';
import * as path from 'node:path';

/** Every .ts file under `dir`. */
function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const full = path.join(dir, name);
    return statSync(full).isDirectory() ? sources(full) : name.endsWith('.ts') ? [full] : [];
  });
}

/** The error codes the source can raise: given to an error's constructor, set as `code`, or listed in a code table. */
function codesIn(text: string): Set<string> {
  const code = text
    .split('\n')
    .filter((line) => !/^\s*(\*|\/\/|\/\*)/.test(line))
    .join('\n');
  const found = new Set<string>();
  const patterns = [
    /(?:super|Error)\(\s*'([A-Z][A-Z0-9_]{2,})'/g,
    /code: [^,\n]*?'([A-Z][A-Z0-9_]{2,})'/g,
    /^\s+[A-Z][A-Za-z]+: '([A-Z][A-Z0-9_]{2,})',$/gm,
  ];
  for (const pattern of patterns) for (const match of code.matchAll(pattern)) found.add(match[1] as string);
  return found;
}

describe('the README errors table', () => {
  it('lists every error code the source can raise', () => {
    const root = path.resolve(__dirname, '..');
    const readme = readFileSync(path.join(root, 'README.md'), 'utf8');
    const codes = new Set<string>();
    for (const file of sources(path.join(root, 'src'))) for (const c of codesIn(readFileSync(file, 'utf8'))) codes.add(c);
    expect(codes.size).toBeGreaterThan(50);
    expect([...codes].filter((c) => !readme.includes(`\`${c}\``)).sort()).toEqual([]);
  });
});
