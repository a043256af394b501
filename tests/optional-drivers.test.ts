import type * as Sagaflow from '../src';
import type * as SagaflowTypeorm from '../src/store/typeorm';

/**
 * The database drivers are optional peer dependencies. These tests load sagaflow in a fresh module registry in
 * which a package is missing (its `require` fails as Node's does) or better-sqlite3's native addon does not load.
 */

function notInstalled(packageName: string): Error {
  return Object.assign(new Error(`Cannot find module '${packageName}'\nRequire stack:\n- /app/node_modules/sagaflow/dist/src/runtime/optional-dependency.js`), {
    code: 'MODULE_NOT_FOUND',
  });
}

interface Loaded {
  readonly sagaflow: typeof Sagaflow;
  readonly typeorm: typeof SagaflowTypeorm;
}

const mocked = new Set<string>();
afterEach(() => {
  for (const name of mocked) jest.dontMock(name);
  mocked.clear();
});

/**
 * sagaflow and sagaflow/typeorm as an application would load them, with `mocks` in place of those packages
 * until the test ends (the drivers are loaded when a store is made, after this returns).
 */
function loadWith(mocks: Record<string, () => unknown>): Loaded {
  let loaded: Loaded | undefined;
  jest.isolateModules(() => {
    for (const [name, factory] of Object.entries(mocks)) {
      jest.doMock(name, factory);
      mocked.add(name);
    }
    loaded = {
      sagaflow: jest.requireActual<typeof Sagaflow>('../src'),
      typeorm: jest.requireActual<typeof SagaflowTypeorm>('../src/store/typeorm'),
    };
  });
  if (loaded === undefined) throw new Error('the modules did not load');
  return loaded;
}

function thrown(make: () => unknown): Sagaflow.SagaflowError & { packageName?: string; command?: string } {
  try {
    make();
  } catch (e) {
    return e as Sagaflow.SagaflowError;
  }
  throw new Error('expected a throw');
}

const withoutBetterSqlite3 = { 'better-sqlite3': () => { throw notInstalled('better-sqlite3'); } };
const withUnbuiltBetterSqlite3 = {
  'better-sqlite3': () =>
    function Database(): never {
      throw new Error('Could not locate the bindings file. Tried:\n → /app/node_modules/better-sqlite3/build/better_sqlite3.node');
    },
};

describe('a runtime without better-sqlite3', () => {
  it('refuses new SagaRuntime() with MISSING_DEPENDENCY and the command npm install better-sqlite3', () => {
    const { sagaflow } = loadWith(withoutBetterSqlite3);
    const e = thrown(() => new sagaflow.SagaRuntime({ logger: sagaflow.silentLogger }));
    expect(e.code).toBe('MISSING_DEPENDENCY');
    expect(e.packageName).toBe('better-sqlite3');
    expect(e.command).toBe('npm install better-sqlite3');
    expect(e.message).toContain('`npm install better-sqlite3`');
    expect(e.message).toContain('new SagaRuntime()');
  });

  it('refuses TypeormStore.sqlite() the same way', () => {
    const { typeorm } = loadWith(withoutBetterSqlite3);
    const e = thrown(() => typeorm.TypeormStore.sqlite({ file: ':memory:' }));
    expect(e.code).toBe('MISSING_DEPENDENCY');
    expect(e.details).toEqual({ package: 'better-sqlite3', command: 'npm install better-sqlite3' });
  });

  it('runs sagas on a MemoryStore, loading neither better-sqlite3 nor pg', async () => {
    const { sagaflow } = loadWith({ ...withoutBetterSqlite3, pg: () => { throw notInstalled('pg'); } });
    class Count extends sagaflow.BaseStep<{ n: number }> {
      override run(state: { n: number }) {
        return sagaflow.ok({ n: state.n + 1 });
      }
    }
    sagaflow.Step({ name: 'count' })(Count);
    const wf = sagaflow.defineWorkflow<{ n: number }>({ name: 'no-driver', steps: [Count] });
    const runtime = new sagaflow.SagaRuntime({ store: new sagaflow.MemoryStore(), workflows: [wf], logger: sagaflow.silentLogger });
    try {
      const result = await (await runtime.start(wf, { n: 1 })).result();
      expect(result).toMatchObject({ status: 'completed', state: { n: 2 } });
    } finally {
      await runtime.close();
    }
  });
});

describe('a runtime whose better-sqlite3 was installed without building its native addon', () => {
  it('refuses new SagaRuntime() with MISSING_DEPENDENCY and the command npm rebuild better-sqlite3', () => {
    const { sagaflow } = loadWith(withUnbuiltBetterSqlite3);
    const e = thrown(() => new sagaflow.SagaRuntime({ logger: sagaflow.silentLogger }));
    expect(e.code).toBe('MISSING_DEPENDENCY');
    expect(e.command).toBe('npm rebuild better-sqlite3');
    expect(e.message).toContain('Could not locate the bindings file');
    expect(e.message).toContain('`npm rebuild better-sqlite3`');
  });

  it('refuses TypeormStore.sqlite() the same way', () => {
    const { typeorm } = loadWith(withUnbuiltBetterSqlite3);
    expect(thrown(() => typeorm.TypeormStore.sqlite({ file: ':memory:' })).details).toEqual({ package: 'better-sqlite3', command: 'npm rebuild better-sqlite3' });
  });
});

describe('a PostgreSQL store without pg', () => {
  it('refuses TypeormStore.postgres({ url }) with MISSING_DEPENDENCY and the command npm install pg', () => {
    const { typeorm } = loadWith({ pg: () => { throw notInstalled('pg'); } });
    const e = thrown(() => typeorm.TypeormStore.postgres({ url: 'postgres://127.0.0.1:1/none' }));
    expect(e.code).toBe('MISSING_DEPENDENCY');
    expect(e.details).toEqual({ package: 'pg', command: 'npm install pg' });
  });

  it('still loads sagaflow/typeorm, so an SQLite application never needs pg', () => {
    const { typeorm } = loadWith({ pg: () => { throw notInstalled('pg'); } });
    expect(typeorm.TypeormStore.sqlite({ file: ':memory:' }).kind).toBe('sqlite');
  });
});

describe('a runtime without typeorm', () => {
  it('refuses new SagaRuntime() with MISSING_DEPENDENCY and the command npm install typeorm', () => {
    let sagaflow: typeof Sagaflow | undefined;
    jest.isolateModules(() => {
      jest.doMock('typeorm', () => { throw notInstalled('typeorm'); });
      mocked.add('typeorm');
      sagaflow = jest.requireActual<typeof Sagaflow>('../src');
    });
    const { SagaRuntime, silentLogger } = sagaflow ?? jest.requireActual<typeof Sagaflow>('../src');
    const e = thrown(() => new SagaRuntime({ logger: silentLogger }));
    expect(e.code).toBe('MISSING_DEPENDENCY');
    expect(e.details).toEqual({ package: 'typeorm', command: 'npm install typeorm' });
  });
});
