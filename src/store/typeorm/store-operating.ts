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

/** Outlines and purges. */
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
}
