/**
 * What a TypeormStore keeps for operating sagas without the application's code: the outlines of registered
 * definitions (`sagaflow_definitions`) and purging finished instances.
 */
import type { WorkflowOutline } from '../../workflow/workflow-outline';
import type { PurgeOptions, StoredOutline } from '../instance-store';
import { checkPurge } from '../purge-options';
import { readOutlines, saveOutline } from './outlines';
import { purgeInstances } from './purge';
import { StorePart } from './store-session';
import type { SerializedError } from '../../errors/serialized-error';
import type { RunnableDefinition } from '../instance-store';
import type { OperatorRequest, OperatorRequestInput } from '../operator-request';
import { finishRequest, pendingRequests, readRequest, requestInstances, writeRequest } from './operator-requests';

/** Outlines, purges and operator requests. */
export class StoreOperating extends StorePart {
  saveOutline(outline: WorkflowOutline, registeredAt: number): Promise<boolean> {
    return this.run('save an outline', 'write', (x) => saveOutline(x, this.dialect, outline, registeredAt));
  }

  outlines(workflow?: string): Promise<StoredOutline[]> {
    return this.run('read outlines', 'read', (x) => readOutlines(x, this.dialect, workflow));
  }

  purge(options: PurgeOptions): Promise<string[]> {
    try {
      checkPurge(options);
    } catch (error) {
      return Promise.reject(error instanceof Error ? error : new Error(String(error)));
    }
    return this.run('purge instances', options.dryRun === true ? 'read' : 'tx', (x) => purgeInstances(x, this.dialect, options));
  }

  request(input: OperatorRequestInput, id: string, now: number): Promise<OperatorRequest> {
    return this.run('write an operator request', 'tx', (x) => writeRequest(x, this.dialect, input, id, now));
  }

  requestById(id: string): Promise<OperatorRequest | undefined> {
    return this.run('read an operator request', 'read', (x) => readRequest(x, this.dialect, id));
  }

  pendingRequests(instanceId: string): Promise<OperatorRequest[]> {
    return this.run('read pending operator requests', 'read', (x) => pendingRequests(x, this.dialect, instanceId));
  }

  requestInstances(limit: number, runnable?: readonly RunnableDefinition[]): Promise<string[]> {
    return this.run('list instances with operator requests', 'read', (x) => requestInstances(x, this.dialect, limit, runnable));
  }

  finishRequest(id: string, error: SerializedError | null, now: number): Promise<void> {
    return this.run('finish an operator request', 'write', (x) => finishRequest(x, this.dialect, id, error, now));
  }
}
