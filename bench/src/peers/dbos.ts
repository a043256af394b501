/**
 * DBOS (`@dbos-inc/dbos-sdk`) running the happy 5-step saga of ../workload: one registered workflow whose steps
 * are durable `DBOS.runStep` calls of the workload's step functions (each step's output is checkpointed in the
 * system database before the next one runs). DBOS keeps its state in a PostgreSQL system database: the bench
 * points it at a database of the same throwaway cluster as sagaflow's (its own pool of 10 connections, DBOS's
 * default, like sagaflow's). Each saga is started with its own workflow ID (DBOS's idempotency key) and its
 * result awaited and checked.
 */
import { randomUUID } from 'node:crypto';
import { DBOS } from '@dbos-inc/dbos-sdk';
import { assertOutcome, EXPECTED_HAPPY, HAPPY_STEPS, initialState, type OrderState } from '../workload';
import { packageVersion } from './steady';

export const DBOS_NAME = 'DBOS';

/** The version of the SDK in use. */
export function dbosVersion(): string {
  return packageVersion('@dbos-inc/dbos-sdk');
}

async function orderSaga(input: OrderState): Promise<OrderState> {
  let state = input;
  for (const step of HAPPY_STEPS) {
    const current = state;
    state = await DBOS.runStep(() => Promise.resolve(step.invoke(current)), { name: step.name });
  }
  return state;
}

let registered: ((input: OrderState) => Promise<OrderState>) | undefined;

/** DBOS is a process-wide singleton: launched once on `systemDatabaseUrl`, shut down by {@link DbosPeer.close}. */
export class DbosPeer {
  private workflow: ((input: OrderState) => Promise<OrderState>) | undefined;

  /** Configures and launches DBOS (creates and migrates its system database). */
  async open(systemDatabaseUrl: string, poolSize: number): Promise<void> {
    registered ??= DBOS.registerWorkflow(orderSaga, { name: 'benchOrderSaga' });
    this.workflow = registered;
    DBOS.setConfig({ name: 'sagaflow-bench', systemDatabaseUrl, systemDatabasePoolSize: poolSize, logLevel: 'error', enableOTLP: false, runAdminServer: false });
    await DBOS.launch();
  }

  /** Runs one saga to its end, with its own workflow ID, and checks it. */
  readonly one = async (): Promise<void> => {
    const workflow = this.workflow;
    if (workflow === undefined) throw new Error(`${DBOS_NAME}: not launched`);
    const handle = await DBOS.startWorkflow(workflow, { workflowID: randomUUID() })(initialState());
    assertOutcome(DBOS_NAME, 'durable happy path (PostgreSQL)', await handle.getResult(), EXPECTED_HAPPY);
  };

  async close(): Promise<void> {
    this.workflow = undefined;
    await DBOS.shutdown();
  }
}
