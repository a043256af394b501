import { readFileSync } from 'node:fs';
import * as path from 'node:path';

/**
 * The README's TypeScript snippets. Every ```ts block is type-checked. The convention that keeps them honest:
 * a block compiles on its own, as pasted into a fresh project, unless its info string says `continues=<id>`, in which
 * case it compiles appended to the block whose info string says `id=<id>` (and to whatever that one continues).
 * Values an application provides (a data source, a URL) are written as `declare const`; no `any`, no casts through
 * `unknown`, no `@ts-` comments.
 */
export interface Snippet {
  /** 1-based line of the opening fence. */
  readonly line: number;
  readonly id: string | undefined;
  readonly continues: string | undefined;
  readonly code: string;
}

export const README = path.resolve(__dirname, '..', '..', 'README.md');

/** Every ```ts block of `markdown`, in order. */
export function snippets(markdown: string = readFileSync(README, 'utf8')): Snippet[] {
  const found: Snippet[] = [];
  const fence = /^```ts([^\n]*)\n([\s\S]*?)^```$/gm;
  for (let m = fence.exec(markdown); m !== null; m = fence.exec(markdown)) {
    const info = m[1] ?? '';
    found.push({
      line: markdown.slice(0, m.index).split('\n').length,
      id: /\bid=([\w-]+)/.exec(info)?.[1],
      continues: /\bcontinues=([\w-]+)/.exec(info)?.[1],
      code: m[2] ?? '',
    });
  }
  return found;
}

/** The code a snippet compiles as: the blocks it continues, oldest first, then its own. */
export function programOf(snippet: Snippet, all: readonly Snippet[]): string {
  const chain: string[] = [snippet.code];
  const seen = new Set<string>();
  for (let id = snippet.continues; id !== undefined; ) {
    if (seen.has(id)) throw new Error(`README snippet at line ${snippet.line}: continues=${id} loops`);
    seen.add(id);
    const base = all.find((s) => s.id === id);
    if (base === undefined) throw new Error(`README snippet at line ${snippet.line} continues ${id}, which no earlier snippet is (id=${id})`);
    chain.unshift(base.code);
    id = base.continues;
  }
  return chain.join('\n');
}

/** The ```text block that follows the snippet `id` in the README: what it prints when it runs. */
export function printedOf(id: string, markdown: string = readFileSync(README, 'utf8')): string {
  const start = markdown.indexOf(`\`\`\`ts id=${id}\n`);
  const printed = start < 0 ? null : /^```ts[^\n]*\n[\s\S]*?^```\n[\s\S]*?^```text\n([\s\S]*?)^```$/m.exec(markdown.slice(start));
  if (printed?.[1] === undefined) throw new Error(`the README has no \`\`\`text block after the snippet ${id}`);
  return printed[1].replace(/\n$/, '');
}
