import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';

/**
 * Throwaway applications that install the packed sagaflow tarball the way a user does, with npm, but offline: the
 * application gets a lock file made from this repository's own (the same versions `npm install` put in the npm cache
 * here), and `npm ci --offline` takes every package from the cache. No test reaches the registry.
 */

export const ROOT = path.resolve(__dirname, '..', '..');

const exec = promisify(execFile);

/** Runs a command; rejects with its output when it fails. */
export async function sh(file: string, args: readonly string[], cwd: string, timeoutMs = 120_000): Promise<string> {
  try {
    const { stdout } = await exec(file, [...args], { cwd, timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024, env: { ...process.env, npm_config_update_notifier: 'false' } });
    return stdout;
  } catch (e) {
    const failed = e as { stdout?: string; stderr?: string; message?: string };
    throw new Error(`${file} ${args.join(' ')} failed in ${cwd}:\n${failed.stdout ?? ''}\n${failed.stderr ?? failed.message ?? ''}`);
  }
}

/** What `npm pack --json` says of the tarball. */
export interface PackedTarball {
  readonly file: string;
  readonly size: number;
  readonly unpackedSize: number;
  readonly files: readonly string[];
}

/**
 * Packs the repository as `npm pack` does for a publish (its `prepack` builds the package), from a copy of what the
 * package is made of, so the repository's own dist/ is left alone.
 */
export async function packRepository(work: string): Promise<PackedTarball> {
  const copy = path.join(work, 'package-source');
  mkdirSync(copy, { recursive: true });
  for (const entry of ['package.json', 'README.md', 'LICENSE', 'CHANGELOG.md', 'tsconfig.json', 'tsconfig.build.json', 'tsconfig.package.json', 'src']) {
    cpSync(path.join(ROOT, entry), path.join(copy, entry), { recursive: true });
  }
  symlinkSync(path.join(ROOT, 'node_modules'), path.join(copy, 'node_modules'), 'dir');
  const out = await sh('npm', ['pack', '--json', '--pack-destination', work], copy);
  const report = JSON.parse(out.slice(out.search(/^\[/m))) as { filename: string; size: number; unpackedSize: number; files: { path: string }[] }[];
  const packed = report[0];
  if (packed === undefined) throw new Error(`npm pack said nothing about a tarball:\n${out}`);
  return { file: path.join(work, packed.filename), size: packed.size, unpackedSize: packed.unpackedSize, files: packed.files.map((f) => f.path) };
}

interface LockEntry {
  version?: string;
  resolved?: string;
  integrity?: string;
  name?: string;
  dev?: boolean;
  peer?: boolean;
  optional?: boolean;
  devOptional?: boolean;
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  peerDependenciesMeta?: Record<string, { optional?: boolean }>;
  [key: string]: unknown;
}

/** A dependency of the application: a package name, and where this repository's lock file holds the version to use. */
export interface AppDependency {
  readonly name: string;
  /** The location in this repository's package-lock.json, e.g. `node_modules/typeorm-lowest` for an npm alias. @default `node_modules/<name>` */
  readonly from?: string;
}

/** The names a lock entry needs installed with it: its dependencies, optional dependencies and required peers. */
function needs(entry: LockEntry): string[] {
  const optionalPeer = (name: string): boolean => entry.peerDependenciesMeta?.[name]?.optional === true;
  return [
    ...Object.keys(entry.dependencies ?? {}),
    ...Object.keys(entry.optionalDependencies ?? {}),
    ...Object.keys(entry.peerDependencies ?? {}).filter((name) => !optionalPeer(name)),
  ];
}

/**
 * A package-lock.json for an application that depends on the tarball and `dependencies`, built from this
 * repository's lock file: each package at the version and place it has here (an aliased package under its real
 * name), with everything it needs.
 */
export function applicationLock(tarball: string, dependencies: readonly AppDependency[]): { lock: object; packageJson: Record<string, string> } {
  const repoLock = JSON.parse(readFileSync(path.join(ROOT, 'package-lock.json'), 'utf8')) as { packages: Record<string, LockEntry> };
  const repo = repoLock.packages;
  const sagaflow = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as LockEntry & { version: string };
  const top = new Map(dependencies.map((d) => [d.name, d.from ?? `node_modules/${d.name}`]));
  /** Where a repository location lands in the application (an alias folder under the package's own name). */
  const placed = (from: string): string => {
    for (const [name, source] of top) if (from === source || from.startsWith(`${source}/`)) return `node_modules/${name}${from.slice(source.length)}`;
    return from;
  };
  /** How Node finds `name` from the package at `location` in the repository tree: nested first, then up. */
  const resolve = (location: string, name: string): string => {
    for (let base = location; base !== ''; base = base.includes('/node_modules/') ? base.slice(0, base.lastIndexOf('/node_modules/')) : '') {
      if (repo[`${base}/node_modules/${name}`] !== undefined) return `${base}/node_modules/${name}`;
    }
    const found = top.get(name) ?? `node_modules/${name}`;
    if (repo[found] === undefined) throw new Error(`the repository's package-lock.json has no ${name} (needed from ${location || 'sagaflow'}); run npm install`);
    return found;
  };
  const packages: Record<string, LockEntry> = {};
  const queue: string[] = [];
  const take = (from: string): void => {
    const at = placed(from);
    if (packages[at] !== undefined) return;
    const { dev: _dev, peer: _peer, optional: _optional, devOptional: _devOptional, name: _name, ...entry } = repo[from] as LockEntry;
    packages[at] = entry;
    queue.push(from);
  };
  const tarballEntry: LockEntry = {
    version: sagaflow.version,
    resolved: `file:${path.basename(tarball)}`,
    integrity: `sha512-${createHash('sha512').update(readFileSync(tarball)).digest('base64')}`,
    dependencies: sagaflow.dependencies ?? {},
    peerDependencies: sagaflow.peerDependencies ?? {},
    peerDependenciesMeta: sagaflow.peerDependenciesMeta ?? {},
  };
  packages['node_modules/sagaflow'] = tarballEntry;
  for (const name of needs(tarballEntry)) take(resolve('', name));
  for (const from of top.values()) take(from);
  for (let from = queue.shift(); from !== undefined; from = queue.shift()) {
    const entry = repo[from] as LockEntry;
    for (const name of needs(entry)) {
      if (entry.optionalDependencies?.[name] !== undefined && repo[resolve(from, name)] === undefined) continue;
      take(resolve(from, name));
    }
  }
  const packageJson: Record<string, string> = { sagaflow: `file:${path.basename(tarball)}` };
  for (const [name, from] of top) packageJson[name] = String(repo[from]?.version);
  return {
    lock: { name: 'app', version: '1.0.0', lockfileVersion: 3, requires: true, packages: { '': { name: 'app', version: '1.0.0', dependencies: packageJson }, ...packages } },
    packageJson,
  };
}

/** A throwaway application folder with sagaflow and `dependencies` installed offline (`npm ci --offline --ignore-scripts`). */
export async function installApp(dir: string, tarball: string, type: 'commonjs' | 'module', dependencies: readonly AppDependency[]): Promise<void> {
  mkdirSync(dir, { recursive: true });
  cpSync(tarball, path.join(dir, path.basename(tarball)));
  const { lock, packageJson } = applicationLock(tarball, dependencies);
  writeFileSync(path.join(dir, 'package.json'), `${JSON.stringify({ name: 'app', version: '1.0.0', private: true, type, dependencies: packageJson }, null, 2)}\n`);
  writeFileSync(path.join(dir, 'package-lock.json'), `${JSON.stringify(lock, null, 2)}\n`);
  try {
    await sh('npm', ['ci', '--offline', '--ignore-scripts', '--no-audit', '--no-fund'], dir);
  } catch (e) {
    const message = e instanceof Error ? e.message : String(e);
    if (!/ENOTCACHED/.test(message)) throw e;
    throw new Error(
      'a package is missing from the npm cache, which a fresh `npm install` of this repository fills (CI installs from a clean clone); ' +
        `with node_modules already there, run \`rm -rf node_modules && npm install\` once:\n${message}`,
    );
  }
}
