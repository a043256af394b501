import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import type { Config } from '@jest/types';

/** A program some test files need that a fresh machine may lack, and how to tell whether it is there. */
export interface TestService {
  /** The Debian package (and the argument of scripts/setup-test-services.sh). */
  readonly name: string;
  /** Test files that import this support module need the service. */
  readonly usedBy: string;
  /** True when the service is installed. */
  present(): boolean;
}

function runs(command: string, args: readonly string[]): boolean {
  const probe = spawnSync(command, args, { stdio: 'ignore' });
  return probe.error === undefined && probe.status === 0;
}

/** The services the test suite installs itself when they are missing. */
export const TEST_SERVICES: readonly TestService[] = [
  { name: 'redis-server', usedBy: 'support/redis', present: () => runs(process.env.SAGAFLOW_REDIS_SERVER ?? 'redis-server', ['--version']) },
  { name: 'chromium', usedBy: 'support/chromium', present: () => runs(process.env.SAGAFLOW_CHROMIUM ?? 'chromium', ['--version']) },
];

/** Test files whose source imports `marker`. */
function filesUsing(rootDir: string, marker: string): string[] {
  const dir = path.join(rootDir, 'tests');
  return readdirSync(dir)
    .filter((f) => f.endsWith('.test.ts'))
    .map((f) => path.join(dir, f))
    .filter((f) => readFileSync(f, 'utf8').includes(marker));
}

/** Whether this jest run selects a test file that imports `marker` (when unsure: yes). */
export function runUses(globalConfig: Config.GlobalConfig, rootDir: string, marker: string): boolean {
  try {
    if (!globalConfig.testPathPatterns.isSet()) return true;
    const executor = globalConfig.testPathPatterns.toExecutor({ rootDir });
    return filesUsing(rootDir, marker).some((f) => executor.isMatch(f));
  } catch {
    return true;
  }
}

/** How provisioning installs and what it may do; the defaults run the setup script as root or with sudo. */
export interface Provisioning {
  readonly services: readonly TestService[];
  /** True when this process may install Debian packages. */
  mayInstall(): boolean;
  /** Runs the setup script for these packages; resolves its exit status. */
  install(script: string, names: readonly string[]): number | null;
}

const realProvisioning: Provisioning = {
  services: TEST_SERVICES,
  mayInstall: () => process.env.SAGAFLOW_NO_PROVISION !== '1' && (process.getuid?.() === 0 || runs('sudo', ['-n', 'true'])),
  install: (script, names) => {
    process.stdout.write(`\n[sagaflow tests] installing ${names.join(', ')} (missing on this machine) with ${script}\n`);
    return spawnSync('bash', [script, ...names], { stdio: 'inherit' }).status;
  },
};

/**
 * Installs the services that the selected tests need and this machine lacks, with the project's own setup script
 * (Debian packages). Set SAGAFLOW_NO_PROVISION=1 to refuse instead of installing.
 * @throws Error saying what to run when a service is missing and may not be installed here.
 */
export function provisionTestServices(globalConfig: Config.GlobalConfig, rootDir: string, how: Provisioning = realProvisioning): void {
  const missing = how.services.filter((s) => runUses(globalConfig, rootDir, s.usedBy) && !s.present());
  if (missing.length === 0) return;
  const names = missing.map((s) => s.name);
  const script = path.join(rootDir, 'scripts', 'setup-test-services.sh');
  const command = `sudo bash ${script} ${names.join(' ')}`;
  if (!how.mayInstall()) throw new Error(`the tests need ${names.join(', ')}, which this machine lacks; install with: ${command}`);
  const status = how.install(script, names);
  const still = missing.filter((s) => !s.present()).map((s) => s.name);
  if (status !== 0 || still.length > 0) {
    throw new Error(`installing ${names.join(', ')} failed (exit ${String(status)}); still missing: ${still.join(', ') || 'none'}; run: ${command}`);
  }
}
