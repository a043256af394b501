import { mkdtempSync, existsSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { SagaRuntime, defineWorkflow, silentLogger } from '../src';
import { recordingStep, type TestState } from './support/steps';

describe('a runtime built without a store', () => {
  const home = process.cwd();
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'sagaflow-default-'));
    process.chdir(dir);
  });
  afterAll(() => {
    process.chdir(home);
    rmSync(dir, { recursive: true, force: true });
  });

  it('keeps its instances in the embedded SQLite file .sagaflow/sagaflow.db, where a later runtime finds them', async () => {
    const wf = defineWorkflow<TestState>({ name: 'embedded', steps: [recordingStep('A', [])] });
    const first = new SagaRuntime({ workflows: [wf], logger: silentLogger });
    const handle = await first.start(wf, { trail: [] }, { id: 'kept' });
    expect((await handle.result()).status).toBe('completed');
    await first.close();
    expect(existsSync(path.join(dir, '.sagaflow', 'sagaflow.db'))).toBe(true);

    const second = new SagaRuntime({ workflows: [wf], logger: silentLogger });
    const snapshot = await second.get<TestState>('kept');
    expect(snapshot.status).toBe('completed');
    expect(snapshot.state.trail).toEqual(['A.run']);
    expect((await second.list()).map((s) => s.id)).toEqual(['kept']);
    await second.close();
  });
});
