import * as path from 'node:path';
import type { Config } from '@jest/types';
import { provisionTestServices, TEST_SERVICES, type Provisioning, type TestService } from './support/test-services';

const rootDir = path.resolve(__dirname, '..');
/** A jest config that selects every test file. */
const everything = { testPathPatterns: { isSet: () => false } } as unknown as Config.GlobalConfig;
/** A jest config that selects only the files matching `pattern`. */
const only = (pattern: RegExp): Config.GlobalConfig =>
  ({ testPathPatterns: { isSet: () => true, toExecutor: () => ({ isMatch: (f: string) => pattern.test(f) }) } }) as unknown as Config.GlobalConfig;

function fakeService(installed: boolean): TestService & { installed: boolean } {
  const s = { name: 'redis-server', usedBy: 'support/redis', installed, present: () => s.installed };
  return s;
}

describe('npm test provisions the services its tests need', () => {
  it('knows redis-server, which the Redis adapter tests start', () => {
    expect(TEST_SERVICES.map((s) => s.name)).toContain('redis-server');
  });

  it("knows chromium, which the inspector's browser test drives", () => {
    expect(TEST_SERVICES.find((s) => s.name === 'chromium')?.usedBy).toBe('support/chromium');
  });

  it('installs a missing service with the setup script when a selected test needs it', () => {
    const service = fakeService(false);
    const calls: string[][] = [];
    const how: Provisioning = { services: [service], mayInstall: () => true, install: (script, names) => ((calls.push([path.basename(script), ...names]), (service.installed = true)), 0) };
    provisionTestServices(everything, rootDir, how);
    expect(calls).toEqual([['setup-test-services.sh', 'redis-server']]);
  });

  it('installs nothing when no selected test needs the service, or it is there already', () => {
    const install = jest.fn(() => 0);
    provisionTestServices(only(/decide\.test\.ts$/), rootDir, { services: [fakeService(false)], mayInstall: () => true, install });
    provisionTestServices(everything, rootDir, { services: [fakeService(true)], mayInstall: () => true, install });
    expect(install).not.toHaveBeenCalled();
  });

  it('refuses with the command to run when it may not install', () => {
    expect(() => provisionTestServices(everything, rootDir, { services: [fakeService(false)], mayInstall: () => false, install: () => 0 })).toThrow(
      /lacks; install with: sudo bash .*setup-test-services\.sh redis-server/,
    );
  });

  it('fails loudly when the install did not make the service appear', () => {
    expect(() => provisionTestServices(everything, rootDir, { services: [fakeService(false)], mayInstall: () => true, install: () => 100 })).toThrow(/failed \(exit 100\); still missing: redis-server/);
  });
});
