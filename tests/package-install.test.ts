import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { installApp, packRepository, ROOT, sh, type PackedTarball } from './support/offline-app';
import { printedOf, snippets } from './support/readme-snippets';

/**
 * sagaflow as a user gets it: `npm pack`, then the tarball installed into two fresh applications, offline, from the
 * npm cache that `npm install` filled here — a CommonJS one without the SQLite driver and next to the lowest typeorm,
 * and an ES module one with better-sqlite3 installed the way `--ignore-scripts` (or pnpm 10) leaves it, unbuilt,
 * next to the newest typeorm 1.x. Each is type-checked under the three module resolutions and runs a saga.
 */

jest.setTimeout(300_000);

const TSC = path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
const version = (dir: string): string => (JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')) as { version: string }).version;

/**
 * What TypeScript 5.9's `npx tsc --init` writes, with the changes the README asks for: the two decorator options and
 * `"types": ["node"]`; a CommonJS project also drops `verbatimModuleSyntax`.
 */
const TSC_INIT = {
  module: 'nodenext',
  target: 'esnext',
  types: ['node'],
  noUncheckedIndexedAccess: true,
  exactOptionalPropertyTypes: true,
  strict: true,
  jsx: 'react-jsx',
  isolatedModules: true,
  noUncheckedSideEffectImports: true,
  moduleDetection: 'force',
  skipLibCheck: true,
  experimentalDecorators: true,
  emitDecoratorMetadata: true,
  noEmit: true,
} as const;

/** The three module settings an application may have. Only `node16` emits: that is the build that runs. */
const MODULE_SETTINGS = {
  node10: { module: 'commonjs', moduleResolution: 'node10', noEmit: true },
  node16: { module: 'node16', moduleResolution: 'node16', outDir: 'build' },
  bundler: { module: 'esnext', moduleResolution: 'bundler', noEmit: true },
} as const;

/** Every entry point, and the app's own typeorm DataSource handed to sagaflow's typeorm helpers (one typeorm copy). */
const CHECK = `import 'reflect-metadata';
import { BaseStep, MemoryStore, SagaRuntime, SagaflowError, Step, defineWorkflow, ok, silentLogger } from 'sagaflow';
import { SimulatedClock } from 'sagaflow/testing';
import { SagaFlowColumns, TypeormStore, mirrorToEntity, sagaflowEntities } from 'sagaflow/typeorm';
import type { SagaflowModule } from 'sagaflow/nestjs';
import type { RedisAdapter } from 'sagaflow/adapters';
import type { OpenTelemetryObserver } from 'sagaflow/opentelemetry';
import { Column, DataSource, Entity, PrimaryColumn } from 'typeorm';

interface Count {
  n: number;
}

@Step({ name: 'count' })
class CountUp extends BaseStep<Count> {
  override run(state: Count) {
    return ok({ n: state.n + 1 });
  }
}
const counting = defineWorkflow<Count>({ name: 'counting', steps: [CountUp] });

@Entity('counters')
class Counter {
  @PrimaryColumn() id!: string;
  @Column() n!: number;
  @Column(() => SagaFlowColumns) flow!: SagaFlowColumns;
}

/** Type-checked, never called: the application's DataSource must be the one sagaflow's helpers take. */
export function mirrored(appDataSource: DataSource): SagaRuntime {
  const entities = [Counter, ...sagaflowEntities('sqlite')];
  const mirror = mirrorToEntity(appDataSource, Counter, { workflows: [counting], map: (s: Count) => ({ id: String(s.n), n: s.n }) });
  return new SagaRuntime({ store: mirror.wrap(TypeormStore.postgres({ dataSource: new DataSource({ type: 'postgres', entities }) })) });
}
export type EntryPoints = [typeof SagaflowModule, typeof RedisAdapter, typeof OpenTelemetryObserver];

async function main(): Promise<void> {
  const report: Record<string, unknown> = {};
  const memory = new SagaRuntime({ store: new MemoryStore(), clock: new SimulatedClock(), workflows: [counting], logger: silentLogger });
  const done = await (await memory.start(counting, { n: 1 })).result();
  await memory.close();
  report.memory = { status: done.status, n: done.state.n };
  try {
    const embedded = new SagaRuntime({ workflows: [counting], logger: silentLogger });
    const result = await (await embedded.start(counting, { n: 41 }, { id: 'sqlite-1' })).result();
    await embedded.close();
    report.sqlite = { status: result.status, n: result.state.n };
  } catch (e) {
    report.sqlite = e instanceof SagaflowError ? { name: e.name, code: e.code, details: e.details } : String(e);
  }
  console.log(JSON.stringify(report));
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
`;

interface App {
  readonly dir: string;
  readonly type: 'commonjs' | 'module';
}

/** Writes the app's sources (the check and the README's first saga) and one tsconfig per module setting. */
function writeSources(app: App): void {
  const firstSaga = snippets().find((s) => s.id === 'first-saga');
  if (firstSaga === undefined) throw new Error('the README has no first-saga snippet');
  mkdirSync(path.join(app.dir, 'src'), { recursive: true });
  writeFileSync(path.join(app.dir, 'src', 'check.ts'), CHECK);
  writeFileSync(path.join(app.dir, 'src', 'checkout.ts'), firstSaga.code);
  for (const [name, settings] of Object.entries(MODULE_SETTINGS)) {
    const compilerOptions = {
      target: 'ES2022',
      strict: true,
      exactOptionalPropertyTypes: true,
      experimentalDecorators: true,
      emitDecoratorMetadata: true,
      esModuleInterop: true,
      skipLibCheck: true,
      types: ['node'],
      rootDir: 'src',
      ...settings,
    };
    writeFileSync(path.join(app.dir, `tsconfig.${name}.json`), JSON.stringify({ compilerOptions, include: ['src'] }, null, 2));
  }
  const init = app.type === 'module' ? { ...TSC_INIT, verbatimModuleSyntax: true } : TSC_INIT;
  writeFileSync(path.join(app.dir, 'tsconfig.init.json'), JSON.stringify({ compilerOptions: init, include: ['src'] }, null, 2));
}

async function typecheck(app: App, setting: keyof typeof MODULE_SETTINGS | 'init'): Promise<string> {
  try {
    return await sh(process.execPath, [TSC, '-p', `tsconfig.${setting}.json`], app.dir);
  } catch (e) {
    return e instanceof Error ? e.message : String(e);
  }
}

async function runNode(app: App, file: string): Promise<{ code: number; out: string }> {
  try {
    return { code: 0, out: await sh(process.execPath, [path.join('build', file)], app.dir, 60_000) };
  } catch (e) {
    return { code: 1, out: e instanceof Error ? e.message : String(e) };
  }
}

/** The JSON line check.js prints. */
async function check(app: App): Promise<Record<string, unknown>> {
  const { code, out } = await runNode(app, 'check.js');
  if (code !== 0) throw new Error(out);
  return JSON.parse(out.trim().split('\n').pop() ?? '{}') as Record<string, unknown>;
}

describe('the packed package, installed into fresh applications offline', () => {
  let work: string;
  let packed: PackedTarball;
  let lowest: string;
  let newest: string;
  const cjs: App = { dir: '', type: 'commonjs' };
  const esm: App = { dir: '', type: 'module' };

  beforeAll(async () => {
    work = mkdtempSync(path.join(tmpdir(), 'sagaflow-install-'));
    packed = await packRepository(work);
    lowest = version(path.join(ROOT, 'node_modules', 'typeorm-lowest'));
    newest = version(path.join(ROOT, 'node_modules', 'typeorm-newest'));
    Object.assign(cjs, { dir: path.join(work, 'cjs-app') });
    Object.assign(esm, { dir: path.join(work, 'esm-app') });
    const common = [{ name: 'reflect-metadata' }, { name: 'class-validator' }, { name: '@types/node' }];
    await Promise.all([
      installApp(cjs.dir, packed.file, 'commonjs', [...common, { name: 'typeorm', from: 'node_modules/typeorm-lowest' }]),
      installApp(esm.dir, packed.file, 'module', [...common, { name: 'typeorm', from: 'node_modules/typeorm-newest' }, { name: 'better-sqlite3' }]),
    ]);
    writeSources(cjs);
    writeSources(esm);
  });

  afterAll(() => {
    if (work !== undefined) rmSync(work, { recursive: true, force: true });
  });

  it('holds the build, its declarations, README, CHANGELOG and LICENSE, and no source maps', () => {
    expect(new Set(packed.files.map((f) => f.split('/')[0]))).toEqual(new Set(['CHANGELOG.md', 'LICENSE', 'README.md', 'package.json', 'dist']));
    expect(packed.files).toEqual(expect.arrayContaining(['dist/src/index.js', 'dist/src/index.d.ts', 'dist/src/store/typeorm/index.d.ts']));
    expect(packed.files.filter((f) => f.endsWith('.map'))).toEqual([]);
    const installed = path.join(cjs.dir, 'node_modules', 'sagaflow', 'dist', 'src');
    const mapped = readdirSync(installed, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.js') && readFileSync(path.join(installed, f), 'utf8').includes('sourceMappingURL'));
    expect(mapped).toEqual([]);
    expect(readFileSync(path.join(cjs.dir, 'node_modules', 'sagaflow', 'LICENSE'), 'utf8')).toMatch(/^MIT License\n\nCopyright \(c\) \d{4} sagaflow contributors/);
  });

  it('takes the application’s typeorm, the lowest or the newest 1.x, without a copy of its own', () => {
    expect(lowest).toBe('1.1.1');
    expect(version(path.join(cjs.dir, 'node_modules', 'typeorm'))).toBe(lowest);
    expect(version(path.join(esm.dir, 'node_modules', 'typeorm'))).toBe(newest);
    for (const app of [cjs, esm]) expect(existsSync(path.join(app.dir, 'node_modules', 'sagaflow', 'node_modules'))).toBe(false);
  });

  it.each(['node10', 'node16', 'bundler'] as const)('type-checks every entry point and the README’s first saga in both applications under moduleResolution %s', async (setting) => {
    const [inCjs, inEsm] = await Promise.all([typecheck(cjs, setting), typecheck(esm, setting)]);
    expect({ commonjs: inCjs, module: inEsm }).toEqual({ commonjs: '', module: '' });
  });

  it('type-checks them under the settings of TypeScript 5.9’s tsc --init, changed as the README says', async () => {
    const [inCjs, inEsm] = await Promise.all([typecheck(cjs, 'init'), typecheck(esm, 'init')]);
    expect({ commonjs: inCjs, module: inEsm }).toEqual({ commonjs: '', module: '' });
  });

  it('runs a saga on a MemoryStore without the SQLite driver, and refuses the embedded default with MISSING_DEPENDENCY: npm install better-sqlite3', async () => {
    expect(existsSync(path.join(cjs.dir, 'node_modules', 'better-sqlite3'))).toBe(false);
    expect(await check(cjs)).toEqual({
      memory: { status: 'completed', n: 2 },
      sqlite: { name: 'MissingDependencyError', code: 'MISSING_DEPENDENCY', details: { package: 'better-sqlite3', command: 'npm install better-sqlite3' } },
    });
    const firstSaga = await runNode(cjs, 'checkout.js');
    expect(firstSaga.code).toBe(1);
    expect(firstSaga.out).toContain('run `npm install better-sqlite3`');
  });

  it('in an ES module application, refuses an unbuilt better-sqlite3 with npm rebuild better-sqlite3, then runs the README’s first saga on SQLite once it is built', async () => {
    expect(await check(esm)).toMatchObject({
      memory: { status: 'completed', n: 2 },
      sqlite: { code: 'MISSING_DEPENDENCY', details: { package: 'better-sqlite3', command: 'npm rebuild better-sqlite3' } },
    });
    // What `npm rebuild better-sqlite3` makes: the addon, here the one this repository's install built for this Node.
    const addon = path.join('build', 'Release', 'better_sqlite3.node');
    mkdirSync(path.join(esm.dir, 'node_modules', 'better-sqlite3', 'build', 'Release'), { recursive: true });
    cpSync(path.join(ROOT, 'node_modules', 'better-sqlite3', addon), path.join(esm.dir, 'node_modules', 'better-sqlite3', addon));
    expect(await check(esm)).toEqual({ memory: { status: 'completed', n: 2 }, sqlite: { status: 'completed', n: 42 } });

    const firstSaga = await runNode(esm, 'checkout.js');
    expect(firstSaga).toEqual({ code: 0, out: `${printedOf('first-saga')}\n` });
    expect(existsSync(path.join(esm.dir, '.sagaflow', 'sagaflow.db'))).toBe(true);
  });
});
