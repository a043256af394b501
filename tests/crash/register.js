'use strict';
/**
 * Lets a plain `node` child process run the TypeScript under tests/ and src/ (`node -r ./tests/crash/register.js
 * tests/crash/worker.ts`): every `.ts` file is compiled on require by @swc/core with the options jest uses
 * (jest.config.js — legacy decorators with decorator metadata, CommonJS), so the children run the same code as
 * the tests. Compiled output is cached on disk by content hash, so the many short-lived processes of the crash
 * tests compile each file once.
 */
const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { transformSync } = require('@swc/core');

const jestConfig = require('../../jest.config.js');
const entry = jestConfig.transform['^.+\\.ts$'];
if (!Array.isArray(entry) || entry[0] !== '@swc/jest') throw new Error('tests/crash/register.js expects jest.config.js to transform .ts files with @swc/jest');
const swcOptions = entry[1];
const swcVersion = require('@swc/core/package.json').version;
const optionsKey = JSON.stringify([swcVersion, swcOptions]);
const cacheDir = path.join(os.tmpdir(), `sagaflow-swc-cache-${typeof process.getuid === 'function' ? process.getuid() : 'user'}`);

function compile(source, filename) {
  const hash = crypto.createHash('sha256').update(optionsKey).update('\0').update(filename).update('\0').update(source).digest('hex');
  const cached = path.join(cacheDir, `${hash}.js`);
  try {
    return fs.readFileSync(cached, 'utf8');
  } catch {
    // not compiled yet
  }
  const { code } = transformSync(source, { ...swcOptions, filename, swcrc: false, configFile: false });
  try {
    fs.mkdirSync(cacheDir, { recursive: true });
    // Write then rename, so a process killed mid-write never leaves a truncated file in the cache.
    const partial = `${cached}.${process.pid}.tmp`;
    fs.writeFileSync(partial, code);
    fs.renameSync(partial, cached);
  } catch {
    // a cache that cannot be written only costs time
  }
  return code;
}

require.extensions['.ts'] = function loadTypeScript(module, filename) {
  module._compile(compile(fs.readFileSync(filename, 'utf8'), filename), filename);
};
