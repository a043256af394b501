/**
 * Summarises a V8 `.cpuprofile` (from `node --cpu-prof`): self time aggregated by function (name + file:line of
 * its definition) and by source line, with compiled dist/ locations mapped back to the TypeScript sources
 * through the emitted source maps.
 *
 *   node ../dist/bench/src/profile-summary.js /tmp/prof [top=15]
 *
 * The argument is a .cpuprofile file or a directory (its newest .cpuprofile is used).
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { SourceMap } from 'node:module';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { renderTable } from './harness';

interface CallFrame {
  readonly functionName: string;
  readonly url: string;
  /** 0-based. */
  readonly lineNumber: number;
  readonly columnNumber: number;
}

interface ProfileNode {
  readonly id: number;
  readonly callFrame: CallFrame;
  /** 1-based lines of the function's own samples. */
  readonly positionTicks?: readonly { readonly line: number; readonly ticks: number }[];
}

interface CpuProfile {
  readonly nodes: readonly ProfileNode[];
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
}

function newestProfile(target: string): string {
  if (!statSync(target).isDirectory()) return target;
  const files = readdirSync(target)
    .filter((f) => f.endsWith('.cpuprofile'))
    .map((f) => path.join(target, f))
    .sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs);
  const newest = files[0];
  if (newest === undefined) throw new Error(`no .cpuprofile in ${target}`);
  return newest;
}

const ROOT = path.resolve(__dirname, '..', '..', '..');
const maps = new Map<string, SourceMap | null>();
const sources = new Map<string, readonly string[]>();

/** The column of the first non-blank character of a compiled line (column 0 may map to the previous statement). */
function firstColumn(file: string, line0: number): number {
  let lines = sources.get(file);
  if (lines === undefined) sources.set(file, (lines = existsSync(file) ? readFileSync(file, 'utf8').split('\n') : []));
  const text = lines[line0] ?? '';
  return text.length - text.trimStart().length;
}

function sourceMapOf(file: string): SourceMap | null {
  let map = maps.get(file);
  if (map === undefined) {
    const mapFile = `${file}.map`;
    map = existsSync(mapFile) ? new SourceMap(JSON.parse(readFileSync(mapFile, 'utf8')) as ConstructorParameters<typeof SourceMap>[0]) : null;
    maps.set(file, map);
  }
  return map;
}

/**
 * `file:line` (1-based), mapped to the TypeScript source when a source map exists, relative to the repository.
 * A null `column0` means "the line's first statement".
 */
function location(url: string, line0: number, column0: number | null): string {
  if (url === '') return '';
  if (!url.startsWith('file://')) return `${url}:${line0 + 1}`;
  const file = fileURLToPath(url);
  const entry = sourceMapOf(file)?.findEntry(line0, column0 ?? firstColumn(file, line0));
  if (entry !== undefined && entry !== null && 'originalSource' in entry) {
    const source = entry.originalSource.startsWith('file://')
      ? fileURLToPath(entry.originalSource)
      : path.resolve(path.dirname(file), entry.originalSource);
    return `${path.relative(ROOT, source)}:${entry.originalLine + 1}`;
  }
  return `${path.relative(ROOT, file)}:${line0 + 1}`;
}

function main(argv: readonly string[]): void {
  const target = argv[0];
  if (target === undefined) throw new Error('usage: profile-summary <.cpuprofile file or directory> [top]');
  const top = Number(argv[1] ?? 15);
  const file = newestProfile(target);
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;

  const selfUs = new Map<number, number>();
  profile.samples.forEach((id, i) => selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)));
  let totalUs = 0;
  for (const us of selfUs.values()) totalUs += us;

  const byFunction = new Map<string, number>();
  const byLine = new Map<string, number>();
  for (const node of profile.nodes) {
    const us = selfUs.get(node.id) ?? 0;
    if (us === 0) continue;
    const { functionName, url, lineNumber, columnNumber } = node.callFrame;
    const key = `${functionName || '(anonymous)'}\t${location(url, lineNumber, columnNumber)}`;
    byFunction.set(key, (byFunction.get(key) ?? 0) + us);
    const ticks = node.positionTicks ?? [];
    const tickSum = ticks.reduce((sum, t) => sum + t.ticks, 0);
    for (const t of ticks) {
      const lineKey = `${functionName || '(anonymous)'}\t${location(url, t.line - 1, null)}`;
      byLine.set(lineKey, (byLine.get(lineKey) ?? 0) + (us * t.ticks) / tickSum);
    }
  }

  const table = (title: string, entries: Map<string, number>): string => {
    const rows = [...entries]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([key, us], i) => {
        const [name = '', where = ''] = key.split('\t');
        return [String(i + 1), (us / 1_000).toFixed(0), `${((us / totalUs) * 100).toFixed(1)}%`, name, where];
      });
    return `${title}\n${renderTable(['#', 'self ms', 'share', 'function', 'location'], rows)}`;
  };

  console.log(`${path.basename(file)}: ${(totalUs / 1_000).toFixed(0)} ms sampled\n`);
  console.log(`${table('self time by function', byFunction)}\n`);
  console.log(table('self time by source line', byLine));
}

main(process.argv.slice(2));
