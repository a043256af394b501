import { execFile } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';

/**
 * Every sample is a folder of samples/ with a run.ts that runs it when it is the program
 * (`node dist/samples/<name>/run.js`). Here the TypeScript runs directly, compiled on require by the hook the crash
 * tests use, so no build is needed.
 */

const ROOT = path.resolve(__dirname, '..');
const SAMPLES = path.join(ROOT, 'samples');
const REGISTER = path.join(ROOT, 'tests', 'crash', 'register.js');
const run = promisify(execFile);

jest.setTimeout(60_000);

/** The sample folders (each has its own run.ts). */
function sampleFolders(): string[] {
  return readdirSync(SAMPLES)
    .filter((name) => statSync(path.join(SAMPLES, name)).isDirectory())
    .sort();
}

async function node(args: readonly string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, ['-r', REGISTER, ...args], { cwd: ROOT, env: { ...process.env, ...env }, timeout: 50_000 });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const failed = e as { code?: unknown; stdout?: string; stderr?: string };
    return { code: typeof failed.code === 'number' ? failed.code : -1, stdout: failed.stdout ?? '', stderr: failed.stderr ?? String(e) };
  }
}

/** A line each sample prints when it ran to its end. Redis-otel needs a Redis server: tests/sample-redis-otel.test.ts runs it. */
const LAST_WORDS: Record<string, RegExp> = {
  'branching-order': /every effect of ord-3002 was undone/,
  'embedded-entity': /rolled back: order-2002 \(NO_CARRIER/,
  nestjs: /^order-2 rolled_back \(CARD_DECLINED\)$/m,
  'nightly-batch': /schedule:nightly:2026-11-22T01:00:00\.000Z: 6 collected, 1 declined/,
  'order-checkout': /nothing was stored for order-1003/,
  'user-onboarding': /every effect of signup-bob was undone \(4 of 4\)/,
  'versioned-deploy': /loan-3/,
  'trip-booking': /trip-oslo: rolled_back: the trip could not be booked \(FARES_DOWN\)/,
};

describe('each sample on its own', () => {
  it('has a run.ts in every sample folder, and samples/README.md lists every folder', () => {
    const readme = readFileSync(path.join(SAMPLES, 'README.md'), 'utf8');
    for (const name of sampleFolders()) {
      expect(`${name}: ${statSync(path.join(SAMPLES, name, 'run.ts')).isFile()}`).toBe(`${name}: true`);
      expect(readme).toContain(`\`${name}/\``);
    }
  });

  it.each(Object.keys(LAST_WORDS))('runs %s when its run file is the program: it prints the timeline and exits 0', async (name) => {
    const result = await node([path.join('samples', name, 'run.ts')]);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(LAST_WORDS[name] as RegExp);
  });

  it('covers every sample folder but redis-otel, which needs a Redis server', () => {
    expect([...Object.keys(LAST_WORDS), 'redis-otel'].sort()).toEqual(sampleFolders());
  });

  it('runs nothing when a run file is imported', async () => {
    const result = await node(['-e', "require('./samples/order-checkout/run.ts'); require('./samples/nestjs/run.ts')"]);
    expect(result).toEqual({ code: 0, stdout: '', stderr: '' });
  });
});
